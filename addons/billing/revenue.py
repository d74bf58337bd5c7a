"""The operator's figures: MRR (monthly recurring revenue) now, and revenue per month.

* MRR: the subscriptions that pay (active or past_due; a trial, a suspended or a cancelled one does
  not), each plan version's monthly price, or its yearly price / 12 rounded half away from zero,
  summed per currency (amounts in different currencies are never added).
* Revenue per month, last 12 months, per currency: *invoiced* is the total of the invoices issued
  that month minus the credit notes issued that month; *paid* is the total of invoices paid that
  month (by the time they were marked paid).
"""

from __future__ import annotations

import datetime as dt

from core.clock import utcnow
from core.db import app_db

from .money import divide_round, to_decimal

MONTHS = 12


def mrr(db=app_db) -> dict[str, int]:
    out: dict[str, int] = {}
    for currency, interval, monthly, yearly in db.execute_sql(
            "SELECT p.currency, s.billing_interval, p.monthly_price, p.yearly_price "
            "FROM public.billing_subscriptions s JOIN public.billing_plan_versions p ON p.id = s.plan_version_id "
            "WHERE s.status IN ('active', 'past_due')"):
        amount = divide_round(yearly, 12) if interval == "year" else monthly
        out[currency] = out.get(currency, 0) + amount
    return out


def month_starts(now: dt.datetime, count: int = MONTHS) -> list[dt.date]:
    first = now.date().replace(day=1)
    months = []
    for _ in range(count):
        months.append(first)
        first = (first - dt.timedelta(days=1)).replace(day=1)
    return months[::-1]


def per_month(now: dt.datetime | None = None, db=app_db) -> dict[str, dict[str, dict[str, int]]]:
    """``{currency: {"YYYY-MM": {"invoiced": n, "paid": n}}}`` for the last 12 months."""
    now = now or utcnow()
    start = month_starts(now)[0]
    out: dict[str, dict[str, dict[str, int]]] = {}

    def add(currency, month, key, amount):
        months = out.setdefault(currency, {m.strftime("%Y-%m"): {"invoiced": 0, "paid": 0} for m in month_starts(now)})
        if month in months:
            months[month][key] += int(amount)

    for currency, month, amount in db.execute_sql(
            "SELECT currency, to_char(issued_at AT TIME ZONE 'UTC', 'YYYY-MM'), sum(total) "
            "FROM public.billing_invoices WHERE issued_at >= %s GROUP BY 1, 2", (start,)):
        add(currency, month, "invoiced", amount)
    for currency, month, amount in db.execute_sql(
            "SELECT currency, to_char(paid_at AT TIME ZONE 'UTC', 'YYYY-MM'), sum(total) FROM public.billing_invoices "
            "WHERE kind = 'invoice' AND paid_at IS NOT NULL AND paid_at >= %s GROUP BY 1, 2", (start,)):
        add(currency, month, "paid", amount)
    return out


def overview(db=app_db) -> dict:
    """What the revenue page shows: MRR per currency and, per currency, a chart's labels and series
    (major units, for drawing only: the table beside it shows the exact amounts)."""
    months = per_month(db=db)
    charts = []
    for currency in sorted(months, key=lambda c: -sum(m["invoiced"] for m in months[c].values())):
        labels = list(months[currency])
        charts.append({"currency": currency, "labels": labels, "rows": months[currency],
                       "invoiced": [float(to_decimal(months[currency][m]["invoiced"], currency)) for m in labels],
                       "paid": [float(to_decimal(months[currency][m]["paid"], currency)) for m in labels]})
    return {"mrr": mrr(db), "charts": charts}
