"""The delivery task: claim a due delivery, POST it signed, record the outcome."""

from __future__ import annotations

import json
import time

from core.db import tenant_transaction
from core.web.params import is_digits

from . import metrics, runtime, sender, service, signing
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
        if not reference or is_digits(reference):
            reference = None
        out = {"messageId": str(reference or data.get("message_id")), "phoneNumber": data.get("phone")}
        key = {"sms:sent": "sentAt", "sms:delivered": "deliveredAt", "sms:failed": "failedAt"}.get(event)
        if key:
            out[key] = data.get("at")
        if event == "sms:failed":
            out["reason"] = data.get("error_code")
        return out
    return dict(data)


def attempt(delivery_id: int, trigger: str = "schedule", tries: int = 0, timeout: float = sender.TIMEOUT,
            lease: float | None = None) -> str | None:
    """One attempt, outside any transaction while the HTTP request runs (at most ``timeout`` s),
    under a claim of ``lease`` seconds (the setting by default) that the pool renews meanwhile."""
    with tenant_transaction():
        job = service.claim(delivery_id, lease=lease)
        if job is None:
            exists = Delivery.select(Delivery.id).where(Delivery.id == delivery_id).exists()
            if not exists and tries < 20:
                return "not-yet-committed"
            return None
        d = Delivery.get_by_id(delivery_id)
        job["body"] = build_body(Endpoint.get_by_id(d.endpoint_id), Event.get_by_id(d.event_id))
    headers = signing.headers(job["secrets"], job["event_id"], int(time.time()), job["body"])
    outcome = sender.post(job["url"], job["body"], headers, timeout=timeout)
    with tenant_transaction():
        state = service.record_outcome(job, outcome, trigger)
    metrics.count_attempt(state)
    runtime.send_notices(job.get("notices", []))
    return state


def run(job, timeout: float, lease: float | None = None) -> str | None:
    """A pool thread's work, in the job's tenant: one attempt; if its delivery is not committed
    yet, ask again shortly through the queue."""
    result = attempt(job.delivery_id, job.trigger, job.tries, timeout, lease)
    if result == "not-yet-committed" and runtime._deliver_task is not None:
        runtime._deliver_task.schedule(job.tenant.slug, job.delivery_id, job.trigger, job.tries + 1, delay=0.25)
    return result


def renew(tenant, delivery_ids, lease: float) -> int:
    """The pool's lease keeper: extend this process's claims on attempts it is running."""
    with tenant_transaction(tenant):
        return service.renew(delivery_ids, lease)


def deliver_task(delivery_id: int, trigger: str = "schedule", tries: int = 0):
    """The queue's task: hand the attempt to the delivery pool and return at once, so the queue's
    workers (scheduled releases, hand-backs) never wait on a receiver."""
    from core.db import current_tenant

    return runtime.delivery_pool().submit(current_tenant.get(), delivery_id, trigger, tries)


def sweep_job(tenant):
    """The due job (inside the workspace's transaction): attempt every due delivery nobody
    triggered (a lost trigger, a retry's time, a dead worker's lapsed claim)."""
    from core.db import current_tenant

    ids = service.due()
    pool = runtime.delivery_pool()
    for delivery_id in ids:
        pool.submit(current_tenant.get(), delivery_id)
    return len(ids)
