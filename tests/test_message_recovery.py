"""Recovering from failure and finding messages (issue 22, items 6 and 7), without a browser: the
rules behind the dashboard's buttons and filters (tests/test_browser_recovery.py drives them).

A "send at" in the past is refused with a sentence and stores nothing; Retry stores a new message
to the failed numbers only (the failed one stays failed) through the same function as the API's
``/retry``; hostile filter values are a message on the page, never a 500 or a database error;
another workspace's message or campaign ids are refused; a CSV export escapes formula cells.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re

from tests.support.identity import owner_email
from tests.support.devices import device_client, fetch, raw_device, sql
from tests.support.phones import api_client
from tests.test_messaging_pages import signed_in, xsrf


def failed_message(live_server, tenant, text="Will fail", to=("+14155550171", "+14155550172")):
    """A message whose first number failed (NULL_PDU: final) and whose second was delivered."""
    device_id, token = raw_device(live_server, tenant.slug)
    dev = device_client(live_server, tenant.slug, token)
    api = api_client(live_server, tenant.slug)
    sent = api.post("/api/v1/messages", json={"text": text, "to": list(to), "reference": "order-7"}).json()
    ids = sorted(m["id"] for m in fetch(dev).json()["messages"])  # recipients, in the order of ``to``
    reports = [{"message_id": ids[0], "state": "failed", "error_code": "RESULT_ERROR_NULL_PDU"},
               {"message_id": ids[1], "state": "delivered"}]
    assert [r["status"] for r in dev.post("/api/device/v1/reports", json={"reports": reports}).json()["results"]] \
        == ["applied", "applied"]
    return sent["id"], device_id, api


def test_send_at_in_the_past_is_refused_and_nothing_is_stored(live_server, make_tenant):
    t = make_tenant("rc-past")
    c = signed_in(live_server, t)
    past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    r = c.post("/send", data={"to": "+14155550181", "text": "Too late", "send_at": past, "_xsrf": xsrf(c)})
    assert r.status_code == 422
    assert "is in the past" in r.text and "Nothing was sent" in r.text
    assert 'value="Too late"' not in r.text and ">Too late</textarea>" in r.text  # what was typed stays
    assert sql(t, "SELECT count(*) FROM messages")[0][0] == 0
    future = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    r = c.post("/send", data={"to": "+14155550181", "text": "Later", "send_at": future, "_xsrf": xsrf(c)},
               allow_redirects=False)
    assert r.status_code == 302 and sql(t, "SELECT count(*) FROM messages WHERE send_at IS NOT NULL")[0][0] == 1


def test_send_at_is_typed_in_the_members_time_zone(live_server, make_tenant):
    """Item 9: "send at" is read in the member's own zone (the form names it), and "in the past" is
    judged, and told, in that zone: an hour ago in Kolkata is hours ahead in UTC, and still refused."""
    t = make_tenant("rc-zone")
    c = signed_in(live_server, t)
    details = {"action": "profile", "name": "Ola", "email": owner_email(t), "phone": "", "job_title": "",
               "time_zone": "Asia/Kolkata", "_xsrf": xsrf(c)}
    assert c.post("/account", data=details, allow_redirects=False).status_code == 302
    assert "your time: Asia/Kolkata" in c.get("/send").text
    kolkata = dt.timezone(dt.timedelta(hours=5, minutes=30))
    now = dt.datetime.now(kolkata)
    hour_ago = (now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    r = c.post("/send", data={"to": "+14155550181", "text": "Too late", "send_at": hour_ago, "_xsrf": xsrf(c)})
    assert r.status_code == 422 and "is in the past (it is now " in r.text and "Asia/Kolkata" in r.text
    assert f"it is now {now.strftime('%Y-%m-%d')}" in r.text
    in_an_hour = (now + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    r = c.post("/send", data={"to": "+14155550181", "text": "Later", "send_at": in_an_hour, "_xsrf": xsrf(c)},
               allow_redirects=False)
    assert r.status_code == 302
    [(stored,)] = sql(t, "SELECT send_at FROM messages")
    expected = dt.datetime.strptime(in_an_hour, "%Y-%m-%dT%H:%M").replace(tzinfo=kolkata)
    assert stored == expected, (stored, expected)
    r = c.post("/send", data={"to": "+14155550181", "text": "Bad", "send_at": "soon", "_xsrf": xsrf(c)})
    assert r.status_code == 422 and sql(t, "SELECT count(*) FROM messages") == [(1,)]


def test_retry_sends_a_new_message_to_the_failed_numbers_only(live_server, make_tenant):
    t = make_tenant("rc-retry")
    message_id, device_id, api = failed_message(live_server, t)
    c = signed_in(live_server, t)
    page = c.get(f"/messages/{message_id}")
    assert "could not build the SMS" in page.text  # NULL_PDU, explained
    assert re.search(r"<td>failed</td><td>[^<]*</td><td>Raw Phone</td>", page.text)  # the history names the phone
    assert 'id="retry-any"' in page.text and f'name="device_id" value="{device_id}"' in page.text
    r = c.post(f"/messages/{message_id}/retry", data={"device_id": str(device_id), "_xsrf": xsrf(c)},
               allow_redirects=False)
    assert r.status_code == 302
    new_id = int(r.headers["Location"].rsplit("/", 1)[1])
    assert new_id != message_id
    again = api.get(f"/api/v1/messages/{new_id}").json()
    assert [x["phone"] for x in again["recipients"]] == ["+14155550171"]
    assert again["device_id"] == device_id and again["reference"] == "order-7" and again["text"] == "Will fail"
    old = api.get(f"/api/v1/messages/{message_id}").json()
    assert sorted(x["state"] for x in old["recipients"]) == ["delivered", "failed"]  # history stays true
    # The API's /retry is the same function: on any phone this time.
    r = api.post(f"/api/v1/messages/{message_id}/retry", json={})
    assert r.status_code == 202, r.text
    assert [x["phone"] for x in r.json()["recipients"]] == ["+14155550171"] and r.json()["id"] > new_id
    assert api.post(f"/api/v1/messages/{new_id}/retry", json={}).json()["code"] == "nothing-to-retry"
    assert api.post(f"/api/v1/messages/{message_id}/retry", json={"device_id": "x"}).status_code == 422


def test_cancel_on_the_page_cancels_what_is_pending(live_server, make_tenant):
    t = make_tenant("rc-cancel")
    c = signed_in(live_server, t)
    r = c.post("/send", data={"to": "+14155550191", "text": "Cancel me", "_xsrf": xsrf(c)}, allow_redirects=False)
    path = r.headers["Location"]
    asked = c.post(path + "/cancel", data={"_xsrf": xsrf(c)})
    assert asked.status_code == 200 and "Cancel the unsent part of message" in asked.text
    assert sql(t, "SELECT state FROM recipients")[0][0] == "pending"  # asked first, nothing changed
    r = c.post(path + "/cancel", data={"_xsrf": xsrf(c), "confirmed": "1"}, allow_redirects=True)
    assert r.status_code == 200 and sql(t, "SELECT state FROM recipients")[0][0] == "cancelled"


def test_hostile_filter_values_are_a_message_on_the_page(live_server, make_tenant):
    t = make_tenant("rc-filter")
    c = signed_in(live_server, t)
    c.post("/send", data={"to": "+14155550101", "text": "100% done_ok", "_xsrf": xsrf(c)})
    c.post("/send", data={"to": "+14155550102", "text": "1000 done", "_xsrf": xsrf(c)})
    for query in ("state=bogus", "since=yesterday", "until=2026-13-45", "device_id=-1", "campaign=x",
                  "cursor=%27%3B--", "number=%27%20OR%201%3D1", "number=a", "q=" + "x" * 150,
                  "phone=notanumber"):
        r = c.get("/messages?" + query)
        assert r.status_code == 422, (query, r.status_code)
        assert 'id="filter-error"' in r.text and 'id="message-filters"' in r.text, query
        if not query.startswith("cursor"):  # an export starts at the newest, whatever the page
            assert c.get("/messages.csv?" + query).status_code == 422, query
    assert c.get("/messages?q=%00").status_code == 200  # Tornado turns control characters into spaces
    for query in ("since=yesterday", "q=" + "y" * 101, "number=x", "device_id=abc"):
        r = c.get("/inbox?" + query)
        assert r.status_code == 422 and 'id="filter-error"' in r.text, query
    # LIKE's wildcards are taken literally: "100%" finds only the text with a percent sign.
    r = c.get("/messages?q=100%25")
    assert "100% done_ok" in r.text and "1000 done" not in r.text
    r = c.get("/messages?q=_ok&number=555-0101")
    assert "100% done_ok" in r.text and "1000 done" not in r.text


def test_other_workspaces_ids_are_refused(live_server, make_tenant):
    a, b = make_tenant("rc-a"), make_tenant("rc-b")
    ca = signed_in(live_server, a)
    cb = signed_in(live_server, b)
    r = ca.post("/send", data={"to": "+14155550111, +14155550112", "text": "A's", "_xsrf": xsrf(ca)},
                allow_redirects=False)
    message_id = int(r.headers["Location"].rsplit("/", 1)[1])
    campaign_id = sql(a, "SELECT campaign_id FROM messages WHERE id = %s", (message_id,))[0][0]
    assert campaign_id is not None
    cb.post("/send", data={"to": "+14155550113", "text": "B's", "_xsrf": xsrf(cb)})
    assert cb.get(f"/send?resend={message_id + 100}").status_code == 404
    assert cb.get(f"/campaigns/{campaign_id}").status_code == 404
    for path in (f"/messages/{message_id + 100}/cancel", f"/messages/{message_id + 100}/retry",
                 f"/campaigns/{campaign_id}/cancel", f"/campaigns/{campaign_id}/retry"):
        assert cb.post(path, data={"_xsrf": xsrf(cb), "confirmed": "1"}).status_code == 404, path
    listing = cb.get(f"/messages?campaign={campaign_id}")
    assert listing.status_code == 200 and "A&#39;s" not in listing.text and "A's" not in listing.text
    assert sql(a, "SELECT state FROM recipients ORDER BY id") == [("pending",), ("pending",)]
    api_b = api_client(live_server, b.slug)
    assert api_b.post(f"/api/v1/messages/{message_id + 100}/retry", json={}).status_code == 404


def test_csv_export_of_a_filtered_list_escapes_formula_cells(live_server, make_tenant):
    t = make_tenant("rc-csv")
    c = signed_in(live_server, t)
    c.post("/send", data={"to": "+14155550121", "text": "=HYPERLINK(\"http://x\")", "_xsrf": xsrf(c)})
    c.post("/send", data={"to": "+14155550122", "text": "plain", "_xsrf": xsrf(c)})
    r = c.get("/messages.csv?number=0121")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:4] == ["message_id", "created_at", "phone", "state"]
    assert len(rows) == 2 and rows[1][2] == "+14155550121" and rows[1][-1] == "'=HYPERLINK(\"http://x\")"


def test_each_filter_of_the_messages_page_narrows_the_list_and_its_export(live_server, make_tenant):
    """Item 7: reference, phone, state, campaign, whole number, part of a number and the date range
    each find exactly their messages, on the page and in its CSV export (the same filters)."""
    t = make_tenant("rc-narrow")
    failed_id, device_id, api = failed_message(live_server, t)  # reference order-7; one failed, one delivered
    c = signed_in(live_server, t)
    r = c.post("/send", data={"to": "+14155550201, +14155550202", "text": "Spring sale", "_xsrf": xsrf(c)},
               allow_redirects=False)
    sale_id = int(r.headers["Location"].rsplit("/", 1)[1])
    [(campaign_id,)] = sql(t, "SELECT campaign_id FROM messages WHERE id = %s", (sale_id,))
    other_id = api.post("/api/v1/messages", json={"to": ["+14155550203"], "text": "Other",
                                                  "reference": "order-8"}).json()["id"]

    def listed(query: str) -> list[int]:
        page = c.get("/messages?" + query)
        assert page.status_code == 200, (query, page.status_code)
        shown = sorted(int(x) for x in re.findall(r'<tr data-message="(\d+)"', page.text))
        rows = list(csv.reader(io.StringIO(c.get("/messages.csv?" + query).text)))[1:]
        assert sorted({int(row[0]) for row in rows}) == shown, query  # the export holds the same messages
        return shown

    today = dt.datetime.now(dt.timezone.utc).date()
    assert listed("") == sorted([failed_id, sale_id, other_id])
    assert listed("reference=order-7") == [failed_id]
    assert listed(f"device_id={device_id}") == [failed_id]
    assert listed("state=failed") == [failed_id]
    assert listed("state=delivered") == [failed_id]
    assert listed("state=pending") == sorted([sale_id, other_id])
    assert listed(f"campaign={campaign_id}") == [sale_id]
    assert listed("phone=%2B14155550203") == [other_id]
    assert listed("number=0202") == [sale_id]
    assert listed(f"since={today}&until={today}") == sorted([failed_id, sale_id, other_id])  # "To" is inclusive
    assert listed(f"until={today - dt.timedelta(days=1)}") == []
    assert listed(f"since={today + dt.timedelta(days=1)}") == []
    assert listed("reference=order-7&state=pending") == []  # filters combine

    # The dates are whole days of the member's own time zone: pick one whose date today is not
    # UTC's, and "today" there finds every message while UTC's date finds none.
    zone, offset = (("Etc/GMT+12", -12) if dt.datetime.now(dt.timezone.utc).hour < 12 else ("Pacific/Kiritimati", 14))
    details = {"action": "profile", "name": "Ola", "email": owner_email(t), "phone": "", "job_title": "",
               "time_zone": zone, "_xsrf": xsrf(c)}
    assert c.post("/account", data=details, allow_redirects=False).status_code == 302
    local_today = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=offset)).date()
    assert local_today != today
    assert listed(f"since={local_today}&until={local_today}") == sorted([failed_id, sale_id, other_id])
    assert listed(f"since={today}&until={today}") == []
