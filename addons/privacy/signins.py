"""Sign-in history (issue 16, item 4): *Account → Security* shows each member their own sign-ins.

**What is kept**, one row per password sign-in (the dashboard's, the token API's, the compatible
API's: all of them go through ``login_attempt`` and its ``login.success`` audit event) and per
failed one for a member's own address (``login.failure`` names the address typed; an address that
is no member's is nobody's history and is not kept here): the time, whether it succeeded, the
client address, and the browser family and device type read from the User-Agent header by
:mod:`.useragent`. The header itself is never stored (the audit trail keeps its own copy for its
own 90 days). Rows live in the workspace's own schema (``privacy_signins``), so another
workspace's code cannot read them (its role has no right to the schema); the page reads only the
signed-in member's rows.

**How long**: 90 days (:data:`KEEP`, what the privacy policy says of use and security records;
not a setting, since the policy text would have to change with it). The exact address serves the
question "was that me?" while the sign-in is fresh; after :data:`EXACT_IP` (7 days) it is cut to
its network (IPv4 /24, IPv6 /48), which still tells a provider or a place apart. Both are due work
(:mod:`core.due`): the sign-in's own transaction arms the job for the time its row first needs
work, unless an earlier time is armed already (one index lookup, no call of the arming function);
the run cuts and deletes what is due and says when the next row is.

**This wasn't me**: one button that signs the member out everywhere: every session (this one
too), the refresh tokens with the access tokens minted from them, the API tokens they created and
what addons issue for a member (``revoke_workspace_credentials``, the same as deleting the account
does), and every process forgets what it cached (``credentials_changed``). Sessions are looked up
in the database on every request, so each process sees it on the next request. Then the member is
told to change their password, and the audit trail records it (``account.signed_out_everywhere``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging

from core import due
from core.clock import utcnow
from core.datamap import PersonalData, Table
from core.db import app_db, tenant_transaction
from core.i18n import N_
from core.identity import revoke_workspace_credentials
from core.permissions import PUBLIC
from core.users import User
from core.web.auth_pages import audit
from core.web.base import SESSION_COOKIE, PageHandler

from . import useragent

log = logging.getLogger(__name__)

ADDON = "privacy"
JOB = "privacy.signins"
KEEP = dt.timedelta(days=90)
EXACT_IP = dt.timedelta(days=7)
NETWORK_BITS = {4: 24, 6: 48}
PAGE_SIZE = 20
SELF = "profile:edit"  # "change one's own name, address, password and sign-ins": the kernel's, every member holds it

MODELS = [Table("privacy_signins", "tenant", PersonalData(
    personal=("ip", "browser", "device"), subjects={"user": "user_id"},
    export=("at", "succeeded", "ip", "browser", "device"), erase="delete"))]

_platform = None


def configure(platform) -> None:
    global _platform
    _platform = platform


def tasks(queue) -> None:
    configure(queue.platform)
    queue.due_job(JOB, run, next_due)


# -- recording ----------------------------------------------------------------------------------

def stored_ip(raw: str | None) -> str | None:
    """The client address as stored: a valid IPv4 or IPv6 address (an IPv4-mapped IPv6 address as
    IPv4, without a zone), or ``None``."""
    try:
        address = ipaddress.ip_address((raw or "").split("%", 1)[0].strip())
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


_EXACT = "masklen(ip) = CASE family(ip) WHEN 4 THEN 32 ELSE 128 END"  # not cut to its network yet



def _insert_sql() -> str:
    # Built when used: the due functions' schema is named by the platform's role prefix.
    return (due.hold_sql("job", "lock")
            + " WITH added AS (INSERT INTO privacy_signins (user_id, at, succeeded, ip, browser, device) "
              "VALUES (%(user)s, %(at)s, %(ok)s, %(ip)s, %(browser)s, %(device)s) RETURNING id), "
              "armed AS (" + due.arm_unless_armed_sql("job", "%(due)s::timestamptz", "added") + ") "
              "SELECT (SELECT id FROM added), (SELECT count(*) FROM armed)")


def record(tenant, user_id: int, succeeded: bool, ip: str | None, user_agent: str | None,
           at: dt.datetime | None = None) -> int:
    """Inside the tenant's transaction: one sign-in row; arms the job for when it first needs work
    (its address cut after :data:`EXACT_IP`, or its removal after :data:`KEEP`) unless an earlier
    time is armed. Returns the row's id."""
    at = at or utcnow()
    browser, device = useragent.parse(user_agent)
    ip = stored_ip(ip)
    params = {"job": JOB, "lock": due.tenant_lock_key(tenant), "user": user_id, "at": at, "ok": succeeded,
              "ip": ip, "browser": browser, "device": device, "due": at + (EXACT_IP if ip else KEEP)}
    return app_db.execute_sql(_insert_sql(), params).fetchone()[0]


def _member(event) -> int | None:
    """Inside the tenant's transaction: whose sign-in the event is (``None``: no member's)."""
    if event.action == "login.success":
        kind, _, number = event.actor.partition(":")
        return int(number) if kind == "user" and number.isdigit() else None
    user = User.by_email(event.actor_name) if event.actor_name else None
    return user.id if user is not None else None


def on_audit_event(event) -> None:
    """``smsgw_audit_event``: a sign-in (or a failed one) of a workspace member goes into that
    workspace's history. Core emits ``login.*`` outside any transaction, from the request's
    executor thread, with the workspace entered in the request's context only (no transaction):
    this opens one of its own in the workspace named by the event."""
    if event.action not in ("login.success", "login.failure") or not event.tenant_slug:
        return
    tenant = _platform.tenant_cache.get(event.tenant_slug)
    # The hook takes no tenant, so the kernel cannot filter it by the addons the workspace enabled.
    if tenant is None or tenant.id != event.tenant_id or ADDON not in tenant.enabled_addons:
        return
    nested = app_db.transaction_depth() > 0  # emit_with_work: inside a transaction, as the serving role
    with tenant_transaction(tenant.ref):
        user_id = _member(event)
        if user_id is not None:
            record(tenant, user_id, event.action == "login.success", event.ip, event.user_agent)
    if nested:  # back to what emit_with_work gave the recorders after this one
        app_db.execute_sql("SET LOCAL ROLE NONE; SET LOCAL search_path TO public")


# -- due work: cut addresses, remove old rows -----------------------------------------------------

def next_due(tenant=None) -> dt.datetime | None:
    """Inside the tenant's transaction: when a row next needs work (past: now), or ``None``."""
    return app_db.execute_sql(
        f"SELECT least((SELECT min(at) FROM privacy_signins WHERE {_EXACT}) + %s, "
        "(SELECT min(at) FROM privacy_signins) + %s)", (EXACT_IP, KEEP)).fetchone()[0]


def run(tenant, now: dt.datetime | None = None) -> None:
    """The due run, inside the tenant's transaction: rows older than :data:`KEEP` go, addresses
    older than :data:`EXACT_IP` are cut to their network."""
    now = now or utcnow()
    gone = app_db.execute_sql("DELETE FROM privacy_signins WHERE at < %s", (now - KEEP,)).rowcount
    cut = app_db.execute_sql(
        "UPDATE privacy_signins SET ip = network(set_masklen(ip, CASE family(ip) WHEN 4 THEN %s ELSE %s END))::inet "
        f"WHERE at < %s AND {_EXACT}", (NETWORK_BITS[4], NETWORK_BITS[6], now - EXACT_IP)).rowcount
    if gone or cut:
        log.info("sign-in history of %s: %d rows removed, %d addresses cut to their network", tenant.slug, gone, cut)


# -- the page ------------------------------------------------------------------------------------

def history(user_id: int, session_id: int | None, page: int) -> dict:
    """Inside the tenant's transaction: one page of the member's own sign-ins, newest first, and
    which row is the sign-in of the session asking (the last success of this member at most a
    minute before the session was made: the sign-in is recorded just before its session)."""
    total = app_db.execute_sql("SELECT count(*) FROM privacy_signins WHERE user_id = %s", (user_id,)).fetchone()[0]
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    cur = app_db.execute_sql(
        f"SELECT id, at, succeeded, ip, NOT ({_EXACT}), browser, device "
        "FROM privacy_signins WHERE user_id = %s ORDER BY at DESC, id DESC LIMIT %s OFFSET %s",
        (user_id, PAGE_SIZE, (page - 1) * PAGE_SIZE))
    rows = [dict(zip(("id", "at", "succeeded", "ip", "network", "browser", "device"), r)) for r in cur.fetchall()]
    current = None
    if session_id is not None:
        found = app_db.execute_sql(
            "SELECT s.id FROM privacy_signins s JOIN sessions x ON x.user_id = s.user_id "
            "WHERE x.id = %s AND s.user_id = %s AND s.succeeded AND s.at <= x.created_at "
            "AND s.at > x.created_at - interval '1 minute' ORDER BY s.at DESC, s.id DESC LIMIT 1",
            (session_id, user_id)).fetchone()
        current = found[0] if found else None
    return {"rows": rows, "page": page, "pages": pages, "total": total, "current": current}


BROWSER_LABELS = {"tool": N_("Script or command-line tool"), "bot": N_("Automated client"),
                  "other": N_("Other browser"), "unknown": N_("Unknown")}
DEVICE_LABELS = {"desktop": N_("Computer"), "phone": N_("Phone"), "tablet": N_("Tablet"), "other": N_("Other device"),
                 "unknown": N_("Unknown")}


def browser_label(key: str) -> tuple[str, bool]:
    """(text, whether it is to be translated)."""
    name = useragent.FAMILIES.get(key, "")
    return (name, False) if name else (BROWSER_LABELS.get(key, BROWSER_LABELS["unknown"]), True)


class SecurityPage(PageHandler):
    """``/account/security``: the signed-in member's own sign-in history, and "this wasn't me"."""

    permission = SELF

    async def get(self):
        try:
            page = int(self.get_query_argument("page", "1")[:6])
        except ValueError:
            page = 1
        principal = self.principal
        found = await self.in_tenant(history, principal.id, principal.session_id, page)
        self.render("privacy/security.html", keep_days=KEEP.days, exact_days=EXACT_IP.days,
                    browser_label=browser_label, device_labels=DEVICE_LABELS, **found)

    async def post(self):
        platform, tenant, principal = self.platform, self.tenant, self.principal

        def sign_out_everywhere():
            revoke_workspace_credentials(platform, tenant, principal.id)
            platform.credentials_changed(tenant.slug)  # its NOTIFY goes out with the commit

        await self.in_tenant(sign_out_everywhere, audit=audit(
            self, "account.signed_out_everywhere", actor=principal.actor, actor_name=principal.email,
            target=principal.actor))
        self.clear_cookie(SESSION_COOKIE, path="/")
        self.redirect("/account/security/signed-out", status=303)


class SignedOutPage(PageHandler):
    """Where "this wasn't me" leads: no session is left to show anything else."""

    permission = PUBLIC

    def get(self):
        self.render("privacy/signed_out.html")


ROUTES = [(r"/account/security", SecurityPage), (r"/account/security/signed-out", SignedOutPage)]

# The account pages' own navigation (core's ``account_links`` slot): the privacy page and this one.
ACCOUNT_LINKS = [{"label": N_("Security"), "url": "/account/security"},
                 {"label": N_("Privacy"), "url": "/account/privacy"}]


def template_context(handler) -> dict | None:
    principal = handler.principal
    if handler.tenant is None or principal is None or not principal.can(SELF):
        return None
    from .page import SELF as PRIVACY_SELF

    return {"account_links": [link for link in ACCOUNT_LINKS
                              if link["url"] != "/account/privacy" or principal.can(PRIVACY_SELF)]}
