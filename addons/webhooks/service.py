"""Webhook endpoints, the events owed to them, and delivery with retries.

Every delivery is recorded in PostgreSQL *in the same transaction* as the
change it reports (the hook runs inside it); a task then attempts it, and the
due job :data:`JOB` (see :mod:`core.due`), armed for each retry, claim lease and
trigger, attempts whatever is due and was not triggered, so nothing depends on
the task queue's delivery guarantees. The ``webhook-id`` is the
event's id, the same on every attempt and redelivery.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from dataclasses import dataclass

from psycopg2.extras import Json, execute_values

from core import due as due_work
from core.clock import utcnow
from core.db import app_db

from . import runtime, signing, ssrf
from .models import Attempt, Delivery, Endpoint, Event
from core.web.problem import Refusal, field_error

def N_(message):  # marks delivery states for the translators' catalogue
    return message


STATE_LABELS = (N_("pending"), N_("succeeded"), N_("failed"))
EVENTS = ("sms:received", "sms:held", "sms:sent", "sms:delivered", "sms:failed", "sms:cancelled", "sms:expired",
          "device:online", "device:offline", "system:ping")
MESSAGE_EVENTS = {"sent": "sms:sent", "delivered": "sms:delivered", "failed": "sms:failed",
                  "cancelled": "sms:cancelled", "expired": "sms:expired", "received": "sms:received",
                  "held": "sms:held"}
# Roughly 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h after the previous attempt.
SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400]
OVERLAP = dt.timedelta(hours=24)  # both secrets sign during a rotation
DISABLE_AFTER = dt.timedelta(days=5)


class WebhookError(Refusal):
    def __init__(self, message: str, errors: list | None = None, status: int = 422, code: str = "validation-failed",
                 args: dict | None = None):
        super().__init__(message, args)
        self.errors = errors or []
        self.status = status
        self.code = code


def _cipher():
    return runtime.platform().data_cipher()


@dataclass(frozen=True)
class CheckedURL:
    """A webhook URL and the SSRF guard's verdict on it (``error``, or None when safe), reached
    by :func:`check_url` *before* any transaction: DNS never runs inside one."""

    url: object
    error: str | None


async def check_url(url) -> CheckedURL:
    """Resolve and check ``url`` off the IOLoop and outside any transaction."""
    try:
        await ssrf.resolve_async(url)
    except ssrf.UnsafeURL as exc:
        return CheckedURL(url, str(exc))
    return CheckedURL(url, None)


def validate(url, events, checked: CheckedURL | None = None) -> tuple[str, list[str]]:
    """The URL's syntax and the events; with ``checked`` (the same URL) the lookup's verdict too."""
    errors = []
    try:
        ssrf.validate_url(url)
        if checked is not None:
            if checked.url != url:
                raise ValueError("the checked URL is not the one being saved")
            if checked.error:
                raise ssrf.UnsafeURL(checked.error)
    except ssrf.UnsafeURL as exc:
        errors.append({"field": "url", "message": str(exc)})
    if not isinstance(events, list) or not events or any(e not in EVENTS for e in events):
        errors.append(field_error("events", N_("give one or more of: %(events)s"), {"events": ", ".join(EVENTS)}))
    if errors:
        raise WebhookError(N_("The webhook is not valid; nothing was saved."), errors)
    return url, sorted(set(events))


def create_endpoint(checked: CheckedURL, events, description: str = "", device_id=None,
                    compat_id=None) -> tuple[Endpoint, str]:
    """Inside the tenant transaction; ``checked`` comes from :func:`check_url`, run before it."""
    url, events = validate(checked.url, events, checked)
    secret = signing.new_secret()
    ep = Endpoint.create(url=url, events=events, description=(description or "")[:200],
                         secret_enc=_cipher().encrypt(secret), device_id=device_id, compat_id=compat_id)
    return ep, secret


def secret_of(ep: Endpoint) -> str:
    return _cipher().decrypt(ep.secret_enc)


def signing_secrets(ep: Endpoint, now=None) -> list[str]:
    out = [secret_of(ep)]
    if ep.previous_secret_enc and ep.previous_secret_until and ep.previous_secret_until > (now or utcnow()):
        out.append(_cipher().decrypt(ep.previous_secret_enc))
    return out


def rotate_secret(ep: Endpoint) -> str:
    secret = signing.new_secret()
    Endpoint.update(previous_secret_enc=ep.secret_enc, previous_secret_until=utcnow() + OVERLAP,
                    secret_enc=_cipher().encrypt(secret), updated_at=utcnow()).where(Endpoint.id == ep.id).execute()
    return secret


def endpoint_json(ep: Endpoint) -> dict:
    return {"id": ep.id, "url": ep.url, "description": ep.description, "events": list(ep.events),
            "enabled": ep.enabled, "device_id": ep.device_id, "disabled_reason": ep.disabled_reason,
            "failing_since": ep.failing_since.isoformat() if ep.failing_since else None,
            "created_at": ep.created_at.isoformat(),
            "secret_rotation_until": ep.previous_secret_until.isoformat()
            if ep.previous_secret_until and ep.previous_secret_until > utcnow() else None}


# -- recording events ---------------------------------------------------------

def record(event: str, data: dict, device_id=None, only_endpoint=None) -> list[int]:
    """Inside the tenant transaction: store the event and one delivery per subscribed endpoint."""
    return record_many([(event, data, device_id)], only_endpoint=only_endpoint)


def record_many(items: list[tuple[str, dict, int | None]], only_endpoint=None) -> list[int]:
    """Inside the tenant transaction: store ``(event, data, device_id)`` events and their deliveries.

    Set-based: one query for the endpoints, one INSERT for the events and one for the
    deliveries, whatever the number of events (nothing at all when no endpoint listens).
    """
    if not items:
        return []
    if only_endpoint is not None:
        endpoints = app_db.execute_sql("SELECT id, device_id, NULL FROM webhook_endpoints WHERE id = %s",
                                       (only_endpoint,)).fetchall()
    else:
        endpoints = app_db.execute_sql(
            "SELECT id, device_id, events FROM webhook_endpoints WHERE enabled AND events && %s::text[]",
            (sorted({event for event, _data, _dev in items}),)).fetchall()
    if not endpoints:
        return []
    now = utcnow().isoformat()
    event_rows, delivery_rows = [], []
    for event, data, device_id in items:
        targets = [eid for eid, ep_device, events in endpoints
                   if (events is None or event in events)
                   and (ep_device is None or device_id is None or ep_device == device_id)]
        if targets:
            event_id = "msg_" + uuid.uuid4().hex
            event_rows.append((event_id, event, Json({"type": event, "timestamp": now, "data": data})))
            delivery_rows += [(t, event_id) for t in targets]
    if not event_rows:
        return []
    cur = app_db.cursor()
    execute_values(cur, "INSERT INTO webhook_events (id, event, payload) VALUES %s", event_rows,
                   page_size=len(event_rows))
    ids = [r[0] for r in execute_values(cur, "INSERT INTO webhook_deliveries (endpoint_id, event_id) VALUES %s "
                                             "RETURNING id", delivery_rows, fetch=True,
                                        page_size=len(delivery_rows))]
    deliver_soon(ids)
    return ids


def deliver_soon(ids) -> None:
    """Inside the tenant transaction: trigger attempts of ``ids`` once it commits, and arm the due
    job a little later in case the trigger is lost (a worker that died with it)."""
    arm(utcnow() + BACKSTOP)
    runtime.after_commit_deliver(ids)


# -- delivering -----------------------------------------------------------------

def claim(delivery_id: int, now=None, lease: float | None = None):
    """Lock a due delivery for one attempt by this process (another live claim is respected).

    The claim holds for ``lease`` seconds (SMSGW_WEBHOOK_LEASE) and names this process; the
    delivery pool renews it while the attempt runs, so it lapses, and the sweeper offers the
    delivery again (same webhook-id), only when this process died."""
    now = now or utcnow()
    lease = dt.timedelta(seconds=lease or runtime.lease_seconds())
    d = (Delivery.select().where((Delivery.id == delivery_id) & (Delivery.state == "pending")
                                 & (Delivery.next_attempt_at <= now)
                                 & (Delivery.locked_until.is_null() | (Delivery.locked_until < now)))
         .for_update("FOR UPDATE SKIP LOCKED").first())
    if d is None:
        return None
    Delivery.update(locked_until=now + lease, claimed_by=runtime.process_id()).where(Delivery.id == d.id).execute()
    arm(now + lease)  # should this process die, the due job offers the delivery again when the claim lapses
    ep = Endpoint.get_by_id(d.endpoint_id)
    ev = Event.get_by_id(d.event_id)
    if not ep.enabled:
        return None
    return {"delivery_id": d.id, "attempt": d.attempts + 1, "url": ep.url, "secrets": signing_secrets(ep, now),
            "event_id": ev.id}


def renew(delivery_ids, lease: float, now=None) -> int:
    """Inside the tenant transaction: extend this process's live claims on ``delivery_ids`` by
    ``lease`` seconds from now (claims already recorded or taken over are left alone)."""
    now = now or utcnow()
    return (Delivery.update(locked_until=now + dt.timedelta(seconds=lease))
            .where(Delivery.id.in_(list(delivery_ids)) & (Delivery.state == "pending")
                   & (Delivery.claimed_by == runtime.process_id()) & Delivery.locked_until.is_null(False))
            .execute())


def next_delay(attempt: int, retry_after: float | None) -> float | None:
    """Seconds until the next attempt after ``attempt`` failed, or None when out of attempts."""
    if attempt > len(SCHEDULE):
        return None
    base = SCHEDULE[attempt - 1]
    delay = base * random.uniform(0.9, 1.1)  # jitter: spread retries of many endpoints
    if retry_after is not None:
        delay = max(delay, min(retry_after, 86400))
    return delay


def record_outcome(job: dict, outcome, trigger: str = "schedule", now=None) -> str:
    """Store the attempt and decide what happens next. Returns the delivery's new state; mails
    owed once this transaction commits are left in ``job["notices"]``."""
    now = now or utcnow()
    d = Delivery.select().where(Delivery.id == job["delivery_id"]).for_update().first()
    Attempt.create(delivery=d.id, attempt=job["attempt"], trigger=trigger, status_code=outcome.status,
                   duration_ms=outcome.duration_ms, error=outcome.error, response_excerpt=outcome.excerpt[:500])
    ep = Endpoint.get_by_id(d.endpoint_id)
    fields = {"attempts": job["attempt"], "last_status": outcome.status, "last_error": outcome.error,
              "locked_until": None, "claimed_by": None, "updated_at": now}
    if outcome.ok:
        fields["state"] = "succeeded"
        Endpoint.update(failing_since=None).where(Endpoint.id == ep.id).execute()
    elif outcome.status == 410:
        fields["state"] = "failed"
        job["notices"] = disable(ep, "The endpoint answered 410 Gone.")
    else:
        if ep.failing_since is None:
            Endpoint.update(failing_since=now).where(Endpoint.id == ep.id).execute()
        elif now - ep.failing_since > DISABLE_AFTER:
            fields["state"] = "failed"
            job["notices"] = disable(ep, f"Every delivery failed for {DISABLE_AFTER.days} days.")
        if "state" not in fields:
            delay = next_delay(job["attempt"], outcome.retry_after)
            if delay is None:
                fields["state"] = "failed"
            else:
                fields["next_attempt_at"] = now + dt.timedelta(seconds=delay)
                arm(fields["next_attempt_at"])
    Delivery.update(**fields).where(Delivery.id == d.id).execute()
    return fields.get("state", "pending")


def disable(ep: Endpoint, reason: str) -> list[tuple[str, str, str]]:
    """Inside the transaction; returns the notices to send once it has committed."""
    Endpoint.update(enabled=False, disabled_reason=reason, updated_at=utcnow()).where(Endpoint.id == ep.id).execute()
    return runtime.disabled_notices(ep.url, reason)


def redeliver(endpoint_id: int, delivery_id: int) -> Delivery:
    """Inside the transaction: queue another attempt of one of the endpoint's deliveries now, with
    the same webhook-id (the API's and the dashboard's "deliver again")."""
    if not Endpoint.select().where(Endpoint.id == endpoint_id).exists():
        raise WebhookError(N_("There is no such webhook here."), status=404, code="not-found")
    d = Delivery.select().where((Delivery.id == delivery_id) & (Delivery.endpoint == endpoint_id)).for_update().first()
    if d is None:
        raise WebhookError(N_("There is no such delivery here."), status=404, code="not-found")
    Delivery.update(state="pending", next_attempt_at=utcnow(), locked_until=None, claimed_by=None,
                    updated_at=utcnow()).where(
        Delivery.id == d.id).execute()
    deliver_soon([d.id])
    return d


JOB = "webhooks.sweep"
BACKSTOP = dt.timedelta(seconds=30)  # after a trigger, when the due job looks whether it was lost

_NEXT_DUE = """
SELECT min(greatest(d.next_attempt_at, d.locked_until)) FROM webhook_deliveries d
  JOIN webhook_endpoints e ON e.id = d.endpoint_id
 WHERE d.state = 'pending' AND e.enabled
"""


def arm(when) -> None:
    """Inside the tenant transaction: a delivery needs an attempt (or its claim lapses) at ``when``."""
    due_work.arm(JOB, when)


def next_due(tenant=None):
    """Inside the tenant transaction: the earliest retry or claim lapse still ahead (None: none)."""
    return app_db.execute_sql(_NEXT_DUE).fetchone()[0]


def due(limit: int = 500, now=None) -> list[int]:
    now = now or utcnow()
    # Deliveries of a disabled endpoint wait (pending) until it is enabled again.
    return [d.id for d in Delivery.select(Delivery.id).join(Endpoint).where(
        (Delivery.state == "pending") & (Delivery.next_attempt_at <= now) & Endpoint.enabled
        & (Delivery.locked_until.is_null() | (Delivery.locked_until < now))).order_by(Delivery.next_attempt_at)
        .limit(limit)]
