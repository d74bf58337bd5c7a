"""Webhook I/O cannot hold shared workers: a deadline for each whole attempt, a delivery pool of
its own with a cap per tenant, no DNS inside a transaction; and the SSRF guard sees the IPv4
address inside IPv6 forms (6to4, NAT64, IPv4-mapped/-compatible, Teredo, ISATAP).

Receivers are servers on 127.0.0.1, so the tests that deliver allow private targets
(``SMSGW_WEBHOOK_ALLOW_PRIVATE=1``), as tests/test_webhooks.py does. The end-to-end test runs a
real ``smsgw worker`` process configured by environment variables, the way operators run it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from addons.webhooks import ssrf
from addons.webhooks.pool import DeliveryPool
from core.clock import utcnow
from core.config import ConfigError, Settings
from core.db import tenant_transaction
from tests.support.devices import LongPoll, device_client, fetch, raw_device, submit, waiting_on
from tests.support.identity import owner_email, post_form, sign_in
from tests.support.messaging import sql, wait_until
from tests.support.phones import api_client, api_token
from tests.test_webhooks import Receiver, create, ping

ROOT = Path(__file__).resolve().parent.parent


# -- a receiver that drips its answer ---------------------------------------------------------

class Dripper:
    """On 127.0.0.1: reads the request, then answers one byte every ``every`` s and never finishes
    the headers (for up to ``lasts`` s). A per-read socket timeout never fires on it; only a
    deadline for the whole attempt lets go. Records when each connection came and when the
    client closed it, and the most connections it had open at once."""

    def __init__(self, every: float = 0.5, lasts: float = 45.0):
        self.every, self.lasts = every, lasts
        self.connections: list[dict] = []
        self.open = self.most_open = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path="/drip") -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}{path}"

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            record = {"accepted": time.monotonic(), "closed": None}
            with self._lock:
                self.connections.append(record)
                self.open += 1
                self.most_open = max(self.most_open, self.open)
            threading.Thread(target=self._drip, args=(conn, record), daemon=True).start()

    def _drip(self, conn, record):
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                request += chunk
            answer = b"HTTP/1.1 200 OK\r\nX-Drip: "
            sent = 0
            end = time.monotonic() + self.lasts
            while time.monotonic() < end and not self._stop.is_set():
                readable, _, _ = select.select([conn], [], [], self.every)
                if readable and not conn.recv(65536):
                    return  # the client closed its side
                conn.sendall(answer[sent:sent + 1] if sent < len(answer) else b"a")
                sent += 1
        except OSError:
            return
        finally:
            record["closed"] = time.monotonic()
            with self._lock:
                self.open -= 1
            conn.close()

    def close(self):
        self._stop.set()
        self.sock.close()


@pytest.fixture
def dripper():
    d = Dripper()
    yield d
    d.close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def allow_private(monkeypatch):
    monkeypatch.setenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", "1")


def attempts_of(tenant) -> list[dict]:
    rows = sql(tenant, "SELECT a.delivery_id, a.attempt, a.at, a.status_code, a.duration_ms, a.error, "
                       "d.state, d.attempts, d.next_attempt_at FROM webhook_attempts a JOIN webhook_deliveries d "
                       "ON d.id = a.delivery_id ORDER BY a.id")
    keys = ("delivery_id", "attempt", "at", "status", "duration_ms", "error", "state", "attempts", "next_attempt_at")
    return [dict(zip(keys, r)) for r in rows]


def assert_timed_out_and_retried(rows, deadline: float):
    """Each first attempt failed at the deadline (not before, not long after) and waits for its
    retry 5 s later (± 10 % jitter), as the retry schedule says."""
    for a in rows:
        assert a["status"] is None and a["error"].startswith("timeout"), a
        assert deadline * 1000 - 100 <= a["duration_ms"] <= deadline * 1000 + 1500, a
        if a["attempt"] == a["attempts"] == 1 and a["state"] == "pending":  # (not retried yet)
            wait = (a["next_attempt_at"] - a["at"]).total_seconds()
            assert 4.4 <= wait <= 5.6, a


# -- the deadline, the pool and its per-tenant cap (in this process) -----------------------------

def test_a_dripping_receiver_holds_a_delivery_thread_no_longer_than_the_deadline(
        live_server, make_tenant, dripper, receiver, allow_private):
    slow, other = make_tenant("drip"), make_tenant("prompt")
    slow_api, other_api = api_client(live_server, slow.slug), api_client(live_server, other.slug)
    slow_ep = create(slow_api, dripper.url(), ["system:ping"])
    other_ep = create(other_api, receiver.url(), ["system:ping"])
    slow_ids = [ping(slow_api, slow_ep["id"]) for _ in range(3)]
    other_id = ping(other_api, other_ep["id"])

    # Built from its constructor (what the worker builds from SMSGW_WEBHOOK_* settings).
    pool = DeliveryPool(workers=3, per_tenant=1, timeout=3)
    try:
        t0 = time.monotonic()
        for delivery_id in slow_ids:
            assert pool.submit(slow.ref, delivery_id)
        assert not pool.submit(slow.ref, slow_ids[-1])  # already waiting: a second trigger adds nothing
        time.sleep(0.3)
        assert pool.submit(other.ref, other_id)
        # The other workspace's webhook goes out at once, while the slow one drips.
        wait_until(lambda: receiver.requests, timeout=2.4, what="the other workspace's webhook")
        assert time.monotonic() - t0 < 2.8  # before the slow one's 3 s deadline
        assert dripper.open == 1 and pool.running(slow.slug) == 1  # one at a time for the slow workspace

        # The slow workspace's attempts run one after another, each cut at its 3 s deadline.
        rows = wait_until(lambda: len(r := attempts_of(slow)) == 3 and r, timeout=15,
                          what="three attempts recorded")
        assert time.monotonic() - t0 < 3 * 3 + 3
        assert_timed_out_and_retried(rows, 3)
        assert sorted(a["delivery_id"] for a in rows) == sorted(slow_ids)
        assert dripper.most_open == 1
        wait_until(lambda: all(c["closed"] for c in dripper.connections), timeout=3, what="connections closed")
        for c in dripper.connections:  # the sender let go of each at the deadline
            assert c["closed"] - c["accepted"] < 3 + 1.2, c
        assert pool.running(slow.slug) == 0
        (state,) = sql(other, "SELECT state FROM webhook_deliveries WHERE id = %s", (other_id,))
        assert state == ("succeeded",)
    finally:
        pool.stop(timeout=10)


def test_delivery_settings_are_bounded():
    env = {"SMSGW_WEBHOOK_TIMEOUT": "5", "SMSGW_WEBHOOK_WORKERS": "4", "SMSGW_WEBHOOK_TENANT_CONCURRENCY": "3"}
    s = Settings.from_env(env)
    assert (s.webhook_timeout, s.webhook_workers, s.webhook_tenant_concurrency) == (5, 4, 3)
    d = Settings.from_env({})
    assert (d.webhook_timeout, d.webhook_workers, d.webhook_tenant_concurrency) == (30, 8, 2)
    with pytest.raises(ConfigError, match="at most 30"):
        Settings.from_env({"SMSGW_WEBHOOK_TIMEOUT": "31"})
    with pytest.raises(ConfigError, match="below SMSGW_WEBHOOK_WORKERS"):
        Settings.from_env({"SMSGW_WEBHOOK_WORKERS": "4", "SMSGW_WEBHOOK_TENANT_CONCURRENCY": "4"})
    with pytest.raises(ValueError):
        DeliveryPool(workers=2, per_tenant=2)


def test_a_claims_lease_outlives_the_attempts_deadline_unless_set():
    """The claim's lease (renewed while the attempt runs) is by default the deadline plus 30 s, so
    even a missed renewal never lets a live attempt's delivery be offered again."""
    assert Settings.from_env({}).webhook_lease == 60
    assert Settings.from_env({"SMSGW_WEBHOOK_TIMEOUT": "5"}).webhook_lease == 35
    assert Settings.from_env({"SMSGW_WEBHOOK_LEASE": "4"}).webhook_lease == 4
    with pytest.raises(ConfigError, match="at least 2"):
        Settings.from_env({"SMSGW_WEBHOOK_LEASE": "1"})
    assert DeliveryPool(workers=3, per_tenant=1, timeout=3).lease == 33
    assert DeliveryPool(workers=3, per_tenant=1, timeout=3, lease=2).lease == 2


# -- end to end: a real worker process ------------------------------------------------------------

class Worker:
    """``smsgw worker --workers 2`` (the default of ``serve --with-worker``) as a subprocess."""

    def __init__(self, env: dict):
        self.proc = subprocess.Popen([sys.executable, "-m", "core.cli", "worker", "--workers", "2"], env=env,
                                     cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(90):
            self.stop()
            raise AssertionError("the worker did not start:\n" + "".join(self.lines))

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            if "Worker running" in line:
                self.ready.set()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def test_slow_receivers_of_one_workspace_delay_no_other_workspaces_work(
        platform, live_server, make_tenant, dripper, receiver, cli_env):
    """Workspace A's endpoint drips its answers; meanwhile workspace B's scheduled message is
    released to its waiting phone on time and B's webhook is delivered on time."""
    worker = Worker({**cli_env, "SMSGW_WEBHOOK_TIMEOUT": "3", "SMSGW_WEBHOOK_ALLOW_PRIVATE": "1"})
    try:
        a, b = make_tenant("wa"), make_tenant("wb")
        a_api, b_api = api_client(live_server, a.slug), api_client(live_server, b.slug)
        with pytest.MonkeyPatch.context() as env:  # this process's API checks the loopback URLs too
            env.setenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", "1")
            a_ep = create(a_api, dripper.url(), ["system:ping"])
            b_ep = create(b_api, receiver.url(), ["system:ping"])
        device_id, token = raw_device(live_server, b.slug)
        phone = device_client(live_server, b.slug, token)
        assert fetch(phone).json()["messages"] == []

        # Four slow deliveries: more than the queue's two worker threads.
        a_ids = [ping(a_api, a_ep["id"]) for _ in range(4)]
        wait_until(lambda: dripper.open >= 2, timeout=10, what="the slow deliveries to start")
        send_at = utcnow() + dt.timedelta(seconds=3)
        scheduled = submit(b_api, ["+14155550123"], "at the stroke", send_at=send_at.isoformat())
        poll = LongPoll(phone, wait=30).start()
        wait_until(lambda: waiting_on(platform, b.slug, device_id), 5, what="the phone's poll to park")
        pinged = time.monotonic()
        b_delivery = ping(b_api, b_ep["id"])

        wait_until(lambda: receiver.requests, timeout=6, what="workspace B's webhook")
        assert time.monotonic() - pinged < 6
        assert dripper.open >= 1  # ... while A's receiver was still dripping

        try:
            poll.join(15)
        except AssertionError:
            raise AssertionError("the scheduled message did not reach the phone within 15 s; the worker said:\n"
                                 + "".join(worker.lines[-60:])) from None
        released = utcnow()
        assert [m["message_id"] for m in poll.response.json()["messages"]] == [scheduled["id"]]
        assert released - send_at < dt.timedelta(seconds=6), (released, send_at)

        # A: every first attempt was cut at the 3 s deadline, recorded as a timeout, to be retried.
        def first_attempts():
            rows = [r for r in attempts_of(a) if r["attempt"] == 1]
            return len(rows) == 4 and rows

        rows = wait_until(first_attempts, timeout=20, what="a first attempt of each slow delivery recorded")
        assert_timed_out_and_retried(rows, 3)
        assert {r["delivery_id"] for r in rows} == set(a_ids)
        assert dripper.most_open <= 2  # the per-workspace cap (SMSGW_WEBHOOK_TENANT_CONCURRENCY=2)
        finished = [c for c in dripper.connections if c["closed"]]
        assert len(finished) >= 4
        for c in finished:
            assert c["closed"] - c["accepted"] < 3 + 1.5, c
        wait_until(lambda: sql(b, "SELECT state FROM webhook_deliveries WHERE id = %s", (b_delivery,))
                   == [("succeeded",)], timeout=5, what="B's delivery recorded as succeeded")
    finally:
        worker.stop()


# -- DNS before the transaction ----------------------------------------------------------------------

def test_webhook_host_names_are_looked_up_before_the_transaction(live_server, make_tenant, receiver,
                                                                 allow_private):
    tenant = make_tenant("dns")
    port = receiver.server.server_port
    # A lookup inside a transaction is refused outright (it would hold a pooled connection and
    # the tenant's locks for as long as a resolver cares to take) ...
    with tenant_transaction(tenant.ref):
        with pytest.raises(ssrf.LookupInTransaction):
            ssrf.resolve(f"http://localhost:{port}/hook")
    # ... so every way of saving a host name works only because it resolves before its transaction.
    api = api_client(live_server, tenant.slug)
    made = create(api, f"http://localhost:{port}/api", ["system:ping"])
    r = api.patch(f"/api/v1/webhooks/{made['id']}", json={"url": f"http://localhost:{port}/moved"})
    assert r.status_code == 200 and r.json()["url"] == f"http://localhost:{port}/moved", r.text
    r = api.patch(f"/api/v1/webhooks/{made['id']}", json={"url": f"http://localhost:{port}/moved",
                                                          "description": "same URL"})
    assert r.status_code == 200 and r.json()["description"] == "same URL", r.text
    browser = sign_in(live_server, tenant.slug, owner_email(tenant))
    r = post_form(browser, "/webhooks", {"action": "create", "url": f"http://localhost:{port}/page",
                                          "events": ["system:ping"]})
    assert r.status_code == 200 and "whsec_" in r.text
    r = live_server.client(tenant.slug).post(
        "/3rdparty/v1/webhooks", json={"id": "dns-hook", "url": f"http://localhost:{port}/compat",
                                       "event": "sms:received"},
        headers={"Authorization": f"Bearer {api_token(tenant.slug)}"})
    assert r.status_code == 201, r.text

    # Bad hosts are answered as problems, and nothing changes.
    r = api.post("/api/v1/webhooks", json={"url": "http://no-such-host.invalid/hook", "events": ["system:ping"]})
    assert r.status_code == 422 and r.headers["Content-Type"].startswith("application/problem+json")
    assert "does not resolve" in r.json()["errors"][0]["message"]
    r = api.post("/api/v1/webhooks", json={"url": "http://[::1/unclosed", "events": ["system:ping"]})
    assert r.status_code == 422 and "not valid" in r.json()["errors"][0]["message"], r.text
    r = api.patch(f"/api/v1/webhooks/{made['id']}", json={"url": "http://no-such-host.invalid/hook"})
    assert r.status_code == 422 and "does not resolve" in r.text
    assert api.get(f"/api/v1/webhooks/{made['id']}").json()["url"] == f"http://localhost:{port}/moved"
    urls = sorted(w["url"] for w in api.get("/api/v1/webhooks").json()["webhooks"])
    assert urls == sorted(f"http://localhost:{port}{p}" for p in ("/moved", "/page", "/compat"))


# -- the SSRF guard and IPv4 inside IPv6 -----------------------------------------------------------

def teredo(server: str, client: str, port: int = 40000) -> str:
    """A Teredo address (RFC 4380): 2001:0::/32, the server's IPv4, flags, then the client's
    port and IPv4 address, both inverted."""
    value = ((0x2001_0000 << 96) | (int(ipaddress.IPv4Address(server)) << 64) | (0x8000 << 48)
             | ((port ^ 0xFFFF) << 32) | (int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF))
    return str(ipaddress.IPv6Address(value))


REFUSED = [  # (address, what the refusal names)
    ("2002:7f00:1::1", "127.0.0.1 (6to4), a loopback address"),
    ("2002:c0a8:101::1", "192.168.1.1 (6to4), a private address"),
    ("2002:a9fe:a9fe::", "169.254.169.254 (6to4), a cloud metadata address"),
    ("::ffff:127.0.0.1", "127.0.0.1 (IPv4-mapped), a loopback address"),
    ("::ffff:10.1.2.3", "10.1.2.3 (IPv4-mapped), a private address"),
    ("::127.0.0.1", "127.0.0.1 (IPv4-compatible), a loopback address"),
    ("::10.0.0.1", "10.0.0.1 (IPv4-compatible), a private address"),
    ("64:ff9b::7f00:1", "127.0.0.1 (NAT64), a loopback address"),
    ("64:ff9b::a9fe:a9fe", "169.254.169.254 (NAT64), a cloud metadata address"),
    ("64:ff9b::c0a8:1", "192.168.0.1 (NAT64), a private address"),
    ("64:ff9b:1::7f00:1", "local-use NAT64 address"),
    (teredo("65.54.227.120", "127.0.0.1"), "127.0.0.1 (Teredo client), a loopback address"),
    (teredo("10.0.0.1", "8.8.8.8"), "10.0.0.1 (Teredo server), a private address"),
    (teredo("65.54.227.120", "192.168.1.1"), "192.168.1.1 (Teredo client), a private address"),
    ("2001:4860:1::5efe:a00:1", "10.0.0.1 (ISATAP), a private address"),
    ("2001:4860:1::200:5efe:7f00:1", "127.0.0.1 (ISATAP), a loopback address"),
    # Forms no public receiver uses are refused whatever they carry.
    ("::8.8.8.8", "IPv4-compatible address"),
    ("64:ff9b:1::808:808", "local-use NAT64 address"),
    (teredo("65.54.227.120", "8.8.8.8"), "Teredo address"),
]
ALLOWED = ["2002:808:808::1", "::ffff:8.8.8.8", "64:ff9b::808:808", "2001:4860:1::5efe:808:808",
           "2001:4860:4860::8888"]


@pytest.mark.parametrize("address,why", REFUSED)
def test_ssrf_guard_refuses_private_ipv4_inside_ipv6(address, why):
    with pytest.raises(ssrf.UnsafeURL) as refused:
        ssrf.check_address(address, False)
    assert why in str(refused.value)


@pytest.mark.parametrize("address", ALLOWED)
def test_ssrf_guard_lets_public_ipv4_inside_ipv6_through(address):
    ssrf.check_address(address, False)


def test_metadata_inside_ipv6_is_refused_even_where_private_targets_are_allowed():
    for address in ("2002:a9fe:a9fe::", "64:ff9b::a9fe:a9fe", "::ffff:169.254.169.254",
                    teredo("65.54.227.120", "169.254.169.254"), "2001:db8::5efe:a9fe:a9fe"):
        with pytest.raises(ssrf.UnsafeURL, match="metadata"):
            ssrf.check_address(address, True)
    ssrf.check_address("2002:7f00:1::1", True)  # a LAN self-hoster's choice


def test_the_api_refuses_a_6to4_url_that_leads_to_loopback(live_server, make_tenant, monkeypatch):
    monkeypatch.delenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", raising=False)
    tenant = make_tenant("six")
    api = api_client(live_server, tenant.slug)
    for url in ("http://[2002:7f00:1::1]:9/hook", "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/"):
        r = api.post("/api/v1/webhooks", json={"url": url, "events": ["system:ping"]})
        assert r.status_code == 422, (url, r.text)
        assert "leads to" in r.json()["errors"][0]["message"]
    assert api.get("/api/v1/webhooks").json()["webhooks"] == []


# -- mail after the commit ------------------------------------------------------------------------------

class StalledSMTP:
    """An SMTP server on 127.0.0.1 that accepts connections and says nothing for ``stall`` s."""

    def __init__(self, stall: float = 10.0):
        self.stall = stall
        self.accepted: list[float] = []
        self._stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted.append(time.monotonic())
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn):
        self._stop.wait(self.stall)
        conn.close()

    def close(self):
        self._stop.set()
        self.sock.close()


def test_the_disabled_notice_is_mailed_after_the_commit(live_server, make_tenant, receiver, cli_env):
    """A 410 disables the endpoint and mails the Customer. The mail (SMTP: a network call) goes out
    only once the outcome is committed: when the mail server is first contacted, the delivery and
    the endpoint already read as failed and disabled from another connection."""
    smtp = StalledSMTP()
    worker = Worker({**cli_env, "SMSGW_WEBHOOK_ALLOW_PRIVATE": "1", "SMSGW_MAIL_BACKEND": "smtp",
                     "SMSGW_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}"})
    try:
        tenant = make_tenant("gone")
        api = api_client(live_server, tenant.slug)
        with pytest.MonkeyPatch.context() as env:
            env.setenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", "1")
            ep = create(api, receiver.url("/gone"), ["system:ping"])
        receiver.default = (410, {})
        delivery_id = ping(api, ep["id"])
        wait_until(lambda: smtp.accepted, timeout=20, what="the worker to contact the mail server")
        # The mail server has not even greeted: the worker is inside its SMTP conversation now.
        assert sql(tenant, "SELECT state FROM webhook_deliveries WHERE id = %s", (delivery_id,)) == [("failed",)]
        assert sql(tenant, "SELECT enabled FROM webhook_endpoints WHERE id = %s", (ep["id"],)) == [(False,)]
        assert time.monotonic() - smtp.accepted[0] < smtp.stall - 2
    finally:
        worker.stop()
        smtp.close()
