"""Contacts in the send form and a workspace's own country, in Chromium (issue 22 items 8 and 9).

A group picked in the send form is who the message goes to; a template picked there fills the text
box (the page's script) and is filled per contact on the server; the messages list then names the
recipients. In a workspace whose country is Germany, a German number typed without +49 is sent.
"""

from __future__ import annotations

import pytest

from addons.contacts import service
from core.db import tenant_transaction
from tests.support.browser import address, browser_page, chromium, page_problems, server, submit  # noqa: F401
from tests.support.browser import sign_in_owner
from tests.support.messaging import sql

pytestmark = pytest.mark.browser

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}


def test_a_group_picked_in_the_send_form_gets_the_template_and_the_list_shows_names(browser_page, server,
                                                                                    make_tenant):
    page = browser_page
    page.set_viewport_size(VIEWPORTS["phone"])
    tenant = make_tenant("bc-group")
    with tenant_transaction(tenant.ref):
        team = service.create_group("Regulars")
        service.create_group("Empty one")
        for name, number in (("Ann Smith", "+4915112345678"), ("Bob Jones", "+14155550140")):
            service.save_contact("US", name, number, [], [team.id])
        service.save_template("Pick-up", "Hello {first_name}, your order is ready.")
    sign_in_owner(page, server, tenant)
    page.goto(address(server, tenant.slug, "/send"))
    page.select_option("#f-group", label="Regulars (2 contacts)")
    page.select_option("#f-template-send", label="Pick-up")
    assert page.input_value("#f-text") == "Hello {first_name}, your order is ready."  # the script filled it
    response = submit(page, "main form button[type=submit]")
    assert response.status == 200 and page.url == address(server, tenant.slug, "/messages")
    assert sorted(sql(tenant, "SELECT r.phone, m.text FROM recipients r JOIN messages m ON m.id = r.message_id")) == [
        ("+14155550140", "Hello Bob, your order is ready."), ("+4915112345678", "Hello Ann, your order is ready.")]
    names = page.locator("table.messages .contact-name").all_inner_texts()
    assert sorted(names) == ["Ann Smith", "Bob Jones"]
    assert page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth") <= 0
    assert page_problems(page) == []


def test_a_german_number_without_plus_is_sent_once_the_workspace_is_german(browser_page, server, make_tenant):
    page = browser_page
    page.set_viewport_size(VIEWPORTS["desktop"])
    tenant = make_tenant("bc-de")
    sign_in_owner(page, server, tenant)
    page.goto(address(server, tenant.slug, "/workspace"))
    page.select_option("#f-default_region", "DE")
    submit(page, "main form button[type=submit]")
    assert page.input_value("#f-default_region") == "DE"
    page.goto(address(server, tenant.slug, "/send"))
    page.fill("#f-to", "01701234567")
    page.fill("#f-text", "Ihre Bestellung ist da")
    submit(page, "main form button[type=submit]")
    assert "/messages/" in page.url, page.inner_text("main")
    assert "+491701234567" in page.inner_text("main h2")
    assert sql(tenant, "SELECT phone FROM recipients") == [("+491701234567",)]
    assert page_problems(page) == []


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_a_saved_reply_picked_in_a_conversation_is_sent_there_and_stays_there(browser_page, server, make_tenant,
                                                                              viewport):
    """Item 8's saved replies, in the browser: picked under a conversation, the reply box shows it,
    it is filled for the contact on the server, and the page stays in the conversation."""
    page = browser_page
    page.set_viewport_size(VIEWPORTS[viewport])
    tenant = make_tenant("bc-reply")
    with tenant_transaction(tenant.ref):
        service.save_contact("US", "Finn Reply", "+4915112345673", [], [])
        service.save_template("Thanks", "Thanks, {first_name}!")
    sign_in_owner(page, server, tenant)
    page.goto(address(server, tenant.slug, "/send?to=%2B4915112345673"))
    page.fill("#f-text", "Your parcel is here")
    submit(page, "main form button[type=submit]")
    conversation = address(server, tenant.slug, "/inbox/%2B4915112345673")
    page.goto(conversation)
    assert "Finn Reply" in page.inner_text("main h1")
    page.select_option("#f-template-reply", label="Thanks")
    assert page.input_value("#f-reply") == "Thanks, {first_name}!"  # the script filled it
    submit(page, "form:has(#f-reply) button[type=submit]")
    assert page.url == conversation
    assert "Thanks, Finn!" in page.inner_text("main")
    assert sql(tenant, "SELECT text FROM messages ORDER BY id") == [("Your parcel is here",), ("Thanks, Finn!",)]
    assert page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth") <= 0
    assert page_problems(page) == []
