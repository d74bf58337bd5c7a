"""The SMS Gateway for Android app's private-server API (/api/mobile/v1), played end to end.

A client written from the protocol's description (tests/support/mobile_app.py) enrolls with a
private token, reads its settings and webhooks, holds the event stream on a raw socket, pulls
and reports messages, and posts signed webhooks, against the real server and database. The app
phone and a companion-protocol phone of the same workspace share one queue and one history.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
import time

from core import tokenformat
from core.db import tenant_transaction
import pytest

from tests.support.devices import device_client, fetch, phone, raw_device, sql, submit, wait_until
from tests.support.identity import audit_rows
from tests.support.mobile_app import AppPhone, gson_date
from tests.support.phones import api_client

from addons.mobile import service

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00$")


def enrollment(tenant, phones: int = 1, days: int = 7, name: str = "front desk") -> str:
    with tenant_transaction(tenant.ref):
        token, _row = service.create_enrollment(tenant.slug, "user:test", name, phones, days)
    return token


def app_phone(live_server, tenant, version: str = "1.68.0") -> AppPhone:
    return AppPhone(f"{tenant.slug}.{live_server.platform.settings.base_domain}", live_server.port, version=version)


def enrolled(live_server, tenant, version: str = "1.68.0", token: str | None = None, name: str = "Pixel") -> AppPhone:
    p = app_phone(live_server, tenant, version)
    status, _headers, body = p.register(token or enrollment(tenant), name=name)
    assert status == 201, body
    return p


def unlimited(api, device_id) -> None:
    r = api.patch(f"/api/v1/devices/{device_id}", json={"settings": {"limits": {"per_minute": 0}}})
    assert r.status_code == 200, r.text[:300]


def recipient_of(api, message_id: int) -> dict:
    r = api.get(f"/api/v1/messages/{message_id}")
    assert r.status_code == 200, r.text[:300]
    return r.json()["recipients"][0]


# -- the whole protocol, as the app plays it ----------------------------------------------------

def test_the_app_enrolls_syncs_is_woken_sends_and_reports(live_server, make_tenant):
    t = make_tenant("app")
    api = api_client(live_server, t.slug)
    p = app_phone(live_server, t)
    private = enrollment(t)

    status, headers, body = p.register(private)
    assert status == 201, body
    assert headers["Cache-Control"] == "no-store"
    assert set(body) == {"id", "token", "login", "password"} and body["id"].isdigit()  # Gson: nothing null is sent
    assert tokenformat.parse(body["token"]) == ("sgd", t.slug)
    device_id = int(body["id"])
    unlimited(api, device_id)

    status, _h, _b = p.patch_device()
    assert status == 204
    assert p.patch_device(str(device_id + 1000))[0] == 403  # not the caller

    status, _h, settings = p.settings()
    assert status == 200
    key = settings["webhooks"]["signing_key"]
    assert len(key) >= 20 and settings["gateway"]["notification_channel"] == "SSE_ONLY"
    assert settings["messages"]["limit_period"] == "Disabled" and settings["messages"]["processing_order"] == "FIFO"
    # The server keeps the working hours (in the dashboard's time zone): the app's own stay off.
    assert settings["messages"]["work_hours_enabled"] is False
    assert all(re.fullmatch(r"\d\d:\d\d", settings["messages"][k]) for k in ("work_hours_start", "work_hours_end"))

    status, _h, hooks = p.webhooks()
    assert status == 200
    assert {h["event"] for h in hooks} == {"sms:received", "sms:sent", "sms:delivered", "sms:failed"}
    ingest = hooks[0]["url"]
    assert ingest.startswith(live_server.platform.settings.public_url(t.slug) + "/api/mobile/v1/ingest/")
    ingest_path = ingest.split(str(live_server.port), 1)[1] if f":{live_server.port}" in ingest else \
        "/" + ingest.split("/", 3)[3]

    stream = p.open_events()
    try:
        assert stream.status == 200 and stream.headers["content-type"].startswith("text/event-stream")
        assert stream.chunked
        # The phone holding the stream is online: new work wakes it at once.
        wait_until(lambda: sql(t, "SELECT online FROM devices WHERE id = %s", (device_id,))[0][0])
        started = time.monotonic()
        sent = submit(api, [phone(1)], "hello from the platform")
        event, data = stream.next_event(timeout=10)
        assert event == "MessageEnqueued" and data == {}
        assert time.monotonic() - started < 5
    finally:
        stream.close()

    status, _h, messages = p.messages()
    assert status == 200 and len(messages) == 1
    m = messages[0]
    assert m["textMessage"] == {"text": "hello from the platform"} and m["phoneNumbers"] == [phone(1)]
    assert m["state"] == "Pending" and TIME_RE.match(m["createdAt"])
    assert not any(v is None for v in m.values())
    # Not acknowledged yet: offered again (the app keeps it once), and to no one else.
    assert [x["id"] for x in p.messages()[2]] == [m["id"]]

    # A reported Pending counts as Processed: no longer offered, still processed.
    assert p.report([{"id": m["id"], "state": "Pending", "recipients": [{"phoneNumber": phone(1), "state": "Pending"}],
                      "states": {"Pending": gson_date()}}])[0] == 204
    assert p.messages()[2] == []
    assert recipient_of(api, sent["id"])["state"] == "processed"

    sent_at = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    assert p.report([{"id": m["id"], "state": "Delivered",
                      "recipients": [{"phoneNumber": phone(1), "state": "Delivered"}],
                      "states": {"Processed": gson_date(sent_at), "Sent": gson_date(sent_at),
                                 "Delivered": gson_date()}},
                     {"id": "no-such-message", "state": "Sent", "recipients": []}])[0] == 204
    rec = recipient_of(api, sent["id"])
    assert rec["state"] == "delivered"
    assert [h["to"] for h in rec["history"]] == ["pending", "processed", "sent", "delivered"]
    # The same report again, or a late Sent: never backwards.
    assert p.report([{"id": m["id"], "state": "Sent", "recipients": [],
                      "states": {"Sent": gson_date()}}])[0] == 204
    assert recipient_of(api, sent["id"])["state"] == "delivered"

    # Inbound SMS through the signed webhook: replayed three times, stored once.
    payload = {"messageId": "in-1", "message": "reply text", "phoneNumber": phone(2), "simNumber": 1,
               "receivedAt": gson_date()}
    for _ in range(3):
        assert p.webhook(ingest_path, "sms:received", payload, key) == 204
    rows = sql(t, "SELECT sender, body FROM device_inbound WHERE device_id = %s", (device_id,))
    assert rows == [(phone(2), "reply text")]
    r = api.get("/api/v1/inbox")
    assert r.status_code == 200 and "reply text" in r.text

    other = dict(payload, messageId="in-2", message="forged")
    assert p.webhook(ingest_path, "sms:received", other, key, bad_signature=True) == 401
    assert p.webhook(ingest_path, "sms:received", other, None) == 401
    assert p.webhook(ingest_path, "sms:received", other, key, timestamp=int(time.time()) - 3600) == 401
    assert p.webhook(ingest_path, "sms:received", other, "not-the-key") == 401
    assert sql(t, "SELECT count(*) FROM device_inbound WHERE device_id = %s", (device_id,))[0][0] == 1


def test_status_webhooks_are_a_second_channel_for_reports(live_server, make_tenant):
    t = make_tenant("apps")
    api = api_client(live_server, t.slug)
    p = enrolled(live_server, t)
    unlimited(api, int(p.device_id))
    sent = submit(api, [phone(3)])
    [m] = p.messages()[2]
    key = p.settings()[2]["webhooks"]["signing_key"]
    path = f"/api/mobile/v1/ingest/{p.device_id}"
    assert p.webhook(path, "sms:sent", {"messageId": m["id"], "phoneNumber": phone(3), "sentAt": gson_date()},
                     key) == 204
    assert recipient_of(api, sent["id"])["state"] == "sent"
    assert p.messages()[2] == []  # reported on: not offered again


# -- tokens --------------------------------------------------------------------------------------

def test_wrong_and_foreign_tokens_are_refused_with_401(live_server, make_tenant):
    t, other = make_tenant("appa"), make_tenant("appb")
    p = app_phone(live_server, t)
    assert p.register("not a token")[0] == 401
    assert p.register(tokenformat.generate("sge", t.slug))[0] == 401  # well formed, unknown
    foreign = enrollment(other)
    assert p.register(foreign)[0] == 401  # another workspace's private token
    assert p.register(foreign, name="x")[0] == 401
    # And the other workspace's device token on this workspace's address.
    q = enrolled(live_server, other, token=foreign)
    p.token = q.token
    for status in (p.settings()[0], p.messages()[0], p.patch_device(q.device_id)[0]):
        assert status == 401
    assert p.open_events().status == 401
    assert p.register("", name="x")[0] == 401
    assert p.call("POST", "/device", {"name": "x"}, auth="Basic dXNlcjpwYXNz")[0] == 401


def test_an_enrollment_token_is_good_for_n_phones_until_it_expires_or_is_revoked(live_server, make_tenant):
    t = make_tenant("appn")
    token = enrollment(t, phones=2)
    assert enrolled(live_server, t, token=token).device_id
    assert enrolled(live_server, t, token=token, name="Second").device_id
    assert app_phone(live_server, t).register(token)[0] == 401  # used up
    # Stored only as a digest; audited.
    rows = sql(t, "SELECT token_hash, used, phones FROM mobile_enrollments")
    assert rows == [(tokenformat.digest(token), 2, 2)]
    assert len(audit_rows(live_server.platform, t.id, "device.enrolled")) == 2

    expired = enrollment(t)
    sql(t, "UPDATE mobile_enrollments SET expires_at = now() - interval '1 second' WHERE token_hash = %s",
        (tokenformat.digest(expired),), fetch=False)
    assert app_phone(live_server, t).register(expired)[0] == 401
    revoked = enrollment(t)
    with tenant_transaction(t.ref):
        row_id = sql_one("SELECT id FROM mobile_enrollments WHERE token_hash = %s", tokenformat.digest(revoked))
        service.revoke_enrollment(row_id)
    assert app_phone(live_server, t).register(revoked)[0] == 401


def basic(login: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{login}:{password}".encode()).decode()


def register_with(p: AppPhone, auth: str, name: str):
    status, _headers, body = p.call("POST", "/device", {"name": name, "simCards": [{"slotIndex": 0, "simNumber": 1}]},
                                    auth=auth)
    if status == 201:
        p.token, p.device_id = body["token"], body["id"]
    return status, body


def test_the_apps_login_and_one_time_codes_add_phones_only_as_far_as_the_token_allows(live_server, make_tenant):
    t, other = make_tenant("appl"), make_tenant("applx")
    token = enrollment(t, phones=3)
    first = app_phone(live_server, t)
    status, _h, joined = first.register(token)
    assert status == 201 and joined["login"] == f"device-{joined['id']}" and len(joined["password"]) == 20
    login = basic(joined["login"], joined["password"])

    # A second phone joins with the login and password: the same login back, no password.
    status, body = register_with(app_phone(live_server, t), login, "Second")
    assert status == 201 and body["login"] == joined["login"] and "password" not in body
    # The app asks for a one-time code; a third phone types it.
    status, headers, code = first.call("GET", "/user/code", auth=login)
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert re.fullmatch(r"\d{8}", code["code"]) and TIME_RE.match(code["validUntil"])
    third = app_phone(live_server, t)
    assert register_with(third, f"Code {code['code']}", "Third")[0] == 201
    assert register_with(app_phone(live_server, t), f"Code {code['code']}", "Again")[0] == 401  # one time
    # Three phones were what the token allowed: neither the login nor a new code adds a fourth.
    assert register_with(app_phone(live_server, t), login, "Fourth")[0] == 401
    assert first.call("GET", "/user/code", auth=login)[0] == 401
    assert sql(t, "SELECT used, phones FROM mobile_enrollments") == [(3, 3)]
    assert sql(t, "SELECT count(*) FROM devices WHERE removed_at IS NULL")[0][0] == 3
    ways = sorted(r["details"]["with"] for r in audit_rows(live_server.platform, t.id, "device.enrolled"))
    assert ways == ["login and password", "one-time code", "private token"]
    assert len(audit_rows(live_server.platform, t.id, "enrollment.code_created")) == 1

    # Wrong password, garbage, and the login on another workspace's address: 401, nothing made.
    assert register_with(app_phone(live_server, t), basic(joined["login"], "wrong"), "X")[0] == 401
    assert register_with(app_phone(live_server, t), "Basic %%%", "X")[0] == 401
    assert register_with(app_phone(live_server, t), "Code 1234", "X")[0] == 401
    assert register_with(app_phone(live_server, other), login, "X")[0] == 401
    assert app_phone(live_server, other).call("GET", "/user/code", auth=login)[0] == 401
    assert sql(other, "SELECT count(*) FROM devices")[0][0] == 0
    # The stored password is a bcrypt hash, the code a keyed digest: neither is readable back.
    stored = sql(t, "SELECT password_hash FROM mobile_logins")[0][0]
    assert stored.startswith("$2") and joined["password"] not in stored
    assert code["code"] not in str(sql(t, "SELECT code_hash FROM mobile_codes"))


def test_the_apps_password_changes_and_dies_with_its_token_or_its_phone(live_server, make_tenant):
    t = make_tenant("appw")
    api = api_client(live_server, t.slug)
    token = enrollment(t, phones=10)
    first = app_phone(live_server, t)
    _s, _h, joined = first.register(token)
    old = basic(joined["login"], joined["password"])
    status, _h, code = first.call("GET", "/user/code", auth=old)
    assert status == 200

    change = lambda current, new: first.call("PATCH", "/user/password",  # noqa: E731
                                             {"currentPassword": current, "newPassword": new})[0]
    assert change("wrong", "a new password here") == 401
    assert change(joined["password"], "short") == 400
    assert change(joined["password"], "a new password here") == 204
    assert register_with(app_phone(live_server, t), old, "Old password")[0] == 401
    assert register_with(app_phone(live_server, t), f"Code {code['code']}", "Old code")[0] == 401
    new = basic(joined["login"], "a new password here")
    second = app_phone(live_server, t)
    assert register_with(second, new, "New password")[0] == 201
    # A phone added with the login may change it too; a companion-paired device has no login.
    assert second.call("PATCH", "/user/password", {"currentPassword": "a new password here",
                                                   "newPassword": "the third password"})[0] == 204
    new = basic(joined["login"], "the third password")
    assert len(audit_rows(live_server.platform, t.id, "enrollment.password_changed")) == 2

    # Removing the phone the password was given to kills the login (and its codes).
    status, _h, code = first.call("GET", "/user/code", auth=new)
    assert status == 200
    assert api.delete(f"/api/v1/devices/{joined['id']}").status_code in (200, 204)
    assert register_with(app_phone(live_server, t), new, "After removal")[0] == 401
    assert register_with(app_phone(live_server, t), f"Code {code['code']}", "After removal")[0] == 401

    # Revoking the enrollment token kills the logins that came from it.
    token2 = enrollment(t, phones=10)
    third = app_phone(live_server, t)
    _s, _h, joined3 = third.register(token2)
    with tenant_transaction(t.ref):
        service.revoke_enrollment(sql_one("SELECT id FROM mobile_enrollments WHERE token_hash = %s",
                                          tokenformat.digest(token2)))
    assert register_with(app_phone(live_server, t), basic(joined3["login"], joined3["password"]), "X")[0] == 401


def test_a_phone_is_asked_to_send_its_received_sms_again_now_or_when_it_reconnects(live_server, make_tenant):
    t, other = make_tenant("appx"), make_tenant("appxo")
    api = api_client(live_server, t.slug)
    p = enrolled(live_server, t)
    p.patch_device()
    window = {"since": "2026-11-01T00:00:00Z", "until": "2026-11-02T12:00:00+02:00"}
    refresh = lambda device_id, body, client=api: client.post(  # noqa: E731
        f"/api/v1/devices/{device_id}/inbox-refresh", json=body)

    stream = p.open_events()
    try:
        wait_until(lambda: sql(t, "SELECT online FROM devices WHERE id = %s", (int(p.device_id),))[0][0])
        r = refresh(p.device_id, window)
        assert r.status_code == 202, r.text[:300]
        assert stream.next_event() == ("MessagesExportRequested",
                                       {"since": "2026-11-01T00:00:00Z", "until": "2026-11-02T10:00:00Z"})
    finally:
        stream.close()
    # Asked while the phone is away: told when it opens its stream again, once.
    assert refresh(p.device_id, {"since": "2026-11-05T00:00:00Z", "until": "2026-11-06T00:00:00Z"}).status_code == 202
    stream = p.open_events()
    try:
        assert stream.next_event() == ("MessagesExportRequested",
                                       {"since": "2026-11-05T00:00:00Z", "until": "2026-11-06T00:00:00Z"})
    finally:
        stream.close()
    assert sql(t, "SELECT count(*) FROM mobile_exports WHERE sent_at IS NULL")[0][0] == 0
    assert sql(t, "SELECT export_pending FROM mobile_devices")[0][0] is False
    assert len(audit_rows(live_server.platform, t.id, "device.inbox_refresh_requested")) == 2

    # Refused, and nothing recorded: a bad window, an old app, a companion phone, another workspace's id.
    for body in ({"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"},
                 {"since": "2026-01-01T00:00:00Z", "until": "2026-03-01T00:00:00Z"},
                 {"since": "yesterday", "until": None}, {"since": "2999-01-01T00:00:00Z", "until": "2999-01-02T00:00:00Z"}):
        r = refresh(p.device_id, body)
        assert r.status_code == 400 and r.headers["Content-Type"].startswith("application/problem+json"), r.text
    old = enrolled(live_server, t, version="1.66.0", name="Old")
    old.patch_device()
    r = refresh(old.device_id, window)
    assert r.status_code == 409 and "1.68" in r.json()["detail"]
    companion_id, _token = raw_device(live_server, t.slug, api=api)
    assert refresh(companion_id, window).status_code == 404
    assert refresh(p.device_id, window, api_client(live_server, other.slug)).status_code == 404
    assert sql(t, "SELECT count(*) FROM mobile_exports")[0][0] == 2


def sql_one(statement, *params):
    from core.db import app_db

    return app_db.execute_sql(statement, params).fetchone()[0]


def test_the_cli_prints_the_token_alone_on_its_last_line(platform, make_tenant, cli_env, live_server):
    t = make_tenant("appc")
    r = subprocess.run([sys.executable, "-m", "core.cli", "devices", "enrollment-token", "--tenant", t.slug,
                        "--name", "shop", "--phones", "3", "--expires-days", "2"], env=cli_env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip().splitlines()[-1]
    assert tokenformat.parse(token) == ("sge", t.slug)
    rows = sql(t, "SELECT name, phones, expires_at - created_at FROM mobile_enrollments")
    assert rows[0][:2] == ("shop", 3) and abs(rows[0][2] - dt.timedelta(days=2)) < dt.timedelta(minutes=1)
    assert enrolled(live_server, t, token=token).device_id
    bad = subprocess.run([sys.executable, "-m", "core.cli", "devices", "enrollment-token", "--tenant", t.slug,
                          "--phones", "0"], env=cli_env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "1 to" in bad.stderr
    assert sql(t, "SELECT count(*) FROM mobile_enrollments")[0][0] == 1


# -- one queue for both kinds of phone ------------------------------------------------------------

def test_messages_route_between_an_app_phone_and_a_companion_phone(live_server, make_tenant):
    t = make_tenant("appr")
    api = api_client(live_server, t.slug)
    p = enrolled(live_server, t)
    app_id = int(p.device_id)
    companion_id, companion_token = raw_device(live_server, t.slug, api)
    for d in (app_id, companion_id):
        unlimited(api, d)
    companion = device_client(live_server, t.slug, companion_token)
    assert fetch(companion).status_code == 200  # both online
    p.patch_device()

    to_app = submit(api, [phone(10)], device_id=app_id)
    to_companion = submit(api, [phone(11)], device_id=companion_id)
    assert [m["phoneNumbers"] for m in p.messages()[2]] == [[phone(10)]]
    r = fetch(companion)
    assert [m["to"] for m in r.json()["messages"]] == [phone(11)]

    # A retriable failure on the app phone: the work goes to the companion phone.
    either = submit(api, [phone(12)])
    offered = p.messages()[2]  # the app phone looks first: it takes it (and is offered its unacknowledged one)
    assert sorted(m["phoneNumbers"][0] for m in offered) == [phone(10), phone(12)]
    [mine] = [m for m in offered if m["phoneNumbers"] == [phone(12)]]
    assert p.report([{"id": mine["id"], "state": "Failed",
                      "recipients": [{"phoneNumber": phone(12), "state": "Failed", "error": "GENERIC_FAILURE"}]}])[0] == 204
    r = fetch(companion)
    assert [m["to"] for m in r.json()["messages"]] == [phone(12)]
    reported = companion.post("/api/device/v1/reports", json={"reports": [
        {"message_id": r.json()["messages"][0]["id"], "state": "delivered"}]})
    assert reported.status_code == 200
    rec = recipient_of(api, either["id"])
    assert rec["state"] == "delivered" and rec["device_id"] == companion_id
    assert recipient_of(api, to_app["id"])["device_id"] == app_id
    assert recipient_of(api, to_companion["id"])["device_id"] == companion_id


def test_a_settings_change_reaches_the_open_stream(live_server, make_tenant):
    t = make_tenant("appe")
    api = api_client(live_server, t.slug)
    p = enrolled(live_server, t)
    stream = p.open_events()
    try:
        r = api.patch(f"/api/v1/devices/{p.device_id}", json={"settings": {"limits": {"per_minute": 7}}})
        assert r.status_code == 200
        events = {stream.next_event(timeout=10)[0], stream.next_event(timeout=10)[0]}
        assert "SettingsUpdated" in events
    finally:
        stream.close()
    assert p.settings()[2]["messages"]["limit_period"] == "PerMinute"
    assert p.settings()[2]["messages"]["limit_value"] == 7


def test_a_stream_holds_no_handler_and_wakes_in_process(live_server, make_tenant):
    from addons.mobile import events

    t = make_tenant("appw")
    api = api_client(live_server, t.slug)
    p = enrolled(live_server, t)
    unlimited(api, int(p.device_id))
    streams = [p.open_events() for _ in range(2)]  # a second stream of the same phone ends the first
    try:
        key = f"{t.slug}:device:{p.device_id}"
        wait_until(lambda: key in events.STREAMS)
        with pytest.raises(ConnectionError):
            streams[0].next_frame(timeout=5)
        submit(api, [phone(20)])
        assert streams[1].next_event(timeout=10)[0] == "MessageEnqueued"
    finally:
        for s in streams:
            s.close()
    wait_until(lambda: key not in events.STREAMS, message="the hung-up stream is forgotten")




def test_a_keepalive_reaches_the_stream_as_an_sse_comment(live_server, make_tenant):
    """The timer's keepalive (written pre-framed, straight to the connection) arrives as one
    well-formed chunk holding the ``:keepalive`` comment, and the stream goes on after it."""
    from addons.mobile import events

    t = make_tenant("appk")
    api = api_client(live_server, t.slug)
    p = enrolled(live_server, t)
    unlimited(api, int(p.device_id))
    stream = p.open_events()
    try:
        key = f"{t.slug}:device:{p.device_id}"
        wait_until(lambda: key in events.STREAMS)
        for _ in range(2):
            live_server.loop.call_soon_threadsafe(events.STREAMS[key].keepalive)
            assert stream.next_frame(timeout=5) == (None, None, ":keepalive")
        submit(api, [phone(21)])
        assert stream.next_event(timeout=10)[0] == "MessageEnqueued"
    finally:
        stream.close()


# -- version awareness -----------------------------------------------------------------------------

def test_the_app_version_is_read_from_the_user_agent():
    assert service.app_version("me.capcom.smsgateway/1.68.0") == (1, 68, 0)
    assert service.app_version("me.capcom.smsgateway/1.66") == (1, 66, 0)
    assert service.app_version("okhttp/4.12") is None and service.app_version(None) is None
    assert service.knows_cancelling((1, 67, 0)) and not service.knows_cancelling((1, 66, 9))
    assert not service.knows_cancelling(None)


def held_message(live_server, t, version):
    api = api_client(live_server, t.slug)
    p = enrolled(live_server, t, version=version)
    unlimited(api, int(p.device_id))
    sent = submit(api, [phone(30)])
    [m] = p.messages()[2]
    assert p.report([{"id": m["id"], "state": "Processed", "recipients": []}])[0] == 204
    return api, p, sent, m


def test_cancel_is_refused_with_a_reason_for_a_message_an_old_app_holds(live_server, make_tenant):
    t = make_tenant("appo")
    api, p, sent, m = held_message(live_server, t, "1.66.2")
    r = api.post(f"/api/v1/messages/{sent['id']}/cancel")
    assert r.status_code == 409, r.text
    assert "1.66.2" in r.json()["detail"] and "1.67" in r.json()["detail"]
    assert recipient_of(api, sent["id"])["state"] == "processed"
    assert p.messages()[2] == []  # the old app is never sent a state it does not know


def test_a_new_app_is_asked_to_cancel_and_its_report_ends_the_message(live_server, make_tenant):
    t = make_tenant("appn")
    api, p, sent, m = held_message(live_server, t, "1.68.0")
    stream = p.open_events()
    try:
        r = api.post(f"/api/v1/messages/{sent['id']}/cancel")
        assert r.status_code == 200, r.text
        assert r.json()["cancelling"] == 1 and r.json()["cancelled"] == 0
        seen = {}
        for _ in range(3):
            event, data = stream.next_event(timeout=10)
            seen[event] = data
            if "MessageCancelled" in seen:
                break
        assert seen["MessageCancelled"] == {"messageId": m["id"]}
    finally:
        stream.close()
    [again] = p.messages()[2]
    assert again["id"] == m["id"] and again["state"] == "Cancelling"
    assert p.report([{"id": m["id"], "state": "Cancelled", "recipients": []}])[0] == 204
    rec = recipient_of(api, sent["id"])
    assert rec["state"] == "failed" and rec["error_code"] == "CANCELLED"
    assert p.messages()[2] == []
