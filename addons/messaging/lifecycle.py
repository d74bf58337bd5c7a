"""Time-driven work per tenant: expiry, scheduled release, handing back silent phones' work.

Run as the due job :data:`JOB` (see :mod:`core.due`) when the workspace's earliest time comes
(:func:`next_due`): a scheduled send's ``send_at``, a ``valid_until``, a claim's timeout, an
idempotency key's end; and by tests directly. Idempotent: running it twice, or in two workers
at once, does the same as once (row locks with SKIP LOCKED keep them apart).
"""

from __future__ import annotations

import datetime as dt

from core import due
from core.clock import utcnow
from core.db import app_db

from addons.devices.service import wake_key

from . import dispatch, runtime
from .models import IdempotencyKey, Recipient
from .submit import IDEMPOTENCY_TTL
from .transitions import transition, transition_all


def expire(tenant, now: dt.datetime | None = None) -> int:
    now = now or utcnow()
    rows = (Recipient.select().where(Recipient.state.in_(("pending", "held", "processed")) & Recipient.valid_until.is_null(False)
                                     & (Recipient.valid_until <= now))
            .order_by(Recipient.id).limit(5000))
    return transition_all(tenant, rows.for_update("FOR UPDATE SKIP LOCKED"), "expired", "sweeper")


def hand_back(tenant, device_id: int | None = None, now: dt.datetime | None = None) -> int:
    """Claimed but unreported work goes back to the queue: from one device (it went silent or was
    removed), or from any device whose claim is older than the claim timeout."""
    now = now or utcnow()
    q = Recipient.select().where(Recipient.state == "processed")
    if device_id is not None:
        q = q.where(Recipient.device_id == device_id)
    else:
        timeout = dt.timedelta(seconds=dispatch.settings().claim_timeout_seconds)
        q = q.where(Recipient.claimed_at < now - timeout)
    n = 0
    for r in q.order_by(Recipient.id).limit(5000).for_update("FOR UPDATE SKIP LOCKED"):
        # A sticky preference for the silent phone must not keep the work waiting for it.
        extra = {} if _explicit_device(r) else {"requested_device_id": None}
        n += transition(tenant, r, "pending", "handback", extra=extra)
    if n:
        wake_eligible(tenant, n)
    return n


def unclaim(tenant, device_id: int, ids: list[int]) -> int:
    """Recipients claimed for ``device_id`` that never reached the phone go back to the queue;
    the claim does not count as an attempt."""
    n = 0
    rows = (Recipient.select().where(Recipient.id.in_(ids) & (Recipient.state == "processed")
                                     & (Recipient.device_id == device_id))
            .order_by(Recipient.id).for_update())
    for r in rows:
        n += transition(tenant, r, "pending", "unclaimed", extra={"attempts": max(0, r.attempts - 1)})
    if n:
        wake_eligible(tenant, n)
    return n


def _explicit_device(r: Recipient) -> bool:
    from .models import Message

    return Message.select(Message.device_id).where(Message.id == r.message_id).scalar() is not None


def wake_eligible(tenant, count: int) -> list[str]:
    platform = runtime.platform()
    keys = []
    for device_id in dispatch.devices_to_wake(count):
        key = wake_key(tenant.slug, device_id)
        platform.wake_on_commit(app_db, key)
        keys.append(key)
    return keys


def release_due(tenant) -> int:
    """Wake phones if claimable work is waiting (scheduled work that just became due, mostly)."""
    due = app_db.execute_sql(
        "SELECT count(*) FROM recipients WHERE state = 'pending' AND (not_before IS NULL OR not_before <= now()) "
        "AND (valid_until IS NULL OR valid_until > now())").fetchone()[0]
    if due:
        wake_eligible(tenant, due)
    return due


def release_window(tenant, since: dt.datetime, until: dt.datetime) -> list[str]:
    """Wake phones for scheduled work that became due in ``(since, until]``: what the release task
    does at ``send_at``, done by a web process while the worker is late. Returns the wake-up keys."""
    due = app_db.execute_sql(
        "SELECT count(*) FROM recipients WHERE state = 'pending' AND not_before > %s AND not_before <= %s "
        "AND (valid_until IS NULL OR valid_until > now())", (since, until)).fetchone()[0]
    return wake_eligible(tenant, due) if due else []


def purge_idempotency_keys(now: dt.datetime | None = None) -> int:
    return IdempotencyKey.delete().where(IdempotencyKey.created_at < (now or utcnow()) - IDEMPOTENCY_TTL).execute()


def sweep(tenant, now: dt.datetime | None = None) -> dict:
    return {"expired": expire(tenant, now), "handed_back": hand_back(tenant, now=now),
            "due": release_due(tenant), "idempotency_purged": purge_idempotency_keys(now)}


JOB = "messaging.sweep"

_NEXT_DUE = """
SELECT least(
    (SELECT min(not_before) FROM recipients WHERE state = 'pending' AND not_before > now()),
    (SELECT min(valid_until) FROM recipients WHERE state IN ('pending', 'held', 'processed')
        AND valid_until IS NOT NULL),
    (SELECT min(claimed_at) FROM recipients WHERE state = 'processed')
        + make_interval(secs => coalesce((SELECT claim_timeout_seconds FROM messaging_settings LIMIT 1), 600)),
    (SELECT min(created_at) FROM idempotency_keys) + %s)
"""


def next_due(tenant=None) -> dt.datetime | None:
    """Inside the tenant transaction: when :func:`sweep` next has something to do (None: nothing
    timed is left). Idempotency keys are not armed when they are made (that would cost every
    send with a key a statement): the repair pass arms their purge, hours before it is due."""
    return app_db.execute_sql(_NEXT_DUE, (IDEMPOTENCY_TTL,)).fetchone()[0]


# When claims made now lapse (the sweep hands back what was not reported by then).
CLAIMS_LAPSE = ("clock_timestamp() + make_interval(secs => coalesce("
                "(SELECT claim_timeout_seconds FROM messaging_settings LIMIT 1), 600))")


def arm_claims_sql() -> tuple[str, str]:
    """For the claim statement: the statement to run before it and the query (a CTE's) that arms
    the sweep for when its claims lapse, unless an earlier time is armed already (parameters
    ``due_job``, ``due_tenant``), so a claim costs no extra round trip (see :func:`core.due.hold_sql`)."""
    return (due.hold_sql("due_job", "due_tenant"),
            due.arm_unless_armed_sql("due_job", CLAIMS_LAPSE, "(SELECT 1 FROM claimed LIMIT 1) AS anything_claimed"))
