"""Metering: the billable usage of a workspace, exactly once.

**What is billed: accepted segments.** A recipient counts its message's segments once the send is
accepted (the ``202`` answer; metric ``submitted`` of the usage addon), whatever happens to it
after. Why accepted and not sent:

* the quota is decided at submit (a hard-stop plan refuses *before* accepting, never accepts and
  then drops), so the meter has to count what the quota counts, at the same moment, or a workspace
  could be refused for segments it is not billed for (or the other way round);
* "sent" is reported by the customer's own phones: a phone that never reports, reports late, or
  is removed would make the meter depend on devices we do not control, and a bill could change
  weeks after its period ended; accepted segments are final when the period ends;
* the platform's work (storage, dispatch, retries, webhooks) is done for every accepted message,
  sent or not.

A cancelled, expired or failed message is therefore billed; the Billing page says so.

**Exactly once.** Nothing here counts: the usage addon's statement triggers add each statement's
recipients to ``usage_counts`` in the transaction that stores them, so concurrent requests, group
commit (a failed group rolls back its counts with its rows, then each request runs alone), a
replayed Idempotency-Key (answered from the stored answer: no insert, no count) and a SIGKILL (the
open transaction is rolled back, rows and counts together) count each segment once. Phone reports
insert ``recipient_events`` rows only, which never change ``submitted``.

**Periods and UTC days.** ``usage_counts`` is per UTC day. A subscription's period starts when it
was made, usually in the middle of a day, so :func:`period_usage` takes whole days from the
aggregates and counts the part of a day at either end of the period from the message tables
(``billing_usage`` in ``migrations/tenant/0040_billing_usage.sql``): each segment falls in exactly
one period, at its accepted time. The partial days cost one indexed look at that day's messages.
One caveat: a partial day is counted from the rows themselves, so an erasure that deletes a
recipient inside such a day lowers that day's figure; whole days never change (the aggregates
count inserts only).
"""

from __future__ import annotations

import datetime as dt

from core.db import app_db, tenant_transaction


def period_usage(tenant, start: dt.datetime, end: dt.datetime) -> int:
    """Billable (accepted) segments of ``tenant`` (a ``TenantInfo`` or ``TenantRef``) accepted in
    ``[start, end)``. Opens the tenant's transaction (or joins the one open for it)."""
    ref = getattr(tenant, "ref", tenant)
    with tenant_transaction(ref):
        return usage_here(start, end)


def usage_here(start: dt.datetime, end: dt.datetime, lock: int | None = None) -> int:
    """Inside the tenant's transaction: :func:`period_usage`; with ``lock``, after taking that
    transaction-level advisory lock (one round trip either way)."""
    return int(app_db.execute_sql("SELECT billing_usage(%s, %s, %s)", (start, end, lock)).fetchone()[0])
