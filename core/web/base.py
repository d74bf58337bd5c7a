"""Base request handlers: tenant resolution, locale, templates, security headers, errors.

Every handler declares a ``scope``:

* ``"tenant"``: answers on ``<slug>.<base-domain>`` for an active tenant that
  has enabled the handler's addon (``addon``; ``None`` for core);
* ``"platform"``: answers on the base domain;
* ``"any"``: answers on both (health checks, static files).

Database work never runs on the IOLoop: use :meth:`run_db` / :meth:`in_tenant`.
"""

from __future__ import annotations

import json
import logging
import traceback

import tornado.web

from ..db import current_tenant, run_in_tenant, run_sync
from .problem import PROBLEM_CONTENT_TYPE, Problem

log = logging.getLogger(__name__)

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'")


class BaseHandler(tornado.web.RequestHandler):
    scope = "tenant"
    addon: str | None = None
    max_body_size: int | None = None  # defaults to settings.max_body_size

    def initialize(self, **kwargs):
        self.platform = self.application.platform
        self.settings_ = self.platform.settings
        self.tenant = None
        self.tenant_slug = None
        self.lang = self.settings_.default_language
        self.flash_messages: list = []

    # -- headers ---------------------------------------------------------------
    def set_default_headers(self):
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "strict-origin-when-cross-origin")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Cross-Origin-Opener-Policy", "same-origin")
        self.set_header("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if self.request.protocol == "https":
            self.set_header("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        self.clear_header("Server")

    # -- request resolution ------------------------------------------------------
    def host_slug(self) -> str | None:
        """The tenant slug named by the Host header, or ``None`` on the base domain."""
        host = self.request.host_name.lower().rstrip(".")
        base = self.settings_.base_domain
        if host.endswith("." + base):
            return host[: -len(base) - 1]
        return None

    def negotiate_language(self):
        self.lang = self.platform.catalogues.negotiate(
            self.get_cookie("lang"), self.request.headers.get("Accept-Language"))

    async def prepare(self):
        self.negotiate_language()
        limit = self.max_body_size or self.settings_.max_body_size
        length = self.request.headers.get("Content-Length")
        if (length and length.isdigit() and int(length) > limit) or len(self.request.body or b"") > limit:
            raise Problem(413, "body-too-large", f"The request body exceeds {limit} bytes; send less.")
        slug = self.host_slug()
        self.tenant_slug = slug
        if slug is not None:
            cache = self.platform.tenant_cache
            hit, tenant = cache.peek(slug)
            if not hit:
                tenant = await run_sync(cache.get, slug)
            if tenant is None:
                raise Problem(404, "tenant-not-found",
                              f"There is no workspace at {slug}.{self.settings_.base_domain}. "
                              "Check the address, or sign up for one.")
            if not tenant.is_active:
                raise Problem(403, "tenant-suspended",
                              f"The workspace {slug} is suspended. Its owner can contact support to restore it.")
            self.tenant = tenant
            current_tenant.set(tenant.ref)
            if self.scope == "platform":
                raise Problem(404, "not-found", "This page is on the main site, not on a workspace address.")
            if self.addon and self.addon not in tenant.enabled_addons:
                raise Problem(404, "not-found", "This page does not exist here.")
        elif self.scope == "tenant":
            raise Problem(404, "not-found",
                          "This page belongs to a workspace: open it at <your-workspace>."
                          f"{self.settings_.base_domain}.")
        await self.prepare_user()

    def check_xsrf_cookie(self):
        self.negotiate_language()  # runs before prepare(); the error page should speak the user's language
        try:
            super().check_xsrf_cookie()
        except tornado.web.HTTPError:
            raise Problem(403, "xsrf-failed",
                          "This form was not sent from our page or has expired. Reload the page and try again.")

    async def prepare_user(self):
        """Resolve the signed-in user; the identity layer overrides this."""

    # -- helpers -----------------------------------------------------------------
    async def run_db(self, fn, *args, **kwargs):
        return await run_sync(fn, *args, **kwargs)

    async def in_tenant(self, fn, *args, **kwargs):
        if self.tenant is None:
            raise Problem(404, "not-found", "This needs a workspace address.")
        return await run_in_tenant(self.tenant.ref, fn, *args, **kwargs)

    def gettext(self):
        return self.platform.catalogues.gettext_for(self.lang)

    def template_context(self) -> dict:
        _, ngettext = self.gettext()
        ctx = {
            "_": _, "gettext": _, "ngettext": ngettext, "lang": self.lang,
            "languages": self.platform.catalogues.languages, "tenant": self.tenant,
            "settings": self.settings_, "request": self.request, "xsrf_form_html": self.xsrf_form_html,
            "static_url": self.static_url, "platform_url": self.settings_.public_url(),
            "current_user": self.current_user, "flash_messages": self.flash_messages, "menu": [],
        }
        for _name, extra in self.platform.registry.call_each("smsgw_template_context", handler=self):
            ctx.update(extra)
        return ctx

    def render(self, template_name: str, **kwargs):
        theme = (self.tenant.theme if self.tenant else None) or self.settings_.theme
        ctx = self.template_context()
        ctx.update(kwargs)
        html = self.application.templates.render(template_name, theme=theme, **ctx)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.add_header("Vary", "Accept-Language, Cookie")
        self.finish(html)

    def static_url(self, path, include_host=None, **kwargs):
        return "/static/" + path.lstrip("/")

    # -- errors --------------------------------------------------------------------
    def wants_json(self) -> bool:
        return self.request.path.startswith("/api/") or "json" in self.request.headers.get("Accept", "")[:40]

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        problem = exc if isinstance(exc, Problem) else None
        if problem is None:
            if isinstance(exc, tornado.web.HTTPError):
                code = {404: "not-found", 405: "method-not-allowed", 403: "forbidden",
                        400: "bad-request"}.get(status_code, "error")
                detail = exc.log_message if exc.log_message and status_code < 500 else None
                problem = Problem(status_code, code, detail or self._reason)
            else:
                problem = Problem(500, "internal-error",
                                  "Something went wrong on our side. It has been logged; please try again.")
        for k, v in problem.headers.items():
            self.set_header(k, v)
        if self.wants_json():
            self.set_header("Content-Type", PROBLEM_CONTENT_TYPE)
            self.finish(json.dumps(problem.to_dict(self.request.path)))
        else:
            try:
                self.render("error.html", problem=problem)
            except Exception:
                log.exception("error page failed to render")
                self.set_header("Content-Type", "text/plain; charset=UTF-8")
                self.finish(f"{problem.status} {problem.title}: {problem.detail}\n")

    def send_error(self, status_code=500, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, Problem):
            status_code = exc.status
        super().send_error(status_code, **kwargs)

    def log_exception(self, typ, value, tb):
        if isinstance(value, Problem):
            return
        if isinstance(value, tornado.web.HTTPError):
            return super().log_exception(typ, value, tb)
        log.error("uncaught exception in %s %s\n%s", self.request.method, self.request.path,
                  "".join(traceback.format_exception(typ, value, tb)))


class PageHandler(BaseHandler):
    """HTML pages."""


class ApiHandler(BaseHandler):
    """JSON APIs: problem+json errors, JSON bodies, no XSRF (token-authenticated)."""

    def check_xsrf_cookie(self):
        # API clients authenticate with bearer tokens, not cookies; the identity
        # layer enforces XSRF for cookie-authenticated API calls.
        return None

    def wants_json(self) -> bool:
        return True

    def json_body(self) -> dict:
        ctype = self.request.headers.get("Content-Type", "")
        if "json" not in ctype:
            raise Problem(415, "unsupported-media-type", "Send the body as application/json.")
        try:
            body = json.loads(self.request.body or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise Problem(400, "invalid-json", f"The body is not valid JSON: {exc}.") from None
        if not isinstance(body, dict):
            raise Problem(400, "invalid-json", "The body must be a JSON object.")
        return body

    def write_json(self, data, status: int = 200):
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps(data, default=str))


class NotFoundHandler(BaseHandler):
    scope = "any"

    def check_xsrf_cookie(self):
        return None  # nothing is changed here; answer 404 whatever the method

    async def prepare(self):
        await super().prepare()
        raise Problem(404, "not-found", "There is no page at this address.")
