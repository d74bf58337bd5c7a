"""Webhooks: signatures checked by a library we did not write, retries, disabling, the SSRF guard,
redelivery, secret rotation, and real events from real simulated phones.

Receivers are tiny HTTP servers on 127.0.0.1 (the only place any test sends traffic), so
tests that need one allow private targets with ``SMSGW_WEBHOOK_ALLOW_PRIVATE=1``
(monkeypatch restores the environment afterwards). Signatures are verified with the
``standardwebhooks`` package. Retry tests drive attempts with the addon's own
``delivery.attempt`` and move time forward by setting ``next_attempt_at`` in SQL;
end-to-end tests attempt due deliveries continuously, as the sweeper does.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import ssl
import sys
import threading
import time
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from addons.webhooks import delivery, sender, service, signing, ssrf
from android_companion.backends.simulator import SimulatorBackend
from core.clock import utcnow
from core.db import current_tenant, tenant_transaction
from tests.support.identity import add_user, owner_email, post_form, sign_in, wait_for_mail
from tests.support.messaging import sql, wait_until
from tests.support.phones import api_client, start_phone
from tests.support.tls import self_signed_certificate


# -- a receiver ---------------------------------------------------------------------------------

class Receiver:
    """An HTTP receiver on 127.0.0.1 that records every request and answers as told."""

    def __init__(self, tls: ssl.SSLContext | None = None):
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict]] = []  # consumed first; then ``default``
        self.default = (200, {})
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.requests.append({"path": self.path, "body": body, "at": time.time(),
                                              "headers": {k.lower(): v for k, v in self.headers.items()}})
                    status, headers = receiver.answers.pop(0) if receiver.answers else receiver.default
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path="/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def events(self, path=None) -> list[dict]:
        with self._lock:
            return [dict(r, json=json.loads(r["body"])) for r in self.requests if path is None or r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def allow_private(monkeypatch):
    monkeypatch.setenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", "1")


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("wh")


@pytest.fixture
def deliverer(tenant):
    """Attempts every due delivery of ``tenant`` continuously, as the addon's due job does
    (``service.due`` then ``delivery.attempt``), in a thread of the test.

    Not a Huey consumer: the queue's connection pool (8) is shared with the web process's
    executor threads, which keep theirs checked out for good, so a consumer started late in a
    session can starve (see the report on ``core/tasks.make_huey``).
    """
    stop = threading.Event()
    errors = []

    def loop():
        token = current_tenant.set(tenant.ref)
        try:
            while not stop.is_set():
                with tenant_transaction():
                    due = service.due()
                for delivery_id in due:
                    delivery.attempt(delivery_id)
                stop.wait(0.05)
        except Exception as exc:  # surfaced by the fixture, never swallowed
            errors.append(exc)
        finally:
            current_tenant.reset(token)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(30)
    assert not errors, errors


# -- helpers -----------------------------------------------------------------------------------

def create(api, url, events, **extra) -> dict:
    r = api.post("/api/v1/webhooks", json={"url": url, "events": events, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def ping(api, endpoint_id) -> int:
    r = api.post(f"/api/v1/webhooks/{endpoint_id}/ping", json={})
    assert r.status_code == 202, r.text
    return r.json()["delivery_id"]


def attempt(tenant, delivery_id, trigger="schedule"):
    """One delivery attempt by the addon's own code, in the tenant's context (as its task runs it)."""
    token = current_tenant.set(tenant.ref)
    try:
        return delivery.attempt(delivery_id, trigger)
    finally:
        current_tenant.reset(token)


def delivery_row(tenant, delivery_id) -> dict:
    (row,) = sql(tenant, "SELECT state, attempts, next_attempt_at, last_status, event_id FROM webhook_deliveries "
                         "WHERE id = %s", (delivery_id,))
    return dict(zip(("state", "attempts", "next_attempt_at", "last_status", "event_id"), row))


def endpoint_row(tenant, endpoint_id) -> dict:
    (row,) = sql(tenant, "SELECT enabled, disabled_reason, failing_since FROM webhook_endpoints WHERE id = %s",
                 (endpoint_id,))
    return dict(zip(("enabled", "disabled_reason", "failing_since"), row))


def make_due(tenant, delivery_id):
    """Simulate the passing of time: the next attempt is due now."""
    sql(tenant, "UPDATE webhook_deliveries SET next_attempt_at = now() WHERE id = %s", (delivery_id,))


def verify(secret, request) -> dict:
    return Webhook(secret).verify(request["body"], request["headers"])


# -- signatures -------------------------------------------------------------------------------------

def test_signatures_are_verified_by_the_standardwebhooks_library(live_server, tenant, receiver, allow_private):
    api = api_client(live_server, tenant.slug)
    ep = create(api, receiver.url(), ["system:ping"])
    assert ep["secret"].startswith("whsec_")
    delivery_id = ping(api, ep["id"])
    assert attempt(tenant, delivery_id) == "succeeded"
    (request,) = receiver.requests
    payload = verify(ep["secret"], request)
    assert payload["type"] == "system:ping" and payload["data"]["webhook"] == ep["id"]
    assert request["headers"]["webhook-id"] == delivery_row(tenant, delivery_id)["event_id"]
    assert request["headers"]["content-type"] == "application/json"

    tampered = dict(request, body=request["body"].replace(b"Test", b"Pwnd"))
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verify(ep["secret"], tampered)
    wrong_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verify(wrong_secret, request)
    # A replay 6 minutes old: signed exactly as we sign (our signing module, our secret), refused for its age only.
    old = signing.headers([ep["secret"]], request["headers"]["webhook-id"], int(time.time()) - 360, request["body"])
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(ep["secret"]).verify(request["body"], old)
    fresh = signing.headers([ep["secret"]], request["headers"]["webhook-id"], int(time.time()), request["body"])
    assert Webhook(ep["secret"]).verify(request["body"], fresh)["type"] == "system:ping"


def test_secret_rotation_sends_two_signatures_either_verifies(live_server, tenant, receiver, allow_private):
    api = api_client(live_server, tenant.slug)
    ep = create(api, receiver.url(), ["system:ping"])
    attempt(tenant, ping(api, ep["id"]))
    r = api.post(f"/api/v1/webhooks/{ep['id']}/rotate-secret", json={})
    assert r.status_code == 200 and r.json()["previous_secret_valid_for_hours"] == 24
    new_secret = r.json()["secret"]
    attempt(tenant, ping(api, ep["id"]))
    before, after = receiver.requests
    assert len(before["headers"]["webhook-signature"].split(" ")) == 1
    assert len(after["headers"]["webhook-signature"].split(" ")) == 2
    assert verify(ep["secret"], after)["type"] == "system:ping"  # receivers still on the old secret
    assert verify(new_secret, after)["type"] == "system:ping"  # receivers already on the new one
    with pytest.raises(WebhookVerificationError):
        verify(ep["secret"], dict(after, body=after["body"] + b" "))
    # Once the overlap is over, only the new secret signs.
    sql(tenant, "UPDATE webhook_endpoints SET previous_secret_until = now() - interval '1 second' WHERE id = %s",
        (ep["id"],))
    attempt(tenant, ping(api, ep["id"]))
    last = receiver.requests[-1]
    assert len(last["headers"]["webhook-signature"].split(" ")) == 1
    verify(new_secret, last)
    with pytest.raises(WebhookVerificationError):
        verify(ep["secret"], last)


# -- retries -------------------------------------------------------------------------------------

def assert_delay(next_at: dt.datetime, before: dt.datetime, after: dt.datetime, base: float, jitter=0.1):
    low = before + dt.timedelta(seconds=base * (1 - jitter) - 0.5)
    high = after + dt.timedelta(seconds=base * (1 + jitter) + 0.5)
    assert low <= next_at <= high, (next_at, low, high)


def test_retry_schedule_under_500_then_200(live_server, tenant, receiver, allow_private):
    api = api_client(live_server, tenant.slug)
    ep = create(api, receiver.url(), ["system:ping"])
    delivery_id = ping(api, ep["id"])
    receiver.default = (500, {})
    for n, base in enumerate(service.SCHEDULE[:3], start=1):
        if n > 1:
            make_due(tenant, delivery_id)
        before = utcnow()
        assert attempt(tenant, delivery_id) == "pending"
        after = utcnow()
        row = delivery_row(tenant, delivery_id)
        assert (row["attempts"], row["last_status"], row["state"]) == (n, 500, "pending")
        assert_delay(row["next_attempt_at"], before, after, base)  # 5 s, 5 min, 30 min, each ± 10 % jitter
        # Not due yet: an early attempt does nothing.
        assert attempt(tenant, delivery_id) is None
    assert endpoint_row(tenant, ep["id"])["failing_since"] is not None
    receiver.default = (200, {})
    make_due(tenant, delivery_id)
    assert attempt(tenant, delivery_id) == "succeeded"
    assert delivery_row(tenant, delivery_id)["state"] == "succeeded"
    assert endpoint_row(tenant, ep["id"])["failing_since"] is None
    assert len(receiver.requests) == 4
    assert {r["headers"]["webhook-id"] for r in receiver.requests} == {delivery_row(tenant, delivery_id)["event_id"]}
    history = api.get(f"/api/v1/webhooks/{ep['id']}/deliveries").json()["deliveries"][0]["history"]
    assert [(h["attempt"], h["status"]) for h in history] == [(1, 500), (2, 500), (3, 500), (4, 200)]


def test_retry_after_is_honoured(live_server, tenant, receiver, allow_private):
    api = api_client(live_server, tenant.slug)
    ep = create(api, receiver.url(), ["system:ping"])
    delivery_id = ping(api, ep["id"])
    receiver.answers = [(429, {"Retry-After": "120"}),
                        (503, {"Retry-After": format_datetime(dt.datetime.now(dt.timezone.utc)
                                                              + dt.timedelta(seconds=900), usegmt=True)})]
    after = utcnow()
    assert attempt(tenant, delivery_id) == "pending"
    wait = (delivery_row(tenant, delivery_id)["next_attempt_at"] - after).total_seconds()
    assert 119 <= wait <= 121, wait  # not the 5 s of the schedule: the receiver asked for 120 s
    make_due(tenant, delivery_id)
    after = utcnow()
    assert attempt(tenant, delivery_id) == "pending"
    wait = (delivery_row(tenant, delivery_id)["next_attempt_at"] - after).total_seconds()
    assert 890 <= wait <= 901, wait  # an HTTP date counts too (and beats the 300 s of the schedule)


def test_410_disables_the_endpoint_and_tells_the_customer(live_server, tenant, receiver, allow_private):
    platform = live_server.platform
    api = api_client(live_server, tenant.slug)
    ep = create(api, receiver.url("/gone"), ["system:ping", "sms:sent"])
    receiver.default = (410, {})
    delivery_id = ping(api, ep["id"])
    assert attempt(tenant, delivery_id) == "failed"
    row = endpoint_row(tenant, ep["id"])
    assert row["enabled"] is False and "410" in row["disabled_reason"]
    (mail,) = wait_for_mail(platform, owner_email(tenant), "A webhook endpoint was disabled")
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert receiver.url("/gone") in body and "410" in body
    # A disabled endpoint is owed nothing new.
    with tenant_transaction(tenant.ref):
        assert service.record("sms:sent", {"message_id": 1}) == []
    listed = api.get(f"/api/v1/webhooks/{ep['id']}").json()
    assert listed["enabled"] is False and listed["disabled_reason"]


def test_an_endpoint_failing_for_more_than_five_days_is_disabled(live_server, tenant, receiver, allow_private):
    api = api_client(live_server, tenant.slug)
    ep = create(api, receiver.url("/down"), ["system:ping"])
    receiver.default = (500, {})
    delivery_id = ping(api, ep["id"])
    assert attempt(tenant, delivery_id) == "pending"
    # Four days of failures: still trying.
    sql(tenant, "UPDATE webhook_endpoints SET failing_since = now() - interval '4 days' WHERE id = %s", (ep["id"],))
    make_due(tenant, delivery_id)
    assert attempt(tenant, delivery_id) == "pending"
    assert endpoint_row(tenant, ep["id"])["enabled"] is True
    # Six days: disabled, and the Customer is told.
    sql(tenant, "UPDATE webhook_endpoints SET failing_since = now() - interval '6 days' WHERE id = %s", (ep["id"],))
    make_due(tenant, delivery_id)
    assert attempt(tenant, delivery_id) == "failed"
    row = endpoint_row(tenant, ep["id"])
    assert row["enabled"] is False and "5 days" in row["disabled_reason"]
    assert wait_for_mail(live_server.platform, owner_email(tenant), "A webhook endpoint was disabled")


# -- SSRF --------------------------------------------------------------------------------------------

def test_ssrf_guard_refuses_private_targets(live_server, tenant, receiver, monkeypatch):
    monkeypatch.delenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", raising=False)
    api = api_client(live_server, tenant.slug)
    for url, why in (("http://127.0.0.1:9/hook", "loopback"), ("http://169.254.169.254/latest/meta-data/", "metadata"),
                     ("http://10.0.0.1/hook", "private"), ("http://localhost:9/hook", "loopback"),
                     ("http://[::1]:9/hook", "loopback")):
        r = api.post("/api/v1/webhooks", json={"url": url, "events": ["system:ping"]})
        assert r.status_code == 422, (url, r.text)
        assert why in json.dumps(r.json()["errors"]), (url, r.json())
    for ip in ("::ffff:127.0.0.1", "fe80::1", "100.64.0.1", "192.168.1.10", "0.0.0.0"):
        with pytest.raises(ssrf.UnsafeURL):
            ssrf.check_address(ip, False)
    with pytest.raises(ssrf.UnsafeURL, match="metadata"):  # never, even for self-hosters on a LAN
        ssrf.check_address("169.254.169.254", True)
    assert api.get("/api/v1/webhooks").json()["webhooks"] == []

    # An endpoint saved while private targets were allowed gets no traffic once they are not.
    monkeypatch.setenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", "1")
    ep = create(api, receiver.url(), ["system:ping"])
    monkeypatch.delenv("SMSGW_WEBHOOK_ALLOW_PRIVATE")
    delivery_id = ping(api, ep["id"])
    assert attempt(tenant, delivery_id) == "pending"
    assert receiver.requests == []
    history = api.get(f"/api/v1/webhooks/{ep['id']}/deliveries").json()["deliveries"][0]["history"]
    assert history[0]["status"] is None and "loopback" in history[0]["error"]


class SocketWatch:
    """What this process's sockets do for one port while ``watching``: the names looked up
    (``socket.getaddrinfo``) and the addresses connected to (``socket.connect``), seen through
    Python's audit hooks (observed, not replaced). A hook cannot be removed: it stays, idle."""

    _hooked = False
    _current: "SocketWatch | None" = None

    def __init__(self, port: int):
        self.port, self.lookups, self.connects = port, [], []
        if not SocketWatch._hooked:
            SocketWatch._hooked = True
            sys.addaudithook(lambda event, args: SocketWatch._current and SocketWatch._current.seen(event, args))

    def seen(self, event, args) -> None:
        if event == "socket.getaddrinfo" and args[1] == self.port:
            self.lookups.append(args[0])
        elif event == "socket.connect" and isinstance(args[1], tuple) and args[1][1] == self.port:
            self.connects.append(args[1][0])

    def __enter__(self):
        SocketWatch._current = self
        return self

    def __exit__(self, *exc):
        SocketWatch._current = None


def test_a_delivery_connects_to_the_address_the_ssrf_guard_checked(live_server, tenant, receiver, allow_private):
    """DNS rebinding: a name that answers a safe address to the guard and another one to the
    connection. The name is looked up once (by the guard), and the socket connects to that
    answer; the Host header still names the host."""
    port = receiver.server.server_port
    api = api_client(live_server, tenant.slug)
    ep = create(api, f"http://localhost:{port}/hook", ["system:ping"])
    delivery_id = ping(api, ep["id"])
    with SocketWatch(port) as watch:
        assert attempt(tenant, delivery_id) == "succeeded"
    checked = ssrf.resolve(f"http://localhost:{port}/hook", True)[1]
    assert watch.lookups.count("localhost") == 1, watch.lookups  # the guard's, and no second one
    assert watch.connects == [checked], watch.connects
    (request,) = receiver.events("/hook")
    assert request["headers"]["host"] == f"localhost:{port}"


def localhost_only_certificate(directory):
    """A self-signed certificate that names ``localhost`` and no address: it verifies only when
    the client checks the host name, not the address it connected to."""
    return self_signed_certificate(directory, names=("localhost",))


def test_https_delivery_connects_to_the_checked_address_and_verifies_the_host_name(tmp_path, monkeypatch):
    """Over TLS too: the socket goes to the checked address, while SNI and the certificate
    check use the host name (the certificate names no address, so checking the address fails)."""
    certfile, keyfile = localhost_only_certificate(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(certfile, keyfile)
    names = []
    tls.sni_callback = lambda sock, name, ctx: names.append(name)
    monkeypatch.setenv("SSL_CERT_FILE", str(certfile))  # the client's default context trusts it
    r = Receiver(tls)
    try:
        port = r.server.server_port
        with SocketWatch(port) as watch:
            outcome = sender.post(f"https://localhost:{port}/hook", b"{}", {}, timeout=10, allow_private=True)
        assert outcome.ok, outcome
        assert watch.lookups.count("localhost") == 1 and watch.connects == ["127.0.0.1"], vars(watch)
        assert names == ["localhost"]
        # The same receiver named by its address: the certificate does not match, nothing is sent.
        refused = sender.post(f"https://127.0.0.1:{port}/hook", b"{}", {}, timeout=10, allow_private=True)
        assert refused.status is None and "certificate" in refused.error.lower(), refused
        assert len(r.events("/hook")) == 1
    finally:
        r.close()


# -- redelivery and one id per event -------------------------------------------------------------------

def test_redeliver_makes_a_new_attempt_with_the_same_webhook_id(live_server, tenant, receiver, allow_private):
    api = api_client(live_server, tenant.slug)
    ep = create(api, receiver.url(), ["system:ping"])
    delivery_id = ping(api, ep["id"])
    assert attempt(tenant, delivery_id) == "succeeded"
    r = api.post(f"/api/v1/webhooks/{ep['id']}/deliveries/{delivery_id}/redeliver", json={})
    assert r.status_code == 202
    assert r.json()["webhook_id"] == receiver.requests[0]["headers"]["webhook-id"]
    assert attempt(tenant, delivery_id, "redeliver") == "succeeded"
    first, second = receiver.requests
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
    assert first["body"] == second["body"]
    verify(ep["secret"], second)
    (d,) = api.get(f"/api/v1/webhooks/{ep['id']}/deliveries").json()["deliveries"]
    assert [h["trigger"] for h in d["history"]] == ["schedule", "redeliver"]
    assert d["attempts"] == 2 and d["state"] == "succeeded"


def test_redelivery_by_api_and_page_names_only_a_delivery_of_that_webhook(live_server, tenant, receiver,
                                                                         allow_private):
    api = api_client(live_server, tenant.slug)
    one, other = create(api, receiver.url("/one"), ["system:ping"]), create(api, receiver.url("/two"), ["system:ping"])
    delivery_id = ping(api, one["id"])
    assert attempt(tenant, delivery_id) == "succeeded"
    browser = sign_in(live_server, tenant.slug, owner_email(tenant))
    for webhook, delivery, detail in ((other["id"], delivery_id, "There is no such delivery here."),
                                      (other["id"] + 1000, delivery_id, "There is no such webhook here."),
                                      (one["id"], "x1", "There is no such delivery here."),
                                      (one["id"], "9" * 19, "There is no such delivery here.")):
        r = api.post(f"/api/v1/webhooks/{webhook}/deliveries/{delivery}/redeliver", json={})
        assert (r.status_code, r.json()["detail"]) == (404, detail), (webhook, delivery, r.text)
        r = post_form(browser, f"/webhooks/{webhook}/deliveries", {"delivery_id": str(delivery)})
        assert r.status_code == 404 and detail in r.text, (webhook, delivery)
    assert delivery_row(tenant, delivery_id)["state"] == "succeeded"  # nothing was queued again
    r = post_form(browser, f"/webhooks/{one['id']}/deliveries", {"delivery_id": str(delivery_id)})
    assert r.status_code == 302 and delivery_row(tenant, delivery_id)["state"] == "pending"


def test_message_events_end_to_end_one_webhook_id_per_event(live_server, tenant, receiver, allow_private, deliverer,
                                                             tmp_path):
    api = api_client(live_server, tenant.slug)
    events = ["sms:sent", "sms:delivered", "sms:failed", "sms:received"]
    a = create(api, receiver.url("/a"), events)
    b = create(api, receiver.url("/b"), events)
    backend = SimulatorBackend(delivery_delay=0.05, fail_numbers={"+14155550166": "RESULT_ERROR_NO_SERVICE"})
    phone = start_phone(live_server, tenant.slug, tmp_path / "phone", backend=backend, wait=2)
    try:
        r = api.post("/api/v1/messages", json={"to": ["+14155550123", "+14155550166"], "text": "hooks",
                                               "reference": "e2e"})
        assert r.status_code == 202, r.text
        message = r.json()
        ok_id, bad_id = (x["id"] for x in message["recipients"])
        backend.inject_inbound("+14155550199", "A reply")

        def kinds(path):
            return sorted(e["json"]["type"] for e in receiver.events(path))

        expected = ["sms:delivered", "sms:failed", "sms:received", "sms:sent"]
        wait_until(lambda: kinds("/a") == expected and kinds("/b") == expected, timeout=30,
                   what="sent, delivered, failed and received at both endpoints")
    finally:
        phone.stop()
    for path, ep in (("/a", a), ("/b", b)):
        got = {e["json"]["type"]: e for e in receiver.events(path)}
        for e in got.values():
            assert verify(ep["secret"], e) == e["json"]
        assert got["sms:sent"]["json"]["data"]["recipient_id"] == ok_id
        assert got["sms:delivered"]["json"]["data"].items() >= {"phone": "+14155550123", "state": "delivered",
                                                                "message_id": message["id"], "reference": "e2e"}.items()
        assert got["sms:failed"]["json"]["data"]["recipient_id"] == bad_id
        assert got["sms:failed"]["json"]["data"]["error_code"] == "RESULT_ERROR_NO_SERVICE"
        assert got["sms:received"]["json"]["data"]["from"] == "+14155550199"
        assert got["sms:received"]["json"]["data"]["body"] == "A reply"
    # One event, one webhook-id: each endpoint got each event exactly once, under the same id at both.
    ids = {path: [e["headers"]["webhook-id"] for e in receiver.events(path)] for path in ("/a", "/b")}
    assert len(set(ids["/a"])) == len(ids["/a"]) == 4
    assert set(ids["/a"]) == set(ids["/b"])
    # (The receiver answers before the attempt's outcome is committed: wait for the last one.)
    rows = wait_until(lambda: (r := sql(tenant, "SELECT endpoint_id, event_id, state FROM webhook_deliveries "
                                                "ORDER BY id")) and {x[2] for x in r} == {"succeeded"} and r,
                      what="every delivery recorded as succeeded")
    assert len(rows) == 8
    assert len({(r[0], r[1]) for r in rows}) == 8
    (events_recorded,) = sql(tenant, "SELECT count(*) FROM webhook_events")
    assert events_recorded[0] == 4


def test_device_online_fires_when_a_phone_first_polls(live_server, tenant, receiver, allow_private, deliverer,
                                                     tmp_path):
    api = api_client(live_server, tenant.slug)
    ep = create(api, receiver.url(), ["device:online"])
    phone = start_phone(live_server, tenant.slug, tmp_path / "phone", wait=2)
    try:
        wait_until(lambda: receiver.requests, timeout=30, what="device:online")
    finally:
        phone.stop()
    (request,) = receiver.events()
    device = api.get("/api/v1/devices").json()["devices"][0]
    assert request["json"]["type"] == "device:online"
    assert request["json"]["data"] == {"device_id": device["id"], "name": device["name"]}
    verify(ep["secret"], request)


# -- the dashboard ----------------------------------------------------------------------------------------

def test_webhooks_dashboard_page(live_server, tenant, receiver, allow_private):
    api = api_client(live_server, tenant.slug)
    existing = create(api, receiver.url("/existing"), ["sms:sent"], description="Our CRM")
    browser = sign_in(live_server, tenant.slug, owner_email(tenant))
    page = browser.get("/webhooks")
    assert page.status_code == 200 and receiver.url("/existing") in page.text and "Our CRM" in page.text

    r = post_form(browser, "/webhooks", {"action": "create", "url": receiver.url("/dash"),
                                          "events": ["system:ping", "sms:received"], "description": "From the page"})
    assert r.status_code == 200 and "whsec_" in r.text  # the secret is shown once
    made = next(w for w in api.get("/api/v1/webhooks").json()["webhooks"] if w["url"] == receiver.url("/dash"))
    assert made["events"] == ["sms:received", "system:ping"]
    r = post_form(browser, "/webhooks", {"action": "ping", "endpoint_id": str(made["id"])})
    assert r.status_code == 302
    (delivery_id,) = [row[0] for row in sql(tenant, "SELECT id FROM webhook_deliveries WHERE endpoint_id = %s",
                                            (made["id"],))]
    assert attempt(tenant, delivery_id) == "succeeded"
    log = browser.get(f"/webhooks/{made['id']}/deliveries")
    assert log.status_code == 200 and "system:ping" in log.text
    r = post_form(browser, f"/webhooks/{made['id']}/deliveries", {"delivery_id": str(delivery_id)})
    assert r.status_code == 302
    assert delivery_row(tenant, delivery_id)["state"] == "pending"  # queued again, same webhook-id
    r = post_form(browser, "/webhooks", {"action": "disable", "endpoint_id": str(existing["id"])})
    assert r.status_code == 302 and endpoint_row(tenant, existing["id"])["enabled"] is False

    # A User (not the Customer) may look but not change.
    add_user(live_server.platform, tenant, "member@example.com", "a long enough password", role="user")
    member = sign_in(live_server, tenant.slug, "member@example.com", "a long enough password")
    assert member.get("/webhooks").status_code == 200
    r = post_form(member, "/webhooks", {"action": "create", "url": receiver.url("/nope"), "events": ["sms:sent"]})
    assert r.status_code == 403
