"""``GET /api/v1/usage``: the workspace's daily usage figures (JSON, or CSV with ``format=csv``)."""

from __future__ import annotations

import datetime as dt
import re

from core.web.base import ApiHandler
from core.web.problem import Problem, field_error

from . import service
from core.i18n import N_

PERMISSION = "usage:read"
DATE = re.compile(r"\A\d{4}-\d{2}-\d{2}\Z")
GRANULARITIES = ("day",)
DEFAULT_DAYS = 30


def day_param(raw: str | None, name: str) -> dt.date | None:
    if raw is None:
        return None
    if not DATE.match(raw):
        raise Problem(400, "invalid-parameter", N_("%(name)s must be a date like 2026-01-31."),
                      errors=[{"field": name, "message": N_("expected YYYY-MM-DD")}], args={"name": name})
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise Problem(400, "invalid-parameter", N_("%(name)s is not a date of the calendar."),
                      errors=[{"field": name, "message": N_("not a calendar date")}], args={"name": name}) from None


def date_range(raw_from: str | None, raw_to: str | None, raw_granularity: str | None) -> tuple[dt.date, dt.date]:
    """The days a request asks for: ``to`` defaults to today (UTC), ``from`` to 29 days before
    ``to``; at most :data:`service.MAX_DAYS` days, ``from`` not after ``to``, nothing in the future."""
    if raw_granularity is not None and raw_granularity not in GRANULARITIES:
        raise Problem(400, "invalid-parameter", N_("granularity must be day."),
                      errors=[{"field": "granularity", "message": N_("one of: day")}])
    today = service.today()
    end = day_param(raw_to, "to") or today
    start = day_param(raw_from, "from") or end - dt.timedelta(days=DEFAULT_DAYS - 1)
    if end > today:
        end = today  # nothing is counted ahead of today; asking for it is not an error
    if start > end:
        raise Problem(400, "invalid-parameter", N_("from must not be after to (nor after today)."),
                      errors=[{"field": "from", "message": N_("after to")}])
    if (end - start).days + 1 > service.MAX_DAYS:
        raise Problem(400, "invalid-parameter", N_("At most %(MAX_DAYS)s days per request."),
                      errors=[field_error("from", N_("more than %(max)s days before to"), {"max": service.MAX_DAYS})],
                      args={"MAX_DAYS": service.MAX_DAYS})
    return start, end


def single(handler, name: str) -> str | None:
    """A query parameter given at most once (two values are ambiguous: refused)."""
    values = handler.get_query_arguments(name)
    if len(values) > 1:
        raise Problem(400, "invalid-parameter", N_("%(name)s is given more than once."),
                      errors=[{"field": name, "message": N_("given more than once")}], args={"name": name})
    return values[0] if values else None


def requested_range(handler) -> tuple[dt.date, dt.date]:
    return date_range(single(handler, "from"), single(handler, "to"), single(handler, "granularity"))


def send_csv(handler, data: dict) -> None:
    handler.set_header("Content-Type", "text/csv; charset=utf-8")
    handler.set_header("Content-Disposition",
                       f'attachment; filename="usage-{handler.tenant.slug}-{data["from"]}-{data["to"]}.csv"')
    handler.set_header("Cache-Control", "no-store")
    handler.finish(service.csv_text(data))


class UsageHandler(ApiHandler):
    permissions = {"GET": PERMISSION}

    async def get(self):
        fmt = single(self, "format")
        fmt = "json" if fmt is None else fmt
        if fmt not in ("json", "csv"):
            raise Problem(400, "invalid-parameter", N_("format must be json or csv."),
                          errors=[{"field": "format", "message": N_("one of: json, csv")}])
        start, end = requested_range(self)
        data = await self.in_tenant(service.report, start, end)
        if fmt == "csv":
            send_csv(self, data)
        else:
            self.write_json(data)


ROUTES = [(r"/api/v1/usage", UsageHandler)]
