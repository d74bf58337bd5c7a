"""*Statistics* (``/overview``, ``/overview.csv``): messages per day, per phone and per SIM over a
date range the member picks, as charts and tables, and as CSV.

Read from ``usage_counts`` (one statement over its primary key's day range), never from the
message tables: the figures are the exact counts the triggers keep with the work. Per SIM means
the SIM slot the recipient records ('sim1'..'sim4' in the counts' key since migration 0030):
the SIM asked for, or the one the phone reports it used; "phone's choice" otherwise.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

from core.db import app_db
from core.i18n import N_
from core.web.base import PageHandler
from core.web.problem import Problem

from . import service
from .overview import delivery_rate

PERMISSION = "messages:read"
DEFAULT_DAYS = 30
STATES = ("submitted", "sent", "delivered", "failed")


def date_range(handler) -> tuple[dt.date, dt.date, str | None]:
    """``from``/``to`` (YYYY-MM-DD, both included) or the last 30 days; with a refusal (a message
    id the page translates) when what was asked cannot be used: the page then shows the default
    range and says why."""
    end = service.today()
    default = (end - dt.timedelta(days=DEFAULT_DAYS - 1), end, None)
    raw_from, raw_to = handler.get_query_argument("from", ""), handler.get_query_argument("to", "")
    if not raw_from and not raw_to:
        return default
    try:
        start = dt.date.fromisoformat(raw_from) if raw_from else end - dt.timedelta(days=DEFAULT_DAYS - 1)
        stop = dt.date.fromisoformat(raw_to) if raw_to else end
    except ValueError:
        return (*default[:2], N_("Dates are written as YYYY-MM-DD, e.g. 2026-03-01."))
    if stop < start:
        return (*default[:2], N_("The end of the range comes before its start."))
    if (stop - start).days + 1 > service.MAX_DAYS:
        return (*default[:2], N_("A range covers at most 366 days."))
    return start, stop, None


def figures(start: dt.date, end: dt.date) -> dict:
    """Inside a tenant transaction: per day, per phone and per SIM, over ``start``..``end``."""
    rows = app_db.execute_sql(
        "SELECT day, metric, device_id, key, sum(n)::bigint FROM usage_counts WHERE day BETWEEN %s AND %s "
        "AND metric IN ('submitted', 'sent', 'delivered', 'failed', 'delivery_ms') GROUP BY 1, 2, 3, 4",
        (start, end)).fetchall()
    names = dict(app_db.execute_sql("SELECT id, name FROM devices").fetchall())
    days = {start + dt.timedelta(days=i): dict.fromkeys(STATES, 0) for i in range((end - start).days + 1)}
    phones: dict[int, dict] = {}
    sims: dict[tuple[int, str], dict] = {}
    detail: dict[tuple, dict] = {}  # (day, device, sim) -> counts, for the CSV
    hist: dict[int, int] = {}
    for day, metric, device_id, key, n in rows:
        if metric == "delivery_ms":
            hist[int(key)] = hist.get(int(key), 0) + n
            continue
        sim = key if key.startswith("sim") else ""
        days[day][metric] += n
        if device_id:
            phones.setdefault(device_id, dict.fromkeys(STATES, 0))[metric] += n
            sims.setdefault((device_id, sim), dict.fromkeys(STATES, 0))[metric] += n
        detail.setdefault((day, device_id, sim), dict.fromkeys(STATES, 0))[metric] += n
    totals = {s: sum(d[s] for d in days.values()) for s in STATES}

    def named(device_id: int) -> str:
        return names.get(device_id) or f"#{device_id}"

    phone_rows = [{"device_id": d, "name": named(d), **c, "rate": delivery_rate(c["delivered"], c["failed"])}
                  for d, c in sorted(phones.items(), key=lambda kv: (-kv[1]["sent"], named(kv[0])))]
    sim_rows = [{"device_id": d, "name": named(d), "sim": sim, **c, "rate": delivery_rate(c["delivered"], c["failed"])}
                for (d, sim), c in sorted(sims.items(), key=lambda kv: (named(kv[0][0]), kv[0][1]))]
    return {"from": start, "to": end, "days": days, "totals": totals, "phones": phone_rows, "sims": sim_rows,
            "rate": delivery_rate(totals["delivered"], totals["failed"]),
            "delivery": service.percentiles(hist), "detail": detail, "names": names}


def csv_text(data: dict) -> str:
    """One row per day, phone and SIM with any figure (phone 0: not about one phone)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["day", "device_id", "device", "sim", *STATES])
    for (day, device_id, sim), counts in sorted(data["detail"].items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        name = data["names"].get(device_id, "") if device_id else ""
        if name[:1] in ("=", "+", "-", "@", "\t", "\r"):  # a spreadsheet must not read a phone's name as a formula
            name = "'" + name
        writer.writerow([day.isoformat(), device_id, name, sim, *(counts[s] for s in STATES)])
    return out.getvalue()


class StatisticsPage(PageHandler):
    permission = PERMISSION

    async def get(self):
        start, end, refusal = date_range(self)
        data = await self.in_tenant(figures, start, end)
        labels = [self.platform.catalogues.formats(self.lang).day(d) for d in data["days"]]
        per_day = list(data["days"].values())
        if refusal:
            self.set_status(422)
        self.render("usage/statistics.html", data=data, refusal=refusal, labels=labels,
                    volume=[(state, [d[state] for d in per_day]) for state in ("sent", "delivered", "failed")],
                    rates=[delivery_rate(d["delivered"], d["failed"]) or 0 for d in per_day],
                    phone_points=[(p["name"], p["sent"]) for p in data["phones"][:20]],
                    query=f"from={start.isoformat()}&to={end.isoformat()}")


class StatisticsCsv(PageHandler):
    permission = PERMISSION

    async def get(self):
        start, end, refusal = date_range(self)
        if refusal:
            raise Problem(422, "invalid-parameter", refusal)
        data = await self.in_tenant(figures, start, end)
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="statistics-{start}-{end}.csv"')
        self.set_header("Cache-Control", "no-store")
        self.finish(csv_text(data))


ROUTES = [(r"/overview", StatisticsPage), (r"/overview\.csv", StatisticsCsv)]
