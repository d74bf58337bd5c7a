"""Tax on invoices: the operator's rate per buyer country, and EU B2B reverse charge.

The operator keeps one rate per buyer country in ``public.billing_tax_rates`` (Admin console ->
Billing -> Tax rates). An invoice's tax is decided from the buyer's billing details when it is
issued, and written into the invoice (which never changes afterwards):

* seller and buyer both in the EU, in different countries, and the buyer gave a VAT id whose
  **format** is valid for its country: reverse charge (0 %, the invoice says so; the buyer accounts
  for the VAT). The format is checked here, offline; nothing asks the EU's VIES service whether the
  number is registered, so an operator who must verify it does so in VIES by hand;
* otherwise the rate configured for the buyer's country (none configured: no tax line).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from core.datamap import NO_PERSONAL_DATA, Table
from core.db import app_db

from .money import BASIS

MODELS = [Table("billing_tax_rates", "public", NO_PERSONAL_DATA)]

EU = frozenset("AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split())
# The VAT id's prefix is the country code, except Greece's (EL).
VAT_PREFIX = {"GR": "EL"}
# The formats the EU publishes for each member state's VAT number (after the prefix).
VAT_FORMATS = {
    "AT": r"U\d{8}", "BE": r"[01]\d{9}", "BG": r"\d{9,10}", "CY": r"\d{8}[A-Z]", "CZ": r"\d{8,10}",
    "DE": r"\d{9}", "DK": r"\d{8}", "EE": r"\d{9}", "EL": r"\d{9}", "ES": r"[A-Z0-9]\d{7}[A-Z0-9]",
    "FI": r"\d{8}", "FR": r"[A-HJ-NP-Z0-9]{2}\d{9}", "HR": r"\d{11}", "HU": r"\d{8}",
    "IE": r"\d{7}[A-W][A-I]?|\d[A-Z+*]\d{5}[A-W]", "IT": r"\d{11}", "LT": r"\d{9}|\d{12}", "LU": r"\d{8}",
    "LV": r"\d{11}", "MT": r"\d{8}", "NL": r"\d{9}B\d{2}", "PL": r"\d{10}", "PT": r"\d{9}", "RO": r"[1-9]\d{1,9}",
    "SE": r"\d{10}01", "SI": r"\d{8}", "SK": r"\d{10}",
}
COUNTRY = re.compile(r"[A-Z]{2}")


def normalise_vat_id(raw: str) -> str:
    """A VAT id as written on invoices: upper case, without spaces, dots or dashes."""
    return re.sub(r"[\s.\-]", "", (raw or "").upper())


def vat_id_format_valid(country: str, vat_id: str) -> bool:
    """Whether ``vat_id`` has the format of an EU VAT number of ``country`` (its prefix included).
    Format only: no registry is asked whether the number exists."""
    country = (country or "").upper()
    if country not in EU:
        return False
    vat = normalise_vat_id(vat_id)
    prefix = VAT_PREFIX.get(country, country)
    return vat.startswith(prefix) and re.fullmatch(VAT_FORMATS[prefix], vat[len(prefix):]) is not None


@dataclass(frozen=True)
class TaxDecision:
    rate_bp: int  # hundredths of a percent
    name: str  # the tax's name as the operator configured it ("VAT", "MwSt."), or ""
    reverse_charge: bool

    @property
    def charged(self) -> bool:
        return self.rate_bp > 0


NO_TAX = TaxDecision(0, "", False)


def rates(db=app_db) -> list[dict]:
    """Every configured rate, by country (inside an open connection)."""
    return [{"country": c, "rate_bp": r, "name": n}
            for c, r, n in db.execute_sql("SELECT country, rate_bp, name FROM public.billing_tax_rates ORDER BY country")]


def set_rate(country: str, rate_bp: int, name: str, db=app_db) -> None:
    """Configure (or change) the rate of ``country``; invoices already issued keep theirs."""
    country = (country or "").strip().upper()
    if not COUNTRY.fullmatch(country):
        raise ValueError("The country is two letters (ISO 3166-1), such as DE or FR.")
    if not isinstance(rate_bp, int) or not 0 <= rate_bp <= BASIS:
        raise ValueError("A tax rate is between 0 and 100 %.")
    name = (name or "").strip()[:40]
    db.execute_sql("INSERT INTO public.billing_tax_rates (country, rate_bp, name) VALUES (%s, %s, %s) "
                   "ON CONFLICT (country) DO UPDATE SET rate_bp = EXCLUDED.rate_bp, name = EXCLUDED.name, "
                   "updated_at = now()", (country, rate_bp, name))


def remove_rate(country: str, db=app_db) -> None:
    db.execute_sql("DELETE FROM public.billing_tax_rates WHERE country = %s", ((country or "").upper(),))


def decide(seller_country: str, buyer_country: str, buyer_vat_id: str, db=app_db) -> TaxDecision:
    """The tax of an invoice to a buyer in ``buyer_country`` (inside an open connection)."""
    buyer_country = (buyer_country or "").upper()
    seller_country = (seller_country or "").upper()
    if (seller_country in EU and buyer_country in EU and buyer_country != seller_country
            and vat_id_format_valid(buyer_country, buyer_vat_id)):
        return TaxDecision(0, "", True)
    row = db.execute_sql("SELECT rate_bp, name FROM public.billing_tax_rates WHERE country = %s",
                         (buyer_country,)).fetchone()
    return TaxDecision(row[0], row[1], False) if row else NO_TAX
