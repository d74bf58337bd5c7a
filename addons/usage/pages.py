"""The *Usage* page of a workspace (``/usage``, ``/usage.csv``) and the operator's view across
workspaces (``/admin/usage``)."""

from __future__ import annotations

import datetime as dt

from core.db import connection, run_sync, tenant_transaction
from core.i18n import N_
from core.catalogue import Tenant
from core.web.admin_pages import AdminHandler
from core.web.base import PageHandler
from core.web.problem import Problem

from . import service
from .api import PERMISSION, send_csv

RANGES = (30, 90)


def page_range(handler) -> tuple[int, dt.date, dt.date]:
    """The page's range: the last 30 or 90 days (``days``), today included."""
    raw = handler.get_query_argument("days", "30")
    if raw not in tuple(str(r) for r in RANGES):
        raise Problem(400, "invalid-parameter", N_("days must be 30 or 90."))
    days = int(raw)
    end = service.today()
    return days, end - dt.timedelta(days=days - 1), end


class UsagePage(PageHandler):
    permissions = {"GET": PERMISSION}

    async def get(self):
        days, start, end = page_range(self)
        data = await self.in_tenant(service.report, start, end)
        day = self.platform.catalogues.formats(self.lang).day  # the year is in the page's heading
        labels = [day(d["day"]) for d in data["days"]]
        columns = {c: [d[c] for d in data["days"]] for c in data["days"][0]} if data["days"] else {}
        points = {c: list(zip(labels, values)) for c, values in columns.items()}
        self.render("usage/page.html", data=data, days=days, ranges=RANGES, labels=labels, columns=columns,
                    points=points)


class UsageCsv(PageHandler):
    permissions = {"GET": PERMISSION}

    async def get(self):
        _days, start, end = page_range(self)
        send_csv(self, await self.in_tenant(service.report, start, end))


def workspaces_usage(days: int) -> list[dict]:
    """Every active workspace's figures of the last ``days`` days (counts only: no message, number
    or text is read), busiest first."""
    end = service.today()
    start = end - dt.timedelta(days=days - 1)
    with connection():
        tenants = list(Tenant.select().where(Tenant.status == "active").order_by(Tenant.slug))
    out = []
    for t in tenants:
        try:
            with tenant_transaction(t.ref):
                figures = service.overview(start, end)
        except Exception:  # a workspace without the usage tables (addon not migrated there): no figures
            continue
        out.append({"slug": t.slug, "name": t.name, "plan": t.plan, **figures})
    out.sort(key=lambda w: (-w["segments"], -w["submitted"], w["slug"]))
    return out


class AdminUsagePage(AdminHandler):
    async def get(self):
        raw = self.get_query_argument("days", "30")
        if raw not in tuple(str(r) for r in RANGES):
            raise Problem(400, "invalid-parameter", N_("days must be 30 or 90."))
        rows = await run_sync(workspaces_usage, int(raw))
        top = [(w["slug"], w["segments"]) for w in rows[:10]]
        self.render("usage/admin.html", workspaces=rows, top=top, days=int(raw), ranges=RANGES)


ROUTES = [(r"/usage", UsagePage), (r"/usage\.csv", UsageCsv), (r"/admin/usage", AdminUsagePage)]
ADMIN_LINKS = [{"label": N_("Usage"), "url": "/admin/usage"}]
