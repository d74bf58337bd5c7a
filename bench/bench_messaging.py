"""Messaging benchmark: submit, bulk, dispatch, end to end and status reports, each against a baseline.

Run with ``.venv/bin/python bench/bench_messaging.py``; ``--help`` lists the
knobs, ``--fast`` is a quick check. Everything happens against a PostgreSQL
started here in a temp dir and a scratch database + role prefix, all dropped at
the end, also on Ctrl-C. Web traffic goes to 127.0.0.1 only.

The server under test is ``python -m core.cli serve`` (what ``smsgw serve``
runs) in its own process. The baselines run against the same database on the
same machine in the same run: ``bench/_bare_tornado_server.py`` (bare Tornado
handlers, one psycopg2 statement + commit each, in a thread pool the size of
the platform's), and psycopg2 in this process (COPY; the claim SQL). The client
is this process: HTTP/1.1 written by hand on asyncio, keep-alive, the same
client code for ours and the baseline. Throughput phases alternate baseline and
ours in rounds (B O, O B, B O, ...) so slow drift on a shared machine hits both.

Phases (each in a tenant of its own, so they do not see each other's work):

1. submit: single-recipient POST /api/v1/messages with an API token on C
   connections  ÷  POST /insert of the bare server (one INSERT + commit);
2. bulk: 1,000-recipient POST /api/v1/messages  ÷  COPY of the same 1,000
   recipient rows into a scratch table with the columns (and indexes) of ``recipients``;
3. dispatch: claims through GET /api/device/v1/messages?wait=0&limit=1 and 50
   by C phones  ÷  the claim SQL of ``addons/messaging/dispatch.py`` run directly
   by C psycopg2 connections (SET LOCAL ROLE / search_path, claim, commit);
4. end to end: API accepts (202) -> a simulated phone's long poll has it, with
   1,000 idle phones connected;
5. status reports: POST /api/device/v1/reports (batch 1 judged; batch 50 for
   information) by C phones  ÷  POST /update of the bare server (one UPDATE + commit).

The exit code is 0 whatever the figures (a benchmark, not a test); 130 when
interrupted; non-zero only if the benchmark itself could not run.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import datetime as dt
import inspect
import io
import os
import platform as pyplatform
import sys
import textwrap
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg2  # noqa: E402
from psycopg2 import sql  # noqa: E402

from _benchlib import (  # noqa: E402
    code_version,
    BENCH, NO_LIMITS, ApiClient, Fleet, Profiler, Sender, api_token, create_devices, db_count, free_port, loadavg,
    make_tenant, ms, pct, pg_cpu_s, raise_nofile, run_main, say, section, self_cpu_s, tenant_host, verdict,
    wait_http, wait_quiet,
)

SUBMIT_TARGET = 0.7
SUBMIT_P99_TARGET = 0.050
BULK_TARGET = 0.5
DISPATCH_TARGETS = {1: 0.4, 50: 0.7}
E2E_P50_TARGET = 0.020
REPORTS_TARGET = 0.7
BULK_SIZE = 1000
PHONES = ["+1415555%04d" % i for i in range(10000)]  # valid US numbers, E.164 already
PHONES2 = PHONES + PHONES


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--concurrency", type=int, default=16,
                   help="connections (API clients / phones / baseline connections) for submit, dispatch and "
                        "reports (default 16)")
    p.add_argument("--bulk-concurrency", type=int, default=2, help="connections for bulk, both sides (default 2)")
    p.add_argument("--rounds", type=int, default=None, help="alternating rounds per side (default 3; 1 with --fast)")
    p.add_argument("--round-seconds", type=float, default=None, help="seconds per round (default 4; 2 with --fast)")
    p.add_argument("--e2e-phones", type=int, default=1000, help="idle phones connected during end to end "
                                                                "(default 1000)")
    p.add_argument("--sends", type=int, default=None, help="measured end-to-end sends (default 200; 60 with --fast)")
    p.add_argument("--gap-ms", type=float, default=40.0, help="mean pause between end-to-end sends (default 40)")
    p.add_argument("--report-batch", type=int, default=1, help="reports per request, judged (default 1: the honest "
                                                               "comparison with one UPDATE)")
    p.add_argument("--report-batch-info", type=int, default=50,
                   help="a second reports batch size, for information only; 0 to skip (default 50)")
    p.add_argument("--only", default="submit,bulk,dispatch,e2e,reports",
                   help="comma-separated phases to run (default all: submit,bulk,dispatch,e2e,reports)")
    p.add_argument("--fast", action="store_true",
                   help="quick run: PostgreSQL with fsync=off etc., 1 round of 2 s per side, 60 end-to-end sends "
                        "(not realistic numbers)")
    p.add_argument("--profile", metavar="DIR", help="record the server with py-spy during each measured phase of "
                                                   "ours into DIR (collapsed stacks)")
    args = p.parse_args(argv)
    args.rounds = args.rounds or (1 if args.fast else 3)
    args.round_seconds = args.round_seconds or (2.0 if args.fast else 4.0)
    args.sends = args.sends or (60 if args.fast else 200)
    args.only = {x.strip() for x in args.only.split(",") if x.strip()}
    unknown = args.only - {"submit", "bulk", "dispatch", "e2e", "reports"}
    if unknown:
        p.error(f"unknown phase(s) in --only: {', '.join(sorted(unknown))}")
    if args.concurrency < 1 or args.bulk_concurrency < 1 or args.report_batch < 1:
        p.error("concurrency and batch sizes must be at least 1")
    return args


# -- measuring ----------------------------------------------------------------------------------------

class Side:
    """One side (ours or the baseline) of a comparison, summed over rounds."""

    def __init__(self, name: str, unit: str):
        self.name, self.unit = name, unit
        self.count = 0
        self.elapsed = 0.0
        self.requests = 0
        self.lat: list[float] = []
        self.errors = 0
        self.error_samples: list[str] = []
        self.round_rates: list[float] = []
        self.cpu = {"server": 0.0, "postgres": 0.0, "client": 0.0}
        self.notes: list[str] = []

    @property
    def rate(self) -> float:
        return self.count / self.elapsed if self.elapsed else 0.0

    def add(self, r: dict) -> None:
        self.count += r["count"]
        self.elapsed += r["elapsed"]
        self.requests += r["requests"]
        self.lat += r["lat"]
        self.errors += r["errors"]
        self.error_samples += r["error_samples"][:3 - len(self.error_samples)]
        self.round_rates.append(r["count"] / r["elapsed"] if r["elapsed"] else 0.0)
        for k in self.cpu:
            self.cpu[k] += r["cpu"].get(k, 0.0)
        if r.get("note"):
            self.notes.append(r["note"])

    def line(self) -> str:
        cpu = ", ".join(f"{k} {v / self.elapsed:.2f}" for k, v in self.cpu.items() if self.elapsed)
        out = (f"{self.name}: {self.count} {self.unit} in {self.elapsed:.1f} s = {self.rate:.0f} {self.unit}/s "
               f"(rounds: {', '.join(f'{x:.0f}' for x in self.round_rates)}); {self.requests} requests, "
               f"latency p50 {ms(pct(self.lat, 50))}, p99 {ms(pct(self.lat, 99))}; CPU-s per s: {cpu}")
        if self.errors:
            out += f"; ERRORS {self.errors}: {self.error_samples}"
        if self.notes:
            out += f"; {'; '.join(sorted(set(self.notes)))}"
        return out


class CpuMeter:
    def __init__(self, pgdata, server=None):
        self.pgdata, self.server = pgdata, server

    def read(self) -> dict:
        return {"server": self.server.cpu_s() if self.server else 0.0, "postgres": pg_cpu_s(self.pgdata),
                "client": self_cpu_s()}

    @staticmethod
    def diff(a, b) -> dict:
        return {k: b[k] - a[k] for k in a}


async def http_round(clients, make, judge, seconds: float, cpu: CpuMeter) -> dict:
    """Each client loops (request, wait for its answer) until ``seconds`` have passed.

    ``make(i, k)`` gives ``(method, path, payload)`` or None (nothing left: that client stops);
    ``judge(status, body)`` gives the units done (None = an error)."""
    lat, errors, samples = [], 0, []
    count = requests = 0
    c0 = cpu.read()
    t_start = time.perf_counter()
    deadline = t_start + seconds

    async def worker(i, client):
        nonlocal count, requests, errors
        k = 0
        while time.perf_counter() < deadline:
            req = make(i, k)
            if req is None:
                return
            k += 1
            status, body, t0, t1 = await client.call(*req)
            requests += 1
            done = judge(status, body)
            if done is None:
                errors += 1
                if len(samples) < 3:
                    samples.append(f"{status} {str(body)[:200]}")
                continue
            lat.append(t1 - t0)
            count += done

    await asyncio.gather(*(worker(i, c) for i, c in enumerate(clients)))
    elapsed = time.perf_counter() - t_start
    return {"count": count, "elapsed": elapsed, "requests": requests, "lat": lat, "errors": errors,
            "error_samples": samples, "cpu": CpuMeter.diff(c0, cpu.read())}


def thread_round(n_threads: int, connect, step, seconds: float, cpu: CpuMeter) -> dict:
    """``n_threads`` threads, each with its own connection (``connect()``, opened before the clock
    starts), call ``step(conn, i)`` -> units done (0 = nothing left: that thread stops) until
    ``seconds`` have passed."""
    conns = [connect() for _ in range(n_threads)]
    lat: list[float] = []
    counts = [0] * n_threads
    notes = []
    barrier = threading.Barrier(n_threads + 1)
    box = {}

    def worker(i):
        conn = conns[i]
        barrier.wait()
        deadline = box["deadline"]
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            done = step(conn, i)
            lat.append(time.perf_counter() - t0)
            if not done:
                notes.append("ran out of rows")
                return
            counts[i] += done

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(n_threads)]
    for t in threads:
        t.start()
    c0 = cpu.read()
    t_start = time.perf_counter()
    box["deadline"] = t_start + seconds
    barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t_start
    c1 = cpu.read()
    for c in conns:
        c.close()
    return {"count": sum(counts), "elapsed": elapsed, "requests": len(lat), "lat": lat, "errors": 0,
            "error_samples": [], "cpu": CpuMeter.diff(c0, c1), "note": notes[0] if notes else None}


async def alternate(rounds: int, base: Side, ours: Side, run_base, run_ours, prof: Profiler, server_pid: int,
                    profile_name: str, before_round=None) -> None:
    """B O, O B, B O, ...: both sides see the same drift of a shared machine."""
    for r in range(rounds):
        order = [("base", base, run_base), ("ours", ours, run_ours)]
        if r % 2:
            order.reverse()
        for kind, side, fn in order:
            if before_round:
                await before_round(kind)
            if kind == "ours":
                prof.start(server_pid, f"{profile_name}-r{r + 1}")
            res = await fn()
            if kind == "ours":
                prof.stop()
            side.add(res)
            say(f"    round {r + 1} {side.name}: {res['count']} {side.unit} in {res['elapsed']:.2f} s = "
                f"{res['count'] / res['elapsed']:.0f}/s, p50 {ms(pct(res['lat'], 50))}, p99 "
                f"{ms(pct(res['lat'], 99))}" + (f", errors {res['errors']}" if res["errors"] else "")
                + (f" ({res['note']})" if res.get("note") else ""))


def claim_sql() -> str:
    """The claim statement of ``addons/messaging/dispatch.py`` (``_CLAIM``), as the baseline runs it:
    its hand-back arming (``{arm}``, a look into the due-work index, and ``{hold}``, the lock taken
    before it) is left out, so what arming costs counts against us."""
    from addons.messaging import dispatch

    sql = getattr(dispatch, "_CLAIM", None)
    if sql is None:  # older code: the statement is a literal inside claim()
        tree = ast.parse(textwrap.dedent(inspect.getsource(dispatch.claim)))
        sql = next((node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                    and isinstance(node.value, str) and "SKIP LOCKED" in node.value), None)
    if sql is None or "SKIP LOCKED" not in sql:
        raise RuntimeError("could not find the claim SQL in addons.messaging.dispatch")
    return sql.replace("{hold}", "").replace("{arm}", "SELECT NULL" if "armed AS ({arm})" in sql else "NULL")


# -- data --------------------------------------------------------------------------------------------

def fill_pending(conn, schema: str, n: int) -> None:
    """``n`` single-recipient messages, pending, as the API would have stored them (minus their history)."""
    with conn.cursor() as cur:
        cur.execute(f"""
            WITH m AS (
                INSERT INTO "{schema}".messages (text, encoding, segments, source, created_by)
                SELECT 'bench dispatch ' || g, 'GSM-7', 1, 'api', 'bench' FROM generate_series(1, %s) g
                RETURNING id)
            INSERT INTO "{schema}".recipients (message_id, phone)
            SELECT id, '+1415555' || lpad((id %% 10000)::text, 4, '0') FROM m""", (n,))
        conn.commit()
        # As autovacuum would soon: without fresh statistics the claim may be planned as a sequential scan.
        cur.execute(f'ANALYZE "{schema}".recipients')
    conn.commit()


def fill_processed(conn, schema: str, device_id: int, n: int) -> list[int]:
    """``n`` recipients claimed by ``device_id`` (state processed), waiting for the phone's report."""
    with conn.cursor() as cur:
        cur.execute(f"""
            WITH m AS (
                INSERT INTO "{schema}".messages (text, encoding, segments, source, created_by)
                SELECT 'bench report ' || g, 'GSM-7', 1, 'api', 'bench' FROM generate_series(1, %s) g
                RETURNING id)
            INSERT INTO "{schema}".recipients (message_id, phone, state, device_id, claimed_at, attempts)
            SELECT id, '+1415555' || lpad((id %% 10000)::text, 4, '0'), 'processed', %s, now(), 1 FROM m
            RETURNING id""", (n, device_id))
        ids = [r[0] for r in cur.fetchall()]
    conn.commit()
    return ids


def analyze(conn, *tables: str) -> None:
    with conn.cursor() as cur:
        for t in tables:
            cur.execute(f"ANALYZE {t}")
    conn.commit()


def fill_bare_processed(conn, n: int) -> list[int]:
    with conn.cursor() as cur:
        cur.execute("""
            INSERT INTO bench_bare.recipients (message_id, phone, state, device_id, claimed_at, attempts)
            SELECT g, '+1415555' || lpad((g %% 10000)::text, 4, '0'), 'processed', 1, now(), 1
              FROM generate_series(1, %s) g RETURNING id""", (n,))
        ids = [r[0] for r in cur.fetchall()]
    conn.commit()
    return ids


def create_bare_schema(conn, tenant_schema: str) -> None:
    """Scratch tables with the columns, defaults, checks and indexes of a tenant's (own sequences)."""
    with conn.cursor() as cur:
        cur.execute("CREATE SCHEMA bench_bare")
        for table, source in (("messages", "messages"), ("recipients", "recipients"), ("rcpt_copy", "recipients")):
            cur.execute(f'CREATE TABLE bench_bare.{table} (LIKE "{tenant_schema}".{source} INCLUDING ALL)')
            cur.execute(f"CREATE SEQUENCE bench_bare.{table}_id_seq OWNED BY bench_bare.{table}.id")
            cur.execute(f"ALTER TABLE bench_bare.{table} ALTER COLUMN id SET DEFAULT "
                        f"nextval('bench_bare.{table}_id_seq')")
    conn.commit()


# -- main --------------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    args = parse_args(argv)
    return run_main("messaging", args.fast, lambda scratch: asyncio.run(run(args, scratch)))


async def run(args, scratch) -> int:
    c, cb, rounds, secs = args.concurrency, args.bulk_concurrency, args.rounds, args.round_seconds
    soft, hard = raise_nofile(args.e2e_phones + 4 * c + 1000)
    say("smsgw messaging benchmark")
    say(f"  python {pyplatform.python_version()}, {os.cpu_count()} CPU(s), temp dir {scratch.tmp}, "
        f"RLIMIT_NOFILE {soft}/{hard}, code {code_version()}, load average {loadavg()}")
    say(f"  concurrency {c} (bulk {cb}), {rounds} round(s) of {secs:.0f} s per side, {args.e2e_phones} idle phones "
        f"and {args.sends} sends end to end, phases: {', '.join(p for p in ('submit', 'bulk', 'dispatch', 'e2e', 'reports') if p in args.only)}; "
        f"PostgreSQL {'fast (fsync=off, synchronous_commit=off)' if args.fast else 'durable (fsync=on)'}")
    prof = Profiler(args.profile)
    results = {}

    # -- setup ------------------------------------------------------------------------------------------------
    section("setup")
    t0 = time.perf_counter()
    scratch.start()
    platform = scratch.platform
    say(f"  PostgreSQL {scratch.pg_version} (fsync={scratch.fsync}), database {scratch.dbname}, role prefix "
        f"{scratch.prefix}, migrated in {time.perf_counter() - t0:.1f} s")
    t_submit = make_tenant(platform, "msg-submit")
    t_bulk = make_tenant(platform, "msg-bulk")
    t_dispatch = make_tenant(platform, "msg-dispatch")
    t_e2e = make_tenant(platform, "msg-e2e")
    t_reports = make_tenant(platform, "msg-reports")
    schema = platform.roles.tenant_schema
    tok_submit, tok_bulk, tok_e2e = api_token(t_submit), api_token(t_bulk), api_token(t_e2e)
    t0 = time.perf_counter()
    # Phones that fetch or report in a loop have their sending limits lifted (the default 30 per minute
    # would stop the claims after a few); the end-to-end phones keep the defaults.
    dispatch_devs = create_devices(t_dispatch, c, "dispatch", NO_LIMITS) if "dispatch" in args.only else []
    report_devs = create_devices(t_reports, c, "reports", NO_LIMITS) if "reports" in args.only else []
    e2e_devs = create_devices(t_e2e, args.e2e_phones, "e2e") if "e2e" in args.only else []
    say(f"  tenants msg-submit, msg-bulk, msg-dispatch, msg-e2e, msg-reports; {len(dispatch_devs) + len(report_devs) + len(e2e_devs)} "
        f"devices paired through service.register in {time.perf_counter() - t0:.1f} s")
    admin = scratch.admin_conn()
    create_bare_schema(admin, schema(t_submit.slug))

    server, port = scratch.start_smsgw()
    bare_port = free_port()
    bare = scratch.spawn("bare-tornado", [sys.executable, str(BENCH / "_bare_tornado_server.py"), str(bare_port),
                                          "--threads", str(platform.settings.db_pool_size)],
                         BENCH_BARE_DSN=scratch.admin_url)
    wait_http(bare_port, "/health", child=bare)
    say(f"  smsgw serve pid {server.pid} on 127.0.0.1:{port} (DB pool {platform.settings.db_pool_size}, executor "
        f"as many threads); bare Tornado pid {bare.pid} on 127.0.0.1:{bare_port} ({platform.settings.db_pool_size} "
        f"threads, one connection each)")
    cpu_ours = CpuMeter(scratch.pg.pgdata, server)
    cpu_bare = CpuMeter(scratch.pg.pgdata, bare)
    cpu_none = CpuMeter(scratch.pg.pgdata, None)

    # -- 1. submit ------------------------------------------------------------------------------------------------
    if "submit" in args.only:
        section(f"submit: single-recipient POST /api/v1/messages, {c} connections  vs  bare Tornado INSERT + commit")
        ours_c = [await ApiClient(port, tenant_host(t_submit, port), tok_submit).open() for _ in range(c)]
        bare_c = [await ApiClient(bare_port, "localhost", None).open() for _ in range(c)]

        def make_ours(i, k):
            return "POST", "/api/v1/messages", {"text": f"bench submit {i}-{k}", "to": PHONES[(i * 997 + k) % 10000]}

        def make_bare(i, k):
            return "POST", "/insert", {"text": f"bench submit {i}-{k}", "to": PHONES[(i * 997 + k) % 10000]}

        def accepted(status, body):
            return 1 if status == 202 else None

        await http_round(ours_c, make_ours, accepted, 1.0, cpu_ours)  # warm-up
        await http_round(bare_c, make_bare, accepted, 1.0, cpu_bare)
        ours, base = Side("ours (POST /api/v1/messages)", "messages"), Side("bare (INSERT + commit)", "messages")
        await alternate(rounds, base, ours,
                        lambda: http_round(bare_c, make_bare, accepted, secs, cpu_bare),
                        lambda: http_round(ours_c, make_ours, accepted, secs, cpu_ours),
                        prof, server.pid, "submit")
        for cl in ours_c + bare_c:
            cl.close()
        ratio = ours.rate / base.rate if base.rate else 0.0
        p50, p99 = pct(ours.lat, 50), pct(ours.lat, 99)
        say(f"  {ours.line()}")
        say(f"  {base.line()}")
        ok = ratio >= SUBMIT_TARGET and p99 < SUBMIT_P99_TARGET
        say(f"  ratio {ratio:.2f} (target ≥ {SUBMIT_TARGET}) {verdict(ratio >= SUBMIT_TARGET)}; p99 {ms(p99)} at "
            f"that load (target < {SUBMIT_P99_TARGET * 1000:.0f} ms) {verdict(p99 < SUBMIT_P99_TARGET)}")
        results["submit"] = (ratio, ours, base, ok, p50, p99)

    # -- 2. bulk -----------------------------------------------------------------------------------------------------
    if "bulk" in args.only:
        section(f"bulk: POST /api/v1/messages with {BULK_SIZE} recipients, {cb} connections  vs  COPY of the same "
                f"{BULK_SIZE} rows, {cb} connections")
        ours_c = [await ApiClient(port, tenant_host(t_bulk, port), tok_bulk).open() for _ in range(cb)]

        def numbers(i, k):
            start = ((i * 7 + k) * BULK_SIZE) % 10000
            return PHONES2[start:start + BULK_SIZE]

        def make_bulk(i, k):
            return "POST", "/api/v1/messages", {"text": f"bench bulk {i}-{k}", "to": numbers(i, k)}

        def recipients(status, body):
            return len(body["recipients"]) if status == 202 else None

        copy_cols = "message_id, phone, priority, not_before, valid_until, requested_device_id, requested_sim"
        counter = {"k": 0}

        def copy_step(conn, i):
            counter["k"] += 1
            buf = io.StringIO()
            for ph in numbers(i, counter["k"]):
                buf.write(f"1\t{ph}\t0\t\\N\t\\N\t\\N\t\\N\n")
            buf.seek(0)
            with conn.cursor() as cur:
                cur.copy_expert(f"COPY bench_bare.rcpt_copy ({copy_cols}) FROM STDIN", buf)
            conn.commit()
            return BULK_SIZE

        def copy_round(seconds):
            return thread_round(cb, lambda: psycopg2.connect(scratch.admin_url), copy_step, seconds, cpu_none)

        await http_round(ours_c, make_bulk, recipients, 1.0, cpu_ours)  # warm-up
        await asyncio.to_thread(copy_round, 1.0)
        ours, base = Side("ours (1,000-recipient POST)", "recipients"), Side("COPY (1,000 rows + commit)", "recipients")
        await alternate(rounds, base, ours, lambda: asyncio.to_thread(copy_round, secs),
                        lambda: http_round(ours_c, make_bulk, recipients, secs, cpu_ours), prof, server.pid, "bulk")
        for cl in ours_c:
            cl.close()
        ratio = ours.rate / base.rate if base.rate else 0.0
        say(f"  {ours.line()}")
        say(f"  {base.line()}")
        say(f"  ratio {ratio:.3f} (target ≥ {BULK_TARGET}) {verdict(ratio >= BULK_TARGET)}")
        results["bulk"] = (ratio, ours, base, ratio >= BULK_TARGET)

    # -- 3. dispatch ---------------------------------------------------------------------------------------------------
    if "dispatch" in args.only:
        section(f"dispatch: GET /api/device/v1/messages?wait=0 by {c} phones  vs  the claim SQL run directly on {c} "
                f"connections")
        claim = claim_sql()
        sch = schema(t_dispatch.slug)
        role = platform.roles.tenant_role(t_dispatch.slug)
        host = tenant_host(t_dispatch, port)
        phones = [await ApiClient(port, host, tok).open() for _d, tok in dispatch_devs]
        dev_ids = [d for d, _tok in dispatch_devs]
        say(f"  claim SQL from addons/messaging/dispatch.py ({len(claim.split())} words, FOR UPDATE SKIP LOCKED); "
            f"the phones' sending limits are lifted; pending rows are topped up before each round")
        results["dispatch"] = {}
        for batch in (1, 50):
            say(f"  batch {batch}:")
            estimate = {"base": 4000.0 if batch == 1 else 40000.0, "ours": 800.0 if batch == 1 else 8000.0}

            async def top_up(kind, batch=batch, estimate=estimate):
                need = int(min(200_000, estimate[kind] * secs * 1.5 + 1000))
                have = db_count(admin, f'SELECT count(*) FROM "{sch}".recipients WHERE state = %s', ("pending",))
                if have < need:
                    await asyncio.to_thread(fill_pending, admin, sch, need - have)
                await asyncio.sleep(0.5)

            def make_fetch(i, k, batch=batch):
                return "GET", f"/api/device/v1/messages?wait=0&limit={batch}", None

            def claimed(status, body):
                return len(body["messages"]) if status == 200 else None

            def direct_step(conn, i, batch=batch):
                with conn.cursor() as cur:
                    cur.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
                    cur.execute(sql.SQL("SET LOCAL search_path TO {}").format(sql.Identifier(sch)))
                    cur.execute(claim, {"d": dev_ids[i], "slots": [1], "n": batch})
                    n = len(cur.fetchall())
                conn.commit()
                return n

            def direct_round(seconds):
                return thread_round(c, lambda: psycopg2.connect(platform.app_url), direct_step, seconds, cpu_none)

            async def run_base(batch=batch, estimate=estimate):
                r = await asyncio.to_thread(direct_round, secs)
                estimate["base"] = max(estimate["base"], r["count"] / r["elapsed"])
                return r

            async def run_ours(batch=batch, estimate=estimate):
                r = await http_round(phones, make_fetch, claimed, secs, cpu_ours)
                estimate["ours"] = max(estimate["ours"], r["count"] / r["elapsed"])
                return r

            await top_up("ours")
            await http_round(phones, make_fetch, claimed, 1.0, cpu_ours)  # warm-up
            await asyncio.to_thread(direct_round, 1.0)
            ours = Side(f"ours (GET ...?wait=0&limit={batch})", "claimed")
            base = Side(f"direct claim SQL (n={batch})", "claimed")
            await alternate(rounds, base, ours, run_base, run_ours, prof, server.pid, f"dispatch-b{batch}",
                            before_round=top_up)
            ratio = ours.rate / base.rate if base.rate else 0.0
            say(f"    {ours.line()}")
            say(f"    {base.line()}")
            say(f"    ratio {ratio:.3f} (target ≥ {DISPATCH_TARGETS[batch]}) {verdict(ratio >= DISPATCH_TARGETS[batch])}")
            results["dispatch"][batch] = (ratio, ours, base, ratio >= DISPATCH_TARGETS[batch])
        ev = db_count(admin, f'SELECT count(*) FROM "{sch}".recipient_events WHERE device_id = %s', (dev_ids[0],))
        say(f"  (each phone's claims so far, counted by usage() on every fetch: e.g. {ev} recipient_events rows "
            f"for the first phone)")
        for cl in phones:
            cl.close()

    # -- 4. end to end ----------------------------------------------------------------------------------------------
    if "e2e" in args.only:
        n = args.e2e_phones
        section(f"end to end: API accepts -> a phone's long poll has it, with {n} idle phones connected")
        fleet = Fleet(port)
        fleet.wait, fleet.repoll = 60, True
        host = tenant_host(t_e2e, port)
        await fleet.connect_all([(d, tok, host) for d, tok in e2e_devs])
        ramp_dt = dt.datetime.now(dt.timezone.utc)
        await asyncio.sleep(0.05)
        t_ramp = time.perf_counter()
        await fleet.poll_all(fleet.phones, 60, 200, expect_answer=False)
        sch = schema(t_e2e.slug)
        while db_count(admin, f'SELECT count(*) FROM "{sch}".devices WHERE last_seen_at >= %s', (ramp_dt,)) < n:
            if time.perf_counter() - t_ramp > 120:
                raise RuntimeError("the end-to-end phones did not all reach the server")
            await asyncio.sleep(0.25)
        await wait_quiet(server, threshold=0.05, window=0.5)
        say(f"  {n} phones came online and wait in GET ...?wait=60 ({time.perf_counter() - t_ramp:.1f} s)")
        api = await ApiClient(port, host, tok_e2e).open()
        sender = Sender(api, fleet)
        prof.start(server.pid, "e2e")
        e2e = await sender.run(args.sends, 20, args.gap_ms, f"{n} idle phones")
        prof.stop()
        say(f"  (ended {time.perf_counter() - t_ramp:.0f} s after the long polls were opened; they expire after 60 s)")
        api.close()
        fleet.close_all()
        ok = e2e["p50"] <= E2E_P50_TARGET
        say(f"  p50 {ms(e2e['p50'])} from the 202 (target ≤ {E2E_P50_TARGET * 1000:.0f} ms) {verdict(ok)}; "
            f"from the POST being sent: p50 {ms(e2e['full_p50'])} {verdict(e2e['full_p50'] <= E2E_P50_TARGET)}")
        results["e2e"] = (e2e, ok)
        await asyncio.sleep(1.0)
        await wait_quiet(server, threshold=0.05, window=0.5)

    # -- 5. status reports --------------------------------------------------------------------------------------------
    if "reports" in args.only:
        section(f"status reports: POST /api/device/v1/reports by {c} phones  vs  bare Tornado UPDATE + commit, "
                f"{c} connections")
        sch = schema(t_reports.slug)
        host = tenant_host(t_reports, port)
        phones = [await ApiClient(port, host, tok).open() for _d, tok in report_devs]
        bare_c = [await ApiClient(bare_port, "localhost", None).open() for _ in range(c)]
        say("  (rows in state 'processed', claimed by the reporting phone, are made in SQL beforehand; each report "
            "moves one to 'sent'; the bare server's table is a copy of recipients with the same rows)")

        def applied(status, body):
            return sum(1 for r in body["results"] if r["status"] == "applied") if status == 200 else None

        def updated(status, body):
            return body["updated"] if status == 200 else None

        results["reports"] = {}
        batches = [args.report_batch] + ([args.report_batch_info] if args.report_batch_info
                                         and args.report_batch_info != args.report_batch else [])
        for batch in batches:
            judged = batch == args.report_batch
            n_rounds = rounds if judged else 1
            say(f"  batch {batch} ({'judged' if judged else 'for information; baseline is still one UPDATE per request'}):")
            # Enough rows for the round(s) at generous rates; a phone that runs out stops (noted).
            # (the 1 s warm-up of each side included)
            ours_rows = int((3000 if batch == 1 else 15000) * (secs * n_rounds + 1) * 1.3) + 500
            bare_rows = int(3000 * (secs * n_rounds + 1) * 1.3) + 500
            per_phone = ours_rows // c + batch
            t0 = time.perf_counter()
            queues = [fill_processed(admin, sch, d, per_phone) for d, _tok in report_devs]
            bare_ids = fill_bare_processed(admin, bare_rows)
            bare_queues = [bare_ids[i::c] for i in range(c)]
            analyze(admin, f'"{sch}".recipients', "bench_bare.recipients")
            say(f"    made {per_phone * c} processed rows for the phones and {len(bare_ids)} for the bare table "
                f"({time.perf_counter() - t0:.1f} s)")
            pos = [0] * c
            bpos = [0] * c

            def make_report(i, k, batch=batch):
                q = queues[i]
                if pos[i] + batch > len(q):
                    return None
                ids = q[pos[i]:pos[i] + batch]
                pos[i] += batch
                return "POST", "/api/device/v1/reports", {"reports": [{"message_id": rid, "state": "sent"}
                                                                      for rid in ids]}

            def make_update(i, k):
                q = bare_queues[i]
                if bpos[i] >= len(q):
                    return None
                bpos[i] += 1
                return "POST", "/update", {"id": q[bpos[i] - 1], "state": "sent"}

            await http_round(phones, make_report, applied, 1.0, cpu_ours)  # warm-up
            await http_round(bare_c, make_update, updated, 1.0, cpu_bare)
            ours = Side(f"ours (reports, batch {batch})", "reports")
            base = Side("bare (UPDATE + commit)", "reports")
            await alternate(n_rounds, base, ours, lambda: http_round(bare_c, make_update, updated, secs, cpu_bare),
                            lambda: http_round(phones, make_report, applied, secs, cpu_ours), prof, server.pid,
                            f"reports-b{batch}")
            ratio = ours.rate / base.rate if base.rate else 0.0
            say(f"    {ours.line()}")
            say(f"    {base.line()}")
            target_note = f"(target ≥ {REPORTS_TARGET}) {verdict(ratio >= REPORTS_TARGET)}" if judged else "(information)"
            say(f"    ratio {ratio:.3f} {target_note}")
            results["reports"][batch] = (ratio, ours, base, ratio >= REPORTS_TARGET, judged)
        for cl in phones + bare_c:
            cl.close()

    bare.stop()
    server.stop()

    # -- summary ----------------------------------------------------------------------------------------------------
    section("summary")
    if "submit" in results:
        ratio, ours, base, ok, p50, p99 = results["submit"]
        say(f"  submit          {ratio:.2f} = {ours.rate:.0f} / {base.rate:.0f} messages/s, c={c} (target ≥ "
            f"{SUBMIT_TARGET}; p99 < {SUBMIT_P99_TARGET * 1000:.0f} ms)   {verdict(ok)}   [ours p50 {ms(p50)}, p99 "
            f"{ms(p99)}; bare p50 {ms(pct(base.lat, 50))}, p99 {ms(pct(base.lat, 99))}"
            + (f"; errors {ours.errors}" if ours.errors else "") + "]")
    if "bulk" in results:
        ratio, ours, base, ok = results["bulk"]
        say(f"  bulk            {ratio:.3f} = {ours.rate:.0f} / {base.rate:.0f} recipients/s, {BULK_SIZE} per request, "
            f"c={cb} (target ≥ {BULK_TARGET})   {verdict(ok)}   [per request: ours p50 {ms(pct(ours.lat, 50))}, "
            f"COPY p50 {ms(pct(base.lat, 50))}]")
    for batch, (ratio, ours, base, ok) in results.get("dispatch", {}).items():
        say(f"  dispatch b={batch:<3}  {ratio:.3f} = {ours.rate:.0f} / {base.rate:.0f} claimed/s, {c} phones (target ≥ "
            f"{DISPATCH_TARGETS[batch]})   {verdict(ok)}   [per fetch p50 {ms(pct(ours.lat, 50))} vs direct "
            f"{ms(pct(base.lat, 50))}; rounds ours {', '.join(f'{x:.0f}' for x in ours.round_rates)}]")
    if "e2e" in results:
        e2e, ok = results["e2e"]
        say(f"  end to end      p50 {ms(e2e['p50'])}, p99 {ms(e2e['p99'])} from the 202 to the phone, "
            f"{args.e2e_phones} idle phones (target p50 ≤ {E2E_P50_TARGET * 1000:.0f} ms)   {verdict(ok)}   "
            f"[from the POST being sent: p50 {ms(e2e['full_p50'])}, p99 {ms(e2e['full_p99'])}; {e2e['n']} sends, "
            f"{e2e['lost']} lost]")
    for batch, (ratio, ours, base, ok, judged) in results.get("reports", {}).items():
        if judged:
            say(f"  reports b={batch:<3}   {ratio:.3f} = {ours.rate:.0f} / {base.rate:.0f} reports/s, {c} phones (target ≥ "
                f"{REPORTS_TARGET})   {verdict(ok)}   [per request p50 {ms(pct(ours.lat, 50))} vs bare "
                f"{ms(pct(base.lat, 50))}]")
        else:
            say(f"  reports b={batch:<3}   {ratio:.3f} = {ours.rate:.0f} reports/s in batches of {batch} / {base.rate:.0f} "
                f"single UPDATEs/s (information)")
    say(f"  PostgreSQL {scratch.pg_version}, fsync={scratch.fsync}; {os.cpu_count()} CPU(s); load average {loadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
