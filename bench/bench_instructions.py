"""Server instructions per request (callgrind), for code changes measured on a busy machine.

Run with ``.venv/bin/python bench/bench_instructions.py [--before-code DIR]``. Throughput ratios
(``bench_messaging``) need a quiet machine; the number of instructions the server executes per
request does not (it repeats within about ±1 % when nothing else changes). The server runs under
``valgrind --tool=callgrind --instr-atstart=no``; instrumentation is switched on only while the
measured requests are made (after a warm-up), so start-up and warm-up are not counted.

Phases, each one request at a time on one keep-alive connection (so a send is a group of one):

* ``submit``: single-recipient ``POST /api/v1/messages`` with an API token;
* ``reports``: ``POST /api/device/v1/reports`` with one report (a recipient the phone holds,
  made in SQL beforehand), as ``bench_messaging``'s reports b=1.

``--before-code DIR`` (e.g. a ``git worktree`` of main) measures that checkout's server too, on the
same database, before this tree's. Valgrind slows the server about 50×: a run takes a few minutes.
The exit code is 0 whatever the figures; non-zero only if the benchmark could not run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _benchlib import (  # noqa: E402
    NO_LIMITS, api_token, code_version, create_devices, free_port, loadavg, make_tenant, run_main, say, section,
    tenant_host, wait_http,
)
from bench_idle import OLD_CODE_BOOT  # noqa: E402
from bench_messaging import fill_processed  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=300, help="measured requests per phase (default 300)")
    p.add_argument("--warmup", type=int, default=100, help="requests before measuring, per phase (default 100)")
    p.add_argument("--before-code", metavar="DIR", help="also measure the server of an older checkout, first")
    p.add_argument("--only", default="submit,reports", help="phases (default submit,reports)")
    p.add_argument("--rounds", type=int, default=2, help="rounds, alternating the sides (default 2)")
    p.add_argument("--idle-seconds", type=float, default=15.0, help="idle measurement per phase (default 15)")
    p.add_argument("--fast", action="store_true", help="PostgreSQL with fsync=off (the counts do not depend on it)")
    args = p.parse_args(argv)
    args.only = [x.strip() for x in args.only.split(",") if x.strip()]
    if set(args.only) - {"submit", "reports"}:
        p.error("phases are submit and reports")
    return args


class Valgrinded:
    """``smsgw serve`` under callgrind, instrumentation off until :meth:`count` switches it on."""

    def __init__(self, scratch, code: Path | None, tag: str):
        self.out_dir = scratch.tmp / f"cg-{tag}"
        self.out_dir.mkdir()
        self.port = free_port()
        argv = ["serve", "--port", str(self.port)]
        python = ([sys.executable, "-m", "core.cli", *argv] if code is None
                  else [sys.executable, "-c", OLD_CODE_BOOT.format(code=str(code), argv=argv)])
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--dump-instr=no",
               f"--callgrind-out-file={self.out_dir}/cg.%p", *python]
        self.child = scratch.spawn(f"serve-{tag}", cmd, SMSGW_BIND="127.0.0.1")
        wait_http(self.port, child=self.child, timeout=900)

    def control(self, *flags: str) -> None:
        subprocess.run(["callgrind_control", *flags, str(self.child.pid)], check=True, capture_output=True,
                       timeout=300)

    def count(self, requests) -> tuple[int, float]:
        """Instructions the server executed while ``requests()`` ran, and the seconds it took."""
        self.control("--zero")
        self.control("--instr=on")
        t0 = time.monotonic()
        requests()
        elapsed = time.monotonic() - t0
        self.control("--instr=off")
        return self._dumped(), elapsed

    def _dumped(self) -> int:
        before = set(self.out_dir.iterdir())
        self.control("--dump")
        for _ in range(600):
            new = [p for p in set(self.out_dir.iterdir()) - before if p.stat().st_size]
            if new:
                time.sleep(0.5)
                text = max(new, key=lambda p: p.stat().st_mtime).read_text(errors="replace")
                found = re.search(r"^totals:\s*(\d+)", text, re.M)
                if found:
                    return int(found.group(1))
            time.sleep(0.5)
        raise RuntimeError("callgrind wrote no dump")


def requester(port: int, host: str, headers: dict, make):
    """``run(n)``: ``n`` requests made by ``make(i) -> (method, path, body)`` on one connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def run(n: int, start: int = 0):
        for i in range(start, start + n):
            method, path, body = make(i)
            conn.request(method, path, body=json.dumps(body).encode(),
                         headers={"Host": host, "Content-Type": "application/json", **headers})
            r = conn.getresponse()
            data = r.read()
            if r.status not in (200, 202):
                raise RuntimeError(f"{method} {path}: {r.status} {data[:300]!r}")
    return run


def idle_rate(server: Valgrinded, seconds: float) -> float:
    """Instructions per second the server spends with no request (its timers: usage flush, keepalives,
    notifications); subtracted from a phase's count, since a busy machine stretches a phase's time."""
    count, elapsed = server.count(lambda: time.sleep(seconds))
    return count / elapsed


def measure(scratch, server: Valgrinded, phase: str, args, tenants: dict) -> float:
    port, n, warm = server.port, args.requests, args.warmup
    if phase == "submit":
        tenant, token = tenants["submit"]
        run = requester(port, tenant_host(tenant, port), {"Authorization": f"Bearer {token}"},
                        lambda i: ("POST", "/api/v1/messages",
                                   {"to": f"+1415555{(i * 997) % 10000:04d}", "text": f"bench submit {i}"}))
    else:
        tenant, (device_id, token) = tenants["reports"]
        conn = scratch.admin_conn()
        ids = fill_processed(conn, scratch.platform.roles.tenant_schema(tenant.slug), device_id, n + warm)
        run = requester(port, tenant_host(tenant, port), {"Authorization": f"Bearer {token}"},
                        lambda i: ("POST", "/api/device/v1/reports",
                                   {"reports": [{"message_id": ids[i], "state": "sent"}]}))
    run(warm)
    idle = idle_rate(server, args.idle_seconds)
    counted, elapsed = server.count(lambda: run(n, warm))
    say(f"    {phase}: {counted / 1e6:.0f} M in {elapsed:.0f} s, less idle {idle / 1e6:.2f} M/s x {elapsed:.0f} s")
    return (counted - idle * elapsed) / n


def body(args, scratch) -> int:
    section("bench_instructions: server instructions per request (callgrind)")
    say(f"  python {sys.version.split()[0]}, code {code_version()}, load {loadavg()}; {args.requests} requests "
        f"after {args.warmup} of warm-up, one at a time; phases {', '.join(args.only)}")
    scratch.start()
    platform = scratch.platform
    sides = ([("before", Path(args.before_code).resolve())] if args.before_code else []) + [("after", None)]
    results: dict = {}
    for r in range(args.rounds):
        for tag, code in (sides if r % 2 == 0 else sides[::-1]):
            section(f"round {r + 1} [{tag}] {code or 'this tree'}")
            tenants = {}
            t_submit = make_tenant(platform, f"ins-submit-{tag}-{r}")
            tenants["submit"] = (t_submit, api_token(t_submit))
            t_reports = make_tenant(platform, f"ins-reports-{tag}-{r}")
            tenants["reports"] = (t_reports, create_devices(t_reports, 1, f"ins-{tag}-{r}", NO_LIMITS)[0])
            t0 = time.monotonic()
            server = Valgrinded(scratch, code, f"{tag}-{r}")
            say(f"  server under callgrind, pid {server.child.pid}, ready in {time.monotonic() - t0:.0f} s")
            for phase in args.only:
                per = measure(scratch, server, phase, args, tenants)
                results.setdefault((tag, phase), []).append(per)
                say(f"  {phase:8s} {per / 1e6:6.3f} M instructions per request")
            server.child.stop(timeout=120)
            scratch.children.remove(server.child)
    section("summary (median of the rounds)")
    for phase in args.only:
        after = statistics.median(results[("after", phase)])
        line = f"  {phase:8s} after {after / 1e6:6.3f} M/request ({_each(results[('after', phase)])})"
        if ("before", phase) in results:
            before = statistics.median(results[("before", phase)])
            line += (f", before {before / 1e6:6.3f} M/request ({_each(results[('before', phase)])}): "
                     f"{100 * (after - before) / before:+.1f} %")
        say(line)
    return 0


def _each(values: list[float]) -> str:
    return ", ".join(f"{v / 1e6:.3f}" for v in values)


if __name__ == "__main__":
    args = parse_args()
    sys.exit(run_main("instructions", args.fast, lambda scratch: body(args, scratch)))
