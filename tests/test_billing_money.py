"""Money arithmetic of the billing addon, property-tested (hypothesis): integer minor units,
proration and tax rounded half away from zero, totals that are the sum of their lines plus one
rounded tax, exponents per currency, formatting per locale."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings, strategies as st

from addons.billing import money, tax
from addons.billing.invoicing import InvoiceError, Line, check_lines
from addons.billing.money import MoneyError

AMOUNTS = st.integers(min_value=0, max_value=10**13)
SIGNED = st.integers(min_value=-10**13, max_value=10**13)
RATES = st.integers(min_value=0, max_value=10_000)


def exact_half_away(value: Fraction) -> int:
    """The reference rounding, through Decimal with ample precision (not the code under test)."""
    d = (Decimal(value.numerator) / Decimal(value.denominator)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(d)


@given(SIGNED, st.integers(min_value=1, max_value=400 * 86400), st.data())
def test_prorate_is_the_exact_share_rounded_half_away_from_zero(amount, period, data):
    used = data.draw(st.integers(min_value=0, max_value=period))
    got = money.prorate(amount, used, period)
    assert isinstance(got, int)
    exact = Fraction(amount * used, period)
    assert abs(got - exact) <= Fraction(1, 2)
    assert got == exact_half_away(exact)
    assert money.prorate(-amount, used, period) == -got  # a credit mirrors its charge exactly


@given(AMOUNTS, st.integers(min_value=1, max_value=31 * 86400), st.data())
def test_prorated_parts_stay_within_the_whole_and_never_drift_more_than_a_unit(amount, period, data):
    used = data.draw(st.integers(min_value=0, max_value=period))
    first, rest = money.prorate(amount, used, period), money.prorate(amount, period - used, period)
    assert 0 <= first <= amount and 0 <= rest <= amount
    assert abs(first + rest - amount) <= 1
    assert money.prorate(amount, period, period) == amount and money.prorate(amount, 0, period) == 0


def test_prorate_rounds_halves_away_from_zero_and_refuses_nonsense():
    assert money.prorate(1, 1, 2) == 1 and money.prorate(-1, 1, 2) == -1
    assert money.prorate(3, 1, 2) == 2 and money.prorate(1, 1, 3) == 0
    for bad in ((1, 3, 2), (1, -1, 2), (1, 0, 0)):
        with pytest.raises(MoneyError):
            money.prorate(*bad)
    with pytest.raises(MoneyError):
        money.prorate(1.5, 1, 2)


@given(SIGNED, RATES)
def test_tax_is_the_rate_of_the_amount_rounded_half_away_from_zero(amount, rate):
    got = money.tax_of(amount, rate)
    exact = Fraction(amount * rate, 10_000)
    assert got == exact_half_away(exact)
    assert money.tax_of(-amount, rate) == -got


@given(st.lists(st.tuples(st.integers(min_value=1, max_value=10**6), st.integers(min_value=0, max_value=10**7)),
                min_size=1, max_size=20), RATES)
def test_an_invoice_total_is_its_lines_plus_one_rounded_tax(raw_lines, rate):
    lines = check_lines([Line(f"line {i}", q, u) for i, (q, u) in enumerate(raw_lines)], "EUR")
    subtotal = sum(line.amount for line in lines)
    assert subtotal == sum(q * u for q, u in raw_lines)
    tax_amount = money.tax_of(subtotal, rate)
    total = subtotal + tax_amount
    # Tax on the sum, once: never more than half a cent away from the exact tax of the whole.
    assert abs(Fraction(subtotal * rate, 10_000) - tax_amount) <= Fraction(1, 2)
    assert total >= subtotal and isinstance(total, int)


@given(st.sampled_from(["EUR", "USD", "JPY", "KWD", "CHF", "GBP", "CLF"]), SIGNED)
def test_major_units_round_trip_exactly(currency, amount):
    value = money.to_decimal(amount, currency)
    assert value == Decimal(amount) / (Decimal(10) ** money.exponent(currency))
    if amount >= 0 and abs(amount) < 10**15:
        assert money.from_major(f"{value:f}", currency) == amount


def test_currency_exponents_follow_iso_4217():
    assert money.exponent("EUR") == 2 and money.exponent("JPY") == 0 and money.exponent("KWD") == 3
    assert money.exponent("CLF") == 4
    for bad in ("eur", "EURO", "XXY", "", None, 12):
        with pytest.raises(MoneyError):
            money.check_currency(bad)


def test_formatting_follows_the_locale():
    assert money.format_money(123456, "EUR", "en") == "€1,234.56"
    assert money.format_money(123456, "EUR", "de") == "1.234,56\xa0€"
    assert money.format_money(123456, "JPY", "en") == "¥123,456"
    assert money.format_money(5, "EUR", "fr") == "0,05\xa0€"
    assert money.format_money(1, "KWD", "en").endswith("0.001")


def test_typed_amounts_and_rates_are_refused_rather_than_rounded():
    with pytest.raises(MoneyError):
        money.from_major("12.345", "EUR")
    with pytest.raises(MoneyError):
        money.from_major("12.5", "JPY")
    assert money.from_major("12,30", "EUR") == 1230
    assert money.parse_rate("19") == 1900 and money.parse_rate("7,7 %") == 770
    for bad in ("", "-5", "100.01", "abc", "1.234"):
        with pytest.raises(MoneyError):
            money.parse_rate(bad)


@settings(max_examples=200)
@given(st.integers(max_value=-1, min_value=-10**9))
def test_negative_amounts_and_mixed_currencies_never_reach_an_invoice(negative):
    with pytest.raises(InvoiceError):
        check_lines([Line("refund?", 1, negative)], "EUR")
    with pytest.raises(InvoiceError):
        check_lines([Line("ok", 1, 100, "EUR"), Line("dollars", 1, 100, "USD")], "EUR")
    with pytest.raises(InvoiceError):
        check_lines([Line("zero", 0, 100)], "EUR")
    with pytest.raises(InvoiceError):
        check_lines([Line("float", 1, 1.5)], "EUR")
    with pytest.raises(InvoiceError):
        check_lines([], "EUR")


@pytest.mark.parametrize("country,vat,valid", [
    ("DE", "DE123456789", True), ("DE", "de 123 456 789", True), ("DE", "DE12345678", False),
    ("FR", "FRXX123456789", True), ("GR", "EL123456789", True), ("GR", "GR123456789", False),
    ("NL", "NL123456789B01", True), ("AT", "ATU12345678", True), ("AT", "AT12345678", False),
    ("IE", "IE1234567T", True), ("US", "US123456789", False), ("DE", "FR123456789", False), ("DE", "", False),
])
def test_vat_id_formats_are_checked_per_country_offline(country, vat, valid):
    assert tax.vat_id_format_valid(country, vat) is valid
