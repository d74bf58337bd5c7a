"""Money: integer amounts in a currency's minor unit (cents for EUR, yen for JPY), never floats.

Every amount the billing addon stores, adds or shows is an ``int`` of minor units together with an
ISO 4217 code. The only divisions are proration and tax; both round **half away from zero** to
the minor unit (``prorate(1, 1, 2) == 1``, ``prorate(-1, 1, 2) == -1``): the rule accountants and
most tax authorities expect for a single amount, symmetric so that a credit note mirrors its invoice
exactly. Tax is computed once per invoice on the sum of its lines (not per line), so the invoice's
total is always the sum of its lines plus that one rounded tax amount.
"""

from __future__ import annotations

import re
from decimal import Decimal

from babel.numbers import format_currency, list_currencies

from core.i18n import N_
from core.web.problem import Refusal

# ISO 4217 minor-unit exponents that are not 2. CLDR (babel) knows the codes; its "digits" are
# display habits (cash rounding) and differ from ISO for some, so the exponent is ISO's, here.
EXPONENTS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI",
                     "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}
_CODE = re.compile(r"[A-Z]{3}")
_KNOWN = frozenset(list_currencies())


class MoneyError(Refusal):
    """An amount or currency the billing addon cannot use; the message says why."""


def check_currency(currency: str) -> str:
    """``currency`` if it is an ISO 4217 code we know (upper case), else :class:`MoneyError`."""
    if not isinstance(currency, str) or not _CODE.fullmatch(currency) or currency not in _KNOWN:
        raise MoneyError(N_("“%(currency)s” is not an ISO 4217 currency code (such as EUR or USD)."),
                         {"currency": str(currency)[:10]})
    return currency


def exponent(currency: str) -> int:
    """Digits of the minor unit: 2 for EUR (cents), 0 for JPY, 3 for KWD."""
    return EXPONENTS.get(check_currency(currency), 2)


def check_amount(amount, *, allow_negative: bool = False) -> int:
    """``amount`` if it is an ``int`` of minor units (not a bool, float or Decimal)."""
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise MoneyError(N_("Amounts are whole numbers of minor units (cents), not %(type)s."),
                         {"type": type(amount).__name__})
    if amount < 0 and not allow_negative:
        raise MoneyError(N_("Amounts cannot be negative; corrections are credit notes."))
    return amount


def divide_round(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half away from zero, in integers only (no float is exact
    past 2**53, and Decimal's context could round twice)."""
    if denominator == 0:
        raise MoneyError(N_("Division by zero."))
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    sign = -1 if numerator < 0 else 1
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return sign * quotient


def prorate(amount: int, numerator_seconds: int, denominator_seconds: int) -> int:
    """The share ``numerator/denominator`` of ``amount`` (e.g. the unused part of a period on an
    upgrade), rounded half away from zero to the minor unit. ``0 <= numerator <= denominator``."""
    check_amount(amount, allow_negative=True)
    if not (isinstance(numerator_seconds, int) and isinstance(denominator_seconds, int)):
        raise MoneyError(N_("Proration takes whole seconds."))
    if denominator_seconds <= 0 or not 0 <= numerator_seconds <= denominator_seconds:
        raise MoneyError(N_("Proration needs 0 <= used <= period, and a period longer than zero."))
    return divide_round(amount * numerator_seconds, denominator_seconds)


BASIS = 10_000  # tax rates in hundredths of a percent: 1900 is 19 %, 770 is 7.7 %


def tax_of(amount: int, rate_bp: int) -> int:
    """Tax on ``amount`` at ``rate_bp`` hundredths of a percent, rounded half away from zero."""
    check_amount(amount, allow_negative=True)
    if not isinstance(rate_bp, int) or not 0 <= rate_bp <= BASIS:
        raise MoneyError(N_("A tax rate is between 0 and 100 percent, in hundredths of a percent."))
    return divide_round(amount * rate_bp, BASIS)


def parse_rate(text: str) -> int:
    """A percentage as typed (``19``, ``7.7``, ``8,1``) in hundredths of a percent."""
    raw = (text or "").strip().replace(",", ".").rstrip("%").strip()
    if not re.fullmatch(r"\d{1,3}(\.\d{1,2})?", raw):
        raise MoneyError(N_("Write the rate as a percentage with at most two decimals, such as 19 or 7.7."))
    value = int(Decimal(raw) * 100)
    if value > BASIS:
        raise MoneyError(N_("A tax rate is at most 100 percent."))
    return value


def format_rate(rate_bp: int) -> str:
    text = f"{Decimal(rate_bp) / 100:f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + " %"  # 20 %, not 2 %


def to_decimal(amount: int, currency: str) -> Decimal:
    """The amount in major units, exactly (``1234 EUR -> Decimal('12.34')``)."""
    return Decimal(check_amount(amount, allow_negative=True)).scaleb(-exponent(currency))


def from_major(text: str, currency: str) -> int:
    """An amount typed in major units (``12.34``) as minor units; more decimals than the currency
    has are refused, not rounded."""
    raw = (text or "").strip().replace(",", ".")
    digits = exponent(currency)
    pattern = rf"\d{{1,15}}(\.\d{{1,{digits}}})?" if digits else r"\d{1,15}"
    if not re.fullmatch(pattern, raw):
        raise MoneyError(N_("Write the amount in %(currency)s with at most %(digits)s decimals."),
                         {"currency": currency, "digits": digits})
    return int(Decimal(raw).scaleb(digits))


def format_money(amount: int, currency: str, locale: str = "en") -> str:
    """``amount`` (minor units) as people of ``locale`` write it: ``€12.34``, ``12,34 €``, ``¥1,234``."""
    value = to_decimal(amount, currency)
    try:
        return format_currency(value, currency, locale=locale, decimal_quantization=False)
    except Exception:  # a locale babel does not know: English
        return format_currency(value, currency, locale="en", decimal_quantization=False)
