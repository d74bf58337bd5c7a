"""Helpers for the device protocol and companion tests: raw device clients, long polls, a cuttable proxy.

Nothing here stands in for the platform: requests go over real sockets to the live
server, rows are read inside real tenant transactions, and the proxy forwards real
TCP traffic (it only lets a test cut the network at chosen moments).
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from contextlib import contextmanager

from core.db import current_tenant, tenant_transaction
from tests.support.phones import api_client
from tests.support.server import HostClient

OWNER_PASSWORD = "a long enough password"


def fresh_ip() -> str:
    """A private address of our own (the server trusts X-Real-IP), so throttle counts never mix."""
    return f"10.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


def phone(i: int) -> str:
    return f"+1415555{i:04d}"


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def device_client(live_server, slug: str, token: str, ip: str | None = None) -> HostClient:
    c = live_server.client(slug)
    c.headers["Authorization"] = f"Bearer {token}"
    if ip:
        c.headers["X-Real-IP"] = ip
    return c


def new_code(api) -> str:
    r = api.post("/api/v1/devices/pairing-codes", json={})
    assert r.status_code == 201, (r.status_code, r.text[:300])
    return r.json()["code"]


def register(live_server, slug: str, code: str, uid: str | None = None, ip: str | None = None, **device):
    c = live_server.client(slug)
    c.headers["X-Real-IP"] = ip or fresh_ip()
    info = {"device_uid": secrets.token_hex(8) if uid is None else uid, "model": "Raw Phone", "os_version": "14",
            "app_version": "test", "sims": [{"slot": 1, "operator": "Op", "number": ""}]}
    info.update(device)
    return c.post("/api/device/v1/register", json={"code": code, "device": info})


def raw_device(live_server, slug: str, api=None, **device) -> tuple[int, str]:
    """Pair a device over the raw protocol; returns ``(device_id, token)``."""
    api = api or api_client(live_server, slug)
    r = register(live_server, slug, new_code(api), **device)
    assert r.status_code == 201, (r.status_code, r.text[:300])
    return r.json()["device_id"], r.json()["token"]


def submit(api, to, text: str = "hello", **fields) -> dict:
    r = api.post("/api/v1/messages", json={"text": text, "to": to, **fields})
    assert r.status_code == 202, (r.status_code, r.text[:500])
    return r.json()


def fetch(dev, wait: int = 0, limit: int = 10, settings_version: int | None = None, timeout: float = 40):
    query = f"/api/device/v1/messages?wait={wait}&limit={limit}"
    if settings_version is not None:
        query += f"&settings_version={settings_version}"
    return dev.get(query, timeout=timeout)


class LongPoll:
    """A raw long poll in a thread: ``.start()``, then ``.join()``; ``.response`` and ``.elapsed``."""

    def __init__(self, dev, wait: int = 30, limit: int = 10, settings_version: int | None = None):
        self.dev, self.wait, self.limit, self.settings_version = dev, wait, limit, settings_version
        self.response = None
        self.error = None
        self.started = self.finished = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        self.started = time.monotonic()
        try:
            self.response = fetch(self.dev, self.wait, self.limit, self.settings_version, timeout=self.wait + 20)
        except Exception as exc:  # reported by join()
            self.error = exc
        self.finished = time.monotonic()

    def start(self) -> "LongPoll":
        self._thread.start()
        return self

    def join(self, timeout: float) -> "LongPoll":
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the long poll did not return within {timeout} s"
        if self.error:
            raise self.error
        return self

    @property
    def done(self) -> bool:
        return self.finished is not None


def waiting_on(platform, slug: str, device_id: int) -> bool:
    """Is a long poll of this device parked on the server's wake-up hub right now?"""
    from addons.devices.service import wake_key

    return bool(platform.wakeups.waiters_of(wake_key(slug, device_id)))


@contextmanager
def tenant_db(tenant):
    with tenant_transaction(tenant.ref) as db:
        yield db


def sql(tenant, statement: str, params=None, fetch: bool = True):
    with tenant_transaction(tenant.ref) as db:
        cur = db.execute_sql(statement, params)
        return cur.fetchall() if fetch else cur.rowcount


def run_offline_sweep(platform, tenant):
    """Run the devices addon's per-tenant offline sweep as the worker does (tenant as the context)."""
    from addons.devices.hooks import sweep_offline_devices

    token = current_tenant.set(tenant.ref)
    try:
        return sweep_offline_devices(platform)
    finally:
        current_tenant.reset(token)


def history(api, message_id: int) -> dict:
    """``{recipient_id: [to_state, ...]}`` from GET /api/v1/messages/{id}."""
    r = api.get(f"/api/v1/messages/{message_id}")
    assert r.status_code == 200, r.text[:300]
    return {rec["id"]: [h["to"] for h in rec["history"]] for rec in r.json()["recipients"]}


def sign_in(live_server, slug: str, email: str, password: str = OWNER_PASSWORD) -> HostClient:
    """A browser-like session signed in through the /login form."""
    c = live_server.client(slug)
    c.headers["X-Real-IP"] = fresh_ip()
    r = c.get("/login")
    assert r.status_code == 200, r.status_code
    xsrf = c.cookies.get("_xsrf")
    assert xsrf
    r = c.post("/login", data={"email": email, "password": password, "_xsrf": xsrf})
    assert r.status_code == 302, (r.status_code, r.text[:300])
    assert c.cookies.get("smsgw_session")
    return c


class CuttableProxy:
    """A TCP proxy on 127.0.0.1 in front of the live server that a test can cut.

    * ``down()`` refuses new connections and severs every open one (the phone's
      network dropped); ``up()`` restores it.
    * ``plan(path, ["swallowed", "blocked", ...])``: what happens to the next requests
      to ``path``, in order, then they are forwarded again. *swallowed*: the request
      reaches the server and is answered there, but the answer never reaches the
      phone (the connection dies on the way back), the nastiest moment for a network
      drop; *blocked*: the connection is cut before the request reaches the server.
    * ``block(path)`` / ``unblock(path)``: cut every request to ``path`` until unblocked.

    The companion's client (urllib) opens one connection per request, so the
    request line read first names the whole connection.
    """

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._plans: dict[str, list[str]] = {}
        self._block: set[str] = set()
        self.is_down = False
        self.log: list[tuple[str, str, str]] = []  # (method, path, outcome)
        self._closed = False
        threading.Thread(target=self._accept_loop, daemon=True).start()

    # -- control --------------------------------------------------------------------
    def down(self) -> None:
        with self._lock:
            self.is_down = True
            socks, self._open = list(self._open), set()
        for s in socks:
            _kill(s)

    def up(self) -> None:
        with self._lock:
            self.is_down = False

    def plan(self, path: str, outcomes: list[str]) -> None:
        assert set(outcomes) <= {"swallowed", "blocked", "forwarded"}
        with self._lock:
            self._plans[path] = list(outcomes)

    def block(self, path: str) -> None:
        with self._lock:
            self._block.add(path)

    def unblock(self, path: str) -> None:
        with self._lock:
            self._block.discard(path)

    def count(self, path: str, outcome: str) -> int:
        with self._lock:
            return sum(1 for _, p, o in self.log if p == path and o == outcome)

    def close(self) -> None:
        self._closed = True
        self.down()
        try:
            self.listener.close()
        except OSError:
            pass

    # -- plumbing -------------------------------------------------------------------
    def _accept_loop(self):
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _handle(self, client: socket.socket):
        with self._lock:
            if self.is_down:
                _kill(client)
                return
            self._open.add(client)
        client.settimeout(10)
        head = b""
        try:
            while b"\r\n" not in head and len(head) < 65536:
                chunk = client.recv(65536)
                if not chunk:
                    break
                head += chunk
        except OSError:
            _kill(client)
            return
        client.settimeout(None)
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        method = parts[0] if parts else ""
        path = parts[1].split("?", 1)[0] if len(parts) > 1 else ""
        with self._lock:
            if self.is_down:
                outcome = "refused"
            elif path in self._block:
                outcome = "blocked"
            elif self._plans.get(path):
                outcome = self._plans[path].pop(0)
            else:
                outcome = "forwarded"
            self.log.append((method, path, outcome))
        if outcome in ("refused", "blocked"):
            self._forget(client)
            _kill(client)
            return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            upstream.settimeout(None)
        except OSError:
            self._forget(client)
            _kill(client)
            return
        with self._lock:
            if self.is_down:
                _kill(upstream)
                _kill(client)
                return
            self._open.add(upstream)
        try:
            upstream.sendall(head)
        except OSError:
            pass
        request_pump = threading.Thread(target=_pump, args=(client, upstream, None), daemon=True)
        request_pump.start()
        if outcome == "swallowed":
            sink = bytearray()
            _pump(upstream, None, sink)  # the server answers in full ...
            _kill(client)  # ... and the phone never hears it
        else:
            _pump(upstream, client, None)
            request_pump.join(30)  # the phone closes once it has read the answer
        self._forget(client, upstream)
        _kill(client)
        _kill(upstream)

    def _forget(self, *socks):
        with self._lock:
            for s in socks:
                self._open.discard(s)


def _pump(src: socket.socket, dst: socket.socket | None, sink: bytearray | None):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if dst is not None:
                dst.sendall(data)
            elif sink is not None:
                sink.extend(data)
    except OSError:
        pass
    finally:
        if dst is not None:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass


def _kill(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
