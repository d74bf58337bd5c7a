"""The new-workspace sandbox (issue 20, item 3), an operator setting: the rule ``sandbox`` (off by
default; any other action turns it on, ``params``: ``days``, ``daily_cap``, ``paid_plans_exempt``).

A workspace younger than ``days`` (or on the free plan, unless exempt by a paid plan) may send only
to numbers its Customer listed or verified on the *Security* page, at most ``daily_cap`` recipients
a day, until the operator approves it: a per-workspace override of the rule with action ``off``
(``smsgw abuse`` SQL, or the admin queue's false positive on a sandbox refusal). A refused send is
a 403 problem that names the number and says how to allow it; nothing of it is stored.

The check runs in ``smsgw_messages_submitting`` (before anything is written); for a workspace
outside the sandbox it costs two dictionary lookups, and inside it one statement.
"""

from __future__ import annotations

import re

from core.db import app_db, array_literal
from core.i18n import N_
from core.web.problem import Problem

from . import rules, service

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


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
    wanted = sorted({p for phones in recipients for p in phones})
    allowed_today = app_db.execute_sql(
        "SELECT ARRAY(SELECT phone FROM abuse_sandbox_numbers WHERE phone = ANY (%s::text[]) "
        "AND (listed_by IS NOT NULL OR verified_at IS NOT NULL)), "
        "coalesce((SELECT sum(n) FROM abuse_hourly WHERE hour >= date_trunc('day', now())), 0)",
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
                                  "not one of them. Add the number there (or with POST %(api)s), or ask the "
                                  "operator to approve the workspace. Nothing was sent."),
                               title=N_("Number not allowed in the sandbox"),
                               args={"phone": missing[0], "page": "/security",
                                     "api": "/api/v1/abuse/sandbox/numbers"}))
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


class SandboxError(ValueError):
    pass


def add(phone: str, actor: str, region: str) -> str:
    """Inside the tenant transaction: the Customer lists a number (normalised); the number."""
    from addons.messaging.phones import PhoneError, normalise

    try:
        phone = normalise((phone or "").strip()[:40], region)
    except PhoneError as exc:
        raise SandboxError(str(exc)) from None
    app_db.execute_sql("INSERT INTO abuse_sandbox_numbers (phone, listed_by) VALUES (%s, %s) "
                       "ON CONFLICT (phone) DO UPDATE SET listed_by = excluded.listed_by", (phone, actor[:200]))
    return phone
