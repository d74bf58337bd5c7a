"""Shared pieces of ``bench_devices.py`` and ``bench_messaging.py``.

* a scratch PostgreSQL + database + role prefix + :class:`core.platform.Platform`,
  torn down at the end, also on Ctrl-C / SIGTERM (like ``bench_kernel.py``);
* child processes (the server under test, ``smsgw serve``, and the bare
  baselines) with their RSS and CPU time read from ``/proc/<pid>``;
* a tiny hand-written HTTP/1.1 keep-alive client on asyncio protocols, which
  timestamps a response the moment its last byte is parsed (``data_received``),
  for API calls and for thousands of simulated phones holding long polls;
* devices with real device tokens, made through ``addons.devices.service``.

Nothing here talks to anything but 127.0.0.1 and the scratch PostgreSQL's Unix socket.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import os
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for p in (str(ROOT), str(BENCH)):
    if p not in sys.path:
        sys.path.insert(0, p)

warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
warnings.filterwarnings("ignore", category=DeprecationWarning, module="pgserver.*")

import psycopg2  # noqa: E402

from core import dbsetup  # noqa: E402
from core.config import Settings  # noqa: E402
from core.embedded_pg import EmbeddedPostgres  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# -- output ------------------------------------------------------------------------------

def say(*args, **kwargs):
    print(*args, **kwargs, flush=True)


def section(title: str) -> None:
    say(f"\n== {title} ==  [{time.strftime('%H:%M:%S', time.gmtime())} UTC]")


def pct(values, q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    s = sorted(values)
    if not s:
        return float("nan")
    return s[max(0, min(len(s) - 1, math.ceil(q / 100 * len(s)) - 1))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C so the cleanup runs."""


def _on_sigterm(signum, frame):
    raise Terminated()


def install_sigterm() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)


def raise_nofile(want: int) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE towards ``want`` (children inherit it). Returns (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft, hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- /proc ---------------------------------------------------------------------------------

def proc_rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def proc_cpu_s(pid: int) -> float:
    """utime + stime of the whole process (all threads), in seconds."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def pg_cpu_s(pgdata: Path) -> float:
    """CPU seconds of a PostgreSQL cluster: the postmaster, its live children, and reaped ones."""
    try:
        pm = int((Path(pgdata) / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")

    def fields(pid):
        raw = Path(f"/proc/{pid}/stat").read_text()
        return raw[raw.rindex(")") + 2:].split()

    f = fields(pm)
    total = sum(int(x) for x in f[11:15])  # utime, stime, cutime, cstime (children it reaped)
    for d in Path("/proc").iterdir():
        if d.name.isdigit() and d.name != str(pm):
            try:
                f = fields(d.name)
            except OSError:
                continue
            if f[1] == str(pm):
                total += int(f[11]) + int(f[12])
    return total / CLK_TCK


def self_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def code_version() -> str:
    """The commit under test, and whether the work tree differs from it (the code may be edited meanwhile)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.splitlines()
        return f"git {head}" + (f" + {len(dirty)} modified file(s)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "git: unknown"


def loadavg() -> str:
    return "%.2f %.2f %.2f" % os.getloadavg()


# -- scratch database + platform --------------------------------------------------------------

class Child:
    """A child process whose output goes to a log file in the temp dir."""

    def __init__(self, name: str, argv: list[str], env: dict, logfile: Path):
        self.name = name
        self.logfile = logfile
        self._log = open(logfile, "wb")
        self.proc = subprocess.Popen(argv, env=env, cwd=str(ROOT), stdin=subprocess.DEVNULL,
                                     stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_kb(self) -> int:
        return proc_rss_kb(self.pid)

    def cpu_s(self) -> float:
        return proc_cpu_s(self.pid)

    def tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def wait_http(port: int, path: str = "/health/live", host: str = "localhost", timeout: float = 60.0,
              child: Child | None = None) -> None:
    """Block until GET ``path`` answers 200 on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            raise RuntimeError(f"{child.name} exited with {child.proc.returncode}:\n{child.tail()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
                data = s.recv(200)
                if data.startswith(b"HTTP/1.1 200"):
                    return
                last = data[:80]
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered 200 on 127.0.0.1:{port}{path} within {timeout:.0f} s (last: {last!r})"
                       + (f"\n{child.tail()}" if child else ""))


class Scratch:
    """Embedded PostgreSQL in a temp dir, a scratch database + role prefix, a Platform; all removed at the end."""

    def __init__(self, fast: bool, tag: str):
        self.fast = fast
        self.tag = tag
        self.tmp = Path(tempfile.mkdtemp(prefix=f"smsgw-bench-{tag}-"))
        self.pg = None
        self.server_url = None
        self.dbname = None
        self.prefix = None
        self.platform = None
        self.env: dict = {}
        self.children: list[Child] = []
        self.conns: list = []
        self.pg_version = "?"
        self.fsync = "?"

    def start(self, bcrypt_cost: int = 4) -> "Scratch":
        from core.platform import Platform

        self.pg = EmbeddedPostgres(self.tmp / "pg", fast=self.fast)
        self.server_url = self.pg.start()
        token = secrets.token_hex(3)
        self.dbname, self.prefix = f"smsgw_bench_{token}", f"bch{token}"
        dbsetup.ensure_database(self.server_url, self.dbname)
        self.env = {
            "DATABASE_URL": dbsetup.with_database(self.server_url, self.dbname),
            "SMSGW_DB_ROLE_PREFIX": self.prefix,
            "SMSGW_DATA_DIR": str(self.tmp / "data"),
            "SMSGW_BASE_DOMAIN": "localhost",
        }
        self.platform = Platform(Settings.from_env(dict(self.env)))
        self.platform.bcrypt_cost = bcrypt_cost
        self.platform.start_database(progress=say)
        self.platform.migrate()
        conn = psycopg2.connect(self.server_url)
        try:
            with conn.cursor() as cur:
                cur.execute("SHOW server_version")
                self.pg_version = cur.fetchone()[0]
                cur.execute("SHOW fsync")
                self.fsync = cur.fetchone()[0]
        finally:
            conn.close()
        return self

    @property
    def admin_url(self) -> str:
        return self.env["DATABASE_URL"]

    def admin_conn(self):
        conn = psycopg2.connect(self.admin_url)
        self.conns.append(conn)
        return conn

    def child_env(self, **extra) -> dict:
        # SMSGW_METRICS_ADDRESS passes: the server is then measured with its metrics on.
        env = {k: v for k, v in os.environ.items()
               if not (k.startswith("SMSGW_") or k in ("DATABASE_URL", "REDIS_URL")) or k == "SMSGW_METRICS_ADDRESS"}
        env.update(self.env)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
        env["PYTHONWARNINGS"] = "ignore"
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def spawn(self, name: str, argv: list[str], **extra_env) -> Child:
        child = Child(name, argv, self.child_env(**extra_env), self.tmp / f"{name}.log")
        self.children.append(child)
        return child

    def start_smsgw(self, port: int | None = None) -> tuple[Child, int]:
        """``python -m core.cli serve`` (what ``smsgw serve`` runs), bound to 127.0.0.1."""
        port = port or free_port()
        child = self.spawn("smsgw-serve", [sys.executable, "-m", "core.cli", "serve", "--port", str(port)],
                           SMSGW_BIND="127.0.0.1")
        wait_http(port, child=child)
        return child, port

    def cleanup(self) -> None:
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        failed = []
        try:
            steps = [(f"stop {c.name}", c.stop) for c in reversed(self.children)]
            steps += [("close connections", lambda: [c.close() for c in self.conns if not c.closed]),
                      ("close platform", lambda: self.platform and self.platform.close()),
                      ("drop scratch database and roles",
                       lambda: self.dbname and dbsetup.drop_database(self.server_url, self.dbname, self.prefix)),
                      ("stop PostgreSQL", lambda: self.pg and self.pg.destroy())]
            for step, fn in steps:
                try:
                    fn()
                except Exception as exc:  # keep going: the later steps matter more
                    failed.append(step)
                    say(f"cleanup: could not {step}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
            sock = self.pg.socket_dir if self.pg else None
            shutil.rmtree(self.tmp, ignore_errors=True)
            if sock and str(sock).startswith(tempfile.gettempdir()) and not str(sock).startswith(str(self.tmp)):
                shutil.rmtree(sock, ignore_errors=True)
            if failed:
                say(f"cleanup: done, except: {', '.join(failed)}; temp dir {self.tmp} removed.")
            else:
                say("cleanup: child processes stopped, scratch database and roles dropped, PostgreSQL stopped, "
                    "temp dir removed.")
        finally:
            signal.signal(signal.SIGINT, old_int)
            signal.signal(signal.SIGTERM, old_term)


def run_main(tag: str, fast: bool, body) -> int:
    """Run ``body(scratch)`` with cleanup on any exit; 130 on Ctrl-C / SIGTERM."""
    import logging

    install_sigterm()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    scratch = Scratch(fast, tag)
    try:
        return body(scratch)
    except KeyboardInterrupt as exc:
        say("\nInterrupted" + (" (SIGTERM)" if isinstance(exc, Terminated) else "") + "; cleaning up ...")
        return 130
    finally:
        scratch.cleanup()


# -- tenants, tokens, devices ------------------------------------------------------------------

def make_tenant(platform, slug: str, name: str | None = None):
    tenant = platform.tenants.create(slug, name or f"Bench {slug}", f"owner@{slug}.example", "bench password 1234")
    subscribe_to_bench_plan(tenant)
    record_only_bench_traffic(tenant)
    return tenant


def record_only_bench_traffic(tenant) -> None:
    """The benchmarks send one text to thousands of sequential numbers from a brand-new workspace:
    what the abuse addon's rules hold for review. As an operator would for a known load test, the
    workspace gets per-workspace overrides that only record those findings (every check still runs
    on every send; nothing is held). No-op without the abuse addon."""
    from core.db import app_db, connection

    with connection():
        with app_db.atomic():
            if app_db.execute_sql("SELECT to_regclass('public.abuse_rule_overrides')").fetchone()[0]:
                app_db.execute_sql(
                    "INSERT INTO public.abuse_rule_overrides (tenant_id, rule, action, reason) "
                    "SELECT %s, r, 'record', 'benchmark traffic' FROM unnest(ARRAY['sequential', 'identical_text']) r "
                    "ON CONFLICT DO NOTHING", (tenant.id,))


def subscribe_to_bench_plan(tenant) -> None:
    """A paying workspace's subscription, in place of the default plan's it got when it was made: a
    plan with overage (so its sends take the billing addon's quota path as they would in production:
    from the cache) and no device, member or rate limit (the free plan's would stop a benchmark)."""
    from core.db import app_db, connection

    with connection(), app_db.atomic():
        app_db.execute_sql("""
            INSERT INTO public.billing_plan_versions (plan_code, version, name, currency, monthly_price,
                   yearly_price, included_segments, overage_per_1000, public)
            SELECT 'bench', 1, 'Bench', 'EUR', 0, 0, 1000000000, 100, false
             WHERE NOT EXISTS (SELECT 1 FROM public.billing_plan_versions WHERE plan_code = 'bench')""")
        app_db.execute_sql("""
            INSERT INTO public.billing_subscriptions (tenant_id, plan_version_id, status, period_start, period_end)
            SELECT %s, id, 'active', now() - interval '1 day', now() + interval '29 days'
              FROM public.billing_plan_versions WHERE plan_code = 'bench' AND retired_at IS NULL
            ON CONFLICT (tenant_id) DO UPDATE SET plan_version_id = excluded.plan_version_id, status = 'active',
                   period_start = excluded.period_start, period_end = excluded.period_end""", (tenant.id,))


def api_token(tenant) -> str:
    """A real API token (``sgw_…``) with all scopes, made like ``tests/support/phones.py`` does."""
    from core.db import tenant_transaction
    from core.identity import create_api_token

    scopes = ["messages:send", "messages:read", "devices:read", "devices:write", "settings:write"]
    with tenant_transaction(tenant.ref):
        _, token = create_api_token(tenant.slug, "bench token", scopes, None)
    return token


def create_devices(tenant, n: int, label: str, settings_patch: dict | None = None,
                   chunk: int = 250) -> list[tuple[int, str]]:
    """``n`` devices paired the real way (a pairing code spent by ``service.register``), in tenant
    transactions of ``chunk`` devices. Returns ``[(device_id, device_token)]``."""
    from core.db import tenant_transaction
    from addons.devices import service

    out = []
    for start in range(0, n, chunk):
        with tenant_transaction(tenant.ref):
            for i in range(start, min(n, start + chunk)):
                code, _ = service.create_pairing_code("bench")
                device, token, _ = service.register(tenant.slug, code, {
                    "device_uid": f"{label}-{i:06d}", "name": f"{label} {i}", "model": "bench phone",
                    "app_version": "bench", "sims": [{"slot": 1, "operator": "bench", "number": ""}]})
                if settings_patch:
                    service.update_settings(device.id, settings_patch)
                out.append((device.id, token))
    return out


NO_LIMITS = {"limits": {"per_minute": 0, "per_hour": 0, "per_day": 0}}


def tenant_host(tenant, port: int) -> str:
    return f"{tenant.slug}.localhost:{port}"


# -- HTTP/1.1 on asyncio protocols -----------------------------------------------------------

def http_request(method: str, path: str, host: str, headers: dict | None = None, body: bytes | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


class HttpError(Exception):
    pass


class HttpClient(asyncio.Protocol):
    """One keep-alive connection, one request at a time. ``on_response(status, body, t)`` is called
    with ``t = time.perf_counter()`` taken as soon as the response's last byte is parsed."""

    def __init__(self):
        self.transport = None
        self.buf = bytearray()
        self.connected = asyncio.get_running_loop().create_future()
        self.future = None
        self.closed = False
        self.responses = 0

    # protocol
    def connection_made(self, transport):
        self.transport = transport
        if not self.connected.done():
            self.connected.set_result(True)

    def connection_lost(self, exc):
        self.closed = True
        if not self.connected.done():
            self.connected.set_exception(exc or HttpError("connection closed"))
        if self.future is not None and not self.future.done():
            self.future.set_exception(HttpError(f"connection lost: {exc}"))
        self.on_lost(exc)

    def on_lost(self, exc):
        pass

    def data_received(self, data):
        self.buf += data
        while True:
            parsed = self._parse()
            if parsed is None:
                return
            self.responses += 1
            self.on_response(*parsed)

    def _parse(self):
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = bytes(buf[:end]).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        length, chunked = 0, False
        for line in head[1:]:
            k, _, v = line.partition(":")
            k = k.strip().lower()
            if k == "content-length":
                length = int(v)
            elif k == "transfer-encoding" and "chunked" in v.lower():
                chunked = True
        start = end + 4
        if chunked:
            body, pos = bytearray(), start
            while True:
                nl = buf.find(b"\r\n", pos)
                if nl < 0:
                    return None
                size = int(bytes(buf[pos:nl]).split(b";")[0], 16)
                if len(buf) < nl + 2 + size + 2:
                    return None
                body += buf[nl + 2:nl + 2 + size]
                pos = nl + 2 + size + 2
                if size == 0:
                    break
            del buf[:pos]
            return status, bytes(body), time.perf_counter()
        if len(buf) < start + length:
            return None
        body = bytes(buf[start:start + length])
        del buf[:start + length]
        return status, body, time.perf_counter()

    def on_response(self, status, body, t):
        fut, self.future = self.future, None
        if fut is not None and not fut.done():
            fut.set_result((status, body, t))

    # client side
    def send(self, raw: bytes) -> float:
        t = time.perf_counter()
        self.transport.write(raw)
        return t

    def request(self, raw: bytes):
        """Send a request; returns ``(t_sent, future -> (status, body, t_received))``."""
        if self.future is not None:
            raise HttpError("one request at a time")
        self.future = asyncio.get_running_loop().create_future()
        return self.send(raw), self.future

    def close(self):
        if self.transport is not None:
            self.transport.close()


async def connect(factory=HttpClient, port: int = 0):
    loop = asyncio.get_running_loop()
    _, proto = await loop.create_connection(factory, "127.0.0.1", port)
    await proto.connected
    return proto


class ApiClient:
    """An API caller on ``connections`` keep-alive connections to one tenant host."""

    def __init__(self, port: int, host: str, token: str | None):
        self.port, self.host = port, host
        self.headers = {"Accept": "application/json", "Content-Type": "application/json",
                        "User-Agent": "smsgw-bench"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.conn: HttpClient | None = None

    async def open(self):
        self.conn = await connect(HttpClient, self.port)
        return self

    async def call(self, method: str, path: str, payload=None, timeout: float = 30.0):
        """``(status, parsed JSON or raw bytes, t_sent, t_received)``."""
        body = None if payload is None else json.dumps(payload).encode()
        raw = http_request(method, path, self.host, self.headers, body)
        if self.conn is None or self.conn.closed:
            await self.open()
        t0, fut = self.conn.request(raw)
        status, data, t1 = await asyncio.wait_for(fut, timeout)
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data
        return status, parsed, t0, t1

    def close(self):
        if self.conn:
            self.conn.close()


# -- simulated phones holding long polls ----------------------------------------------------------

class Phone(HttpClient):
    """A phone's connection: ``poll(wait)`` sends GET /api/device/v1/messages; responses go to the fleet."""

    def __init__(self, fleet: "Fleet", index: int, token: str, host: str):
        super().__init__()
        self.fleet, self.index = fleet, index
        self.token, self.host = token, host
        self.outstanding = False
        self.polls = 0
        self.empties = 0  # answers without messages: the wait ended (expired)

    def poll(self, wait: int, limit: int = 10) -> None:
        self.outstanding = True
        self.polls += 1
        self.send(http_request("GET", f"/api/device/v1/messages?wait={wait}&limit={limit}", self.host,
                               {"Authorization": f"Bearer {self.token}", "Accept": "application/json",
                                "User-Agent": "smsgw-bench-phone"}))

    def on_response(self, status, body, t):
        self.outstanding = False
        self.fleet.on_response(self, status, body, t)

    def on_lost(self, exc):
        self.fleet.lost += 1


class Fleet:
    """Many phones on one server. After each answer a phone polls again (``repoll``) like the companion."""

    def __init__(self, port: int):
        self.port = port
        self.phones: list[Phone] = []
        self.repoll = False
        self.wait = 60
        self.limit = 10
        self.received: dict[int, tuple[float, int]] = {}  # recipient id -> (t, phone index)
        self.watch: dict[int, asyncio.Future] = {}
        self.counts = {"answers": 0, "with_messages": 0, "empty": 0, "errors": 0}
        self.error_samples: list[str] = []
        self.lost = 0
        self.answered = 0  # answers to the first poll of a ramp (see ramp)
        self._ramp_waiters: dict[Phone, asyncio.Future] = {}

    def on_response(self, phone: Phone, status: int, body: bytes, t: float) -> None:
        self.counts["answers"] += 1
        if status != 200:
            self.counts["errors"] += 1
            if len(self.error_samples) < 5:
                self.error_samples.append(f"{status} {body[:200]!r}")
        else:
            msgs = json.loads(body).get("messages") or []
            if msgs:
                self.counts["with_messages"] += 1
                for m in msgs:
                    self.received[m["id"]] = (t, phone.index)
                    fut = self.watch.pop(m["id"], None)
                    if fut is not None and not fut.done():
                        fut.set_result((t, phone.index))
            else:
                self.counts["empty"] += 1
                phone.empties += 1
        fut = self._ramp_waiters.pop(phone, None)
        if fut is not None and not fut.done():
            fut.set_result(status)
        if self.repoll and status == 200 and not phone.closed:
            phone.poll(self.wait, self.limit)

    def expect(self, recipient_id: int) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        if recipient_id in self.received:
            fut.set_result(self.received[recipient_id])
        else:
            self.watch[recipient_id] = fut
        return fut

    async def connect_all(self, devices: list[tuple[int, str, str]], parallel: int = 64, progress=None) -> float:
        """Open one connection per ``(device_id, token, host)``; returns the seconds it took."""
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(parallel)
        t0 = time.perf_counter()
        done = 0

        async def one(i, token, host):
            nonlocal done
            async with sem:
                for attempt in range(5):
                    try:
                        _, proto = await loop.create_connection(lambda: Phone(self, i, token, host),
                                                                "127.0.0.1", self.port)
                        break
                    except OSError:
                        if attempt == 4:
                            raise
                        await asyncio.sleep(0.2 * (attempt + 1))
                self.phones.append(proto)
                done += 1
                if progress and done % 2000 == 0:
                    progress(done)

        base = len(self.phones)
        await asyncio.gather(*(one(base + i, tok, host) for i, (_id, tok, host) in enumerate(devices)))
        return time.perf_counter() - t0

    async def poll_all(self, phones: list[Phone], wait: int, parallel: int, expect_answer: bool,
                       progress=None, rate: float = 0.0) -> float:
        """Each phone sends one poll, at most ``parallel`` outstanding at a time when answers are
        expected (``wait=0``); for long polls all are sent, paced in groups of ``parallel``, or at
        ``rate`` polls per second when given."""
        t0 = time.perf_counter()
        loop = asyncio.get_running_loop()
        if expect_answer:
            sem = asyncio.Semaphore(parallel)
            done = 0

            async def one(ph):
                nonlocal done
                async with sem:
                    fut = loop.create_future()
                    self._ramp_waiters[ph] = fut
                    ph.poll(wait, self.limit)
                    status = await asyncio.wait_for(fut, 120)
                    if status != 200:
                        raise HttpError(f"phone {ph.index}: first poll answered {status}: "
                                        f"{self.error_samples[-1:]}")
                    done += 1
                    if progress and done % 2000 == 0:
                        progress(done)

            await asyncio.gather(*(one(ph) for ph in phones))
        elif rate > 0:
            step = max(1, int(rate / 50))  # groups every 20 ms
            for k in range(0, len(phones), step):
                for ph in phones[k:k + step]:
                    ph.poll(wait, self.limit)
                await asyncio.sleep(max(0.0, t0 + (k + step) / rate - time.perf_counter()))
        else:
            for k in range(0, len(phones), parallel):
                for ph in phones[k:k + parallel]:
                    ph.poll(wait, self.limit)
                await asyncio.sleep(0)  # let the writes go out
        return time.perf_counter() - t0

    def close_all(self) -> None:
        for ph in self.phones:
            ph.close()
        self.phones = []


def db_count(conn, sql_text: str, params=()) -> int:
    with conn.cursor() as cur:
        cur.execute(sql_text, params)
        value = cur.fetchone()[0]
    conn.commit()
    return value


async def wait_quiet(child: Child, threshold: float = 0.05, window: float = 1.0, timeout: float = 120.0,
                     check=None) -> float:
    """Until ``child`` used less than ``threshold`` CPU-seconds in a ``window`` (and ``check()`` is
    true); returns the seconds waited. Sleeps on the event loop, so phones keep being served."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        c0 = child.cpu_s()
        await asyncio.sleep(window)
        if child.cpu_s() - c0 < threshold and (check is None or check()):
            return time.monotonic() - t0
    raise RuntimeError(f"{child.name} did not go quiet within {timeout:.0f} s")


# -- wake latency: API send -> phone receives ----------------------------------------------------------

class Sender:
    def __init__(self, api: ApiClient, fleet: Fleet):
        self.api, self.fleet = api, fleet
        self.seq = 0

    async def send_one(self, timeout: float = 10.0):
        """One single-recipient POST; returns (post->202, 202->phone, post->phone, phone index) or None."""
        self.seq += 1
        phone = "+1415555%04d" % (self.seq % 10000)
        status, body, t0, t1 = await self.api.call("POST", "/api/v1/messages",
                                                  {"text": f"bench wake {self.seq}", "to": phone})
        if status != 202:
            raise RuntimeError(f"POST /api/v1/messages answered {status}: {body}")
        rid = body["recipients"][0]["id"]
        try:
            t2, idx = await asyncio.wait_for(self.fleet.expect(rid), timeout)
        except asyncio.TimeoutError:
            self.fleet.watch.pop(rid, None)
            return None
        return t1 - t0, t2 - t1, t2 - t0, idx

    async def run(self, n: int, warmup: int, gap_ms: float, label: str) -> dict:
        for _ in range(warmup):
            await self.send_one()
            await asyncio.sleep(gap_ms / 1000)
        answers0 = dict(self.fleet.counts)
        samples, lost, phones = [], 0, set()
        t_start = time.perf_counter()
        for i in range(n):
            r = await self.send_one()
            if r is None:
                lost += 1
            else:
                samples.append(r)
                phones.add(r[3])
            await asyncio.sleep(random.uniform(0.6, 1.4) * gap_ms / 1000)
        wall = time.perf_counter() - t_start
        other = {k: self.fleet.counts[k] - answers0[k] for k in answers0}
        api = [s[0] for s in samples]
        wake = [s[1] for s in samples]
        full = [s[2] for s in samples]
        res = {"label": label, "n": len(samples), "lost": lost, "wall": wall, "phones": len(phones),
               "api_p50": pct(api, 50), "api_p99": pct(api, 99),
               "p50": pct(wake, 50), "p99": pct(wake, 99), "max": max(wake) if wake else float("nan"),
               "full_p50": pct(full, 50), "full_p99": pct(full, 99), "negative": sum(1 for w in wake if w < 0),
               "other": other, "wake": wake, "full": full}
        say(f"  {label}: {len(samples)} sends in {wall:.1f} s ({lost} not received within 10 s), received by "
            f"{len(phones)} distinct phone(s)")
        say(f"    202 answered -> phone has it:   p50 {ms(res['p50'])}, p90 {ms(pct(wake, 90))}, p95 "
            f"{ms(pct(wake, 95))}, p99 {ms(res['p99'])}, max {ms(res['max'])}  (before the 202: {res['negative']})")
        say(f"    POST sent -> 202 received:      p50 {ms(res['api_p50'])}, p99 {ms(res['api_p99'])}")
        say(f"    POST sent -> phone has it:      p50 {ms(res['full_p50'])}, p99 {ms(res['full_p99'])}")
        say(f"    phone answers meanwhile: {other['with_messages']} with messages, {other['empty']} empty (expired "
            f"polls), {other['errors']} errors")
        return res


# -- optional profiling of the server with py-spy ----------------------------------------------------

class Profiler:
    """``--profile DIR``: py-spy records the server under test during each measured phase
    (collapsed stacks, ``<phase>.txt``, grep-able). Only samples of the thread holding the GIL
    are kept (``--gil``): where the process's one core of Python time goes."""

    def __init__(self, directory: str | None):
        self.dir = Path(directory).resolve() if directory else None
        self.exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.proc = None
        self.path = None
        if self.dir:
            if not Path(self.exe).exists():
                raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
            self.dir.mkdir(parents=True, exist_ok=True)

    def start(self, pid: int, name: str) -> None:
        if not self.dir:
            return
        self.stop()
        self.path = self.dir / f"{name}.txt"
        self.proc = subprocess.Popen([self.exe, "record", "-p", str(pid), "-o", str(self.path), "-f", "raw",
                                      "-r", "250", "--nonblocking", "--gil", "--threads"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        say(f"  (py-spy profile of the server written to {self.path})")
        self.proc = None
