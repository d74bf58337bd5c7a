"""The delivery task: claim a due delivery, POST it signed, record the outcome."""

from __future__ import annotations

import json
import time

from core.db import tenant_transaction

from . import runtime, sender, service, signing
from .models import Delivery, Endpoint, Event


def build_body(endpoint: Endpoint, event: Event) -> bytes:
    payload = event.payload
    if endpoint.compat_id:
        # SMS Gateway for Android receivers expect their own envelope.
        data = payload.get("data", {})
        payload = {"id": event.id, "webhookId": endpoint.compat_id, "event": payload.get("type"),
                   "deviceId": str(data.get("device_id")) if data.get("device_id") else None,
                   "payload": compat_payload(payload.get("type"), data)}
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


def compat_payload(event: str, data: dict) -> dict:
    if event == "sms:received":
        return {"messageId": str(data.get("inbound_id")), "message": data.get("body"), "phoneNumber": data.get("from"),
                "sender": data.get("from"), "recipient": data.get("recipient"),
                "simNumber": data.get("sim_slot"), "receivedAt": data.get("received_at")}
    if event and event.startswith("sms:"):
        # Clients of that API know a message by the id they chose (kept as our reference). An id of digits
        # only is a message number there (docs/compat.md, "Message ids"): such a reference is never shown.
        reference = data.get("reference")
        if not reference or (reference.isascii() and reference.isdigit()):
            reference = None
        out = {"messageId": str(reference or data.get("message_id")), "phoneNumber": data.get("phone")}
        key = {"sms:sent": "sentAt", "sms:delivered": "deliveredAt", "sms:failed": "failedAt"}.get(event)
        if key:
            out[key] = data.get("at")
        if event == "sms:failed":
            out["reason"] = data.get("error_code")
        return out
    return dict(data)


def attempt(delivery_id: int, trigger: str = "schedule", tries: int = 0) -> str | None:
    """One attempt, outside any transaction while the HTTP request runs."""
    with tenant_transaction():
        job = service.claim(delivery_id)
        if job is None:
            exists = Delivery.select(Delivery.id).where(Delivery.id == delivery_id).exists()
            if not exists and tries < 20:
                return "not-yet-committed"
            return None
        d = Delivery.get_by_id(delivery_id)
        job["body"] = build_body(Endpoint.get_by_id(d.endpoint_id), Event.get_by_id(d.event_id))
    headers = signing.headers(job["secrets"], job["event_id"], int(time.time()), job["body"])
    outcome = sender.post(job["url"], job["body"], headers)
    with tenant_transaction():
        return service.record_outcome(job, outcome, trigger)


def deliver_task(delivery_id: int, trigger: str = "schedule", tries: int = 0):
    from core.db import current_tenant

    result = attempt(delivery_id, trigger, tries)
    if result == "not-yet-committed":
        runtime._deliver_task.schedule(current_tenant.get().slug, delivery_id, trigger, tries + 1, delay=0.25)
    return result


def sweep_task():
    """Each minute: attempt every due delivery nobody triggered (dead worker, lost task)."""
    from core.db import current_tenant

    with tenant_transaction():
        ids = service.due()
    slug = current_tenant.get().slug
    for delivery_id in ids:
        runtime._deliver_task(slug, delivery_id)
    return len(ids)
