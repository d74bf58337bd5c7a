"""The buyer's billing details (``public.billing_accounts``): company, address, country, VAT id,
billing e-mail, the invoices' language and the payment method (provider) the workspace chose.
Edited by the workspace's Customer on *Billing -> Billing details*; invoices copy them when issued."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from core.datamap import PersonalData, Table
from core.db import app_db
from core.i18n import N_

from . import tax

MODELS = [Table("billing_accounts", "public", PersonalData(
    personal=("company", "address", "vat_id", "email"), subjects={"tenant": "tenant_id"},
    export=("company", "address", "country", "vat_id", "email", "language", "provider", "updated_at"),
    erase="delete"))]
EMAIL = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+")


@dataclass(frozen=True)
class BillingAccount:
    tenant_id: int
    company: str = ""
    address: str = ""
    country: str = ""
    vat_id: str = ""
    email: str = ""
    language: str = ""
    provider: str = "manual"
    provider_customer: str = ""


COLUMNS = tuple(f.name for f in fields(BillingAccount))


def get(tenant_id: int, db=app_db) -> BillingAccount:
    """The workspace's billing details (empty ones if it never entered any; inside a connection)."""
    row = db.execute_sql(f"SELECT {', '.join(COLUMNS)} FROM public.billing_accounts WHERE tenant_id = %s",
                         (tenant_id,)).fetchone()
    return BillingAccount(**dict(zip(COLUMNS, row))) if row else BillingAccount(tenant_id)


def validate(form: dict, languages) -> tuple[dict, dict]:
    """The details from a submitted form, cleaned, and the errors by field (msgids)."""
    values = {
        "company": (form.get("company") or "").strip()[:200],
        "address": (form.get("address") or "").replace("\r\n", "\n").strip()[:1000],
        "country": (form.get("country") or "").strip().upper(),
        "vat_id": tax.normalise_vat_id(form.get("vat_id") or ""),
        "email": (form.get("email") or "").strip(),
        "language": (form.get("language") or "").strip(),
    }
    errors = {}
    if values["country"] and not tax.COUNTRY.fullmatch(values["country"]):
        errors["country"] = N_("Write the country as two letters, such as DE, FR or US.")
    if values["vat_id"] and (len(values["vat_id"]) > 20 or not re.fullmatch(r"[A-Z0-9+*]+", values["vat_id"])):
        errors["vat_id"] = N_("A VAT id is letters and digits only, at most 20.")
    elif values["vat_id"] and values["country"] in tax.EU and not tax.vat_id_format_valid(values["country"],
                                                                                          values["vat_id"]):
        errors["vat_id"] = N_("This is not the format of a VAT id of the country you chose (it starts with the country's code).")
    if values["email"] and (len(values["email"]) > 254 or not EMAIL.fullmatch(values["email"])):
        errors["email"] = N_("Write one e-mail address, such as accounts@example.com.")
    if values["language"] and values["language"] not in languages:
        errors["language"] = N_("Choose one of the languages offered.")
    return values, errors


def save(tenant_id: int, values: dict, db=app_db) -> None:
    """Store validated details (inside a connection); issued invoices keep the details they copied."""
    names = list(values)
    db.execute_sql(f"INSERT INTO public.billing_accounts (tenant_id, {', '.join(names)}) "
                   f"VALUES (%s, {', '.join(['%s'] * len(names))}) ON CONFLICT (tenant_id) DO UPDATE SET "
                   + ", ".join(f"{n} = EXCLUDED.{n}" for n in names) + ", updated_at = now()",
                   [tenant_id] + [values[n] for n in names])


def set_provider(tenant_id: int, provider: str, customer: str | None = None, db=app_db) -> None:
    """The payment method the workspace chose (and the provider's customer id, when it has one)."""
    values = {"provider": provider}
    if customer is not None:
        values["provider_customer"] = customer
    save(tenant_id, values, db)
