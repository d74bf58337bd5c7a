"""The customer's *Billing* page (``/billing``): the plan, this period's usage with its chart, the
projected invoice, and changing the plan (upgrade now, downgrade or cancel at the period's end)."""

from __future__ import annotations

from core.clock import utcnow
from core.db import as_serving_role
from core.i18n import N_
from core.web.base import PageHandler
from core.web.menu import SETTINGS, MenuItem
from core.web.problem import Problem

from . import charges, plans, subscriptions
from .usage_figures import daily, period_usage

READ = "billing:read"
MANAGE = "billing:manage"


def permissions(register) -> None:
    register(READ, "See the workspace's plan, subscription, usage meter and projected invoice",
             ["customer", "admin"])
    register(MANAGE, "Change the workspace's plan or cancel its subscription", ["customer"])


MENU = [MenuItem(N_("Billing"), "/billing", READ, 70, SETTINGS)]


def projected(sub, used: int) -> dict:
    """What the next invoice will hold if nothing else changes: the overage so far of this period
    and the next period's price (of the plan it renews on)."""
    lines = []
    if sub.status == "cancelled":
        return {"lines": [], "total": 0, "currency": sub.plan.currency, "plan": None}
    overage = None if sub.status == "trial" else charges.overage_line(sub.plan, used, sub.period_start,
                                                                      sub.period_end)
    if overage:
        lines.append(overage)
    plan = None
    if not sub.cancel_at_period_end:
        plan = plans.by_id(sub.pending_plan_version_id) if sub.pending_plan_version_id else sub.plan
        plan = plans.current(plan.plan_code) or plan
        interval = sub.pending_interval or sub.billing_interval
        end = subscriptions.add_interval(sub.period_end, interval, sub.anchor_day)
        lines.append(charges.plan_line(plan, interval, sub.period_end, end))
    return {"lines": lines, "total": sum(x.amount for x in lines), "currency": (plan or sub.plan).currency,
            "plan": plan}


def load(tenant) -> dict:
    """Inside the workspace's transaction: everything the page shows (creating the subscription of a
    workspace made before billing was installed)."""
    with as_serving_role():
        sub = subscriptions.get(tenant.id)
    if sub is None:
        subscriptions.create_for(tenant)
        with as_serving_role():
            sub = subscriptions.get(tenant.id)
    now = utcnow()
    used = period_usage(tenant, sub.period_start, min(now, sub.period_end))
    days = daily(sub.period_start, sub.period_end)
    with as_serving_role():
        choices = plans.all_current(only_public=True)
        pending = plans.by_id(sub.pending_plan_version_id) if sub.pending_plan_version_id else None
        upcoming = projected(sub, used)
    return {"sub": sub, "used": used, "days": days, "projected": upcoming, "choices": choices,
            "pending": pending, "today": now.date()}


class BillingPage(PageHandler):
    permissions = {"GET": READ, "POST": MANAGE}

    async def get(self, error: str | None = None):
        data = await self.in_tenant(load, self.tenant)
        lang = self.lang
        points = [(f"{d:%m-%d}", n) for d, n in data["days"]]
        self.render("billing/billing.html", **data, points=points, error=error,
                    money=lambda amount, currency: plans.format_price(amount, currency, lang),
                    can_manage=self.principal.can(MANAGE))

    async def post(self):
        action = self.get_body_argument("action", "")
        principal, _ = self.principal, self.gettext()[0]
        tenant_id = self.tenant.id
        try:
            if action == "change":
                plan = self.get_body_argument("plan", "")[:40]
                interval = self.get_body_argument("interval", "month")[:10]
                result = await self.run_db(subscriptions.change_plan, tenant_id, plan, interval,
                                           actor=principal.actor, actor_name=principal.email or "")
                message = {"upgraded": N_("Your plan was changed. The difference for the rest of this period "
                                          "is charged now."),
                           "scheduled": N_("Your plan changes at the end of this period."),
                           "unchanged": N_("You keep your current plan."),
                           "started": N_("Your subscription started again.")}[result["kind"]]
            elif action == "cancel":
                await self.run_db(subscriptions.cancel, tenant_id, actor=principal.actor,
                                  actor_name=principal.email or "")
                message = N_("Your subscription ends at the end of this period.")
            elif action == "resume":
                await self.run_db(subscriptions.resume, tenant_id, actor=principal.actor,
                                  actor_name=principal.email or "")
                message = N_("Your subscription continues.")
            else:
                raise Problem(400, "bad-request", N_("Unknown action; reload the page and try again."))
        except subscriptions.SubscriptionError as exc:
            self.set_status(422)
            await self.get(error=_(exc.message) % exc.params if exc.params else _(exc.message))
            return
        self.flash("success", _(message))
        self.redirect("/billing", status=303)


ROUTES = [(r"/billing", BillingPage)]
