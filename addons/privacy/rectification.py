"""Privacy: rectification (issue 15, item 4).

Customers correct the company's details on *Account → Privacy* (section ``company-details``): the
name (``public.tenant.name``), the contact person, e-mail and phone, the billing address and VAT
number (``public.tenant_contact``, this addon's public migration 0030). Each change is an audit
event naming the fields that changed. Members correct their own details on *Account*
(``/account``: name, phone, job title, and the sign-in address, which changes only once confirmed
from the new address, with a week to undo from the old one); this section points there.
"""

from __future__ import annotations

import re

from core.catalogue import Tenant
from core.clock import utcnow
from core.datamap import PersonalData, Table
from core.db import app_db, connection
from core.events import emit
from core.web.auth_pages import audit

from .page import MANAGE, SELF, Section

FIELDS = {  # field: longest
    "contact_name": 200, "contact_email": 254, "contact_phone": 40, "billing_address": 1000, "vat_id": 40,
}
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}$")
PHONE_RE = re.compile(r"^\+?[0-9 ()./-]{3,40}$")

MODELS = [Table("tenant_contact", "public", PersonalData(
    personal=("contact_name", "contact_email", "contact_phone", "billing_address", "vat_id"),
    subjects={"tenant": "tenant_id"},
    export=("contact_name", "contact_email", "contact_phone", "billing_address", "vat_id", "updated_at"),
    erase="delete"))]


def company_details(tenant_id: int) -> dict:
    with connection():
        name = Tenant.get_by_id(tenant_id).name
        row = app_db.execute_sql(f"SELECT {', '.join(FIELDS)} FROM public.tenant_contact WHERE tenant_id = %s",
                                 (tenant_id,)).fetchone()
    return {"name": name, **dict(zip(FIELDS, row or [""] * len(FIELDS)))}


def save_company_details(platform, tenant, form: dict) -> list[str]:
    """Store the details; the fields that changed."""
    before = company_details(tenant.id)
    changed = [k for k in ("name", *FIELDS) if form[k] != before[k]]
    if not changed:
        return []
    if "name" in changed:
        platform.tenants.rename(tenant.slug, form["name"])
    with connection():
        app_db.execute_sql(
            f"INSERT INTO public.tenant_contact (tenant_id, {', '.join(FIELDS)}, updated_at) "
            f"VALUES (%s, {', '.join(['%s'] * len(FIELDS))}, %s) ON CONFLICT (tenant_id) DO UPDATE SET "
            + ", ".join(f"{f} = EXCLUDED.{f}" for f in FIELDS) + ", updated_at = EXCLUDED.updated_at",
            (tenant.id, *[form[f] for f in FIELDS], utcnow()))
    return changed


async def load(handler) -> dict | None:
    principal = handler.principal
    if principal.can(MANAGE):
        return {"company": await handler.run_db(company_details, handler.tenant.id), "form": None}
    if principal.kind == "user" and principal.can(SELF):
        return {"company": None}
    return None


async def post(handler) -> dict | None:
    _ = handler.gettext()[0]
    if not handler.principal.can(MANAGE):
        return {"name": _("Only the workspace's owner can change the company's details.")}
    form = {k: " ".join(handler.get_body_argument(k, "").split()) if k != "billing_address"
            else handler.get_body_argument(k, "").strip().replace("\r\n", "\n")
            for k in ("name", *FIELDS)}
    errors = {}
    if not 1 <= len(form["name"]) <= 200:
        errors["name"] = _("Give the company a name of 1 to 200 characters.")
    for field, longest in FIELDS.items():
        if len(form[field]) > longest:
            errors[field] = _("At most %(n)d characters.") % {"n": longest}
    if form["contact_email"] and not EMAIL_RE.match(form["contact_email"]):
        errors["contact_email"] = _("Enter a valid email address.")
    if form["contact_phone"] and not PHONE_RE.match(form["contact_phone"]):
        errors["contact_phone"] = _("Use digits, spaces and + ( ) - only.")
    if errors:
        return errors
    platform, tenant, principal = handler.platform, handler.tenant, handler.principal

    def save():
        changed = save_company_details(platform, tenant, form)
        if changed:
            emit(platform, audit(handler, "tenant.details_changed", actor=principal.actor,
                                 actor_name=principal.email, target=f"tenant:{tenant.slug}", fields=changed))
        return changed

    changed = await handler.run_db(save)
    handler.flash("success", _("The company's details were saved.") if changed else _("Nothing changed."))
    return None


SECTION = Section("company-details", 40, "privacy/rectification.html", load, post)
