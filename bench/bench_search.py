"""The filtered Messages list, Inbox search and CSV export (issue 22, item 7): statements and time
per load in a busy workspace.

Run with ``.venv/bin/python bench/bench_search.py`` (``--messages N``, default 100,000; ``--fast``:
PostgreSQL with fsync off). The workspace is filled as bench_overview fills it (N messages of one
recipient each over 30 days, 5 phones), plus a campaign of 5,000 of them and 20,000 received SMS.
The owner, signed in, loads each filtered list (and one export) repeatedly: the statements each
load sends (peewee's log) and the time over HTTP (median and max of 10). The worst cases are the
filters matched while walking the primary key backwards (text, part of a number) when few or no
rows match: they read every row.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _benchlib import make_tenant, run_main, say, section  # noqa: E402
from bench_overview import Count, fill, signed_in  # noqa: E402


class Statements(Count):
    """The statements of a load with their parameters (for --explain)."""

    def emit(self, record):
        if isinstance(record.msg, tuple):
            self.statements.append(record.msg)

PATHS = [
    "/messages", "/messages?q=bench+4242", "/messages?q=no+such+text", "/messages?number=5550042",
    "/messages?number=999999", "/messages?state=failed", "/messages?state=pending", "/messages?state=cancelled",
    "/messages?device_id={device}", "/messages?since={day}&until={day}", "/messages?campaign={campaign}",
    "/messages?campaign={campaign}&state=failed", "/messages?q=bench&number=0042&state=delivered",
    "/inbox", "/inbox?q=order+1234", "/inbox?q=no+such+text", "/inbox?number=5560042",
    "/messages.csv?state=failed&since={day}", "/campaigns", "/campaigns/{campaign}",
]


def body(scratch, args) -> int:
    import datetime as dt

    from core.db import app_db, connection, tenant_transaction

    scratch.start()
    platform = scratch.platform
    tenant = make_tenant(platform, "searchbench")
    section(f"filling one workspace with {args.messages:,} messages over 30 days")
    started = time.monotonic()
    with tenant_transaction(tenant.ref) as db:
        for i in range(5):
            db.execute_sql("INSERT INTO devices (name, device_uid, online, last_seen_at) VALUES (%s, %s, true, now())",
                           (f"Phone {i}", f"bench-{i}"))
        first = db.execute_sql("SELECT min(id) FROM devices").fetchone()[0]
    fill(tenant, args.messages, first)
    with tenant_transaction(tenant.ref) as db:
        campaign = db.execute_sql("INSERT INTO campaigns (name, source) VALUES ('bench', 'csv') RETURNING id"
                                  ).fetchone()[0]
        db.execute_sql("UPDATE messages SET campaign_id = %s WHERE id %% 20 = 3", (campaign,))
        db.execute_sql("""
            INSERT INTO device_inbound (device_id, phone_message_id, sender, body, received_at)
            SELECT %s + g %% 5, 'in-' || g, '+1415556' || lpad((g %% 10000)::text, 4, '0'),
                   'order ' || g || ' question', now() - (g %% 30) * interval '1 day'
              FROM generate_series(1, 20000) g""", (first,))
    say(f"  filled in {time.monotonic() - started:.1f} s")
    with connection():
        app_db.execute_sql("ANALYZE")
    day = (dt.date.today() - dt.timedelta(days=20)).isoformat()

    from tests.support.server import LiveServer

    server = LiveServer(platform).start()
    try:
        client = signed_in(server, tenant)
        log = logging.getLogger("peewee")
        log.setLevel(logging.DEBUG)
        log.propagate = False
        for raw in [p for p in PATHS if any(o in p for o in args.only.split(","))]:
            path = raw.format(device=first + 1, day=day, campaign=campaign)
            page = client.get(path)
            assert page.status_code == 200, (path, page.status_code, page.text[:300])
            counter = Statements()
            log.addHandler(counter)
            page = client.get(path)
            log.removeHandler(counter)
            times = []
            for _ in range(10):
                t0 = time.perf_counter()
                assert client.get(path).status_code == 200
                times.append(time.perf_counter() - t0)
            times.sort()
            rows = page.text.count("<tr data-") if not path.startswith("/messages.csv") else page.text.count("\n") - 1
            say(f"GET {path}: {len(counter.statements)} statements, {rows} rows, median "
                f"{1000 * statistics.median(times):.1f} ms, max {1000 * times[-1]:.1f} ms")
            if args.explain:
                with tenant_transaction(tenant.ref) as db:
                    for sql, params in counter.statements:
                        if " FROM \"messages\"" in sql or "device_inbound" in sql:
                            plan = db.execute_sql("EXPLAIN (ANALYZE, BUFFERS OFF) " + sql, params).fetchall()
                            say("    " + " ".join(sql.split())[:200])
                            for (line,) in plan:
                                say("      " + line)
    finally:
        server.stop()
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=100_000)
    p.add_argument("--fast", action="store_true", help="PostgreSQL with fsync=off")
    p.add_argument("--explain", action="store_true", help="print the plans of the list statements")
    p.add_argument("--only", default="", help="only the paths containing one of these (a,b)")
    args = p.parse_args(argv)
    return run_main("search", args.fast, lambda scratch: body(scratch, args))


if __name__ == "__main__":
    sys.exit(main())
