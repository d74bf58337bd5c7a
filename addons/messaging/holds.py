"""Held recipients (see :mod:`.states`): the public API other addons (abuse monitoring) and the
pages use to hold pending work, and to release or reject what is held.

Everything here runs inside the tenant's transaction, on row-locked recipients, through the state
machine (:mod:`.transitions`): each change is recorded in the recipient's history and emitted as
a message event (``held``; a release emits nothing until the phone reports; a rejection is
``failed`` with :data:`.states.HELD_REJECTED`). Nothing is dropped: a held recipient ends released,
rejected, cancelled or expired.
"""

from __future__ import annotations

from core import due

from .models import Recipient
from .states import HELD_REJECTED
from .transitions import transition_all


def _locked(ids, state: str):
    return (Recipient.select().where(Recipient.id.in_(list(ids)) & (Recipient.state == state))
            .order_by(Recipient.id).for_update())


def hold(tenant, ids, reason: str, source: str) -> int:
    """Hold pending recipients (not yet claimed by a phone) with ``reason``; how many were held."""
    rows = list(_locked(ids, "pending"))
    return transition_all(tenant, rows, "held", source, extra={"hold_reason": str(reason)[:200]})


def held_ids(reason_contains: str | None = None, limit: int = 10_000) -> list[int]:
    """Ids of held recipients (those whose reason contains ``reason_contains``, if given)."""
    q = Recipient.select(Recipient.id).where(Recipient.state == "held")
    if reason_contains is not None:
        q = q.where(Recipient.hold_reason.contains(reason_contains))
    return [r.id for r in q.order_by(Recipient.id).limit(limit)]


def release(tenant, ids, source: str) -> int:
    """Held recipients go to the queue (then sent normally); phones are woken once this commits."""
    from .lifecycle import JOB, wake_eligible

    rows = list(_locked(ids, "held"))
    n = transition_all(tenant, rows, "pending", source)
    if n:
        wake_eligible(tenant, n)
        timed = [t for r in rows for t in (r.not_before, r.valid_until) if t]
        if timed:
            due.arm(JOB, min(timed))
    return n


def reject(tenant, ids, source: str) -> int:
    """Held recipients fail with :data:`HELD_REJECTED` (a ``failed`` event each)."""
    rows = list(_locked(ids, "held"))
    return transition_all(tenant, rows, "failed", source, error_code=HELD_REJECTED)
