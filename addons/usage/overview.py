"""The Overview's message figures (``smsgw_overview_parts``): today and this week by state, volume
and delivery rate per day over 7 or 30 days, and the delivery time's median.

All of it from ``usage_counts``, one statement over its primary key's day range: the counts the
triggers keep exact with the work, never the message tables themselves.
"""

from __future__ import annotations

import datetime as dt

from core.db import app_db
from core.web.overview import Attention, OverviewPart

from . import service

RANGES = (7, 30)
STATES = ("submitted", "sent", "delivered", "failed")


def delivery_rate(delivered: int, failed: int) -> float | None:
    """Delivered out of those that ended (delivered or failed), in %; ``None`` when none ended."""
    return round(100.0 * delivered / (delivered + failed), 1) if delivered + failed else None


def overview_part(principal, gettext, params, formats) -> OverviewPart | None:
    if not principal.can("messages:read"):
        return None
    days = 30 if params.get("days") == "30" else 7
    end = service.today()
    start = end - dt.timedelta(days=days - 1)
    week = end - dt.timedelta(days=end.weekday())  # this week: since Monday (UTC)
    rows = app_db.execute_sql(
        "SELECT day, metric, key, sum(n)::bigint FROM usage_counts WHERE day BETWEEN %s AND %s "
        "AND metric IN ('submitted', 'sent', 'delivered', 'failed', 'delivery_ms') GROUP BY 1, 2, 3",
        (min(start, week), end)).fetchall()
    per_day = {start + dt.timedelta(days=i): dict.fromkeys(STATES, 0) for i in range(days)}
    today, this_week = dict.fromkeys(STATES, 0), dict.fromkeys(STATES, 0)
    hist: dict[int, int] = {}
    for day, metric, key, n in rows:
        if metric == "delivery_ms":
            if day >= start:
                hist[int(key)] = hist.get(int(key), 0) + n
            continue
        if day in per_day:
            per_day[day][metric] += n
        if day >= week:
            this_week[metric] += n
        if day == end:
            today[metric] += n
    labels = [formats.day(d) for d in per_day]
    volume = [(gettext("Submitted"), [c["submitted"] for c in per_day.values()]),
              (gettext("Delivered"), [c["delivered"] for c in per_day.values()]),
              (gettext("Failed"), [c["failed"] for c in per_day.values()])]
    rates = [delivery_rate(c["delivered"], c["failed"]) for c in per_day.values()]
    totals = {s: sum(c[s] for c in per_day.values()) for s in STATES}
    p50 = service.percentiles(hist)["p50"]
    attention = []
    if today["failed"]:
        attention.append(Attention(gettext("Messages that failed today: %(n)s.") % {"n": today["failed"]},
                                   "/messages?state=failed"))
    return OverviewPart("usage/overview_part.html", 20, {
        "days": days, "ranges": RANGES, "today": today, "week": this_week, "labels": labels, "volume": volume,
        "rates": [r if r is not None else 0 for r in rates], "rate": delivery_rate(totals["delivered"], totals["failed"]),
        "p50_seconds": None if p50 is None else round(p50 / 1000, 1)}, attention)
