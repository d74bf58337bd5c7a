"""Live pages (issue 22, items 3 and 11), in Chromium on a laptop and on a phone screen.

The conversation, the message detail and the devices page update without a reload when the phone
reports or receives; replying in a conversation stays in it; the Overview shows the phones, the
figures and its charts without spilling out of the screen. Screenshots go to the git-ignored
``build/screenshots/live/`` folder, beside those of tests/test_browser_layout.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.browser import browser_page, chromium, page_problems  # noqa: F401
from tests.support.browser import address, keep_screenshot, overflowing, submit  # noqa: F401
from tests.support.devices import device_client, phone, raw_device
from tests.support.identity import OWNER_PASSWORD, owner_email
from tests.support.phones import api_client

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parent.parent / "build" / "screenshots" / "live"


def sign_in(page, server, t):
    page.goto(address(server, t.slug, "/login"))
    page.fill("#f-email", owner_email(t))
    page.fill("#f-password", OWNER_PASSWORD)
    submit(page, "main form button[type=submit]")


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_conversation_message_and_devices_update_without_a_reload(browser_page, live_server, make_tenant,
                                                                   width, height):
    page = browser_page
    page.set_viewport_size({"width": width, "height": height})
    t = make_tenant("live")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api, uid="live-phone", name="Live phone")
    dev = device_client(live_server, t.slug, token)
    sender = phone(5)
    assert dev.post("/api/device/v1/inbound", json={"messages": [
        {"id": "in-1", "from": sender, "body": "first question"}]}).status_code == 200
    sign_in(page, live_server, t)

    # The Inbox's conversations: a new sender appears without a reload.
    page.goto(address(live_server, t.slug, "/inbox"))
    page.evaluate("window.__notReloaded = true")
    newcomer = phone(6)
    assert dev.post("/api/device/v1/inbound", json={"messages": [
        {"id": "in-0", "from": newcomer, "body": "hello from a newcomer"}]}).status_code == 200
    page.wait_for_selector("#live-inbox :text('hello from a newcomer')", timeout=15000)
    assert page.evaluate("window.__notReloaded === true")

    page.goto(address(live_server, t.slug, f"/inbox/{sender}"))
    page.evaluate("window.__notReloaded = true")
    assert dev.post("/api/device/v1/inbound", json={"messages": [
        {"id": "in-2", "from": sender, "body": "second question"}]}).status_code == 200
    page.wait_for_selector("#live-conversation :text('second question')", timeout=15000)
    assert page.evaluate("window.__notReloaded === true")

    # Replying stays in the conversation, and the reply's state follows the phone's report.
    page.fill("#f-reply", "the answer")
    response = submit(page, "main form button[type=submit]")
    assert response.url.endswith(f"/inbox/%2B{sender[1:]}")
    assert "the answer" in page.inner_text("#live-conversation")
    page.evaluate("window.__notReloaded = true")
    work = dev.get("/api/device/v1/messages", params={"wait": 0}).json()["messages"]
    assert [w["text"] for w in work] == ["the answer"]
    assert dev.post("/api/device/v1/reports", json={"reports": [
        {"message_id": work[0]["id"], "state": "delivered"}]}).status_code == 200
    page.wait_for_selector("#live-conversation a:text('delivered')", timeout=15000)
    assert page.evaluate("window.__notReloaded === true")

    # The message's page follows too.
    r = api.post("/api/v1/messages", json={"to": [phone(6)], "text": "detail"})
    message_id = r.json()["id"]
    page.goto(address(live_server, t.slug, f"/messages/{message_id}"))
    page.evaluate("window.__notReloaded = true")
    work = dev.get("/api/device/v1/messages", params={"wait": 0}).json()["messages"]
    assert dev.post("/api/device/v1/reports", json={"reports": [
        {"message_id": work[0]["id"], "state": "sent"}]}).status_code == 200
    page.wait_for_selector("#live-message h1 .state-sent", timeout=15000)
    assert page.evaluate("window.__notReloaded === true")

    # The devices page shows a heartbeat's battery without a reload.
    page.goto(address(live_server, t.slug, "/devices"))
    page.evaluate("window.__notReloaded = true")
    assert dev.post("/api/device/v1/heartbeat", json={"battery_level": 42}).status_code == 200
    page.wait_for_selector("#live-devices :text('42%')", timeout=15000)
    assert page.evaluate("window.__notReloaded === true")
    assert overflowing(page) == []
    assert page_problems(page) == []


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_the_overview_at_both_sizes(browser_page, live_server, make_tenant, width, height):
    page = browser_page
    page.set_viewport_size({"width": width, "height": height})
    t = make_tenant("ovw")
    api = api_client(live_server, t.slug)
    _device_id, token = raw_device(live_server, t.slug, api, uid="ov-phone", name="Counter phone")
    dev = device_client(live_server, t.slug, token)
    assert dev.post("/api/device/v1/heartbeat", json={"battery_level": 80, "signal": -80}).status_code == 200
    assert api.post("/api/v1/messages", json={"to": [phone(1)], "text": "hello"}).status_code == 202
    sign_in(page, live_server, t)
    page.goto(address(live_server, t.slug, "/"))
    assert "Counter phone" in page.inner_text("#overview-phones")
    assert page.locator("#overview-messages svg").count() == 2
    assert page.locator("#first-steps li.step-done").count() == 3  # a phone, a message, a token
    assert page.get_by_role("link", name="Add a webhook").is_visible()
    keep_screenshot(page, SHOTS / f"overview-{width}.png", full_page=True)
    assert overflowing(page) == []
    # The charts' words stay readable on a phone (drawn at 10 px or more, not shrunk with the chart).
    sizes = page.evaluate("[...document.querySelectorAll('#overview-messages .chart-tick, #overview-messages "
                          ".chart-label')].map(t => t.getBoundingClientRect().height)")
    assert sizes and min(sizes) >= 10, sizes
    assert page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth") <= 0
    assert page_problems(page) == []
