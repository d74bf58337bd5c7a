"""Usage metering's cost on the hot statements, measured in PostgreSQL alone (no HTTP, less noise).

Run with ``.venv/bin/python bench/bench_usage.py``. In one workspace, the statements the hot paths
run (a small send: one message and one recipient; a bulk send: one message and 1,000 recipients; a
claim's history rows; a report's history rows) each run in their own transaction, in rounds that
alternate the usage triggers enabled and disabled (``ALTER TABLE ... ENABLE/DISABLE TRIGGER``), so
drift on a shared machine hits both. It prints the time per transaction with and without, and
then C connections running small sends at once with the triggers on, to show they never wait for
each other (one counter row per session).
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg2  # noqa: E402

from _benchlib import make_tenant, run_main, say, section  # noqa: E402

TRIGGERS = (("messages", "usage_messages_added"), ("recipients", "usage_recipients_added"),
            ("recipient_events", "usage_events_added"))

SMALL = """
WITH m AS (INSERT INTO messages (text, encoding, segments) VALUES ('hello', 'GSM-7', 1) RETURNING id)
INSERT INTO recipients (message_id, phone) SELECT id, '+14155550100' FROM m"""
BULK_MESSAGE = "INSERT INTO messages (text, encoding, segments) VALUES ('hello', 'GSM-7', 2) RETURNING id"
BULK_RECIPIENTS = ("INSERT INTO recipients (message_id, phone) SELECT %s, '+1415555' || lpad(g::text, 4, '0') "
                   "FROM generate_series(1, 1000) g")
EVENTS = ("INSERT INTO recipient_events (recipient_id, from_state, to_state, source, device_id, at) "
          "SELECT id, 'processed', %s, 'report', 1, clock_timestamp() FROM recipients ORDER BY id DESC LIMIT %s")


def connect(scratch, tenant):
    conn = psycopg2.connect(scratch.env["DATABASE_URL"])
    cur = conn.cursor()
    enter = f'SET LOCAL ROLE "{tenant.role_name}"; SET LOCAL search_path TO "{tenant.schema_name}"'
    return conn, cur, enter


def timed(conn, cur, enter, work, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        cur.execute(enter)
        work(cur)
        conn.commit()
    return (time.perf_counter() - start) / n * 1000


def switch(scratch, tenant, on: bool) -> None:
    conn, cur, enter = connect(scratch, tenant)
    cur.execute(enter)
    for table, trigger in TRIGGERS:
        cur.execute(f"ALTER TABLE {table} {'ENABLE' if on else 'DISABLE'} TRIGGER {trigger}")
    conn.commit()
    conn.close()


def body(scratch) -> int:
    scratch.start()
    tenant = make_tenant(scratch.platform, "usagebench")
    conn, cur, enter = connect(scratch, tenant)
    cases = {
        "small send (1 message, 1 recipient)": (lambda c: c.execute(SMALL), 300),
        "bulk send (1 message, 1,000 recipients)": (
            lambda c: (c.execute(BULK_MESSAGE), c.execute(BULK_RECIPIENTS, (c.fetchone()[0],))), 30),
        "claim history (16 rows to processed)": (lambda c: c.execute(EVENTS, ("processed", 16)), 300),
        "report history (16 rows to delivered)": (lambda c: c.execute(EVENTS, ("delivered", 16)), 300),
    }
    for label, (work, n) in cases.items():  # warm up (plans, caches) with the triggers on and off
        for on in (True, False):
            switch(scratch, tenant, on)
            timed(conn, cur, enter, work, max(3, n // 10))
    section("per transaction, usage triggers on vs off (rounds alternate; median of 5)")
    worst = 0.0
    for label, (work, n) in cases.items():
        results = {True: [], False: []}
        for r in range(5):
            for on in ((True, False) if r % 2 == 0 else (False, True)):
                switch(scratch, tenant, on)
                results[on].append(timed(conn, cur, enter, work, n))
        with_ms, without_ms = statistics.median(results[True]), statistics.median(results[False])
        worst = max(worst, with_ms - without_ms)
        say(f"  {label:42s} on {with_ms:7.3f} ms   off {without_ms:7.3f} ms   "
            f"+{with_ms - without_ms:6.3f} ms ({100 * (with_ms / without_ms - 1):+.1f} %)")

    section("16 connections sending at once, triggers on: no waits on a counter row")
    switch(scratch, tenant, True)
    stop = time.monotonic() + 5
    counts = [0] * 16

    def sender(i):
        c, k, e = connect(scratch, tenant)
        while time.monotonic() < stop:
            k.execute(e)
            k.execute(SMALL)
            c.commit()
            counts[i] += 1
        c.close()

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    waits = 0
    watcher, wcur, _ = connect(scratch, tenant)
    while time.monotonic() < stop:
        wcur.execute("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                     "WHERE NOT l.granted AND c.relname = 'usage_counts'")
        waits += wcur.fetchone()[0]
        wcur.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'transactionid'")
        waits += wcur.fetchone()[0]
        watcher.commit()
        time.sleep(0.01)
    for t in threads:
        t.join()
    cur.execute(enter)
    cur.execute("SELECT (SELECT sum(n) FROM usage_counts WHERE metric = 'messages'), (SELECT count(*) FROM messages), "
                "(SELECT count(DISTINCT shard) FROM usage_counts WHERE metric = 'messages')")
    total, rows, shards = cur.fetchone()
    conn.commit()
    say(f"  {sum(counts)} sends in 5 s; lock waits seen: {waits}; counted {total} messages of {rows} rows "
        f"(the triggers were off for some earlier ones), in {shards} session rows")
    return 0


if __name__ == "__main__":
    sys.exit(run_main("usage", "--fast" in sys.argv, body))
