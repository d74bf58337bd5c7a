"""What cannot be undone asks first, naming the object; a reload never repeats it (issue 22 item 10).

In Chromium: pressing Remove / Rotate token / Revoke / Delete / Disable / Suspend shows a page that
names the phone, token, webhook, member or workspace, with nothing changed yet; Cancel goes back;
the button there does it. Creating an API token (or a new device token) answers with a redirect to
the page that shows it once, so reloading that page shows no token and makes no second one.
"""

from __future__ import annotations

import pytest

from core.db import tenant_transaction
from core.users import User
from tests.support.browser import address, browser_page, chromium, page_problems, server, submit  # noqa: F401
from tests.support.devices import raw_device, sql
from tests.support.identity import OWNER_PASSWORD, add_user, owner_email
from tests.support.phones import api_client

pytestmark = pytest.mark.browser

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}


def sign_in(page, server, tenant):
    page.goto(address(server, tenant.slug, "/login"))
    page.fill("#f-email", owner_email(tenant))
    page.fill("#f-password", OWNER_PASSWORD)
    submit(page)


def ask_then_cancel_then_confirm(page, button: str, question: str, unchanged, back: str):
    """Press ``button``: the confirmation names the object and nothing changed; Cancel leads back to
    ``back``; pressing it again and confirming does it."""
    submit(page, button)
    assert page.inner_text("main h1") == question
    assert unchanged()
    submit(page, "main a:text-is('Cancel')")
    assert page.url.endswith(back)
    assert unchanged()
    submit(page, button)
    page.reload()  # reloading the question (a POST answer) must not be what does it
    submit(page, "main form button[type=submit]")
    assert not unchanged()


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_reloading_the_new_token_page_makes_no_second_token(browser_page, server, make_tenant, viewport):
    page = browser_page
    page.set_viewport_size(VIEWPORTS[viewport])
    tenant = make_tenant("prg")
    sign_in(page, server, tenant)
    page.goto(address(server, tenant.slug, "/tokens"))
    page.fill("#f-token-name", "CRM integration")
    response = submit(page, "form:has(#f-token-name) button[type=submit]")
    assert response.status == 200 and page.url == address(server, tenant.slug, "/tokens")
    token = page.inner_text("#new-token").strip()
    assert token.startswith(f"sgw_{tenant.slug}_")
    page.reload()
    assert page.locator("#new-token").count() == 0 and token not in page.content()
    page.go_back()
    page.go_forward()
    assert sql(tenant, "SELECT count(*) FROM api_tokens")[0][0] == 1
    assert page_problems(page) == []


def test_each_irreversible_action_asks_first_naming_its_object(browser_page, server, make_tenant):
    page = browser_page
    page.set_viewport_size(VIEWPORTS["phone"])
    tenant = make_tenant("ask")
    api = api_client(server, tenant.slug)
    sign_in(page, server, tenant)

    # An API token.
    api_token_count = sql(tenant, "SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL")[0][0]
    page.goto(address(server, tenant.slug, "/tokens"))
    page.fill("#f-token-name", "Shop CRM")
    submit(page, "form:has(#f-token-name) button[type=submit]")
    ask_then_cancel_then_confirm(
        page, "tr:has(td:text-is('Shop CRM')) button:text-is('Revoke')", "Revoke the API token “Shop CRM”?",
        lambda: sql(tenant, "SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL")[0][0]
        == api_token_count + 1, "/tokens")

    # A phone: a new token, then removal.
    device_id, _token = raw_device(server, tenant.slug, api, uid="ask-phone", name="Counter phone")
    hint = sql(tenant, "SELECT token_hint FROM devices WHERE id = %s", (device_id,))[0][0]
    page.goto(address(server, tenant.slug, f"/devices/{device_id}"))
    ask_then_cancel_then_confirm(
        page, "button:text-is('Rotate token')", "Make a new token for the phone “Counter phone”?",
        lambda: sql(tenant, "SELECT token_hint FROM devices WHERE id = %s", (device_id,))[0][0] == hint,
        f"/devices/{device_id}")
    assert page.url == address(server, tenant.slug, f"/devices/{device_id}")  # shown after a redirect
    new_hint = sql(tenant, "SELECT token_hint FROM devices WHERE id = %s", (device_id,))[0][0]
    assert page.locator("main").inner_text().count(new_hint) >= 1
    page.reload()
    assert sql(tenant, "SELECT token_hint FROM devices WHERE id = %s", (device_id,))[0][0] == new_hint
    ask_then_cancel_then_confirm(
        page, "button:text-is('Remove')", "Remove the phone “Counter phone”?",
        lambda: sql(tenant, "SELECT count(*) FROM devices WHERE id = %s AND removed_at IS NULL",
                    (device_id,))[0][0] == 1, f"/devices/{device_id}")

    # A webhook.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", "1")
        hook = api.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/ask", "events": ["sms:received"]})
    assert hook.status_code == 201, hook.text
    page.goto(address(server, tenant.slug, "/webhooks"))
    ask_then_cancel_then_confirm(
        page, "tr:has-text('127.0.0.1:9/ask') button:text-is('Delete')", "Delete the webhook to http://127.0.0.1:9/ask?",
        lambda: sql(tenant, "SELECT count(*) FROM webhook_endpoints")[0][0] == 1, "/webhooks")

    # A member.
    member_id = add_user(server.platform, tenant, f"clerk@{tenant.slug}.example")
    page.goto(address(server, tenant.slug, "/team"))

    def active():
        with tenant_transaction(tenant.ref):
            return User.get_by_id(member_id).is_active

    ask_then_cancel_then_confirm(
        page, f"form:has(input[name=user_id][value='{member_id}']) button:text-is('Disable')",
        f"Disable clerk (clerk@{tenant.slug}.example)?", active, "/team")
    assert page_problems(page) == []
