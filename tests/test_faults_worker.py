"""Fault injection around the worker, with real processes (issue 23, items 5 and 7).

Two ``smsgw serve`` processes (A and B, no ``--with-worker``) share a PostgreSQL of this module's
own and a Debian ``redis-server``; ``smsgw worker`` processes come and go per test, one is
SIGKILLed. Webhook receivers are servers on 127.0.0.1, so every process allows private targets
(``SMSGW_WEBHOOK_ALLOW_PRIVATE=1``), as the other webhook tests do.

* Item 7: with no worker running at all, a message scheduled 3 s ahead still reaches the phone
  waiting on A within ~2 s of its ``send_at`` (the web processes release due scheduled work in
  the worker's place), and readiness says the worker is late (still 200).
* Item 5: a delivery's claim is a lease its worker renews while the attempt runs
  (``SMSGW_WEBHOOK_LEASE``, short here so that the tests are quick): a sweep by another worker
  while a live worker's attempt outlasts the lease sends nothing twice; a worker SIGKILLed in the
  middle of an attempt leaves a lease that lapses, and the delivery is made again, once, with
  the same ``webhook-id`` (at least once).
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import pytest

from core import dbsetup
from core.clock import utcnow
from core.embedded_pg import EmbeddedPostgres
from tests.support.devices import LongPoll, device_client, raw_device, wait_until
from tests.test_faults import ROOT, Redis, Server, drain, free_port
from tests.test_webhook_isolation import Worker

pytestmark = [pytest.mark.fault, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("faults-worker")
    pg = EmbeddedPostgres(base / "pg", fast=True)
    url = dbsetup.with_database(pg.start(), "smsgw_faults_worker")
    dbsetup.ensure_database(pg.admin_url(), "smsgw_faults_worker")
    redis = Redis(free_port())
    prefix = f"flw{secrets.token_hex(3)}"
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SMSGW_APP_DATABASE_URL")}
    env.update(DATABASE_URL=url, SMSGW_DB_ROLE_PREFIX=prefix, SMSGW_DATA_DIR=str(base / "var"),
               SMSGW_BASE_DOMAIN="localhost", REDIS_URL=f"redis://127.0.0.1:{redis.port}/0",
               PYTHONPATH=str(ROOT), SMSGW_TRUST_PROXY="1", SMSGW_WEBHOOK_ALLOW_PRIVATE="1")
    a = Server(env, "A", demo=True)
    b = Server(env, "B")
    out = subprocess.run([sys.executable, "-m", "core.cli", "token", "create", "--tenant", "demo", "--name", "faults",
                          "--scope", "messages:send", "--scope", "messages:read", "--scope", "devices:write",
                          "--scope", "devices:read", "--scope", "webhooks:write", "--scope", "webhooks:read"],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    api_b = b.client("demo")
    api_b.headers["Authorization"] = f"Bearer {out.stdout.split()[0]}"
    device_id, device_token = raw_device(a, "demo", api=api_b)
    c = type("Cluster", (), {})()
    c.pg, c.redis, c.a, c.b, c.api_b, c.env, c.url = pg, redis, a, b, api_b, env, url
    c.device = device_client(a, "demo", device_token)
    yield c
    for proc in {id(p): p for p in (c.a, c.b, c.redis, a, b, redis)}.values():  # and any a test replaced
        proc.stop()
    pg.destroy()


# -- item 7: scheduled sends do not wait for the worker -----------------------------------------

def test_with_no_worker_a_scheduled_message_still_leaves_on_time(cluster):
    c = cluster
    # No worker ever ran here: readiness says so, and stays ready (the web processes stand in).
    r = c.a.client("demo").get("/health/ready", timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok" and r.json()["worker"] == "late", r.json()
    assert r.json()["worker_last_seen_s"] is None

    drain(c.device)
    poll = LongPoll(c.device, wait=25, limit=10).start()
    time.sleep(0.4)  # parked on A
    send_at = utcnow() + dt.timedelta(seconds=3)
    r = c.api_b.post("/api/v1/messages", json={"to": ["+14155550100"], "text": "at the stroke",
                                                "send_at": send_at.isoformat()})
    assert r.status_code == 202, r.text
    poll.join(30)
    arrived = utcnow() - dt.timedelta(seconds=time.monotonic() - poll.finished)
    assert [m["id"] for m in poll.response.json()["messages"]] == [r.json()["id"]]
    late = (arrived - send_at).total_seconds()
    print(f"\nscheduled message reached the waiting phone {late:.2f} s after its send_at, with no worker")
    assert -0.1 <= late <= 2.0, late  # not before its time, and not at the poll's timeout
    assert "releases scheduled work in its place" in c.a.output() + c.b.output()


# -- item 5: a running attempt is not offered again while its worker lives -------------------------

class SlowReceiver:
    """An HTTP receiver on 127.0.0.1 that answers each request after a delay (``delays`` per
    path, consumed in order; then at once) and records when each request came and was answered."""

    def __init__(self):
        self.delays: dict[str, list[float]] = {}
        self.statuses: dict[str, list[int]] = {}
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                record = {"path": self.path, "webhook_id": self.headers.get("webhook-id"), "body": body,
                          "came": time.monotonic(), "answered": None}
                with receiver._lock:
                    receiver.requests.append(record)
                    delays = receiver.delays.get(self.path) or []
                    delay = delays.pop(0) if delays else 0
                    statuses = receiver.statuses.get(self.path) or []
                    status = statuses.pop(0) if statuses else 200
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                    record["answered"] = time.monotonic()
                except OSError:  # the sender is gone (killed)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path) -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def to(self, path) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r["path"] == path]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = SlowReceiver()
    yield r
    r.close()


def webhook(c, url) -> dict:
    r = c.api_b.post("/api/v1/webhooks", json={"url": url, "events": ["system:ping"]})
    assert r.status_code == 201, r.text
    return r.json()


def ping(c, endpoint_id) -> int:
    r = c.api_b.post(f"/api/v1/webhooks/{endpoint_id}/ping", json={})
    assert r.status_code == 202, r.text
    return r.json()["delivery_id"]


def delivery_row(c, delivery_id) -> dict:
    """The delivery as PostgreSQL holds it (read as the administrator, from outside our processes)."""
    conn = psycopg2.connect(c.url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT state, attempts, locked_until, claimed_by, clock_timestamp() "
                        "FROM t_demo.webhook_deliveries WHERE id = %s", (delivery_id,))
            state, attempts, locked_until, claimed_by, now = cur.fetchone()
            cur.execute("SELECT count(*) FROM t_demo.webhook_attempts WHERE delivery_id = %s", (delivery_id,))
            recorded = cur.fetchone()[0]
    finally:
        conn.close()
    return {"state": state, "attempts": attempts, "locked_until": locked_until, "claimed_by": claimed_by,
            "now": now, "recorded": recorded}


def worker(c, **env) -> Worker:
    return Worker({**c.env, **{f"SMSGW_WEBHOOK_{k.upper()}": str(v) for k, v in env.items()}})


def test_a_live_workers_attempt_outlasting_its_lease_is_not_sent_twice(cluster, receiver):
    """Lease 2 s, an attempt of 28 s; meanwhile a second worker starts and sweeps (it retries a
    failed delivery that came due): the long attempt's claim, renewed by its live worker, is
    not offered again. Exactly one request carries its webhook-id."""
    c = cluster
    receiver.delays["/slow"] = [28]  # long enough that a loaded machine's slow sweep still comes during it
    receiver.statuses["/witness"] = [500]  # fails once: its retry ~5 s later only a sweep makes
    slow, witness = webhook(c, receiver.url("/slow")), webhook(c, receiver.url("/witness"))
    first = worker(c, lease=2, timeout=30)
    second = None
    try:
        wait_until(lambda: c.a.ready()["worker"] == "ok", timeout=10, message="readiness sees the worker")
        slow_id = ping(c, slow["id"])
        witness_id = ping(c, witness["id"])
        wait_until(lambda: receiver.to("/slow") and len(receiver.to("/witness")) == 1, timeout=10,
                   message="both first attempts")
        started = receiver.to("/slow")[0]["came"]
        # The claim is renewed while the attempt runs: always a lease ahead, held by the first worker.
        time.sleep(4.5)
        row = delivery_row(c, slow_id)
        assert row["state"] == "pending" and row["claimed_by"] and row["locked_until"] > row["now"], row
        assert (row["locked_until"] - row["now"]).total_seconds() <= 2.1, row  # the 2 s lease, not 60 s

        second = worker(c, lease=2, timeout=30)  # its scheduler sweeps at once when it starts
        wait_until(lambda: len(receiver.to("/witness")) == 2, timeout=15, message="a sweep (the witness's retry)")
        assert receiver.to("/slow")[0]["answered"] is None  # ... during the slow attempt, long past its lease
        assert time.monotonic() - started > 2 * 2

        wait_until(lambda: delivery_row(c, slow_id)["state"] == "succeeded", timeout=35,
                   message="the slow delivery recorded")
        time.sleep(2.5)  # (a lapsed claim would have been offered again by now)
        requests = receiver.to("/slow")
        assert len(requests) == 1, [(r["webhook_id"], r["came"] - started) for r in requests]
        row = delivery_row(c, slow_id)
        assert row["attempts"] == row["recorded"] == 1 and row["claimed_by"] is None, row
        assert delivery_row(c, witness_id)["state"] == "succeeded"
    finally:
        first.stop()
        if second:
            second.stop()


def test_a_killed_workers_delivery_is_made_again_with_the_same_webhook_id(cluster, receiver):
    """The worker is SIGKILLed while the receiver is answering: nobody renews the claim, so it
    lapses after the lease, and the next worker's sweep delivers the event again, once, with the
    same webhook-id and body (at least once; receivers deduplicate on webhook-id)."""
    c = cluster
    receiver.delays["/killed"] = [60]  # the first attempt never gets its answer
    ep = webhook(c, receiver.url("/killed"))
    doomed = worker(c, lease=3, timeout=25)
    after = None
    try:
        delivery_id = ping(c, ep["id"])
        wait_until(lambda: receiver.to("/killed"), timeout=10, message="the first attempt")
        doomed.proc.kill()  # SIGKILL: no goodbye, the claim stays as it was
        doomed.proc.wait(10)
        killed = time.monotonic()
        row = delivery_row(c, delivery_id)
        assert row["state"] == "pending" and row["claimed_by"], row
        lapses = (row["locked_until"] - row["now"]).total_seconds()
        assert 0 < lapses <= 3.1, row  # held for at most the lease after the last renewal
        time.sleep(lapses + 0.5)

        after = worker(c, lease=3, timeout=25)  # its sweep finds the lapsed claim
        wait_until(lambda: len(receiver.to("/killed")) == 2, timeout=15, message="the delivery made again")
        first, again = receiver.to("/killed")
        assert again["webhook_id"] == first["webhook_id"] and again["webhook_id"].startswith("msg_")
        assert json.loads(again["body"]) == json.loads(first["body"])
        assert again["came"] - killed >= lapses
        wait_until(lambda: delivery_row(c, delivery_id)["state"] == "succeeded", timeout=10,
                   message="the delivery recorded")
        time.sleep(2)
        assert len(receiver.to("/killed")) == 2  # once more, not again and again
        row = delivery_row(c, delivery_id)
        assert row["recorded"] == 1 and row["claimed_by"] is None, row  # the killed attempt left no record
    finally:
        if after:
            after.stop()
