"""Retention benchmark: removing a large backlog of message text while submits run, against submits alone.

Run with ``.venv/bin/python bench/bench_retention.py``; ``--help`` lists the knobs, ``--fast`` is a
quick check. Like the other benchmarks it starts a PostgreSQL in a temp dir with a scratch database
and role prefix, all dropped at the end, also on Ctrl-C. Web traffic goes to 127.0.0.1 only.

1. seed: one tenant gets N messages (default 1,000,000), one recipient each, delivered 30 days ago,
   with a history row each, by ``INSERT ... SELECT generate_series`` as the admin (not the API);
2. submit: bench_messaging's submit load (single-recipient POST /api/v1/messages on C connections,
   to another tenant of the same server ``python -m core.cli serve``) in rounds that alternate:
   * base: submits alone;
   * redacting: submits while a separate process (this script with ``--redactor``, the platform's own
     ``addons.privacy.retention.redact`` on the backlog tenant, the code the worker's due job runs)
     removes texts for the same seconds;
   until the whole backlog is removed. The ratio is submits/s while redacting ÷ submits/s alone
   (target ≥ 0.90); each batch's transaction time is reported (target: the longest ≤ ~100 ms).

The exit code is 0 whatever the figures; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as pyplatform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _benchlib import (  # noqa: E402
    ApiClient, api_token, code_version, loadavg, make_tenant, ms, pct, run_main, say, section, tenant_host, verdict,
)
from bench_messaging import PHONES, CpuMeter, Side, http_round  # noqa: E402

RATIO_TARGET = 0.90
BATCH_TARGET_MS = 100.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=1_000_000, help="backlog: messages with one recipient each "
                                                                    "(default 1,000,000)")
    p.add_argument("--concurrency", type=int, default=16, help="submit connections (default 16)")
    p.add_argument("--round-seconds", type=float, default=None, help="seconds per round (default 4; 2 with --fast)")
    p.add_argument("--max-rounds", type=int, default=400, help="stop after this many rounds per side (default 400)")
    p.add_argument("--fast", action="store_true", help="PostgreSQL with fsync=off (not realistic numbers)")
    p.add_argument("--redactor", metavar="SLUG", help=argparse.SUPPRESS)  # the child process
    args = p.parse_args(argv)
    args.round_seconds = args.round_seconds or (2.0 if args.fast else 4.0)
    return args


# -- the redacting process -----------------------------------------------------------------------------

def redactor(slug: str) -> int:
    """Reads a number of seconds per line on stdin, removes texts for that long, answers one JSON line."""
    import logging

    from addons.privacy import retention
    from core.config import Settings
    from core.platform import Platform
    from core.tenancy import load_tenant

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    platform = Platform(Settings.from_env())
    platform.start_database(progress=lambda *a: None)
    tenant = load_tenant(slug)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        budget = float(line)
        t0 = time.perf_counter()
        done = retention.redact(platform, tenant, budget=budget)
        print(json.dumps({"rows": done.rows, "batches": done.batches, "batch_ms": done.batch_ms,
                          "seconds": time.perf_counter() - t0}), flush=True)
    return 0


class Redactor:
    def __init__(self, scratch, slug: str):
        self.log = open(scratch.tmp / "redactor.log", "wb")
        self.proc = subprocess.Popen([sys.executable, __file__, "--redactor", slug], env=scratch.child_env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     start_new_session=True)
        assert json.loads(self.proc.stdout.readline())["ready"]

    async def run(self, seconds: float) -> dict:
        self.proc.stdin.write(f"{seconds}\n")
        self.proc.stdin.flush()
        return json.loads(await asyncio.get_running_loop().run_in_executor(None, self.proc.stdout.readline))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(30)
        self.log.close()


# -- the benchmark ----------------------------------------------------------------------------------------

SEED = """
INSERT INTO {s}.messages (created_at, text, encoding, segments, source)
SELECT now() - interval '30 days' + n * interval '1 millisecond',
       'Your code is ' || n || '. Do not share it with anyone; we will never ask for it.', 'GSM-7', 1, 'api'
  FROM generate_series(1, %(n)s) n;
INSERT INTO {s}.recipients (message_id, phone, state, created_at, updated_at, claimed_at, sent_at, delivered_at)
SELECT id, '+1415555' || lpad((id %% 10000)::text, 4, '0'), 'delivered', created_at, created_at,
       created_at, created_at, created_at
  FROM {s}.messages;
INSERT INTO {s}.recipient_events (recipient_id, at, from_state, to_state, source)
SELECT id, created_at, 'sent', 'delivered', 'device' FROM {s}.recipients;
"""


async def run(args, scratch) -> int:
    c, secs = args.concurrency, args.round_seconds
    say("smsgw retention benchmark")
    say(f"  python {pyplatform.python_version()}, {os.cpu_count()} CPU(s), temp dir {scratch.tmp}, code "
        f"{code_version()}, load average {loadavg()}")
    say(f"  backlog {args.messages:,} messages (one recipient each), submit concurrency {c}, rounds of {secs:.0f} s; "
        f"PostgreSQL {'fast (fsync=off)' if args.fast else 'durable (fsync=on)'}")

    section("setup")
    t0 = time.perf_counter()
    scratch.start()
    platform = scratch.platform
    say(f"  PostgreSQL {scratch.pg_version} (fsync={scratch.fsync}), migrated in {time.perf_counter() - t0:.1f} s")
    backlog, submit = make_tenant(platform, "ret-backlog"), make_tenant(platform, "ret-submit")
    schema = platform.roles.tenant_schema(backlog.slug)
    admin = scratch.admin_conn()
    t0 = time.perf_counter()
    with admin.cursor() as cur:
        cur.execute(SEED.format(s=schema), {"n": args.messages})
    admin.commit()
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"VACUUM ANALYZE {schema}.messages, {schema}.recipients, {schema}.recipient_events")
    say(f"  seeded {args.messages:,} messages, recipients and history rows in {time.perf_counter() - t0:.1f} s "
        f"(INSERT ... SELECT generate_series, then VACUUM ANALYZE)")
    token = api_token(submit)
    server, port = scratch.start_smsgw()
    red = Redactor(scratch, backlog.slug)
    say(f"  smsgw serve pid {server.pid} on 127.0.0.1:{port}; redactor pid {red.proc.pid} (retention.redact, "
        f"batches of at most {platform.settings.retention_batch} rows, aiming at {platform.settings.retention_batch_ms} ms)")
    cpu = CpuMeter(scratch.pg.pgdata, server)

    section(f"submit: single-recipient POST /api/v1/messages, {c} connections; alone  vs  while the backlog is removed")
    clients = [await ApiClient(port, tenant_host(submit, port), token).open() for _ in range(c)]

    def make(i, k):
        return "POST", "/api/v1/messages", {"text": f"bench submit {i}-{k}", "to": PHONES[(i * 997 + k) % 10000]}

    def accepted(status, body):
        return 1 if status == 202 else None

    await http_round(clients, make, accepted, 1.0, cpu)  # warm-up
    base, ours = Side("alone", "messages"), Side("while redacting", "messages")
    removed, batch_ms, redact_s = 0, [], 0.0
    t_all = time.perf_counter()
    for r in range(args.max_rounds):
        order = ["base", "ours"] if r % 2 == 0 else ["ours", "base"]
        for kind in order:
            if kind == "base":
                res = await http_round(clients, make, accepted, secs, cpu)
                base.add(res)
                note = ""
            else:
                res, done = await asyncio.gather(http_round(clients, make, accepted, secs, cpu), red.run(secs))
                ours.add(res)
                removed += done["rows"]
                batch_ms += done["batch_ms"]
                redact_s += done["seconds"]
                note = (f"; removed {done['rows']:,} texts in {done['batches']} batches, longest "
                        f"{max(done['batch_ms'] or [0]):.0f} ms (total {removed:,})")
            say(f"    round {r + 1} {kind}: {res['count'] / res['elapsed']:.0f} messages/s, p50 "
                f"{ms(pct(res['lat'], 50))}, p99 {ms(pct(res['lat'], 99))}"
                + (f", errors {res['errors']}" if res["errors"] else "") + note)
        if removed >= args.messages:
            break
    for cl in clients:
        cl.close()
    red.stop()
    left = admin.cursor()
    left.execute(f"SELECT count(*) FILTER (WHERE redacted_at IS NULL), count(*) FILTER (WHERE text <> '') "
                 f"FROM {schema}.messages")
    unredacted, with_text = left.fetchone()

    section("summary")
    ratio = ours.rate / base.rate if base.rate else 0.0
    longest = max(batch_ms or [0.0])
    say(f"  {ours.line()}")
    say(f"  {base.line()}")
    say(f"  backlog: {removed:,} of {args.messages:,} texts removed in {redact_s:.1f} s of redacting "
        f"({removed / redact_s if redact_s else 0:,.0f} rows/s), {len(batch_ms)} batches: p50 "
        f"{pct(batch_ms, 50):.1f} ms, p99 {pct(batch_ms, 99):.1f} ms, longest {longest:.1f} ms, "
        f"{sum(1 for b in batch_ms if b > BATCH_TARGET_MS)} over {BATCH_TARGET_MS:.0f} ms; left in the table: "
        f"{unredacted:,} without redacted_at, {with_text:,} with text; {time.perf_counter() - t_all:.0f} s in all")
    say(f"  load average at the end {loadavg()}")
    say(f"  submit ratio while redacting {ratio:.3f} (target ≥ {RATIO_TARGET}) {verdict(ratio >= RATIO_TARGET)}; "
        f"longest batch {longest:.1f} ms (target ≤ {BATCH_TARGET_MS:.0f}) {verdict(longest <= BATCH_TARGET_MS)}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.redactor:
        return redactor(args.redactor)
    return run_main("retention", args.fast, lambda scratch: asyncio.run(run(args, scratch)))


if __name__ == "__main__":
    sys.exit(main())
