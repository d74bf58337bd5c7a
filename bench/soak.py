"""Chaos soak (issue 21, item 7): the production shape under mixed traffic while its parts are
killed and restarted at random, then the invariants.

The shape is the one tests/test_scaleout.py checks piece by piece: Debian's nginx (configured
from deploy/nginx.conf, tests/support/nginx.py) before two ``smsgw serve`` (A and B), one
``smsgw worker``, a ``redis-server``, and a PostgreSQL of the soak's own (embedded, so that it
can be killed). Traffic, all through nginx:

* API sends of 1-3 recipients (to a chosen phone or routed) and bulk sends of 10-30, each with an
  Idempotency-Key and retried with it on a 5xx or a cut connection until accepted, as the API asks;
* phones: the real companion on the simulator backend, a share of sends failing at random;
* inbound SMS injected into the phones' simulators;
* webhooks (sent, delivered, failed, received) to a local receiver that refuses a share of first
  attempts (so retries happen).

Chaos, one fault at a time every few seconds: a web process SIGKILLed or restarted with SIGTERM
(a rolling restart), the worker SIGKILLed, PostgreSQL stopped in immediate mode (a crash), each
started again after 1-4 s.

Then the traffic stops, the soak waits for the work to settle and checks:

1. every accepted message is stored once (one per Idempotency-Key), none half-written (a message
   without its recipients), and every recipient ends in exactly one final state;
2. no recipient was sent by a phone more often than that phone claimed it;
3. every webhook event was delivered (at least once) under one id, and every final state and
   inbound SMS has its event;
4. the usage figures equal the rows;
5. every inbound SMS is stored once.

    .venv/bin/python bench/soak.py --minutes 3          # what `make test` runs (tests/test_soak.py)
    .venv/bin/python bench/soak.py --minutes 30 --seed 7

Exit status 0 when every invariant holds. Progress every 10 s.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402
import requests  # noqa: E402
from android_companion.backends.simulator import SimulatorBackend  # noqa: E402
from android_companion.runner import Companion  # noqa: E402

from core import dbsetup  # noqa: E402
from core.embedded_pg import EmbeddedPostgres  # noqa: E402
from tests.support.nginx import Nginx  # noqa: E402
from tests.support.phones import pair_phone  # noqa: E402
from tests.test_faults import Redis, Server, free_port  # noqa: E402
from tests.test_webhook_isolation import Worker  # noqa: E402

FINAL = ("delivered", "failed", "cancelled", "expired")
SCOPES = ["messages:send", "messages:read", "devices:write", "devices:read", "webhooks:write", "webhooks:read"]
EVENTS = ["sms:sent", "sms:delivered", "sms:failed", "sms:received"]


def record_abuse_only(url: str) -> None:
    """The soak's traffic (one workspace, bursts to sequential numbers, the same texts again and again)
    is what the abuse addon's rules hold for review. As an operator running a known load test, every
    rule only records (its checks still run on every send); the processes hear it through NOTIFY."""
    from addons.abuse import rules

    conn = psycopg2.connect(url, connect_timeout=5)
    try:
        with conn, conn.cursor() as cur:
            for rule in rules.DEFAULTS.values():
                if rule.action not in ("off", "record"):
                    cur.execute("INSERT INTO public.abuse_rules (rule, action, severity) VALUES (%s, 'record', %s) "
                                "ON CONFLICT (rule) DO UPDATE SET action = 'record'", (rule.name, rule.severity))
    finally:
        conn.close()


def say(*args) -> None:
    print(*args, flush=True)


class FlakyReceiver:
    """A webhook receiver on 127.0.0.1: the first request of a share of webhook ids is answered
    500 (the next one 200); records every request's webhook id and body."""

    def __init__(self, refuse: float, rng: random.Random):
        self.requests: list[tuple[str, bytes]] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                wid = self.headers.get("webhook-id") or ""
                with receiver._lock:
                    receiver.requests.append((wid, body))
                    first = wid not in receiver._seen
                    receiver._seen.add(wid)
                    status = 500 if first and rng.random() < refuse else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Cluster:
    """nginx, A, B, the worker, Redis and PostgreSQL (see the module's docstring)."""

    def __init__(self, base: Path, phones: int, failure_rate: float, refuse: float, rng: random.Random):
        self.base, self.rng = base, rng
        self._kinds: list[str] = []
        # Durable, as in production: a crash (immediate stop) of a cluster without fsync and
        # synchronous commit loses commits it had acknowledged, which the invariants would catch.
        self.pg = EmbeddedPostgres(base / "pg")
        self.url = dbsetup.with_database(self.pg.start(), "smsgw_soak")
        dbsetup.ensure_database(self.pg.admin_url(), "smsgw_soak")
        self.redis = Redis(free_port())
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SMSGW_APP_DATABASE_URL")}
        env.update(DATABASE_URL=self.url, SMSGW_DB_ROLE_PREFIX=f"soak{secrets.token_hex(3)}",
                   SMSGW_DATA_DIR=str(base / "var"), SMSGW_BASE_DOMAIN="localhost",
                   REDIS_URL=f"redis://127.0.0.1:{self.redis.port}/0", PYTHONPATH=str(ROOT),
                   SMSGW_TRUST_PROXY="1", SMSGW_WEBHOOK_ALLOW_PRIVATE="1", SMSGW_BILLING_DEFAULT_PLAN="",
                   SMSGW_WEBHOOK_LEASE="5")  # a killed worker's claims lapse in seconds
        self.env = env
        self.web = {"A": Server(env, "A", demo=True), "B": Server(env, "B")}
        self.worker = Worker(env)
        self.nginx = Nginx(base / "nginx", free_port(), [s.port for s in self.web.values()])
        out = subprocess.run([sys.executable, "-m", "core.cli", "token", "create", "--tenant", "demo", "--name",
                              "soak", *[a for s in SCOPES for a in ("--scope", s)]], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
        if out.returncode:
            raise RuntimeError(out.stdout + out.stderr)
        self.token = out.stdout.split()[0]
        record_abuse_only(self.url)
        # A claim whose answer was lost with a killed process goes back to the queue after the claim
        # timeout (600 s by default): shorter here, so such work settles within the soak's wait.
        self.query("UPDATE messaging_settings SET claim_timeout_seconds = 60 RETURNING id")
        self.receiver = FlakyReceiver(refuse, rng)
        r = self.api().post("/api/v1/webhooks", json={"url": self.receiver.url, "events": EVENTS})
        r.raise_for_status()
        self.phones: list[tuple[int, SimulatorBackend, Companion]] = []
        for i in range(phones):
            d = base / f"phone{i}"
            sim = SimulatorBackend(failure_rate=failure_rate, failure_codes=("GENERIC_FAILURE", "NO_SERVICE"),
                                   delivery_delay=0.2, seed=rng.randrange(1 << 30))
            state, sim = pair_phone(self.nginx, "demo", d, backend=sim, client=self.api())
            phone = Companion(d, sim, wait=25, heartbeat_interval=30.0, inbound_interval=0.3, flush_interval=0.2,
                              backoff_cap=2.0).start()
            self.phones.append((state.device_id, sim, phone))
            # No sending limit (30 a minute by default): the soak is about faults, not about limits.
            r = self.api().patch(f"/api/v1/devices/{state.device_id}",
                                 json={"settings": {"limits": {"per_minute": 0}}})
            r.raise_for_status()

    def api(self):
        client = self.nginx.client("demo")
        client.headers["Authorization"] = f"Bearer {self.token}"
        return client

    # -- faults -------------------------------------------------------------------------------

    def fault(self) -> str:
        """One fault, and the recovery from it; what was done."""
        if not self._kinds:  # each kind once per round, in a random order
            self._kinds = self.rng.sample(["kill web", "restart web", "kill worker", "kill postgres"], 4)
        kind = self._kinds.pop()
        pause = self.rng.uniform(1, 4)
        if kind in ("kill web", "restart web"):
            name = self.rng.choice(sorted(self.web))
            server = self.web[name]
            if kind == "kill web":
                server.proc.kill()
                server.proc.wait(10)
                time.sleep(pause)
                self.web[name] = Server(self.env, name, port=server.port)
            else:
                self.web[name] = server.restarted()
            return f"{kind} {name}"
        if kind == "kill worker":
            self.worker.proc.kill()
            self.worker.proc.wait(10)
            time.sleep(pause)
            self.worker = Worker(self.env)
            return kind
        self.pg.stop(mode="immediate")
        time.sleep(pause)
        self.pg.start()
        return kind

    def stop(self, keep_database: bool = False):
        for _id, _sim, phone in self.phones:
            phone.stop()
        self.nginx.stop()
        self.receiver.close()
        for proc in (*self.web.values(), self.worker, self.redis):
            proc.stop()
        if keep_database:
            self.pg.stop()
        else:
            self.pg.destroy()

    def query(self, sql, params=None) -> list[tuple]:
        conn = psycopg2.connect(self.url, connect_timeout=5)
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SET search_path = t_demo")
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()


class Senders:
    """API sends through nginx in threads (see the module's docstring)."""

    def __init__(self, cluster: Cluster, threads: int, rng: random.Random, bulk_share: float = 0.1):
        self.cluster, self.rng, self.bulk_share = cluster, rng, bulk_share
        self.accepted: dict[str, tuple[int, int]] = {}  # key -> (message id, recipients)
        self.refused: list[tuple[str, int, str]] = []  # a 4xx: the soak's own fault
        self.retries = 0
        self.inbound: list[str] = []
        self._numbers = itertools.count(1)
        self._keys = itertools.count(1)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send_loop, daemon=True) for _ in range(threads)]
        self._threads.append(threading.Thread(target=self._inbound_loop, daemon=True))
        for t in self._threads:
            t.start()

    def _send_loop(self):
        api = self.cluster.api()
        devices = [d for d, _s, _p in self.cluster.phones]
        while not self._stop.is_set():
            with self._lock:
                key = f"soak-{next(self._keys)}"
                bulk = self.rng.random() < self.bulk_share
                n = self.rng.randint(10, 30) if bulk else self.rng.randint(1, 3)
                to = [f"+1415{2000000 + next(self._numbers):07d}" for _ in range(n)]
                device = None if bulk or self.rng.random() < 0.3 else self.rng.choice(devices)
            body = {"to": to, "text": f"{key} {'bulk' if bulk else 'send'}"}
            if device:
                body["device_id"] = device
            deadline = time.time() + 300
            while time.time() < deadline:
                try:
                    r = api.post("/api/v1/messages", json=body, headers={"Idempotency-Key": key}, timeout=30)
                except requests.RequestException:
                    r = None
                if r is not None and r.status_code == 202:
                    with self._lock:
                        self.accepted[key] = (r.json()["id"], n)
                    break
                if r is not None and r.status_code < 500 and r.status_code != 409:
                    self.refused.append((key, r.status_code, r.text[:300]))
                    break
                with self._lock:
                    self.retries += 1
                time.sleep(0.25)
            time.sleep(self.rng.uniform(0.1, 0.5))

    def _inbound_loop(self):
        n = itertools.count(1)
        while not self._stop.wait(self.rng.uniform(0.2, 0.8)):
            _id, sim, _p = self.rng.choice(self.cluster.phones)
            body = f"inbound {next(n)}"
            sim.inject_inbound(f"+1650{self.rng.randrange(2000000, 10 ** 7)}", body)
            self.inbound.append(body)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(330)


def progress(cluster: Cluster, senders: Senders, started: float, faults: list[str]) -> None:
    try:
        (states,) = cluster.query("SELECT json_object_agg(state, n) FROM "
                                  "(SELECT state, count(*) AS n FROM recipients GROUP BY state) s")
        states = states[0] or {}
    except psycopg2.Error:
        states = "(database down)"
    say(f"[{time.monotonic() - started:6.0f} s] accepted {len(senders.accepted)} messages, "
        f"{senders.retries} retried sends, {len(senders.inbound)} inbound, {len(faults)} faults "
        f"({faults[-1] if faults else '-'}); recipients {states}")


def settle(cluster: Cluster, senders: Senders, timeout: float) -> float:
    """Wait until every recipient is final, every inbound stored and every webhook delivered."""
    started = time.monotonic()
    deadline = started + timeout
    while time.monotonic() < deadline:
        try:
            (row,) = cluster.query(
                "SELECT (SELECT count(*) FROM recipients WHERE state NOT IN %s), "
                "       (SELECT count(DISTINCT body) FROM device_inbound), "
                "       (SELECT count(*) FROM webhook_deliveries WHERE state <> 'succeeded')", (FINAL,))
        except psycopg2.Error:
            row = (1, 0, 1)
        open_recipients, inbound, open_deliveries = row
        if not open_recipients and inbound >= len(senders.inbound) and not open_deliveries:
            time.sleep(2)  # late duplicates would show now
            return time.monotonic() - started
        time.sleep(1)
    say(f"not settled after {timeout:.0f} s: {open_recipients} recipients not final, "
        f"{len(senders.inbound) - inbound} inbound missing, {open_deliveries} webhook deliveries open")
    return timeout


def check(cluster: Cluster, senders: Senders) -> list[str]:
    """The invariants; the violations found (empty: all hold)."""
    bad: list[str] = []
    q = cluster.query
    if senders.refused:
        bad.append(f"sends refused with a 4xx: {senders.refused[:5]}")
    # 1. one message per key, nothing half-written, one final state per recipient.
    ids = {mid for mid, _n in senders.accepted.values()}
    if len(ids) != len(senders.accepted):
        bad.append("two Idempotency-Keys were answered with one message")
    stored = dict(q("SELECT m.id, count(r.id) FROM messages m LEFT JOIN recipients r ON r.message_id = m.id "
                    "GROUP BY m.id"))
    if set(stored) != ids:
        bad.append(f"messages stored but never accepted: {sorted(set(stored) - ids)[:10]}; accepted but "
                   f"not stored: {sorted(ids - set(stored))[:10]}")
    wrong = [(mid, stored.get(mid), n) for mid, n in senders.accepted.values() if stored.get(mid) != n]
    if wrong:
        bad.append(f"messages without all their recipients (half-written): {wrong[:10]}")
    not_final = q("SELECT id, state FROM recipients WHERE state NOT IN %s", (FINAL,))
    if not_final:
        bad.append(f"{len(not_final)} recipients not in a final state: {not_final[:10]}")
    finals = q("SELECT r.id, r.state, count(e.id), min(e.to_state), max(e.to_state) FROM recipients r "
               "LEFT JOIN recipient_events e ON e.recipient_id = r.id AND e.to_state IN %s GROUP BY r.id, r.state "
               "HAVING count(e.id) <> 1 OR min(e.to_state) <> r.state", (FINAL,))
    if finals:
        bad.append(f"{len(finals)} recipients without exactly one final state: {finals[:10]}")
    # 2. sends per (recipient, phone) never exceed that phone's claims of the recipient.
    sends: Counter = Counter()
    for device_id, sim, _p in cluster.phones:
        for s in sim.sent:
            sends[(s["to"], s["text"], device_id)] += 1
    recipient_of = {(phone, text): rid for rid, phone, text in
                    q("SELECT r.id, r.phone, m.text FROM recipients r JOIN messages m ON m.id = r.message_id")}
    claims = Counter({(rid, dev): n for rid, dev, n in q(
        "SELECT recipient_id, device_id, count(*) FROM recipient_events WHERE to_state = 'processed' "
        "GROUP BY recipient_id, device_id")})
    over = [(recipient_of.get((to, text)), dev, n, claims[(recipient_of.get((to, text)), dev)])
            for (to, text, dev), n in sends.items() if n > claims[(recipient_of.get((to, text)), dev)]]
    if over:
        bad.append(f"{len(over)} recipients sent more often than claimed (recipient, phone, sends, claims): "
                   f"{over[:10]}")
    by_recipient = Counter(recipient_of.get((to, text)) for (to, text, _d) in sends)
    twice = sum(1 for n in by_recipient.values() if n > 1)
    # 3. webhooks: every event delivered under one id; every final state and inbound has its event.
    bodies: dict[str, set[bytes]] = {}
    for wid, body in cluster.receiver.requests:
        bodies.setdefault(wid, set()).add(body)
    events = dict(q("SELECT e.id, d.state FROM webhook_events e JOIN webhook_deliveries d ON d.event_id = e.id"))
    undelivered = [e for e in events if e not in bodies]
    if undelivered:
        bad.append(f"{len(undelivered)} webhook events never received: {undelivered[:5]}")
    if any(len(b) != 1 for b in bodies.values()):
        bad.append("a webhook id was sent with different bodies")
    if set(bodies) - set(events):
        bad.append(f"webhook ids received that are no event: {sorted(set(bodies) - set(events))[:5]}")
    missing = q("SELECT r.id, r.state FROM recipients r WHERE r.state IN ('delivered', 'failed') AND NOT EXISTS "
                "(SELECT 1 FROM webhook_events e WHERE e.event = 'sms:' || r.state "
                "AND (e.payload -> 'data' ->> 'recipient_id')::bigint = r.id)")
    if missing:
        bad.append(f"{len(missing)} final states without their webhook event: {missing[:10]}")
    (received_events,) = q("SELECT count(*) FROM webhook_events WHERE event = 'sms:received'")[0]
    (inbound_rows,) = q("SELECT count(*) FROM device_inbound")[0]
    if received_events != inbound_rows:
        bad.append(f"{inbound_rows} inbound SMS but {received_events} sms:received events")
    # 4. usage figures equal the rows.
    usage = dict(q("SELECT metric, sum(n) FROM usage_counts GROUP BY metric"))
    truth = dict(zip(["messages", "submitted", "sent", "delivered", "failed", "inbound"], q(
        "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM recipients), "
        "(SELECT count(*) FROM recipient_events WHERE to_state = 'sent' "
        "    OR (to_state = 'delivered' AND from_state IS DISTINCT FROM 'sent')), "
        "(SELECT count(*) FROM recipient_events WHERE to_state = 'delivered'), "
        "(SELECT count(*) FROM recipient_events WHERE to_state = 'failed'), "
        "(SELECT count(*) FROM device_inbound)")[0]))
    off = {m: (int(usage.get(m) or 0), n) for m, n in truth.items() if int(usage.get(m) or 0) != n}
    if off:
        bad.append(f"usage figures differ from the rows (metric: counted, rows): {off}")
    # 5. inbound stored once each.
    stored_inbound = Counter(b for (b,) in q("SELECT body FROM device_inbound"))
    if sorted(stored_inbound) != sorted(senders.inbound) or any(n != 1 for n in stored_inbound.values()):
        bad.append(f"inbound: {len(senders.inbound)} injected, {sum(stored_inbound.values())} stored, "
                   f"{len(set(senders.inbound) - set(stored_inbound))} missing")
    (states,) = q("SELECT json_object_agg(state, n) FROM (SELECT state, count(*) AS n FROM recipients "
                  "GROUP BY state) s")[0]
    say(f"checked: {len(ids)} messages, {sum(n for _m, n in senders.accepted.values())} recipients {states}; "
        f"{sum(sends.values())} SMS sent by the phones ({twice} recipients sent by two phones after a "
        f"failure or a lapsed claim); {len(events)} webhook events, {len(cluster.receiver.requests)} "
        f"webhook requests; {inbound_rows} inbound; usage {truth}")
    return bad


def run(minutes: float, seed: int, phones: int, senders_n: int, failure_rate: float, refuse: float,
        fault_every: float, settle_timeout: float, workdir: Path | None = None) -> int:
    rng = random.Random(seed)
    base = Path(workdir or tempfile.mkdtemp(prefix="smsgw-soak-"))
    say(f"soak: {minutes} min, seed {seed}, {phones} phones ({failure_rate:.0%} of sends fail), "
        f"{senders_n} senders, a fault every ~{fault_every:.0f} s; in {base}")
    cluster = Cluster(base, phones, failure_rate, refuse, rng)
    faults: list[str] = []
    bad = ["interrupted"]
    try:
        senders = Senders(cluster, senders_n, rng)
        started = time.monotonic()
        end = started + 60 * minutes
        next_progress = started + 10
        next_fault = started + rng.uniform(0.5, 1.5) * fault_every
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_fault:
                faults.append(cluster.fault())
                next_fault = time.monotonic() + rng.uniform(0.5, 1.5) * fault_every
            if now >= next_progress:
                progress(cluster, senders, started, faults)
                next_progress = now + 10
            time.sleep(0.2)
        senders.stop()
        say(f"traffic stopped after {time.monotonic() - started:.0f} s; faults: {dict(Counter(faults))}")
        settled = settle(cluster, senders, settle_timeout)
        say(f"settled in {settled:.1f} s")
        bad = check(cluster, senders)
    finally:
        keep = bool(bad) and workdir is not None  # to look into what went wrong
        cluster.stop(keep_database=keep)
        if keep:
            say(f"the database is kept in {base / 'pg'} (EmbeddedPostgres(...).start() to read it)")
        if workdir is None:
            shutil.rmtree(base, ignore_errors=True)
    for b in bad:
        say("VIOLATED: " + b)
    say("all invariants hold" if not bad else f"{len(bad)} invariant(s) violated")
    return 1 if bad else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--seed", type=int, default=None, help="default: random (printed)")
    p.add_argument("--phones", type=int, default=4)
    p.add_argument("--senders", type=int, default=2, help="sending threads")
    p.add_argument("--failure-rate", type=float, default=0.05, help="share of the phones' sends that fail")
    p.add_argument("--refuse", type=float, default=0.05, help="share of webhook ids the receiver refuses once")
    p.add_argument("--fault-every", type=float, default=15.0, help="mean seconds between faults")
    p.add_argument("--settle", type=float, default=180.0, help="seconds to wait for the work to settle")
    p.add_argument("--workdir", type=Path, default=None, help="keep the data here (default: a removed temp dir)")
    a = p.parse_args(argv)
    seed = a.seed if a.seed is not None else random.randrange(10 ** 6)
    return run(a.minutes, seed, a.phones, a.senders, a.failure_rate, a.refuse, a.fault_every, a.settle, a.workdir)


if __name__ == "__main__":
    sys.exit(main())
