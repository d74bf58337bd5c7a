"""The Overview's cost (``/``, issue 22): statements and time per page load in a busy workspace.

Run with ``.venv/bin/python bench/bench_overview.py`` (``--messages N``, default 100,000; ``--fast``:
PostgreSQL with fsync off). A PostgreSQL is started here in a temp dir, all dropped at the end.

One workspace gets N messages of one recipient each, spread over the last 30 days, with their
history (claimed, then sent and delivered, or failed; a few still pending), 5 phones, a webhook
endpoint; the rows go in with plain SQL, so the usage triggers count them as they would the real
work. Then the web server runs in this process (as the tests run it) and the owner, signed in,
loads ``/`` (7 days) and ``/?days=30`` repeatedly: the statements each load sends to PostgreSQL
(peewee's statement log, which every query of the page goes through) and the time of a load over
HTTP (median and p95 of 30). The target: a handful of statements, none of them reading the
message tables, and a page in tens of milliseconds whatever N is. ``/overview`` (Statistics, 30
days) is measured the same way.
"""

from __future__ import annotations

import argparse
import logging
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _benchlib import make_tenant, run_main, say, section  # noqa: E402

FILL = """
WITH m AS (
    INSERT INTO messages (text, encoding, segments, created_at)
    SELECT 'bench ' || g, 'GSM-7', 1, now() - (g %% 30) * interval '1 day' - (g %% 1000) * interval '1 second'
      FROM generate_series(%(lo)s, %(hi)s) g RETURNING id, created_at),
r AS (
    INSERT INTO recipients (message_id, phone, state, device_id, created_at, updated_at, claimed_at, sent_at,
                            delivered_at, failed_at)
    SELECT id, '+1415555' || lpad((id %% 10000)::text, 4, '0'),
           CASE WHEN id %% 200 = 0 THEN 'pending' WHEN id %% 20 = 0 THEN 'failed' ELSE 'delivered' END,
           CASE WHEN id %% 200 = 0 THEN NULL ELSE %(dev)s + id %% 5 END, created_at, created_at,
           created_at, created_at, created_at + interval '7 seconds', created_at
      FROM m RETURNING id, state, device_id, created_at)
INSERT INTO recipient_events (recipient_id, from_state, to_state, source, device_id, at)
SELECT id, 'processed', CASE WHEN state = 'failed' THEN 'failed' ELSE 'delivered' END, 'report', device_id,
       created_at + interval '7 seconds'
  FROM r WHERE state <> 'pending'
"""


class Count(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.statements: list[str] = []

    def emit(self, record):
        if not isinstance(record.msg, tuple):  # the pool's own lines ("Returning ... to pool")
            return
        self.statements.append(" ".join(str(record.msg[0]).split()))


def fill(tenant, messages: int, first_device: int) -> None:
    """``messages`` messages (and their recipients and history) over 30 days, on the 5 phones from
    ``first_device``, 20,000 per transaction."""
    from core.db import tenant_transaction

    step = 20_000
    for lo in range(1, messages + 1, step):
        with tenant_transaction(tenant.ref) as db:
            db.execute_sql(FILL, {"lo": lo, "hi": min(messages, lo + step - 1), "dev": first_device})


def signed_in(server, tenant):
    """An HTTP client of the live server with the workspace's owner signed in."""
    client = server.client(tenant.slug)
    client.get("/login")
    r = client.post("/login", data={"email": f"owner@{tenant.slug}.example", "password": "bench password 1234",
                                    "_xsrf": client.cookies.get("_xsrf")})
    assert r.status_code == 302, (r.status_code, r.text[:300])
    return client


def body(scratch, args) -> int:
    from core.db import tenant_transaction

    scratch.start()
    platform = scratch.platform
    tenant = make_tenant(platform, "overviewbench")
    section(f"filling one workspace with {args.messages:,} messages over 30 days")
    started = time.monotonic()
    with tenant_transaction(tenant.ref) as db:
        for i in range(5):
            db.execute_sql("INSERT INTO devices (name, device_uid, online, last_seen_at, battery_level, signal) "
                           "VALUES (%s, %s, %s, now(), 80, -70)", (f"Phone {i}", f"bench-{i}", i != 4))
        first = db.execute_sql("SELECT min(id) FROM devices").fetchone()[0]
        db.execute_sql("INSERT INTO webhook_endpoints (url, events, secret_enc, failing_since) "
                       "VALUES ('https://example.com/hook', '{sms:delivered}', 'x', now())")
    fill(tenant, args.messages, first)
    with tenant_transaction(tenant.ref) as db:
        counts = db.execute_sql("SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM recipients), "
                                "(SELECT count(*) FROM recipient_events), (SELECT count(*) FROM usage_counts)"
                                ).fetchone()
    say(f"  {counts[0]:,} messages, {counts[1]:,} recipients, {counts[2]:,} events, {counts[3]:,} usage_counts "
        f"rows in {time.monotonic() - started:.1f} s")
    from core.db import app_db, connection

    with connection():
        app_db.execute_sql("ANALYZE")

    from tests.support.server import LiveServer

    server = LiveServer(platform).start()
    try:
        client = signed_in(server, tenant)
        log = logging.getLogger("peewee")
        log.setLevel(logging.DEBUG)
        log.propagate = False
        for path in ("/", "/?days=30", "/overview"):
            page = client.get(path)
            assert page.status_code == 200, (path, page.status_code, page.text[:300])
            counter = Count()
            log.addHandler(counter)
            client.get(path)
            log.removeHandler(counter)
            times = []
            for _ in range(30):
                t0 = time.perf_counter()
                assert client.get(path).status_code == 200
                times.append(time.perf_counter() - t0)
            times.sort()
            section(f"GET {path}")
            say(f"  statements per load: {len(counter.statements)}")
            for s in counter.statements:
                say(f"    {s[:150]}")
            touched = sorted({t for s in counter.statements for t in re.findall(r"\b(messages|recipients|"
                                                                             r"recipient_events)\b", s)})
            say(f"  message tables named: {', '.join(touched) or 'none'}")
            if touched:
                with tenant_transaction(tenant.ref) as db:
                    for s in counter.statements:
                        if any(t in s for t in touched) and "%s" not in s:
                            plan = db.execute_sql("EXPLAIN " + s).fetchall()
                            say(f"    plan of {s[:50]}...: " + " / ".join(
                                line[0].strip() for line in plan if "Scan" in line[0]))
            say(f"  time per load over HTTP: median {1000 * statistics.median(times):.1f} ms, "
                f"p95 {1000 * times[int(0.95 * len(times)) - 1]:.1f} ms")
    finally:
        server.stop()
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--fast", action="store_true", help="PostgreSQL with fsync=off")
    args = p.parse_args(argv)
    return run_main("overview", args.fast, lambda scratch: body(scratch, args))


if __name__ == "__main__":
    sys.exit(main())
