"""Base request handlers: tenant resolution, locale, templates, security headers, errors.

Every handler declares a ``scope``:

* ``"tenant"``: answers on ``<slug>.<base-domain>`` for an active tenant that
  has enabled the handler's addon (``addon``; ``None`` for core);
* ``"platform"``: answers on the base domain;
* ``"any"``: answers on both (health checks, static files);
* ``"host"``: answers only on ``<host_label>.<base-domain>``, a host of its own that is no
  workspace (an addon's console); no tenant is resolved there.

Database work never runs on the IOLoop: use :meth:`run_db` / :meth:`in_tenant`.

What the handlers rely on lives beside them: the host's tenant in :mod:`.hosts`, a bearer
token's principal and its cache in :mod:`.principals`, a JSON body's checks in :mod:`.jsonin`.
"""

from __future__ import annotations

import json
import logging
import time
import traceback

import tornado.web
from tornado import httputil

from .. import localtime, tokenformat
from ..bodyschema import invalid, request_schemas
from ..db import current_tenant, run_in_tenant, run_sync
from ..events import emit_with_work
from ..i18n import N_, language_name, say
from ..outage import database_outage, is_moving, is_unavailable
from ..permissions import PUBLIC, ROLE_LABELS, Principal, catalogue
from . import jsonin
from .jsonout import json_bytes
from .mediatype import is_json
from .params import is_digits
from .problem import PROBLEM_CONTENT_TYPE, Problem, Refusal, database_unavailable, said_in, tenant_moving
from .hosts import is_base_host, slug_for_custom_host, slug_for_host, tenant_by_slug
from .principals import cached_token_principal, load_token_principal
from .security_headers import security_headers

SESSION_COOKIE = "smsgw_session"
ADMIN_COOKIE = "smsgw_admin"
KNOWN_DEVICE_COOKIE = "smsgw_known"

log = logging.getLogger(__name__)




_date = [0, ""]


def http_date() -> str:
    """The HTTP date of this second (RFC 7231), formatted once per second."""
    now = int(time.time())
    if now != _date[0]:
        _date[1], _date[0] = httputil.format_timestamp(now), now
    return _date[1]

class BaseHandler(tornado.web.RequestHandler):
    scope = "tenant"
    addon: str | None = None
    host_label: str | None = None  # scope "host": the first label of the host it answers on
    # scope "host": also answers at other hosts (after the workspaces' routes); it must prove the
    # host itself (core.web.app.custom_host_routes)
    custom_hosts = False
    max_body_size: int | None = None  # defaults to settings.max_body_size
    # What a request needs, checked centrally in prepare(): a permission name
    # registered in core.permissions (by the kernel or an addon), PUBLIC or AUTHENTICATED; per method via
    # ``permissions = {"GET": ..., "POST": ...}``. Undeclared means refused.
    permission: str | None = None
    permissions: dict | None = None
    # API handlers may also answer on the base domain when a token names the tenant.
    token_tenant_ok = False

    def initialize(self, **kwargs):
        self.platform = self.application.platform
        self.settings_ = self.platform.settings
        self.tenant = None
        self.tenant_slug = None
        self.principal: Principal | None = None
        self._lang = None
        self.flash_messages: list = []
        self.custom_host = False  # reached at a workspace's own host name (sms.acme.com)
        self._brand = None

    # -- headers ---------------------------------------------------------------
    def clear(self):
        """Tornado's ``clear()``, with the Date header written once a second rather than per
        response (``email.utils.formatdate`` was 1-2 % of a phone report's CPU) and no Server header."""
        self._headers = httputil.HTTPHeaders({"Content-Type": "text/html; charset=UTF-8", "Date": http_date()})
        self.set_default_headers()
        self._write_buffer = []
        self._status_code = 200
        self._reason = httputil.responses[200]

    def set_default_headers(self):
        # Every response (a phone's report as much as a page): the constant pairs go straight
        # into the headers, without set_header's per-value checks (they are ours, checked once).
        self._headers.update(security_headers(self.request.protocol == "https"))
        self.clear_header("Server")

    # -- request resolution ------------------------------------------------------
    def host_slug(self) -> str | None:
        """The tenant slug named by the Host header, or ``None`` on the base domain.

        A host that is neither (an IP address, someone else's domain pointed at us) is refused:
        serving the main site there would let any name pose as the platform. (``/health/*`` skip
        this: load balancers probe them by address.)"""
        slug = slug_for_host(self.request.host_name, self.settings_.base_domain)
        if slug is None and not is_base_host(self.request.host_name, self.settings_.base_domain):
            raise self.unknown_host()
        return slug

    async def route_host(self) -> str | None:
        """:meth:`host_slug`, and a workspace's own host name (``smsgw_tenant_for_host``, cached)."""
        name = self.request.host_name
        slug = slug_for_host(name, self.settings_.base_domain)
        if slug is None and not is_base_host(name, self.settings_.base_domain):
            slug = await slug_for_custom_host(self.platform, name)
            if slug is None:
                raise self.unknown_host()
            self.custom_host = True
        return slug

    def unknown_host(self) -> Problem:
        return Problem(400, "unknown-host",
                          N_("This server answers only at %(base_domain)s and its workspaces' "
                             "addresses (<workspace>.%(base_domain)s), not at %(host_name)s."),
                             args={"base_domain": self.settings_.base_domain, "host_name": repr(self.request.host_name[:100])})

    @property
    def lang(self) -> str:
        """The language of this request's pages and messages, negotiated when first needed
        (an API call that answers only JSON never pays for it)."""
        if self._lang is None:
            # ?lang=xx previews a page in a language without keeping it (translators check their
            # work this way); then the cookie of the language menu; then the signed-in person's own
            # setting and their workspace's default language; then the browser's Accept-Language.
            chosen = self.get_query_argument("lang", None) if "lang=" in self.request.query else None
            own = getattr(self.principal, "language", "") if self.principal is not None else ""
            workspace = self.tenant.language if self.tenant is not None else ""
            self._lang = self.platform.catalogues.negotiate(
                chosen if self.platform.catalogues.known(chosen) else self.get_cookie("lang"),
                self.request.headers.get("Accept-Language"), own, workspace)
        return self._lang

    @property
    def text_direction(self) -> str:
        return self.platform.catalogues.direction(self.lang)

    async def prepare(self):
        limit = self.max_body_size or self.settings_.max_body_size
        length = self.request.headers.get("Content-Length")
        if (is_digits(length) and int(length) > limit) or len(self.request.body or b"") > limit:
            raise Problem(413, "body-too-large", N_("The request body exceeds %(limit)s bytes; send "
                                                    "less."), args={"limit": limit})
        slug = None if self.scope == "host" else await self.route_host()
        self.tenant_slug = slug
        if slug is not None:
            tenant = await tenant_by_slug(self.platform, slug)
            if tenant is None:
                raise Problem(404, "tenant-not-found",
                              N_("There is no workspace at %(slug)s.%(base_domain)s. Check the "
                                 "address, or sign up for one."),
                                 args={"slug": slug, "base_domain": self.settings_.base_domain})
            if tenant.is_pending:
                raise Problem(403, "tenant-pending",
                              N_("The workspace %(slug)s is waiting for the platform operator's "
                                 "approval. Its owner gets an e-mail as soon as it is approved."), title=N_("Waiting for approval"),
                                 args={"slug": slug})
            if tenant.status == "moving":
                raise tenant_moving(slug)
            if not tenant.is_active:
                raise Problem(403, "tenant-suspended",
                              N_("The workspace %(slug)s is suspended. Its owner can contact support "
                                 "to restore it."), args={"slug": slug})
            self._enter_tenant(tenant)
            if not isinstance(self, ApiHandler) and self.platform.brand_cache.peek(tenant) is None:
                # A page (or its error page) shows the workspace's brand: a miss asks the addons
                # here, off the IOLoop; rendering then finds it cached. APIs never pay for it.
                self._brand = await run_sync(self.platform.brand_for, tenant)
            if self.scope == "platform":
                raise Problem(404, "not-found", N_("This page is on the main site, not on a "
                                                   "workspace address."))
        elif self.scope == "tenant" and not (self.token_tenant_ok and self.request.headers.get("Authorization")):
            raise Problem(404, "not-found",
                          N_("This page belongs to a workspace: open it at "
                             "<your-workspace>.%(base_domain)s."), args={"base_domain": self.settings_.base_domain})
        await self.prepare_user()
        if self.scope == "tenant" and self.tenant is None:
            raise Problem(401, "unauthorized", N_("Send a token that names your workspace."),
                          headers={"WWW-Authenticate": "Bearer"})
        self.check_permission()
        if self.tenant is not None:  # addons' per-request limits (e.g. a plan's API rate), from memory
            self.platform.registry.hook.smsgw_request_check(tenant=self.tenant, handler=self)

    def _enter_tenant(self, tenant):
        self.tenant = tenant
        current_tenant.set(tenant.ref)
        if self.addon and self.addon not in tenant.enabled_addons:
            raise Problem(404, "not-found", N_("This page does not exist here."))

    # -- authentication -------------------------------------------------------------
    def get_current_user(self):
        return self.principal

    def required_permission(self) -> str | None:
        if self.permissions is not None:
            return self.permissions.get(self.request.method)
        return self.permission

    def check_permission(self) -> None:
        """The one permission check every handler goes through."""
        required = self.required_permission()
        if required is None:
            log.error("%s declares no permission for %s: refused", type(self).__name__, self.request.method)
            raise Problem(403, "forbidden", N_("This action is not available."))
        if required == PUBLIC:
            return
        if self.principal is None:
            self.unauthenticated()
        if self.principal.tenant is not None and self.tenant is not None and self.principal.tenant != self.tenant.slug:
            raise Problem(403, "forbidden", N_("These credentials belong to another workspace."))
        if not self.principal.can(required):
            raise Problem(403, "forbidden",
                          N_("Your role does not allow this. Ask the account owner if you need it."))
        if required in catalogue().verified_only and self.tenant is not None and not self.tenant.verified:
            who = self.principal.email if self.principal.is_customer and self.principal.email else "the owner's address"
            raise Problem(403, "workspace-unverified",
                          N_("Confirm your e-mail address first: we sent a link to %(who)s; resend "
                             "it from %(url)s/ (the notice on the overview page). Until then this "
                             "workspace cannot send messages, invite people or create API tokens."),
                          title=N_("Confirm your e-mail address first"),
                          args={"who": who, "url": self.settings_.public_url(self.tenant.slug)})

    def unauthenticated(self):
        raise Problem(401, "unauthorized", N_("Sign in, or send an API token as 'Authorization: "
                                              "Bearer <token>'."),
                      headers={"WWW-Authenticate": "Bearer"})

    def session_cookie_kwargs(self) -> dict:
        return {"httponly": True, "samesite": "Lax", "secure": self.request.protocol == "https", "path": "/"}

    async def prepare_user(self):
        """Resolve who is calling: a bearer token, a tenant session, or an admin session."""
        auth = self.request.headers.get("Authorization")
        if auth:
            self.principal = await self.principal_from_authorization(auth)
            return
        if self.tenant is not None:
            sid = self.get_secure_cookie(SESSION_COOKIE, max_age_days=14)
            if sid:
                from ..identity import session_user, user_principal

                found = await self.in_tenant(session_user, sid.decode())
                if found:
                    session, user = found
                    self.principal = user_principal(user, self.tenant.slug, "session", session.id)
        else:
            sid = self.get_secure_cookie(ADMIN_COOKIE, max_age_days=1)
            if sid:
                from ..adminauth import admin_session_principal

                self.principal = await self.run_db(admin_session_principal, sid.decode())

    async def principal_from_authorization(self, header: str) -> Principal:
        scheme, _, credential = header.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            return await self.principal_from_other_scheme(scheme, credential)
        if credential.count(".") == 2:
            return await self._principal_from_jwt(credential)
        parsed = tokenformat.parse(credential)
        if parsed is None:
            raise Problem(401, "invalid-token",
                          N_("The token is malformed or mistyped (its checksum does not match). Copy "
                             "it again."),
                          headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        kind, slug = parsed
        tenant = await self._tenant_for_token(slug)
        principal = cached_token_principal(self.platform, tenant, credential)
        if principal is None:
            principal = await load_token_principal(self.platform, tenant, kind, credential)
        if principal is None:
            raise Problem(401, "invalid-token", N_("The token is unknown or was revoked."),
                          headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return principal

    async def principal_from_other_scheme(self, scheme: str, credential: str) -> Principal:
        raise Problem(401, "unauthorized", N_("Use 'Authorization: Bearer <token>'."),
                      headers={"WWW-Authenticate": "Bearer"})

    async def _tenant_for_token(self, slug: str):
        if self.tenant is not None:
            if slug != self.tenant.slug:
                raise Problem(401, "invalid-token", N_("This token belongs to another workspace."),
                              headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
            return self.tenant
        tenant = await tenant_by_slug(self.platform, slug)
        if tenant is None:
            raise Problem(401, "invalid-token", N_("The token is unknown or was revoked."),
                          headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if tenant.status == "moving":
            raise tenant_moving(slug)
        if not tenant.is_active:
            raise Problem(403, "tenant-suspended", N_("The workspace %(slug)s is suspended."), args={"slug": slug})
        self._enter_tenant(tenant)
        return tenant

    async def _principal_from_jwt(self, token: str) -> Principal:
        from ..jwtkeys import TokenError

        try:
            claims = await self.run_db(self.platform.keyring.verify_access, token)
        except TokenError as exc:
            raise Problem.refused(401, "invalid-token", exc,
                          headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
        tenant = await self._tenant_for_token(str(claims.get("tenant") or ""))
        from ..identity import AuthError, jwt_principal

        def load():
            if self._access_token_revoked(tenant, claims):
                raise AuthError(N_("This access token was revoked; get a new one."))
            return jwt_principal(claims, tenant.slug)

        try:
            return await self.in_tenant(load)
        except AuthError as exc:
            raise Problem.refused(401, "invalid-token", exc,
                          headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None

    def _access_token_revoked(self, tenant, claims: dict) -> bool:
        """Hook point, inside the tenant's transaction: has an addon revoked this access token?

        Addons implement ``smsgw_access_token_revoked(tenant, claims)``; without any, no token
        is revoked early.
        """
        return any(self.platform.registry.hook.smsgw_access_token_revoked(tenant=tenant, claims=claims))

    def check_xsrf_cookie(self):
        try:
            super().check_xsrf_cookie()
        except tornado.web.HTTPError:
            raise Problem(403, "xsrf-failed",
                          N_("This form was not sent from our page or has expired. Reload the page "
                             "and try again."))

    # -- helpers -----------------------------------------------------------------
    async def run_db(self, fn, *args, **kwargs):
        return await run_sync(fn, *args, **kwargs)

    async def in_tenant(self, fn, *args, audit=None, **kwargs):
        """``fn(*args, **kwargs)`` in a transaction of this request's tenant. With ``audit`` (an
        :class:`~core.events.AuditEvent`, or a function of ``fn``'s result that gives one), the
        event is recorded in the same transaction: the work and its record commit together, so an
        answer is never an error for work that was done."""
        if self.tenant is None:
            raise Problem(404, "not-found", N_("This needs a workspace address."))
        if audit is None:
            return await run_in_tenant(self.tenant.ref, fn, *args, **kwargs)
        platform = self.platform

        def work_and_record():
            result = fn(*args, **kwargs)
            emit_with_work(platform, audit(result) if callable(audit) else audit)
            return result

        return await run_in_tenant(self.tenant.ref, work_and_record)

    def gettext(self):
        return self.platform.catalogues.gettext_for(self.lang)

    def refusal_text(self, exc: Exception) -> str:
        """A refusal's text in the reader's language (a :class:`Refusal`'s msgid and arguments); another
        exception's text as it is."""
        if isinstance(exc, Refusal):
            gettext = self.gettext()[0]
            return gettext(exc.msgid, **said_in(gettext, exc.msg_args))
        return str(exc)

    @property
    def brand(self):
        """The :class:`core.brand.Brand` this request's pages show (the workspace's, else the platform's)."""
        if self._brand is None:
            self._brand = self.platform.brand_for(self.tenant)
        return self._brand

    def _reader_zone(self) -> str:
        return self.principal.time_zone if self.principal else ""

    def template_context(self) -> dict:
        _, ngettext = self.gettext()
        ctx = {
            "_": _, "gettext": _, "ngettext": ngettext, "lang": self.lang, "text_direction": self.text_direction,
            "fmt": self.platform.catalogues.formats(self.lang), "language_name": language_name,
            "say": lambda text: say(_, text, moment=lambda m: localtime.local_text(m.at, self._reader_zone(), m.fmt)),
            "error_text": lambda e: _(e.get("msgid") or e.get("message", ""), **said_in(_, e.get("args"))),
            "languages": self.platform.catalogues.languages, "tenant": self.tenant,
            "settings": self.settings_, "request": self.request, "xsrf_form_html": self.xsrf_form_html,
            "static_url": self.static_url, "platform_url": self.settings_.public_url(),
            "current_user": self.principal, "flash_messages": self.flash_messages, "menu": self.menu(),
            # Times in the reader's zone, UTC on hover (core.localtime); roles by their names for people.
            "when": localtime.formatter(self.principal.time_zone if self.principal else ""),
            "reader_zone": localtime.zone_name_or_utc(self.principal.time_zone if self.principal else ""),
            "role_label": lambda role: _(ROLE_LABELS.get(role, role.capitalize())),
            "brand": self.brand, "brand_name": self.brand.product_name,
        }
        for _name, extra in self.platform.registry.call_each("smsgw_template_context", handler=self):
            for key, value in extra.items():  # a list (a slot: page_notices, footer_links ...) is joined
                ctx[key] = ctx[key] + value if isinstance(value, list) and isinstance(ctx.get(key), list) else value
        return ctx

    def menu(self) -> list:
        """Dashboard navigation from core and every enabled addon, filtered by permission, in groups
        (:func:`core.web.menu.grouped`): ``[{"label": group label or "", "items": [...]}]``."""
        if self.tenant is None or self.principal is None or self.principal.tenant != self.tenant.slug:
            return []
        from .menu import ACCOUNT, SETTINGS, MenuItem, grouped

        from ..i18n import N_

        items = [MenuItem(N_("Overview"), "/", "dashboard:view", 0),
                 MenuItem(N_("Team"), "/team", "users:read", 80, SETTINGS),
                 MenuItem(N_("API tokens"), "/tokens", "tokens:manage", 85, SETTINGS),
                 MenuItem(N_("Workspace"), "/workspace", "settings:write", 75, SETTINGS),
                 MenuItem(N_("Account"), "/account", "profile:edit", 90, ACCOUNT)]
        for _addon, entries in self.platform.registry.call_each("smsgw_menu_items", tenant=self.tenant,
                                                                user=self.principal):
            items.extend(entries)
        allowed = [item for item in items if self.principal.can(item.permission)]
        # The current page's entry: the longest address the path is (or is below), so /account/privacy
        # marks Privacy, not Account too.
        path = self.request.path
        matches = [i.url for i in allowed if path == i.url or (i.url != "/" and path.startswith(i.url.rstrip("/") + "/"))]
        current = max(matches, key=len, default=None)
        return [{"label": group.label if group else "",
                 "items": [{"label": i.label, "url": i.url, "active": i.url == current} for i in entries]}
                for group, entries in grouped(allowed)]

    def render(self, template_name: str, **kwargs):
        if hasattr(self, "pop_flash"):
            self.pop_flash()
        theme = self.brand.theme or (self.tenant.theme if self.tenant else None) or self.settings_.theme
        ctx = self.template_context()
        ctx.update(kwargs)
        html = self.application.templates.render(template_name, theme=theme, **ctx)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.add_header("Vary", "Accept-Language, Cookie")
        self.finish(html)

    def static_url(self, path, include_host=None, **kwargs):
        return "/static/" + path.lstrip("/")

    # -- arguments -----------------------------------------------------------------
    def decode_argument(self, value: bytes, name: str | None = None) -> str:
        """Arguments as text; a path argument (``name`` is ``None``) with a NUL is refused (404) before any
        handler sees it: PostgreSQL cannot store a NUL (a lookup with one failed as a 500) and nothing
        exists at such an address. Query and form arguments need no check: Tornado replaces their
        control characters."""
        text = super().decode_argument(value, name)
        if name is None and "\x00" in text:
            raise Problem(404, "not-found", N_("There is nothing at this address: it holds a NUL "
                                               "character."))
        return text

    # -- errors --------------------------------------------------------------------
    def wants_json(self) -> bool:
        return self.request.path.startswith("/api/") or "json" in self.request.headers.get("Accept", "")[:40]

    def problem_for_error(self, status_code, **kwargs) -> Problem:
        """The :class:`Problem` that ``write_error`` answers with: the one raised, or one for a
        Tornado ``HTTPError`` or an unexpected exception."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, Problem):
            return exc
        if isinstance(exc, tornado.web.HTTPError):
            code = {404: "not-found", 405: "method-not-allowed", 403: "forbidden",
                    400: "bad-request"}.get(status_code, "error")
            detail = exc.log_message if exc.log_message and status_code < 500 else None
            return Problem(status_code, code, detail or self._reason)
        if is_moving(exc):
            return tenant_moving(self.tenant_slug or "")
        if is_unavailable(exc):
            return database_unavailable()
        return Problem(500, "internal-error", N_("Something went wrong on our side. It has been "
                                                 "logged; please try again."))

    def write_error(self, status_code, **kwargs):
        problem = self.problem_for_error(status_code, **kwargs)
        for k, v in problem.headers.items():
            self.set_header(k, v)
        if self.wants_json():
            # title and detail in the caller's language (Accept-Language, or the language cookie of a
            # browser's own calls); type and code stay the same in every language.
            self.set_header("Content-Type", PROBLEM_CONTENT_TYPE)
            self.set_header("Content-Language", self.lang)
            self.add_header("Vary", "Accept-Language")
            self.finish(json.dumps(problem.to_dict(self.request.path, self.gettext()[0])))
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
        elif is_unavailable(exc):
            status_code = 503
        super().send_error(status_code, **kwargs)

    def log_exception(self, typ, value, tb):
        if isinstance(value, Problem) or is_moving(value):
            return
        if is_unavailable(value):
            database_outage.failed(value)  # one line per outage, not a traceback per request
            return
        if isinstance(value, tornado.web.HTTPError):
            return super().log_exception(typ, value, tb)
        log.error("uncaught exception in %s %s\n%s", self.request.method, self.request.path,
                  "".join(traceback.format_exception(typ, value, tb)))


class PageHandler(BaseHandler):
    """HTML pages: unauthenticated visitors are sent to the sign-in page."""

    login_path = "/login"

    def unauthenticated(self):
        if self.request.method in ("GET", "HEAD"):
            from urllib.parse import urlencode

            self.redirect(f"{self.login_path}?{urlencode({'next': self.request.uri})}")
            raise tornado.web.Finish()
        super().unauthenticated()

    def confirmed(self, question: str, button: str, back: str, detail: str = "") -> bool:
        """Whether this POST was confirmed. If not, the answer is a page asking ``question`` (which
        names the object: what cannot be undone is never done by one slip of a click) with the same
        form once more and ``confirmed=1``; the caller returns without changing anything.

        :param question: translated, naming the object ("Revoke the API token “CRM”?").
        :param button: the translated label of the button that does it.
        :param back: where *Cancel* leads.
        :param detail: a translated sentence on what follows.
        """
        if self.get_body_argument("confirmed", "") == "1":
            return True
        fields = [(name, value) for name in self.request.body_arguments if name not in ("_xsrf", "confirmed")
                  for value in self.get_body_arguments(name)]
        self.set_header("Cache-Control", "no-store")
        self.render("confirm.html", question=question, button=button, back=back, detail=detail,
                    action=self.request.path, fields=fields)
        return False

    def show_once(self, name: str, value: str, path: str) -> None:
        """Keep a just-made secret (a new token) for the next GET of ``path`` only, which shows it
        with :meth:`take_shown_once`: the POST that made it answers with a redirect, so reloading
        the page that shows it never makes a second one (post/redirect/get). A signed cookie for
        that path alone, HttpOnly and SameSite=Strict, gone after one read or five minutes."""
        self.set_signed_cookie(f"smsgw_once_{name}", value, path=path, expires=time.time() + 300,
                               httponly=True, samesite="Strict", secure=self.request.protocol == "https")

    def take_shown_once(self, name: str, path: str) -> str | None:
        """The secret :meth:`show_once` kept for this page, once; ``None`` after that."""
        raw = self.get_signed_cookie(f"smsgw_once_{name}", max_age_days=300 / 86400)
        if raw is None:
            return None
        self.clear_cookie(f"smsgw_once_{name}", path=path)
        self.set_header("Cache-Control", "no-store")
        return raw.decode()

    def flash(self, kind: str, message: str, **args) -> None:
        """Show ``message`` on the next page this browser loads, in that page's language:
        ``message`` is the English message id (marked with ``N_()``), ``args`` its ``%(name)s`` values."""
        self.set_signed_cookie("smsgw_flash", json.dumps([kind, message, args]), expires_days=None,
                               httponly=True, samesite="Lax", secure=self.request.protocol == "https")

    def pop_flash(self) -> None:
        raw = self.get_signed_cookie("smsgw_flash", max_age_days=1)
        if raw:
            self.clear_cookie("smsgw_flash")
            try:
                kind, message, *rest = json.loads(raw)
                args = rest[0] if rest and isinstance(rest[0], dict) else {}
                self.flash_messages.append((kind, self.gettext()[0](message, **args)))
            except (ValueError, TypeError, KeyError):
                pass


class ApiHandler(BaseHandler):
    """JSON APIs: problem+json errors, JSON bodies.

    Bearer-token calls need no XSRF token (no ambient credential). Calls that
    ride on a browser session cookie must send ``X-XSRFToken`` for anything
    but GET/HEAD/OPTIONS.
    """

    token_tenant_ok = True
    # HTTP method → the operationId whose published request-body schema :meth:`json_body` checks
    # (:mod:`core.bodyschema`); the refusal says ``invalid_body_detail``. ``batch_field``: the
    # top-level list of a batch endpoint; more items than its schema allows is a 413.
    body_schemas: dict[str, str] = {}
    invalid_body_detail = N_("Some fields are invalid; nothing was changed.")
    batch_field: str | None = None

    def check_xsrf_cookie(self):
        return None  # decided after authentication, in check_permission()

    def compute_etag(self):
        return None  # API answers change with every call: hashing each one for an ETag is wasted work

    def check_permission(self) -> None:
        if (self.principal is not None and self.principal.via == "session"
                and self.request.method not in ("GET", "HEAD", "OPTIONS")):
            BaseHandler.check_xsrf_cookie(self)
        super().check_permission()

    def wants_json(self) -> bool:
        return True

    def json_body(self) -> dict:
        ctype = self.request.headers.get("Content-Type", "")
        if not is_json(ctype):
            raise Problem(415, "unsupported-media-type", N_("Send the body as application/json."))
        body = jsonin.parse_object(self.request.body)
        bad = jsonin.unstorable(body, self.request.body)
        if bad:
            raise Problem(400, "invalid-characters",
                          N_("The body holds text PostgreSQL cannot store (%(bad)s); remove NUL "
                             "characters and unpaired surrogates."), args={"bad": bad})
        return self.check_body(body)

    def check_body(self, body: dict) -> dict:
        """``body`` if the published schema of this method's operation (``body_schemas``) accepts it."""
        operation = self.body_schemas.get(self.request.method)
        if operation is not None:
            errors = request_schemas(self.platform).operation(operation).errors(body)
            if errors:
                raise self.invalid_body(errors)
        return body

    def invalid_body(self, errors: list[dict]) -> Problem:
        """The answer to a body its operation's schema refuses (``errors`` from :mod:`core.bodyschema`)."""
        for e in errors:
            if e["keyword"] == "maxItems" and e["path"] == (self.batch_field,):
                return Problem(413, "batch-too-large", N_("Send at most %(limit)s %(batch_field)s "
                                                          "per request."),
                                                          args={"limit": e['limit'], "batch_field": self.batch_field})
        return invalid(errors, self.invalid_body_detail)

    def write_json(self, data, status: int = 200):
        self.set_status(status)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json_bytes(data))


class NotFoundHandler(BaseHandler):
    scope = "any"
    permission = PUBLIC

    def check_xsrf_cookie(self):
        return None  # nothing is changed here; answer 404 whatever the method

    async def prepare(self):
        await super().prepare()
        raise Problem(404, "not-found", N_("There is no page at this address."))
