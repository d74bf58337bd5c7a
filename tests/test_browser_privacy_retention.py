"""Account → Privacy, "Message text": the Customer changes how long message text is kept, in Chromium on a
laptop and on a phone screen; a refused value shows next to the field and changes nothing; a removed text
shows as "text removed after N days" on the message's page."""

from __future__ import annotations

import datetime as dt

import pytest

from addons.privacy import retention
from tests.support.browser import browser_page, chromium, page_problems  # noqa: F401
from tests.support.browser import address, overflowing, submit  # noqa: F401
from tests.support.identity import OWNER_PASSWORD, audit_rows, owner_email
from tests.support.messaging import sql

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_the_customer_sets_the_retention_on_the_privacy_page(browser_page, live_server, make_tenant, width, height):
    page = browser_page
    page.set_viewport_size({"width": width, "height": height})
    t = make_tenant("retweb")
    page.goto(address(live_server, t.slug, "/login"))
    page.fill("#f-email", owner_email(t))
    page.fill("#f-password", OWNER_PASSWORD)
    submit(page, "main form button[type=submit]")

    page.goto(address(live_server, t.slug, "/account/privacy"))
    field = page.locator("#f-keep_message_text_days")
    assert field.input_value() == "7"
    assert "Message text" in page.inner_text("#retention")
    assert overflowing(page) == []

    field.fill("30")
    response = submit(page, "#retention button[type=submit]")
    assert response.status == 200 and "/account/privacy" in response.url
    assert page.locator("#f-keep_message_text_days").input_value() == "30"
    assert "Message-text retention saved." in page.inner_text("main")
    assert sql(t, "SELECT keep_days FROM privacy_retention") == [(30,)]
    (event,) = audit_rows(live_server.platform, t.id, "privacy.retention_changed")
    assert event["details"] == {"keep_message_text_days": {"from": 7, "to": 30}}

    # The browser's own check stops a value out of range; the server refuses it too, next to the field.
    page.evaluate("document.querySelector('#retention form').noValidate = true")
    page.locator("#f-keep_message_text_days").fill("400")
    response = submit(page, "#retention button[type=submit]")
    assert response.status == 422
    assert "from 0 to 365" in page.inner_text("#retention .field-error")
    assert page.locator("#f-keep_message_text_days").get_attribute("aria-invalid") == "true"
    assert sql(t, "SELECT keep_days FROM privacy_retention") == [(30,)]
    assert overflowing(page) == []
    assert page_problems(page, allow=["status of 422"]) == []  # the refused form, on purpose

    # A message whose text was removed says so on its page.
    ended = dt.datetime(2026, 1, 1, 12, tzinfo=dt.timezone.utc)
    (mid,), = sql(t, "INSERT INTO messages (created_at, text, encoding, segments) VALUES (%s, 'gone soon', "
                     "'GSM-7', 1) RETURNING id", (ended,))
    sql(t, "INSERT INTO recipients (message_id, phone, state, updated_at) VALUES (%s, '+14155550100', 'delivered', "
           "%s)", (mid, ended))
    retention.redact(live_server.platform, t, now=ended + dt.timedelta(days=30, seconds=1))
    page.goto(address(live_server, t.slug, f"/messages/{mid}"))
    assert "text removed after 30 days" in page.inner_text("main")
    assert "gone soon" not in page.content()
