"""Routing: which phone may take which recipient, claimed atomically; and why work is waiting.

The phones pull: a phone's fetch claims the highest-priority pending
recipients it is eligible for (``FOR UPDATE SKIP LOCKED``, so two phones never
get the same one). Eligibility: enabled and not removed, inside its working
hours, under its sending limits, the requested device/SIM if any, and not a
device that already failed this recipient. Load spreads because each phone
takes only what its limits allow and idle phones ask first; new work wakes the
least-loaded eligible phones.
"""

from __future__ import annotations

import datetime as dt
import functools

from core import due
from core.clock import utcnow
from core.db import app_db

from addons.devices.models import Device
from addons.devices.service import online_now
from addons.devices.settings import merged as merged_settings, within_working_hours

from . import metrics
from .models import MessagingSettings, Recipient
from core.i18n import N_, Moment, Said

WINDOWS = (("per_minute", dt.timedelta(minutes=1)), ("per_hour", dt.timedelta(hours=1)),
           ("per_day", dt.timedelta(days=1)))


def usage(device_id: int) -> dict:
    """Claims by this device in each limit window (claims count: they are about to be sent)."""
    row = app_db.execute_sql("""
        SELECT count(*) FILTER (WHERE at > now() - interval '1 minute'),
               count(*) FILTER (WHERE at > now() - interval '1 hour'),
               count(*)
          FROM recipient_events
         WHERE device_id = %s AND to_state = 'processed' AND at > now() - interval '1 day'
    """, (device_id,)).fetchone()
    return {"per_minute": row[0], "per_hour": row[1], "per_day": row[2]}


def budget(device: Device, now: dt.datetime | None = None) -> tuple[int, Said | None]:
    """How many recipients ``device`` may take now, and if none, why (for people)."""
    return budget_of(device.id, device.settings, now)


def budget_of(device_id: int, device_settings: dict, now: dt.datetime | None = None) -> tuple[int, Said | None]:
    settings = merged_settings(device_settings)
    inside, opens = within_working_hours(settings, now)
    if not inside:
        if opens is None:
            return 0, Said(N_("outside working hours"))
        return 0, Said(N_("outside working hours (opens %(time)s)"), {"time": Moment(opens)})
    limits = settings["limits"]
    if not any(limits.get(key) for key, _ in WINDOWS):
        return 10**9, None  # no limits: nothing to count
    used = usage(device_id)
    remaining = 10**9
    blocked_until = None
    for key, window in WINDOWS:
        cap = limits.get(key) or 0
        if cap:
            left = cap - used[key]
            if left <= 0:
                oldest = app_db.execute_sql(
                    "SELECT min(at) FROM (SELECT at FROM recipient_events WHERE device_id = %s AND "
                    "to_state = 'processed' AND at > now() - %s ORDER BY at DESC LIMIT %s) s",
                    (device_id, window, cap)).fetchone()[0]
                until = (oldest + window) if oldest else utcnow() + window
                blocked_until = max(blocked_until, until) if blocked_until else until
            remaining = min(remaining, max(left, 0))
    if remaining <= 0:
        return 0, Said(N_("rate limit until %(time)s"), {"time": Moment(blocked_until)})
    return remaining, None


# One statement: pick, claim, record the history, arm the hand-back and fetch the texts. Before it,
# in the same query string, {hold} takes the hand-back job's lock (see core.due.hold_sql).
_CLAIM = """{hold}
        WITH picked AS (
            SELECT id FROM recipients
             WHERE state = 'pending'
               AND (not_before IS NULL OR not_before <= now())
               AND (valid_until IS NULL OR valid_until > now())
               AND (requested_device_id IS NULL OR requested_device_id = %(d)s)
               AND NOT (%(d)s = ANY (excluded_devices))
               AND (requested_sim IS NULL OR requested_sim = ANY (%(slots)s))
             ORDER BY priority DESC, id
             LIMIT %(n)s
             FOR UPDATE SKIP LOCKED),
        claimed AS (
            UPDATE recipients r
               SET state = 'processed', device_id = %(d)s, claimed_at = clock_timestamp(),
                   updated_at = clock_timestamp(),
                   attempts = r.attempts + 1, sim_slot = r.requested_sim
              FROM picked
             WHERE r.id = picked.id
         RETURNING r.id, r.message_id, r.phone, r.requested_sim, r.valid_until),
        history AS (
            INSERT INTO recipient_events (recipient_id, from_state, to_state, source, device_id, at)
            SELECT id, 'pending', 'processed', 'claim', %(d)s, clock_timestamp() FROM claimed),
        -- Claims lapse after the claim timeout: the sweep hands back what was not reported by then.
        -- Armed here (a volatile CTE runs once, when referenced) when something was claimed and no
        -- earlier time is armed: once a transaction armed, its later claims (several phones' looks
        -- in one group commit) find their own row, as does every claim while that time is ahead.
        armed AS ({arm})
        SELECT c.id, c.message_id, c.phone, c.requested_sim, c.valid_until, m.text, m.delivery_report,
               (SELECT count(*) FROM armed)
          FROM claimed c JOIN messages m ON m.id = c.message_id
         ORDER BY c.id
    """


@functools.lru_cache(maxsize=4)
def _claim_statement(hold: str, arm: str) -> str:
    """The claim statement with its arming (built once per role prefix, not per claim)."""
    return _CLAIM.replace("{hold}", hold).replace("{arm}", arm)


def claim(tenant, device: Device, limit: int) -> list[dict]:
    """Claim up to ``limit`` recipients for ``device`` (its row is locked by the caller)."""
    if tenant.sending_paused:  # frozen or being deleted: queued messages wait (the cached tenant's field)
        return []
    allowed, _reason = budget(device)
    n = min(limit, allowed)
    if n <= 0:
        return []
    slots = [s["slot"] for s in (device.sims or []) if isinstance(s, dict) and "slot" in s] or [1, 2, 3, 4]
    from .lifecycle import JOB, arm_claims_sql  # lifecycle imports this module

    rows = app_db.execute_sql(_claim_statement(*arm_claims_sql()), {
        "d": device.id, "slots": slots, "n": n, "due_job": JOB, "due_tenant": due.tenant_lock_key(tenant)}).fetchall()
    metrics.count("processed", len(rows))
    return [_item(*row[:-1]) for row in rows]


def held(device_id: int, ids: list[int]) -> list[dict]:
    """Of the recipients ``ids``, those still claimed by ``device_id`` (``processed`` and not handed
    back), as :func:`claim` returns them."""
    if not ids:
        return []
    rows = app_db.execute_sql(
        "SELECT r.id, r.message_id, r.phone, r.sim_slot, r.valid_until, m.text, m.delivery_report "
        "FROM recipients r JOIN messages m ON m.id = r.message_id "
        "WHERE r.id = ANY (%s) AND r.device_id = %s AND r.state = 'processed' ORDER BY r.id",
        (list(ids), device_id)).fetchall()
    return [_item(*row) for row in rows]


def _item(rid, mid, phone, sim, valid_until, text, delivery_report) -> dict:
    item = {"id": rid, "message_id": mid, "to": phone, "text": text, "delivery_report": delivery_report}
    if sim:
        item["sim_slot"] = sim
    if valid_until:
        item["valid_until"] = valid_until.isoformat()
    return item


# The online, enabled devices that may be woken for new work, least loaded first, as one JSON
# value ``[[id, settings], ...]``: a query of its own, or a column of another query
# (a send asks in the round trip it makes anyway).
WAKE_CANDIDATES = """(
    SELECT coalesce(json_agg(json_build_array(c.id, c.settings) ORDER BY c.load, c.id), '[]') FROM (
        SELECT d.id, d.settings,
               (SELECT count(*) FROM recipients r WHERE r.device_id = d.id AND r.state = 'processed') AS load
          FROM devices d
         WHERE d.enabled AND d.online AND d.removed_at IS NULL
         ORDER BY load, d.id
         LIMIT 200) c)"""


def devices_to_wake(count: int, candidates: list | None = None) -> list[int]:
    """Whom to wake for ``count`` new recipients: the least-loaded online, enabled devices that
    can take work now (inside working hours, under their limits). ``candidates``: what
    :data:`WAKE_CANDIDATES` gave in this transaction, if asked already."""
    rows = candidates if candidates is not None else app_db.execute_sql("SELECT " + WAKE_CANDIDATES).fetchone()[0]
    out = []
    for device_id, device_settings in rows:
        if budget_of(device_id, device_settings)[0] > 0:
            out.append(device_id)
            if len(out) >= max(1, min(count, 50)):
                break
    return out


def waiting_reasons(now=None) -> dict:
    """``{device_id: reason}`` for enabled devices that cannot take work now."""
    out = {}
    for device in Device.select().where(Device.enabled & Device.removed_at.is_null()):
        if not online_now(device):
            out[device.id] = Said(N_("offline"))
            continue
        left, reason = budget(device, now)
        if reason:
            out[device.id] = reason
    return out


def why_waiting(recipient: Recipient, now=None) -> Said | None:
    """Why a pending recipient is not on its way, in words a person understands (English, and in the
    reader's language through ``say()``)."""
    if recipient.state != "pending":
        return None
    now = now or utcnow()
    if recipient.not_before and recipient.not_before > now:
        return Said(N_("scheduled for %(time)s"), {"time": Moment(recipient.not_before, "%Y-%m-%d %H:%M")})
    devices = list(Device.select().where(Device.enabled & Device.removed_at.is_null()))
    if not devices:
        return Said(N_("no online device (no phone is paired and enabled yet)"))
    if recipient.requested_device_id:
        devices = [d for d in devices if d.id == recipient.requested_device_id]
    devices = [d for d in devices if d.id not in (recipient.excluded_devices or [])]
    if not devices:
        return Said(N_("no device can send it (none enabled, or all already failed it)"))
    online = [d for d in devices if online_now(d, now)]
    if not online:
        return Said(N_("no online device"))
    reasons = []
    for d in online:
        left, reason = budget(d, now)
        if left > 0:
            return Said(N_("queued: a phone will take it at its next fetch"))
        reasons.append(reason)
    return Said.joined(sorted(set(reasons)))


def waiting_work() -> dict[int, int]:
    """``smsgw_device_waiting_work``: pending recipients only one phone may take (sent to it),
    those any phone may (``0``), and what each phone claimed and has not reported (two index scans
    of the partial indexes ``recipients_queue`` and ``recipients_claimed``)."""
    out: dict[int, int] = {}
    for device_id, n in app_db.execute_sql(
            "SELECT coalesce(requested_device_id, 0), count(*) FROM recipients WHERE state = 'pending' GROUP BY 1 "
            "UNION ALL SELECT device_id, count(*) FROM recipients WHERE state = 'processed' GROUP BY 1").fetchall():
        out[device_id] = out.get(device_id, 0) + n
    return out


def settings() -> MessagingSettings:
    row = app_db.execute_sql("SELECT max_attempts, sticky_sender, claim_timeout_seconds FROM messaging_settings "
                             "LIMIT 1").fetchone()
    if row is None:
        return MessagingSettings(max_attempts=3, sticky_sender=False, claim_timeout_seconds=600)
    return MessagingSettings(id=True, max_attempts=row[0], sticky_sender=row[1], claim_timeout_seconds=row[2])
