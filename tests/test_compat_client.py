"""The SMS Gateway for Android third-party API (/3rdparty/v1), driven by *their* Python client.

Every call goes through the published ``android-sms-gateway`` client (requests
flavour) against the live server, with only the base URL changed and one of our
API tokens (or an account's email and password) as credentials. Phones are real
simulated phones running the companion code. Tenant hosts are reached by giving
the client a requests session that sends the tenant's Host header (``*.localhost``
does not resolve here); the base domain (``localhost``) is reached by URL alone.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pytest
import requests
from android_sms_gateway import client as asg_client
from android_sms_gateway import domain, errors, http as asg_http
from android_sms_gateway.enums import HealthStatus, MessagePriority, ProcessState, WebhookEvent

from android_companion.backends.simulator import SimulatorBackend
from core.db import tenant_transaction
from core.identity import create_api_token, set_password
from core.throttle import account_key, account_source_key
from core.users import User
from tests.support.identity import OWNER_PASSWORD, admin_sql, audit_rows, fresh_ip, owner_email
from tests.support.messaging import wait_until
from tests.support.phones import api_client, api_token, pair_phone, start_phone

ALL_SCOPES = ["messages:send", "messages:read", "devices:read", "devices:write", "webhooks:read",
              "webhooks:write", "settings:write"]
TO = "+14155550123"


# -- helpers ------------------------------------------------------------------------------

def compat(live_server, slug=None, *, token=None, login=None, password=None, ip=None):
    """Their APIClient against our server: on ``slug``'s host, or on the base domain when ``slug`` is None."""
    session = requests.Session()
    if ip:
        session.headers["X-Real-IP"] = ip
    if slug is None:
        base_url = f"http://{live_server.platform.settings.base_domain}:{live_server.port}/3rdparty/v1"
    else:
        session.headers["Host"] = f"{slug}.{live_server.platform.settings.base_domain}:{live_server.port}"
        base_url = f"{live_server.url}/3rdparty/v1"
    return asg_client.APIClient(login, password if login else token, base_url=base_url,
                                http=asg_http.RequestsHttpClient(session))


def raw(live_server, slug, token=None):
    """A plain requests session on the tenant's host, for what their client hides (headers, bodies)."""
    c = live_server.client(slug)
    if token:
        c.headers["Authorization"] = f"Bearer {token}"
    return c


def owner_token(tenant, scopes=None) -> str:
    """An API token created by the tenant's owner (so it can be exchanged for access tokens)."""
    with tenant_transaction(tenant.ref):
        owner = User.by_email(owner_email(tenant))
        _, token = create_api_token(tenant.slug, f"compat {uuid.uuid4().hex[:6]}", scopes or ALL_SCOPES, owner.id)
    return token


def text(body: str) -> domain.TextMessage:
    return domain.TextMessage(text=body)


def wait_state(api, message_id, state: ProcessState, timeout=15.0):
    return wait_until(lambda: (s := api.get_state(message_id)).state == state and s, timeout,
                      what=f"message {message_id} to be {state.value}")


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("cp")


@pytest.fixture
def phone(live_server, tenant, tmp_path):
    backend = SimulatorBackend(delivery_delay=0.05, fail_numbers={"+14155550166": "RESULT_ERROR_NULL_PDU"})
    companion = start_phone(live_server, tenant.slug, tmp_path / "phone", backend=backend, wait=2)
    yield companion, backend
    companion.stop()


def device_ids(live_server, slug) -> list[int]:
    return [d["id"] for d in api_client(live_server, slug).get("/api/v1/devices").json()["devices"]]


# -- messages -------------------------------------------------------------------------------

def test_send_with_their_client_and_follow_it_to_delivered(live_server, tenant, phone):
    _, backend = phone
    api = compat(live_server, tenant.slug, token=api_token(tenant.slug))
    state = api.send(domain.Message(phone_numbers=[TO], text_message=text("Hello from their client"),
                                    id="order-1001", priority=MessagePriority.MAXIMUM, with_delivery_report=True))
    assert state.id == "order-1001"  # the client's own id is kept
    assert state.state in (ProcessState.Pending, ProcessState.Processed)
    assert [r.phone_number for r in state.recipients] == [TO]
    assert state.is_encrypted is False and state.is_hashed is False
    assert state.created_at is not None and abs((dt.datetime.now(dt.timezone.utc) - state.created_at).total_seconds()) < 60

    done = wait_state(api, "order-1001", ProcessState.Delivered)
    assert done.recipients[0].state == ProcessState.Delivered and done.recipients[0].error is None
    assert done.device_id == str(device_ids(live_server, tenant.slug)[0])
    assert {"Pending", "Processed", "Sent", "Delivered"} <= set(done.states)
    times = [dt.datetime.fromisoformat(done.states[k]) for k in ("Pending", "Processed", "Sent", "Delivered")]
    assert times == sorted(times)
    assert [s["to"] for s in backend.sent] == [TO]
    assert backend.sent[0]["text"] == "Hello from their client"

    # The same message in our native API: priority 127 is clamped to our maximum, the id is the reference.
    native = api_client(live_server, tenant.slug).get("/api/v1/messages", params={"reference": "order-1001"}).json()
    assert native["messages"][0]["priority"] == 100
    assert native["messages"][0]["state"] == "delivered"
    # ... and it can be read by our numeric id through the compat API too.
    assert api.get_state(str(native["messages"][0]["id"])).id == "order-1001"

    # A delivered message cannot be cancelled (requests flavour: raise_for_status on DELETE).
    with pytest.raises(requests.HTTPError) as exc:
        api.cancel_message("order-1001")
    assert exc.value.response.status_code == 409
    assert "Delivered" in exc.value.response.json()["message"]

    # The same id twice is refused, not sent twice.
    with pytest.raises(errors.APIError) as dup:
        api.send(domain.Message(phone_numbers=[TO], text_message=text("again"), id="order-1001"))
    assert dup.value.status_code == 409
    assert len(backend.sent) == 1


def test_failed_recipient_reports_failed_with_the_phones_error(live_server, tenant, phone):
    api = compat(live_server, tenant.slug, token=api_token(tenant.slug))
    state = api.send(domain.Message(phone_numbers=["+14155550166"], text_message=text("will fail")))
    done = wait_state(api, state.id, ProcessState.Failed)
    assert done.recipients[0].state == ProcessState.Failed
    assert done.recipients[0].error == "RESULT_ERROR_NULL_PDU"
    assert "Failed" in done.states


def test_base_domain_with_a_token_legacy_body_and_skip_validation(live_server, tenant):
    token = api_token(tenant.slug)
    api = compat(live_server, None, token=token)  # only the base URL changed: http://localhost:<port>/3rdparty/v1
    state = api.send(domain.Message(phone_numbers=["(415) 555-0124"], text_message=text("from the main domain")))
    assert [r.phone_number for r in state.recipients] == ["+14155550124"]  # normalised with the tenant's region
    assert int(state.id) > 0

    # Their legacy body shape: {"message": ..., "phoneNumbers": [...]}, sent as plain JSON.
    r = requests.post(f"http://localhost:{live_server.port}/3rdparty/v1/messages", timeout=30,
                      headers={"Authorization": f"Bearer {token}"},
                      json={"message": "legacy form", "phoneNumbers": [TO], "ttl": 3600})
    assert r.status_code == 202, r.text
    assert r.json()["state"] == "Pending"
    native = api_client(live_server, tenant.slug).get(f"/api/v1/messages/{r.json()['id']}").json()
    assert native["text"] == "legacy form" and native["valid_until"] is not None

    # A number our validator refuses: 400 by default, accepted as typed with skipPhoneValidation.
    bad = domain.Message(phone_numbers=["+999 1234 5678"], text_message=text("odd number"))
    with pytest.raises(errors.BadRequestError) as exc:
        api.send(bad)
    assert "phoneNumbers[0]" in exc.value.response["message"]
    state = api.send(bad, skip_phone_validation=True)
    assert [r.phone_number for r in state.recipients] == ["+99912345678"]

    # deviceActiveWithin: no phone was seen lately, so nothing is sent, and it says why.
    with pytest.raises(errors.BadRequestError) as exc:
        api.send(domain.Message(phone_numbers=[TO], text_message=text("needs a phone")), device_active_within=12)
    assert "active within the last 12 hours" in exc.value.response["message"]


def test_what_is_not_supported_is_refused_with_a_clear_400(live_server, tenant):
    api = compat(live_server, tenant.slug, token=api_token(tenant.slug))
    cases = [
        (domain.Message(phone_numbers=[TO], text_message=text("x"), is_encrypted=True), "Encrypted"),
        (domain.Message(phone_numbers=[TO], data_message=domain.DataMessage.with_bytes(b"\x01\x02", 53739)),
         "Data SMS"),
        (domain.Message(phone_numbers=[TO], mms_message=domain.MmsMessage(text="pic")), "MMS"),
        (domain.Message(phone_numbers=[], text_message=text("x")), "phoneNumbers"),
        (domain.Message(phone_numbers=[TO], text_message=text("x"), priority=200), "priority"),
    ]
    for message, words in cases:
        with pytest.raises(errors.BadRequestError) as exc:
            api.send(message)
        body = exc.value.response
        assert exc.value.status_code == 400
        assert words in body["message"], body
        assert body["code"] == 400 and body["data"]["code"]  # their ErrorResponse shape, ours under data
    # Nothing was stored by any of them.
    assert api_client(live_server, tenant.slug).get("/api/v1/messages").json()["messages"] == []

    # Problem details for callers that ask for them.
    r = raw(live_server, tenant.slug, api_token(tenant.slug)).post(
        "/3rdparty/v1/messages", json={"phoneNumbers": [TO], "isEncrypted": True, "textMessage": {"text": "x"}},
        headers={"Accept": "application/problem+json"})
    assert r.status_code == 400 and r.headers["Content-Type"] == "application/problem+json"
    assert r.json()["type"].endswith("/validation-failed") and "Encrypted" in r.json()["detail"]

    # Parts of their API we do not offer say so (501), once authenticated.
    for method in (api.get_settings, api.get_logs):
        with pytest.raises(errors.APIError) as exc:
            method()
        assert exc.value.status_code == 501 and "not supported" in exc.value.response["message"]
    with pytest.raises(errors.APIError) as exc:
        api.refresh_inbox(domain.InboxRefreshRequest(since=dt.datetime(2026, 1, 1), until=dt.datetime(2026, 1, 2)))
    assert exc.value.status_code == 501
    # No credentials: 401, in their shape.
    r = raw(live_server, tenant.slug).get("/3rdparty/v1/messages")
    assert r.status_code == 401 and r.json()["code"] == 401


def test_list_messages_with_pagination_filters_and_total(live_server, tenant):
    api = compat(live_server, tenant.slug, token=api_token(tenant.slug))
    sent = [api.send(domain.Message(phone_numbers=[TO], text_message=text(f"page {i}"), id=f"p-{i}")).id
            for i in range(5)]
    pages = [api.get_messages(pagination=domain.QueryPagination(limit=2, offset=o)) for o in (0, 2, 4)]
    assert [[m.id for m in p] for p in pages] == [["p-4", "p-3"], ["p-2", "p-1"], ["p-0"]]
    oldest_first = api.get_messages(pagination=domain.QueryPagination(limit=3), sort="created_at")
    assert [m.id for m in oldest_first] == sent[:3]
    assert len(api.get_messages(query=domain.MessagesQueryFilter(state="Pending"))) == 5
    assert api.get_messages(query=domain.MessagesQueryFilter(state="Delivered")) == []
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert api.get_messages(query=domain.MessagesQueryFilter(from_=future)) == []
    assert len(api.get_messages(query=domain.MessagesQueryFilter(to=future))) == 5
    r = raw(live_server, tenant.slug, api_token(tenant.slug)).get("/3rdparty/v1/messages", params={"limit": 1})
    assert r.headers["X-Total-Count"] == "5" and len(r.json()) == 1
    with pytest.raises(errors.BadRequestError):
        api.get_messages(query=domain.MessagesQueryFilter(state="Lost"))


def test_cancel_a_pending_message(live_server, tenant):
    api = compat(live_server, tenant.slug, token=api_token(tenant.slug))
    state = api.send(domain.Message(phone_numbers=[TO, "+14155550125"], text_message=text("cancel me")))
    assert state.state == ProcessState.Pending  # no phone is paired: it waits
    api.cancel_message(state.id)
    after = api.get_state(state.id)
    assert after.state == ProcessState.Cancelled
    assert {r.state for r in after.recipients} == {ProcessState.Cancelled}
    assert "Cancelled" in after.states
    api.cancel_message(state.id)  # cancelling again is harmless
    with pytest.raises(requests.HTTPError) as exc:
        api.cancel_message("no-such-message")
    assert exc.value.response.status_code == 404


# -- inbox, devices, webhooks --------------------------------------------------------------------

def test_inbox_lists_received_sms(live_server, tenant, phone):
    _, backend = phone
    api = compat(live_server, tenant.slug, token=api_token(tenant.slug))
    backend.inject_inbound("+14155550199", "First reply", sim_slot=1)
    backend.inject_inbound("+14155550198", "Second reply", sim_slot=2)
    got = wait_until(lambda: len(m := api.list_inbox_messages()) == 2 and m, what="two inbound SMS")
    newest, oldest = got
    assert (newest.sender, newest.content_preview, newest.sim_number) == ("+14155550198", "Second reply", 2)
    assert (oldest.sender, oldest.content_preview, oldest.sim_number) == ("+14155550199", "First reply", 1)
    assert newest.message_type == "SMS"
    assert oldest.recipient == "+15550000001" and newest.recipient == "+15550000002"  # the phone's SIM numbers
    page = api.list_inbox_messages(pagination=domain.QueryPagination(limit=1, offset=1))
    assert [m.id for m in page] == [oldest.id]
    device = str(device_ids(live_server, tenant.slug)[0])
    assert len(api.list_inbox_messages(inbox_filter=domain.InboxQueryFilter(device_id=device))) == 2
    assert api.list_inbox_messages(inbox_filter=domain.InboxQueryFilter(message_type="MMS")) == []
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=5)
    assert api.list_inbox_messages(inbox_filter=domain.InboxQueryFilter(from_=future)) == []


def test_list_and_remove_devices(live_server, tenant, tmp_path):
    pair_phone(live_server, tenant.slug, tmp_path / "a", name="Front desk")
    pair_phone(live_server, tenant.slug, tmp_path / "b", name="Warehouse")
    api = compat(live_server, tenant.slug, token=api_token(tenant.slug))
    devices = api.list_devices()
    assert sorted(d.name for d in devices) == ["Front desk", "Warehouse"]
    assert all(d.created_at and d.deleted_at is None for d in devices)
    gone = next(d for d in devices if d.name == "Warehouse")
    api.remove_device(gone.id)
    assert [d.name for d in api.list_devices()] == ["Front desk"]
    assert [d["name"] for d in api_client(live_server, tenant.slug).get("/api/v1/devices").json()["devices"]] == [
        "Front desk"]
    with pytest.raises(requests.HTTPError) as exc:
        api.remove_device(gone.id)
    assert exc.value.response.status_code == 404
    # A token without devices:write may list but not remove.
    reader = compat(live_server, tenant.slug, token=api_token(tenant.slug, ["devices:read"]))
    assert len(reader.list_devices()) == 1
    with pytest.raises(requests.HTTPError) as exc:
        reader.remove_device(devices[0].id)
    assert exc.value.response.status_code == 403


def test_create_list_replace_and_delete_webhooks(live_server, tenant, monkeypatch):
    monkeypatch.setenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", "1")  # the URLs are on loopback; nothing is sent here
    token = api_token(tenant.slug)
    api = compat(live_server, tenant.slug, token=token)
    made = api.create_webhook(domain.Webhook(id=None, url="http://127.0.0.1:9/received",
                                             event=WebhookEvent.SMS_RECEIVED))
    assert made.id and made.event == WebhookEvent.SMS_RECEIVED and made.device_id is None
    mine = api.create_webhook(domain.Webhook(id="crm-sent", url="http://127.0.0.1:9/sent", event=WebhookEvent.SMS_SENT))
    assert mine.id == "crm-sent"
    assert sorted((w.id, w.event) for w in api.get_webhooks()) == sorted(
        [(made.id, WebhookEvent.SMS_RECEIVED), ("crm-sent", WebhookEvent.SMS_SENT)])
    # The same id again replaces that webhook (as in the original API).
    api.create_webhook(domain.Webhook(id="crm-sent", url="http://127.0.0.1:9/delivered",
                                      event=WebhookEvent.SMS_DELIVERED))
    hooks = {w.id: w for w in api.get_webhooks()}
    assert len(hooks) == 2 and hooks["crm-sent"].url == "http://127.0.0.1:9/delivered"
    assert hooks["crm-sent"].event == WebhookEvent.SMS_DELIVERED
    # They are ordinary endpoints of ours, signed the Standard Webhooks way.
    native = api_client(live_server, tenant.slug).get("/api/v1/webhooks").json()["webhooks"]
    assert sorted(tuple(w["events"]) for w in native) == [("sms:delivered",), ("sms:received",)]
    created = raw(live_server, tenant.slug, token).post(
        "/3rdparty/v1/webhooks", json={"url": "http://127.0.0.1:9/ping", "event": "system:ping", "id": None})
    assert created.status_code == 201 and created.json()["secret"].startswith("whsec_")
    # Events their server has and we do not: 400 saying so.
    for event in (WebhookEvent.MMS_RECEIVED, WebhookEvent.SMS_DATA_RECEIVED, WebhookEvent.APP_STARTED,
                  WebhookEvent.SMS_BATCH_RECEIVED):
        with pytest.raises(errors.BadRequestError) as exc:
            api.create_webhook(domain.Webhook(id=None, url="http://127.0.0.1:9/x", event=event))
        assert "not supported" in exc.value.response["message"]
    api.delete_webhook("crm-sent")
    api.delete_webhook(created.json()["id"])
    assert [w.id for w in api.get_webhooks()] == [made.id]
    with pytest.raises(requests.HTTPError) as exc:
        api.delete_webhook("crm-sent")
    assert exc.value.response.status_code == 404
    # Without the private-address allowance, loopback targets are refused (SSRF guard), in their shape.
    monkeypatch.delenv("SMSGW_WEBHOOK_ALLOW_PRIVATE")
    with pytest.raises(errors.BadRequestError) as exc:
        api.create_webhook(domain.Webhook(id=None, url="http://127.0.0.1:9/x", event=WebhookEvent.SMS_SENT))
    assert "loopback" in exc.value.response["message"]


# -- health -----------------------------------------------------------------------------------

def test_health_checks(live_server, tenant):
    for api in (compat(live_server, None, token="not-even-a-token"),
                compat(live_server, tenant.slug, login="nobody@example.com", password="wrong")):
        for check in (api.health_check, api.readiness_check, api.startup_check):
            health = check()
            assert health.status == HealthStatus.PASS
            assert health.version and isinstance(health.release_id, int)
            assert health.checks["database"].status == HealthStatus.PASS
            assert health.checks["database"].observed_unit == "ms"
            assert health.checks["migrations"].observed_value == 0
        live = api.liveness_check()
        assert live.status == HealthStatus.PASS and live.checks["process"].status == HealthStatus.PASS


# -- tokens -----------------------------------------------------------------------------------

def test_generate_use_refresh_and_revoke_access_tokens(live_server, tenant):
    basic = compat(live_server, tenant.slug, login=owner_email(tenant), password=OWNER_PASSWORD, ip=fresh_ip())
    before = dt.datetime.now(dt.timezone.utc)
    pair = basic.generate_token(domain.TokenRequest(scopes=["messages:send", "messages:read"], ttl=3600))
    assert pair.token_type == "Bearer" and pair.id and pair.refresh_token.startswith("sgr_")
    expires = dt.datetime.fromisoformat(pair.expires_at)
    assert before + dt.timedelta(seconds=890) <= expires <= before + dt.timedelta(seconds=905)  # capped at 900 s

    # The access token works on the tenant host and on the base domain, within its scopes only.
    for jwt_api in (compat(live_server, tenant.slug, token=pair.access_token),
                    compat(live_server, None, token=pair.access_token)):
        jwt_api.send(domain.Message(phone_numbers=[TO], text_message=text("with a JWT")))
        assert len(jwt_api.get_messages()) >= 1
        with pytest.raises(errors.ForbiddenError):
            jwt_api.list_devices()
        with pytest.raises(errors.ForbiddenError):  # it cannot mint broader (or any) tokens
            jwt_api.generate_token(domain.TokenRequest(scopes=["messages:send"]))
    # The scope claim narrows it in our native API too.
    native = raw(live_server, tenant.slug, pair.access_token)
    assert native.get("/api/v1/devices").status_code == 403
    assert native.get("/api/v1/messages").status_code == 200

    # Refresh: a new pair with the same scopes; the spent refresh token no longer works.
    again = basic.refresh_token(pair.refresh_token)
    assert again.id != pair.id and again.refresh_token != pair.refresh_token
    refreshed = compat(live_server, tenant.slug, token=again.access_token)
    assert len(refreshed.get_messages()) >= 1
    with pytest.raises(errors.ForbiddenError):
        refreshed.list_devices()
    with pytest.raises(errors.UnauthorizedError):
        basic.refresh_token(pair.refresh_token)  # replayed: refused, and the family is revoked
    with pytest.raises(errors.UnauthorizedError):
        basic.refresh_token(again.refresh_token)

    # Revocation by jti: the token stops working at once.
    third = basic.generate_token(domain.TokenRequest(scopes=["all:any"], ttl=60))
    assert dt.datetime.fromisoformat(third.expires_at) <= dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=65)
    full = compat(live_server, tenant.slug, token=third.access_token)
    assert full.list_devices() == []  # all:any: everything the owner may do
    basic.revoke_token(third.id)
    with pytest.raises(errors.UnauthorizedError) as exc:
        full.list_devices()
    assert "revoked" in exc.value.response["message"]
    assert raw(live_server, tenant.slug, third.access_token).get("/api/v1/me").status_code == 401
    with pytest.raises(errors.UnauthorizedError):  # its refresh family went with it
        basic.refresh_token(third.refresh_token)
    assert audit_rows(live_server.platform, tenant.id, "token.revoked")

    # Unknown scopes and scopes the caller lacks are refused.
    with pytest.raises(errors.BadRequestError):
        basic.generate_token(domain.TokenRequest(scopes=["messages:teleport"]))
    reader = compat(live_server, tenant.slug, token=owner_token(tenant, ["messages:read"]))
    with pytest.raises(errors.ForbiddenError):
        reader.generate_token(domain.TokenRequest(scopes=["messages:send"]))
    # An API token can be exchanged for an access token within its own scopes, which acts as the
    # token (not as the person who created it) ...
    from_token = reader.generate_token(domain.TokenRequest(scopes=["messages:list"]))
    assert len(compat(live_server, None, token=from_token.access_token).get_messages()) >= 1
    me = raw(live_server, tenant.slug, from_token.access_token).get("/api/v1/me").json()
    assert me["kind"] == "token" and me["permissions"] == ["messages:read"] and me["email"] is None
    # ... so a token whose creator is gone can be exchanged too, within its scopes.
    ownerless = compat(live_server, tenant.slug, token=api_token(tenant.slug)).generate_token(
        domain.TokenRequest(scopes=["messages:send"]))
    me = raw(live_server, tenant.slug, ownerless.access_token).get("/api/v1/me").json()
    assert me["kind"] == "token" and me["permissions"] == ["messages:send"]


# -- Basic auth ----------------------------------------------------------------------------------

def test_basic_auth_with_email_and_password_on_the_tenant_host(live_server, tenant):
    platform = live_server.platform
    ip = fresh_ip()
    api = compat(live_server, tenant.slug, login=owner_email(tenant), password=OWNER_PASSWORD, ip=ip)
    state = api.send(domain.Message(phone_numbers=[TO], text_message=text("basic auth")))
    for _ in range(4):
        assert api.get_state(state.id).id == state.id
    # Five calls, one password check: the success is cached briefly (the audit trail shows one sign-in).
    assert len(audit_rows(platform, tenant.id, "login.success")) == 1

    # On the base domain Basic auth cannot name the workspace: 401 saying what to do.
    with pytest.raises(errors.UnauthorizedError) as exc:
        compat(live_server, None, login=owner_email(tenant), password=OWNER_PASSWORD).get_messages()
    assert "workspace" in exc.value.response["message"] and tenant.slug not in exc.value.response["message"]

    # Wrong password: 401 (same answer as an unknown account).
    for login in (owner_email(tenant), "nobody@example.com"):
        with pytest.raises(errors.UnauthorizedError) as exc:
            compat(live_server, tenant.slug, login=login, password="not the password", ip=ip).get_messages()
        assert exc.value.response["message"] == "The email or password is not right."

    # A changed password ends the cached success at once.
    with tenant_transaction(tenant.ref):
        set_password(User.by_email(owner_email(tenant)), "a brand new long password", platform.pepper, 4)
    with pytest.raises(errors.UnauthorizedError):
        api.get_state(state.id)
    fresh = compat(live_server, tenant.slug, login=owner_email(tenant), password="a brand new long password", ip=ip)
    assert fresh.get_state(state.id).id == state.id


def test_basic_auth_failures_are_throttled(live_server, tenant):
    email, ip = owner_email(tenant), fresh_ip()
    wrong = compat(live_server, tenant.slug, login=email, password="guess", ip=ip)
    timings = []
    for _ in range(4):
        start = time.monotonic()
        with pytest.raises(errors.UnauthorizedError):
            wrong.list_devices()
        timings.append(time.monotonic() - start)
    # From the third recent failure on, answers are delayed (0.25 s, doubling): guessing gets slow.
    assert timings[3] >= 0.2, timings
    key = account_key(tenant.slug, email)
    assert admin_sql(live_server.platform, "SELECT count(*) FROM public.login_failure WHERE key = %s", (key,),
                     fetch=True)[0][0] == 4
    assert len(audit_rows(live_server.platform, tenant.id, "login.failure")) == 4
    # Past the hourly budget for this account from this address, even the right password is refused there
    # (429) until the hour passes; from an address that did not fail, the right password works.
    from_here = account_source_key(key, ip)
    admin_sql(live_server.platform, "INSERT INTO public.login_failure (key) SELECT %s FROM generate_series(1, 100)",
              (from_here,))
    right_here = compat(live_server, tenant.slug, login=email, password=OWNER_PASSWORD, ip=ip)
    with pytest.raises(errors.APIError) as exc:
        right_here.list_devices()
    assert exc.value.status_code == 429
    assert "Too many" in exc.value.response["message"]
    assert compat(live_server, tenant.slug, login=email, password=OWNER_PASSWORD, ip=fresh_ip()).list_devices() == []
    admin_sql(live_server.platform, "DELETE FROM public.login_failure WHERE key = %s", (from_here,))
    assert right_here.list_devices() == []


# -- isolation ---------------------------------------------------------------------------------

def test_another_tenants_token_gets_404_for_our_message_ids(live_server, make_tenant):
    a, b = make_tenant("ca"), make_tenant("cb")
    token_a, token_b = api_token(a.slug), api_token(b.slug)
    api_a = compat(live_server, a.slug, token=token_a)
    mine = api_a.send(domain.Message(phone_numbers=[TO], text_message=text("secret"), id="shared-id"))
    numeric = api_a.send(domain.Message(phone_numbers=[TO], text_message=text("also secret")))
    for api_b in (compat(live_server, b.slug, token=token_b), compat(live_server, None, token=token_b)):
        for message_id in (mine.id, numeric.id):
            with pytest.raises(errors.NotFoundError):
                api_b.get_state(message_id)
            with pytest.raises(requests.HTTPError) as exc:
                api_b.cancel_message(message_id)
            assert exc.value.response.status_code == 404
        assert api_b.get_messages() == []
    # B may use the same client id for its own message: ids are per workspace.
    assert compat(live_server, b.slug, token=token_b).send(
        domain.Message(phone_numbers=[TO], text_message=text("b's"), id="shared-id")).id == "shared-id"
    assert api_a.get_state("shared-id").state == ProcessState.Pending
    # B's token on A's host is refused outright.
    with pytest.raises(errors.UnauthorizedError):
        compat(live_server, a.slug, token=token_b).get_state(mine.id)


# -- their webhook envelope ---------------------------------------------------------------------

class Receiver:
    """Records POSTs on 127.0.0.1 (the only address tests send to) and answers 200."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_compat_webhook_delivers_their_envelope_signed_our_way(live_server, tenant, phone, monkeypatch):
    from standardwebhooks.webhooks import Webhook

    from addons.webhooks import delivery, service
    from core.db import current_tenant

    monkeypatch.setenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", "1")
    # Deliveries are attempted below with the addon's own attempt(), as the per-minute sweeper
    # does; the task the recording enqueued waits for a consumer that tests do not run.
    _, backend = phone
    receiver = Receiver()
    try:
        r = raw(live_server, tenant.slug, api_token(tenant.slug)).post(
            "/3rdparty/v1/webhooks", json={"id": "inbox-hook", "url": receiver.url, "event": "sms:received"})
        assert r.status_code == 201, r.text
        secret = r.json()["secret"]
        backend.inject_inbound("+14155550199", "Hello gateway", sim_slot=1)

        def deliver_due():
            token = current_tenant.set(tenant.ref)
            try:
                from core.db import tenant_transaction

                with tenant_transaction():
                    due = service.due()
                for delivery_id in due:
                    delivery.attempt(delivery_id)
            finally:
                current_tenant.reset(token)
            return receiver.requests

        wait_until(deliver_due, timeout=30, what="the sms:received webhook")
    finally:
        receiver.close()
    (headers, body), = receiver.requests
    envelope = Webhook(secret).verify(body, headers)
    assert envelope["event"] == "sms:received" and envelope["webhookId"] == "inbox-hook"
    assert envelope["id"] == headers["webhook-id"]
    assert envelope["deviceId"] == str(device_ids(live_server, tenant.slug)[0])
    payload = envelope["payload"]
    assert (payload["message"], payload["phoneNumber"], payload["simNumber"]) == ("Hello gateway", "+14155550199", 1)
    assert dt.datetime.fromisoformat(payload["receivedAt"])
    inbox = compat(live_server, tenant.slug, token=api_token(tenant.slug)).list_inbox_messages()
    assert payload["messageId"] == inbox[0].id  # the same id GET /inbox shows


def test_hostile_input_never_gives_500(live_server, tenant):
    token = api_token(tenant.slug)
    c = raw(live_server, tenant.slug, token)
    bodies = [
        {"phoneNumbers": [TO], "textMessage": {"text": "nul \u0000 inside"}},
        {"phoneNumbers": [TO], "textMessage": {"text": "x"}, "id": "a\u0000b"},
        {"phoneNumbers": [12345], "textMessage": {"text": "x"}},
        {"phoneNumbers": TO, "textMessage": "x"},
        {"phoneNumbers": [TO], "textMessage": {"text": "x"}, "priority": 1.5, "simNumber": True},
        {"phoneNumbers": [TO], "textMessage": {"text": "x"}, "ttl": 10**30},
        {"phoneNumbers": [TO], "textMessage": {"text": "x"}, "validUntil": "99999-01-01T00:00:00Z"},
        {"phoneNumbers": [TO], "textMessage": {"text": "x"}, "deviceId": {"id": 1}},
        {"phoneNumbers": [TO], "textMessage": {"text": "x"}, "deviceId": "١٢"},
    ]
    for body in bodies:
        r = c.post("/3rdparty/v1/messages", json=body)
        assert r.status_code == 400, (body, r.status_code, r.text)
    r = c.post("/3rdparty/v1/messages", data=b'{"phoneNumbers": ["+14155550123"], "textMessage": {"text": "\\ud800"}}',
               headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    for path in ("/3rdparty/v1/messages/%00", "/3rdparty/v1/messages/" + "9" * 40, "/3rdparty/v1/messages/%E2%80%8B",
                 "/3rdparty/v1/messages?limit=" + "9" * 5000, "/3rdparty/v1/messages?offset=-1",
                 "/3rdparty/v1/messages?from=yesterday", "/3rdparty/v1/inbox?deviceId=phone-1",
                 "/3rdparty/v1/inbox?type=FAX", "/3rdparty/v1/messages?state=Lost%00"):
        r = c.get(path)
        assert r.status_code in (400, 404), (path, r.status_code, r.text)
    assert c.post("/3rdparty/v1/messages?deviceActiveWithin=" + "9" * 5000,
                  json={"phoneNumbers": [TO], "textMessage": {"text": "x"}}).status_code == 400
    for path in ("/3rdparty/v1/webhooks/%00", "/3rdparty/v1/auth/token/%00", "/3rdparty/v1/devices/%00",
                 "/3rdparty/v1/messages/%00"):
        assert c.delete(path).status_code == 404, path
    for body in ({"url": "http://x", "event": ["sms:sent"]}, {"url": 5, "event": "sms:sent"}, {"event": None},
                 {"url": "http://127.0.0.1/\u0000", "event": "sms:sent"}):
        r = c.post("/3rdparty/v1/webhooks", json=body)
        assert r.status_code == 400, (body, r.status_code, r.text)
    for body in ({"scopes": "messages:send"}, {"scopes": [None]}, {"scopes": ["messages:send"], "ttl": -5},
                 {"scopes": ["messages:send"], "ttl": "long"}, {}):
        r = c.post("/3rdparty/v1/auth/token", json=body)
        assert r.status_code in (400, 403), (body, r.status_code, r.text)
    import base64

    for credential in (b"owner\x00@x:pw", b"no-colon", b"\xff\xfe:pw", b"a@b.c:\x00"):
        r = raw(live_server, tenant.slug).get("/3rdparty/v1/messages", headers={
            "Authorization": "Basic " + base64.b64encode(credential).decode()})
        assert r.status_code == 401, (credential, r.status_code, r.text)
    r = raw(live_server, tenant.slug).get("/3rdparty/v1/messages", headers={"Authorization": "Basic %%%"})
    assert r.status_code == 401
    r = raw(live_server, tenant.slug).post("/3rdparty/v1/auth/token/refresh", headers={"Authorization": "Bearer x"})
    assert r.status_code == 401 and r.json()["code"] == 401


def test_token_bookkeeping_is_purged_after_expiry(live_server, tenant):
    from addons.compat import tokens
    from addons.compat.hooks import purge_job
    from tests.support.messaging import sql

    basic = compat(live_server, tenant.slug, login=owner_email(tenant), password=OWNER_PASSWORD, ip=fresh_ip())
    pair = basic.generate_token(domain.TokenRequest(scopes=["messages:read"], ttl=60))
    basic.revoke_token(pair.id)
    assert sql(tenant, "SELECT count(*) FROM compat_access_tokens WHERE revoked_at IS NOT NULL")[0][0] == 1
    with tenant_transaction(tenant.ref):  # as the due job runs it
        assert purge_job(tenant) == 0  # still within its lifetime (plus an hour): kept, so it stays revoked
        # The job is next due when the first of them may go: what the repair pass arms.
        expires = sql(tenant, "SELECT min(expires_at) FROM compat_token_families")[0][0]
        assert tokens.next_purge_due() <= expires + dt.timedelta(seconds=1)
    sql(tenant, "UPDATE compat_access_tokens SET expires_at = now() - interval '2 hours'")
    sql(tenant, "UPDATE compat_token_families SET expires_at = now() - interval '1 second'")
    with tenant_transaction(tenant.ref):
        assert tokens.purge() == 2
    assert sql(tenant, "SELECT count(*) FROM compat_access_tokens")[0][0] == 0
