"""Data export of a large workspace: time and the worker's peak memory (issue 15, item 2).

Seeds one workspace with N messages (default 1,000,000), one recipient each and one history row
per recipient, straight in SQL (``INSERT ... SELECT generate_series``: the API is not what is
measured), then runs the workspace's export in a real worker process (``python -m core.cli
worker``, what ``smsgw worker`` runs) and reports:

* the worker's resident memory before the export (idle, everything imported) and its peak
  during it (``VmHWM`` in ``/proc/<pid>/status``, the kernel's high-water mark), target 200 MB;
* the build time (queued → ready) and its rate;
* the file: its size, and a check that it is a whole zip whose parts hold every row.

    .venv/bin/python bench/bench_export.py [--messages 1000000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _benchlib import code_version, loadavg, make_tenant, run_main, say, section  # noqa: E402

TARGET_MB = 200


def vm(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for pid {pid}")


def seed(conn, schema: str, n: int) -> None:
    with conn, conn.cursor() as cur:
        cur.execute(f'SET LOCAL search_path TO "{schema}"')
        cur.execute(
            "INSERT INTO messages (id, created_at, text, encoding, segments, source, created_by) "
            "SELECT g, now() - make_interval(secs => %s - g), "
            "'Your code is ' || lpad((g %% 1000000)::text, 6, '0') || '. It expires in 10 minutes. Ref ' || md5(g::text), "
            "'GSM-7', 1, 'api', 'user:1' FROM generate_series(1, %s) g", (n, n))
        cur.execute(
            "INSERT INTO recipients (id, message_id, phone, state, created_at, sent_at, delivered_at) "
            "SELECT g, g, '+1415' || lpad((g %% 10000000)::text, 7, '0'), 'delivered', now(), now(), now() "
            "FROM generate_series(1, %s) g", (n,))
        cur.execute(
            "INSERT INTO recipient_events (recipient_id, at, from_state, to_state, source) "
            "SELECT g, now(), 'sent', 'delivered', 'device' FROM generate_series(1, %s) g", (n,))
        for table in ("messages", "recipients", "recipient_events"):
            cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    with conn.cursor() as cur:
        conn.autocommit = True
        cur.execute(f'ANALYZE "{schema}".messages, "{schema}".recipients, "{schema}".recipient_events')
        conn.autocommit = False


def body(scratch, n: int) -> int:
    from addons.privacy import export_jobs
    from addons.privacy.exporter import ExportSubject
    from core.db import connection

    section(f"bench_export: {n:,} messages  (code {code_version()}, load {loadavg()})")
    scratch.start()
    platform = scratch.platform
    say(f"PostgreSQL {scratch.pg_version}, fsync={scratch.fsync}")
    tenant = make_tenant(platform, "exportbench")
    started = time.monotonic()
    seed(scratch.admin_conn(), tenant.schema_name, n)
    say(f"seeded {n:,} messages, {n:,} recipients, {n:,} history rows in {time.monotonic() - started:.1f} s")

    worker = scratch.spawn("smsgw-worker", [sys.executable, "-m", "core.cli", "worker", "--workers", "1"])
    time.sleep(8)  # imported, connected, idle
    if not worker.alive():
        say(worker.tail())
        return 1
    idle_kb = vm(worker.pid, "VmRSS")
    say(f"worker pid {worker.pid}: idle RSS {idle_kb / 1024:.1f} MB")

    platform.setup_tasks()
    with connection():
        export = export_jobs.create(tenant, ExportSubject("workspace"), "bench", "bench:1")
    started = time.monotonic()
    platform.queue.tasks[export_jobs.TASK](tenant.slug, export["id"])
    last = None
    while True:
        time.sleep(0.5)
        if not worker.alive():
            say("the worker died:\n" + worker.tail())
            return 1
        with connection():
            row = export_jobs.get(tenant.id, export["id"])
        if row["progress"] != last:
            last = row["progress"]
            say(f"  {time.monotonic() - started:6.1f} s  {row['state']:8} {row['progress']:3d} %  "
                f"{row['rows_done']:>9,} rows  RSS {vm(worker.pid, 'VmRSS') / 1024:6.1f} MB")
        if row["state"] in ("ready", "failed"):
            break
    elapsed = time.monotonic() - started
    peak_kb = vm(worker.pid, "VmHWM")
    if row["state"] != "ready":
        say(f"export failed: {row['error']}\n" + worker.tail())
        return 1

    section("check the file")
    with tempfile.TemporaryFile() as f:
        seq = 0
        with connection():
            while (data := export_jobs.chunk(export["id"], seq)) is not None:
                f.write(data)
                seq += 1
        f.seek(0)
        with zipfile.ZipFile(f) as zf:
            bad = zf.testzip()
            manifest = json.loads(zf.read("manifest.json"))
        counts = {p["name"]: p["rows"] for p in manifest["parts"]}
        say(f"{seq} chunks, zip intact: {bad is None}; rows: messages {counts.get('messages'):,}, recipients "
            f"{counts.get('recipients'):,}, history {counts.get('messaging_recipient_history'):,}")
        whole = bad is None and counts.get("messages") == n and counts.get("recipients") == n \
            and counts.get("messaging_recipient_history") == n

    section("result")
    rows = row["rows_done"]
    say(f"export of {n:,} messages ({rows:,} rows in all): {elapsed:.1f} s, {rows / elapsed:,.0f} rows/s, "
        f"file {row['size_bytes'] / 1e6:.1f} MB")
    say(f"worker RSS: idle {idle_kb / 1024:.1f} MB, peak (VmHWM) {peak_kb / 1024:.1f} MB "
        f"(+{(peak_kb - idle_kb) / 1024:.1f} MB for the export); target <= {TARGET_MB} MB: "
        f"{'OK' if peak_kb / 1024 <= TARGET_MB else 'OVER'}")
    return 0 if whole and peak_kb / 1024 <= TARGET_MB else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args()
    return run_main("export", True, lambda scratch: body(scratch, args.messages))


if __name__ == "__main__":
    sys.exit(main())
