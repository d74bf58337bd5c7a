"""Recovering from failure and finding anything, in Chromium at phone and desktop size (issue 22,
items 6 and 7).

A failed message explains its error code and is sent again with *Retry*; a pending one is
cancelled after a confirmation; *Resend* fills the send form with a copy; a CSV upload becomes a
campaign whose page shows its progress and counts, cancels what is left and retries what failed.
The Messages list keeps its filters on the next page and exports exactly the filtered rows; the
Inbox search does the same.
"""

from __future__ import annotations

import csv
import io

import pytest

from core.db import tenant_transaction
from tests.support.browser import address, browser_page, chromium, page_problems, server, submit  # noqa: F401
from tests.support.devices import device_client, fetch, raw_device, sql
from tests.support.phones import api_client
from tests.test_browser_confirmations import VIEWPORTS, sign_in

pytestmark = pytest.mark.browser


def report(dev, *reports):
    results = dev.post("/api/device/v1/reports", json={"reports": list(reports)}).json()["results"]
    assert [r["status"] for r in results] == ["applied"] * len(reports)


def exported(page, link: str) -> list[list[str]]:
    with page.expect_download() as download:
        page.click(link)
    with open(download.value.path(), encoding="utf-8") as f:
        return list(csv.reader(io.StringIO(f.read())))


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_retry_cancel_resend_and_a_campaign(browser_page, server, make_tenant, viewport):
    page = browser_page
    page.set_viewport_size(VIEWPORTS[viewport])
    tenant = make_tenant("rcv")
    api = api_client(server, tenant.slug)
    device_id, token = raw_device(server, tenant.slug, api, name="Front desk phone")
    dev = device_client(server, tenant.slug, token)
    sign_in(page, server, tenant)

    # A failed message: its error explained; Retry on the phone that failed makes a new message.
    failed = api.post("/api/v1/messages", json={"text": "Your table is ready", "to": "+14155550131"}).json()
    claimed = fetch(dev).json()["messages"]
    report(dev, {"message_id": claimed[0]["id"], "state": "failed", "error_code": "RESULT_ERROR_NO_SERVICE"})
    page.goto(address(server, tenant.slug, f"/messages/{failed['id']}"))
    assert "The phone had no mobile network" in page.inner_text("main")
    submit(page, "button.retry-on")
    assert page.inner_text("main h1").startswith("Message #") and f"/messages/{failed['id']}" not in page.url
    new_id = int(page.url.rsplit("/", 1)[1])
    assert sql(tenant, "SELECT device_id, source FROM messages WHERE id = %s", (new_id,)) == [(device_id, "retry")]

    # Resend: the form holds a copy (text and number) to change before sending.
    page.goto(address(server, tenant.slug, f"/messages/{failed['id']}"))
    submit(page, "#resend")
    assert page.input_value("#f-text") == "Your table is ready" and page.input_value("#f-to") == "+14155550131"

    # Cancel a pending one: asked first, then cancelled.
    page.goto(address(server, tenant.slug, f"/messages/{new_id}"))
    submit(page, "#cancel-message")
    assert page.inner_text("main h1") == f"Cancel the unsent part of message #{new_id}?"
    assert sql(tenant, "SELECT state FROM recipients WHERE message_id = %s", (new_id,)) == [("pending",)]
    submit(page, "main form button[type=submit]")
    assert sql(tenant, "SELECT state FROM recipients WHERE message_id = %s", (new_id,)) == [("cancelled",)]

    # A CSV upload is a campaign: progress, counts, cancel what is left, retry what failed.
    page.goto(address(server, tenant.slug, "/send/csv"))
    page.set_input_files("#f-file", files=[{"name": "spring.csv", "mimeType": "text/csv", "buffer": (
        "recipient,text\n+14155550141,Sale starts\n+14155550142,Sale starts\n+14155550143,Sale starts\n"
        "+14155550144,Sale starts\n").encode()}])
    submit(page)
    submit(page, "main form:has([name=payload]) button[type=submit]")
    assert "/campaigns/" in page.url and "spring.csv" in page.inner_text("main h1")
    campaign = int(page.url.rsplit("/", 1)[1])
    work = fetch(dev, limit=2).json()["messages"]
    report(dev, {"message_id": work[0]["id"], "state": "failed", "error_code": "RESULT_ERROR_NULL_PDU"},
           {"message_id": work[1]["id"], "state": "delivered"})
    page.reload()
    assert page.inner_text("td[data-state=pending]") == "2" and page.inner_text("td[data-state=failed]") == "1"
    assert page.get_attribute("#campaign-progress", "value") == "2"
    submit(page, "#cancel-remaining")
    submit(page, "main form button[type=submit]")
    assert page.inner_text("td[data-state=cancelled]") == "2" and page.inner_text("td[data-state=pending]") == "0"
    submit(page, "#retry-failed")
    assert page.inner_text("td[data-state=pending]") == "1"  # the failed number, again, in the same campaign
    assert sql(tenant, "SELECT count(*) FROM messages WHERE campaign_id = %s AND source = 'retry'",
               (campaign,)) == [(1,)]
    assert page_problems(page) == []


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_filters_are_kept_across_pages_and_the_export_holds_the_filtered_rows(browser_page, server, make_tenant,
                                                                             viewport):
    page = browser_page
    page.set_viewport_size(VIEWPORTS[viewport])
    tenant = make_tenant("find")
    api = api_client(server, tenant.slug)
    batch = [{"text": f"Invoice {n} is due", "to": f"+1415555{n:04d}"} for n in range(60)]
    batch += [{"text": f"Hello {n}", "to": f"+1415555{n:04d}"} for n in range(60, 75)]
    assert api.post("/api/v1/messages", json={"messages": batch}).status_code == 202
    device_id, token = raw_device(server, tenant.slug, api, name="Till phone")
    dev = device_client(server, tenant.slug, token)
    assert dev.post("/api/device/v1/inbound", json={"messages": [
        {"id": f"in-{n}", "from": f"+1415556{n:04d}", "body": ("Invoice question " if n % 2 else "Thanks ") + str(n),
         "received_at": "2026-01-01T10:00:00Z"} for n in range(56)]}).status_code == 200
    sign_in(page, server, tenant)

    page.goto(address(server, tenant.slug, "/messages"))
    page.fill("#f-q", "invoice")
    page.fill("#f-number", "555")
    submit(page, "#message-filters button[type=submit]")
    first = page.locator("tr[data-message]").count()
    assert first == 50 and "Hello" not in page.inner_text("table.messages")
    submit(page, "#older")
    assert "q=invoice" in page.url and "number=555" in page.url
    assert page.input_value("#f-q") == "invoice"  # the form still shows them
    assert page.locator("tr[data-message]").count() == 10 and "Hello" not in page.inner_text("table.messages")
    rows = exported(page, "#export-csv")
    assert len(rows) == 1 + 60 and all("Invoice" in r[-1] for r in rows[1:])

    # A bad value is said on the page, with the form to fix it.
    page.goto(address(server, tenant.slug, "/messages?since=last+week"))
    assert "since must be an ISO 8601 date" in page.inner_text("#filter-error")
    assert page.locator("#message-filters").count() == 1

    # The Inbox: the same.
    page.goto(address(server, tenant.slug, "/inbox"))
    page.fill("#inbox-filters #f-q", "")
    page.fill("#inbox-filters #f-number", "556")
    submit(page, "#inbox-filters button[type=submit]")
    assert page.locator("tr[data-inbound]").count() == 50
    submit(page, "#older")
    assert "number=556" in page.url and page.locator("tr[data-inbound]").count() == 6
    page.fill("#inbox-filters #f-q", "invoice")
    submit(page, "#inbox-filters button[type=submit]")
    rows = exported(page, "#export-csv")
    assert len(rows) == 1 + 28 and all(r[-1].startswith("Invoice question") for r in rows[1:])
    # A download aborts its navigation; the bad filter's page answers 422: both on purpose.
    assert page_problems(page, allow=["ERR_ABORTED", "422"]) == []
