"""Applying phones' status reports: idempotent, never backwards, retrying elsewhere when it can help."""

from __future__ import annotations

from core.db import app_db

from addons.devices.service import wake_key

from . import dispatch, runtime, states
from .models import Recipient
from .transitions import transition

# Android SmsManager results another phone could overcome; anything else is final.
RETRIABLE = frozenset({"GENERIC_FAILURE", "RADIO_OFF", "NO_SERVICE", "LIMIT_EXCEEDED", "1", "2", "4", "5"})


def apply(tenant, device, reports: list[dict]) -> list[dict]:
    settings = dispatch.settings()
    results, requeued = [], False
    for rep in reports:
        mid = rep["message_id"]
        r = Recipient.select().where(Recipient.id == mid).for_update().first() if mid else None
        if r is None or r.device_id != device.id:
            # Unknown, or handed to another phone since: this phone's word no longer counts.
            results.append({"message_id": mid, "status": "unknown", "state": None})
            continue
        target = rep["state"]
        code = rep.get("error_code")
        if target == "failed" and code == "EXPIRED" and r.state == "processed":
            target = "expired"  # the phone held it past valid_until and did not send it
        if (target == "failed" and r.state == "processed" and code in RETRIABLE
                and r.attempts < settings.max_attempts and _another_device_could(r, device.id)):
            excluded = list(r.excluded_devices or []) + [device.id]
            transition(tenant, r, "pending", "retry", device_id=device.id, error_code=code,
                       reported_at=rep["at"], extra={"excluded_devices": excluded, "error_code": code})
            results.append({"message_id": mid, "status": "retrying", "state": "pending"})
            requeued = True
            continue
        if r.state == target or not states.is_forward(r.state, target):
            results.append({"message_id": mid, "status": "ignored", "state": r.state})
            continue
        applied = transition(tenant, r, target, "device", device_id=device.id, error_code=code,
                             reported_at=rep["at"])
        results.append({"message_id": mid, "status": "applied" if applied else "ignored", "state": r.state})
    if requeued:
        platform = runtime.platform()
        for device_id in dispatch.devices_to_wake(5):
            platform.wake_on_commit(app_db, wake_key(tenant.slug, device_id))
    return results


def _another_device_could(r: Recipient, failing_device: int) -> bool:
    if r.requested_device_id and r.requested_device_id == failing_device and _explicit(r):
        return False
    excluded = set(r.excluded_devices or []) | {failing_device}
    row = app_db.execute_sql("SELECT count(*) FROM devices WHERE enabled AND removed_at IS NULL AND NOT (id = ANY(%s))",
                             (list(excluded),)).fetchone()
    return row[0] > 0


def _explicit(r: Recipient) -> bool:
    from .models import Message

    return Message.select(Message.device_id).where(Message.id == r.message_id).scalar() is not None
