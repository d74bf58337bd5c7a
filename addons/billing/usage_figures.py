"""Billable usage as the billing pages and renewals read it: accepted segments (the usage addon's
metric ``submitted``, written by statement triggers in the same transaction as the accepted
recipients, so a retry, a group-commit retry or a crash never counts one twice).

Why accepted and not sent: what a customer asked us to send is what the quota refuses at submit
(the only moment a refusal is an answer instead of a dropped message); counting sends instead would
let a workspace queue beyond its plan and be refused later.

The figures are daily (UTC): a period [start, end) counts the days from start's date up to, not
including, end's date, so consecutive periods share no day. The metering module (``metering.
period_usage``) replaces :func:`period_usage` when it is merged; both read the same counts.
"""

from __future__ import annotations

import datetime as dt

from core.db import app_db

METRIC = "submitted"


def _days(start: dt.datetime, end: dt.datetime) -> tuple[dt.date, dt.date]:
    utc = dt.timezone.utc
    return start.astimezone(utc).date(), end.astimezone(utc).date()


def period_usage(tenant, start: dt.datetime, end: dt.datetime) -> int:
    """Inside ``tenant``'s transaction: billable segments in [``start``, ``end``)."""
    first, stop = _days(start, end)
    return int(app_db.execute_sql(
        "SELECT coalesce(sum(segments), 0) FROM usage_counts WHERE metric = %s AND day >= %s AND day < %s",
        (METRIC, first, max(stop, first + dt.timedelta(days=1)))).fetchone()[0])


def daily(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.date, int]]:
    """Inside a tenant transaction: billable segments per day of the period, every day listed."""
    first, stop = _days(start, end)
    stop = max(stop, first + dt.timedelta(days=1))
    counts = dict(app_db.execute_sql(
        "SELECT day, sum(segments)::bigint FROM usage_counts WHERE metric = %s AND day >= %s AND day < %s "
        "GROUP BY day", (METRIC, first, stop)).fetchall())
    return [(first + dt.timedelta(days=i), int(counts.get(first + dt.timedelta(days=i), 0)))
            for i in range((stop - first).days)]
