"""Restart benchmark: how soon phones are back after ``smsgw serve`` restarts (issue 23, item 6).

Run with ``.venv/bin/python bench/bench_restart.py``; ``--help`` lists the knobs.
Everything happens against a PostgreSQL started here in a temp dir and a
scratch database + role prefix, all dropped at the end, also on Ctrl-C or
SIGTERM. Web traffic goes to 127.0.0.1 only.

The server under test is ``python -m core.cli serve`` (what ``smsgw serve``
runs) with an external ``DATABASE_URL`` (this script's PostgreSQL), so
restarting it does not restart the database. The phones are the companion's
own polling code: per phone one thread running ``Companion._poll_once`` of
``android_companion.runner`` on a real ``DeviceClient``, with the real
``Backoff`` (or, for the baseline, the backoff the companion had before,
re-implemented below), spread over ``--procs`` worker processes. Only the
poller thread of each companion runs (no sender, no flusher): what comes back
after a restart is its long poll.

One round per policy, each on the same server and the same phones:

1. every phone makes one ``wait=0`` fetch (it is online, and the script knows
   its settings version), then its poll loop starts and parks a long poll;
2. the server gets SIGTERM (its drain answers parked polls 503 with
   ``Retry-After: 1``; the number it drained is read from its log);
3. ``smsgw serve`` starts again on the same port; "ready" is its
   ``Press Ctrl-C to stop.`` line (it listens just before printing it);
4. while it starts, one message per phone, targeted with ``device_id``, is
   stored in-process (the same ``submit.accept`` the API uses, with its
   NOTIFY wake-up at commit): work waiting for every phone;
5. per phone: seconds from ready to the moment its poll returned that message
   (its first successful poll of the new server hands the work over at once).
   During the round: every answer the phones got (503, 429, ...), refused
   connections, attempts per second, and the new server's RSS and CPU.

With ``--servers 2`` (or more) several ``smsgw serve`` processes share the port (SO_REUSEPORT,
the production shape on one machine) and a round restarts only the first one, as a rolling
restart does: its phones' retries reach the servers still up at once. The verdict then counts
from the SIGTERM (stricter than from ready), and the old figure from ready is shown too.

The exit code is 0 whatever the figures (a benchmark, not a test); 130 when
interrupted; non-zero only if the benchmark itself could not run.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import platform as pyplatform
import random
import re
import signal
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _benchlib import (  # noqa: E402
    Profiler, code_version, pg_cpu_s, create_devices, free_port, loadavg, make_tenant, pct, raise_nofile, run_main, say, section,
    tenant_host, verdict,
)

BACK_WITHIN = 5.0  # s after the new server is ready
BACK_SHARE = 0.95


# -- the two reconnect policies ----------------------------------------------------------------

class FullJitterBackoff:
    """The companion's backoff before 012ad07 (``android_companion/runner.py`` at 34c94c7), for
    comparison only: "full jitter", random between 0 and ``base * 2**failures`` capped at ``cap``
    (the companion passed 30 s), and any ``Retry-After`` ignored (it had no such argument)."""

    def __init__(self, base: float = 0.5, cap: float = 60.0):
        self.base, self.cap, self.failures = base, cap, 0

    def next(self, retry_after: float | None = None) -> float:
        self.failures += 1
        return random.uniform(0, min(self.cap, self.base * (2 ** self.failures)))

    def reset(self) -> None:
        self.failures = 0


POLICIES = {
    "new": "android_companion.runner.Backoff (decorrelated jitter, ≤ 5 s for 6 attempts, Retry-After honoured)",
    "old": "full jitter up to 30 s, Retry-After ignored (the companion before 012ad07)",
}


# -- phone worker processes ------------------------------------------------------------------------

def _phone_worker(conn, port: int, devices: list, policy: str, wait: int, batch: int, seed: int) -> None:
    """A worker process: one thread per phone, each running the companion's poll loop.

    Commands on ``conn``: ``prime`` (each phone: one wait=0 fetch, then its poll loop starts),
    ``status``, ``report`` (the events of every phone), ``stop``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent cleans up; it tells us to stop
    import logging

    from android_companion.client import DeviceClient, ServerError
    from android_companion.runner import Backoff, Companion

    logging.getLogger("smsgw.companion").setLevel(logging.CRITICAL)  # 1000 phones x warnings
    random.seed(seed)
    threading.stack_size(256 * 1024)

    class RecordingClient(DeviceClient):
        """The real client; ``fetch`` also notes what came back, and when."""

        def __init__(self, *a, events, **kw):
            super().__init__(*a, **kw)
            self.events = events

        def fetch(self, wait, limit, settings_version):
            t0 = time.monotonic()
            try:
                reply = super().fetch(wait, limit, settings_version)
            except ServerError as exc:
                self.events.append((time.monotonic(), exc.status, exc.retry_after, t0))
                raise
            except Exception:
                self.events.append((time.monotonic(), "net", None, t0))
                raise
            self.events.append((time.monotonic(), 200, len(reply.get("messages") or ()), t0))
            return reply

    class Work:
        """Stands in for the companion's work queue: notes when each message arrived."""

        def __init__(self):
            self.got: list[tuple[float, int]] = []

        def put(self, message):
            if message is None:  # Companion._fail's wake-up for its sender thread
                return
            self.got.append((time.monotonic(), int(message["id"])))

    phones = []
    for device_id, token, host in devices:
        events: list = []
        shell = Companion.__new__(Companion)  # the real methods, without the outbox, backend and threads
        shell.client = RecordingClient(f"http://{host}", token, connect_to=f"127.0.0.1:{port}", events=events)
        shell.wait, shell.batch = wait, batch
        shell.state = SimpleNamespace(settings_version=0, settings={}, save=lambda _d: None)
        shell.state_dir = None
        shell._settings_lock = threading.Lock()
        shell.stats = {"fetched": 0, "sent": 0, "failed": 0, "reports_flushed": 0, "inbound_flushed": 0,
                       "network_errors": 0}
        shell.stop_event = threading.Event()
        shell.fatal = None
        shell.work = Work()
        shell.device_id = device_id
        shell.events = events
        phones.append(shell)

    primed = [0]
    lock = threading.Lock()

    gate = threading.Semaphore(16)  # set-up, not measured: devices coming online for the first time are slow

    def run(shell):
        for attempt in range(3):
            try:
                with gate:
                    reply = shell.client.fetch(0, shell.batch, 0)
                shell.state.settings_version = reply.get("settings_version", 0)
                shell.fatal = None
                break
            except Exception as exc:
                shell.fatal = f"first fetch: {exc}"
                time.sleep(1)
        with lock:
            primed[0] += 1
        # Companion._poll_loop, with the backoff of the policy under test.
        backoff = Backoff(cap=30.0) if policy == "new" else FullJitterBackoff(cap=30.0)
        while not shell.stop_event.is_set():
            try:
                shell._poll_once(backoff)
            except Exception:
                shell.stop_event.wait(backoff.next())

    threads = []
    while True:
        try:
            cmd = conn.recv()
        except EOFError:
            cmd = "stop"
        if cmd == "prime":
            for shell in phones:
                t = threading.Thread(target=run, args=(shell,), daemon=True)
                t.start()
                threads.append(t)
            conn.send(len(threads))
        elif cmd == "status":
            conn.send({"primed": primed[0], "got": sum(1 for s in phones if s.work.got),
                       "fatal": [s.fatal for s in phones if s.fatal][:3]})
        elif cmd == "report":
            conn.send([{"device_id": s.device_id, "events": list(s.events), "got": list(s.work.got), "fatal": s.fatal}
                       for s in phones])
        elif cmd == "stop":
            for s in phones:
                s.stop_event.set()
                s.client.abort()
            try:
                conn.send("stopped")
                conn.close()
            except OSError:  # the parent is gone or no longer listening: nothing to tell
                pass
            os._exit(0)  # the poll threads are daemons in blocking reads; nothing to flush


class Phones:
    """``procs`` worker processes holding the phones of one round."""

    def __init__(self, port, devices, policy, procs, wait, batch, seed):
        ctx = multiprocessing.get_context("spawn")
        self.workers = []
        for k in range(procs):
            mine = devices[k::procs]
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_phone_worker, args=(child, port, mine, policy, wait, batch, seed * 100 + k),
                            daemon=True, name=f"phones-{policy}-{k}")
            p.start()
            child.close()
            self.workers.append((p, parent))

    def ask(self, cmd):
        for _p, c in self.workers:
            c.send(cmd)
        return [c.recv() for _p, c in self.workers]

    def cpu_s(self) -> float:
        from _benchlib import proc_cpu_s

        return sum(proc_cpu_s(p.pid) for p, _c in self.workers)

    def stop(self):
        for p, c in self.workers:
            try:
                c.send("stop")
                c.recv()
            except (OSError, EOFError):
                pass
            p.join(5)
            if p.is_alive():
                p.kill()
                p.join(5)
        self.workers = []


# -- the server under test ---------------------------------------------------------------------------

class Server:
    def __init__(self, scratch, port: int, n: int):
        self.t_spawn = time.monotonic()
        self.child = scratch.spawn(f"smsgw-serve-{n}", [sys.executable, "-m", "core.cli", "serve", "--port",
                                                        str(port)], SMSGW_BIND="127.0.0.1", PYTHONUNBUFFERED="1")
        self.t_ready = None

    def log(self) -> str:
        try:
            return self.child.logfile.read_text(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 120.0, on_tick=None) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "Press Ctrl-C to stop." in self.log():
                self.t_ready = time.monotonic()
                return self.t_ready
            if not self.child.alive():
                raise RuntimeError(f"smsgw serve exited with {self.child.proc.returncode}:\n{self.child.tail()}")
            if on_tick:
                on_tick()
            time.sleep(0.005)
        raise RuntimeError(f"smsgw serve not ready within {timeout:.0f} s:\n{self.child.tail()}")


def runqueue_wait_s(pid: int, main_only: bool = False) -> float:
    """Seconds the threads of ``pid`` (or only its main thread, the event loop) spent runnable but
    waiting for a CPU (``/proc/<pid>/task/*/schedstat``): on a shared machine, the time the server
    wanted to run and could not."""
    total = 0
    tasks = [Path(f"/proc/{pid}/task/{pid}")] if main_only else Path(f"/proc/{pid}/task").iterdir()
    for task in tasks:
        try:
            total += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total / 1e9


class Sampler(threading.Thread):
    """The peak RSS of a process, sampled every 50 ms until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.stop_flag = pid, 0, threading.Event()

    def run(self):
        from _benchlib import proc_rss_kb

        while not self.stop_flag.wait(0.05):
            try:
                self.peak_kb = max(self.peak_kb, proc_rss_kb(self.pid))
            except (OSError, RuntimeError):
                return


# -- one round ----------------------------------------------------------------------------------------

def queue_work(tenants_devices) -> tuple[int, float, dict]:
    """One message per phone, targeted with ``device_id``, stored in-process as the API stores it.
    Also gives when each phone's message was committed (``{device_id: monotonic time}``)."""
    from core.db import tenant_transaction
    from addons.messaging import submit

    t0 = time.monotonic()
    n, committed = 0, {}
    for tenant, devs in tenants_devices:
        for k in range(0, len(devs), 500):
            body = {"messages": [{"text": "after the restart", "to": "+14155550111", "device_id": d}
                                 for d in devs[k:k + 500]]}
            with tenant_transaction(tenant.ref):
                clean, rejected, batch = submit.validate_request(body, tenant.default_region)
                status, _response, _keys = submit.accept(tenant, clean, rejected, batch, source="api",
                                                          created_by="bench")
            if status != 202:
                raise RuntimeError(f"storing the round's messages answered {status}")
            n += len(body["messages"])
            committed.update(dict.fromkeys(devs[k:k + 500], time.monotonic()))
    return n, time.monotonic() - t0, committed


def run_round(args, scratch, state, policy: str) -> dict:
    section(f"round '{policy}': {POLICIES[policy]}")
    port, devices = state.port, state.devices
    phones = Phones(port, devices, policy, args.procs, args.wait, 10, args.seed + len(state.results))
    try:
        t0 = time.monotonic()
        phones.ask("prime")
        while True:
            st = phones.ask("status")
            primed = sum(s["primed"] for s in st)
            if primed >= len(devices):
                break
            if time.monotonic() - t0 > 180:
                raise RuntimeError(f"only {primed} of {len(devices)} phones made their first fetch")
            time.sleep(0.2)
        fatal = [f for s in st for f in s["fatal"]]
        if fatal:
            raise RuntimeError(f"first fetches failed: {fatal}")
        say(f"  {len(devices)} phones fetched once (wait=0) in {time.monotonic() - t0:.1f} s; their long polls "
            f"(wait={args.wait}) park")
        time.sleep(args.settle)

        old = state.servers[0]  # with --servers 2 and more, a rolling restart: the others stay up
        others = state.servers[1:]
        cpu_others = sum(o.child.cpu_s() for o in others)
        old_log_len = len(old.log())
        t_term = time.monotonic()
        old.child.proc.send_signal(signal.SIGTERM)
        old.child.proc.wait(60)
        t_exit = time.monotonic()
        tail = old.log()[old_log_len:]
        m = re.search(r"Told (\d+) waiting phone", tail)
        drained = int(m.group(1)) if m else 0
        say(f"  SIGTERM: the old server drained {drained} parked poll(s) and exited in {t_exit - t_term:.2f} s")

        if args.down > 0:  # a slower restart (a deploy, a host under load): the server stays away longer
            time.sleep(max(0.0, t_term + args.down - time.monotonic()))
        state.n_servers += 1
        new = Server(scratch, port, state.n_servers)
        sampler = Sampler(new.child.pid)
        sampler.start()
        # Work for every phone, stored while the new server starts (so the downtime is the server's
        # own), the way the API stores it, with its NOTIFY wake-up at commit: a phone back before the
        # commit is woken; one back after it finds its message at its first poll.
        queued, q_s, committed = queue_work(state.tenants_devices)
        t_stored = time.monotonic()
        t_ready = new.wait_ready()
        state.prof.start(new.child.pid, f"reconnect-{policy}")  # --profile only (it waits 0.5 s)
        say(f"  {queued} messages (one per phone, device_id set) stored in {q_s:.2f} s while it started, "
            + (f"{t_ready - t_stored:.2f} s before it was ready" if t_ready >= t_stored else
               f"WARNING: {t_stored - t_ready:.2f} s after it was ready"))
        cpu_ready = new.child.cpu_s()
        rq_ready, pg_ready = runqueue_wait_s(new.child.pid), pg_cpu_s(scratch.pg.pgdata)
        rq_main_ready = runqueue_wait_s(new.child.pid, main_only=True)
        client_ready = phones.cpu_s()
        state.servers[0] = new
        say(f"  new server pid {new.child.pid} ready {t_ready - new.t_spawn:.2f} s after its start, "
            f"{t_ready - t_term:.2f} s after SIGTERM to the old one")

        deadline = t_ready + args.window
        last_say = 0.0
        while time.monotonic() < deadline:
            got = sum(s["got"] for s in phones.ask("status"))
            now = time.monotonic()
            if got >= len(devices):
                break
            if now - last_say >= 5:
                say(f"    {now - t_ready:5.1f} s after ready: {got} of {len(devices)} phones have their message")
                last_say = now
            time.sleep(0.1)
        t_end = time.monotonic()
        time.sleep(0.5)
        sampler.stop_flag.set()
        state.prof.stop()
        cpu_used = new.child.cpu_s() - cpu_ready
        rq_wait = runqueue_wait_s(new.child.pid) - rq_ready
        rq_main = runqueue_wait_s(new.child.pid, main_only=True) - rq_main_ready
        pg_used = pg_cpu_s(scratch.pg.pgdata) - pg_ready
        client_cpu = phones.cpu_s() - client_ready
        cpu_others = sum(o.child.cpu_s() for o in others) - cpu_others
        report = [p for part in phones.ask("report") for p in part]
    finally:
        phones.stop()

    back, missing = [], 0
    reconnect, after_commit = [], []  # rolling restart: when each phone's poll was back; message after its commit
    statuses = collections.Counter()
    refused = 0
    attempts = []  # times of attempts that ended after SIGTERM (answers or refusals)
    arrival, service = [], []  # the successful attempt: when it started after ready, how long it took
    early_got = sum(1 for p in report if any(t <= t_term for t, _mid in p["got"]))
    if early_got:
        say(f"  WARNING: {early_got} phone(s) got a message before the SIGTERM (a poll expired?): they count as "
            f"not back")
    for p in report:
        got = [t for t, _mid in p["got"] if t > t_term]
        if got:
            back.append(got[0] - t_ready)
            after_commit.append(got[0] - committed[p["device_id"]])
            ok = [(t, t0) for t, status, n_msgs, t0 in p["events"] if t > t_term and status == 200 and n_msgs]
            if ok:
                reconnect.append(max(0.0, ok[0][1] - t_term))  # a poll parked before the SIGTERM: never away
                arrival.append(ok[0][1] - t_ready)
                service.append(ok[0][0] - ok[0][1])
        else:
            missing += 1
        for t, status, _extra, _t0 in p["events"]:
            if t <= t_term:
                continue
            attempts.append(t)
            if status == "net":
                refused += 1
            elif status != 200:
                statuses[(status, "after ready" if t >= t_ready else "before ready")] += 1
    n = len(report)
    within = sum(1 for b in back if b <= BACK_WITHIN)
    within_term = sum(1 for b in reconnect if b <= BACK_WITHIN)  # rolling: poll back within 5 s of SIGTERM
    within_commit = sum(1 for b in after_commit if b <= BACK_WITHIN)  # ... and the message within 5 s of commit
    per_sec = collections.Counter(int(t - t_ready) for t in attempts if t >= t_ready)
    during_down = sum(1 for t in attempts if t < t_ready)
    res = {
        "policy": policy, "n": n, "drained": drained, "exit_s": t_exit - t_term, "start_s": t_ready - new.t_spawn,
        "down_s": t_ready - t_term, "within": within, "share": within / n, "missing": missing,
        "rolling": bool(others), "within_term": within_term, "share_term": within_term / n,
        "term_p50": pct(reconnect, 50) if reconnect else float("nan"),
        "term_p95": pct(reconnect + [float("inf")] * (n - len(reconnect)), 95),
        "share_commit": within_commit / n, "commit_p95": pct(after_commit + [float("inf")] * missing, 95),
        "cpu_others_s": cpu_others,
        "p50": pct(back, 50) if back else float("nan"), "p95": pct(back + [float("inf")] * missing, 95),
        "max": max(back) if back and not missing else float("inf"), "back": back,
        "statuses": {f"{k[0]} {k[1]}": v for k, v in sorted(statuses.items())}, "refused": refused, "attempts_down": during_down,
        "attempts_after": len(attempts) - during_down, "peak_per_s": max(per_sec.values()) if per_sec else 0,
        "rss_mb": sampler.peak_kb / 1024, "cpu_s": cpu_used, "until_all_s": t_end - t_ready,
        "early": sum(1 for b in back if b < 0),
        "arr_p50": pct(arrival, 50), "arr_p95": pct(arrival, 95),
        "arr_within": sum(1 for a in arrival if a <= BACK_WITHIN) / n,
        "svc_p50": pct(service, 50), "svc_p95": pct(service, 95), "svc_max": max(service) if service else 0,
        "client_cpu_s": client_cpu, "rq_wait_s": rq_wait, "rq_main_s": rq_main, "pg_cpu_s": pg_used,
    }
    say(f"  back within {BACK_WITHIN:.0f} s of ready: {within} of {n} ({100 * res['share']:.1f} %); "
        f"p50 {res['p50']:.2f} s, p95 {res['p95']:.2f} s, max {res['max']:.2f} s"
        + (f"; {missing} not back within the {args.window:.0f} s window" if missing else ""))
    if others:
        say(f"  rolling restart ({len(others)} other server(s) stayed up): the poll that brought the message was "
            f"sent within {BACK_WITHIN:.0f} s of the SIGTERM for {within_term} of {n} phones "
            f"({100 * res['share_term']:.1f} %; p50 {res['term_p50']:.2f} s, p95 {res['term_p95']:.2f} s; a poll "
            f"parked before it counts 0); the message came within {BACK_WITHIN:.0f} s of its commit for "
            f"{within_commit} ({100 * res['share_commit']:.1f} %, p95 {res['commit_p95']:.2f} s); the other "
            f"server(s) used {cpu_others:.2f} CPU-s meanwhile")
    dist = collections.Counter(min(int(b), 30) for b in back)
    say("    back per second after ready: " + ", ".join(f"{k}s:{dist[k]}" for k in sorted(dist)))
    say(f"  the poll that brought it: sent p50 {res['arr_p50']:.2f} s, p95 {res['arr_p95']:.2f} s after ready "
        f"({100 * res['arr_within']:.1f} % sent within {BACK_WITHIN:.0f} s: the backoff's part); answered "
        f"p50 {res['svc_p50']:.2f} s, p95 {res['svc_p95']:.2f} s, max {res['svc_max']:.2f} s after it was sent "
        f"(the server's and the client's part)")
    say(f"  answers after SIGTERM other than 200: {res['statuses'] or 'none'}; connections refused: {refused}")
    say(f"  poll attempts after SIGTERM: {during_down} before ready, {res['attempts_after']} after (peak "
        f"{res['peak_per_s']} in one second)")
    say(f"  new server: peak RSS {res['rss_mb']:.1f} MB, {cpu_used:.2f} CPU-s from ready until all were back "
        f"(+0.5 s) in {t_end + 0.5 - t_ready:.1f} s; runnable but waiting for a CPU meanwhile: its event-loop "
        f"thread {rq_main:.2f} s, all its threads together {rq_wait:.2f} s; "
        f"PostgreSQL {pg_used:.2f} CPU-s, the phone processes {client_cpu:.2f} CPU-s meanwhile; load average "
        f"{loadavg()}")
    return res


# -- main ---------------------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--phones", type=int, default=1000, help="simulated phones (default 1000)")
    p.add_argument("--tenants", type=int, default=4, help="tenants the phones are spread across (default 4)")
    p.add_argument("--procs", type=int, default=2, help="worker processes holding the phone threads (default 2)")
    p.add_argument("--wait", type=int, default=30, help="long-poll wait of the phones, s (default 30, the "
                                                       "companion's)")
    p.add_argument("--window", type=float, default=90.0,
                   help="seconds after ready a round waits for every phone to be back (default 90)")
    p.add_argument("--settle", type=float, default=3.0,
                   help="seconds between the phones' first fetch and the SIGTERM, so every poll is parked "
                        "(default 3)")
    p.add_argument("--down", type=float, default=0.0,
                   help="start the new server no sooner than this many seconds after the SIGTERM (default 0: "
                        "as soon as the old one has exited); its own start-up time comes on top")
    p.add_argument("--policies", default="new,old",
                   help="rounds to run, in order: new (the companion's Backoff), old (the baseline) "
                        "(default new,old)")
    p.add_argument("--servers", type=int, default=1,
                   help="smsgw serve processes sharing the port (default 1); with 2 or more a round restarts "
                        "the first only (a rolling restart, the production shape) and the verdict counts from "
                        "its SIGTERM")
    p.add_argument("--seed", type=int, default=23, help="random seed of the phones' jitter (default 23)")
    p.add_argument("--profile", metavar="DIR", help="record the new server with py-spy from ready until every "
                                                   "phone is back, into DIR (collapsed stacks, GIL holder only)")
    p.add_argument("--fast", action="store_true", help="PostgreSQL with fsync=off etc. (quicker set-up, not "
                                                      "realistic numbers)")
    args = p.parse_args(argv)
    args.policies = [x.strip() for x in args.policies.split(",") if x.strip()]
    if any(x not in POLICIES for x in args.policies) or not args.policies:
        p.error("--policies takes new and/or old")
    if args.phones < 1 or args.procs < 1 or args.tenants < 1 or args.servers < 1:
        p.error("need --phones, --procs, --tenants ≥ 1")
    args.wait = max(1, min(60, args.wait))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    return run_main("restart", args.fast, lambda scratch: run(args, scratch))


def run(args, scratch) -> int:
    import datetime as dt
    from concurrent.futures import ThreadPoolExecutor

    n, t = args.phones, args.tenants
    soft, hard = raise_nofile(4 * n + 2000)
    say("smsgw restart benchmark")
    say(f"  {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, python {pyplatform.python_version()}, "
        f"{os.cpu_count()} CPU(s), code {code_version()}, load average {loadavg()}")
    say(f"  {n} phones over {t} tenant(s) in {args.procs} worker process(es), one companion poll loop "
        f"(thread) per phone, long poll wait={args.wait}; rounds: {', '.join(args.policies)}; "
        f"{f'new server started ≥ {args.down:g} s after the SIGTERM; ' if args.down else ''}"
        f"RLIMIT_NOFILE {soft}/{hard}")

    section("setup")
    t0 = time.perf_counter()
    scratch.start()
    platform = scratch.platform
    say(f"  PostgreSQL {scratch.pg_version} (fsync={scratch.fsync}), database {scratch.dbname}, role prefix "
        f"{scratch.prefix}, migrated in {time.perf_counter() - t0:.1f} s")
    tenants = [make_tenant(platform, f"rst-{i}") for i in range(t)]
    per = [n // t + (1 if i < n % t else 0) for i in range(t)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=t) as pool:
        made = list(pool.map(lambda i: create_devices(tenants[i], per[i], f"phone-{i}"), range(t)))
    say(f"  {n} devices paired through service.register (pairing code + register), "
        f"{time.perf_counter() - t0:.1f} s")
    port = free_port()
    devices = [(d, tok, tenant_host(tenants[i], port)) for i in range(t) for d, tok in made[i]]
    random.Random(7).shuffle(devices)
    state = SimpleNamespace(port=port, devices=devices, results=[], n_servers=args.servers,
                            tenants_devices=[(tenants[i], [d for d, _tok in made[i]]) for i in range(t)])
    state.prof = Profiler(args.profile)
    state.servers = []
    for k in range(args.servers):  # one port (SO_REUSEPORT): the kernel spreads connections over them
        server = Server(scratch, port, k + 1)
        server.wait_ready()
        state.servers.append(server)
        say(f"  smsgw serve pid {server.child.pid} on 127.0.0.1:{port}, ready "
            f"{server.t_ready - server.t_spawn:.2f} s after start")

    for policy in args.policies:
        state.results.append(run_round(args, scratch, state, policy))

    section("summary")
    say(f"  load average {loadavg()}")
    by = {r["policy"]: r for r in state.results}
    for r in state.results:
        ok = (min(r["share_term"], r["share_commit"]) if r["rolling"] else r["share"]) >= BACK_SHARE
        if r["rolling"]:
            say(f"  {r['policy']:>3}: rolling restart of 1 of {args.servers} servers: {100 * r['share_term']:5.1f} % "
                f"polling a live server again within {BACK_WITHIN:.0f} s of the SIGTERM, {100 * r['share_commit']:.1f} % "
                f"got their message within {BACK_WITHIN:.0f} s of its commit (target ≥ {100 * BACK_SHARE:.0f} % each) "
                f"{verdict(ok) if r['policy'] == 'new' else '(baseline)'}")
        say(f"  {r['policy']:>3}: {100 * r['share']:5.1f} % back within {BACK_WITHIN:.0f} s of ready (target ≥ "
            f"{100 * BACK_SHARE:.0f} %) {(verdict(ok) if not r['rolling'] else '(info)') if r['policy'] == 'new' else '(baseline)':8} p50 "
            f"{r['p50']:.2f} s, p95 {r['p95']:.2f} s, max {r['max']:.2f} s; drained {r['drained']}, down "
            f"{r['down_s']:.2f} s (server start {r['start_s']:.2f} s); non-200 answers {r['statuses'] or 'none'}; "
            f"peak {r['peak_per_s']} attempts/s; server peak RSS {r['rss_mb']:.0f} MB, {r['cpu_s']:.1f} CPU-s")
        say(f"       the successful poll sent within {BACK_WITHIN:.0f} s of ready: {100 * r['arr_within']:.1f} % (p95 "
            f"{r['arr_p95']:.2f} s); answered p50 {r['svc_p50']:.2f} s, p95 {r['svc_p95']:.2f} s after sending; "
            f"server event loop waited {r['rq_main_s']:.2f} s for a CPU")
    if "new" in by and "old" in by:
        a, b = by["new"], by["old"]
        say(f"  new/old: p50 {a['p50'] / b['p50']:.2f}x, p95 {a['p95'] / b['p95']:.2f}x, max "
            f"{a['max'] / b['max']:.2f}x; back within 5 s {a['within']} vs {b['within']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
