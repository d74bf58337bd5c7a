"""The Customer's view of their workspace's audit trail: a filterable page and a JSON export."""

from __future__ import annotations

import datetime as dt
import json

from core.web.base import PageHandler
from core.web.params import number_or_none
from core.web.problem import Problem

from . import trail
from core.i18n import N_


def parse_filters(handler) -> dict:
    def date(name):
        raw = handler.get_query_argument(name, "").strip()
        if not raw:
            return None
        try:
            return dt.datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            raise Problem(400, "invalid-date", N_("%(name)s must be a date like 2026-11-26."),
            args={"name": name}) from None

    since, until = date("from"), date("to")
    if until:
        until += dt.timedelta(days=1)
    before = handler.get_query_argument("before", "")
    return {"action": handler.get_query_argument("action", "")[:100].strip(),
            "actor": handler.get_query_argument("actor", "")[:254].strip(),
            "since": since, "until": until,
            "admin_only": handler.get_query_argument("admin", "") == "1",
            "before_id": number_or_none(before)}


class AuditPageHandler(PageHandler):
    permission = "audit:read"

    async def get(self):
        filters = parse_filters(self)
        rows = await self.run_db(trail.query, self.tenant.id, limit=100, **filters)
        self.render("audit/audit.html", rows=rows, filters=filters,
                    query={k: self.get_query_argument(k, "") for k in ("action", "actor", "from", "to", "admin")})


class AuditExportHandler(PageHandler):
    permission = "audit:read"

    async def get(self):
        filters = parse_filters(self)
        rows = await self.run_db(trail.query, self.tenant.id, limit=1000, **filters)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Content-Disposition", f'attachment; filename="audit-{self.tenant.slug}.json"')
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"tenant": self.tenant.slug, "events": rows}, default=str, indent=1))
