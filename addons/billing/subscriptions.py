"""Subscriptions: one per workspace (public.billing_subscriptions), with its plan version, status
(trial, active, past_due, suspended, cancelled) and current period."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

from core.datamap import PersonalData, Table
from core.db import app_db

from . import plans
from .plans import PlanVersion

MODELS = [Table("billing_subscriptions", "public", PersonalData(
    subjects={"tenant": "tenant_id"},
    export=("billing_interval", "status", "period_start", "period_end", "trial_end", "cancel_at_period_end",
            "created_at"),
    erase="keep", why="the record behind issued invoices, which tax law keeps for years; it holds no person's data"))]
STATUSES = ("trial", "active", "past_due", "suspended", "cancelled")


@dataclass(frozen=True)
class Subscription:
    tenant_id: int
    plan_version_id: int
    billing_interval: str
    status: str
    period_start: dt.datetime
    period_end: dt.datetime
    trial_end: dt.datetime | None
    cancel_at_period_end: bool
    pending_plan_version_id: int | None
    provider: str
    provider_ref: str
    past_due_since: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    plan: PlanVersion | None = None

    @property
    def may_send(self) -> bool:
        """A suspended (unpaid) or cancelled workspace signs in, reads, exports and pays; it does not send."""
        return self.status in ("trial", "active", "past_due")


COLUMNS = tuple(f.name for f in fields(Subscription) if f.name != "plan")


def get(tenant_id: int, db=app_db) -> Subscription | None:
    """The workspace's subscription with its plan version, or None (inside an open connection)."""
    row = db.execute_sql(f"SELECT {', '.join(COLUMNS)} FROM public.billing_subscriptions WHERE tenant_id = %s",
                         (tenant_id,)).fetchone()
    if row is None:
        return None
    sub = Subscription(**dict(zip(COLUMNS, row)))
    return Subscription(**{**{c: getattr(sub, c) for c in COLUMNS}, "plan": plans.by_id(sub.plan_version_id, db)})
