"""Invoices in Chromium, on a desktop (1280x800) and a phone (390x844): the list, the invoice page
(in the workspace's language, with the bank details to pay it), the PDF download, the billing
details form; no script error, no CSP violation, nothing scrolls sideways."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets

import pytest

from addons.billing import accounts, invoicing, tax
from addons.billing.invoicing import Line
from core.db import connection
from tests.support.browser import address, browser_page, chromium, overflowing, page_problems, server, submit  # noqa: F401
from tests.test_browser_email_change import VIEWPORTS

pytestmark = pytest.mark.browser

OWNER_PASSWORD = "a long enough password"


@pytest.fixture
def seller(server):
    platform = server.platform
    configured = platform.settings
    platform.settings = dataclasses.replace(
        configured, billing_issuer=f"b-{secrets.token_hex(4)}", billing_seller_name="Gateway GmbH",
        billing_seller_address="Hauptstr. 1\n10115 Berlin", billing_seller_country="DE",
        billing_seller_vat_id="DE999999999", billing_bank_details="IBAN DE89 3704 0044 0532 0130 00\nBIC COBADEFFXXX")
    yield platform.settings
    platform.settings = configured


def fits(page, viewport) -> None:
    """Nothing scrolls the page sideways; what is wider than a phone is a table inside its own
    scrolling region (which fits, and takes the keyboard's focus to scroll)."""
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[viewport]["width"]
    assert overflowing(page) == []  # a wide table or chart scrolls in a box of its own that fits
    for region in page.locator(".invoice-scroll").all():
        assert region.get_attribute("tabindex") == "0" and region.get_attribute("aria-label")


def sign_in(page, server, slug):
    page.goto(address(server, slug, "/login"))
    page.fill("#f-email", f"owner@{slug}.example")
    page.fill("#f-password", OWNER_PASSWORD)
    submit(page)


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_invoices_list_page_and_pdf_download(browser_page, server, make_tenant, seller, viewport):
    page = browser_page
    page.set_viewport_size(VIEWPORTS[viewport])
    with connection():
        tax.set_rate("DE", 1900, "USt.")
    t = make_tenant("binv")
    with connection():
        accounts.save(t.id, {"company": "Alpha Fernmeldetechnik und Kommunikationsdienste GmbH", "country": "DE",
                             "address": "Lange Straße 123\n20095 Hamburg", "language": "de"})
    inv = invoicing.issue(t.id, [Line("Pro plan, monthly (December 2026)", 1, 1900),
                                 Line("Overage, 1,000 segments", 12, 150)], reason="renewal", currency="EUR",
                          period_start=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc),
                          period_end=dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc), settings=seller)
    sign_in(page, server, t.slug)
    if viewport == "desktop":
        page.click("a[href='/billing/invoices']")
    else:
        page.goto(address(server, t.slug, "/billing/invoices"))
    page.wait_for_url("**/billing/invoices")
    assert page.inner_text("h1") == "Invoices"
    row = page.locator(f"tr[data-invoice='{inv.id}']")
    assert inv.number in row.inner_text() and "€44.03" in row.inner_text()  # 37.00 + 19 % (7.03), the reader's English
    fits(page, viewport)
    page.click(f"a[href='/billing/invoices/{inv.id}']")
    page.wait_for_url(f"**/billing/invoices/{inv.id}")
    doc = page.locator("#invoice-document")
    assert doc.get_attribute("lang") == "de"
    assert "Rechnung" in doc.inner_text() and "Alpha Fernmeldetechnik" in doc.inner_text()
    assert page.inner_text("[data-amount=total]") == "44,03\xa0€"
    assert "DE89 3704 0044 0532 0130 00" in page.inner_text("#invoice-pay")
    fits(page, viewport)
    with page.expect_download() as download:
        page.click("#invoice-pdf")
    pdf = download.value
    assert pdf.suggested_filename == f"{inv.number}.pdf"
    assert open(pdf.path(), "rb").read(5) == b"%PDF-"
    assert page_problems(page) == []


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_billing_details_form_explains_a_bad_vat_id_and_saves_a_good_one(browser_page, server, make_tenant, seller,
                                                                        viewport):
    page = browser_page
    page.set_viewport_size(VIEWPORTS[viewport])
    t = make_tenant("binv")
    sign_in(page, server, t.slug)
    page.goto(address(server, t.slug, "/billing/details"))
    page.fill("#f-company", "Société Exemple SA")
    page.fill("#f-country", "FR")
    page.fill("#f-vat_id", "FR123")
    submit(page)
    assert "format of a VAT id" in page.inner_text("#e-vat_id")
    page.fill("#f-vat_id", "FR12345678901")
    submit(page)
    page.wait_for_url("**/billing/details")
    with connection():
        assert accounts.get(t.id).vat_id == "FR12345678901"
    fits(page, viewport)
    assert page_problems(page, allow=["422"]) == []


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_the_admin_marks_a_transfer_paid_and_reads_revenue_and_past_due(browser_page, server, make_tenant, seller,
                                                                       viewport):
    from core.admins import create_admin

    page = browser_page
    page.set_viewport_size(VIEWPORTS[viewport])
    t = make_tenant("badm")
    inv = invoicing.issue(t.id, [Line("Pro plan", 1, 4900)], reason="renewal", currency="EUR", settings=seller)
    admin = create_admin(server.platform, f"ops-{t.slug}@platform.example", "admin password long enough", "Ops")
    console = f"http://{server.platform.settings.base_domain}:{server.port}"
    page.goto(f"{console}/admin/login")
    page.fill("input[name=email]", admin.email)
    page.fill("input[name=password]", "admin password long enough")
    submit(page)
    page.goto(f"{console}/admin/billing/invoices")
    row = page.locator(f"tr[data-invoice='{inv.id}']")
    assert inv.number in row.inner_text() and t.slug in row.inner_text()
    fits(page, viewport)
    with page.expect_navigation():
        row.locator("button", has_text="Mark paid").click()
    assert "Paid" in page.locator(f"tr[data-invoice='{inv.id}']").inner_text()
    with connection():
        assert invoicing.get(inv.id).status == "paid"
    page.click("a[href='/admin/billing/revenue']")
    page.wait_for_url("**/admin/billing/revenue")
    assert page.locator("figure.chart svg[role=img]").count() >= 1
    fits(page, viewport)
    page.click("a[href='/admin/billing/invoices']")
    page.click("a[href='/admin/billing/past-due']")
    page.wait_for_url("**/admin/billing/past-due")
    fits(page, viewport)
    assert page_problems(page) == []
