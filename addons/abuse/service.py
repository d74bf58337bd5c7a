"""Alerts and what they do: record, notify, hold, suspend; and the review that ends them.

An alert is a row of the workspace's ``abuse_alerts`` (its evidence: numbers, prefixes, counts, a
per-minute series for the chart) with one row in ``public.abuse_queue`` for the platform admins,
written through a SECURITY DEFINER function that takes the workspace from the transaction's role.
While an alert is open, more of the same (same rule, same key: a block of numbers, a country) joins
it. Held recipients carry ``"<rule>: <summary> (alert <id>)"`` as their reason, which is how a
review finds them (:func:`addons.messaging.holds.held_ids`).

Review (:func:`review`): ``release`` (held recipients go to the queue and are sent normally),
``reject`` (they fail with ``held-rejected``), ``false_positive`` (release, and tune the rule for
the workspace: thresholds doubled, the country allowed, or the rule set to record only), ``suspend``
(pause the workspace's sending: the catalogue's ``sending_paused`` mechanism), ``close``. Each is
audited with its written reason.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from core.catalogue import Tenant
from core.db import after_transaction, app_db, connection
from core.events import AuditEvent, emit
from core.i18n import N_

from addons.messaging import holds as message_holds

from . import mail, rules, runtime, signals, summaries

log = logging.getLogger(__name__)

HOLDING = ("hold", "suspend")
REVIEW_ACTIONS = ("release", "reject", "false_positive", "suspend", "close")
STATUS_AFTER = {"release": "released", "reject": "rejected", "false_positive": "false_positive",
                "suspend": "open", "close": "closed"}


class ReviewError(ValueError):
    """A refused review; ``str()`` is an English msgid (``N_``), ``args`` its values."""

    def __init__(self, msgid: str, **args):
        super().__init__(msgid)
        self.args_ = args


def screen(tenant, messages: list[dict]) -> dict:
    """``smsgw_messages_screening``: the findings of the batch made alerts; what to hold."""
    book = rules.book()
    findings = signals.screen(tenant, messages, book)
    if not findings:
        return {}
    out = {}
    for f in findings:
        rule = book.rule(tenant.id, f.rule)
        alert_id = raise_alert(tenant, rule, f, held=len(f.holds) if rule.action in HOLDING else 0)
        if rule.action in HOLDING and f.holds:
            reason = hold_reason(rule, f.summary, alert_id)
            for key in f.holds:
                out.setdefault(key, reason)
    return out


def hold_reason(rule: rules.Rule, summary: str, alert_id: int) -> str:
    return f"{rule.name}: {summary}"[:170] + f" (alert {alert_id})"


_recent: dict = {}  # (workspace, rule, key) -> (alert id, when): alerts that hold nothing, written lately
QUIET = 60.0


def recently_raised(tenant_id: int, rule: rules.Rule, key: str) -> bool:
    """Whether a finding of ``rule`` for ``key`` would change nothing now: the rule holds nothing
    and its alert was written less than :data:`QUIET` seconds ago (:func:`raise_alert` would only
    return it). A signal may then skip working out the finding's evidence."""
    if rule.action in HOLDING:
        return False
    hit = _recent.get((tenant_id, rule.name, key))
    return hit is not None and time.monotonic() - hit[1] < QUIET


def raise_alert(tenant, rule: rules.Rule, f: signals.Finding, held: int = 0) -> int:
    """Inside the tenant transaction: open (or join) the alert for ``f``; queue it for the admins
    unless the rule only records; pause the workspace's sending (after commit) for ``suspend``.

    An alert that holds nothing (record, notify) is written at most once a minute per process while
    its signal lasts (a volume spike is true for every send of that hour); one that holds is always
    written, so its held recipients never join an alert a review closed meanwhile."""
    cache_key = (tenant.id, rule.name, f.key)
    hit = _recent.get(cache_key) if rule.action not in HOLDING else None
    if hit is not None and time.monotonic() - hit[1] < QUIET:
        return hit[0]
    evidence = json.dumps(dict(f.evidence, said=summaries.said(rule.name, f.evidence)), default=str)
    alert_id, inserted = app_db.execute_sql("""
        INSERT INTO abuse_alerts AS a (rule, key, severity, action, summary, evidence, held)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (rule, key) WHERE status = 'open'
        DO UPDATE SET evidence = excluded.evidence, summary = excluded.summary, held = a.held + excluded.held,
                      updated_at = now()
        RETURNING id, (xmax = 0)
    """, (rule.name, f.key[:200], rule.severity, rule.action, f.summary[:500], evidence, held)).fetchone()
    if rule.action != "record":
        # A new alert enters the queue; one that grew (more numbers held) updates its evidence there.
        app_db.execute_sql(f"SELECT {runtime.role_prefix()}_abuse.enqueue(%s, %s, %s::smallint, %s, 'open', %s, '')",
                           (alert_id, rule.name, rule.severity, f.summary[:500], evidence))
    if rule.action not in HOLDING:
        if len(_recent) > 10_000:
            _recent.clear()
        _recent[cache_key] = (alert_id, time.monotonic())
    if inserted:
        _open.pop(tenant.id, None)
        if rule.action != "record":
            mail.arm()  # the owners hear of it (one mail per burst: see .mail)
    if rule.action == "suspend" and inserted:
        slug, why = tenant.slug, f"abuse alert {alert_id}: {f.summary}"[:300]
        after_transaction(lambda committed: committed and _suspend(slug, why))
    return alert_id


def _suspend(slug: str, reason: str) -> None:
    runtime.platform().tenants.pause_sending(slug, reason)


def on_outcomes(tenant, events: list) -> None:
    """``smsgw_message_events``: failure spikes per prefix; holding pending work to the prefix."""
    book = rules.book()
    for f in signals.note_outcomes(tenant, events, book):
        rule = book.rule(tenant.id, f.rule)
        alert_id = raise_alert(tenant, rule, f)
        if rule.action in HOLDING:
            ids = [i for (i,) in app_db.execute_sql(
                "SELECT id FROM recipients WHERE state = 'pending' AND phone >= %s AND phone < %s ORDER BY id LIMIT 10000",
                (f.key, f.key + "~"))]
            n = message_holds.hold(tenant, ids, hold_reason(rule, f.summary, alert_id), "abuse")
            app_db.execute_sql("UPDATE abuse_alerts SET held = held + %s WHERE id = %s", (n, alert_id))
            w = signals.window(tenant)
            w.blocked_prefixes[f.key] = alert_id


# -- the dashboard banner: open alerts that notify, per workspace (read at most every 30 s) ----------

_open: dict = {}
OPEN_FRESH = 30.0


def open_alerts(tenant) -> int:
    """Open alerts of the workspace whose rule does more than record (for the banner); cached."""
    hit = _open.get(tenant.id)
    if hit is not None and time.monotonic() - hit[1] < OPEN_FRESH:
        return hit[0]
    from core.db import tenant_transaction

    with tenant_transaction(tenant.ref):
        n = app_db.execute_sql("SELECT count(*) FROM abuse_alerts WHERE status = 'open' AND action <> 'record'"
                               ).fetchone()[0]
    _open[tenant.id] = (n, time.monotonic())
    return n


# -- workspaces' age (identical text from a new workspace) -----------------------------------------

_young: dict = {"at": 0.0, "days": None, "ids": frozenset()}
_young_lock = threading.Lock()


def is_new_workspace(tenant_id: int, days: float) -> bool:
    """Whether the workspace was created less than ``days`` ago (the catalogue, read once a minute
    in a thread of its own: the caller is inside a tenant transaction)."""
    if time.monotonic() - _young["at"] > 60 or _young["days"] != days:
        with _young_lock:
            if time.monotonic() - _young["at"] > 60 or _young["days"] != days:
                box: list = []

                def read():
                    try:
                        with connection():
                            box.append(frozenset(i for (i,) in app_db.execute_sql(
                                "SELECT id FROM public.tenant WHERE created_at > now() - %s * interval '1 day'",
                                (days,))))
                            box.append(app_db.execute_sql("SELECT coalesce(max(id), 0) FROM public.tenant"
                                                          ).fetchone()[0])
                    except Exception:
                        log.exception("abuse: could not read the workspaces' ages")

                t = threading.Thread(target=read, name="abuse-ages")
                t.start()
                t.join()
                if len(box) == 2:
                    _young.update(at=time.monotonic(), days=days, ids=box[0], newest=box[1])
    # A workspace created since the list was read is newer than any on it: new.
    return tenant_id in _young["ids"] or tenant_id > _young.get("newest", 1 << 62)


# -- review ------------------------------------------------------------------------------------------

def alerts(status: str | None = None, limit: int = 200) -> list[dict]:
    """Inside the tenant transaction: its alerts, most severe and newest first."""
    where, args = ("WHERE status = %s", [status]) if status else ("", [])
    rows = app_db.execute_sql(
        "SELECT id, rule, key, severity, action, status, summary, evidence, held, created_at, updated_at, "
        f"resolved_by, resolution FROM abuse_alerts {where} ORDER BY (status = 'open') DESC, severity DESC, id DESC "
        "LIMIT %s", args + [limit]).fetchall()
    keys = ("id", "rule", "key", "severity", "action", "status", "summary", "evidence", "held", "created_at",
            "updated_at", "resolved_by", "resolution")
    out = [dict(zip(keys, r)) for r in rows]
    # How many each alert holds now: one look at the held recipients (a partial index), not one per alert.
    held = dict(app_db.execute_sql(
        "SELECT substring(hold_reason FROM '\\(alert ([0-9]+)\\)$')::bigint, count(*) FROM recipients "
        "WHERE state = 'held' GROUP BY 1").fetchall())
    for a in out:
        a["evidence"] = rules._json(a["evidence"])
        a["held_now"] = held.get(a["id"], 0) if a["status"] == "open" else 0
    return out


def review(tenant, alert_id: int, action: str, actor: str, reason: str, *, customer: bool = False) -> dict:
    """Inside the tenant transaction: act on an alert. A Customer (``customer``) may release or
    reject only what a low-severity rule held. Returns what was done; the caller audits it (after
    commit: :func:`audit`) and, for ``false_positive`` and ``suspend``, calls :func:`after_review`."""
    reason = (reason or "").strip()
    if action not in REVIEW_ACTIONS:
        raise ReviewError(N_("Choose release, reject, false positive, suspend or close."))
    if not reason or len(reason) > 500:
        raise ReviewError(N_("Write the reason for this action (1 to 500 characters)."))
    row = app_db.execute_sql("SELECT rule, key, severity, status, evidence FROM abuse_alerts WHERE id = %s FOR UPDATE",
                             (alert_id,)).fetchone()
    if row is None:
        raise ReviewError(N_("There is no such alert."))
    rule, key, severity, status, evidence = row
    if customer and (severity > rules.LOW or action not in ("release", "reject")):
        raise ReviewError(N_("Only the platform's reviewers can act on this alert."))
    if status != "open" and action != "suspend":
        raise ReviewError(N_("This alert is closed already (%(status)s); nothing was changed."), status=status)
    ids = message_holds.held_ids(f"(alert {alert_id})")
    moved = 0
    if action in ("release", "false_positive"):
        moved = message_holds.release(tenant, ids, "review")
    elif action == "reject":
        moved = message_holds.reject(tenant, ids, "review")
    status_after = STATUS_AFTER[action]
    _open.pop(tenant.id, None)
    _recent.pop((tenant.id, rule, key), None)
    if rule == "token_ips" and action != "suspend":
        from . import tokens

        tokens.clear(tenant.id, key)
    app_db.execute_sql("UPDATE abuse_alerts SET status = %s, resolved_by = %s, resolution = %s, updated_at = now() "
                       "WHERE id = %s", (status_after, actor[:200], f"{action}: {reason}", alert_id))
    app_db.execute_sql(f"SELECT {runtime.role_prefix()}_abuse.enqueue(%s, %s, %s::smallint, '', %s, NULL, %s)",
                       (alert_id, rule, severity, status_after, f"{action}: {reason}"))
    return {"alert": alert_id, "rule": rule, "key": key, "action": action, "status": status_after, "messages": moved,
            "evidence": rules._json(evidence)}


def after_review(tenant, done: dict, reason: str) -> None:
    """Outside any transaction, after :func:`review` committed: what it changes in the catalogue."""
    if done["action"] == "suspend":
        runtime.platform().tenants.pause_sending(tenant.slug, f"abuse alert {done['alert']}: {reason}"[:300])
    elif done["action"] == "false_positive":
        tune(tenant.id, done["rule"], done["key"], reason)


def tune(tenant_id: int, rule_name: str, key: str, reason: str) -> None:
    """A false positive: make the rule less eager for this workspace (every process reloads)."""
    book = rules.book()
    current = book.rule(tenant_id, rule_name)
    params, action = {}, None
    if rule_name == "geo":
        allow = set(current.params.get("allow") or [])
        from . import numbers

        region = (numbers.regions(key) or [""])[0] if key.isdigit() else ""
        w = signals._windows.get(tenant_id)
        home = sorted(r for c in (w.home if w else ()) for r in numbers.regions(c)[:1])
        params["allow"] = sorted(allow | set(home) | ({region} if region else set()))
    elif rule_name in ("sequential", "identical_text", "failure_spike", "token_ips", "volume_spike"):
        field = {"sequential": "numbers", "identical_text": "recipients", "failure_spike": "minimum",
                 "token_ips": "ips", "volume_spike": "factor"}[rule_name]
        params[field] = current.params.get(field, 1) * 2
    else:
        action = "record"
    with connection():
        with app_db.atomic():
            app_db.execute_sql("""
                INSERT INTO public.abuse_rule_overrides (tenant_id, rule, action, params, reason)
                VALUES (%s, %s, %s, %s, %s)
                ON CONFLICT (tenant_id, rule) DO UPDATE SET action = coalesce(excluded.action,
                    public.abuse_rule_overrides.action), params = public.abuse_rule_overrides.params || excluded.params,
                    reason = excluded.reason, updated_at = now()
            """, (tenant_id, rule_name, action, json.dumps(params), reason[:500]))
    rules.forget()


def audit(platform, tenant, done: dict, actor: str, reason: str, ip: str = "") -> None:
    emit(platform, AuditEvent(action=f"abuse.{done['action']}", tenant_id=tenant.id, tenant_slug=tenant.slug,
                              actor=actor, target=f"alert:{done['alert']}", ip=ip, reason=reason,
                              details={"rule": done["rule"], "messages": done["messages"]}))


def queue(limit: int = 200, status: str = "open") -> list[dict]:
    """The platform admins' queue (catalogue; outside tenant transactions): most severe first."""
    with connection():
        rows = app_db.execute_sql("""
            SELECT q.tenant_id, t.slug, q.alert_id, q.rule, q.severity, q.summary, q.status, q.created_at,
                   q.evidence, q.resolution, q.updated_at
              FROM public.abuse_queue q JOIN public.tenant t ON t.id = q.tenant_id
             WHERE q.status = %s ORDER BY q.severity DESC, q.created_at LIMIT %s""", (status, limit)).fetchall()
    keys = ("tenant_id", "slug", "alert_id", "rule", "severity", "summary", "status", "created_at", "evidence",
            "resolution", "updated_at")
    out = [dict(zip(keys, r)) for r in rows]
    for q in out:
        q["evidence"] = rules._json(q["evidence"])
    return out
