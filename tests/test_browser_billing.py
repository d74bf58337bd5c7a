"""Billing in Chromium, on a desktop (1280x800) and a phone (390x844): the Billing page changes the
plan (an upgrade at once, then a downgrade scheduled for the period's end) with its form token, the
Pricing page lists the public plans and leads to a sign-up with the plan chosen; nothing scrolls
sideways, no script error, no CSP violation."""

from __future__ import annotations

import secrets

import pytest

from addons.billing import plans, subscriptions
from tests.support.browser import browser_page, chromium, overflowing, page_problems, server, submit  # noqa: F401
from tests.test_browser_email_change import VIEWPORTS
from tests.test_browser_identity import url

pytestmark = pytest.mark.browser

OWNER_PASSWORD = "a long enough password"


def fits(page, viewport) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[viewport]["width"]
    assert overflowing(page) == []  # a wide table or chart scrolls in a box of its own that fits


def plan(platform, name, price, **terms):
    return plans.create(platform, {"plan_code": f"b-{secrets.token_hex(4)}", "name": name, "currency": "EUR",
                                   "monthly_price": price, "yearly_price": price * 10, "included_segments": 1000,
                                   "overage_per_1000": 500, **terms}, actor="test")


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_changing_the_plan_on_the_billing_page(browser_page, server, make_tenant, viewport):
    page = browser_page
    page.set_viewport_size(VIEWPORTS[viewport])
    platform = server.platform
    basic, premium = plan(platform, "Basic B", 1500), plan(platform, "Premium B", 4500)
    t = make_tenant("bbill")
    subscriptions.start(t.id, basic.plan_code, actor="test")
    page.goto(url(server, t.slug, "/login"))
    page.fill("#f-email", f"owner@{t.slug}.example")
    page.fill("#f-password", OWNER_PASSWORD)
    submit(page)
    page.goto(url(server, t.slug, "/"))
    if viewport == "desktop":
        page.click("a[href='/billing']")
    else:
        page.goto(url(server, t.slug, "/billing"))
    page.wait_for_url("**/billing")
    assert page.inner_text("h1") == "Billing"
    assert page.get_attribute("#billing-plan", "data-plan") == basic.plan_code
    assert page.locator("#billing-usage figure.chart svg[role=img]").count() == 1
    assert page.locator("#billing-meter").count() == 1
    fits(page, viewport)

    page.check(f"input[name=plan][value='{premium.plan_code}']")
    page.click("#billing-change-submit")
    page.wait_for_selector(".flash")
    assert "charged now" in page.inner_text(".flash")
    assert page.get_attribute("#billing-plan", "data-plan") == premium.plan_code
    assert subscriptions.get_now(t.id).plan.id == premium.id

    page.check(f"input[name=plan][value='{basic.plan_code}']")
    page.click("#billing-change-submit")
    page.wait_for_selector("#billing-pending-notice")
    assert "Basic B" in page.inner_text("#billing-pending-notice")
    assert page.get_attribute("#billing-plan", "data-plan") == premium.plan_code  # until the period ends
    assert subscriptions.get_now(t.id).pending_plan_version_id == basic.id
    fits(page, viewport)
    assert page_problems(page) == []


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_the_pricing_page_leads_to_a_sign_up_with_the_plan_chosen(browser_page, server, viewport):
    page = browser_page
    page.set_viewport_size(VIEWPORTS[viewport])
    offered = plan(server.platform, "Pricing B", 2900, trial_days=30)
    page.goto(url(server, None, "/"))
    page.click("a.home-link[href='/pricing']")
    page.wait_for_url("**/pricing")
    card = page.locator(f"[data-plan='{offered.plan_code}']")
    assert "€29.00 a month" in card.inner_text() and "30 days free trial" in card.inner_text()
    fits(page, viewport)
    card.locator("a.button").click()
    page.wait_for_url(f"**/signup?plan={offered.plan_code}")
    assert page.eval_on_selector("#f-plan", "e => e.value") == offered.plan_code
    assert page.locator("a[href='/pricing']").count() >= 1
    fits(page, viewport)
    assert page_problems(page) == []
