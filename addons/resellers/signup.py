"""A reseller's own sign-up page, ``partners.<base-domain>/<reseller>/signup``: its customers sign up
under its brand (product name, logo, colours, theme; never the platform's name), and the new
workspace is the reseller's, on its chosen retail plan (whose addons it gets).

The page is the platform's sign-up flow (:class:`core.web.auth_pages.SignupHandler`: the same field
checks, the addons' checks and parts such as the privacy policy's, the same shared rate limits,
the same welcome link), with two differences: the reseller must have opened it (closed otherwise,
and always closed while the platform's sign-up is), and the workspace is made by
:func:`.service.create_workspace` (the reseller's limit, its brand).
"""

from __future__ import annotations

import logging

from addons.branding.parts import BrandPart
from core.brand import Brand
from core.db import app_db, connection
from core.permissions import PUBLIC
from core.web.auth_pages import SignupHandler

from . import brand, console, invoicing, service
from .service import Reseller

log = logging.getLogger(__name__)


def settings_of(reseller: Reseller) -> tuple[bool, str]:
    """``(open, plan code)`` of the reseller's sign-up page (``""``: no retail plan)."""
    with connection():
        row = app_db.execute_sql(
            "SELECT r.signup_enabled, coalesce(p.code, '') FROM public.reseller r "
            "LEFT JOIN public.reseller_plan p ON p.id = r.signup_plan_id AND p.reseller_id = r.id WHERE r.id = %s",
            (reseller.id,)).fetchone()
    return (bool(row[0]), row[1]) if row else (False, "")


def save_settings(reseller: Reseller, enabled: bool, code: str) -> None:
    """Open or close the page, and choose the plan new customers start on (one of its own or none)."""
    plan = invoicing.plan_by_code(reseller, code) if code else None
    with connection():
        app_db.execute_sql("UPDATE public.reseller SET signup_enabled = %s, signup_plan_id = %s WHERE id = %s",
                           (enabled, plan.id if plan else None, reseller.id))


def create(platform, reseller: Reseller, form: dict, password: str, pending: bool):
    """The new customer's workspace: the reseller's (its limit), then on its sign-up plan."""
    info = service.create_workspace(platform, reseller, form["slug"], form["company"], form["email"], password,
                                    verified=False, pending=pending)
    _enabled, code = settings_of(reseller)
    if code:
        failed = [f"{addon}: {error}" for addon, _on, error in invoicing.assign_plan(platform, reseller, info.slug, code)
                  if error]
        if failed:  # the workspace exists and is the reseller's: its console shows what to fix
            log.warning("sign-up %s: plan addons failed: %s", info.slug, "; ".join(failed))
    return info


def page_brand(reseller: Reseller, default: Brand, logo_url: str) -> Brand:
    """The brand of the reseller's public pages: its own settings, its company's name otherwise."""
    from addons.branding import service as branding

    fields, _may = brand.of_reseller(reseller.id)
    sheet = ""
    if fields["colour_brand"] or fields["colour_text"]:
        sheet = f"/{reseller.slug}/brand/style.css?v={branding.colours_digest(fields['colour_brand'], fields['colour_text'])}"
    name = fields["product_name"] or reseller.company

    return Brand(product_name=name, support_email=fields["support_email"] or default.support_email,
                 theme=fields["theme"] if fields["theme"] in branding.installed_themes() else "",
                 logo_url=logo_url, stylesheet_url=sheet, mail_sender_name=fields["mail_sender_name"] or name,
                 custom=True)


class ResellerSignupHandler(console.ResellerHandler, SignupHandler):
    """``/<reseller>/signup``: the platform's sign-up flow under the reseller's brand."""

    permissions = {"GET": PUBLIC, "POST": PUBLIC}

    async def prepare(self):
        await super().prepare()
        self.signup_open, _code = await self.run_db(settings_of, self.reseller)
        logo = f"{self.home}/brand/logo?v={self.logo_version}" if self.logo_version else ""
        self._brand = await self.run_db(page_brand, self.reseller, self.platform.brand_for(None), logo)
        self.signup_action = f"{self.home}/signup"

    async def prepare_user(self):
        pass  # a public page: nobody's console session is read here

    def signup_mode(self) -> str:
        return "closed" if not self.signup_open else super().signup_mode()

    async def create_workspace(self, form: dict, password: str, mode: str):
        return await self.run_db(create, self.platform, self.reseller, form, password, mode == "approval")


class StyleHandler(console.ResellerHandler):
    """``/<reseller>/brand/style.css``: the reseller's colours as CSS variables, for its public pages."""

    permissions = {"GET": PUBLIC}

    async def prepare_user(self):
        pass

    async def get(self, _reseller):
        from addons.branding import service as branding

        fields, _may = await self.run_db(brand.of_reseller, self.reseller.id)
        self.set_header("Content-Type", "text/css; charset=UTF-8")
        self.set_header("Cache-Control", "public, max-age=86400")  # its address carries a digest of the colours
        self.finish(branding.stylesheet(BrandPart(colour_brand=fields["colour_brand"], colour_text=fields["colour_text"])))


def routes() -> list[tuple]:
    return [(console.R + r"/signup", ResellerSignupHandler), (console.R + r"/brand/style\.css", StyleHandler)]
