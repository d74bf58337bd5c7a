"""The published privacy policy: ``/privacy`` on the base domain and in every workspace.

The text is the operator's: a template per language, ``privacy/policy/<lang>.html``, looked up
in the page's theme, then in the ``default`` theme (``themes/default/templates/privacy/policy/``
ships en, de, fr and es). Its version is the front matter of the English one, a Jinja comment
on its first line: ``{#- policy-version: 2026-12-07 -#}``. Raising it asks every signed-in
person to acknowledge the new text (a notice on every page until they do); the sign-up form
links the policy and records its acceptance. Both are rows of ``public.privacy_policy_acceptance``
(:func:`accepted_version` answers for proof), and audited.
"""

from __future__ import annotations

import logging
import re
import threading
import time

import jinja2

from core.datamap import PersonalData, Table
from core.db import app_db, connection, run_sync
from core.events import emit
from core.i18n import N_
from core.permissions import PUBLIC
from core.web.auth_pages import audit, client_ip
from core.web.base import PageHandler
from core.web.pages import safe_next
from core.web.problem import Problem

from .page import SELF

log = logging.getLogger(__name__)

FALLBACK_THEME = "default"
AUTHORITATIVE = "en"  # the language whose front matter gives the version
VERSION = re.compile(r"\{#-?\s*policy-version:\s*([0-9A-Za-z._-]{1,40})\s*-?#\}")
SEEN_COOKIE = "smsgw_policy_seen"  # "<slug>:<user id>:<version>" once acknowledged: spares the lookup

MODELS = [Table("privacy_policy_acceptance", "public", PersonalData(
    personal=("subject", "ip", "user_agent"), subjects={"tenant": "tenant_id", "actor": "subject"},
    export=("version", "how", "accepted_at"), erase="pseudonymise"))]


class PolicyMissing(LookupError):
    """No theme holds a policy template: the operator removed the shipped one."""


def _policy_env(templates, theme: str | None):
    """The environment whose chain finds the policy: the page's theme, else the default theme."""
    for candidate in (theme, FALLBACK_THEME):
        env = templates.env(candidate)
        try:
            env.get_template(f"privacy/policy/{AUTHORITATIVE}.html")
            return env
        except jinja2.TemplateNotFound:
            continue
    raise PolicyMissing("no theme has privacy/policy/en.html")


_versions: dict[int, tuple[object, str]] = {}
_versions_lock = threading.Lock()


def version(templates, theme: str | None) -> str:
    """The policy version in force for pages of ``theme`` (read from its front matter; cached
    until the file changes)."""
    env = _policy_env(templates, theme)
    cached = _versions.get(id(env))
    if cached is not None and cached[0]():
        return cached[1]
    source, _filename, uptodate = env.loader.get_source(env, f"privacy/policy/{AUTHORITATIVE}.html")
    match = VERSION.search(source.split("\n", 1)[0])
    if match is None:
        raise PolicyMissing("privacy/policy/en.html has no front matter {#- policy-version: <version> -#} "
                            "on its first line")
    with _versions_lock:
        _versions[id(env)] = (uptodate or (lambda: False), match.group(1))
    return match.group(1)


def page_theme(handler) -> str | None:
    return (handler.tenant.theme if handler.tenant else None) or handler.settings_.theme


def policy_html(handler) -> tuple[str, str, str]:
    """The policy rendered in the request's language (English if the theme lacks it), its version,
    and the language it is written in (for the page's ``lang`` attribute)."""
    templates = handler.application.templates
    theme = page_theme(handler)
    env = _policy_env(templates, theme)
    written_in = handler.lang
    try:
        template = env.get_template(f"privacy/policy/{handler.lang}.html")
    except jinja2.TemplateNotFound:
        template, written_in = env.get_template(f"privacy/policy/{AUTHORITATIVE}.html"), AUTHORITATIVE
    settings = handler.settings_
    html = template.render(
        lang=handler.lang, privacy_email=settings.privacy_address, site=settings.public_url(),
        base_domain=settings.base_domain, tenant=handler.tenant, version=version(templates, theme))
    return html, version(templates, theme), written_in


async def render_policy(handler, status: int = 200, contact_errors: dict | None = None,
                        contact_form: dict | None = None) -> None:
    html, current, written_in = policy_html(handler)
    principal = handler.principal
    form = contact_form or {"email": principal.email if principal is not None and principal.email else "",
                            "message": ""}
    handler.set_status(status)
    handler.render("privacy/policy.html", policy_body=html, policy_version=current, policy_lang=written_in,
                   privacy_email=handler.settings_.privacy_address, contact_errors=contact_errors or {},
                   contact_form=form)


class PolicyHandler(PageHandler):
    """``GET /privacy``: the policy, a "contact us" form and the privacy address."""

    scope = "any"
    permission = PUBLIC

    async def get(self):
        await render_policy(self)


# -- acceptance and acknowledgement ------------------------------------------------------------

def record(tenant_id: int, tenant_slug: str, subject: str, version_: str, how: str, ip: str, user_agent: str) -> None:
    app_db.execute_sql(
        "INSERT INTO public.privacy_policy_acceptance (tenant_id, tenant_slug, subject, version, how, ip, user_agent) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)", (tenant_id, tenant_slug, subject, version_, how, ip, user_agent[:300]))


def accepted_version(tenant_id: int, subject: str) -> str | None:
    """The policy version this person last accepted or acknowledged (``None``: never)."""
    row = app_db.execute_sql(
        "SELECT version FROM public.privacy_policy_acceptance WHERE tenant_id = %s AND subject = %s "
        "ORDER BY accepted_at DESC, id DESC LIMIT 1", (tenant_id, subject)).fetchone()
    return row[0] if row else None


def acceptances(tenant_id: int, subject: str | None = None) -> list[dict]:
    """The proof: who accepted which version, when, how and from where, newest first."""
    cols = ("subject", "version", "how", "accepted_at", "ip", "user_agent")
    where, params = "tenant_id = %s", [tenant_id]
    if subject is not None:
        where += " AND subject = %s"
        params.append(subject)
    rows = app_db.execute_sql(f"SELECT {', '.join(cols)} FROM public.privacy_policy_acceptance WHERE {where} "
                              "ORDER BY accepted_at DESC, id DESC LIMIT 500", params).fetchall()
    return [dict(zip(cols, row)) for row in rows]


# (tenant id, actor) -> (until, last version acknowledged): someone who has not acknowledged yet is
# looked up once per LAST_SEEN_TTL per process, not on every page (an acknowledgement here updates it).
_last_seen: dict[tuple[int, str], tuple[float, str | None]] = {}
LAST_SEEN_TTL = 30.0


def _seen_value(handler, current: str) -> str:
    return f"{handler.tenant.slug}:{handler.principal.id}:{current}"


def _signed_in_here(handler) -> bool:
    principal = handler.principal
    return (principal is not None and principal.via == "session" and principal.kind == "user"
            and handler.tenant is not None and principal.tenant == handler.tenant.slug)


def needs_acknowledgement(handler) -> str | None:
    """The version a signed-in person must still acknowledge on this page, or ``None``.

    A signed cookie remembers an acknowledgement per browser; without it, one indexed lookup
    (once per browser and version: the answer is remembered in the cookie)."""
    if not _signed_in_here(handler):
        return None
    try:
        current = version(handler.application.templates, page_theme(handler))
    except PolicyMissing:
        log.error("no privacy policy template: nobody is asked to acknowledge one")
        return None
    seen = handler.get_signed_cookie(SEEN_COOKIE, max_age_days=400)
    if seen is not None and seen.decode() == _seen_value(handler, current):
        return None
    key = (handler.tenant.id, handler.principal.actor)
    cached = _last_seen.get(key)
    if cached is not None and cached[0] > time.monotonic():
        last = cached[1]
    else:
        with connection():
            last = accepted_version(*key)
        if len(_last_seen) > 10_000:
            _last_seen.clear()
        _last_seen[key] = (time.monotonic() + LAST_SEEN_TTL, last)
    if last == current:
        handler.set_signed_cookie(SEEN_COOKIE, _seen_value(handler, current), expires_days=400,
                                  **handler.session_cookie_kwargs())
        return None
    return current


class AcknowledgeHandler(PageHandler):
    """``POST /privacy/acknowledge``: the signed-in person has read the policy version shown."""

    permission = SELF

    async def post(self):
        if not _signed_in_here(self):
            raise Problem(403, "forbidden", N_("Acknowledge the privacy policy from a signed-in "
                                               "browser."))
        current = version(self.application.templates, page_theme(self))
        shown = self.get_body_argument("version", "")
        if shown != current:
            raise Problem(409, "policy-changed",
                          N_("The privacy policy changed since this page was shown; reload it and "
                             "read the new version."))
        principal = self.principal
        event = audit(self, "privacy.policy_acknowledged", actor=principal.actor, actor_name=principal.email,
                      target=principal.actor, version=current)
        ip, agent = client_ip(self), self.request.headers.get("User-Agent", "")

        def work():
            with connection(), app_db.atomic():
                record(self.tenant.id, self.tenant.slug, principal.actor, current, "acknowledged", ip, agent)
                emit(self.platform, event)

        await run_sync(work)
        _last_seen[(self.tenant.id, principal.actor)] = (time.monotonic() + LAST_SEEN_TTL, current)
        self.set_signed_cookie(SEEN_COOKIE, _seen_value(self, current), expires_days=400,
                               **self.session_cookie_kwargs())
        self.redirect(safe_next(self.get_body_argument("next", "/")), status=303)


# -- sign-up --------------------------------------------------------------------------------------

def signup_check(handler) -> dict | None:
    _ = handler.gettext()[0]
    if handler.get_body_argument("accept_privacy", "") != "yes":
        return {"accept_privacy": _("Read the privacy policy and tick the box to confirm it.")}
    current = version(handler.application.templates, page_theme(handler))
    if handler.get_body_argument("privacy_version", "") != current:
        return {"accept_privacy": _("The privacy policy changed while you were signing up: read the new "
                                    "version and confirm again.")}
    return None


def signed_up(handler, tenant) -> None:
    """Record the owner's acceptance of the version the form showed (checked equal to the current)."""
    current = handler.get_body_argument("privacy_version", "")
    owner = "user:1"  # the sign-up's owner: the first user of the new workspace (as its audit names it)
    event = audit(handler, "privacy.policy_accepted", tenant=tenant, actor=owner,
                  actor_name=handler.get_body_argument("email", "")[:254], target=owner, version=current)
    with connection(), app_db.atomic():
        record(tenant.id, tenant.slug, owner, current, "signup", client_ip(handler),
               handler.request.headers.get("User-Agent", ""))
        emit(handler.platform, event)


# -- every page: the footer link, the acknowledgement notice, the sign-up part -------------------

FOOTER_LINKS = [{"label": N_("Privacy policy"), "url": "/privacy"}]


def template_context(handler) -> dict:
    ctx = {"footer_links": FOOTER_LINKS}
    try:
        pending = needs_acknowledgement(handler)
    except Exception:  # a database hiccup must not take every page down with it
        log.exception("could not check the privacy-policy acknowledgement")
        pending = None
    if pending is not None:
        ctx["page_notices"] = ["privacy/policy_notice.html"]
        ctx["policy_pending_version"] = pending
    if handler.tenant is None and getattr(handler, "signup_form", False):  # every sign-up form, a reseller's too
        try:
            ctx["signup_parts"] = ["privacy/signup_policy.html"]
            ctx["signup_policy_version"] = version(handler.application.templates, page_theme(handler))
        except PolicyMissing:
            log.error("no privacy policy template: the sign-up form cannot link one")
            ctx.pop("signup_parts", None)
    return ctx


def admin_sections():
    from core.hookspecs import AdminSection

    return {"privacy_policy": AdminSection(N_("Privacy policy acceptances"), lambda t: acceptances(t.id), False)}


ADMIN_SECTIONS = admin_sections()

ROUTES = [
    (r"/privacy", PolicyHandler),
    (r"/privacy/acknowledge", AcknowledgeHandler),
]
