"""The operator's billing pages in the Admin console: plans (``/admin/billing/plans``: list every
version, create a plan, change or retire one) and subscriptions (``/admin/billing/subscriptions``,
filtered by status)."""

from __future__ import annotations

from core.db import app_db, connection
from core.i18n import N_
from core.web.admin_pages import AdminHandler
from core.web.problem import Problem

from . import plans, subscriptions

ADMIN_LINKS = [{"label": N_("Plans"), "url": "/admin/billing/plans"},
               {"label": N_("Subscriptions"), "url": "/admin/billing/subscriptions"}]
FORM_FIELDS = ("plan_code", "name", "currency", "monthly_price", "yearly_price", "included_segments", "max_devices",
               "max_members", "api_per_minute", "overage_per_1000", "trial_days", "addons", "sort_order")
BLANK = {**{f: "" for f in FORM_FIELDS}, "currency": "EUR", "trial_days": 0, "sort_order": 0, "public": "true"}


def _all_versions() -> list:
    with connection():
        return plans.versions()


class AdminPlansPage(AdminHandler):
    async def get(self, errors: dict | None = None, form: dict | None = None, editing: str | None = None):
        found = await self.run_db(_all_versions)
        lang = self.lang
        self.render("billing/plans_admin.html", current=[p for p in found if p.retired_at is None],
                    retired=[p for p in found if p.retired_at is not None], errors=errors or {}, form=form or {},
                    editing=editing, new_form=form if form and not editing else BLANK, addons=self.platform.registry.names(),
                    money=lambda amount, currency: plans.format_price(amount, currency, lang))

    async def post(self):
        action = self.get_body_argument("action", "")
        admin = self.principal
        form = {f: self.get_body_argument(f, "")[:200] for f in FORM_FIELDS}
        form["public"] = "true" if self.get_body_argument("public", "") else "false"
        form["addons"] = ",".join(self.get_body_arguments("addons")) or form["addons"]
        _ = self.gettext()[0]
        who = {"actor": admin.actor, "actor_name": admin.email}
        try:
            if action == "create":
                plan = await self.run_db(plans.create, self.platform, form, **who)
                message = _("Plan %(code)s created.") % {"code": plan.plan_code}
            elif action == "update":
                code = form.pop("plan_code")
                plan = await self.run_db(plans.update, self.platform, code, form, **who)
                message = _("Plan %(code)s is now at version %(version)s.") % {"code": plan.plan_code,
                                                                               "version": plan.version}
            elif action == "retire":
                plan = await self.run_db(plans.retire, self.platform, form["plan_code"], **who)
                message = _("Plan %(code)s retired; its subscribers keep it.") % {"code": plan.plan_code}
            else:
                raise Problem(400, "invalid-action", N_("Unknown action."))
        except plans.PlanError as exc:
            self.set_status(422)
            await self.get(errors=exc.translated(_), form=form,
                           editing=form.get("plan_code") if action != "create" else None)
            return
        self.flash("success", message)
        self.redirect("/admin/billing/plans", status=303)


def subscription_rows(status: str | None) -> list[dict]:
    where, params = ("", ()) if not status else (" WHERE s.status = %s", (status,))
    with connection():
        rows = app_db.execute_sql(
            "SELECT s.tenant_id, t.slug, t.name, p.plan_code, p.version, p.name, s.billing_interval, s.status, "
            "s.period_end, s.cancel_at_period_end, pp.plan_code, s.past_due_since, s.cancelled_at "
            "FROM public.billing_subscriptions s JOIN public.billing_plan_versions p ON p.id = s.plan_version_id "
            "LEFT JOIN public.billing_plan_versions pp ON pp.id = s.pending_plan_version_id "
            "LEFT JOIN public.tenant t ON t.id = s.tenant_id" + where +
            " ORDER BY s.status = 'cancelled', s.period_end, s.tenant_id LIMIT 1000", params).fetchall()
    keys = ("tenant_id", "slug", "tenant_name", "plan_code", "version", "plan_name", "interval", "status",
            "period_end", "cancel_at_period_end", "pending_plan", "past_due_since", "cancelled_at")
    return [dict(zip(keys, r)) for r in rows]


def status_counts() -> dict:
    with connection():
        return dict(app_db.execute_sql("SELECT status, count(*) FROM public.billing_subscriptions GROUP BY 1"))


class AdminSubscriptionsPage(AdminHandler):
    async def get(self):
        status = self.get_query_argument("status", "")
        if status and status not in subscriptions.STATUSES:
            raise Problem(400, "invalid-parameter", N_("status must be one of %(STATUSES)s."),
            args={"STATUSES": ', '.join(subscriptions.STATUSES)})
        rows = await self.run_db(subscription_rows, status or None)
        counts = await self.run_db(status_counts)
        self.render("billing/plans_admin_subscriptions.html", rows=rows, status=status,
                    statuses=subscriptions.STATUSES, counts=counts)


ROUTES = [(r"/admin/billing/plans", AdminPlansPage), (r"/admin/billing/subscriptions", AdminSubscriptionsPage)]


def template_context(handler) -> dict:
    return {"admin_links": ADMIN_LINKS} if handler.tenant is None else {}
