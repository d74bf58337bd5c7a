"""Changing the sign-in email in a real browser, on a desktop (1280x800) and a phone (390x844):
the account page asks for the current password and shows the pending change; the link to the
new address confirms it; the link to the old address undoes it and signs out every session.
"""

from __future__ import annotations

import secrets

import pytest

from tests.support.browser import browser_page, chromium, new_page, page_problems  # noqa: F401
from tests.test_browser_identity import mail_link, problems, server, sign_in, submit, url  # noqa: F401

pytestmark = pytest.mark.browser

OWNER_PASSWORD = "a long enough password"  # what make_tenant gives the owner
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
SAVE_DETAILS = "form:has(input[name=action][value=profile]) button[type=submit]"


def fits(page, selector: str) -> None:
    """Nothing scrolls sideways, and ``selector`` is drawn inside the viewport's width."""
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    box = page.locator(selector).first.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, (selector, box)


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_email_change_is_confirmed_from_the_new_address_and_undone_from_the_old(
        browser_page, new_page, server, make_tenant, viewport):
    page = browser_page
    page.set_viewport_size(VIEWPORTS[viewport])
    tenant = make_tenant("emch", name="Mailwechsel AG")
    old = f"owner@{tenant.slug}.example"
    new = f"new-{secrets.token_hex(3)}@{tenant.slug}.example"
    sign_in(page, server, tenant.slug, old, OWNER_PASSWORD)

    # Without the current password the account page refuses, next to the field.
    page.goto(url(server, tenant.slug, "/account"))
    assert page.inner_text("label[for=f-current_password]") == "Current password"
    fits(page, "#f-current_password")
    page.fill("#f-email", new)
    response = submit(page, SAVE_DETAILS)
    assert response.status == 422
    assert page.inner_text("#e-current_password") == "Enter your current password to change your email."
    assert page.get_attribute("#f-current_password", "aria-invalid") == "true"
    fits(page, "#e-current_password")

    # With it, the change waits for the new address; the old one still signs in.
    page.fill("#f-email", new)
    page.fill("#f-current_password", OWNER_PASSWORD)
    submit(page, SAVE_DETAILS)
    assert page.url == url(server, tenant.slug, "/account")
    assert new in page.inner_text(".flash")
    pending = page.inner_text(".pending-email")
    assert f"we sent a link to {new}" in pending and f"you sign in with {old}" in pending
    assert page.input_value("#f-email") == old
    fits(page, ".pending-email button")

    # The new address's link, opened in another browser with no session: a button, then done.
    elsewhere = new_page()
    elsewhere.set_viewport_size(VIEWPORTS[viewport])
    elsewhere.goto(mail_link(server, new, "Confirm your new email address", "/confirm-email"))
    assert elsewhere.inner_text("h1") == "Confirm your new email"
    assert elsewhere.inner_text("main p >> nth=0") == f"Make {new} the sign-in email instead of {old}?"
    fits(elsewhere, "main form button[type=submit]")
    submit(elsewhere)
    assert elsewhere.inner_text("h1") == "Email changed"
    assert f"You now sign in with {new}." in elsewhere.inner_text("main")
    page.reload()
    assert page.input_value("#f-email") == new
    assert page.locator(".pending-email").count() == 0

    # The old address's link takes the account back and signs this browser out.
    owner = new_page()
    owner.set_viewport_size(VIEWPORTS[viewport])
    owner.goto(mail_link(server, old, "Your sign-in email is being changed", "/undo-email-change"))
    assert owner.inner_text("h1") == "Undo the email change"
    fits(owner, "main form button[type=submit]")
    submit(owner)
    assert owner.inner_text("h1") == "Email change undone"
    assert f"You sign in with {old} again" in owner.inner_text(".flash")
    fits(owner, "a[href='/forgot-password']")
    submit(owner, "main a[href='/forgot-password']")
    assert owner.inner_text("h1") == "Reset your password"

    page.goto(url(server, tenant.slug, "/account"))
    assert page.url.startswith(url(server, tenant.slug, "/login"))
    for p in (page, elsewhere, owner):
        assert problems(p, (422, url(server, tenant.slug, "/account"))) == []


def test_a_used_confirmation_link_says_so(browser_page, new_page, server, make_tenant):
    page = browser_page
    page.set_viewport_size(VIEWPORTS["phone"])
    tenant = make_tenant("emch2")
    new = f"new-{secrets.token_hex(3)}@{tenant.slug}.example"
    sign_in(page, server, tenant.slug, f"owner@{tenant.slug}.example", OWNER_PASSWORD)
    page.goto(url(server, tenant.slug, "/account"))
    page.fill("#f-email", new)
    page.fill("#f-current_password", OWNER_PASSWORD)
    submit(page, SAVE_DETAILS)
    link = mail_link(server, new, "Confirm your new email address", "/confirm-email")
    submit(page, ".pending-email button")  # cancelled before it was confirmed
    assert page.locator(".pending-email").count() == 0

    page.goto(link)
    submit(page)
    assert page.inner_text("h1") == "Email not changed"
    assert page.inner_text("main p >> nth=0") == "This change was cancelled or replaced by a newer one."
    fits(page, "main p")
    assert problems(page, (400, url(server, tenant.slug, "/confirm-email"))) == []
