"""Devices benchmark: many phones waiting in long polls on one server process, and wake latency.

Run with ``.venv/bin/python bench/bench_devices.py``; ``--help`` lists the knobs,
``--fast`` is a quick check. Everything happens against a PostgreSQL started
here in a temp dir and a scratch database + role prefix, all dropped at the
end, also on Ctrl-C. Web traffic goes to 127.0.0.1 only.

The server under test is ``python -m core.cli serve`` (what ``smsgw serve``
runs) in its own process, so its RSS and CPU time can be read from
``/proc/<pid>``. The phones are one asyncio client process (this one) on raw
sockets: HTTP/1.1 written by hand, keep-alive, one connection per phone.

Phases:

1. setup: PostgreSQL, scratch database, Platform, tenants, an API token, and
   N+1 devices paired through ``addons.devices.service`` (pairing code +
   ``register``: real device tokens). The latency phone has a tenant of its own;
   the N others are spread over ``--tenants`` tenants;
2. baseline: a bare asyncio server (``bench/_bare_hold_server.py``) accepts the
   same N connections from the same client, reads each request and never
   answers; its RSS before/after;
3. ``smsgw serve``; wake latency with the latency phone alone waiting: an API
   POST /api/v1/messages, then the phone's long poll answers with it;
4. N connections; a sample of phones comes online through a first ``wait=0``
   fetch (timed), the others are marked online in the database; then all N
   send ``GET /api/device/v1/messages?wait=60`` and wait; server RSS before/after;
5. wake latency again, with the N phones waiting;
6. server CPU over a 10 s window while all N wait;
7. the N phones hang up; wake latency with 0 others once more;
8. summary.

Polls expire ``--wait`` seconds after the server took them, and the phones then
poll again (like the companion app), so "all waiting" lasts only until then:
phases 5 and 6 each run when the server is quiet and are repeated (up to 3
times) if polls expired during them.

The exit code is 0 whatever the figures (a benchmark, not a test); 130 when
interrupted; non-zero only if the benchmark itself could not run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform as pyplatform
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _benchlib import (  # noqa: E402
    code_version,
    NO_LIMITS, ApiClient, Fleet, Sender, Profiler, api_token, create_devices, db_count, free_port, loadavg,
    make_tenant, ms, pct, raise_nofile, run_main, say, section, self_cpu_s, tenant_host, verdict, wait_quiet,
    BENCH,
)

MEMORY_TARGET = 2.0        # server KB per waiting connection ÷ bare asyncio server's
LATENCY_RATIO_TARGET = 1.5  # p99 with N others waiting ÷ p99 with 0
P50_TARGET = 0.010          # s, wake latency p50 on loopback
IDLE_CPU_NOTE = 0.10        # CPU-s over the window considered "~0" (1% of a core over 10 s)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phones", type=int, default=None, help="phones waiting in long polls (default 10000; "
                                                           "2000 with --fast)")
    p.add_argument("--tenants", type=int, default=4, help="tenants the phones are spread across (default 4)")
    p.add_argument("--sends", type=int, default=None, help="measured sends per latency case (default 200; "
                                                          "100 with --fast)")
    p.add_argument("--warmup-sends", type=int, default=20, help="unmeasured sends before each case (default 20)")
    p.add_argument("--first-fetch-sample", type=int, default=1000,
                   help="phones that come online through a first wait=0 fetch, to time it; the others are "
                        "marked online in the database, as after a server restart (default 1000)")
    p.add_argument("--wait", type=int, default=60, help="long-poll wait in seconds, at most 60 (default 60)")
    p.add_argument("--ramp-rate", type=float, default=0.0,
                   help="long polls sent per second in the ramp (default 0: all at once, a thundering herd as "
                        "after a server restart; the server then holds many requests in flight at its peak, and "
                        "CPython keeps that memory)")
    p.add_argument("--cpu-window", type=float, default=10.0, help="idle CPU window in seconds (default 10)")
    p.add_argument("--gap-ms", type=float, default=40.0,
                   help="mean pause between sends, so the woken phone is back in its long poll (default 40)")
    p.add_argument("--bare-mode", choices=("streams", "protocol", "tornado", "all"), default="all",
                   help="bare baseline server(s) to run; the verdict uses 'streams' (asyncio, a coroutine per "
                        "connection) when it ran; 'tornado' (Tornado's HTTPServer, no handler) shows the floor "
                        "of any Tornado server (default all)")
    p.add_argument("--fast", action="store_true",
                   help="quick run: PostgreSQL with fsync=off etc., 2000 phones and 100 sends unless given "
                        "(not realistic numbers)")
    p.add_argument("--profile", metavar="DIR", help="record the server with py-spy during each measured phase "
                                                   "into DIR (collapsed stacks)")
    args = p.parse_args(argv)
    args.phones = args.phones if args.phones is not None else (2000 if args.fast else 10000)
    args.sends = args.sends if args.sends is not None else (100 if args.fast else 200)
    if args.phones < 1 or args.tenants < 1 or args.sends < 10:
        p.error("need --phones ≥ 1, --tenants ≥ 1, --sends ≥ 10")
    args.wait = max(1, min(60, args.wait))
    return args


# -- the bare baseline -----------------------------------------------------------------------------

async def bare_baseline(scratch, devices, mode: str) -> dict:
    """RSS per held connection of the bare asyncio server; the client is the same as for smsgw."""
    port = free_port()
    status = scratch.tmp / f"bare-{mode}.status"
    child = scratch.spawn(f"bare-{mode}", [sys.executable, str(BENCH / "_bare_hold_server.py"), str(port),
                                           str(status), "--mode", mode])
    t0 = time.monotonic()
    while not status.exists():
        if not child.alive() or time.monotonic() - t0 > 30:
            raise RuntimeError(f"bare server did not start:\n{child.tail()}")
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)
    rss0 = child.rss_kb()
    fleet = Fleet(port)
    n = len(devices)
    connect_s = await fleet.connect_all([(d, tok, "bare.localhost") for d, tok, _slug in devices], parallel=64)
    t1 = time.perf_counter()
    await fleet.poll_all(fleet.phones, 60, 500, expect_answer=False)

    def held():
        try:
            return int(status.read_text() or 0)
        except (OSError, ValueError):
            return -1

    while held() < n:
        if time.perf_counter() - t1 > 120:
            raise RuntimeError(f"bare server holds only {held()} of {n} requests")
        await asyncio.sleep(0.1)
    ramp_s = time.perf_counter() - t1
    await wait_quiet(child, threshold=0.02, window=0.5)
    await asyncio.sleep(0.5)
    rss1 = child.rss_kb()
    c0, k0 = child.cpu_s(), self_cpu_s()
    await asyncio.sleep(2.0)
    idle_cpu = child.cpu_s() - c0
    client_cpu = self_cpu_s() - k0
    answered = fleet.counts["answers"]
    fleet.close_all()
    await asyncio.sleep(0.5)
    child.stop()
    per_conn = (rss1 - rss0) / n
    say(f"  bare {'Tornado HTTPServer' if mode == 'tornado' else 'asyncio'} ({mode}): RSS {rss0 / 1024:.1f} MB idle -> {rss1 / 1024:.1f} MB holding {n} requests: "
        f"{per_conn:.2f} KB per connection; {n} connects in {connect_s:.1f} s ({n / connect_s:.0f}/s), all "
        f"requests read {ramp_s:.1f} s after sending; answers {answered} (expected 0); CPU over 2 s while "
        f"holding: server {idle_cpu:.2f} s, client {client_cpu:.2f} s")
    return {"mode": mode, "rss0": rss0, "rss1": rss1, "per_conn_kb": per_conn, "connect_s": connect_s}


# -- main ----------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    args = parse_args(argv)
    return run_main("devices", args.fast, lambda scratch: asyncio.run(run(args, scratch)))


async def run(args, scratch) -> int:
    import datetime as dt

    n, t = args.phones, args.tenants
    soft, hard = raise_nofile(n + 2000)
    say("smsgw devices benchmark")
    say(f"  python {pyplatform.python_version()}, {os.cpu_count()} CPU(s), temp dir {scratch.tmp}, "
        f"RLIMIT_NOFILE {soft}/{hard}, code {code_version()}, load average {loadavg()}")
    if soft < n + 200:
        raise SystemExit(f"RLIMIT_NOFILE is {soft}; {n} phones need about {n + 200}. Lower --phones.")
    say(f"  {n} phones over {t} tenant(s), long poll wait={args.wait}, {args.sends} sends per latency case, "
        f"PostgreSQL {'fast (fsync=off, synchronous_commit=off)' if args.fast else 'durable (fsync=on)'}")
    prof = Profiler(args.profile)

    # -- 1. setup -----------------------------------------------------------------------------------
    section("setup")
    t0 = time.perf_counter()
    scratch.start()
    platform = scratch.platform
    say(f"  PostgreSQL {scratch.pg_version} (fsync={scratch.fsync}), database {scratch.dbname}, role prefix "
        f"{scratch.prefix}, migrated in {time.perf_counter() - t0:.1f} s")
    # The latency phone has a tenant of its own, so the same phone is the one woken whether or not
    # thousands of others wait (in other tenants), and the 0-others case can be repeated at the end.
    lat_tenant = make_tenant(platform, "dev-lat")
    tenants = [make_tenant(platform, f"dev-{i}") for i in range(t)]
    token = api_token(lat_tenant)
    t0 = time.perf_counter()
    # Its sending limits are lifted: it receives every message of both cases, and the default
    # 30/minute would hold most of them back, which is not what is measured here.
    lat_dev = create_devices(lat_tenant, 1, "latency", NO_LIMITS)[0]
    per = [n // t + (1 if i < n % t else 0) for i in range(t)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=t) as pool:  # one thread per tenant
        made = list(pool.map(lambda i: create_devices(tenants[i], per[i], f"phone-{i}"), range(t)))
    devices = [(d, tok, tenants[i].slug) for i in range(t) for d, tok in made[i]]  # (device_id, token, slug)
    say(f"  {n} devices paired through service.register (pairing code + register) in {t} tenant(s), "
        f"{time.perf_counter() - t0:.1f} s")
    random.Random(7).shuffle(devices)  # connect in mixed tenant order
    by_slug = {ten.slug: ten for ten in tenants}
    admin = scratch.admin_conn()
    schemas = [platform.roles.tenant_schema(ten.slug) for ten in tenants]

    def touched_since(ts) -> int:
        return sum(db_count(admin, f'SELECT count(*) FROM "{s}".devices WHERE last_seen_at >= %s', (ts,))
                   for s in schemas)

    # -- 2. bare asyncio baseline -----------------------------------------------------------------------
    section(f"baseline: a bare asyncio server holding {n} connections, each with a read request, never answering")
    modes = ["streams", "protocol", "tornado"] if args.bare_mode == "all" else [args.bare_mode]
    bare = {m: await bare_baseline(scratch, devices, m) for m in modes}
    judge_mode = "streams" if "streams" in bare else modes[0]

    # -- 3. smsgw serve; latency with 0 other phones waiting ------------------------------------------------
    section("smsgw serve; wake latency with 0 other phones waiting")
    server, port = scratch.start_smsgw()
    say(f"  server pid {server.pid} on 127.0.0.1:{port}; RSS at start {server.rss_kb() / 1024:.1f} MB, "
        f"{server.cpu_s():.2f} CPU-s so far (start-up incl. imports and no-op migrate)")
    fleet = Fleet(port)
    fleet.wait = args.wait
    fleet.repoll = True
    host_lat = tenant_host(lat_tenant, port)
    await fleet.connect_all([(lat_dev[0], lat_dev[1], host_lat)])
    lat_phone = fleet.phones[0]
    lat_phone.poll(args.wait, fleet.limit)
    api = await ApiClient(port, host_lat, token).open()
    sender = Sender(api, fleet)
    await asyncio.sleep(0.5)
    prof.start(server.pid, "latency-0")
    case0a = await sender.run(args.sends, args.warmup_sends, args.gap_ms, "0 other phones waiting (before)")
    prof.stop()

    # -- 4. N phones online, then N long polls ----------------------------------------------------------
    section(f"{n} phones wait in GET /api/device/v1/messages?wait={args.wait}")
    await wait_quiet(server, threshold=0.05, window=1.0)
    await asyncio.sleep(1.0)
    rss_before = server.rss_kb()
    say(f"  server RSS before: {rss_before / 1024:.1f} MB (after the first latency case, quiet); threads "
        f"{_threads(server.pid)}")
    fleet.repoll = False
    conn_s = await fleet.connect_all([(d, tok, tenant_host(by_slug[slug], port)) for d, tok, slug in devices],
                                     parallel=64)
    phones = fleet.phones[1:]
    say(f"  {n} connections opened in {conn_s:.1f} s; server RSS {server.rss_kb() / 1024:.1f} MB")
    sample = phones[:max(0, min(n, args.first_fetch_sample))]
    first_fetch = None
    if sample:
        c0 = server.cpu_s()
        secs = await fleet.poll_all(sample, 0, 100, expect_answer=True)
        first_fetch = (len(sample), secs, server.cpu_s() - c0)
        say(f"  first fetch of {len(sample)} phones (wait=0; the device comes online: auth, touch, online hook + "
            f"audit event, claim): {secs:.1f} s ({len(sample) / secs:.0f}/s), server CPU {first_fetch[2]:.1f} s "
            f"({first_fetch[2] / len(sample) * 1000:.2f} ms per fetch)")
    rest = n - len(sample)
    # The others are marked online as if they had been before (e.g. across a server restart), so
    # that all N long polls arrive in a short ramp and can be measured before they expire. Every
    # device is made "seen a minute ago" (still online; offline comes after 120 s), so each one's
    # next poll records contact: that is how the ramp below sees each poll arrive.
    with admin.cursor() as cur:
        for s in schemas:
            cur.execute(f"UPDATE \"{s}\".devices SET online = true, last_seen_at = now() - interval '1 minute'")
    admin.commit()
    if rest:
        say(f"  the other {rest} devices were marked online in the database (as if seen before)")
    await wait_quiet(server, threshold=0.1, window=0.5)
    say(f"  server RSS before the long polls: {server.rss_kb() / 1024:.1f} MB")
    fleet.repoll = True
    answers_before = sum(ph.responses for ph in phones)
    ramp_dt = dt.datetime.now(dt.timezone.utc)
    await asyncio.sleep(0.05)
    c0 = server.cpu_s()
    t_ramp = time.perf_counter()
    prof.start(server.pid, "ramp")
    await fleet.poll_all(phones, args.wait, 500, expect_answer=False, rate=args.ramp_rate)
    while True:
        got = touched_since(ramp_dt)
        if got >= n:
            break
        if time.perf_counter() - t_ramp > 240:
            raise RuntimeError(f"only {got} of {n} long polls reached the server in 240 s")
        await asyncio.sleep(0.25)
    touched_s = time.perf_counter() - t_ramp
    await wait_quiet(server, threshold=0.05, window=0.5)
    prof.stop()
    ramp_s = time.perf_counter() - t_ramp
    ramp_cpu = server.cpu_s() - c0
    await asyncio.sleep(1.0)
    rss_after = server.rss_kb()
    waiting = sum(1 for ph in phones if ph.outstanding and not ph.closed)
    answered = sum(ph.responses for ph in phones) - answers_before
    per_conn = (rss_after - rss_before) / n
    bare_kb = bare[judge_mode]["per_conn_kb"]
    mem_ratio = per_conn / bare_kb if bare_kb > 0 else float("inf")
    say(f"  all {n} long polls sent; every device touched after {touched_s:.1f} s, server quiet after {ramp_s:.1f} s "
        f"(server CPU {ramp_cpu:.1f} s, {ramp_cpu / n * 1000:.2f} ms per poll); answered meanwhile: "
        f"{answered} (expected 0); phones with an open poll: {waiting}/{n}")
    say(f"  server RSS after: {rss_after / 1024:.1f} MB -> {per_conn:.2f} KB per waiting connection")
    for m, b in bare.items():
        say(f"  bare ({m}): {b['per_conn_kb']:.2f} KB per connection -> ratio smsgw/bare "
            f"{per_conn / b['per_conn_kb']:.2f}" + ("   <- judged" if m == judge_mode else ""))
    say(f"  target ≤ {MEMORY_TARGET:.1f}x the bare server: {verdict(mem_ratio <= MEMORY_TARGET)}")

    async def quiet_window(timeout: float = 180.0) -> float:
        """Until the server is quiet and no long poll was answered for a second; returns the wait."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            a0, c0 = fleet.counts["answers"], server.cpu_s()
            await asyncio.sleep(1.0)
            if fleet.counts["answers"] == a0 and server.cpu_s() - c0 < 0.05:
                return time.perf_counter() - t0
        raise RuntimeError("the server did not go quiet")

    async def while_all_wait(label, measure, attempts: int = 3):
        """Run ``measure`` while every phone waits. Polls expire ``--wait`` s after the server took them
        (then the phone polls again, like the companion); if some expire during the measurement it is
        not "all waiting", so wait for the next quiet stretch and measure again."""
        for attempt in range(1, attempts + 1):
            waited = await quiet_window()
            e0 = sum(ph.empties for ph in phones)
            t_start = time.perf_counter() - t_ramp
            result = await measure()
            expired = sum(ph.empties for ph in phones) - e0
            say(f"  ({label}: {t_start:.0f}-{time.perf_counter() - t_ramp:.0f} s after the first long poll was "
                f"sent; waited {waited:.0f} s for quiet; long polls that expired meanwhile: {expired})")
            if expired == 0:
                return result, 0
            if attempt < attempts:
                say(f"  -> not every phone was waiting throughout; measuring again in the next quiet stretch "
                    f"(attempt {attempt + 1} of {attempts})")
        return result, expired

    # -- 5. latency with N others waiting ----------------------------------------------------------------
    section(f"wake latency with {n} other phones waiting")

    async def latency_n():
        prof.start(server.pid, f"latency-{n}")
        res = await sender.run(args.sends, min(5, args.warmup_sends), args.gap_ms, f"{n} other phones waiting")
        prof.stop()
        return res

    caseN, caseN_expired = await while_all_wait("latency case", latency_n)

    # -- 6. idle CPU ----------------------------------------------------------------------------------
    section(f"server CPU over {args.cpu_window:.0f} s while all {n} phones wait")

    async def idle():
        prof.start(server.pid, "idle")
        c0, k0, w0 = server.cpu_s(), self_cpu_s(), time.perf_counter()
        await asyncio.sleep(args.cpu_window)
        out = server.cpu_s() - c0, self_cpu_s() - k0, time.perf_counter() - w0
        prof.stop()
        return out

    (idle_cpu, client_cpu, window), idle_answers = await while_all_wait("CPU window", idle)
    say(f"  server: {idle_cpu:.2f} CPU-s over {window:.1f} s ({idle_cpu / window * 100:.2f}% of one core); "
        f"client: {client_cpu:.2f} CPU-s")
    say(f"  ~0 (≤ {IDLE_CPU_NOTE:.2f} CPU-s): {verdict(idle_cpu <= IDLE_CPU_NOTE)}")
    still = sum(1 for ph in phones if ph.outstanding and not ph.closed)
    say(f"  phones with an open poll: {still}/{n}; connections lost: {fleet.lost}; error answers: "
        f"{fleet.counts['errors']} {fleet.error_samples[:2]}")

    # Steady state, for information: each phone polls again when its wait ends.
    repoll_ms = ramp_cpu / n * 1000
    steady = n / args.wait * repoll_ms / 1000

    # -- 7. the 0-others case again ------------------------------------------------------------------------
    section("wake latency with 0 other phones waiting (again, after the others hung up)")
    for ph in phones:
        ph.close()
    fleet.phones = [lat_phone]
    await asyncio.sleep(1.0)
    await wait_quiet(server, threshold=0.05, window=1.0)
    rss_closed = server.rss_kb()
    say(f"  after {n} phones hung up: server RSS {rss_closed / 1024:.1f} MB (CPython keeps freed memory)")
    case0b = await sender.run(args.sends, args.warmup_sends, args.gap_ms, "0 other phones waiting (after)")
    api.close()
    fleet.close_all()
    server.stop()

    zero_wake = case0a["wake"] + case0b["wake"]
    zero_full = case0a["full"] + case0b["full"]
    p99_0, p50_0 = pct(zero_wake, 99), pct(zero_wake, 50)
    ratio = caseN["p99"] / p99_0 if p99_0 > 0 else float("inf")
    full_ratio = caseN["full_p99"] / pct(zero_full, 99)

    # -- 8. summary ------------------------------------------------------------------------------------
    section("summary")
    say(f"  memory/conn     {per_conn:.2f} KB per waiting long poll vs {bare_kb:.2f} KB bare asyncio ({judge_mode}) "
        f"= {mem_ratio:.2f}x (target ≤ {MEMORY_TARGET:.1f}x)   {verdict(mem_ratio <= MEMORY_TARGET)}"
        f"   [RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MB for {n} phones"
        + "".join(f"; bare {m} {b['per_conn_kb']:.2f} KB" for m, b in bare.items()) + "]")
    if "tornado" in bare and judge_mode != "tornado":
        floor = bare["tornado"]["per_conn_kb"] / bare_kb
        say(f"                  (Tornado's own HTTPServer holding the same requests, no handler: "
            f"{bare['tornado']['per_conn_kb']:.2f} KB = {floor:.2f}x bare asyncio; smsgw/bare Tornado "
            f"{per_conn / bare['tornado']['per_conn_kb']:.2f}x)")
    say(f"  idle CPU        {idle_cpu:.2f} CPU-s over {window:.0f} s with {n} waiting "
        f"({idle_cpu / window * 100:.2f}% of a core; target ~0, ≤ {IDLE_CPU_NOTE:.2f})   "
        f"{verdict(idle_cpu <= IDLE_CPU_NOTE)}   [polls expired in the window: {idle_answers}; steady state with "
        f"re-polls every {args.wait} s would be ~{steady:.2f} CPU-s/s at {repoll_ms:.2f} ms per poll]")
    say(f"  wake p99 ratio  {ratio:.2f} = p99 {ms(caseN['p99'])} with {n} waiting / {ms(p99_0)} with 0 "
        f"(target ≤ {LATENCY_RATIO_TARGET:.1f})   {verdict(ratio <= LATENCY_RATIO_TARGET)}   "
        f"[202 answered -> phone has it; {caseN['n']} vs {len(zero_wake)} sends (0-others before + after: p99 "
        f"{ms(case0a['p99'])} / {ms(case0b['p99'])}); polls expired during the case: {caseN_expired}]")
    worst_p50 = max(p50_0, caseN["p50"])
    say(f"  wake p50        {ms(p50_0)} with 0 waiting, {ms(caseN['p50'])} with {n} (target < "
        f"{P50_TARGET * 1000:.0f} ms)   {verdict(worst_p50 < P50_TARGET)}")
    say(f"  (measured from the POST being sent instead: p50 {ms(pct(zero_full, 50))} / {ms(caseN['full_p50'])}, "
        f"p99 {ms(pct(zero_full, 99))} / {ms(caseN['full_p99'])}, ratio {full_ratio:.2f}; the API call alone: p50 "
        f"{ms(case0a['api_p50'])} / {ms(caseN['api_p50'])}, p99 {ms(case0a['api_p99'])} / {ms(caseN['api_p99'])})")
    lost = case0a["lost"] + case0b["lost"] + caseN["lost"]
    if lost:
        say(f"  WARNING: {lost} sends were not received within 10 s")
    ff = (f"first fetch (device comes online) {first_fetch[2] / first_fetch[0] * 1000:.2f} ms CPU each "
          f"({first_fetch[0]} phones, {first_fetch[0] / first_fetch[1]:.0f}/s)") if first_fetch else ""
    say(f"  ramp            {n} long polls accepted in {ramp_s:.1f} s ({repoll_ms:.2f} server CPU-ms each); {ff}; "
        f"bare asyncio client connect rate {n / bare[judge_mode]['connect_s']:.0f}/s")
    say(f"  PostgreSQL {scratch.pg_version}, fsync={scratch.fsync}; {os.cpu_count()} CPU(s); load average {loadavg()}")
    return 0


def _threads(pid: int) -> int:
    from _benchlib import proc_threads

    return proc_threads(pid)


if __name__ == "__main__":
    sys.exit(main())
