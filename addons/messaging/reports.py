"""Applying phones' status reports: idempotent, never backwards, retrying elsewhere when it can help.

Reports are applied set-based, those of one request or of several phones' requests that
arrived together (:mod:`core.groupcommit`): one statement locks and reads every recipient named,
the state machine runs in Python over those rows (a batch may hold ``sent`` then
``delivered`` for the same recipient), and one statement writes the new states and
their history rows. The events go to subscribers in one call.
"""

from __future__ import annotations

from core.clock import utcnow
from core.db import app_db

from . import dispatch, metrics, states
from .lifecycle import wake_eligible
from .transitions import EVENT_FOR_STATE, emit_many

# Android SmsManager results another phone could overcome; anything else is final.
RETRIABLE = frozenset({"GENERIC_FAILURE", "RADIO_OFF", "NO_SERVICE", "LIMIT_EXCEEDED", "1", "2", "4", "5"})

_COLUMNS = ("state", "device_id", "attempts", "excluded_devices", "requested_device_id", "sent_at",
            "delivered_at", "failed_at", "error_code", "claimed_at", "sim_slot", "message_id", "phone")
_WRITTEN = ("state", "device_id", "excluded_devices", "sent_at", "delivered_at", "failed_at", "error_code",
            "claimed_at", "sim_slot")

def _load(ids: list[int]) -> dict[int, dict]:
    """Lock (in id order, so concurrent batches cannot deadlock) and read the named recipients."""
    if not ids:
        return {}
    rows = app_db.execute_sql(f"""
        SELECT r.id, {', '.join('r.' + c for c in _COLUMNS)}, m.reference, m.device_id
          FROM recipients r JOIN messages m ON m.id = r.message_id
         WHERE r.id = ANY (%s) ORDER BY r.id FOR UPDATE OF r
    """, (sorted(set(ids)),)).fetchall()
    out = {}
    for row in rows:
        rec = dict(zip(_COLUMNS, row[1:-2]))
        rec["reference"], rec["message_device_id"] = row[-2], row[-1]
        out[row[0]] = rec
    return out

def apply(tenant, batches: list[tuple]) -> list[list[dict]]:
    """Apply ``[(device, reports)]`` (the reports of one or several phones, a phone perhaps more
    than once, in the order given); one list of results per batch."""
    recs = _load([rep["message_id"] for _, reports in batches for rep in reports if rep["message_id"]])
    run = _Run(recs)
    out = [[run.report(device, rep) for rep in reports] for device, reports in batches]
    if run.changed:
        _write(recs, sorted(run.changed), run.history)
    emit_many(tenant, run.events)
    if run.retrying:
        wake_eligible(tenant, 5)
    return out


class _Run:
    """One application of reports: the locked rows as they change, the history rows and events to
    write, and what is read only when a retriable failure needs it."""

    def __init__(self, recs: dict):
        self.recs, self.now = recs, utcnow()
        self.history, self.events, self.changed = [], [], set()
        self.retrying = False
        self._max_attempts = self._enabled_devices = None

    def report(self, device, rep: dict) -> dict:
        mid = rep["message_id"]
        r = self.recs.get(mid) if mid else None
        if r is None or r["device_id"] != device.id:
            # Unknown, or handed to another phone since: this phone's word no longer counts.
            return {"message_id": mid, "status": "unknown", "state": None}
        target, code, at = rep["state"], rep.get("error_code"), rep["at"]
        if target == "failed" and code == "EXPIRED" and r["state"] == "processed":
            target = "expired"  # the phone held it past valid_until and did not send it
        if target == "failed" and r["state"] == "processed" and code in RETRIABLE and self._retry(r, device.id):
            self.history.append((mid, r["state"], "pending", "retry", device.id, code, at))
            r.update(state="pending", excluded_devices=list(r["excluded_devices"] or []) + [device.id],
                     error_code=code, device_id=None, claimed_at=None, sim_slot=None)
            self.changed.add(mid)
            self.retrying = True
            return {"message_id": mid, "status": "retrying", "state": "pending"}
        if r["state"] == target or not states.is_forward(r["state"], target):
            return {"message_id": mid, "status": "ignored", "state": r["state"]}
        self.history.append((mid, r["state"], target, "device", device.id, code, at))
        when = at or self.now
        if target == "sent":
            r["sent_at"] = when
        elif target == "delivered":
            r["delivered_at"] = when
            r["sent_at"] = r["sent_at"] or when
        elif target == "failed":
            r["failed_at"], r["error_code"] = when, code
        r["state"] = target
        self.changed.add(mid)
        event = EVENT_FOR_STATE.get(target)
        if event:
            self.events.append((event, {"message_id": r["message_id"], "recipient_id": mid, "phone": r["phone"],
                                        "state": target, "device_id": r["device_id"],
                                        "error_code": r["error_code"], "reference": r["reference"],
                                        "at": when.isoformat()}))
        return {"message_id": mid, "status": "applied", "state": target}

    def _retry(self, r: dict, failing_device: int) -> bool:
        """A retriable failure: whether another phone should get the recipient."""
        if self._max_attempts is None:
            self._max_attempts = dispatch.settings().max_attempts
        if r["attempts"] >= self._max_attempts:
            return False
        if self._enabled_devices is None:
            self._enabled_devices = {row[0] for row in app_db.execute_sql(
                "SELECT id FROM devices WHERE enabled AND removed_at IS NULL").fetchall()}
        return _another_device_could(r, failing_device, self._enabled_devices)


def _write(recs: dict, ids: list[int], history: list[tuple]) -> None:
    """The recipients' new states and their history rows, in one statement."""
    cur = app_db.cursor()
    values = b",".join(cur.mogrify("(%s::bigint,%s,%s::bigint,%s::bigint[],%s::timestamptz,%s::timestamptz,"
                                   "%s::timestamptz,%s,%s::timestamptz,%s::smallint)",
                                   (i, *[recs[i][c] for c in _WRITTEN])) for i in ids)
    events = b",".join(cur.mogrify("(%s::bigint,%s,%s,%s,%s::bigint,%s,%s::timestamptz)", h) for h in history)
    metrics.count_history(history)
    cur.execute(b"""
        WITH v (id, state, device_id, excluded_devices, sent_at, delivered_at, failed_at, error_code, claimed_at,
                sim_slot) AS (VALUES """ + values + b"""),
        upd AS (
            UPDATE recipients r
               SET state = v.state, device_id = v.device_id, excluded_devices = v.excluded_devices,
                   sent_at = v.sent_at, delivered_at = v.delivered_at, failed_at = v.failed_at,
                   error_code = v.error_code, claimed_at = v.claimed_at, sim_slot = v.sim_slot,
                   updated_at = clock_timestamp()
              FROM v WHERE r.id = v.id)
        INSERT INTO recipient_events (recipient_id, from_state, to_state, source, device_id, error_code,
                                      reported_at, at)
        SELECT h.*, clock_timestamp()
          FROM (VALUES """ + events + b""") AS h (recipient_id, from_state, to_state, source, device_id,
                                                 error_code, reported_at)""")

def _another_device_could(r: dict, failing_device: int, enabled_devices: set[int]) -> bool:
    if r["requested_device_id"] and r["requested_device_id"] == failing_device and r["message_device_id"]:
        return False  # the sender asked for this very phone
    return bool(enabled_devices - set(r["excluded_devices"] or []) - {failing_device})
