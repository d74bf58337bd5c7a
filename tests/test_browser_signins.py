"""Account -> Security in Chromium, on a laptop and on a phone screen: the member reaches it from the
account pages, sees their sign-ins (this browser's marked, another browser's listed, a failed try
marked failed) without anything past the screen's edge, and "this wasn't me" signs out this browser
and the other one and says to change the password."""

from __future__ import annotations

import pytest

from tests.support.browser import address, new_page, overflowing, page_problems, submit  # noqa: F401
from tests.support.browser import chromium, server  # noqa: F401
from tests.support.identity import OWNER_PASSWORD, audit_rows, owner_email

pytestmark = pytest.mark.browser


def sign_in(page, server, slug, password=OWNER_PASSWORD, email=None, tenant=None):
    page.goto(address(server, slug, "/login"))
    page.fill("#f-email", email or owner_email(tenant))
    page.fill("#f-password", password)
    return submit(page, "main form button[type=submit]")


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_the_member_reviews_sign_ins_and_signs_out_everywhere(new_page, server, make_tenant, width, height):
    t = make_tenant("sgnweb")
    other = new_page()
    sign_in(other, server, t.slug, tenant=t)  # another browser, still signed in
    page = new_page()
    page.set_viewport_size({"width": width, "height": height})
    sign_in(page, server, t.slug, password="not the password", tenant=t)  # a failed try first
    sign_in(page, server, t.slug, tenant=t)

    page.goto(address(server, t.slug, "/account"))
    with page.expect_navigation():
        page.click("nav.tabs >> text=Security")
    assert page.url.endswith("/account/security")
    table = page.locator("table.signins")
    assert table.locator("tbody tr").count() == 3
    current = table.locator("tr.signin-current")
    assert current.count() == 1 and "This session" in current.inner_text()
    assert "Chrome" in current.inner_text() and "Computer" in current.inner_text()
    assert table.locator("tr.signin-failed").count() == 1
    assert "Failed: wrong password" in table.locator("tr.signin-failed").inner_text()
    assert overflowing(page) == []
    if width < 600:  # each sign-in a labelled block: the labels show, the header row does not
        labels = current.locator("td").evaluate_all("tds => tds.map(td => getComputedStyle(td, '::before').content)")
        assert labels[3] == '"Browser: "', labels
        assert page.locator("table.signins thead tr").bounding_box()["x"] < 0

    response = submit(page, "#not-me button[type=submit]")
    assert response.status == 200 and page.url.endswith("/account/security/signed-out")
    assert "change it now" in page.inner_text("main")
    assert page.locator("a[href='/forgot-password']").is_visible()
    assert overflowing(page) == []

    for browser in (page, other):
        browser.goto(address(server, t.slug, "/account/security"))
        assert "/login" in browser.url
    assert len(audit_rows(server.platform, t.id, "account.signed_out_everywhere")) == 1
    assert page_problems(page, allow=["status of 401"]) == [] and page_problems(other) == []
