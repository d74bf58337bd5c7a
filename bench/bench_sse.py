"""Event-stream benchmark: many app phones holding ``GET /api/mobile/v1/events`` on one server process.

Run with ``.venv/bin/python bench/bench_sse.py``; ``--help`` lists the knobs, ``--fast`` is a
quick check. It measures the stream the way ``bench_devices.py`` measures the long poll, with its
helpers (``_benchlib``: scratch PostgreSQL and database, the server in its own process, raw-socket
HTTP/1.1 clients; ``bench_devices.bare_baseline``: a bare asyncio server holding the same sockets):

1. setup: PostgreSQL, scratch database, tenants, an API token, N+1 app devices enrolled through
   ``addons.mobile.service.register`` (enrollment tokens, real device tokens);
2. baseline: the bare asyncio server holding N connections, each with a read request;
3. ``smsgw serve``; ``MessageEnqueued`` latency with the latency phone's stream alone: an API
   ``POST /api/v1/messages``, then the frame on the phone's stream (from the 202 being received);
4. N phones open their streams (each opening records contact: a database statement pair);
   server RSS before/after: KB per open stream, against the bare server's per connection;
5. the latency again with N streams open;
6. server CPU over a window while all N streams are open (one keepalive cycle is 15 s: a window
   of 15 s writes one ``:keepalive`` comment to every stream);
7. summary with the targets of issue 19 (the long polls' targets).

The exit code is 0 whatever the figures (a benchmark, not a test); 130 when interrupted.
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
    BENCH, NO_LIMITS, ApiClient, HttpClient, api_token, code_version, free_port, http_request, loadavg,
    make_tenant, ms, pct, raise_nofile, run_main, say, section, self_cpu_s, tenant_host, verdict, wait_quiet,
)
from bench_devices import IDLE_CPU_NOTE, LATENCY_RATIO_TARGET, MEMORY_TARGET, P50_TARGET, bare_baseline  # noqa: E402

APP_UA = "me.capcom.smsgateway/1.68.0"
KEEPALIVE_EVERY = 15  # seconds, as the app expects (addons/mobile/events.py)
FLOOR_TARGET = 2.0    # idle CPU of our streams against a bare asyncio server writing the same keepalives


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phones", type=int, default=None, help="app phones holding streams (default 10000; 1000 "
                                                           "with --fast)")
    p.add_argument("--tenants", type=int, default=4, help="tenants the phones are spread across (default 4)")
    p.add_argument("--sends", type=int, default=None, help="measured sends per latency case (default 200; 100 "
                                                          "with --fast)")
    p.add_argument("--warmup-sends", type=int, default=20, help="unmeasured sends before each case (default 20)")
    p.add_argument("--cpu-window", type=float, default=15.0, help="idle CPU window in seconds (default 15: one "
                                                                  "keepalive cycle)")
    p.add_argument("--gap-ms", type=float, default=40.0, help="mean pause between sends (default 40)")
    p.add_argument("--fast", action="store_true", help="quick run: PostgreSQL with fsync=off, 1000 phones")
    args = p.parse_args(argv)
    args.phones = args.phones if args.phones is not None else (1000 if args.fast else 10000)
    args.sends = args.sends if args.sends is not None else (100 if args.fast else 200)
    return args


def create_app_devices(platform, tenant, n: int, label: str, settings_patch: dict | None = None,
                       chunk: int = 250) -> list[tuple[int, str]]:
    """``n`` app phones enrolled the real way (an enrollment token spent by ``service.register``),
    in tenant transactions of ``chunk``. Returns ``[(device_id, device_token)]``."""
    from core.db import tenant_transaction
    from addons.devices import service as devices
    from addons.mobile import service

    out = []
    for start in range(0, n, chunk):
        with tenant_transaction(tenant.ref):
            token, _ = service.create_enrollment(tenant.slug, "bench", label, chunk, 1)
            for i in range(start, min(n, start + chunk)):
                device, device_token, _row = service.register(
                    platform, tenant, service.spend_enrollment(token), {"name": f"{label} {i}", "simCards": [{"slotIndex": 0, "simNumber": 1}]},
                    (1, 68, 0), lambda: None)
                if settings_patch:
                    devices.update_settings(device.id, settings_patch)
                out.append((device.id, device_token))
    return out


class StreamPhone(HttpClient):
    """An app phone's ``GET /events`` on one connection: the head, then chunks of SSE frames."""

    def __init__(self, fleet: "StreamFleet", index: int, token: str, host: str):
        super().__init__()
        self.fleet, self.index, self.token, self.host = fleet, index, token, host
        self.status = None
        self.pending = bytearray()
        self.events: dict[str, int] = {}

    def open_stream(self) -> None:
        self.send(http_request("GET", "/api/mobile/v1/events", self.host, {
            "Authorization": f"Bearer {self.token}", "Accept": "text/event-stream", "User-Agent": APP_UA}))

    def data_received(self, data):
        t = time.perf_counter()
        self.buf += data
        if self.status is None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status = int(bytes(self.buf[:end]).split(b" ", 2)[1])
            del self.buf[:end + 4]
            self.fleet.opened(self)
        while True:  # chunked: <size>\r\n<data>\r\n
            nl = self.buf.find(b"\r\n")
            if nl < 0:
                return
            size = int(bytes(self.buf[:nl]).split(b";")[0], 16)
            if len(self.buf) < nl + 2 + size + 2:
                return
            self.pending += self.buf[nl + 2:nl + 2 + size]
            del self.buf[:nl + 2 + size + 2]
            while b"\n\n" in self.pending:
                frame, _, rest = bytes(self.pending).partition(b"\n\n")
                self.pending = bytearray(rest)
                name = "comment" if frame.startswith(b":") else frame.split(b"\n", 1)[0][7:].decode()
                self.events[name] = self.events.get(name, 0) + 1
                self.fleet.on_event(self, name, t)

    def on_lost(self, exc):
        self.fleet.lost += 1


class StreamFleet:
    def __init__(self, port: int):
        self.port = port
        self.phones: list[StreamPhone] = []
        self.open_count = 0
        self.errors = 0
        self.lost = 0
        self.waiters: dict[int, asyncio.Future] = {}

    def opened(self, phone: StreamPhone) -> None:
        if phone.status == 200:
            self.open_count += 1
        else:
            self.errors += 1

    def on_event(self, phone: StreamPhone, name: str, t: float) -> None:
        if name == "MessageEnqueued":
            fut = self.waiters.pop(phone.index, None)
            if fut is not None and not fut.done():
                fut.set_result(t)

    def next_enqueued(self, phone: StreamPhone) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self.waiters[phone.index] = fut
        return fut

    async def connect_all(self, devices, parallel: int = 64) -> float:
        loop = asyncio.get_running_loop()
        sem = asyncio.Semaphore(parallel)
        t0 = time.perf_counter()

        async def one(i, token, host):
            async with sem:
                _, proto = await loop.create_connection(lambda: StreamPhone(self, i, token, host), "127.0.0.1",
                                                        self.port)
                self.phones.append(proto)

        base = len(self.phones)
        await asyncio.gather(*(one(base + i, tok, host) for i, (_id, tok, host) in enumerate(devices)))
        return time.perf_counter() - t0

    def close_all(self) -> None:
        for ph in self.phones:
            ph.close()
        self.phones = []


async def latency(api: ApiClient, fleet: StreamFleet, phone: StreamPhone, n: int, warmup: int, gap_ms: float,
                  label: str) -> dict:
    """``n`` single-recipient sends: 202 received -> ``MessageEnqueued`` on the phone's stream."""
    samples, lost = [], 0
    for i in range(warmup + n):
        fut = fleet.next_enqueued(phone)
        status, body, t0, t1 = await api.call("POST", "/api/v1/messages",
                                              {"text": f"bench sse {i}", "to": "+1415555%04d" % (i % 10000)})
        if status != 202:
            raise RuntimeError(f"POST /api/v1/messages answered {status}: {body}")
        try:
            t2 = await asyncio.wait_for(fut, 10)
        except asyncio.TimeoutError:
            lost += 1
            continue
        # A wake-up may come twice (in-process and through NOTIFY): let the second pass first.
        await asyncio.sleep(random.uniform(0.6, 1.4) * gap_ms / 1000)
        if i >= warmup:
            samples.append((t2 - t1, t2 - t0))
    wake = [s[0] for s in samples]
    full = [s[1] for s in samples]
    res = {"n": len(samples), "lost": lost, "p50": pct(wake, 50), "p99": pct(wake, 99), "wake": wake,
           "full_p50": pct(full, 50), "full_p99": pct(full, 99)}
    say(f"  {label}: {len(samples)} sends ({lost} not seen within 10 s); 202 received -> MessageEnqueued: p50 "
        f"{ms(res['p50'])}, p99 {ms(res['p99'])}; POST sent -> frame: p50 {ms(res['full_p50'])}, p99 "
        f"{ms(res['full_p99'])}")
    return res


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_main("sse", args.fast, lambda scratch: asyncio.run(run(args, scratch)))


async def run(args, scratch) -> int:
    n, t = args.phones, args.tenants
    soft, hard = raise_nofile(n + 2000)
    say("smsgw event-stream (SSE) benchmark")
    say(f"  python {pyplatform.python_version()}, {os.cpu_count()} CPU(s), RLIMIT_NOFILE {soft}/{hard}, code "
        f"{code_version()}, load average {loadavg()}")
    if soft < n + 200:
        raise SystemExit(f"RLIMIT_NOFILE is {soft}; {n} phones need about {n + 200}. Lower --phones.")

    section("setup")
    t0 = time.perf_counter()
    scratch.start()
    platform = scratch.platform
    lat_tenant = make_tenant(platform, "sse-lat")
    tenants = [make_tenant(platform, f"sse-{i}") for i in range(t)]
    token = api_token(lat_tenant)
    lat_dev = create_app_devices(platform, lat_tenant, 1, "latency", NO_LIMITS)[0]
    per = [n // t + (1 if i < n % t else 0) for i in range(t)]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=t) as pool:
        made = list(pool.map(lambda i: create_app_devices(platform, tenants[i], per[i], f"app-{i}"), range(t)))
    devices = [(d, tok, tenants[i].slug) for i in range(t) for d, tok in made[i]]
    random.Random(7).shuffle(devices)
    by_slug = {ten.slug: ten for ten in tenants}
    say(f"  {n} app devices enrolled in {t} tenant(s) (+1 latency phone), {time.perf_counter() - t0:.1f} s")

    section(f"baseline: a bare asyncio server holding {n} connections, each with a read request")
    bare = await bare_baseline(scratch, devices, "streams")

    section("smsgw serve; MessageEnqueued latency with 0 other streams open")
    server, port = scratch.start_smsgw()
    fleet = StreamFleet(port)
    await fleet.connect_all([(lat_dev[0], lat_dev[1], tenant_host(lat_tenant, port))])
    lat_phone = fleet.phones[0]
    lat_phone.open_stream()
    while fleet.open_count < 1:
        await asyncio.sleep(0.05)
    api = await ApiClient(port, tenant_host(lat_tenant, port), token).open()
    await asyncio.sleep(0.5)
    case0 = await latency(api, fleet, lat_phone, args.sends, args.warmup_sends, args.gap_ms, "0 other streams")

    section(f"{n} app phones open GET /api/mobile/v1/events")
    await wait_quiet(server, threshold=0.05, window=1.0)
    await asyncio.sleep(1.0)
    rss_before = server.rss_kb()
    conn_s = await fleet.connect_all([(d, tok, tenant_host(by_slug[slug], port)) for d, tok, slug in devices])
    say(f"  {n} connections in {conn_s:.1f} s")
    c0, t_open = server.cpu_s(), time.perf_counter()
    phones = fleet.phones[1:]
    for k in range(0, len(phones), 500):
        for ph in phones[k:k + 500]:
            ph.open_stream()
        await asyncio.sleep(0)
    while fleet.open_count + fleet.errors < n + 1:
        if time.perf_counter() - t_open > 300:
            raise RuntimeError(f"only {fleet.open_count - 1} of {n} streams opened in 300 s")
        await asyncio.sleep(0.25)
    open_s = time.perf_counter() - t_open
    await wait_quiet(server, threshold=0.05, window=0.5)
    open_cpu = server.cpu_s() - c0
    await asyncio.sleep(1.0)
    rss_after = server.rss_kb()
    per_conn = (rss_after - rss_before) / n
    mem_ratio = per_conn / bare["per_conn_kb"] if bare["per_conn_kb"] > 0 else float("inf")
    say(f"  {fleet.open_count - 1} streams open after {open_s:.1f} s ({fleet.errors} refused), server CPU "
        f"{open_cpu:.1f} s ({open_cpu / n * 1000:.2f} ms per opening: auth, contact, detach)")
    say(f"  server RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MB: {per_conn:.2f} KB per open stream; "
        f"bare {bare['per_conn_kb']:.2f} KB -> ratio {mem_ratio:.2f} (target ≤ {MEMORY_TARGET:.1f})   "
        f"{verdict(mem_ratio <= MEMORY_TARGET)}")

    section(f"MessageEnqueued latency with {n} other streams open")
    caseN = await latency(api, fleet, lat_phone, args.sends, min(5, args.warmup_sends), args.gap_ms,
                          f"{n} other streams")

    section(f"server CPU over {args.cpu_window:.0f} s while {n} streams are open")
    await wait_quiet(server, threshold=0.5, window=1.0)
    c0, k0, w0 = server.cpu_s(), self_cpu_s(), time.perf_counter()
    keep0 = sum(ph.events.get("comment", 0) for ph in phones)
    await asyncio.sleep(args.cpu_window)
    idle_cpu, client_cpu, window = server.cpu_s() - c0, self_cpu_s() - k0, time.perf_counter() - w0
    keepalives = sum(ph.events.get("comment", 0) for ph in phones) - keep0
    say(f"  server {idle_cpu:.2f} CPU-s over {window:.1f} s ({idle_cpu / window * 100:.2f}% of a core), "
        f"{keepalives} keepalive comments received; client {client_cpu:.2f} CPU-s; streams lost {fleet.lost}")
    api.close()
    fleet.close_all()
    server.stop()

    section(f"floor: a bare asyncio server writing the same keepalives to {n} event streams")
    floor = await keepalive_floor(scratch, devices, args.cpu_window)
    floor_ratio = (idle_cpu / window) / (floor["cpu"] / floor["window"]) if floor["cpu"] > 0 else float("inf")

    section("summary")
    ratio = caseN["p99"] / case0["p99"] if case0["p99"] > 0 else float("inf")
    worst_p50 = max(case0["p50"], caseN["p50"])
    say(f"  memory/stream   {per_conn:.2f} KB vs {bare['per_conn_kb']:.2f} KB bare asyncio = {mem_ratio:.2f}x "
        f"(target ≤ {MEMORY_TARGET:.1f}x)   {verdict(mem_ratio <= MEMORY_TARGET)}")
    say(f"  idle CPU        {idle_cpu:.2f} CPU-s over {window:.0f} s with {n} open ({keepalives} keepalives "
        f"written; target ~0, ≤ {IDLE_CPU_NOTE:.2f} per 10 s)   {verdict(idle_cpu / window * 10 <= IDLE_CPU_NOTE)}")
    say(f"  idle CPU floor  {floor['cpu']:.2f} CPU-s over {floor['window']:.0f} s for a bare asyncio server writing "
        f"{floor['keepalives']} keepalives: ours is {floor_ratio:.2f}x that (≤ {FLOOR_TARGET:.1f}x)   "
        f"{verdict(floor_ratio <= FLOOR_TARGET)}")
    say(f"  p99 ratio       {ratio:.2f} = {ms(caseN['p99'])} with {n} open / {ms(case0['p99'])} with 0 "
        f"(target ≤ {LATENCY_RATIO_TARGET:.1f})   {verdict(ratio <= LATENCY_RATIO_TARGET)}")
    full_ratio = caseN["full_p99"] / case0["full_p99"] if case0["full_p99"] > 0 else float("inf")
    say(f"  (from the POST being sent: p50 {ms(case0['full_p50'])} / {ms(caseN['full_p50'])}, p99 "
        f"{ms(case0['full_p99'])} / {ms(caseN['full_p99'])}, ratio {full_ratio:.2f}; the wake-up is in-process "
        f"right after the commit, so the frame often arrives before the 202)")
    say(f"  p50             {ms(case0['p50'])} with 0, {ms(caseN['p50'])} with {n} (target < "
        f"{P50_TARGET * 1000:.0f} ms)   {verdict(worst_p50 < P50_TARGET)}")
    say(f"  PostgreSQL {scratch.pg_version}, fsync={scratch.fsync}; {os.cpu_count()} CPU(s); load average {loadavg()}")
    return 0


async def keepalive_floor(scratch, devices, window: float) -> dict:
    """Server CPU of ``_bare_hold_server.py --keepalive`` over ``window`` seconds while the same
    phones hold event streams on it: what keeping that many streams alive costs at the least."""
    port = free_port()
    status = scratch.tmp / "bare-keepalive.status"
    child = scratch.spawn("bare-keepalive", [sys.executable, str(BENCH / "_bare_hold_server.py"), str(port),
                                             str(status), "--mode", "streams", "--keepalive", str(KEEPALIVE_EVERY)])
    t0 = time.monotonic()
    while not status.exists():
        if not child.alive() or time.monotonic() - t0 > 30:
            raise RuntimeError(f"bare keepalive server did not start:\n{child.tail()}")
        await asyncio.sleep(0.05)
    fleet = StreamFleet(port)
    await fleet.connect_all([(d, tok, "bare.localhost") for d, tok, _slug in devices])
    for k in range(0, len(fleet.phones), 500):
        for ph in fleet.phones[k:k + 500]:
            ph.open_stream()
        await asyncio.sleep(0)
    t1 = time.perf_counter()
    while fleet.open_count < len(devices):
        if time.perf_counter() - t1 > 300:
            raise RuntimeError(f"the bare server opened only {fleet.open_count} of {len(devices)} streams")
        await asyncio.sleep(0.25)
    await wait_quiet(child, threshold=0.5, window=1.0)
    keep0 = sum(ph.events.get("comment", 0) for ph in fleet.phones)
    c0, w0 = child.cpu_s(), time.perf_counter()
    await asyncio.sleep(window)
    cpu, elapsed = child.cpu_s() - c0, time.perf_counter() - w0
    keepalives = sum(ph.events.get("comment", 0) for ph in fleet.phones) - keep0
    say(f"  bare asyncio: {fleet.open_count} streams, {cpu:.2f} CPU-s over {elapsed:.1f} s "
        f"({cpu / elapsed * 100:.2f}% of a core), {keepalives} keepalive comments received; lost {fleet.lost}")
    fleet.close_all()
    child.stop()
    return {"cpu": cpu, "window": elapsed, "keepalives": keepalives}


if __name__ == "__main__":
    sys.exit(main())
