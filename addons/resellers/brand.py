"""A reseller's brand for the workspaces it sells (the branding addon's ``smsgw_brand_defaults`` and
``smsgw_brand_editable``): its product name, mail sender, support address, colours and theme, and
whether its customers may change their workspace's brand themselves.

Checked by the branding addon's own rules (:func:`addons.branding.service.check`: lengths, addresses,
``#rrggbb`` colours with a readable contrast, an installed theme), so a reseller can set nothing a
workspace could not. Saving tells every process to forget the brands it cached.
"""

from __future__ import annotations

from addons.branding import service as branding
from addons.branding.parts import BrandPart
from core.db import app_db, connection

FIELDS = ("product_name", "mail_sender_name", "support_email", "colour_brand", "colour_text", "theme")


def of_reseller(reseller_id: int) -> tuple[dict[str, str], bool]:
    """``(fields, workspaces_may_rebrand)`` of a reseller's brand (empty fields and ``True`` if unset)."""
    with connection():
        row = app_db.execute_sql(
            f"SELECT {', '.join(FIELDS)}, workspaces_may_rebrand FROM public.reseller_brand WHERE reseller_id = %s",
            (reseller_id,)).fetchone()
    if row is None:
        return {name: "" for name in FIELDS}, True
    return dict(zip(FIELDS, row[:-1])), bool(row[-1])


def _of_workspace(tenant_id: int):
    with connection():
        return app_db.execute_sql(
            f"SELECT {', '.join('b.' + f for f in FIELDS)}, b.workspaces_may_rebrand FROM public.reseller_brand b "
            "JOIN public.reseller_tenant rt ON rt.reseller_id = b.reseller_id "
            "JOIN public.reseller r ON r.id = b.reseller_id "
            "WHERE rt.tenant_id = %s AND r.status = 'active'", (tenant_id,)).fetchone()


def defaults(tenant) -> BrandPart | None:
    """``smsgw_brand_defaults``: the brand of the reseller that sells ``tenant``, if it set one."""
    row = _of_workspace(tenant.id)
    return None if row is None else BrandPart(**dict(zip(FIELDS, row[:-1])))


def editable(tenant) -> bool | None:
    """``smsgw_brand_editable``: ``False`` when the workspace's reseller keeps its brand fixed."""
    row = _of_workspace(tenant.id)
    return None if row is None or row[-1] else False


def save(reseller_id: int, form: dict[str, str], may_rebrand: bool) -> dict:
    """Check and store a reseller's brand; the errors per field (``(msgid, args)``), nothing stored
    if there is any."""
    values, errors = branding.check(form)
    if errors:
        return errors
    columns = [*FIELDS, "workspaces_may_rebrand"]
    with connection(), app_db.atomic():
        app_db.execute_sql(
            f"INSERT INTO public.reseller_brand (reseller_id, {', '.join(columns)}) "
            f"VALUES (%s, {', '.join(['%s'] * len(columns))}) ON CONFLICT (reseller_id) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns) + ", updated_at = now()",
            (reseller_id, *[values[c] for c in FIELDS], may_rebrand))
    branding.brand_changed(None)  # its workspaces' cached brands, in every process
    return {}
