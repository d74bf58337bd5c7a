"""Unauthorized-access monitoring (issue 20, item 5), from the kernel's audit events
(``smsgw_audit_event``: ``login.failure`` and ``login.success``), in the same review queue.

* **Failed sign-ins across accounts from one source**: per client address (in this process's memory,
  15 minutes: the rule's ``minutes``), the distinct accounts it failed on; at ``accounts`` (5) or more
  in one workspace an
  alert ``signin_failures`` (its key: the address) is raised in that workspace, naming only that
  workspace's addresses typed (never another workspace's).
* **A sign-in from a new device** of a Customer or member: the device is the browser's User-Agent
  (hashed; the text itself is not kept); a sign-in with one never seen for that person raises a
  low-severity ``new_device`` alert and mails the person, with the *This wasn't me* link (*Account →
  Security*, which signs out everywhere). A person's first sign-in ever is not "new".

Alerts here hold nothing (there is nothing to hold); by default they notify the platform's queue.
API tokens used after a long idle time are not watched yet (the kernel updates ``last_used_at``
before any addon hears of the use).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time

from core.db import app_db, tenant_transaction

from . import rules, runtime, service, signals

log = logging.getLogger(__name__)


_failures: dict = {}  # (tenant_id, ip) -> {email: time}
_lock = threading.Lock()


def on_audit_event(event) -> None:
    if event.action not in ("login.failure", "login.success") or not event.tenant_slug:
        return
    platform = runtime.platform()
    tenant = platform.tenant_cache.get(event.tenant_slug) if platform else None
    if tenant is None or tenant.id != event.tenant_id or "abuse" not in tenant.enabled_addons:
        return
    nested = app_db.transaction_depth() > 0  # emit_with_work: inside a transaction, as the serving role
    try:
        if event.action == "login.failure":
            _failure(tenant, event)
        else:
            _success(platform, tenant, event)
    finally:
        if nested:
            app_db.execute_sql("SET LOCAL ROLE NONE; SET LOCAL search_path TO public")


def _failure(tenant, event) -> None:
    rule = rules.book().rule(tenant.id, "signin_failures")
    if rule.action == "off":
        return
    now, window = time.time(), 60 * float(rule.params.get("minutes", 15))
    key = (tenant.id, event.ip or "?")
    with _lock:
        seen = _failures.setdefault(key, {})
        seen[(event.actor_name or "")[:254].lower()] = now
        for email in [e for e, t in seen.items() if t < now - window]:
            del seen[email]
        accounts = sorted(seen)
        if len(_failures) > 50_000:
            _failures.clear()
    if len(accounts) < int(rule.params.get("accounts", 5)):
        return
    finding = signals.Finding("signin_failures", key[1], f"{len(accounts)} accounts failed from {key[1]}",
                              {"addresses": [key[1]], "count": len(accounts), "accounts": accounts[:50]})
    with tenant_transaction(tenant.ref):
        service.raise_alert(tenant, rule, finding)


def fingerprint(user_agent: str) -> str:
    return hashlib.sha256((user_agent or "").strip()[:500].encode()).hexdigest()[:32]


def _success(platform, tenant, event) -> None:
    kind, _, number = (event.actor or "").partition(":")
    if kind != "user" or not number.isdigit():
        return
    rule = rules.book().rule(tenant.id, "new_device")
    if rule.action == "off":
        return
    user_id, device = int(number), fingerprint(event.user_agent)
    with tenant_transaction(tenant.ref):
        known, first = app_db.execute_sql(
            "SELECT bool_or(device = %s), count(*) = 0 FROM abuse_known_devices WHERE user_id = %s",
            (device, user_id)).fetchone()
        if known:
            return
        app_db.execute_sql("INSERT INTO abuse_known_devices (user_id, device) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                           (user_id, device))
        if first:
            return  # the first sign-in ever: nothing to compare with
        email = app_db.execute_sql("SELECT email FROM users WHERE id = %s", (user_id,)).fetchone()
        finding = signals.Finding("new_device", f"user:{user_id}:{device[:12]}", f"user:{user_id} signed in from a "
                                  "new device", {"addresses": [event.ip or "?"], "token": f"user:{user_id}"})
        service.raise_alert(tenant, rule, finding)
    if email and rule.action != "record":  # record only: the alert, no mail
        _mail(platform, tenant, email[0], event.ip or "")


def _mail(platform, tenant, to: str, ip: str) -> None:
    link = f"{platform.settings.public_url(tenant.slug)}/account/security"

    def compose(_, ngettext, fmt):
        return (_("New sign-in to your account"),
                _("Your account in the workspace %(workspace)s was just used to sign in from a device we have "
                  "not seen before (address %(ip)s).", workspace=tenant.name, ip=ip or "?") + "\n\n"
                + _("If this was you, there is nothing to do.") + "\n"
                + _("If this wasn't you: open %(link)s, choose \"%(button)s\", then change your password.",
                    link=link, button=_("This wasn't me: sign out everywhere")) + "\n")

    try:
        platform.send_mail(to, compose, tenant=tenant)
    except Exception:  # the sign-in itself must not fail for a mail
        log.exception("abuse: could not mail a new-device notice")
