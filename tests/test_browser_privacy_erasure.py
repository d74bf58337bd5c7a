"""Deleting the organisation and cancelling it in a real browser, on a desktop (1280x800) and a
phone (390x844): the Privacy page asks for the name and the password, refuses a wrong name next to
the field, signs everyone out, shows the date to whoever signs in, and the Customer's cancel
button brings the workspace back."""

from __future__ import annotations

import datetime as dt

import pytest
from babel.dates import format_date

from core.clock import utcnow
from tests.support.browser import browser_page, chromium, page_problems  # noqa: F401
from tests.test_browser_email_change import VIEWPORTS, fits
from tests.test_browser_identity import problems, server, submit, url  # noqa: F401

pytestmark = pytest.mark.browser

OWNER_PASSWORD = "a long enough password"  # what make_tenant gives the owner


def sign_in_here(page, email_address: str, password: str = OWNER_PASSWORD):
    """Fill the sign-in form the browser is on."""
    page.fill("#f-email", email_address)
    page.fill("#f-password", password)
    return submit(page)


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_deleting_the_organisation_and_cancelling_it(browser_page, server, make_tenant, viewport):
    page = browser_page
    page.set_viewport_size(VIEWPORTS[viewport])
    platform = server.platform
    tenant = make_tenant("bdel", name="Löschen & Co KG")
    owner = f"owner@{tenant.slug}.example"
    privacy = url(server, tenant.slug, "/account/privacy")
    page.goto(url(server, tenant.slug, "/login"))
    sign_in_here(page, owner)
    page.goto(privacy)
    assert page.inner_text("#delete-workspace h2") == "Delete the organisation"
    fits(page, "#delete-workspace button.danger")

    # A wrong name is refused next to the field, and nothing happens.
    page.fill("#dw-confirm_name", "Löschen und Co KG")
    page.fill("#dw-password", OWNER_PASSWORD)
    response = submit(page, "#delete-workspace button.danger")
    assert response.status == 422
    assert page.inner_text("#dw-e-confirm_name") == "Type the workspace's name exactly as shown to confirm."
    assert page.get_attribute("#dw-confirm_name", "aria-invalid") == "true"
    fits(page, "#dw-e-confirm_name")
    assert platform.tenants.get(tenant.slug).deletion_scheduled_at is None

    # The right name and password: everyone is signed out, this browser too.
    page.fill("#dw-confirm_name", tenant.name)
    page.fill("#dw-password", OWNER_PASSWORD)
    submit(page, "#delete-workspace button.danger")
    assert page.url.startswith(url(server, tenant.slug, "/login"))
    date = platform.tenants.get(tenant.slug).deletion_scheduled_at
    assert abs(date - utcnow() - dt.timedelta(days=14)) < dt.timedelta(minutes=5)

    # Signing in again shows the date, on every page, with the cancel button for the Customer.
    sign_in_here(page, owner)
    assert page.url.startswith(privacy)
    notice = page.inner_text("#deletion-notice")
    shown = format_date(date, "medium", locale="en")  # as Babel writes it in English: "Dec 21, 2026"
    assert f"This workspace is scheduled for deletion on {shown}." in notice
    assert f"scheduled for deletion on {shown}" in page.inner_text("#deletion-scheduled")
    fits(page, "#cancel-deletion")
    page.goto(url(server, tenant.slug, "/"))
    assert "scheduled for deletion" in page.inner_text("#deletion-notice")
    page.click("#deletion-notice a")
    page.wait_for_url(privacy + "#delete-workspace")

    submit(page, "#cancel-deletion")
    assert platform.tenants.get(tenant.slug).deletion_scheduled_at is None
    assert page.locator("#deletion-notice").count() == 0
    assert "The deletion was cancelled." in page.inner_text(".flash")
    assert page.locator("#dw-confirm_name").count() == 1
    assert problems(page, (422, privacy)) == []
