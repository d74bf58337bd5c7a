"""Devices → Connect the Android app, in Chromium on a laptop and on a phone screen.

The Customer creates a private token, reads the steps (API URL, token, download link, what to
pick in the app), and sees the phone that joins with it appear without reloading the page; a
phone that registered again is offered as the replacement of the old device.
"""

from __future__ import annotations

import pytest

from tests.support.browser import browser_page, chromium, page_problems  # noqa: F401
from tests.support.browser import address, forget_problems, overflowing, submit
from tests.support.devices import sql
from tests.support.identity import OWNER_PASSWORD, owner_email
from tests.support.mobile_app import AppPhone

pytestmark = pytest.mark.browser


def sign_in(page, live_server, t):
    page.goto(address(live_server, t.slug, "/login"))
    page.fill("#f-email", owner_email(t))
    page.fill("#f-password", OWNER_PASSWORD)
    submit(page, "main form button[type=submit]")


@pytest.mark.parametrize("width, height", [(1280, 800), (390, 844)])
def test_connect_the_android_app_step_by_step(browser_page, live_server, make_tenant, width, height):
    page = browser_page
    page.set_viewport_size({"width": width, "height": height})
    t = make_tenant("connectweb")
    sign_in(page, live_server, t)
    page.goto(address(live_server, t.slug, "/devices"))
    page.get_by_role("link", name="Connect the Android app").click()
    page.wait_for_url("**/devices/connect")
    page.fill("input[name=name]", "shop phones")
    page.fill("input[name=phones]", "2")
    response = submit(page, "form:has(input[value=create]) button[type=submit]")
    assert response.status == 201
    token = page.inner_text("#enrollment-token").strip()
    api_url = page.inner_text("#api-url").strip()
    assert api_url == live_server.platform.settings.public_url(t.slug) + "/api/mobile/v1"
    steps = page.inner_text("#connect-steps")
    assert "SSE Only" in steps and "github.com/capcom6/android-sms-gateway" in steps
    assert overflowing(page) == []
    assert page_problems(page) == []

    phone = AppPhone(f"{t.slug}.{live_server.platform.settings.base_domain}", live_server.port)
    assert phone.register(token, name="Shop Pixel")[0] == 201
    page.wait_for_selector(f".joined-device[data-device='{phone.device_id}']", timeout=15000)
    assert "Shop Pixel" in page.inner_text("#joined")

    # The phone lost its token and registered again: the Customer confirms it is the same phone.
    again = AppPhone(phone.host, phone.port)
    assert again.register(token, name="Shop Pixel")[0] == 201
    page.goto(address(live_server, t.slug, "/devices/connect"))
    submit(page, f"#replacements li[data-new='{again.device_id}'] button[value=replace]")
    assert sql(t, "SELECT removed_at IS NOT NULL FROM devices WHERE id = %s", (int(phone.device_id),)) == [(True,)]
    assert f"#{again.device_id}" in page.inner_text("#replaced")
    assert phone.settings()[0] == 401  # the ghost's token died with it
    assert again.settings()[0] == 200
    assert page_problems(page) == []

    # Received SMS missing: the phone is asked to send them again. A wrong window is a message on
    # the page, with what was typed kept; a good one is listed as waiting for the phone.
    page.select_option("#inbox-refresh select[name=device]", again.device_id)
    page.fill("#inbox-refresh input[name=since]", "2026-11-02T00:00")
    page.fill("#inbox-refresh input[name=until]", "2026-11-01T00:00")
    assert submit(page, "#inbox-refresh button[type=submit]").status == 422
    assert "must be after since" in page.inner_text("#enroll-error")
    assert page.input_value("#inbox-refresh input[name=since]") == "2026-11-02T00:00"
    forget_problems(page)  # the 422 was asked for
    page.fill("#inbox-refresh input[name=until]", "2026-11-03T00:00")
    submit(page, "#inbox-refresh button[type=submit]")
    assert "waiting for the phone to connect" in page.inner_text("#exports")
    assert sql(t, "SELECT device_id, since, until FROM mobile_exports")[0][0] == int(again.device_id)
    assert overflowing(page) == []
    assert page_problems(page) == []
