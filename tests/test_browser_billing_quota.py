"""The quota as a person sees it in Chromium, on a desktop (1280x800) and a phone (390x844): sending
from the dashboard fills a hard-stop plan, the banner warns at 80 % and says sending stopped at
100 %, and the next send gets the 402 page's message naming the limit with a link to the plans;
nothing scrolls sideways and the pages raise no script or CSP problem."""

from __future__ import annotations

import pytest

from tests.support.browser import address, browser_page, chromium, overflowing, page_problems, server, submit  # noqa: F401
from tests.support.messaging import sql
from tests.support.quotas import make_plan, subscribe
from tests.test_browser_email_change import VIEWPORTS

pytestmark = pytest.mark.browser

OWNER_PASSWORD = "a long enough password"


def send(page, server, slug: str, to: str):
    page.goto(address(server, slug, "/send"))
    page.fill("#f-to", to)
    page.fill("#f-text", "Your parcel is ready")
    return submit(page)


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_the_banner_warns_and_the_send_beyond_the_plan_is_refused_in_words(browser_page, server, platform,
                                                                            make_tenant, viewport):
    page = browser_page
    page.set_viewport_size(VIEWPORTS[viewport])
    t = make_tenant("bquota")
    subscribe(platform, t, make_plan(platform, included=5, name="Starter"))
    page.goto(address(server, t.slug, "/login"))
    page.fill("#f-email", f"owner@{t.slug}.example")
    page.fill("#f-password", OWNER_PASSWORD)
    submit(page)
    assert page.locator("#quota-notice").count() == 0

    assert send(page, server, t.slug, "+14155550101, +14155550102, +14155550103, +14155550104").status == 200
    page.goto(address(server, t.slug, "/"))
    banner = page.locator("#quota-notice")
    assert "80 %" in banner.inner_text() and banner.locator("a[href='/billing']").count() == 1
    assert overflowing(page) == []

    assert send(page, server, t.slug, "+14155550105").status == 200  # the last segment
    page.goto(address(server, t.slug, "/"))
    assert "new sends are refused" in page.locator("#quota-notice").inner_text()

    response = send(page, server, t.slug, "+14155550106")
    assert response.status == 402
    error = page.locator("main .flash-error[role=alert]")
    text = error.inner_text()
    assert "Starter plan includes 5 segments" in text and "5 are used" in text and "nothing was sent" in text
    assert error.locator("a#send-upgrade").get_attribute("href").endswith("/billing")
    assert page.input_value("#f-to") == "+14155550106"  # what was typed is kept for later
    assert overflowing(page) == []
    assert page_problems(page, allow=("status of 402 (Payment Required)",)) == []  # the refusal asked for
    assert sql(t, "SELECT count(*) FROM recipients")[0][0] == 5
