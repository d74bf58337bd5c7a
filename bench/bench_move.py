"""Moving a workspace between two PostgreSQL servers: how long it takes, how long writes pause.

Run with ``.venv/bin/python bench/bench_move.py`` (``--messages 1000,10000,100000`` by default).
Two embedded PostgreSQL servers are started in a temp dir (removed at the end); the second is
named in ``SMSGW_DATABASES``. For each size, a workspace is created (placement puts it on the
least-loaded server), filled with that many delivered messages (one recipient and three history
events each, written by SQL: what a month of a small sender leaves), then moved to the other
server and back with :func:`core.placement.move` (what ``smsgw tenant move`` runs). Printed per
move: the rows copied, the dump's bytes, the whole move and the write pause (from marking the
workspace ``moving`` to the catalogue pointing at the new server). Exit code 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FILL = """
INSERT INTO {s}.messages (id, created_at, text, encoding, segments, device_id)
SELECT g, now() - interval '1 day', 'Your code is ' || g, 'GSM-7', 1, NULL FROM generate_series(1, %(n)s) g;
INSERT INTO {s}.recipients (id, message_id, phone, state, attempts, claimed_at, sent_at, delivered_at)
SELECT g, g, '+1415555' || lpad((g %% 10000)::text, 4, '0'), 'delivered', 1, now(), now(), now()
  FROM generate_series(1, %(n)s) g;
INSERT INTO {s}.recipient_events (recipient_id, from_state, to_state, source)
SELECT g, f, t, 'device' FROM generate_series(1, %(n)s) g,
       (VALUES ('pending', 'processed'), ('processed', 'sent'), ('sent', 'delivered')) AS x(f, t);
SELECT setval('{s}.messages_id_seq', %(n)s); SELECT setval('{s}.recipients_id_seq', %(n)s);
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", default="1000,10000,100000", help="workspace sizes, comma-separated")
    args = parser.parse_args()
    sizes = [int(x) for x in args.messages.split(",")]

    import psycopg2

    from core import dbsetup
    from core.config import Settings
    from core.embedded_pg import EmbeddedPostgres
    from core.placement import move
    from core.platform import Platform

    base = Path(tempfile.mkdtemp(prefix="bench-move-"))
    servers = [EmbeddedPostgres(base / f"pg{i}", fast=True) for i in (1, 2)]
    platform = None
    try:
        urls = [dbsetup.with_database(pg.start(), "smsgw_bench") for pg in servers]
        dbsetup.ensure_database(urls[0], "smsgw_bench")
        env = {"DATABASE_URL": urls[0], "SMSGW_DATABASES": f"second={urls[1]}", "SMSGW_DB_ROLE_PREFIX": "bmv",
               "SMSGW_DATA_DIR": str(base / "var"), "SMSGW_BILLING_DEFAULT_PLAN": ""}
        platform = Platform(Settings.from_env(env))
        platform.bcrypt_cost = 4
        platform.start_database(progress=lambda m: None)
        platform.migrate()
        admin = dict(platform.servers)
        print(f"{'messages':>9} {'from':>8} {'to':>8} {'rows':>9} {'bytes':>11} {'move s':>7} {'pause s':>8}")
        for n in sizes:
            info = platform.tenants.create(f"w{n}", f"Workspace {n}", f"owner@w{n}.example", "a long enough password")
            conn = psycopg2.connect(admin[info.database_alias])
            with conn, conn.cursor() as cur:
                cur.execute(FILL.format(s=info.schema_name), {"n": n})
                cur.execute(f"ANALYZE {info.schema_name}.messages, {info.schema_name}.recipients, "
                            f"{info.schema_name}.recipient_events")
            conn.close()
            here = info.database_alias
            for there in (("default" if here == "second" else "second"), here):
                result = move(platform, info.slug, there)
                print(f"{n:>9} {here:>8} {there:>8} {result['rows']:>9} {result['bytes']:>11} "
                      f"{result['seconds']:>7.2f} {result['pause']:>8.2f}", flush=True)
                here = there
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        if platform is not None:
            platform.close()
        for pg in servers:
            try:
                pg.destroy()
            except Exception:
                pass
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("SMSGW_LOG_LEVEL", "WARNING")
    sys.exit(main())
