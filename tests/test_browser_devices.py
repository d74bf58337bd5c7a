"""The device page's "Re-pair this phone", in Chromium on a laptop and on a phone screen.

The Customer presses the button on the device's page, sees a one-time code and its QR code,
and the phone paired with that code becomes this device again (same id, history kept), with
a new token; the old one is refused.
"""

from __future__ import annotations

import re

import pytest

from tests.support.browser import browser_page, chromium, page_problems  # noqa: F401
from tests.support.browser import address, overflowing, sign_in_owner, submit  # noqa: F401
from tests.support.devices import device_client, phone, raw_device, register, sql
from tests.support.identity import OWNER_PASSWORD, add_user, owner_email, sign_in as http_sign_in
from tests.support.phones import api_client
from tests.support.problems import problem

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_re_pair_this_phone_from_its_page(browser_page, live_server, make_tenant, width, height):
    page = browser_page
    page.set_viewport_size({"width": width, "height": height})
    t = make_tenant("repairweb")
    api = api_client(live_server, t.slug)
    device_id, old_token = raw_device(live_server, t.slug, api, uid="shop-phone", name="Shop phone")
    old = device_client(live_server, t.slug, old_token)
    assert old.post("/api/device/v1/inbound", json={"messages": [
        {"id": "in-1", "from": phone(7), "body": "history", "received_at": "2026-01-01T10:00:00Z"}]}).status_code == 200

    page.goto(address(live_server, t.slug, "/login"))
    page.fill("#f-email", owner_email(t))
    page.fill("#f-password", OWNER_PASSWORD)
    submit(page, "main form button[type=submit]")
    page.goto(address(live_server, t.slug, f"/devices/{device_id}"))
    button = page.get_by_role("button", name="Re-pair this phone")
    assert button.is_visible()
    assert overflowing(page) == []

    response = submit(page, "button:has-text('Re-pair this phone')")
    assert response.status == 200
    code = page.inner_text("#pairing-code")
    assert len(code) == 8
    assert page.locator("img.qr").is_visible()
    assert "keeps its history" in page.inner_text("section.pairing")
    assert page.locator("section.pairing").bounding_box()["width"] <= width
    assert overflowing(page) == []
    assert page_problems(page) == []

    r = register(live_server, t.slug, code, uid="factory-reset-uid")
    assert r.status_code == 201 and r.json()["device_id"] == device_id
    problem(old.get("/api/device/v1/settings"), 401, "invalid-token")
    new = device_client(live_server, t.slug, r.json()["token"])
    assert new.get("/api/device/v1/settings").status_code == 200

    # The page shows the same device, its new token's hint and its history.
    page.goto(address(live_server, t.slug, f"/devices/{device_id}"))
    assert page.inner_text("h1").startswith("Shop phone")
    hint = sql(t, "SELECT token_hint FROM devices WHERE id = %s", (device_id,))[0][0]
    assert hint and hint in page.inner_text("main")
    assert "history" in page.inner_text("main table")  # the inbound SMS it had before
    assert overflowing(page) == []
    assert page_problems(page) == []


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_the_pairing_page_notices_when_the_phone_has_paired(browser_page, live_server, make_tenant, width, height):
    """Issue 22 item 5: the pairing page links to the Android app's way in and, without a reload,
    says when a phone has paired with the code it shows (only to the member who made the code)."""
    page = browser_page
    page.set_viewport_size({"width": width, "height": height})
    t = make_tenant("pairlive")
    sign_in_owner(page, live_server, t)
    page.goto(address(live_server, t.slug, "/devices/pair"))
    assert page.get_attribute("a:has-text('Connect the Android app') >> nth=-1", "href") == "/devices/connect"
    submit(page, "main form button[type=submit]")
    code = page.inner_text("#pairing-code")
    assert "Waiting for the phone" in page.inner_text("#pair-status")
    expiry = page.locator("section.pairing time")  # in the member's zone, UTC on hover; not markup as text
    assert expiry.count() == 1 and expiry.get_attribute("title").endswith(" UTC")
    assert "<time" not in page.inner_text("section.pairing")
    assert page.locator("#pairing-code").is_visible() and overflowing(page) == []

    r = register(live_server, t.slug, code, name="Counter phone")
    assert r.status_code == 201
    page.wait_for_selector(f"#pair-status .paired[data-device='{r.json()['device_id']}']", timeout=15000)
    assert "“Counter phone” has paired" in page.inner_text("#pair-status")
    assert page.inner_text("#pairing-code") == code  # the rest of the page stays as it was
    assert page_problems(page) == []

    # The page's watch address shows the same without JavaScript; a bad one is a message.
    watch = page.get_attribute("#pair-status", "data-live-src")
    page.goto(address(live_server, t.slug, watch))
    assert "has paired" in page.inner_text("#pair-status")
    response = page.goto(address(live_server, t.slug, "/devices/pair?watch=%3Cscript%3E"))
    assert response.status == 422 and "does not name a pairing code" in page.inner_text("#pair-refusal")
    assert page.locator("#pair-status").count() == 0


def test_only_the_member_who_made_a_pairing_code_can_watch_it(live_server, make_tenant, platform):
    t = make_tenant("pairwatch")
    owner = http_sign_in(live_server, t.slug, owner_email(t))
    made = owner.post("/devices/pair", data={"_xsrf": owner.cookies.get("_xsrf")})
    assert made.status_code == 200
    watch = re.search(r'data-live-src="([^"]+)"', made.text).group(1).replace("&amp;", "&")
    assert "Waiting for the phone" in owner.get(watch).text
    version = owner.get(watch + "&live=1").json()["v"]
    register(live_server, t.slug, re.search(r'id="pairing-code">(\w+)<', made.text).group(1))
    assert owner.get(watch + "&live=1").json()["v"] != version

    add_user(platform, t, "admin2@" + t.slug + ".example", password="a long enough password", role="customer")
    other = http_sign_in(live_server, t.slug, "admin2@" + t.slug + ".example", "a long enough password")
    seen = other.get(watch).text
    assert "You made no such pairing code" in seen and "has paired" not in seen
