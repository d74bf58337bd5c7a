"""Plans and subscriptions for the billing quota and metering tests, written with the administrative
connection (as the operator's tools would): the trigger on those tables tells every process (NOTIFY)."""

from __future__ import annotations

import datetime as dt
import itertools
import time

from tests.support.identity import admin_sql

_codes = itertools.count(1)


def make_plan(platform, *, included=1000, overage=None, devices=None, members=None, per_minute=None,
              name="Test plan") -> int:
    """A current plan version with these limits (``overage`` None: hard stop); its id."""
    code = f"qt-{int(time.time() * 1000) % 10**9}-{next(_codes)}"
    return admin_sql(platform, """
        INSERT INTO public.billing_plan_versions (plan_code, version, name, currency, monthly_price, yearly_price,
               included_segments, max_devices, max_members, api_per_minute, overage_per_1000, public)
        VALUES (%s, 1, %s, 'EUR', 1000, 10000, %s, %s, %s, %s, %s, false) RETURNING id
    """, (code, name, included, devices, members, per_minute, overage), fetch=True)[0][0]


def subscribe(platform, tenant, plan_id: int, *, status="active", start=None, end=None) -> None:
    """Put ``tenant`` on ``plan_id`` (insert or replace its subscription)."""
    now = dt.datetime.now(dt.timezone.utc)
    start = start or now - dt.timedelta(hours=1)
    end = end or start + dt.timedelta(days=30)
    admin_sql(platform, """
        INSERT INTO public.billing_subscriptions (tenant_id, plan_version_id, status, period_start, period_end)
        VALUES (%s, %s, %s, %s, %s)
        ON CONFLICT (tenant_id) DO UPDATE SET plan_version_id = excluded.plan_version_id, status = excluded.status,
               period_start = excluded.period_start, period_end = excluded.period_end, updated_at = now()
    """, (tenant.id, plan_id, status, start, end))


def wait_forgotten(tenant, timeout: float = 5.0) -> None:
    """Until this process's quota cache dropped ``tenant`` (the NOTIFY of a change arrived)."""
    from addons.billing import quotas

    deadline = time.monotonic() + timeout
    while quotas.cache.get(tenant.id) is not None:
        assert time.monotonic() < deadline, "the change's NOTIFY never reached the quota cache"
        time.sleep(0.02)


def set_status(platform, tenant, status: str) -> None:
    admin_sql(platform, "UPDATE public.billing_subscriptions SET status = %s, updated_at = now() WHERE tenant_id = %s",
              (status, tenant.id))
