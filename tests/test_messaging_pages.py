"""The messaging dashboard: send form, CSV upload with preview and per-row errors, lists, inbox, opt-outs."""

import re

from tests.support.phones import api_client


def signed_in(live_server, tenant):
    c = live_server.client(tenant.slug)
    c.get("/login")
    r = c.post("/login", data={"email": f"owner@{tenant.slug}.example", "password": "a long enough password",
                               "_xsrf": c.cookies.get("_xsrf"), "next": "/"}, allow_redirects=True)
    assert r.status_code == 200 and "Sign in to" not in r.text
    return c


def xsrf(c):
    return c.cookies.get("_xsrf")


def test_send_form_accepts_and_shows_detail(live_server, make_tenant):
    t = make_tenant("pg-send")
    c = signed_in(live_server, t)
    page = c.get("/send")
    assert page.status_code == 200 and 'data-segment-counter="segment-info"' in page.text
    r = c.post("/send", data={"to": "+14155550101, +14155550102", "text": "Hello from the dashboard",
                              "_xsrf": xsrf(c)}, allow_redirects=True)
    assert r.status_code == 200
    assert "Hello from the dashboard" in r.text and "+14155550101" in r.text and "+14155550102" in r.text
    assert "no online device" in r.text  # no phone paired yet: the page says why it waits
    listing = c.get("/messages")
    assert "Hello from the dashboard" in listing.text


def test_message_page_shows_a_delivered_message_with_its_history(live_server, make_tenant):
    """Found by hand on a fresh `make run`: the page failed (500) once no recipient was pending."""
    from tests.support.devices import device_client, fetch, raw_device

    t = make_tenant("pg-done")
    c = signed_in(live_server, t)
    _device_id, token = raw_device(live_server, t.slug)
    dev = device_client(live_server, t.slug, token)
    assert fetch(dev).status_code == 200  # the phone is online
    r = c.post("/send", data={"to": "+14155550103", "text": "Delivered, then looked at", "_xsrf": xsrf(c)},
               allow_redirects=False)
    message_path = r.headers["Location"]
    claimed = fetch(dev).json()["messages"]
    assert [m["text"] for m in claimed] == ["Delivered, then looked at"]
    reports = [{"message_id": claimed[0]["id"], "state": "delivered"}]
    assert dev.post("/api/device/v1/reports", json={"reports": reports}).json()["results"][0]["status"] == "applied"
    page = c.get(message_path)
    assert page.status_code == 200, page.text[:300]
    assert "Delivered, then looked at" in page.text and "delivered" in page.text and "Waiting" not in page.text
    api = api_client(live_server, t.slug)
    recipient = api.get("/api/v1" + message_path).json()["recipients"][0]
    assert recipient["state"] == "delivered" and "waiting_reason" not in recipient


def test_send_form_shows_errors_and_writes_nothing(live_server, make_tenant):
    t = make_tenant("pg-bad")
    c = signed_in(live_server, t)
    r = c.post("/send", data={"to": "not a number", "text": "x", "_xsrf": xsrf(c)})
    assert r.status_code == 422 and "no valid recipient" in r.text
    api = api_client(live_server, t.slug)
    assert api.get("/api/v1/messages").json()["messages"] == []


def test_csv_upload_preview_errors_and_confirm(live_server, make_tenant):
    t = make_tenant("pg-csv")
    c = signed_in(live_server, t)
    csv_text = ("recipient,text,name\n"
                "+14155550111,Hi {name}!,Ann\n"
                "garbage,Hi {name}!,Bob\n"
                "+14155550112,Hello {missing},Cy\n"
                "+14155550113,Hey {name},Dee\n")
    r = c.post("/send/csv", files={"file": ("list.csv", csv_text.encode(), "text/csv")}, data={"_xsrf": xsrf(c)})
    assert r.status_code == 200
    assert "Hi Ann!" in r.text and "Hey Dee" in r.text
    assert re.search(r"<td>3</td><td>“garbage” is not a phone number.", r.text)
    assert "variable that has no column" in r.text
    payload = re.search(r'name="payload" value="([^"]+)"', r.text).group(1)
    api = api_client(live_server, t.slug)
    assert api.get("/api/v1/messages").json()["messages"] == []  # preview sends nothing
    r = c.post("/send/csv", data={"confirm": "1", "payload": payload, "_xsrf": xsrf(c)}, allow_redirects=True)
    assert r.status_code == 200
    texts = sorted(m["text"] for m in api.get("/api/v1/messages").json()["messages"])
    assert texts == ["Hey Dee", "Hi Ann!"]
    # A tampered payload is refused.
    r = c.post("/send/csv", data={"confirm": "1", "payload": payload[:-3] + "abc", "_xsrf": xsrf(c)})
    assert r.status_code == 400 and "upload the file again" in r.text


def test_csv_without_header_is_explained(live_server, make_tenant):
    t = make_tenant("pg-csv2")
    c = signed_in(live_server, t)
    r = c.post("/send/csv", files={"file": ("x.csv", b"+14155550111,hello\n", "text/csv")}, data={"_xsrf": xsrf(c)})
    assert r.status_code == 422 and "must name the columns" in r.text


def test_other_pages_render(live_server, make_tenant):
    t = make_tenant("pg-pages")
    c = signed_in(live_server, t)
    for path, marker in (("/messages", "Messages"), ("/inbox", "No inbound SMS yet"),
                         ("/suppressions", "Nobody has opted out"), ("/overview", "All phones"),
                         ("/devices", "Pair a phone"), ("/devices/pair", "Create a pairing code")):
        r = c.get(path)
        assert r.status_code == 200 and marker in r.text, path
    r = c.post("/suppressions", data={"phone": "+14155550199", "reason": "asked by phone", "_xsrf": xsrf(c)},
               allow_redirects=True)
    assert r.status_code == 200 and "+14155550199" in r.text
    r = c.post("/suppressions", data={"phone": "12", "_xsrf": xsrf(c)})
    assert r.status_code == 422
    r = c.post("/devices/pair", data={"_xsrf": xsrf(c)})
    assert r.status_code == 200 and 'id="pairing-code"' in r.text and "data:image/svg+xml" in r.text
