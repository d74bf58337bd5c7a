"""The public *Pricing* page (``/pricing`` on the base domain), generated from the public plans,
and the plan a new workspace picks at sign-up (the ``signup_parts`` slot, checked before the
workspace is made and applied after)."""

from __future__ import annotations

import logging

from core.i18n import N_
from core.permissions import PUBLIC
from core.web.base import PageHandler

from . import plans, subscriptions

log = logging.getLogger(__name__)

LINKS = [{"label": N_("Pricing"), "url": "/pricing"}]


class PricingPage(PageHandler):
    scope = "platform"
    permission = PUBLIC

    async def get(self):
        lang = self.lang
        shown = await self.run_db(plans.public_cached)
        self.render("billing/pricing.html", plans=shown,
                    money=lambda amount, currency: plans.format_price(amount, currency, lang))


ROUTES = [(r"/pricing", PricingPage)]


def template_context(handler) -> dict:
    """On the base domain: the Pricing link in the footer and beside the landing page's sign-up
    button, and the plan picker on the sign-up form."""
    if handler.tenant is not None:
        return {}
    ctx = {"footer_links": LINKS, "home_links": LINKS}
    if handler.request.path == "/signup":
        try:
            choices = plans.public_cached()
        except Exception:  # the form still works without the picker: the default plan applies
            log.exception("could not read the plans for the sign-up form")
            return ctx
        if choices:
            lang = handler.lang
            ctx["signup_parts"] = ["billing/billing_signup.html"]
            ctx["signup_plans"] = choices
            ctx["signup_money"] = lambda amount, currency: plans.format_price(amount, currency, lang)
            chosen = handler.get_argument("plan", "") or plans.DEFAULT_PLAN
            ctx["signup_plan"] = chosen if any(p.plan_code == chosen for p in choices) else choices[0].plan_code
            ctx["signup_interval"] = "year" if handler.get_argument("interval", "") == "year" else "month"
    return ctx


def signup_check(handler) -> dict | None:
    """The chosen plan must be one on offer (the form may be forged)."""
    code = handler.get_body_argument("plan", "")
    interval = handler.get_body_argument("interval", "month")
    _ = handler.gettext()[0]
    if not code:
        return None  # a form without the picker: the default plan
    if interval not in subscriptions.INTERVALS:
        return {"plan": _("Choose monthly or yearly billing.")}
    if not any(p.plan_code == code for p in plans.public_cached()):
        return {"plan": _("There is no plan %(code)s to choose. Pick one of the plans listed.") % {"code": code[:40]}}
    return None


def signed_up(handler, tenant) -> None:
    """The new workspace (subscribed to the default plan when it was made) gets the plan it chose."""
    code = handler.get_body_argument("plan", "") or plans.DEFAULT_PLAN
    interval = handler.get_body_argument("interval", "month")
    sub = subscriptions.get_now(tenant.id)
    if sub is not None and sub.plan.plan_code == code and sub.billing_interval == interval:
        return
    subscriptions.start(tenant.id, code, interval, actor="user:1",
                        actor_name=handler.get_body_argument("email", "")[:254])
