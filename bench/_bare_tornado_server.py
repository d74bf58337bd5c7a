"""Baselines for ``bench_messaging.py``: bare Tornado handlers doing one psycopg2 statement + commit.

* ``POST /insert``: parse the JSON body, one ``INSERT ... RETURNING id`` into
  ``bench_bare.messages`` (the columns of a tenant's ``messages``), commit,
  answer 202 with the id. The baseline of POST /api/v1/messages.
* ``POST /update``: parse ``{"id": …, "state": "sent"}``, one ``UPDATE`` of that
  row of ``bench_bare.recipients`` (the columns of a tenant's ``recipients``)
  from processed to the new state, commit, answer 200. The baseline of
  POST /api/device/v1/reports with one report.
* ``GET /health``.

Like the platform, the blocking database call runs in a thread pool of
``--threads`` workers (each with its own connection), off the IOLoop; no
logging, no authentication, no tenant context: the floor for the same work.

Usage: ``BENCH_BARE_DSN=postgresql://… python bench/_bare_tornado_server.py PORT [--threads 16]``
(the DSN comes from the environment so that its password does not show in ``ps``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import tornado.httpserver
import tornado.web

_local = threading.local()
DSN = ""


def conn():
    c = getattr(_local, "conn", None)
    if c is None or c.closed:
        c = _local.conn = psycopg2.connect(DSN)
    return c


def insert(text: str) -> int:
    c = conn()
    with c.cursor() as cur:
        cur.execute("INSERT INTO bench_bare.messages (text, encoding, segments) VALUES (%s, 'GSM-7', 1) "
                    "RETURNING id", (text,))
        rid = cur.fetchone()[0]
    c.commit()
    return rid


def update(rid: int, state: str) -> int:
    c = conn()
    with c.cursor() as cur:
        cur.execute("UPDATE bench_bare.recipients SET state = %s, sent_at = now(), updated_at = now() "
                    "WHERE id = %s AND state = 'processed'", (state, rid))
        n = cur.rowcount
    c.commit()
    return n


class Base(tornado.web.RequestHandler):
    def initialize(self, pool):
        self.pool = pool

    def set_default_headers(self):
        self.set_header("Content-Type", "application/json; charset=UTF-8")


class InsertHandler(Base):
    async def post(self):
        body = json.loads(self.request.body)
        rid = await asyncio.get_running_loop().run_in_executor(self.pool, insert, body["text"])
        self.set_status(202)
        self.finish(json.dumps({"id": rid, "state": "pending"}))


class UpdateHandler(Base):
    async def post(self):
        body = json.loads(self.request.body)
        n = await asyncio.get_running_loop().run_in_executor(self.pool, update, int(body["id"]), body["state"])
        self.finish(json.dumps({"updated": n}))


class HealthHandler(Base):
    def get(self):
        self.finish("{}")


async def main(port: int, threads: int) -> None:
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="db")
    app = tornado.web.Application([(r"/insert", InsertHandler, {"pool": pool}),
                                   (r"/update", UpdateHandler, {"pool": pool}),
                                   (r"/health", HealthHandler, {"pool": pool})],
                                  log_function=lambda handler: None)
    server = tornado.httpserver.HTTPServer(app)
    server.listen(port, address="127.0.0.1")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    pool.shutdown(wait=False)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--threads", type=int, default=16)
    a = p.parse_args()
    DSN = os.environ["BENCH_BARE_DSN"]
    asyncio.run(main(a.port, a.threads))
