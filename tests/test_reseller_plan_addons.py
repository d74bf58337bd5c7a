"""Addons as part of a retail plan (issue 18): a reseller includes an addon the operator made
available to it in one of its plans; a workspace on the plan gets it enabled through the same path
as ``smsgw addons enable`` (recorded per workspace), loses it when it moves off the plan, and a
failure names the addon and the reason. Another reseller's plans and unavailable addons are refused."""

from __future__ import annotations

import pytest

from addons.resellers import invoicing, plan_addons, service
from core.tenancy import load_tenant
from tests.support.identity import admin_sql, fetch_xsrf, post_form
from tests.support.resellers import customers_without, make_reseller, partner_sign_in

PLAN = {"currency": "EUR", "monthly_price": 1900, "included_segments": 100, "overage_per_1000": 50}


@pytest.fixture
def seller(platform, live_server):
    reseller = make_reseller(platform, "pa")
    for code in ("basic", "pro"):
        invoicing.create_plan(reseller, {"code": code, "name": code.title(), **PLAN})
    console = partner_sign_in(live_server, reseller)
    made = customers_without(platform, reseller, "pa-ws", 2)
    fetch_xsrf(console, f"/{reseller.slug}/invoices")
    yield reseller, console, made
    for slug in made:
        platform.tenants.delete(slug)


def post(console, reseller, **form):
    return post_form(console, f"/{reseller.slug}/invoices", form)


def has(slug: str, addon: str = "contacts") -> bool:
    return addon in load_tenant(slug).enabled_addons


def test_a_plan_s_addon_follows_its_workspaces_on_and_off_the_plan(platform, seller):
    reseller, console, (w1, w2) = seller
    assert post(console, reseller, action="assign_plan", workspace=w1, plan="pro").status_code == 302
    assert not has(w1)
    # Including contacts in "pro" enables it where "pro" is, nowhere else.
    r = post(console, reseller, action="plan_addon_add", plan="pro", addon="contacts")
    assert r.status_code == 302, r.text[:500]
    assert has(w1) and not has(w2)
    page = console.get(f"/{reseller.slug}/invoices").text
    assert 'value="plan_addon_remove"' in page and plan_addons.of_plan(invoicing.plan_by_code(reseller, "pro").id) == ["contacts"]
    # A workspace put on the plan gets it; moving to a plan without it takes it away; so does "no plan".
    assert post(console, reseller, action="assign_plan", workspace=w2, plan="pro").status_code == 302 and has(w2)
    assert post(console, reseller, action="assign_plan", workspace=w2, plan="basic").status_code == 302
    assert not has(w2) and has(w1)
    assert post(console, reseller, action="assign_plan", workspace=w1, plan="").status_code == 302 and not has(w1)
    # Taking it off a plan disables it in the plan's workspaces.
    assert post(console, reseller, action="assign_plan", workspace=w1, plan="pro").status_code == 302 and has(w1)
    assert post(console, reseller, action="plan_addon_remove", plan="pro", addon="contacts").status_code == 302
    assert not has(w1)
    # Each change is in the workspace's own audit trail, as the console's enabling is.
    rows = admin_sql(platform, "SELECT action FROM public.audit_event WHERE tenant_id = %s AND action LIKE 'reseller.%%' "
                     "ORDER BY id", (load_tenant(w1).id,), fetch=True)
    actions = [r[0] for r in rows]
    assert actions.count("reseller.addon_enabled") == 2 and actions.count("reseller.addon_disabled") == 2, actions


def test_a_workspace_that_cannot_take_the_addon_is_named_with_the_reason(platform, seller):
    reseller, console, (w1, w2) = seller
    for slug in (w1, w2):
        assert post(console, reseller, action="assign_plan", workspace=slug, plan="pro").status_code == 302
    admin_sql(platform, "UPDATE public.tenant_addon SET enabled = false WHERE tenant_id = %s AND addon = 'messaging'",
              (load_tenant(w2).id,))
    platform.tenant_cache.invalidate(w2)
    r = post(console, reseller, action="plan_addon_add", plan="pro", addon="contacts")
    assert r.status_code == 422 and w2 in r.text and "Enable messaging first" in r.text and w1 not in r.text.split(
        "could not be changed")[1].split("</div>")[0]
    assert has(w1) and not has(w2)


@pytest.mark.parametrize("form", [
    {"action": "plan_addon_add", "plan": "pro", "addon": "webhooks"},          # not available to it
    {"action": "plan_addon_add", "plan": "pro", "addon": "../../etc"},
    {"action": "plan_addon_add", "plan": "nope", "addon": "contacts"},         # no such plan
    {"action": "plan_addon_add", "plan": "x" * 500, "addon": "contacts"},
    {"action": "plan_addon_remove", "plan": "pro'; DROP TABLE x; --", "addon": "contacts"},
    {"action": "assign_plan", "workspace": "nobody-here", "plan": "pro"},
])
def test_bad_plan_addon_requests_are_refused_and_change_nothing(platform, seller, form):
    reseller, console, (w1, _w2) = seller
    r = post(console, reseller, **form)
    assert r.status_code in (404, 422), (r.status_code, r.text[:300])
    assert plan_addons.by_plan(reseller) == {} and not has(w1)


def test_another_reseller_cannot_touch_a_plan_or_its_workspaces(platform, live_server, seller):
    reseller, _console, (w1, _w2) = seller
    other = make_reseller(platform, "pb")
    service.set_available(platform, other, "contacts", True)
    invoicing.create_plan(other, {"code": "pro", "name": "Other pro", **PLAN})
    theirs = partner_sign_in(live_server, other)
    fetch_xsrf(theirs, f"/{other.slug}/invoices")
    # Its own "pro" is another plan: A's workspaces stay as they are.
    assert invoicing.assign_plan(platform, reseller, w1, "pro") == [] and not has(w1)
    r = post(theirs, other, action="plan_addon_add", plan="pro", addon="contacts")
    assert r.status_code == 302 and not has(w1) and plan_addons.by_plan(reseller) == {}
    # A's workspace through its console: a 404; A's console with its session: nobody there.
    assert post(theirs, other, action="assign_plan", workspace=w1, plan="pro").status_code == 404
    r = post_form(theirs, f"/{reseller.slug}/invoices", {"action": "plan_addon_add", "plan": "pro", "addon": "contacts"})
    assert r.status_code in (302, 401, 403, 404) and not has(w1)
