"""The new-workspace sandbox (issue 20, item 3), an operator setting: the rule ``sandbox`` (off by
default; any other action turns it on, ``params``: ``days``, ``daily_cap``, ``paid_plans_exempt``).

A workspace younger than ``days`` (or on the free plan, unless exempt by a paid plan) may send only
to numbers its Customer listed or verified on the *Security* page, at most ``daily_cap`` recipients
a day, until the operator approves it: a per-workspace override of the rule with action ``off``
(``smsgw abuse`` SQL, or the admin queue's false positive on a sandbox refusal). A refused send is
a 403 problem that names the number and says how to allow it; nothing of it is stored.

**Verification by SMS code** (:func:`request_code`, :func:`verify_code`): the Customer asks for a
code to be sent to a number; it goes through the workspace's own phones like any message (held by
the rules like any message; refused at once if the workspace has no phone), exempt from the
sandbox's number list and cap. Entering it verifies the number. A code is 6 digits, lives
:data:`CODE_MINUTES`, is stored as an HMAC digest (the platform's link secret, the workspace and
the number in it: a digest says nothing about another workspace's codes), is used once, and
allows :data:`CODE_ATTEMPTS` wrong guesses; a new code may be asked for once a minute per number.

The check runs in ``smsgw_messages_submitting`` (before anything is written); for a workspace
outside the sandbox it costs two dictionary lookups, and inside it one statement.
"""

from __future__ import annotations

import contextvars
import hashlib
import hmac
import re
import secrets

from core.db import app_db, array_literal
from core.i18n import N_
from core.web.problem import Problem, Refusal

from . import rules, runtime, service

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
CODE_MINUTES = 10
CODE_ATTEMPTS = 5
RESEND_SECONDS = 60
CODE_RE = re.compile(r"^[0-9]{6}$")
# The number a verification code is being sent to, inside that send's transaction: exempt.
_sending_code: contextvars.ContextVar = contextvars.ContextVar("abuse_sandbox_code", default=None)


def applies(tenant, book: rules.Book) -> rules.Rule | None:
    rule = book.rule(tenant.id, "sandbox")
    if rule.action == "off":
        return None
    young = service.is_new_workspace(tenant.id, float(rule.params.get("days", 14)))
    unpaid = tenant.plan in ("", "free") or not rule.params.get("paid_plans_exempt", True)
    return rule if (young or unpaid) else None


def check(tenant, segments: list[int], recipients: list[list[str]]) -> list | None:
    """Inside the submit transaction: per request, None or the 403 that refuses it."""
    rule = applies(tenant, rules.book())
    if rule is None:
        return None
    code_to = _sending_code.get()
    if code_to is not None and recipients == [[code_to]]:
        return None  # the verification code itself: not refused, not capped
    wanted = sorted({p for phones in recipients for p in phones})
    allowed_today = app_db.execute_sql(
        "SELECT ARRAY(SELECT phone FROM abuse_sandbox_numbers WHERE phone = ANY (%s::text[]) "
        "AND (listed_by IS NOT NULL OR verified_at IS NOT NULL)), "
        "coalesce((SELECT sum(n) FROM abuse_hourly WHERE hour >= date_trunc('day', now())), 0) "
        "- (SELECT count(*) FROM messages WHERE created_at >= date_trunc('day', now()) AND source = 'sandbox-code')",
        (array_literal(wanted),)).fetchone()
    allowed, used = set(allowed_today[0]), int(allowed_today[1])
    cap = int(rule.params.get("daily_cap", 50))
    out = []
    for phones in recipients:
        missing = [p for p in phones if p not in allowed]
        if missing:
            out.append(Problem(403, "sandbox-number-not-allowed",
                               N_("This workspace is in the sandbox for new workspaces: it may send only to "
                                  "numbers listed or verified on its Security page (%(page)s), and %(phone)s is "
                                  "not one of them. Add the number there (or with POST %(api)s), or verify it "
                                  "by a code sent to it: POST %(code_api)s with the number, then POST "
                                  "%(verify_api)s with the number and the code it received. Or ask the operator "
                                  "to approve the workspace. Nothing was sent."),
                               title=N_("Number not allowed in the sandbox"),
                               args={"phone": missing[0], "page": "/security",
                                     "api": "/api/v1/abuse/sandbox/numbers", "code_api": CODES_API,
                                     "verify_api": VERIFY_API}))
        elif used + len(phones) > cap:
            out.append(Problem(403, "sandbox-daily-cap",
                               N_("This workspace is in the sandbox for new workspaces: it may send to at most "
                                  "%(cap)s recipients a day, and %(used)s were sent today. Try again tomorrow, or "
                                  "ask the operator to approve the workspace. Nothing was sent."),
                               title=N_("Sandbox daily limit reached"), args={"cap": cap, "used": used}))
        else:
            used += len(phones)
            out.append(None)
    return out


def numbers() -> list[dict]:
    rows = app_db.execute_sql("SELECT phone, listed_by, verified_at, created_at FROM abuse_sandbox_numbers "
                              "ORDER BY created_at DESC LIMIT 500")
    return [dict(zip(("phone", "listed_by", "verified_at", "created_at"), r)) for r in rows]


CODES_API = "/api/v1/abuse/sandbox/codes"
VERIFY_API = "/api/v1/abuse/sandbox/verify"
NO_PHONE = N_("This workspace has no phone to send the code from: connect a phone first (Devices), or list the "
              "number instead. Nothing was sent.")
TOO_SOON = N_("A code was sent to %(phone)s a moment ago; wait %(seconds)s seconds before asking for another.")


class SandboxError(Refusal):
    """A refused sandbox request (a number that is not one, a code that cannot be sent)."""


def _number(phone, region: str) -> str:
    from addons.messaging.phones import PhoneError, normalise

    if not isinstance(phone, str) or not phone.strip():
        raise SandboxError(N_("Give the number (e.g. +14155550101)."))
    try:
        return normalise(phone.strip()[:40], region)
    except PhoneError as exc:
        raise SandboxError(exc.msgid, exc.msg_args) from None


def add(phone: str, actor: str, region: str) -> str:
    """Inside the tenant transaction: the Customer lists a number (normalised); the number."""
    phone = _number(phone, region)
    app_db.execute_sql("INSERT INTO abuse_sandbox_numbers (phone, listed_by) VALUES (%s, %s) "
                       "ON CONFLICT (phone) DO UPDATE SET listed_by = excluded.listed_by", (phone, actor[:200]))
    return phone


# -- verification by SMS code ---------------------------------------------------------------------

def _digest(tenant, phone: str, code: str) -> str:
    key = f"abuse-sandbox-code:{runtime.platform().link_secret}".encode()
    return hmac.new(key, f"{tenant.id}:{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def request_code(tenant, phone, actor: str) -> tuple[str, list[str]]:
    """Inside the tenant transaction: make a code for ``phone`` and send it through the workspace's
    phones. Returns ``(number, wake keys)``; :class:`SandboxError` when it cannot be sent."""
    from addons.messaging import submit

    phone = _number(phone, tenant.default_region)
    if not app_db.execute_sql("SELECT EXISTS (SELECT 1 FROM devices WHERE removed_at IS NULL AND enabled)").fetchone()[0]:
        raise SandboxError(NO_PHONE)
    recent = app_db.execute_sql("SELECT ceil(extract(epoch FROM sent_at + %s * interval '1 second' - now())) "
                                "FROM abuse_sandbox_codes WHERE phone = %s AND sent_at > now() - %s * interval '1 second' "
                                "FOR UPDATE", (RESEND_SECONDS, phone, RESEND_SECONDS)).fetchone()
    if recent is not None:
        raise SandboxError(TOO_SOON, {"phone": phone, "seconds": max(1, int(recent[0]))})
    code = f"{secrets.randbelow(10 ** 6):06d}"
    app_db.execute_sql(
        "INSERT INTO abuse_sandbox_codes (phone, digest, expires_at, attempts, sent_at, requested_by) "
        "VALUES (%s, %s, now() + %s * interval '1 minute', 0, now(), %s) ON CONFLICT (phone) DO UPDATE SET "
        "digest = excluded.digest, expires_at = excluded.expires_at, attempts = 0, sent_at = now(), "
        "requested_by = excluded.requested_by", (phone, _digest(tenant, phone, code), CODE_MINUTES, actor[:200]))
    platform = runtime.platform()
    _ = platform.catalogues.gettext_for(platform.language_for("", tenant))[0]
    text = _("%(code)s is your code to verify this number for %(workspace)s. It expires in %(minutes)s minutes.",
             code=code, workspace=tenant.name, minutes=CODE_MINUTES)
    clean, errors, _rejected = submit.validate_one({"text": text, "to": [phone]}, tenant.default_region)
    if clean is None:  # a workspace name too long for an SMS
        raise SandboxError(N_("The code could not be sent to %(phone)s."), {"phone": phone})
    token = _sending_code.set(phone)
    try:
        _status, _response, keys = submit.accept(tenant, [clean], [[]], False, source="sandbox-code",
                                                 created_by=actor[:200])
    finally:
        _sending_code.reset(token)
    return phone, keys


def verify_code(tenant, phone, code, actor: str) -> tuple[str, str | None, dict]:
    """Inside the tenant transaction: check a code. Returns ``(number, None, {})`` when the number
    is verified now, else ``(number, msgid, args)``: why not (the attempt is counted and kept, so
    the caller commits and then refuses)."""
    phone = _number(phone, tenant.default_region)
    code = code.strip() if isinstance(code, str) else ""
    row = app_db.execute_sql("SELECT digest, expires_at < now(), attempts FROM abuse_sandbox_codes WHERE phone = %s "
                             "FOR UPDATE", (phone,)).fetchone()
    if row is None:
        return phone, N_("No code was sent to %(phone)s (or it was used already): ask for a code first."), \
            {"phone": phone}
    digest, expired, attempts = row
    if expired:
        app_db.execute_sql("DELETE FROM abuse_sandbox_codes WHERE phone = %s", (phone,))
        return phone, N_("The code sent to %(phone)s has expired: ask for a new one."), {"phone": phone}
    if attempts >= CODE_ATTEMPTS:
        return phone, N_("Too many wrong codes for %(phone)s: ask for a new code."), {"phone": phone}
    if not CODE_RE.match(code) or not hmac.compare_digest(digest, _digest(tenant, phone, code)):
        app_db.execute_sql("UPDATE abuse_sandbox_codes SET attempts = attempts + 1 WHERE phone = %s", (phone,))
        return phone, N_("That is not the code sent to %(phone)s (%(left)s attempts left)."), \
            {"phone": phone, "left": CODE_ATTEMPTS - attempts - 1}
    app_db.execute_sql("DELETE FROM abuse_sandbox_codes WHERE phone = %s", (phone,))
    app_db.execute_sql("INSERT INTO abuse_sandbox_numbers (phone, verified_at) VALUES (%s, now()) "
                       "ON CONFLICT (phone) DO UPDATE SET verified_at = now()", (phone,))
    return phone, None, {}
