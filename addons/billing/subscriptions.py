"""Subscriptions: one per workspace (public.billing_subscriptions), with its plan version, status
(trial, active, past_due, suspended, cancelled) and current period."""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, fields, replace

from core import due
from core.clock import utcnow
from core.datamap import PersonalData, Table
from core.db import app_db, as_serving_role, connection, tenant_transaction
from core.events import AuditEvent, emit
from core.i18n import N_
from core.tenancy import load_tenant

from . import charges, plans
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
    anchor_day: int = 1
    pending_interval: str | None = None
    cancelled_at: dt.datetime | None = None
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
    return _row_to_sub(row, db) if row else None


# -- the lifecycle ------------------------------------------------------------------------------
#
# trial -> active -> past_due -> suspended -> cancelled. A period ends at ``period_end``; the due job
# ``billing.renewal`` (core.due: one entry per workspace at its period's end, armed in the
# transaction that sets the period; the entry is the workspace's, so the scheduler needs no scan of
# the subscriptions) renews it: the plan's price for the next period and the overage of the ended
# one are charged (charges.bill), a pending downgrade or interval switch takes effect, a plan the
# operator changed meanwhile moves to its current version, and a cancel at period end ends it.
# Every change is recorded in the audit trail in the transaction that makes it.

JOB = "billing.renewal"
INTERVALS = ("month", "year")
MAX_CATCH_UP = 36  # periods one run renews when the worker was away that long (a month each: 3 years)

_platform = None


def configure(platform) -> None:
    global _platform
    _platform = platform


class SubscriptionError(ValueError):
    """A change the subscription refuses; the message says why and what to do (English msgid)."""

    def __init__(self, message: str, **params):
        self.message, self.params = message, params
        super().__init__(message % params if params else message)


def add_interval(start: dt.datetime, interval: str, anchor_day: int) -> dt.datetime:
    """The end of a period of ``interval`` that starts at ``start``: the same time of day on
    ``anchor_day`` (or the month's last day) one month or year later."""
    months = 12 if interval == "year" else 1
    years, month0 = divmod(start.month - 1 + months, 12)
    year, month = start.year + years, month0 + 1
    return start.replace(year=year, month=month, day=min(anchor_day, calendar.monthrange(year, month)[1]))


def _row_to_sub(row, db=app_db) -> Subscription:
    sub = Subscription(**dict(zip(COLUMNS, row)))
    return replace(sub, plan=plans.by_id(sub.plan_version_id, db))


def _locked(tenant_id: int) -> Subscription | None:
    row = app_db.execute_sql(f"SELECT {', '.join(COLUMNS)} FROM public.billing_subscriptions WHERE tenant_id = %s "
                             "FOR UPDATE", (tenant_id,)).fetchone()
    return _row_to_sub(row) if row else None


def _save(sub: Subscription, **changes) -> Subscription:
    sets = ", ".join(f"{c} = %s" for c in changes)
    app_db.execute_sql(f"UPDATE public.billing_subscriptions SET {sets}, updated_at = now() WHERE tenant_id = %s",
                       [*changes.values(), sub.tenant_id])
    new = replace(sub, **changes)
    return replace(new, plan=plans.by_id(new.plan_version_id)) if "plan_version_id" in changes else new


def _event(tenant, action: str, actor: str, actor_name: str = "", reason: str | None = None,
           tenant_id: int | None = None, **details):
    tenant_id, slug = (tenant.id, tenant.slug) if tenant is not None else (tenant_id, None)
    emit(_platform, AuditEvent(action, tenant_id, slug, actor=actor or "system", actor_name=actor_name,
                               target=f"subscription:{tenant_id}", reason=reason, details=details))


def _lines(lines) -> list[dict]:
    return [{"description": x.description, "quantity": x.quantity, "unit_amount": x.unit_amount} for x in lines]


def _workspace(tenant_id: int):
    with connection():
        row = app_db.execute_sql("SELECT slug FROM public.tenant WHERE id = %s", (tenant_id,)).fetchone()
    return load_tenant(row[0]) if row else None


def _in_workspace(tenant_id: int, change):
    """``change(sub, tenant)`` on the locked subscription, in one transaction of the workspace that
    also arms its renewal at the (new) period end and records the audit events ``change`` emits.
    Returns what ``change`` returns; :class:`SubscriptionError` when there is no subscription."""
    tenant = _workspace(tenant_id)
    if tenant is None:
        raise SubscriptionError(N_("There is no such workspace."))
    with tenant_transaction(tenant.ref):
        with as_serving_role():
            sub = _locked(tenant_id)
            if sub is None:
                raise SubscriptionError(N_("This workspace has no subscription."))
            result = change(sub, tenant)
            after = _locked(tenant_id)
        if after.status != "cancelled":
            due.arm(JOB, after.period_end)
    return result


def _start_values(plan: PlanVersion, interval: str, now: dt.datetime, trial: bool) -> dict:
    if trial and plan.trial_days:
        end = now + dt.timedelta(days=plan.trial_days)
        return {"status": "trial", "period_start": now, "period_end": end, "trial_end": end,
                "anchor_day": end.day}
    return {"status": "active", "period_start": now, "period_end": add_interval(now, interval, now.day),
            "trial_end": None, "anchor_day": now.day}


def default_plan_code() -> str:
    """The plan a new workspace is subscribed to: ``SMSGW_BILLING_DEFAULT_PLAN`` (``free``). Empty: new
    workspaces get no subscription and no plan limits (an installation that does not bill)."""
    return _platform.settings.billing_default_plan if _platform is not None else plans.DEFAULT_PLAN


def create_for(tenant, plan_code: str | None = None, interval: str = "month", *, actor: str = "system",
               actor_name: str = "") -> Subscription | None:
    """The subscription of a new workspace (``smsgw_tenant_created``): the default plan unless one is
    named (none when the default is empty); a plan with trial days starts in trial. Nothing when it
    has one already (idempotent)."""
    plan_code = plan_code or default_plan_code()
    if not plan_code:
        return None
    with tenant_transaction(tenant.ref):
        with as_serving_role():
            plan = plans.current(plan_code)
            if plan is None:
                raise SubscriptionError(N_("There is no plan %(code)s."), code=plan_code)
            now = utcnow()
            values = {"tenant_id": tenant.id, "plan_version_id": plan.id, "billing_interval": interval,
                      **_start_values(plan, interval, now, True)}
            inserted = app_db.execute_sql(
                f"INSERT INTO public.billing_subscriptions ({', '.join(values)}) VALUES "
                f"({', '.join(['%s'] * len(values))}) ON CONFLICT (tenant_id) DO NOTHING RETURNING tenant_id",
                list(values.values())).fetchone()
            if inserted is None:
                return None
            sub = get(tenant.id)
            _event(tenant, "billing.subscription_created", actor, actor_name, plan=plan.plan_code,
                   version=plan.version, status=sub.status, interval=interval, period_end=sub.period_end.isoformat())
        due.arm(JOB, sub.period_end)
    return sub


def start(tenant_id: int, plan_code: str, interval: str = "month", *, actor: str, actor_name: str = "",
          only_public: bool = True) -> dict:
    """Start the subscription over on ``plan_code`` (sign-up's choice, or a cancelled workspace that
    subscribes again): a new period from now, in trial when the plan has trial days and the
    workspace had none yet, otherwise charged in full."""
    target, interval = _target(plan_code, interval, only_public)
    if get_now(tenant_id) is None:  # never subscribed (an installation whose default plan is empty)
        tenant = _workspace(tenant_id)
        if tenant is not None:
            create_for(tenant, target.plan_code, interval, actor=actor, actor_name=actor_name)

    def change(sub, tenant):
        now = utcnow()
        values = _start_values(target, interval, now, sub.trial_end is None or sub.status == "trial")
        new = _save(sub, plan_version_id=target.id, billing_interval=interval, pending_plan_version_id=None,
                    pending_interval=None, cancel_at_period_end=False, cancelled_at=None, past_due_since=None,
                    **values)
        lines = [] if new.status == "trial" else charges.bill(
            tenant_id, [charges.plan_line(target, interval, new.period_start, new.period_end)], reason="start",
            currency=target.currency, period_start=new.period_start, period_end=new.period_end)
        _event(tenant, "billing.subscription_started", actor, actor_name, plan=target.plan_code,
               version=target.version, status=new.status, interval=interval, lines=_lines(lines))
        return {"kind": "started", "subscription": new, "lines": lines}

    return _in_workspace(tenant_id, change)


def _target(plan_code: str, interval: str, only_public: bool) -> tuple[PlanVersion, str]:
    if interval not in INTERVALS:
        raise SubscriptionError(N_("Choose monthly or yearly billing."))
    with connection():
        target = plans.current(str(plan_code or "")[:40])
    if target is None or (only_public and not target.public):
        raise SubscriptionError(N_("There is no plan %(code)s to choose. Pick one of the plans listed."),
                                code=str(plan_code)[:40])
    return target, interval


def change_plan(tenant_id: int, plan_code: str, interval: str = "month", *, actor: str, actor_name: str = "",
                only_public: bool = True) -> dict:
    """Move the workspace to ``plan_code`` billed per ``interval``. What happens:

    * a dearer plan, same interval and currency (or from a free plan): at once, charged the prorated
      difference for the rest of the period (``upgraded``);
    * a cheaper or equal plan, another interval, or another currency: at the period's end
      (``scheduled``; ``pending_plan_version_id``);
    * in trial: at once and free of charge; a plan without trial days ends the trial and starts a
      charged period (``upgraded``);
    * the plan it has: withdraws a scheduled change and a cancel (``unchanged``);
    * cancelled: starts over (``started``, see :func:`start`).

    Refused (:class:`SubscriptionError`, nothing changes): an unknown or unlisted plan, an unknown
    interval, and any change but a downgrade while payment is overdue (past due, suspended)."""
    target, interval = _target(plan_code, interval, only_public)
    current = get_now(tenant_id)
    if current is not None and current.status == "cancelled":
        return start(tenant_id, plan_code, interval, actor=actor, actor_name=actor_name, only_public=only_public)

    def change(sub, tenant):
        now = utcnow()
        old = sub.plan
        same = target.id == old.id and interval == sub.billing_interval
        if same:
            new = _save(sub, pending_plan_version_id=None, pending_interval=None, cancel_at_period_end=False)
            _event(tenant, "billing.subscription_change_withdrawn", actor, actor_name, plan=old.plan_code)
            return {"kind": "unchanged", "subscription": new, "lines": []}
        if sub.status == "trial":
            if target.trial_days:
                new = _save(sub, plan_version_id=target.id, billing_interval=interval, pending_plan_version_id=None,
                            pending_interval=None, cancel_at_period_end=False)
                lines = []
            else:
                values = _start_values(target, interval, now, False)
                new = _save(sub, plan_version_id=target.id, billing_interval=interval, pending_plan_version_id=None,
                            pending_interval=None, cancel_at_period_end=False, **values)
                lines = charges.bill(tenant_id, [charges.plan_line(target, interval, new.period_start,
                                                                   new.period_end)],
                                     reason="upgrade", currency=target.currency, period_start=new.period_start,
                                     period_end=new.period_end)
            _event(tenant, "billing.subscription_upgraded", actor, actor_name, plan_from=old.plan_code,
                   plan=target.plan_code, version=target.version, status=new.status, lines=_lines(lines))
            return {"kind": "upgraded", "subscription": new, "lines": lines}
        dearer = target.price(interval) > old.price(sub.billing_interval)
        comparable = interval == sub.billing_interval and (target.currency == old.currency
                                                           or old.price(interval) == 0)
        if dearer and comparable:
            if sub.status in ("past_due", "suspended"):
                raise SubscriptionError(N_("Pay the overdue invoice first; then you can upgrade."))
            lines = charges.bill(
                tenant_id, [charges.upgrade_line(old, target, interval, now, sub.period_start, sub.period_end)],
                reason="upgrade", currency=target.currency, period_start=now, period_end=sub.period_end)
            new = _save(sub, plan_version_id=target.id, pending_plan_version_id=None, pending_interval=None,
                        cancel_at_period_end=False)
            _event(tenant, "billing.subscription_upgraded", actor, actor_name, plan_from=old.plan_code,
                   version_from=old.version, plan=target.plan_code, version=target.version, lines=_lines(lines))
            return {"kind": "upgraded", "subscription": new, "lines": lines}
        if dearer and sub.status in ("past_due", "suspended"):
            raise SubscriptionError(N_("Pay the overdue invoice first; then you can upgrade."))
        new = _save(sub, pending_plan_version_id=target.id, pending_interval=interval, cancel_at_period_end=False)
        _event(tenant, "billing.subscription_change_scheduled", actor, actor_name, plan_from=old.plan_code,
               plan=target.plan_code, version=target.version, interval=interval, at=sub.period_end.isoformat())
        return {"kind": "scheduled", "subscription": new, "lines": []}

    return _in_workspace(tenant_id, change)


def cancel(tenant_id: int, *, actor: str, actor_name: str = "") -> Subscription:
    """Cancel at the period's end: the workspace keeps its plan until then (undone by :func:`resume`)."""
    def change(sub, tenant):
        if sub.status == "cancelled":
            raise SubscriptionError(N_("The subscription has ended already."))
        new = _save(sub, cancel_at_period_end=True, pending_plan_version_id=None, pending_interval=None)
        _event(tenant, "billing.subscription_cancel_scheduled", actor, actor_name, at=sub.period_end.isoformat())
        return new

    return _in_workspace(tenant_id, change)


def resume(tenant_id: int, *, actor: str, actor_name: str = "") -> Subscription:
    """Withdraw a cancel at period end."""
    def change(sub, tenant):
        if not sub.cancel_at_period_end:
            return sub
        new = _save(sub, cancel_at_period_end=False)
        _event(tenant, "billing.subscription_resumed", actor, actor_name)
        return new

    return _in_workspace(tenant_id, change)


def _set_status(tenant_id: int, action: str, wanted: str, from_states: tuple, actor: str, reason: str | None,
                **details) -> Subscription | None:
    def change(sub, tenant):
        if sub.status not in from_states:
            return sub
        extra = {}
        if wanted == "past_due":
            extra["past_due_since"] = sub.past_due_since or utcnow()
        elif wanted == "active":
            extra["past_due_since"] = None
        new = _save(sub, status=wanted, **extra)
        _event(tenant, action, actor, reason=reason, status_from=sub.status, status=wanted, **details)
        return new

    if get_now(tenant_id) is None:  # a workspace never subscribed (no default plan): a payment is just a payment
        return None
    return _in_workspace(tenant_id, change)


def payment_succeeded(tenant_id: int, invoice_id) -> Subscription | None:
    """An invoice was paid: a past-due or suspended workspace is active again (sends again)."""
    return _set_status(tenant_id, "billing.subscription_reactivated", "active", ("past_due", "suspended"),
                       "system", None, invoice=str(invoice_id))


def payment_failed(tenant_id: int, invoice_id) -> Subscription | None:
    """A payment failed: an active workspace becomes past due (``past_due_since`` kept from the first)."""
    return _set_status(tenant_id, "billing.subscription_past_due", "past_due", ("active", "past_due"),
                       "system", None, invoice=str(invoice_id))


def suspend(tenant_id: int, reason: str) -> Subscription | None:
    """Suspended (unpaid after the grace): the workspace signs in, reads, exports and pays, but does not send."""
    return _set_status(tenant_id, "billing.subscription_suspended", "suspended", ("trial", "active", "past_due"),
                       "system", str(reason)[:500])


def cancel_now(tenant_id: int, reason: str, *, actor: str = "system", tenant=None) -> bool:
    """End the subscription at once, charging nothing more (the workspace is being erased). Works
    after the workspace's schema is gone: catalogue only. True when it was not ended yet."""
    with connection():
        with app_db.atomic():
            row = app_db.execute_sql(
                "UPDATE public.billing_subscriptions SET status = 'cancelled', cancelled_at = now(), "
                "cancel_at_period_end = false, pending_plan_version_id = NULL, pending_interval = NULL, "
                "updated_at = now() WHERE tenant_id = %s AND status <> 'cancelled' RETURNING status",
                (tenant_id,)).fetchone()
            if row is not None:
                _event(tenant, "billing.subscription_cancelled", actor, reason=reason, immediately=True,
                       tenant_id=tenant_id)
    return row is not None


def get_now(tenant_id: int) -> Subscription | None:
    """:func:`get` in a connection of its own."""
    with connection():
        return get(tenant_id)


# -- renewal at the period's end (the due job) ---------------------------------------------------

def _renew_once(sub: Subscription, tenant, used: int, now: dt.datetime) -> Subscription:
    """Close the ended period of ``sub`` (locked): charge, move on or end. Returns the new state."""
    ended_start, ended_end = sub.period_start, sub.period_end
    old = sub.plan
    if sub.cancel_at_period_end:
        overage = charges.overage_line(old, used, ended_start, ended_end)
        lines = charges.bill(sub.tenant_id, [overage] if overage else [], reason="final", currency=old.currency,
                             period_start=ended_start, period_end=ended_end)
        new = _save(sub, status="cancelled", cancelled_at=ended_end, cancel_at_period_end=False,
                    pending_plan_version_id=None, pending_interval=None)
        _event(tenant, "billing.subscription_cancelled", "system", immediately=False, lines=_lines(lines))
        return new
    if sub.pending_plan_version_id is not None:
        target = plans.by_id(sub.pending_plan_version_id)
        target = plans.current(target.plan_code) or target
    else:
        target = plans.current(old.plan_code) or old  # the operator's newest version; a retired plan stays
    interval = sub.pending_interval or sub.billing_interval
    start, end = ended_end, add_interval(ended_end, interval, sub.anchor_day)
    overage = None if sub.status == "trial" else charges.overage_line(old, used, ended_start, ended_end)
    lines = []
    if overage and overage.amount and old.currency != target.currency:
        lines += charges.bill(sub.tenant_id, [overage], reason="renewal", currency=old.currency,
                              period_start=ended_start, period_end=ended_end)
        overage = None
    # A suspended workspace cannot send: the period it starts suspended is not charged (what it used
    # before is). Paying the invoice that suspended it makes it active; its next renewal charges again.
    plan_lines = [] if sub.status == "suspended" else [charges.plan_line(target, interval, start, end)]
    lines += charges.bill(sub.tenant_id, ([overage] if overage else []) + plan_lines,
                          reason="renewal", currency=target.currency, period_start=start, period_end=end)
    status = "active" if sub.status == "trial" else sub.status
    new = _save(sub, plan_version_id=target.id, billing_interval=interval, period_start=start, period_end=end,
                pending_plan_version_id=None, pending_interval=None, status=status)
    _event(tenant, "billing.trial_ended" if sub.status == "trial" else "billing.subscription_renewed", "system",
           plan_from=old.plan_code, version_from=old.version, plan=target.plan_code, version=target.version,
           interval=interval, period_start=start.isoformat(), period_end=end.isoformat(), used=used,
           lines=_lines(lines))
    return new


def run_renewal(tenant):
    """The due job: inside the workspace's transaction, renew every period that has ended (several
    when the worker was away). Idempotent: a period renewed is a period that has not ended."""
    from .usage_figures import period_usage

    now = utcnow()
    for _ in range(MAX_CATCH_UP):
        with as_serving_role():
            sub = _locked(tenant.id)
        if sub is None or sub.status == "cancelled" or sub.period_end > now:
            return None
        used = 0 if sub.status == "trial" else period_usage(tenant, sub.period_start, sub.period_end)
        with as_serving_role():
            _renew_once(sub, tenant, used, now)
    return None


def next_renewal(tenant) -> dt.datetime | None:
    """Inside the workspace's transaction: when its period ends (None once the subscription ended)."""
    with as_serving_role():
        row = app_db.execute_sql("SELECT period_end FROM public.billing_subscriptions WHERE tenant_id = %s "
                                 "AND status <> 'cancelled'", (tenant.id,)).fetchone()
    return row[0] if row else None


def tasks(queue) -> None:
    queue.due_job(JOB, run_renewal, next_renewal)
