"""The brand settings page (``/brand``), the logo and colours every page of the workspace loads,
the host names of its own (``/brand/domains``) and the TLS ``ask`` endpoint (``/tls/ask``)."""

from __future__ import annotations

from core.events import emit
from core.i18n import N_
from core.permissions import PUBLIC
from core.web.auth_pages import audit
from core.web.base import BaseHandler, PageHandler
from core.web.problem import Problem

from . import domains, logo, service

MANAGE = "branding:manage"
NOT_EDITABLE = N_("This workspace's brand is managed by the company that provides it; ask them to change it.")
# The logo as an image only: no script runs, no request leaves (an SVG opened on its own included).
LOGO_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
# The shipped themes by their names for people; another installed theme shows its folder's name.
THEME_LABELS = {"default": N_("Default"), "ocean": N_("Ocean (blue)"), "contrast": N_("Contrast (dark, high contrast)")}
FIELDS = ("product_name", "mail_sender_name", "support_email", "colour_brand", "colour_text", "theme")


class BrandPage(PageHandler):
    """``/brand``: the workspace's product name, mail sender, support address, colours and theme."""

    permission = MANAGE

    async def page(self, status: int = 200, form: dict | None = None, errors: dict | None = None,
                   section_error: dict | None = None):
        mine = await self.run_db(service.own, self.tenant.id) or service.OwnBrand()
        listed = await self.run_db(domains.of_workspace, self.tenant.id)
        editable = await self.run_db(service.editable, self.tenant)
        self.set_status(status)
        self.render("branding/brand.html", form=form or {f: getattr(mine.settings, f) for f in FIELDS}, errors=errors or {},
                    section_error=section_error or {}, has_logo=bool(mine.logo_type), domains=listed,
                    themes=await self.run_db(service.installed_themes), theme_labels=THEME_LABELS, editable=editable,
                    logo_limit=logo.MAX_BYTES // 1024, challenge=domains.CHALLENGE)

    async def get(self):
        await self.page()

    async def ensure_editable(self) -> None:
        if not await self.run_db(service.editable, self.tenant):
            raise Problem(403, "brand-not-editable", NOT_EDITABLE)

    async def post(self):
        await self.ensure_editable()
        form = {f: self.get_body_argument(f, "")[:300] for f in FIELDS}
        values, errors = await self.run_db(service.check, form)
        if errors:
            await self.page(422, form, errors)
            return
        await self.run_db(service.save, self.tenant.id, values)
        await self.record("branding.changed", **values)
        self.flash("success", N_("Saved."))
        self.redirect("/brand", status=303)

    async def record(self, action: str, **details) -> None:
        await self.run_db(emit, self.platform, audit(self, action, actor=self.principal.actor,
                                                     actor_name=self.principal.email, **details))


def send_logo(handler, found: tuple[bytes, str] | None) -> None:
    """Answer with a stored logo (``(data, content_type)``, checked when it was uploaded) as an image
    only, or 404. Also the reseller console's (addons.resellers)."""
    if found is None:
        raise Problem(404, "not-found", N_("This workspace has no logo."))
    data, content_type = found
    handler.set_header("Content-Type", content_type)
    handler.set_header("Content-Security-Policy", LOGO_CSP)
    handler.set_header("Content-Disposition", "inline; filename=logo." + ("svg" if "svg" in content_type else "png"))
    handler.set_header("Cross-Origin-Resource-Policy", "same-origin")
    handler.set_header("Cache-Control", "public, max-age=86400")  # its address changes with each upload
    handler.finish(data)


def uploaded_logo(handler) -> logo.Logo:
    """The ``logo`` file of a multipart form, checked (:func:`.logo.check`); :class:`.logo.LogoError` if refused."""
    uploads = handler.request.files.get("logo") or []
    upload = uploads[0] if uploads else None
    return logo.check(upload.body if upload else b"", upload.filename if upload else "")


class LogoHandler(BrandPage):
    """``GET /brand/logo``: the logo, for every visitor of the workspace (its sign-in page shows it);
    ``POST``: upload (``logo``) or remove (``action=remove``) it."""

    permissions = {"GET": PUBLIC, "POST": MANAGE}
    max_body_size = 2 * logo.MAX_BYTES  # a larger file is refused by logo.check, with its size named

    async def get(self):
        send_logo(self, await self.run_db(service.shown_logo, self.tenant))

    async def post(self):
        await self.ensure_editable()
        if self.get_body_argument("action", "") == "remove":
            await self.run_db(service.save_logo, self.tenant.id, None)
            await self.record("branding.logo_removed")
            self.flash("success", N_("The logo was removed."))
            self.redirect("/brand", status=303)
            return
        try:
            checked = uploaded_logo(self)
        except logo.LogoError as exc:
            await self.page(422, section_error={"logo": (exc.msgid, exc.args_)})
            return
        await self.run_db(service.save_logo, self.tenant.id, checked)
        await self.record("branding.logo_changed", content_type=checked.content_type, size=len(checked.data))
        self.flash("success", N_("The logo was saved."))
        self.redirect("/brand", status=303)


class StyleHandler(BaseHandler):
    """``GET /brand/style.css``: the brand's colours as CSS variables (no inline styles: the CSP)."""

    permission = PUBLIC

    async def prepare_user(self):
        pass  # the same file for every visitor

    async def get(self):
        resolved = await self.run_db(service.resolve, self.tenant, self.platform.brand_for(None))
        self.set_header("Content-Type", "text/css; charset=UTF-8")
        self.set_header("Cache-Control", "public, max-age=86400")  # its address carries a digest of the colours
        self.finish(service.stylesheet(resolved.part))


class DomainsHandler(BrandPage):
    """``POST /brand/domains``: add a host name (``action=add``), check its TXT record (``check``) or
    remove it (``remove``)."""

    permission = MANAGE

    async def get(self):
        self.redirect("/brand#domains")

    async def post(self):
        await self.ensure_editable()
        action = self.get_body_argument("action", "")
        host = self.get_body_argument("host", "")[:300]
        try:
            if action == "add":
                added = await self.run_db(domains.add, self.tenant.id, host, self.settings_.base_domain)
                await self.record("branding.domain_added", host=added.host)
                self.flash("success", N_("%(host)s was added. Publish its TXT record, then check it."), host=added.host)
            elif action == "check":
                resolver = domains.resolver_from(self.settings_)
                checked = await self.run_db(domains.verify, self.tenant.id, host, resolver)
                await self.run_db(self.platform.hosts_changed, checked.host)
                await self.record("branding.domain_verified", host=checked.host)
                self.flash("success", N_("%(host)s is verified: it now opens this workspace."), host=checked.host)
            elif action == "remove":
                if await self.run_db(domains.remove, self.tenant.id, host):
                    await self.run_db(self.platform.hosts_changed, host)
                    await self.record("branding.domain_removed", host=host)
                self.flash("success", N_("%(host)s was removed."), host=host)
            else:
                raise Problem(400, "bad-request", N_("Choose add, check or remove."))
        except domains.DomainError as exc:
            await self.page(422, section_error={"domains": (exc.msgid, exc.args_)}, form=None)
            return
        self.redirect("/brand#domains", status=303)


class TlsAskHandler(BaseHandler):
    """``GET /tls/ask?domain=<host>``: Caddy's on-demand TLS asks before it gets a certificate for a
    host: 200 for a verified host of an active workspace, 404 for every other. Answers at any host
    (the proxy asks by address) and reads nothing but ``domain``."""

    scope = "any"
    permission = PUBLIC

    async def prepare(self):
        pass  # no Host routing, no session: the proxy is the only caller

    async def get(self):
        host = self.get_query_argument("domain", "").strip().lower().rstrip(".")
        allowed = bool(host) and len(host) <= 253 and await self.run_db(domains.tls_allowed, host)
        self.set_status(200 if allowed else 404)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish("ok\n" if allowed else "unknown host\n")


ROUTES = [
    (r"/brand", BrandPage),
    (r"/brand/logo", LogoHandler),
    (r"/brand/style\.css", StyleHandler),
    (r"/brand/domains", DomainsHandler),
    (r"/tls/ask", TlsAskHandler),
]
