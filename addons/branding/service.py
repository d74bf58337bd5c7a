"""A workspace's brand: its own settings in ``public.workspace_brand``, merged with its reseller's
defaults (``smsgw_brand_defaults``) and the platform's, cached per process.

The kernel caches the merged brand per workspace (``core.brand.BrandCache``) and asks again after
:func:`brand_changed`, which every process hears through NOTIFY.
"""

from __future__ import annotations

import hashlib
import logging
import re
from contextlib import contextmanager
from dataclasses import dataclass, replace

from core.brand import Brand
from core.db import app_db, as_serving_role, connection, current_tenant
from core.i18n import N_
from core.tenancy import check_email, TenantError

from . import colours
from .logo import Logo
from .parts import BrandPart, merged

NAME_MAX = 60
COLUMNS = ("product_name", "colour_brand", "colour_text", "mail_sender_name", "support_email", "theme",
           "logo_type", "logo_version")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

log = logging.getLogger(__name__)
_platform = None


def configure(platform) -> None:
    global _platform
    _platform = platform


def platform():
    """The platform this addon was configured with (its hooks, its settings)."""
    return _platform


@dataclass(frozen=True)
class OwnBrand:
    """What a workspace set itself (``""``: not set), and its logo's type and version."""

    settings: BrandPart = BrandPart()
    logo_type: str = ""
    logo_version: int = 0

    def part(self) -> BrandPart:
        return replace(self.settings, logo_url=f"/brand/logo?v={self.logo_version}" if self.logo_type else "")


@dataclass(frozen=True)
class Resolved:
    """A workspace's brand as pages see it, and the merged part it came from (its colours)."""

    brand: Brand | None  # None: nothing of its own, the platform's brand applies
    part: BrandPart


@contextmanager
def catalogue():
    """A connection to read or write the catalogue, also from inside a tenant's transaction (a mail
    composed there): then as the serving role for the block, the tenant's again after."""
    with connection():
        if app_db.in_transaction() and current_tenant.get() is not None:
            with as_serving_role():
                yield
        else:
            yield


# -- reading --------------------------------------------------------------------------------------------

def own(tenant_id: int) -> OwnBrand | None:
    with catalogue():
        row = app_db.execute_sql(f"SELECT {', '.join(COLUMNS)} FROM public.workspace_brand WHERE tenant_id = %s",
                                 (tenant_id,)).fetchone()
    return OwnBrand(BrandPart(*row[:6]), row[6], row[7]) if row else None


def logo(tenant_id: int) -> tuple[bytes, str] | None:
    with catalogue():
        row = app_db.execute_sql("SELECT logo, logo_type FROM public.workspace_brand WHERE tenant_id = %s "
                                 "AND logo IS NOT NULL", (tenant_id,)).fetchone()
    return (bytes(row[0]), row[1]) if row else None


def shown_logo(tenant) -> tuple[bytes, str] | None:
    """The logo the workspace shows: its own, else the one ``smsgw_brand_default_logo`` gives (its reseller's)."""
    return logo(tenant.id) or _platform.registry.hook.smsgw_brand_default_logo(tenant=tenant)


def installed_themes() -> list[str]:
    folder = _platform.settings.themes_dir
    return sorted(p.name for p in folder.iterdir() if (p / "static" / "theme.css").is_file()) if folder.is_dir() else []


def resolve(tenant, default: Brand) -> Resolved:
    """The workspace's own settings, then each reseller default, then ``default``."""
    mine = own(tenant.id)
    parts = ([mine.part()] if mine else []) + [
        p for p in _platform.registry.hook.smsgw_brand_defaults(tenant=tenant) if isinstance(p, BrandPart)]
    part = merged(parts)
    if not any(getattr(part, name) for name in ("product_name", "colour_brand", "colour_text", "mail_sender_name",
                                                "support_email", "theme", "logo_url")):
        return Resolved(None, part)
    sheet = ""
    if part.colour_brand or part.colour_text:
        sheet = f"/brand/style.css?v={colours_digest(part.colour_brand, part.colour_text)}"
    name = part.product_name or default.product_name
    return Resolved(Brand(product_name=name, support_email=part.support_email or default.support_email,
                          theme=part.theme if part.theme in installed_themes() else "", logo_url=part.logo_url,
                          stylesheet_url=sheet,
                          mail_sender_name=part.mail_sender_name or part.product_name,
                          custom=bool(part.product_name or part.logo_url)), part)


def colours_digest(brand_colour: str, text_colour: str) -> str:
    """What a stylesheet's address carries, so a change of colours is a new address (cached a day)."""
    return hashlib.sha256(f"{brand_colour}{text_colour}".encode()).hexdigest()[:12]


def brand(tenant, default: Brand) -> Brand | None:
    """``smsgw_brand``: the workspace's brand, or ``None`` when nothing of it differs from the platform's
    (the kernel caches the answer: core.brand.BrandCache)."""
    return resolve(tenant, default).brand


def brand_changed(tenant_id: int | None) -> None:
    """Every process forgets the brand of ``tenant_id`` (``None``: of every workspace). A reseller
    addon calls this (or ``platform.brand_changed``) when the defaults it gives change."""
    _platform.brand_changed(tenant_id)


def editable(tenant) -> bool:
    """May the workspace's own Customer change its brand (``smsgw_brand_editable``; default yes)?"""
    answer = _platform.registry.hook.smsgw_brand_editable(tenant=tenant)
    return True if answer is None else bool(answer)


# -- writing --------------------------------------------------------------------------------------------

def check(form: dict[str, str]) -> tuple[dict[str, str], dict[str, tuple[str, dict]]]:
    """The settings to store from a submitted form, and the errors per field (``(msgid, args)``)."""
    values, errors = {}, {}
    for name in ("product_name", "mail_sender_name"):
        text = " ".join((form.get(name) or "").split())
        if len(text) > NAME_MAX:
            errors[name] = (N_("At most %(limit)s characters."), {"limit": NAME_MAX})
        elif _CONTROL.search(text) or (name == "mail_sender_name" and re.search(r"[<>\"@,;\\]", text)):
            errors[name] = (N_("Use letters, digits, spaces and simple punctuation only."), {})
        values[name] = text
    address = (form.get("support_email") or "").strip()
    if address:
        try:
            address = check_email(address)
        except TenantError:
            errors["support_email"] = (N_("Enter an e-mail address such as support@example.com, or leave it empty."), {})
    values["support_email"] = address
    theme = (form.get("theme") or "").strip()
    if theme and theme not in installed_themes():
        errors["theme"] = (N_("Choose a theme from the list."), {})
    values["theme"] = theme
    for name in ("colour_brand", "colour_text"):
        raw = (form.get(name) or "").strip()
        colour = colours.parse_hex(raw) if raw else ""
        if colour is None:
            errors[name] = (N_("Enter a colour as #rrggbb, e.g. #0b6e4f, or leave it empty."), {})
        values[name] = colour or ""
    if not errors and (values["colour_brand"] or values["colour_text"]):
        problem = contrast_problem(values["colour_brand"], values["colour_text"],
                                   values["theme"] or _platform.settings.theme)
        if problem:
            errors["colour_brand"] = problem
    return values, errors


def contrast_problem(brand_colour: str, text_colour: str, theme: str) -> tuple[str, dict] | None:
    """Why these colours are not readable in ``theme`` (WCAG AA, 4.5:1), or ``None``. A colour left
    empty is the theme's own."""
    variables = colours.theme_variables(_platform.settings.themes_dir, theme)
    brand_colour = brand_colour or variables.get("--brand", "#000000")
    text_colour = text_colour or variables.get("--brand-contrast", "#ffffff")
    background = variables.get("--bg", "#ffffff")
    on_brand = colours.contrast(brand_colour, text_colour)
    if on_brand < colours.AA_TEXT:
        return (N_("Text in %(text)s on %(brand)s has a contrast of %(ratio)s:1; at least 4.5:1 is needed to be "
                   "readable. Choose a darker or lighter colour."),
                {"text": text_colour, "brand": brand_colour, "ratio": f"{on_brand:.1f}"})
    as_link = colours.contrast(brand_colour, background)
    if as_link < colours.AA_TEXT:
        return (N_("Links in %(brand)s on the page background %(background)s have a contrast of %(ratio)s:1; at "
                   "least 4.5:1 is needed to be readable. Choose a darker or lighter colour."),
                {"brand": brand_colour, "background": background, "ratio": f"{as_link:.1f}"})
    return None


def save(tenant_id: int, values: dict[str, str]) -> None:
    columns = list(values)
    with connection(), app_db.atomic():
        app_db.execute_sql(
            f"INSERT INTO public.workspace_brand (tenant_id, {', '.join(columns)}) "
            f"VALUES (%s, {', '.join(['%s'] * len(columns))}) ON CONFLICT (tenant_id) DO UPDATE SET "
            + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns) + ", updated_at = now()",
            (tenant_id, *[values[c] for c in columns]))
    brand_changed(tenant_id)


def save_logo(tenant_id: int, new: Logo | None) -> None:
    """Store the checked logo (``None``: remove it); its address changes with each version."""
    with connection(), app_db.atomic():
        app_db.execute_sql(
            "INSERT INTO public.workspace_brand (tenant_id, logo, logo_type, logo_version) VALUES (%s, %s, %s, 1) "
            "ON CONFLICT (tenant_id) DO UPDATE SET logo = EXCLUDED.logo, logo_type = EXCLUDED.logo_type, "
            "logo_version = public.workspace_brand.logo_version + 1, updated_at = now()",
            (tenant_id, new.data if new else None, new.content_type if new else ""))
    brand_changed(tenant_id)


def stylesheet(part: BrandPart) -> str:
    """The brand's colours as the CSS variables every theme reads."""
    lines = []  # each value checked again: a reseller's defaults come from another addon
    for variable, value in (("--brand", part.colour_brand), ("--brand-contrast", part.colour_text)):
        colour = colours.parse_hex(value)
        if colour:
            lines.append(f"{variable}: {colour};")
    return ":root { " + " ".join(lines) + " }\n"
