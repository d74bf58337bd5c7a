"""The compat API (/3rdparty/v1) against browsers and against ambiguous ids.

* Basic credentials are for scripts: no ``Basic`` challenge ever reaches a browser, a
  browser's request from another site with Basic credentials is refused before the
  password is checked, and JSON bodies must be declared ``application/json`` (a
  cross-site form can send ``text/plain``, not that). The same media-type rule holds
  for every JSON body of the native API.
* Message ids: digits only is our message number, anything else the client's id, so
  no id names two messages in either direction.
"""

from __future__ import annotations

import base64
import json

import pytest
from android_sms_gateway import client as asg_client, domain, http as asg_http
from android_sms_gateway.enums import WebhookEvent

from addons.webhooks.delivery import compat_payload
from core.web.mediatype import is_json
from tests.support.identity import OWNER_PASSWORD, client, fresh_ip, owner_email
from tests.support.messaging import row_counts, sql
from tests.support.phones import api_client, api_token

TO = "+14155550123"
SEND = {"phoneNumbers": [TO], "textMessage": {"text": "transfer all the money"}}


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("cps")


def basic(tenant) -> dict:
    pair = f"{owner_email(tenant)}:{OWNER_PASSWORD}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}


def own_origin(live_server, tenant) -> str:
    return f"http://{tenant.slug}.{live_server.platform.settings.base_domain}:{live_server.port}"


# -- finding 5: CSRF with a browser's Basic credentials ------------------------------------------

def test_a_cross_site_text_plain_post_with_basic_credentials_is_refused_and_sends_nothing(live_server, tenant):
    c = client(live_server, tenant.slug, fresh_ip())
    before = row_counts(tenant)
    # What a page on another site makes a browser send, with the Basic credentials it remembers:
    # a "simple" request (no preflight), the JSON as text/plain.
    r = c.post("/3rdparty/v1/messages", data=json.dumps(SEND), headers={
        **basic(tenant), "Content-Type": "text/plain;charset=UTF-8", "Origin": "https://evil.example",
        "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"})
    assert r.status_code == 403, r.text
    assert r.json()["data"]["code"] == "cross-site-request"
    assert "Basic" not in r.headers.get("WWW-Authenticate", "")

    # Either signal alone is enough; another workspace's page is another site here too.
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Sec-Fetch-Site": "same-site"}, {"Origin": "null"},
                    {"Origin": f"http://other.{live_server.platform.settings.base_domain}:{live_server.port}"}):
        r = c.post("/3rdparty/v1/messages", json=SEND, headers={**basic(tenant), **headers})
        assert r.status_code == 403 and r.json()["data"]["code"] == "cross-site-request", (headers, r.text)
    for path in ("/3rdparty/v1/webhooks", "/3rdparty/v1/auth/token"):
        r = c.post(path, data="", headers={**basic(tenant), "Content-Type": "text/plain",
                                           "Origin": "https://evil.example"})
        assert r.status_code == 403, (path, r.text)
    r = c.delete("/3rdparty/v1/devices/1", headers={**basic(tenant), "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403, r.text
    assert row_counts(tenant) == before

    # Without browser headers (a script), a body that is not declared JSON is refused too.
    for ctype in ("text/plain", "text/plain; x=json", "application/x-www-form-urlencoded", "application/jsonp",
                  "text/json", ""):
        r = c.post("/3rdparty/v1/messages", data=json.dumps(SEND), headers={**basic(tenant), "Content-Type": ctype})
        assert r.status_code == 400, (ctype, r.text)
        assert r.json()["data"]["code"] == "unsupported-media-type", (ctype, r.text)
    r = c.post("/3rdparty/v1/webhooks", data=json.dumps({"url": "http://127.0.0.1/hook", "event": "sms:sent"}),
               headers={**basic(tenant), "Content-Type": "text/plain"})
    assert r.status_code == 400 and r.json()["data"]["code"] == "unsupported-media-type"
    assert row_counts(tenant) == before

    # The workspace's own origin, and scripts with JSON, are served.
    r = c.post("/3rdparty/v1/messages", json=SEND,
               headers={**basic(tenant), "Origin": own_origin(live_server, tenant), "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 202, r.text
    r = c.post("/3rdparty/v1/messages", data=json.dumps(SEND),
               headers={**basic(tenant), "Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 202, r.text
    assert row_counts(tenant)["messages"] == before["messages"] + 2


def test_401_answers_never_carry_a_basic_challenge(live_server, tenant):
    c = client(live_server, tenant.slug, fresh_ip())
    wrong = {"Authorization": "Basic " + base64.b64encode(f"{owner_email(tenant)}:wrong".encode()).decode()}
    answers = [
        c.get("/3rdparty/v1/messages"),  # no credentials
        c.get("/3rdparty/v1/messages", headers=wrong),  # wrong password
        c.get("/3rdparty/v1/messages", headers={"Authorization": "Basic %%%"}),  # malformed
        c.post("/3rdparty/v1/messages", json=SEND),
        client(live_server, None, fresh_ip()).get("/3rdparty/v1/messages", headers=basic(tenant)),  # main domain
    ]
    for r in answers:
        assert r.status_code == 401, r.text
        challenge = r.headers.get("WWW-Authenticate", "")
        assert challenge.startswith("Bearer") and "basic" not in challenge.lower(), challenge


def test_their_client_still_works_with_basic_credentials_and_with_a_token(live_server, tenant, monkeypatch):
    monkeypatch.setenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", "1")  # the webhook URL is on loopback; nothing is sent
    session = live_server.client(tenant.slug)
    session.headers["X-Real-IP"] = fresh_ip()
    base_url = f"{live_server.url}/3rdparty/v1"
    for login, secret in ((owner_email(tenant), OWNER_PASSWORD), (None, api_token(tenant.slug))):
        api = asg_client.APIClient(login, secret, base_url=base_url, http=asg_http.RequestsHttpClient(session))
        state = api.send(domain.Message(phone_numbers=[TO], text_message=domain.TextMessage(text="hi")))
        assert api.get_state(state.id).id == state.id
        hook = api.create_webhook(domain.Webhook(None, "http://127.0.0.1:9/hook", WebhookEvent.SMS_SENT))
        api.delete_webhook(hook.id)


@pytest.mark.parametrize("ctype, ok", [
    ("application/json", True), ("application/json; charset=utf-8", True), ("Application/JSON", True),
    ("application/merge-patch+json", True), ("application/problem+json ; x=1", True),
    ("text/plain", False), ("text/plain; x=json", False), ("text/plain; charset=json", False),
    ("application/x-www-form-urlencoded; json", False), ("application/jsonp", False), ("application/+json", False),
    ("text/json", False), ("json", False), ("application/json/x", False), ("", False), (None, False),
])
def test_json_media_types_are_parsed_not_searched(ctype, ok):
    assert is_json(ctype) is ok


def test_native_json_endpoints_refuse_bodies_not_declared_json(live_server, tenant):
    api = api_client(live_server, tenant.slug)
    before = row_counts(tenant)
    body = json.dumps({"text": "hello", "to": [TO]})
    for ctype in ("text/plain; x=json", "text/plain", "application/x-www-form-urlencoded; charset=json"):
        r = api.post("/api/v1/messages", data=body, headers={"Content-Type": ctype})
        assert r.status_code == 415, (ctype, r.text)
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert r.json()["code"] == "unsupported-media-type"
        r = client(live_server, tenant.slug, fresh_ip()).post(
            "/api/v1/auth/token", data=json.dumps({"email": owner_email(tenant), "password": OWNER_PASSWORD}),
            headers={"Content-Type": ctype})
        assert r.status_code == 415, (ctype, r.text)
    assert row_counts(tenant) == before
    r = api.post("/api/v1/messages", data=body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 202, r.text


# -- finding 11: one id, one message -------------------------------------------------------------

def test_a_client_id_of_digits_cannot_take_a_message_number_in_either_direction(live_server, tenant):
    native_api = api_client(live_server, tenant.slug)
    compat = client(live_server, tenant.slug)
    compat.headers["Authorization"] = f"Bearer {api_token(tenant.slug)}"
    native = native_api.post("/api/v1/messages", json={"text": "native two", "to": ["+14155550102"]})
    assert native.status_code == 202, native.text
    number = native.json()["id"]
    before = row_counts(tenant)

    # A client id equal to an existing number, or to one a later message will get, is refused.
    for taken in (str(number), str(number + 1), str(number + 1000), "0", "007"):
        r = compat.post("/3rdparty/v1/messages", json={**SEND, "id": taken})
        assert r.status_code == 400, (taken, r.text)
        assert r.json()["data"]["errors"][0]["field"] == "id"
    assert row_counts(tenant) == before
    got = compat.get(f"/3rdparty/v1/messages/{number}").json()
    assert got["id"] == str(number) and got["recipients"][0]["phoneNumber"] == "+14155550102"

    # A later native message takes the next number without shadowing any client id ...
    mine = compat.post("/3rdparty/v1/messages", json={**SEND, "id": "order-7"})
    assert mine.status_code == 202 and mine.json()["id"] == "order-7"
    later = native_api.post("/api/v1/messages", json={"text": "native later", "to": ["+14155550103"]}).json()["id"]
    assert compat.get("/3rdparty/v1/messages/order-7").json()["recipients"][0]["phoneNumber"] == TO
    assert compat.get(f"/3rdparty/v1/messages/{later}").json()["recipients"][0]["phoneNumber"] == "+14155550103"

    # ... and a digits-only client id stored before the rule (written here as the old code did) is
    # known by its own number, never by the other message's.
    legacy = compat.post("/3rdparty/v1/messages", json={**SEND, "id": "soon-legacy"}).json()
    legacy_number = sql(tenant, "SELECT id FROM messages WHERE reference = 'soon-legacy'")[0][0]
    sql(tenant, "UPDATE messages SET reference = %s WHERE id = %s", (str(number), legacy_number))
    assert compat.get(f"/3rdparty/v1/messages/{number}").json()["recipients"][0]["phoneNumber"] == "+14155550102"
    assert compat.get(f"/3rdparty/v1/messages/{legacy_number}").json()["id"] == str(legacy_number)
    assert legacy["id"] == "soon-legacy"
    r = compat.delete(f"/3rdparty/v1/messages/{number}")  # cancels the native message, not the legacy one
    assert r.status_code == 204
    assert sql(tenant, "SELECT state FROM recipients WHERE message_id = %s", (number,)) == [("cancelled",)]
    assert sql(tenant, "SELECT state FROM recipients WHERE message_id = %s", (legacy_number,)) == [("pending",)]

    # Every id the listing shows names exactly the message it is shown for.
    listed = compat.get("/3rdparty/v1/messages", params={"limit": 500}).json()
    assert len({m["id"] for m in listed}) == len(listed) == 4
    for m in listed:
        assert compat.get(f"/3rdparty/v1/messages/{m['id']}").json() == m


def test_webhooks_name_messages_by_the_same_rule():
    sent = {"message_id": 12, "phone": TO, "at": "2026-12-01T09:00:00+00:00"}
    assert compat_payload("sms:sent", {**sent, "reference": "order-7"})["messageId"] == "order-7"
    assert compat_payload("sms:sent", {**sent, "reference": None})["messageId"] == "12"
    # A digits-only reference (stored before the rule, or set through the native API) would name another message.
    assert compat_payload("sms:sent", {**sent, "reference": "7"})["messageId"] == "12"
