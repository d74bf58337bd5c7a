"""In Chromium, at desktop and phone sizes, the pages issue 18's second round added: a reseller's
person uploads its logo and opens its sign-up page with a retail plan that includes an addon; a
customer signs up there under the reseller's brand (its logo, never the platform's name) and lands
in a workspace that shows the reseller's logo and has the plan's addon; the platform Admin
suspends the reseller with a reason, and its console says so. Hostile text is shown as text."""

from __future__ import annotations

import re
import secrets

import pytest

from addons.resellers import invoicing, service
from core.admins import create_admin
from core.tenancy import load_tenant
from tests.support.browser import (address, chromium, new_page, overflowing, page_problems, server,  # noqa: F401
                                   submit)
from tests.support.identity import OWNER_PASSWORD, fresh_ip
from tests.support.resellers import (PARTNER_PASSWORD, customers_without, make_reseller, partner_email,
                                     partners_address)
from tests.test_branding import png

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
HOSTILE = "<img src=x onerror=\"document.title='pwned'\"> & {{7*7}}"
PLATFORM_NAME = re.compile(r"SMS Gateway(?! for Android)")
ADMIN_PASSWORD = "an operator's long password"


def console_page(new_page, server, reseller, viewport: str):
    """A page at ``viewport`` size with the reseller's person signed in through the console's form."""
    page = new_page()
    page.set_viewport_size(VIEWPORTS[viewport])
    page.goto(partners_address(server, f"/{reseller.slug}/login"))
    page.fill("#f-email", partner_email(reseller))
    page.fill("#f-password", PARTNER_PASSWORD)
    submit(page)
    return page


def fits(page, where: str) -> None:
    assert overflowing(page) == [], where
    assert page.title() != "pwned", where


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_logo_sign_up_plan_addon_and_suspension(platform, server, new_page, tmp_path, viewport):
    reseller = make_reseller(platform, "bb")
    service.set_available(platform, reseller, "contacts", True)
    invoicing.create_plan(reseller, {"code": "starter", "name": "Starter", "currency": "EUR", "monthly_price": 900,
                                     "included_segments": 100, "overage_per_1000": 50})
    page = console_page(new_page, server, reseller, viewport)
    # The brand page: a hostile SVG is refused with its reason, a PNG is taken and shown in the header.
    page.goto(partners_address(server, f"/{reseller.slug}/brand"))
    page.fill("#f-product_name", "Acme Texts")
    submit(page, "main form[action$='/brand'] button[type=submit]")
    bad = tmp_path / "bad.svg"
    bad.write_bytes(b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')
    page.set_input_files("#f-logo", str(bad))
    submit(page, "main form[action$='/brand/logo'] button[type=submit]")
    assert "<script>" in page.inner_text("#e-logo")
    good = tmp_path / "logo.png"
    good.write_bytes(png(64, 32))
    page.set_input_files("#f-logo", str(good))
    submit(page, "main form[action$='/brand/logo'] button[type=submit]")
    assert page.locator("header img.brand-logo").count() == 1
    assert page.evaluate("document.querySelector('header img.brand-logo').naturalWidth") == 64
    fits(page, "brand page")
    # Plans: contacts included in Starter; the sign-up page opened on Starter.
    page.goto(partners_address(server, f"/{reseller.slug}/invoices"))
    page.select_option("#pa-starter", "contacts")
    submit(page, "form:has(#pa-starter) button[type=submit]")
    assert "contacts" in page.inner_text("#plans")
    page.check("#signup-settings input[name=signup_enabled]")
    page.select_option("#f-signup-plan", "starter")
    submit(page, "#signup-settings button[type=submit]")
    fits(page, "plans page")
    assert page_problems(page, allow=("status of 422",)) == []

    # A customer signs up on the reseller's page.
    visitor = new_page()
    visitor.set_extra_http_headers({"X-Real-IP": fresh_ip()})  # the sign-up limit per address is this test's
    visitor.set_viewport_size(VIEWPORTS[viewport])
    visitor.goto(partners_address(server, f"/{reseller.slug}/signup"))
    assert "Acme Texts" in visitor.title() and not PLATFORM_NAME.search(visitor.content())
    assert visitor.evaluate("document.querySelector('header img.brand-logo').naturalWidth") == 64
    fits(visitor, "sign-up page")
    slug = f"bs-{secrets.token_hex(3)}"
    visitor.fill("#f-company", HOSTILE)
    visitor.fill("#f-slug", slug)
    visitor.fill("#f-email", f"owner@{slug}.example")
    visitor.fill("#f-password", "short")
    if visitor.locator("#f-accept_privacy").count():
        visitor.check("#f-accept_privacy")
    submit(visitor)
    assert "10" in visitor.inner_text("main") and load_tenant(slug) is None  # refused with a message
    visitor.fill("#f-password", OWNER_PASSWORD)
    if visitor.locator("#f-accept_privacy").count():
        visitor.check("#f-accept_privacy")
    submit(visitor)
    try:
        assert visitor.url.startswith(address(server, slug, "/")), visitor.url
        tenant = load_tenant(slug)
        assert tenant.name == HOSTILE and "contacts" in tenant.enabled_addons
        assert service.workspace(reseller.id, slug) is not None
        assert "Acme Texts" in visitor.title() and not PLATFORM_NAME.search(visitor.inner_text("body"))
        assert visitor.evaluate("document.querySelector('header img.brand-logo').naturalWidth") == 64
        fits(visitor, "new workspace")
        assert page_problems(visitor, allow=("status of 422",)) == []

        # The Admin suspends the reseller; its console says why.
        admin = create_admin(platform, f"ops-{secrets.token_hex(4)}@platform.example", ADMIN_PASSWORD, "Ops")
        ops = new_page()
        ops.set_viewport_size(VIEWPORTS[viewport])
        ops.goto(f"http://{platform.settings.base_domain}:{server.port}/admin/login")
        ops.fill("#f-email", admin.email)
        ops.fill("#f-password", ADMIN_PASSWORD)
        submit(ops)
        ops.goto(f"http://{platform.settings.base_domain}:{server.port}/admin/resellers/{reseller.slug}")
        fits(ops, "admin reseller page")
        reason = "Unpaid <b>invoices</b> since October"
        ops.fill("#f-reason", reason)
        submit(ops, "#status button[value=suspend]")
        assert reason in ops.inner_text("#status") and ops.locator("#status b").count() == 0
        fits(ops, "suspended")
        page.goto(partners_address(server, f"/{reseller.slug}"))
        assert "is suspended by the platform operator" in page.inner_text("main") and reason in page.inner_text("main")
        fits(page, "suspended console")
    finally:
        platform.tenants.delete(slug)


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_enabling_an_addon_for_many_workspaces_shows_each_outcome_as_it_comes(platform, server, new_page, viewport):
    from tests.support.identity import admin_sql

    reseller = make_reseller(platform, "bp", max_workspaces=10)
    made = customers_without(platform, reseller, "bp", 4)
    broken = made[2]
    admin_sql(platform, "UPDATE public.tenant_addon SET enabled = false WHERE tenant_id = %s AND addon = 'messaging'",
              (load_tenant(broken).id,))
    platform.tenant_cache.invalidate(broken)
    try:
        page = console_page(new_page, server, reseller, viewport)
        page.goto(partners_address(server, f"/{reseller.slug}/addons"))
        assert page.locator("#outcomes").is_hidden()
        page.check("[data-addon=contacts] input[name=all]")
        before = page.url
        page.click("[data-addon=contacts] button[value=enable]")
        page.wait_for_selector("#outcomes[data-state=finished]")
        assert page.url == before  # no navigation: the script showed the progress
        for slug in made:
            text = page.inner_text(f"#outcomes li[data-slug='{slug}']")
            if slug == broken:
                assert "failed" in text and "Enable messaging first" in text, text
            else:
                assert text.endswith("done"), text
        assert "3 of 4 workspaces done." in page.inner_text("#outcomes")
        assert all("contacts" in load_tenant(s).enabled_addons for s in made if s != broken)
        fits(page, "addon progress")
        assert page_problems(page) == []
    finally:
        for slug in made:
            platform.tenants.delete(slug)
