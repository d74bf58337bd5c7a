"""Cookie consent: the banner on every page, the choice in a first-party cookie, the proof in the catalogue.

The browser keeps the choice in ``smsgw_consent``: ``<policy version>:<choice>:<consent id>``, where
the choice is ``analytics`` or ``essential`` and the consent id is random (16 URL-safe characters)
and names no one. It is scoped to the base domain (``Domain=<SMSGW_BASE_DOMAIN>``), so one choice
holds on the main site and on every workspace's subdomain. (Browsers refuse a ``Domain`` of one
label, such as ``localhost``: there the cookie is the host's own and each subdomain asks anew.)
The cookie proves nothing by itself and carries no signature; every choice is also recorded in
``public.cookie_consent`` (time, policy version, choice, consent id; no IP address, no user agent).
A row names a person only when a signed-in member made the choice on their workspace (their
``tenant_id`` and ``user:<id>``): then it is theirs to export, and pseudonymised when they are erased.

A browser whose cookie names another policy version (``SMSGW_COOKIE_POLICY_VERSION``) is asked
again and counts as undecided (no analytics) until it answers. ``POST /cookies/consent`` takes the
banner's forms: it works without JavaScript (a 303 back to the page, same site only) and answers
JSON to ``consent.js``, which spares the reload. Choosing *essential* deletes the analytics cookie
(:mod:`.analytics`). A signed-in member who objected to profiling (privacy addon,
:func:`addons.privacy.restriction.excluded`) is never counted: an *analytics* choice of theirs is
recorded as *essential* (source ``objection``), on the consent form and on the next page they open.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass

from core.datamap import PersonalData, Table
from core.db import app_db, connection, run_sync
from core.i18n import N_
from core.permissions import PUBLIC
from core.web.base import PageHandler
from core.web.pages import safe_next
from core.web.problem import Problem

log = logging.getLogger(__name__)

ADDON = "cookies"
COOKIE = "smsgw_consent"
CHOICES = ("analytics", "essential")
SOURCES = ("banner", "settings", "objection")
MAX_AGE = 180 * 86400  # a choice is asked again after six months
ID_CHARS = 16  # secrets.token_urlsafe(12)
COOKIE_MAX = 100  # a longer value is not ours: ignored, the banner asks again
NEXT_MAX = 2000
_VALUE = re.compile(r"([0-9A-Za-z._-]{1,40}):(analytics|essential):([A-Za-z0-9_-]{16})")

MODELS = [Table("cookie_consent", "public", PersonalData(
    personal=("subject",), subjects={"tenant": "tenant_id", "actor": "subject"},
    export=("version", "choice", "source", "created_at"), erase="pseudonymise"))]

FOOTER_LINKS = [{"label": N_("Cookie settings"), "url": "/cookies"}]


@dataclass(frozen=True)
class Consent:
    """A browser's choice, as its consent cookie holds it."""

    version: str
    choice: str  # "analytics" or "essential"
    id: str

    @property
    def value(self) -> str:
        return f"{self.version}:{self.choice}:{self.id}"


def new_id() -> str:
    return secrets.token_urlsafe(12)


def parse(raw: str | None) -> Consent | None:
    """The consent a cookie value holds, or ``None`` for no cookie or anything malformed or oversized."""
    if not raw or len(raw) > COOKIE_MAX:
        return None
    match = _VALUE.fullmatch(raw)
    return Consent(*match.groups()) if match else None


def read(handler) -> Consent | None:
    return parse(handler.get_cookie(COOKIE))


def cookie_domain(settings) -> str | None:
    """The ``Domain`` of the consent and analytics cookies: the base domain, so that the main site and
    every workspace share them; ``None`` (the host's own cookie) for a base domain of one label."""
    return settings.base_domain if "." in settings.base_domain else None


def cookie_kwargs(handler) -> dict:
    """The session cookie's flags, on the base domain; at a workspace's own host name (``sms.acme.com``,
    where a browser refuses a cookie for another domain) on that host alone."""
    domain = None if handler.custom_host else cookie_domain(handler.settings_)
    return {**handler.session_cookie_kwargs(), "domain": domain}


def write(handler, consent: Consent) -> None:
    handler.set_cookie(COOKIE, consent.value, max_age=MAX_AGE, **cookie_kwargs(handler))


def current(handler) -> Consent | None:
    """The browser's choice for the cookie policy in force (``None``: undecided, or it answered an older one)."""
    consent = read(handler)
    if consent is None or consent.version != handler.settings_.cookie_policy_version:
        return None
    return consent


def record(consent: Consent, source: str, tenant_id: int | None = None, subject: str = "") -> None:
    """The proof of a choice (called inside a connection)."""
    app_db.execute_sql(
        "INSERT INTO public.cookie_consent (consent_id, version, choice, source, tenant_id, subject) "
        "VALUES (%s, %s, %s, %s, %s, %s)", (consent.id, consent.version, consent.choice, source, tenant_id, subject))


def history(consent_id: str) -> list[dict]:
    """Every choice recorded for a consent id, newest first."""
    cols = ("version", "choice", "source", "tenant_id", "subject", "created_at")
    rows = app_db.execute_sql(f"SELECT {', '.join(cols)} FROM public.cookie_consent WHERE consent_id = %s "
                              "ORDER BY created_at DESC, id DESC LIMIT 100", (consent_id,)).fetchall()
    return [dict(zip(cols, row)) for row in rows]


def member(handler):
    """The signed-in member of this workspace (a browser session), or ``None``."""
    principal = handler.principal
    if (principal is not None and principal.via == "session" and principal.kind == "user"
            and handler.tenant is not None and principal.tenant == handler.tenant.slug):
        return principal
    return None


def objected_to_profiling(handler) -> bool:
    """Did the signed-in member (if any) object to profiling, or ask to restrict processing?
    One indexed lookup, asked only of browsers that chose analytics."""
    from addons.privacy.restriction import excluded

    principal = member(handler)
    if principal is None:
        return False
    with connection():
        return excluded(handler.tenant.id, principal.actor, "profiling")


def enforce_objection(handler, consent: Consent) -> Consent:
    """An objection to profiling overrides an *analytics* choice: record and keep *essential* instead,
    and forget what analytics holds about this browser (:func:`.analytics.forget`)."""
    from . import analytics

    principal = member(handler)
    overridden = Consent(consent.version, "essential", consent.id)
    visitor = analytics.visitor(handler)
    with connection(), app_db.atomic():
        record(overridden, "objection", handler.tenant.id, principal.actor)
        if visitor:
            analytics.forget(visitor)
    write(handler, overridden)
    analytics.clear_cookie(handler)
    return overridden


# -- every page ------------------------------------------------------------------------------------

def banner_context(handler) -> tuple[dict, Consent | None]:
    """The banner's part of every page's context, and the choice in force (after objections)."""
    consent = current(handler)
    if consent is not None and consent.choice == "analytics":
        try:
            if objected_to_profiling(handler):
                consent = enforce_objection(handler, consent)
        except Exception:  # a database hiccup must not take the page down; analytics stays off for it
            log.exception("could not check the member's objection to profiling")
            consent = Consent(consent.version, "essential", consent.id)
    on_settings_page = handler.request.path == "/cookies"
    banner = {"open": consent is None and not on_settings_page,
              "analytics": consent is not None and consent.choice == "analytics",
              "next": _next_for(handler)}
    return {"body_start": ["cookies/banner.html"], "cookie_banner": banner, "footer_links": FOOTER_LINKS}, consent


def _next_for(handler) -> str:
    uri = handler.request.uri or "/"
    if handler.request.method != "GET" or len(uri) > NEXT_MAX or safe_next(uri) != uri:
        return "/"  # after a form's answer, go back to somewhere a GET can reach
    return uri


# -- the consent endpoint and the settings page ----------------------------------------------------

class ConsentHandler(PageHandler):
    """``POST /cookies/consent``: record the choice, store it in the browser, go back (or answer JSON)."""

    scope = "any"
    permission = PUBLIC

    async def post(self):
        from . import analytics

        asked = self.get_body_argument("choice", "")
        choice = ("analytics" if self.get_body_argument("analytics", "") == "yes" else "essential") \
            if asked == "settings" else asked
        if choice not in CHOICES:
            raise Problem(400, "bad-choice", N_("Choose 'analytics' or 'essential'; nothing was "
                                                "recorded."))
        nxt = self.get_body_argument("next", "") or "/"
        if len(nxt) > NEXT_MAX or safe_next(nxt) != nxt:
            raise Problem(400, "bad-return-url",
                          N_("The page to go back to must be a page of this site; nothing was "
                             "recorded."))
        previous = read(self)
        consent = Consent(self.settings_.cookie_policy_version, choice, previous.id if previous else new_id())
        source = "settings" if asked == "settings" else "banner"
        principal = member(self)
        tenant_id = self.tenant.id if principal else None
        subject = principal.actor if principal else ""

        def work():
            chosen, how = consent, source
            with connection():
                if consent.choice == "analytics" and principal is not None:
                    from addons.privacy.restriction import excluded

                    if excluded(tenant_id, subject, "profiling"):
                        chosen, how = Consent(consent.version, "essential", consent.id), "objection"
                record(chosen, how, tenant_id, subject)
            return chosen, how

        chosen, source = await run_sync(work)
        write(self, chosen)
        if chosen.choice == "analytics":
            analytics.ensure_cookie(self)
        else:
            analytics.clear_cookie(self)
        if "json" in self.request.headers.get("Accept", "")[:40]:
            self.set_header("Content-Type", "application/json; charset=UTF-8")
            self.finish({"choice": chosen.choice, "version": chosen.version, "source": source})
            return
        self.redirect(nxt, status=303)


class CookieSettingsHandler(PageHandler):
    """``GET /cookies``: what each category of cookie is for, and the choice, changeable (the footer's
    *Cookie settings*; scripts open the banner in place instead)."""

    scope = "any"
    permission = PUBLIC

    def get(self):
        consent = current(self)
        self.render("cookies/settings.html", consent=consent, policy_version=self.settings_.cookie_policy_version)


ROUTES = [
    (r"/cookies", CookieSettingsHandler),
    (r"/cookies/consent", ConsentHandler),
]
