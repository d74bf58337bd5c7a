"""A reseller's brand for the workspaces it sells (the branding addon's ``smsgw_brand_defaults`` and
``smsgw_brand_editable``): its product name, mail sender, support address, colours and theme, and
whether its customers may change their workspace's brand themselves.

Checked by the branding addon's own rules (:func:`addons.branding.service.check`: lengths, addresses,
``#rrggbb`` colours with a readable contrast, an installed theme), so a reseller can set nothing a
workspace could not. Saving tells every process to forget the brands it cached.
"""

from __future__ import annotations

from addons.branding import service as branding
from addons.branding.logo import Logo
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
    with branding.catalogue():  # also asked from inside a tenant's transaction (a mail composed there)
        return app_db.execute_sql(
            f"SELECT {', '.join('b.' + f for f in FIELDS)}, b.logo_type, b.logo_version, b.workspaces_may_rebrand "
            "FROM public.reseller_brand b "
            "JOIN public.reseller_tenant rt ON rt.reseller_id = b.reseller_id "
            "WHERE rt.tenant_id = %s", (tenant_id,)).fetchone()  # a suspended reseller's too: README


def defaults(tenant) -> BrandPart | None:
    """``smsgw_brand_defaults``: the brand of the reseller that sells ``tenant``, if it set one."""
    row = _of_workspace(tenant.id)
    if row is None:
        return None
    # The workspace's own host serves it (branding's /brand/logo asks smsgw_brand_default_logo).
    logo_url = f"/brand/logo?v=r{row[-2]}" if row[-3] else ""
    return BrandPart(**dict(zip(FIELDS, row[:len(FIELDS)])), logo_url=logo_url)


def editable(tenant) -> bool | None:
    """``smsgw_brand_editable``: ``False`` when the workspace's reseller keeps its brand fixed."""
    row = _of_workspace(tenant.id)
    return None if row is None or row[-1] else False


def logo_version(reseller_id: int) -> int:
    """The version of the reseller's logo (its address changes with each upload), 0 for none."""
    with connection():
        row = app_db.execute_sql("SELECT logo_version FROM public.reseller_brand WHERE reseller_id = %s "
                                 "AND logo IS NOT NULL", (reseller_id,)).fetchone()
    return row[0] if row else 0


def logo(reseller_id: int) -> tuple[bytes, str] | None:
    """``(data, content_type)`` of the reseller's logo, or ``None``."""
    with branding.catalogue():
        row = app_db.execute_sql("SELECT logo, logo_type FROM public.reseller_brand WHERE reseller_id = %s "
                                 "AND logo IS NOT NULL", (reseller_id,)).fetchone()
    return (bytes(row[0]), row[1]) if row else None


def default_logo(tenant) -> tuple[bytes, str] | None:
    """``smsgw_brand_default_logo``: the logo of the reseller that sells ``tenant``."""
    with branding.catalogue():
        row = app_db.execute_sql(
            "SELECT b.logo, b.logo_type FROM public.reseller_brand b "
            "JOIN public.reseller_tenant rt ON rt.reseller_id = b.reseller_id "
            "WHERE rt.tenant_id = %s AND b.logo IS NOT NULL", (tenant.id,)).fetchone()
    return (bytes(row[0]), row[1]) if row else None


def save_logo(reseller_id: int, new: Logo | None) -> None:
    """Store a logo checked by :func:`addons.branding.logo.check` (``None``: remove it)."""
    with connection(), app_db.atomic():
        app_db.execute_sql(
            "INSERT INTO public.reseller_brand (reseller_id, logo, logo_type, logo_version) VALUES (%s, %s, %s, 1) "
            "ON CONFLICT (reseller_id) DO UPDATE SET logo = EXCLUDED.logo, logo_type = EXCLUDED.logo_type, "
            "logo_version = public.reseller_brand.logo_version + 1, updated_at = now()",
            (reseller_id, new.data if new else None, new.content_type if new else ""))
    branding.brand_changed(None)  # its workspaces' cached brands, in every process


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
