"""What a subscription change costs, as invoice lines in integer minor units, and the one place
that hands them on to be invoiced (:func:`bill`).

Rounding: :func:`prorate` rounds to the nearer minor unit, an exact half away from zero (up, for
the positive amounts charged here), on integers only, so ``prorate(1000, 1, 3)`` is 333 and ``prorate(1001, 1, 2)`` is 501. An
upgrade is charged one line: the price difference of the two plans for the interval, prorated by the seconds
left in the period (rounded once, not per plan, so the charge is never off by the sum of two
roundings). Overage: segments beyond the included ones, times the price per 1,000, rounded half up.
"""

from __future__ import annotations

import datetime as dt

from . import invoicing
from .invoicing import Line
from .money import divide_round
from .plans import PlanVersion


def scale(amount: int, numerator: int, denominator: int) -> int:
    """``amount * numerator / denominator`` in integers, rounded as all billing money is
    (:func:`money.divide_round`: the nearer minor unit, a half away from zero)."""
    if denominator <= 0:
        raise ValueError("a positive denominator is needed")
    return divide_round(amount * numerator, denominator)


def prorate(amount: int, part: int, whole: int) -> int:
    """The share ``part / whole`` of ``amount`` (``part`` held to 0..``whole``), rounded as :func:`scale`."""
    return scale(amount, min(max(part, 0), whole), whole)


def seconds(delta: dt.timedelta) -> int:
    return max(0, int(delta.total_seconds()))


def _day(t: dt.datetime) -> str:
    return f"{t:%Y-%m-%d}"


def plan_line(plan: PlanVersion, interval: str, start: dt.datetime, end: dt.datetime) -> Line:
    per = "year" if interval == "year" else "month"
    return Line(f"{plan.name} plan, one {per} ({_day(start)} to {_day(end)})", 1, plan.price(interval))


def upgrade_line(old: PlanVersion, new: PlanVersion, interval: str, now: dt.datetime, start: dt.datetime,
                 end: dt.datetime) -> Line:
    """The prorated difference for the rest of the period [``now``, ``end``) of [``start``, ``end``)."""
    amount = prorate(new.price(interval) - old.price(interval), seconds(end - now), seconds(end - start))
    return Line(f"Upgrade from {old.name} to {new.name} ({_day(now)} to {_day(end)}, prorated)", 1, amount)


def overage_line(plan: PlanVersion, used: int, start: dt.datetime, end: dt.datetime) -> Line | None:
    """Segments beyond the plan's included ones in the period, or None (within them, or a hard-stop
    plan, whose quota refuses sends instead)."""
    over = max(0, used - plan.included_segments)
    if not over or plan.overage_per_1000 is None:
        return None
    return Line(f"{over} segments beyond the {plan.included_segments} included ({_day(start)} to {_day(end)})", 1,
                scale(plan.overage_per_1000, over, 1000))


def bill(tenant_id: int, lines: list[Line], *, reason: str, currency: str, period_start: dt.datetime | None = None,
         period_end: dt.datetime | None = None) -> list[Line]:
    """Charge ``lines`` to the workspace: the one call site of :func:`invoicing.issue` (renewal,
    upgrade, sign-up). Called inside the transaction that makes the change, so the invoice and the
    change commit together. Lines of no amount are left out; nothing left, no invoice. Returns the
    lines invoiced."""
    charged = [line for line in lines if line.amount]
    if charged:  # the callers run as the serving role already (public tables), in the workspace's transaction
        invoicing.issue(tenant_id, charged, reason=reason, currency=currency, period_start=period_start,
                        period_end=period_end)
    return charged
