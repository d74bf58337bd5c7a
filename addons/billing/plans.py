"""Plans: what the operator sells. A plan is a code with versions; a changed price or limit is a
new version, and subscriptions keep theirs until renewal (public.billing_plan_versions)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields

from core.datamap import NO_PERSONAL_DATA, Table
from core.db import app_db

MODELS = [Table("billing_plan_versions", "public", NO_PERSONAL_DATA)]


@dataclass(frozen=True)
class PlanVersion:
    id: int
    plan_code: str
    version: int
    name: str
    currency: str
    monthly_price: int
    yearly_price: int
    included_segments: int
    max_devices: int | None
    max_members: int | None
    api_per_minute: int | None
    overage_per_1000: int | None  # None: hard stop at included_segments
    trial_days: int
    addons: tuple[str, ...]
    public: bool
    sort_order: int
    created_at: dt.datetime
    retired_at: dt.datetime | None

    @property
    def hard_stop(self) -> bool:
        return self.overage_per_1000 is None

    def price(self, interval: str) -> int:
        return self.yearly_price if interval == "year" else self.monthly_price


COLUMNS = tuple(f.name for f in fields(PlanVersion))
SELECT = f"SELECT {', '.join(COLUMNS)} FROM public.billing_plan_versions"


def _row(row) -> PlanVersion:
    values = dict(zip(COLUMNS, row))
    values["addons"] = tuple(values["addons"] or ())
    return PlanVersion(**values)


def by_id(version_id: int, db=app_db) -> PlanVersion | None:
    """A plan version, current or retired (inside an open connection)."""
    row = db.execute_sql(SELECT + " WHERE id = %s", (version_id,)).fetchone()
    return _row(row) if row else None


def current(plan_code: str, db=app_db) -> PlanVersion | None:
    """The version of ``plan_code`` new subscriptions get, or None (inside an open connection)."""
    row = db.execute_sql(SELECT + " WHERE plan_code = %s AND retired_at IS NULL", (plan_code,)).fetchone()
    return _row(row) if row else None


def all_current(only_public: bool = False, db=app_db) -> list[PlanVersion]:
    """Every plan's current version, in the operator's order (inside an open connection)."""
    where = " WHERE retired_at IS NULL" + (" AND public" if only_public else "")
    return [_row(r) for r in db.execute_sql(SELECT + where + " ORDER BY sort_order, monthly_price, plan_code")]
