"""The Tornado application factory: core routes + every addon's routes, by host."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import tornado.web
from tornado.httputil import split_host_and_port
from tornado.routing import AnyMatches, HostMatches, Matcher, Rule

from .. import metrics
from ..bodyschema import request_schemas
from ..permissions import AUTHENTICATED, PUBLIC, RegistrationError
from ..templating import Templates
from . import access_log, account_pages, admin_pages, auth_api, auth_pages, docs, pages, routing
from .base import BaseHandler, NotFoundHandler
from .principals import prefetch_principal

log = logging.getLogger(__name__)

CORE_STATIC = Path(__file__).resolve().parent.parent / "static"


def check_route_permissions(routes, access) -> None:
    """Refuse to start when a route requires a permission nobody registered: nobody could call it.

    ``routes``: ``(pattern, handler, kwargs, addon)``; ``access``: the :class:`AccessCatalogue`.
    """
    for pattern, handler, _kwargs, addon in routes:
        declared = handler.permissions.values() if handler.permissions is not None else [handler.permission]
        for name in declared:
            if name is not None and name not in (PUBLIC, AUTHENTICATED) and name not in access.permissions:
                raise RegistrationError(
                    f"{'the kernel' if addon is None else f'addon {addon!r}'}: {handler.__name__} at {pattern} "
                    f"requires {name!r}, which neither the kernel nor an addon registered (smsgw_permissions)")


class StaticHandler(tornado.web.StaticFileHandler):
    """Static files with our security headers, on every host."""

    def set_default_headers(self):
        BaseHandler.set_default_headers(self)

    def set_extra_headers(self, path):
        self.set_header("Cache-Control", "public, max-age=3600")


def core_routes():
    return [
        (r"/health/live", pages.LiveHandler),
        (r"/health/ready", pages.ReadyHandler),
        (r"/lang", pages.LanguageHandler),
        (r"/\.well-known/jwks\.json", auth_api.JwksHandler),
        (r"/", pages.PlatformHomeHandler),
        (r"/signup", auth_pages.SignupHandler),
        (r"/find-workspace", auth_pages.FindWorkspaceHandler),
        (r"/", account_pages.DashboardHandler),
        (r"/login", auth_pages.LoginHandler),
        (r"/welcome", auth_pages.WelcomeHandler),
        (r"/logout", auth_pages.LogoutHandler),
        (r"/verify-email", auth_pages.VerifyEmailHandler),
        (r"/verify-email/resend", auth_pages.ResendVerificationHandler),
        (r"/forgot-password", auth_pages.ForgotPasswordHandler),
        (r"/reset-password", auth_pages.ResetPasswordHandler),
        (r"/accept-invite", auth_pages.AcceptInviteHandler),
        (r"/account", account_pages.ProfileHandler),
        (r"/team", account_pages.TeamHandler),
        (r"/tokens", account_pages.TokensHandler),
        (r"/workspace", account_pages.WorkspaceHandler),
        (r"/confirm-email", account_pages.ConfirmEmailHandler),
        (r"/undo-email-change", account_pages.UndoEmailChangeHandler),
        (r"/api/v1/auth/token", auth_api.TokenHandler),
        (r"/api/v1/auth/refresh", auth_api.RefreshHandler),
        (r"/api/v1/auth/logout", auth_api.RevokeHandler),
        (r"/api/v1/me", auth_api.MeHandler),
        (r"/api/openapi\.json", docs.OpenApiHandler),
        (r"/api/docs", docs.ApiDocsHandler),
        (r"/admin/login", admin_pages.AdminLoginHandler),
        (r"/admin/logout", admin_pages.AdminLogoutHandler),
        (r"/admin", admin_pages.AdminHomeHandler),
        (r"/admin/tenants/([a-z0-9-]{1,40})", admin_pages.AdminTenantHandler),
        (r"/admin/tenants/([a-z0-9-]{1,40})/data/([a-z_]{1,40})", admin_pages.AdminTenantDataHandler),
    ]


class Application(tornado.web.Application):
    def http_server(self, idle_timeout: float = 75.0, body_timeout: float = 60.0,
                    **kwargs) -> "tornado.httpserver.HTTPServer":
        """The ``HTTPServer`` for this application: behind the detaching delegate (``.delegate``),
        with token prefetch, admission and idle-connection timing (see :mod:`core.web.detach`,
        :mod:`core.web.admission`, :mod:`core.web.idle`)."""
        import tornado.httpserver

        from .admission import Admission
        from .detach import DetachingDelegate
        from .idle import IdleConnections

        delegate = DetachingDelegate(self, prefetch=self.prefetch,
                                     admission=Admission(max(4, self.platform.settings.db_pool_size)),
                                     idle=IdleConnections(idle_timeout, body_timeout))
        server = tornado.httpserver.HTTPServer(delegate, idle_connection_timeout=idle_timeout, **kwargs)
        # The delegate times the wait for each request head and body (one sweep for all
        # connections); Tornado's own timers would cost every idle connection a timer and its
        # closures, and every body a timeout future.
        server.conn_params.header_timeout = None
        server.conn_params.body_timeout = None
        server.delegate = delegate
        return server

    def find_handler(self, request, **kwargs):
        # SMSGW_HTTPS=1: people reach us over HTTPS only, so every request is one, whatever a proxy's
        # X-Forwarded-Proto says (or leaves out). Everything that asks request.protocol then agrees:
        # Secure cookies, HSTS (also on detached answers), absolute URLs.
        if self.https:
            request.protocol = "https"
        return super().find_handler(request, **kwargs)

    def prefetch(self, headers):
        """For :class:`core.web.detach.DetachingDelegate`: warm the principal cache for a bearer
        token before the request's handler exists."""
        return prefetch_principal(self.platform, headers.get("Authorization"), headers.get("Host"))

    def __init__(self, platform):
        self.platform = platform
        settings = platform.settings
        registry = platform.registry
        routes = [(pattern, handler, {}, None) for pattern, handler in core_routes()]
        for addon, entries in registry.call_each("smsgw_routes", settings=settings):
            for entry in entries:
                pattern, handler, *rest = entry
                kwargs = rest[0] if rest else {}
                if handler.addon is None:
                    # Tag the handler with its addon without touching a class shared elsewhere.
                    handler = type(handler.__name__, (handler,), {"addon": addon})
                routes.append((pattern, handler, kwargs, addon))

        template_dirs = []
        for _addon, directory in registry.folders("smsgw_template_dirs", "templates"):
            template_dirs.append(directory)
        self.templates = Templates(settings.themes_dir, template_dirs, settings.theme)

        static_rules = [(r"/static/core/(.*)", StaticHandler, {"path": str(CORE_STATIC)})]
        for addon, directory in registry.folders("smsgw_static_dirs", "static"):
            static_rules.append((rf"/static/addons/{re.escape(addon)}/(.*)", StaticHandler,
                                 {"path": str(directory)}))
        static_rules.append((r"/static/theme/(.*)", ThemeStaticHandler,
                             {"path": str(settings.themes_dir)}))

        tenant_routes = [(p, h, k) for p, h, k, _ in routes if h.scope in ("tenant", "any")]
        # Tenant APIs also answer on the base domain when the token names the tenant.
        platform_routes = [(p, h, k) for p, h, k, _ in routes
                           if h.scope in ("platform", "any") or (h.scope == "tenant" and h.token_tenant_ok)]
        tenant_host = r"[a-z0-9-]+\." + re.escape(settings.base_domain)
        # Any other host may be a workspace's own (sms.acme.com, smsgw_tenant_for_host): it gets the
        # workspace's routes, and BaseHandler.route_host refuses it unless a workspace proved it.
        rules = static_rules + host_rules(routes, settings.base_domain) + [
            Rule(HostMatches(tenant_host), tenant_routes),
            Rule(HostMatches(re.escape(settings.base_domain)), platform_routes),
            Rule(AnyMatches(), tenant_routes),
            Rule(OtherHosts(settings.base_domain), custom_host_routes(routes)),
        ]
        check_route_permissions(routes, registry.access)
        self.route_table = routes
        metrics.name_routes(routes)
        compile_body_schemas(platform, routes)
        self.https = settings.https
        super().__init__(
            rules,
            cookie_secret=platform.cookie_secret,
            xsrf_cookies=True,
            xsrf_cookie_kwargs={"httponly": True, "samesite": "Strict", "secure": settings.https},
            default_handler_class=NotFoundHandler,
            log_function=access_log.log_request,
            compress_response=True,
            debug=False,
            autoreload=False,
        )
        routing.install(self, rules)  # the same answers as Tornado's router, without trying every rule


def host_rules(routes, base_domain: str) -> list[Rule]:
    """Rules for handlers of ``scope = "host"``: each answers on ``<host_label>.<base-domain>`` only
    (a console of its own, e.g. a partners' console), before the tenant host rule, so that label
    never reaches tenant routing. Labels must be reserved slugs (:data:`core.tenancy.RESERVED_SLUGS`):
    no workspace may take a host an addon serves."""
    from ..tenancy import RESERVED_SLUGS

    by_label: dict[str, list] = {}
    for pattern, handler, kwargs, addon in routes:
        if handler.scope != "host":
            continue
        label = handler.host_label
        if not label or label not in RESERVED_SLUGS:
            raise RegistrationError(f"addon {addon!r}: {handler.__name__} at {pattern} answers on host label "
                                    f"{label!r}, which is not a reserved workspace slug (core.tenancy.RESERVED_SLUGS)")
        by_label.setdefault(label, []).append((pattern, handler, kwargs))
    # What answers on every host (health, the language menu, the cookie choice) answers there too, first
    # (its paths are exact; an addon's broad pattern must not swallow them), as a handler of that
    # host (no workspace is looked up for its label).
    anywhere = [(pattern, handler, kwargs) for pattern, handler, kwargs, _addon in routes if handler.scope == "any"]
    return [Rule(HostMatches(re.escape(f"{label}.{base_domain}")),
                 [(pattern, type(handler.__name__, (handler,), {"scope": "host", "host_label": label}), kwargs)
                  for pattern, handler, kwargs in anywhere] + rules)
            for label, rules in sorted(by_label.items())]


class OtherHosts(Matcher):
    """Any host but the base domain and its subdomains (a host name of someone's own)."""

    def __init__(self, base_domain: str):
        self.base_domain = base_domain

    def match(self, request):
        host = split_host_and_port(request.host.lower())[0].rstrip(".")
        return None if host == self.base_domain or host.endswith("." + self.base_domain) else {}


def custom_host_routes(routes) -> list[tuple]:
    """Handlers of ``scope = "host"`` that also answer at a host name of their owner's own
    (``custom_hosts = True``: a reseller's ``partners.acme.com``), only where no workspace route
    matched (a workspace's own host keeps its pages). Such a handler proves the host itself in
    ``prepare``, and answers any other host as the workspaces' routes would have."""
    return [(pattern, handler, kwargs) for pattern, handler, kwargs, _addon in routes
            if handler.scope == "host" and handler.custom_hosts]


def compile_body_schemas(platform, routes) -> None:
    """Compile, at start-up, the published request-body schema of every operation a handler checks
    its body against (``body_schemas``); a name the document does not hold is an error now, not a
    500 at the first request."""
    schemas = request_schemas(platform)
    for pattern, handler, _kwargs, addon in routes:
        for method, operation in getattr(handler, "body_schemas", {}).items():
            if operation not in schemas.bodies:
                raise ValueError(f"{handler.__name__} ({addon or 'core'}, {pattern}) checks {method} bodies against "
                                 f"{operation!r}, which the OpenAPI document does not describe with a JSON body")
            schemas.operation(operation)


class ThemeStaticHandler(StaticHandler):
    """``/static/theme/<theme>/<path>`` served from ``themes/<theme>/static/<path>``."""

    @classmethod
    def get_absolute_path(cls, root, path):
        theme, _, rest = path.partition("/")
        return str(Path(root) / theme / "static" / rest)

    def validate_absolute_path(self, root, absolute_path):
        resolved = Path(absolute_path).resolve()
        themes = Path(root).resolve()
        if themes not in resolved.parents or resolved.relative_to(themes).parts[1:2] != ("static",):
            raise tornado.web.HTTPError(404)
        return super().validate_absolute_path(root, str(resolved))
