"""Idle cost: what the platform spends doing nothing, by number of workspaces, and how late due work is.

Run with ``.venv/bin/python bench/bench_idle.py``; ``--help`` lists the knobs, ``--fast`` is a quick
check. A PostgreSQL is started here in a temp dir with a scratch database + role prefix, all
dropped at the end, also on Ctrl-C.

For each size (default 10, 1,000 and 3,000 workspaces; the workspaces are added between sizes with
the server stopped, through ``TenantService.create`` in a few threads) the bench starts
``smsgw serve --with-worker`` (the embedded shape: web + worker in one process), lets it warm up,
then measures several windows (default 3 of 60 s) of:

* server CPU-s/min (the serve process) and PostgreSQL CPU-s/min (the whole cluster);
* commits/min (``pg_stat_database.xact_commit`` of the database) and WAL bytes/min
  (``pg_current_wal_lsn``);
* the worker's queue depth (tasks waiting in the Huey tables; sampled each second: mean and max);
* the largest private memory (``RssAnon``) of one PostgreSQL backend of the database, at the end.

The target: the largest size costs at most 1.2x the 10-workspace figure on every one of those.

Then, with the largest number of idle workspaces around it, the latency of due work in the
workspace created last: a scheduled send reaches a phone waiting in a long poll (seconds after its
``send_at``); a webhook that failed once is retried (seconds after the ``next_attempt_at`` it
recorded); a phone that polled once and went silent is marked offline (seconds after it became
overdue: last contact + 120 s). Targets: 1 s, 1 s, and within the bound (1 s here).

The same script runs on older code (it only uses what ``main`` has), so before/after come from the
same machine. The exit code is 0 whatever the figures; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg2  # noqa: E402
import requests  # noqa: E402

from _benchlib import (  # noqa: E402
    Profiler,
    code_version, free_port, loadavg, pg_cpu_s, run_main, say, section, verdict, wait_http,
)

TARGET = 1.2
LATENCY_TARGET = 1.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10,1000,3000", help="workspace counts, ascending (default 10,1000,3000)")
    p.add_argument("--windows", type=int, default=None, help="measured windows per size (default 3; 2 with --fast)")
    p.add_argument("--window-seconds", type=float, default=None, help="seconds per window (default 60; 20 with --fast)")
    p.add_argument("--warmup", type=float, default=None, help="seconds of warm-up per size (default 70; 25 with --fast)")
    p.add_argument("--create-threads", type=int, default=4, help="threads creating workspaces (default 4)")
    p.add_argument("--no-latency", action="store_true", help="skip the latency of due work")
    p.add_argument("--before-code", metavar="DIR",
                   help="also measure the server of an older checkout (e.g. a `git worktree` of main) on the same "
                        "database and workspaces, before this tree's: before/after from one run")
    p.add_argument("--fast", action="store_true", help="PostgreSQL with fsync=off, short windows (not realistic)")
    p.add_argument("--profile", metavar="DIR", help="record each server's Python stacks with py-spy during its "
                   "windows into DIR/<side>-<size>.txt (what the idle CPU is spent on)")
    args = p.parse_args(argv)
    args.sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    if args.sizes != sorted(args.sizes) or args.sizes[0] < 1:
        p.error("--sizes must be ascending and positive")
    args.windows = args.windows or (2 if args.fast else 3)
    args.window_seconds = args.window_seconds or (20.0 if args.fast else 60.0)
    args.warmup = args.warmup if args.warmup is not None else (25.0 if args.fast else 70.0)
    return args


# -- workspaces -------------------------------------------------------------------------------------

def grow(platform, have: int, want: int, threads: int) -> float:
    """Create workspaces ``idle-<n>`` up to ``want``; returns the seconds it took."""
    t0 = time.perf_counter()

    def make(n):
        slug = f"idle-{n:05d}"
        platform.tenants.create(slug, f"Idle {n}", f"owner@{slug}.example", "bench password 1234")

    done = have
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(make, range(have, want)):
            done += 1
            if done % 250 == 0:
                say(f"    {done} workspaces ({time.perf_counter() - t0:.0f} s)")
    return time.perf_counter() - t0


def settle(scratch) -> None:
    """After creating workspaces: vacuum and checkpoint, so autovacuum's and the checkpointer's
    work on thousands of new tables does not land in the windows."""
    t0 = time.perf_counter()
    conn = psycopg2.connect(scratch.admin_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("VACUUM (ANALYZE)")
            cur.execute("CHECKPOINT")
    finally:
        conn.close()
    say(f"  vacuum + checkpoint: {time.perf_counter() - t0:.1f} s")
    first_repair_pass(scratch)


def first_repair_pass(scratch) -> None:
    """The due-work repair pass enters each workspace once after it was created (its first hour)
    and then only workspaces that changed: run that first pass now, so that the windows measure the
    steady state, and time both kinds of pass."""
    from core import due
    from core.db import app_db

    jobs = list(scratch.platform.setup_tasks().due_jobs.values())
    t0 = time.perf_counter()
    _, entered, armed = due.repair(jobs)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    counters = due.write_counters()
    read = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, again, _armed = due.repair(jobs, counters=counters)
    steady = time.perf_counter() - t0
    app_db.close_all()
    say(f"  due-work repair pass: first {first:.1f} s ({entered} workspaces entered, {armed} armed); "
        f"then write counters read in {read * 1000:.0f} ms and a pass in {steady:.2f} s ({again} entered)")


# -- measuring ----------------------------------------------------------------------------------------

class Meter:
    def __init__(self, scratch, server):
        self.scratch, self.server = scratch, server
        self.conn = psycopg2.connect(scratch.admin_url)
        self.conn.autocommit = True
        self.queue_schema = f"{scratch.prefix}_queue"

    def _sql(self, q, params=()):
        with self.conn.cursor() as cur:
            cur.execute(q, params)
            return cur.fetchone()

    def snapshot(self) -> dict:
        commits, = self._sql("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
        lsn, = self._sql("SELECT pg_current_wal_lsn()::text")
        return {"t": time.monotonic(), "server": self.server.cpu_s(), "pg": pg_cpu_s(self.scratch.pg.pgdata),
                "commits": commits, "lsn": lsn}

    def wal_between(self, a: str, b: str) -> int:
        return int(self._sql("SELECT pg_wal_lsn_diff(%s, %s)", (b, a))[0])

    def wal_by_kind(self, a: str, b: str, top: int = 4) -> str:
        """What the WAL between two positions was made of (pg_waldump --stats): the largest
        resource managers by bytes, e.g. "Heap 61 %, Btree 20 %"."""
        import subprocess

        from core.embedded_pg import _bin

        run = subprocess.run([_bin("pg_waldump"), "-p", str(Path(self.scratch.pg.pgdata) / "pg_wal"), "-s", a,
                              "-e", b, "--stats"], capture_output=True, text=True)
        kinds = []
        for line in run.stdout.splitlines():
            parts = line.split()
            # "Heap   123 ( 45.67)   4567 ( 12.34)   89 ( 1.0)   4656 ( 40.0)": the last figure is
            # the share of all bytes (record + full-page images).
            if len(parts) >= 9 and parts[0] not in ("Type", "Total") and not parts[0].startswith("-"):
                try:
                    kinds.append((float(parts[-1].strip("()")), parts[0]))
                except ValueError:
                    continue
        kinds.sort(reverse=True)
        return ", ".join(f"{name} {share:.0f} %" for share, name in kinds[:top]) or "(pg_waldump gave nothing)"

    def queue_depth(self) -> int:
        try:
            return self._sql(f'SELECT count(*) FROM "{self.queue_schema}".task')[0]
        except psycopg2.Error:
            return 0

    def backend_rss_anon_mb(self) -> float:
        """The largest private memory of one backend of this database (catalogue caches live there)."""
        with self.conn.cursor() as cur:
            cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
            pids = [r[0] for r in cur.fetchall()]
        best = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("RssAnon:"):
                        best = max(best, int(line.split()[1]))
            except OSError:
                continue
        return best / 1024

    def close(self):
        self.conn.close()


def measure(meter: Meter, windows: int, seconds: float) -> list[dict]:
    out = []
    for _ in range(windows):
        depths = []
        a = meter.snapshot()
        end = a["t"] + seconds
        while time.monotonic() < end:
            depths.append(meter.queue_depth())
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
        b = meter.snapshot()
        per_min = 60.0 / (b["t"] - a["t"])
        w = {"server": (b["server"] - a["server"]) * per_min, "pg": (b["pg"] - a["pg"]) * per_min,
             "commits": (b["commits"] - a["commits"] - len(depths) - 2) * per_min,  # less our own queries
             "wal": meter.wal_between(a["lsn"], b["lsn"]) / 1024 * per_min,
             "queue_mean": statistics.mean(depths) if depths else 0, "queue_max": max(depths) if depths else 0}
        say(f"    window: server {w['server']:.2f} CPU-s/min, PostgreSQL {w['pg']:.2f} CPU-s/min, "
            f"{w['commits']:.0f} commits/min, {w['wal']:.1f} KB WAL/min, queue mean {w['queue_mean']:.1f} "
            f"max {w['queue_max']}")
        say(f"      WAL by kind: {meter.wal_by_kind(a['lsn'], b['lsn'])}")
        out.append(w)
    return out


FIGURES = [("server", "server CPU-s/min", "{:.2f}"), ("pg", "PostgreSQL CPU-s/min", "{:.2f}"),
           ("commits", "commits/min", "{:.0f}"), ("wal", "WAL KB/min", "{:.1f}"),
           ("queue_mean", "queue depth (mean)", "{:.1f}"), ("queue_max", "queue depth (max)", "{:.0f}"),
           ("backend_mb", "largest backend RssAnon MB", "{:.1f}")]


def median_of(windows: list[dict], key: str) -> float:
    return statistics.median(w[key] for w in windows)


# -- latency of due work --------------------------------------------------------------------------------

class Receiver:
    """Webhook receiver on 127.0.0.1: answers 500 to the first request, 200 after; records arrivals."""

    def __init__(self):
        self.arrivals: list[dt.datetime] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.arrivals.append(dt.datetime.now(dt.timezone.utc))
                status = 500 if len(receiver.arrivals) == 1 else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def latency(scratch, port: int, tenant) -> dict:
    from core.db import tenant_transaction
    from core.identity import create_api_token
    from _benchlib import create_devices

    scopes = ["messages:send", "messages:read", "devices:read", "devices:write", "webhooks:read", "webhooks:write"]
    with tenant_transaction(tenant.ref):
        _, token = create_api_token(tenant.slug, "latency", scopes, None)
    [(device_id, device_token)], = [create_devices(tenant, 1, "latency")]
    [(silent_id, silent_token)], = [create_devices(tenant, 1, "silent")]
    host = f"{tenant.slug}.localhost:{port}"
    base = f"http://127.0.0.1:{port}"
    api = requests.Session()
    api.headers.update({"Host": host, "Authorization": f"Bearer {token}"})

    def device(tok):
        s = requests.Session()
        s.headers.update({"Host": host, "Authorization": f"Bearer {tok}"})
        return s

    phone, silent = device(device_token), device(silent_token)
    # The silent phone polls once (comes online) and says nothing after.
    assert silent.get(base + "/api/device/v1/messages", params={"wait": 0}, timeout=30).status_code == 200
    conn = psycopg2.connect(scratch.admin_url)
    conn.autocommit = True
    schema = tenant.schema_name

    def one(q, params=()):
        with conn.cursor() as cur:
            cur.execute(q, params)
            return cur.fetchone()

    silent_seen, = one(f"SELECT last_seen_at FROM {schema}.devices WHERE id = %s", (silent_id,))
    out = {}

    # A webhook that fails once: its retry comes at the next_attempt_at it recorded.
    receiver = Receiver()
    r = api.post(base + "/api/v1/webhooks", json={"url": receiver.url, "events": ["system:ping"]}, timeout=30)
    assert r.status_code == 201, r.text
    endpoint_id = r.json()["id"]
    r = api.post(base + f"/api/v1/webhooks/{endpoint_id}/ping", json={}, timeout=30)
    assert r.status_code == 202, r.text
    delivery_id = r.json()["delivery_id"]

    # A scheduled send 6 s ahead, with the phone waiting in a long poll.
    drained = phone.get(base + "/api/device/v1/messages", params={"wait": 0, "limit": 100}, timeout=30)
    assert drained.status_code == 200
    arrived = {}

    def poll():
        r = phone.get(base + "/api/device/v1/messages", params={"wait": 25, "limit": 10}, timeout=40)
        arrived["at"] = dt.datetime.now(dt.timezone.utc)
        arrived["n"] = len(r.json().get("messages", [])) if r.status_code == 200 else -1

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    time.sleep(0.5)
    send_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=6)
    r = api.post(base + "/api/v1/messages", json={"to": ["+14155550100"], "text": "on time?",
                                                  "send_at": send_at.isoformat()}, timeout=30)
    assert r.status_code == 202, r.text
    poller.join(40)
    out["scheduled send"] = ((arrived["at"] - send_at).total_seconds() if arrived.get("n", 0) > 0 else float("nan"))

    deadline = time.monotonic() + 200
    while time.monotonic() < deadline and len(receiver.arrivals) < 2:
        time.sleep(0.05)
    # The first attempt's failure recorded the retry's time; the successful retry leaves it as it was.
    retry_at, attempts = one(f"SELECT next_attempt_at, attempts FROM {schema}.webhook_deliveries WHERE id = %s",
                             (delivery_id,))
    if len(receiver.arrivals) < 2 or attempts < 2:
        say(f"  (webhook: {len(receiver.arrivals)} request(s), {attempts} attempt(s) recorded; server log:\n"
            f"{scratch.children[-1].tail(15)})")
    out["webhook retry"] = ((receiver.arrivals[1] - retry_at).total_seconds()
                            if len(receiver.arrivals) >= 2 else float("nan"))
    receiver.close()

    overdue = silent_seen + dt.timedelta(seconds=120)
    marked = None
    while time.monotonic() < deadline + 200:
        online, now = one(f"SELECT online, clock_timestamp() FROM {schema}.devices WHERE id = %s", (silent_id,))
        if not online:
            marked = now
            break
        time.sleep(0.1)
    out["phone offline"] = (marked - overdue).total_seconds() if marked else float("nan")
    conn.close()
    return out


def flush_queue(scratch) -> int:
    """Drop what an earlier server left queued (the other side's backlog must not be billed here)."""
    conn = psycopg2.connect(scratch.admin_url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f'DELETE FROM "{scratch.prefix}_queue".task')
            n = cur.rowcount
            cur.execute(f'DELETE FROM "{scratch.prefix}_queue".schedule')
            return n + cur.rowcount
    except psycopg2.Error:  # no queue tables yet
        return 0
    finally:
        conn.close()


# Runs an older checkout's server with its own modules first, and only the addons that checkout has
# (the environment's entry points also name this tree's newer addons, which the old kernel lacks).
OLD_CODE_BOOT = """
import importlib.metadata, pathlib, runpy, sys
sys.path.insert(0, {code!r})
_all = importlib.metadata.entry_points
def _theirs(**kw):
    found = _all(**kw)
    if kw.get("group") != "smsgw.addons":
        return found
    return [ep for ep in found
            if pathlib.Path({code!r}, *ep.value.split(":")[0].split(".")).is_dir()]
importlib.metadata.entry_points = _theirs
sys.argv = ["smsgw", *{argv!r}]
runpy.run_module("core.cli", run_name="__main__")
"""


def start_server(scratch, size: int, code: Path | None, tag: str):
    """``smsgw serve --with-worker`` of this tree, or of the checkout ``code`` (its modules first),
    on an empty queue."""
    flushed = flush_queue(scratch)
    if flushed:
        say(f"  ({flushed} queued tasks left by the previous server dropped)")
    port = free_port()
    argv = ["serve", "--with-worker", "--port", str(port)]
    if code is None:
        cmd = [sys.executable, "-m", "core.cli", *argv]
    else:
        cmd = [sys.executable, "-c", OLD_CODE_BOOT.format(code=str(code), argv=argv)]
    server = scratch.spawn(f"serve-{tag}-{size}", cmd, SMSGW_BIND="127.0.0.1", SMSGW_WEBHOOK_ALLOW_PRIVATE="1")
    wait_http(port, child=server, timeout=300)
    return server, port


def repair_memory(scratch) -> None:
    """Item 4: a backend's memory after the due-work repair pass entered every workspace (its first
    pass; the fingerprints are cleared to force that), on one
    connection kept throughout (what the old pool did with a connection that swept every schema),
    and with the pool's limit of schemas per connection (the connection is closed on check-in)."""
    from core import due
    from core.db import app_db, connection

    jobs = list(scratch.platform.setup_tasks().due_jobs.values())
    admin = psycopg2.connect(scratch.admin_url)  # (scratch database only) to read its own memory contexts
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"GRANT pg_read_all_stats TO {scratch.platform.roles.app} WITH INHERIT TRUE")
    admin.close()

    def backend_mb():
        pid, total = app_db.execute_sql("SELECT pg_backend_pid(), (SELECT sum(total_bytes) FROM "
                                        "pg_backend_memory_contexts)").fetchone()
        anon = 0
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                anon = int(line.split()[1])
        return pid, total / 2**20, anon / 1024

    def forget_checks():  # measure the worst case: a pass that enters every workspace
        with connection():
            app_db.execute_sql("DELETE FROM public.due_repair_seen")

    limit = app_db.schemas_per_connection
    forget_checks()
    app_db.close_all()
    with connection():
        app_db.schemas_per_connection = 10**9
        t0 = time.perf_counter()
        _, visited, armed = due.repair(jobs)
        took = time.perf_counter() - t0
        pid, contexts, anon = backend_mb()
        touched = app_db.schemas_touched()
    app_db.close_all()
    say(f"  one connection, no limit: repair pass over {visited} workspaces in {took:.1f} s ({armed} armed); "
        f"backend {pid}: memory contexts {contexts:.1f} MB, RssAnon {anon:.1f} MB after {touched} schemas")
    app_db.schemas_per_connection = limit
    forget_checks()
    peak = (0, 0.0, 0.0)
    after, pids = 0, set()
    while True:
        with connection():
            after, visited, _armed = due.repair(jobs, after, 50)
            pid, contexts, anon = backend_mb()
            pids.add(pid)
            peak = max(peak, (contexts, anon, pid))
        if after == 0:
            break
    say(f"  with SMSGW_DB_SCHEMAS_PER_CONNECTION={limit}: slices of 50 (as the scheduler does), {len(pids)} "
        f"backend(s) in turn; the largest: memory contexts {peak[0]:.1f} MB, RssAnon {peak[1]:.1f} MB")


# -- the run ----------------------------------------------------------------------------------------------

def body(args, scratch) -> int:
    section("bench_idle: the cost of idle workspaces")
    say(f"  python {sys.version.split()[0]}, {os.cpu_count()} CPU(s), code {code_version()}, load {loadavg()}")
    say(f"  sizes {args.sizes}, {args.windows} window(s) of {args.window_seconds:.0f} s after {args.warmup:.0f} s "
        f"warm-up; PostgreSQL {'fast (fsync=off)' if args.fast else 'durable (fsync=on)'}")
    scratch.start()
    platform = scratch.platform
    prof = Profiler(args.profile)
    have = 0
    sides = ([("before", Path(args.before_code).resolve())] if args.before_code else []) + [("after", None)]
    results = {tag: {} for tag, _ in sides}
    for size in args.sizes:
        section(f"{size} workspaces")
        took = grow(platform, have, size, args.create_threads)
        say(f"  created {size - have} workspaces in {took:.1f} s ({took / max(1, size - have) * 1000:.0f} ms each, "
            f"{args.create_threads} threads)")
        have = size
        settle(scratch)
        for tag, code in sides:
            server, port = start_server(scratch, size, code, tag)
            say(f"  [{tag}] smsgw serve --with-worker pid {server.pid}; warming up {args.warmup:.0f} s")
            time.sleep(args.warmup)
            meter = Meter(scratch, server)
            prof.start(server.pid, f"{tag}-{size}")
            windows = measure(meter, args.windows, args.window_seconds)
            prof.stop()
            mem = meter.backend_rss_anon_mb()
            say(f"    largest backend RssAnon {mem:.1f} MB")
            for w in windows:
                w["backend_mb"] = mem
            results[tag][size] = windows
            meter.close()
            server.stop()  # one server at a time: the other side's must not be billed here
            scratch.children.remove(server)

    section(f"backend memory after a full due-work repair pass ({args.sizes[-1]} workspaces)")
    repair_memory(scratch)

    first, last = args.sizes[0], args.sizes[-1]
    for tag, _code in sides:
        section(f"summary [{tag}] (median of the windows)")
        say(f"  {'figure':30s} " + " ".join(f"{s:>10d}" for s in args.sizes) + f"   {last}/{first}")
        for key, label, fmt in FIGURES:
            values = [median_of(results[tag][s], key) for s in args.sizes]
            base = values[0]
            ratio = values[-1] / base if base else (1.0 if values[-1] == 0 else float("inf"))
            say(f"  {label:30s} " + " ".join(f"{fmt.format(v):>10s}" for v in values)
                + f"   {ratio:5.2f}x {verdict(ratio <= TARGET or (key.startswith('queue') and values[-1] <= 1))}")

    if not args.no_latency:
        from core.tenancy import load_tenant

        for n, (tag, code) in enumerate(sides):
            section(f"latency of due work [{tag}], {last} idle workspaces around it")
            server, port = start_server(scratch, last, code, tag)
            time.sleep(args.warmup)
            tenant = load_tenant(f"idle-{last - 1 - n:05d}")  # a workspace of its own for each side
            lat = latency(scratch, port, tenant)
            for what, late in lat.items():
                say(f"  {what:15s} {late:6.2f} s after its time   {verdict(late <= LATENCY_TARGET)}")
            say(json.dumps({"side": tag, "latency_s": lat}))
            server.stop()
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_main("idle", args.fast, lambda scratch: body(args, scratch))


if __name__ == "__main__":
    sys.exit(main())
