"""The Usage page in Chromium, on a desktop (1280x800) and a phone (390x844): its charts and tables
are drawn without a script or a CSP violation, nothing scrolls sideways, and the CSV link downloads
the same figures the page shows."""

from __future__ import annotations

import csv
import io

import pytest

from tests.support.browser import browser_page, chromium, overflowing, page_problems  # noqa: F401
from tests.support.messaging import raw_device
from tests.support.phones import api_client
from tests.test_browser_email_change import VIEWPORTS
from tests.test_browser_identity import server, submit, url  # noqa: F401
from tests.test_usage import LONG, USAGE_SCOPES

pytestmark = pytest.mark.browser

OWNER_PASSWORD = "a long enough password"


def fits(page, viewport) -> None:
    """Nothing scrolls the page sideways; what is wider than the screen is a table inside its own
    scrolling region (which fits, and takes the keyboard's focus to scroll)."""
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[viewport]["width"]
    assert overflowing(page) == []  # a wide table or chart scrolls in a box of its own that fits
    for region in page.locator(".usage-scroll").all():
        assert region.get_attribute("tabindex") == "0" and region.get_attribute("aria-label")


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_the_usage_page_draws_its_charts_and_downloads_its_csv(browser_page, server, make_tenant, tmp_path,
                                                                viewport):
    page = browser_page
    page.set_viewport_size(VIEWPORTS[viewport])
    t = make_tenant("busage")
    c = api_client(server, t.slug, USAGE_SCOPES)
    phone = raw_device(server, t.slug, tmp_path / "p")
    for _ in range(3):
        assert c.post("/api/v1/messages", json={"to": ["+14155550100"], "text": LONG}).status_code == 202
    for x in phone.fetch(limit=10):
        phone.report({"message_id": x["id"], "state": "delivered"})

    page.goto(url(server, t.slug, "/login"))
    page.fill("#f-email", f"owner@{t.slug}.example")
    page.fill("#f-password", OWNER_PASSWORD)
    submit(page)
    page.goto(url(server, t.slug, "/"))
    page.click("a[href='/usage']") if viewport == "desktop" else page.goto(url(server, t.slug, "/usage"))
    page.wait_for_url("**/usage")
    assert page.inner_text("h1") == "Usage"
    assert page.inner_text("[data-figure=segments_submitted]") == "6"
    assert page.inner_text("[data-figure=recipients_delivered]") == "3"
    assert page.locator("figure.chart svg[role=img]").count() >= 5
    fits(page, viewport)
    assert page_problems(page) == []

    with page.expect_download() as download:
        page.click("a[href='/usage.csv?days=30']")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert len(rows) == 30 and rows[-1]["segments_submitted"] == "6" and rows[-1]["recipients_delivered"] == "3"

    page.click("a[href='/usage?days=90']")
    page.wait_for_url("**/usage?days=90")
    assert page.locator("#usage-days tbody tr").count() == 90
    fits(page, viewport)
    assert page_problems(page) == []
