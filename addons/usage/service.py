"""Usage figures of one workspace, read from ``usage_counts`` (see the migration for how it is written).

Message, segment, inbound and webhook figures are written by triggers in the same transaction as the
work, so they are exact. API calls, API latency and dashboard sign-ins come from the web processes
(:mod:`addons.usage.recorder`, :func:`count_signin`); how exact those are is said there.
"""

from __future__ import annotations

import datetime as dt
import math

from core.clock import utcnow
from core.datamap import NO_PERSONAL_DATA, Table
from core.db import app_db

MODELS = [Table("usage_counts", "tenant", NO_PERSONAL_DATA)]

MAX_DAYS = 366  # the longest range one answer covers

# The daily columns, in the order of the CSV and the API: (column, metric, field).
COLUMNS = (
    ("messages", "messages", "n"),
    ("recipients_submitted", "submitted", "n"),
    ("segments_submitted", "submitted", "segments"),
    ("recipients_sent", "sent", "n"),
    ("segments_sent", "sent", "segments"),
    ("recipients_delivered", "delivered", "n"),
    ("segments_delivered", "delivered", "segments"),
    ("recipients_failed", "failed", "n"),
    ("segments_failed", "failed", "segments"),
    ("inbound", "inbound", "n"),
    ("webhooks_delivered", "webhook_delivered", "n"),
    ("webhooks_failed", "webhook_failed", "n"),
    ("api_calls", "api", "n"),
    ("signins", "signin", "n"),
)
DEVICE_METRICS = ("submitted", "sent", "delivered", "failed", "inbound")
ACTIVE_METRICS = ("sent", "delivered", "failed", "inbound")  # a phone that reported one was active
HISTOGRAMS = ("api_ms", "delivery_ms")


def add(metric: str, day: dt.date, n: int, key: str = "", device_id: int = 0) -> None:
    """Inside a tenant transaction: add ``n`` to ``metric`` on ``day`` (this session's own row)."""
    app_db.execute_sql(
        "INSERT INTO usage_counts AS u (day, metric, device_id, key, shard, n) "
        "VALUES (%s, %s, %s, %s, pg_backend_pid(), %s) "
        "ON CONFLICT (day, metric, device_id, key, shard) DO UPDATE SET n = u.n + excluded.n",
        (day, metric, device_id, key, n))


def add_many(rows: list[tuple]) -> None:
    """:func:`add` for many ``(metric, day, key, n)`` rows in one statement."""
    if not rows:
        return
    cur = app_db.cursor()
    values = b",".join(cur.mogrify("(%s::date, %s, 0, %s, pg_backend_pid(), %s::bigint)", (day, metric, key, n))
                       for metric, day, key, n in rows)
    cur.execute(b"INSERT INTO usage_counts AS u (day, metric, device_id, key, shard, n) VALUES " + values +
                b" ON CONFLICT (day, metric, device_id, key, shard) DO UPDATE SET n = u.n + excluded.n")


def today() -> dt.date:
    return utcnow().astimezone(dt.timezone.utc).date()


def report(start: dt.date, end: dt.date) -> dict:
    """Inside a tenant transaction: the figures from ``start`` to ``end`` (both included)."""
    rows = app_db.execute_sql(
        "SELECT day, metric, device_id, key, sum(n)::bigint, sum(segments)::bigint FROM usage_counts "
        "WHERE day BETWEEN %s AND %s GROUP BY 1, 2, 3, 4", (start, end)).fetchall()
    days = {start + dt.timedelta(days=i): {} for i in range((end - start).days + 1)}
    per_device: dict[tuple, dict] = {}
    active: dict[dt.date, set] = {d: set() for d in days}
    calls: dict[tuple, int] = {}
    hist: dict[str, dict[int, int]] = {h: {} for h in HISTOGRAMS}
    for day, metric, device_id, key, n, segments in rows:
        totals = days[day]
        totals[(metric, "n")] = totals.get((metric, "n"), 0) + n
        totals[(metric, "segments")] = totals.get((metric, "segments"), 0) + segments
        if device_id and metric in DEVICE_METRICS:
            dev = per_device.setdefault((day, device_id), {})
            dev[(metric, "n")] = dev.get((metric, "n"), 0) + n
            dev[(metric, "segments")] = dev.get((metric, "segments"), 0) + segments
        if device_id and metric in ACTIVE_METRICS:
            active[day].add(device_id)
        if metric == "api":
            principal, _, family = key.partition("|")
            calls[(principal, family)] = calls.get((principal, family), 0) + n
        elif metric in hist:
            bucket = int(key)
            hist[metric][bucket] = hist[metric].get(bucket, 0) + n
    daily = []
    for day, totals in days.items():
        entry = {"day": day.isoformat()}
        for column, metric, field in COLUMNS:
            entry[column] = totals.get((metric, field), 0)
        entry["active_devices"] = len(active[day])
        daily.append(entry)
    devices = [{"day": day.isoformat(), "device_id": device_id,
                **{f"{m}": dev.get((m, "n"), 0) for m in DEVICE_METRICS},
                **{f"{m}_segments": dev.get((m, "segments"), 0) for m in DEVICE_METRICS if m != "inbound"}}
               for (day, device_id), dev in sorted(per_device.items())]
    return {
        "from": start.isoformat(), "to": end.isoformat(), "granularity": "day",
        "days": daily,
        "totals": {column: sum(d[column] for d in daily) for column, _m, _f in COLUMNS},
        "devices": devices,
        "api_calls": [{"credential": p, "family": f, "calls": n} for (p, f), n in sorted(calls.items())],
        "performance": {"api_latency_ms": percentiles(hist["api_ms"]), "delivery_ms": percentiles(hist["delivery_ms"])},
    }


def bucket_of(ms: float) -> int:
    """The histogram bucket of a duration (as the SQL function ``usage_bucket`` computes it)."""
    return max(0, math.ceil(4 * math.log2(max(ms, 0.0) + 1)))


def bucket_value(bucket: int) -> float:
    """A bucket's representative duration in ms: its geometric middle (within ~9 % of any value in it)."""
    if bucket <= 0:
        return 0.0
    return 2 ** ((bucket - 0.5) / 4) - 1


def percentiles(hist: dict[int, int]) -> dict:
    """p50 and p95 of a bucket histogram (``None`` without observations), and the count."""
    count = sum(hist.values())
    out = {"count": count, "p50": None, "p95": None}
    if not count:
        return out
    for name, q in (("p50", 0.50), ("p95", 0.95)):
        rank = math.ceil(q * count)
        seen = 0
        for bucket in sorted(hist):
            seen += hist[bucket]
            if seen >= rank:
                out[name] = round(bucket_value(bucket), 1)
                break
    return out


def csv_text(data: dict) -> str:
    """The daily figures as CSV (one row per day, the columns of the API's ``days``)."""
    import csv
    import io

    out = io.StringIO()
    columns = ["day"] + [c for c, _m, _f in COLUMNS] + ["active_devices"]
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for d in data["days"]:
        writer.writerow([d[c] for c in columns])
    return out.getvalue()


def overview(start: dt.date, end: dt.date) -> dict:
    """Inside a tenant transaction: the operator's figures of this workspace (counts only, no content)."""
    row = app_db.execute_sql(
        "SELECT coalesce(sum(n) FILTER (WHERE metric = 'submitted'), 0), "
        "coalesce(sum(segments) FILTER (WHERE metric = 'submitted'), 0), "
        "coalesce(sum(n) FILTER (WHERE metric = 'sent'), 0), "
        "coalesce(sum(n) FILTER (WHERE metric = 'delivered'), 0), "
        "coalesce(sum(n) FILTER (WHERE metric = 'failed'), 0), "
        "coalesce(sum(n) FILTER (WHERE metric = 'inbound'), 0), "
        "coalesce(sum(n) FILTER (WHERE metric = 'api'), 0), "
        "coalesce(sum(n) FILTER (WHERE metric = 'submitted' AND day < %s), 0) "
        "FROM usage_counts WHERE day BETWEEN %s AND %s",
        (start + (end - start) / 2 + dt.timedelta(days=1), start, end)).fetchone()
    submitted, segments, sent, delivered, failed, inbound, api, first_half = (int(v) for v in row)
    second_half = submitted - first_half
    finished = delivered + failed
    return {"submitted": submitted, "segments": segments, "sent": sent, "delivered": delivered, "failed": failed,
            "inbound": inbound, "api_calls": api,
            "failure_rate": round(100.0 * failed / finished, 1) if finished else None,
            "growth": round(100.0 * (second_half - first_half) / first_half, 1) if first_half else None}
