"""The privacy page, the acknowledgement of the policy and the objection section in Chromium, on a
desktop (1280x800) and a phone (390x844)."""

from __future__ import annotations


import pytest

from tests.support.browser import browser_page, chromium, page_problems  # noqa: F401
from tests.support.browser import server, submit  # noqa: F401
from tests.support.identity import add_user, admin_sql, fresh_ip, owner_email

pytestmark = pytest.mark.browser

PASSWORD = "a long enough password"
SCREENS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(params=list(SCREENS))
def page(request, browser_page):
    browser_page.set_viewport_size(SCREENS[request.param])
    browser_page.set_extra_http_headers({"X-Real-IP": fresh_ip()})
    return browser_page


def url(server, slug, path="/"):
    host = f"{slug}.{server.platform.settings.base_domain}" if slug else server.platform.settings.base_domain
    return f"http://{host}:{server.port}{path}"


def fits_the_screen(page, selector: str = "main") -> bool:
    return page.evaluate("""(selector) => {
        const width = window.innerWidth;
        const boxes = Array.from(document.querySelectorAll(selector + ', ' + selector + ' *'));
        return boxes.length > 0 && boxes.every(e => e.getBoundingClientRect().right <= width + 1);
    }""", selector)


def sign_in(page, server, slug, address):
    page.goto(url(server, slug, "/login"))
    page.fill("#f-email", address)
    page.fill("#f-password", PASSWORD)
    submit(page, "main form button[type=submit]")
    assert page.url == url(server, slug, "/"), page.url


def test_the_privacy_page_reads_well_in_english_and_german(page, server, make_tenant):
    tenant = make_tenant("bpol")
    for slug in (None, tenant.slug):
        page.goto(url(server, slug, "/"))
        submit(page, "footer a[href='/privacy']")
        assert page.url == url(server, slug, "/privacy")
        assert page.inner_text("article.privacy-policy h1") == "Privacy policy"
        assert server.platform.settings.privacy_address in page.inner_text("article.privacy-policy")
        assert fits_the_screen(page) and fits_the_screen(page, "article.privacy-policy")
    page.select_option("#lang-select", "de")
    submit(page, "form.lang-switch button[type=submit]")
    assert page.inner_text("article.privacy-policy h1") == "Datenschutzerklärung"
    assert fits_the_screen(page)
    assert page_problems(page) == []


def test_a_signed_in_person_acknowledges_the_policy_once(page, server, make_tenant):
    tenant = make_tenant("back")
    sign_in(page, server, tenant.slug, owner_email(tenant))
    banner = page.locator(".policy-notice")
    assert banner.count() == 1 and "privacy policy has changed" in banner.inner_text()
    assert fits_the_screen(page, ".page-notices")
    page.goto(url(server, tenant.slug, "/account"))
    assert page.locator(".policy-notice").count() == 1  # on every page until acknowledged
    submit(page, ".policy-notice button[type=submit]")
    assert page.url == url(server, tenant.slug, "/account")
    assert page.locator(".policy-notice").count() == 0
    page.goto(url(server, tenant.slug, "/"))
    assert page.locator(".policy-notice").count() == 0
    recorded = admin_sql(server.platform, "SELECT how FROM public.privacy_policy_acceptance WHERE tenant_id = %s",
                         (tenant.id,), fetch=True)
    assert recorded == [("acknowledged",)]
    assert page_problems(page) == []


def test_a_member_objects_restricts_and_withdraws_on_the_privacy_page(page, server, make_tenant):
    tenant = make_tenant("bobj")
    address = f"member@{tenant.slug}.example"
    add_user(server.platform, tenant, address, PASSWORD)
    sign_in(page, server, tenant.slug, address)
    page.goto(url(server, tenant.slug, "/account/privacy"))
    section = page.locator("section#objection")
    assert section.count() == 1 and fits_the_screen(page)
    submit(page, "li.objection[data-purpose=marketing] button[value=object]")
    assert "objection is in force" in page.inner_text(".flash")
    assert "You object since" in page.inner_text("li.objection[data-purpose=marketing]")
    # A restriction needs a reason; refused without one, with the reason shown beside the field.
    page.fill("#f-restriction-reason", "short")
    response = submit(page, "form.restriction-form button[type=submit]")
    assert response.status == 422 and "at least 10 characters" in page.inner_text("#e-restriction-reason")
    page.fill("#f-restriction-reason", "My job title is <b>wrong</b> in the team list.")
    submit(page, "form.restriction-form button[type=submit]")
    assert page.inner_text(".restriction-reason") == "My job title is <b>wrong</b> in the team list."
    assert fits_the_screen(page)
    kinds = page.locator("section#requests li.privacy-request").evaluate_all("rows => rows.map(r => r.dataset.kind)")
    assert sorted(kinds) == ["objection", "restriction"]
    submit(page, "li.objection[data-purpose=marketing] button[value=withdraw]")
    assert page.locator("li.objection[data-purpose=marketing] button[value=object]").count() == 1
    assert page_problems(page, allow=("status of 422",)) == []
