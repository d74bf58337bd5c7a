"""The production shape, tested (issue 21, items 3 and 6): Debian's nginx, configured from
``deploy/nginx.conf`` (tests/support/nginx.py), in front of two ``smsgw serve`` processes (A and
B), one ``smsgw worker``, a Debian ``redis-server`` for the task queue and wake-ups, and the
session's PostgreSQL reached by URL as an external server is (a database and role prefix of this
module's own). Every request of the tests goes through nginx unless it must reach one process;
nginx names the process that answered in ``X-Upstream`` (a test-only header).

* a phone waiting on one process is woken by a send that nginx gave to the other (p50/p95);
* webhooks are delivered once each although three processes could send them;
* suspending and resuming the workspace, and revoking a token, reach both processes at once;
* one process SIGKILLed under traffic: no accepted message is lost, its phones carry on through
  nginx on the other;
* a rolling restart (SIGTERM, as systemd does) of both under steady traffic: nothing lost,
  nothing made twice (clients retry with an Idempotency-Key, as the API asks);
* Redis down: wake-ups through NOTIFY, queued work (webhooks) waits and is not lost.

Webhook receivers are servers on 127.0.0.1, so the processes allow private targets.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import threading
import time
import uuid

import psycopg2
import pytest
import requests
from android_companion.backends.simulator import SimulatorBackend
from android_companion.runner import Companion

from core import dbsetup
from tests.support.devices import LongPoll, device_client, raw_device, wait_until
from tests.support.identity import post_form, sign_in
from tests.support.nginx import Nginx, check_deploy_config
from tests.support.phones import pair_phone
from tests.support.tls import self_signed_certificate
from tests.test_faults import ROOT, Redis, Server, drain, free_port
from tests.test_faults_worker import SlowReceiver
from tests.test_webhook_isolation import Worker

pytestmark = [pytest.mark.fault, pytest.mark.slow]

SCOPES = ["messages:send", "messages:read", "devices:write", "devices:read", "webhooks:write", "webhooks:read"]


def cli(env, *args) -> str:
    out = subprocess.run([sys.executable, "-m", "core.cli", *args], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def new_token(env, name) -> str:
    return cli(env, "token", "create", "--tenant", "demo", "--name", name,
               *[a for s in SCOPES for a in ("--scope", s)]).split()[0]


def authed(server, token):
    client = server.client("demo")
    client.headers["Authorization"] = f"Bearer {token}"
    return client


@pytest.fixture(scope="module")
def front(pg_server_url, tmp_path_factory):
    base = tmp_path_factory.mktemp("scaleout")
    token = secrets.token_hex(3)
    dbname, prefix = f"smsgw_scale_{token}", f"scl{token}"
    dbsetup.ensure_database(pg_server_url, dbname)
    url = dbsetup.with_database(pg_server_url, dbname)
    redis = Redis(free_port())
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SMSGW_APP_DATABASE_URL")}
    env.update(DATABASE_URL=url, SMSGW_DB_ROLE_PREFIX=prefix, SMSGW_DATA_DIR=str(base / "var"),
               SMSGW_BASE_DOMAIN="localhost", REDIS_URL=f"redis://127.0.0.1:{redis.port}/0",
               PYTHONPATH=str(ROOT), SMSGW_TRUST_PROXY="1", SMSGW_WEBHOOK_ALLOW_PRIVATE="1",
               SMSGW_BILLING_DEFAULT_PLAN="")
    a = Server(env, "A", demo=True)  # migrates, creates the demo workspace and the secrets
    # A claim whose answer is lost with a stopped or killed process goes back to the queue after the
    # claim timeout (600 s by default): shorter here, so such work settles within the checks' wait.
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT schema_name FROM public.tenant WHERE slug = 'demo'")
            cur.execute(f'UPDATE "{cur.fetchone()[0]}".messaging_settings SET claim_timeout_seconds = 60')
    finally:
        conn.close()
    b = Server(env, "B")
    worker = Worker(env)
    nginx = Nginx(base / "nginx", free_port(), [a.port, b.port])
    c = type("Front", (), {})()
    c.env, c.url, c.base, c.redis, c.a, c.b, c.worker, c.nginx = env, url, base, redis, a, b, worker, nginx
    c.token = new_token(env, "scaleout")
    c.api = authed(nginx, c.token)
    c.receiver = SlowReceiver()
    c.phones = []
    try:
        yield c
    finally:
        for _backend, phone in c.phones:
            phone.stop()
        nginx.stop()
        c.receiver.close()
        for proc in {id(p): p for p in (c.a, c.b, c.worker, c.redis, a, b, worker, redis)}.values():
            proc.stop()
        dbsetup.drop_database(pg_server_url, dbname, prefix)


def upstream(front, response) -> str:
    """'A' or 'B': the process that answered through nginx."""
    port = int(response.headers["X-Upstream"].rsplit(":", 1)[1])
    return {front.a.port: "A", front.b.port: "B"}[port]


def start_phones(front, n, **backend) -> list[tuple[int, SimulatorBackend, Companion]]:
    """``n`` real companions paired and running through nginx (added to the module's phones)."""
    out = []
    for _ in range(n):
        d = front.base / f"phone-{uuid.uuid4().hex[:8]}"
        state, sim = pair_phone(front.nginx, "demo", d, backend=SimulatorBackend(**backend), client=front.api)
        phone = Companion(d, sim, wait=25, heartbeat_interval=60.0, inbound_interval=0.2, flush_interval=0.2,
                          backoff_cap=2.0).start()
        front.phones.append((sim, phone))
        out.append((state.device_id, sim, phone))
    return out


def send(api, text, key=None, **fields) -> requests.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return api.post("/api/v1/messages", json={"to": ["+14155550100"], "text": text, **fields}, headers=headers,
                    timeout=30)


def state_of(front, message_id) -> str:
    return front.api.get(f"/api/v1/messages/{message_id}").json()["state"]


def all_final(front, ids, timeout=60.0) -> dict:
    """Wait until the API says every message is in a final state; {id: state}."""
    final = {"delivered", "failed", "cancelled", "expired"}
    states, waiting = {}, list(ids)
    deadline = time.time() + timeout
    while waiting and time.time() < deadline:
        states.update((i, state_of(front, i)) for i in waiting)
        waiting = [i for i in waiting if states[i] not in final]
        if waiting:
            time.sleep(0.3)
    return states


def event_of(request) -> tuple[str, int]:
    """A webhook request's (event type, message id)."""
    body = json.loads(request["body"])
    return body["type"], body["data"]["message_id"]


def sent_texts(phones) -> list[str]:
    return [s["text"] for _id, sim, _p in phones for s in sim.sent]


# -- the shipped config ---------------------------------------------------------------------------

def test_the_shipped_nginx_config_is_accepted_by_debians_nginx(tmp_path):
    """deploy/nginx.conf as shipped (TLS, HTTP/2, wildcard server names), with a test certificate."""
    cert, key = self_signed_certificate(tmp_path)
    result = check_deploy_config(tmp_path / "check", cert, key)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "syntax is ok" in result.stderr


# -- item 3 ---------------------------------------------------------------------------------------

def test_a_phone_waiting_on_one_process_is_woken_by_a_send_through_the_other(front):
    """Poll and send both through nginx; only pairs that nginx gave to different processes count."""
    device_id, device_token = raw_device(front.nginx, "demo", api=front.api)
    device = device_client(front.nginx, "demo", device_token)
    crossed, same = [], 0
    for i in range(60):
        if len(crossed) >= 20:
            break
        drain(device)
        poll = LongPoll(device, wait=25, limit=10).start()
        time.sleep(0.3)  # parked
        assert not poll.done
        r = send(front.api, f"wake {i}", device_id=device_id)
        assert r.status_code == 202, r.text
        sent = time.monotonic()
        poll.join(30)
        assert poll.response.status_code == 200, poll.response.text
        assert [m["id"] for m in poll.response.json()["messages"]] == [r.json()["id"]]
        if upstream(front, poll.response) != upstream(front, r):
            crossed.append(poll.finished - sent)
        else:
            same += 1
    assert len(crossed) >= 20, f"nginx gave only {len(crossed)} of the pairs to different processes"
    ms = sorted(1000 * x for x in crossed)
    p50, p95 = statistics.median(ms), ms[int(0.95 * len(ms)) - 1]
    print(f"\ncross-process wake through nginx ({len(ms)} sends, {same} same-process pairs left out): "
          f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {ms[-1]:.1f} ms")
    assert p50 <= 50, ms
    assert p95 <= 100, ms  # 50 ms is the aim; a loaded 2-core CI machine stalls now and then


def test_webhooks_go_out_once_although_three_processes_could_send_them(front):
    r = front.api.post("/api/v1/webhooks", json={"url": front.receiver.url("/once"),
                                                 "events": ["sms:sent", "sms:delivered"]})
    assert r.status_code == 201, r.text
    phones = start_phones(front, 2)
    ids = []
    for i in range(20):
        r = send(front.api, f"webhook {i}", device_id=phones[i % 2][0])
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    assert set(all_final(front, ids).values()) == {"delivered"}
    wait_until(lambda: len(front.receiver.to("/once")) >= 40, timeout=30, message="40 webhook deliveries")
    time.sleep(3)  # a second delivery of anything would come by now
    requests_ = front.receiver.to("/once")
    webhook_ids = [q["webhook_id"] for q in requests_]
    assert len(webhook_ids) == len(set(webhook_ids)) == 40, webhook_ids
    print("\n" + requests_[0]["body"].decode())
    events = sorted(event_of(q) for q in requests_)
    assert events == sorted((e, i) for i in ids for e in ("sms:delivered", "sms:sent")), events


def test_suspend_resume_and_token_revocation_reach_every_process(front):
    processes = {"A": front.a, "B": front.b}
    token = new_token(front.env, "to be revoked")
    clients = {name: authed(p, token) for name, p in processes.items()}
    for c in clients.values():  # both processes have seen the token and the workspace (cached)
        assert c.get("/api/v1/devices").status_code == 200

    def statuses():
        return {name: c.get("/api/v1/devices").status_code for name, c in clients.items()}

    cli(front.env, "tenant", "suspend", "demo")
    started = time.monotonic()
    wait_until(lambda: statuses() == {"A": 403, "B": 403}, timeout=5, message="both processes refuse")
    took_suspend = time.monotonic() - started
    assert clients["A"].get("/api/v1/devices").json()["code"] == "tenant-suspended"
    cli(front.env, "tenant", "resume", "demo")
    wait_until(lambda: statuses() == {"A": 200, "B": 200}, timeout=5, message="both processes serve again")

    creds = json.loads((front.base / "var" / "secrets" / "demo-credentials.json").read_text())
    owner = sign_in(front.nginx, "demo", creds["tenant_email"], creds["tenant_password"])
    conn = psycopg2.connect(front.url)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM t_demo.api_tokens WHERE name = 'to be revoked'")
        (token_id,) = cur.fetchone()
    conn.close()
    r = post_form(owner, "/tokens", {"action": "revoke", "token_id": str(token_id), "confirmed": "1"})
    assert r.status_code in (302, 303), r.text[:300]
    started = time.monotonic()
    wait_until(lambda: statuses() == {"A": 401, "B": 401}, timeout=5, message="both processes refuse the token")
    took_revoke = time.monotonic() - started
    print(f"\nsuspension on both processes after {1000 * took_suspend:.0f} ms, "
          f"revocation after {1000 * took_revoke:.0f} ms")
    assert front.api.get("/api/v1/devices").status_code == 200  # the other token is untouched


class Traffic:
    """Sends through nginx in a thread until stopped, as a careful client does: each message has
    an Idempotency-Key and is retried (same key) on a connection error or a 5xx until accepted."""

    def __init__(self, front, device_ids, label, interval=0.05):
        self.front, self.device_ids, self.label, self.interval = front, device_ids, label, interval
        self.accepted: dict[str, int] = {}  # key -> message id
        self.retries, self.failures = 0, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        api = authed(self.front.nginx, self.front.token)
        n = 0
        while not self._stop.is_set():
            key = f"{self.label}-{n}"
            fields = {"device_id": self.device_ids[n % len(self.device_ids)]}
            for attempt in range(100):
                try:
                    r = send(api, key, key=key, **fields)
                except requests.RequestException as exc:
                    r = exc
                if not isinstance(r, Exception) and r.status_code == 202:
                    self.accepted[key] = r.json()["id"]
                    break
                if not isinstance(r, Exception) and r.status_code < 500:
                    self.failures.append((key, r.status_code, r.text[:200]))
                    break
                self.retries += 1
                time.sleep(0.2)
            n += 1
            time.sleep(self.interval)

    def stop(self) -> "Traffic":
        self._stop.set()
        self._thread.join(60)
        return self


def check_nothing_lost_or_doubled(front, traffic, phones):
    assert not traffic.failures, traffic.failures
    assert len(traffic.accepted) >= 20, len(traffic.accepted)
    ids = list(traffic.accepted.values())
    assert len(set(ids)) == len(ids), "two keys gave one message"
    states = all_final(front, ids, timeout=150)
    assert set(states.values()) == {"delivered"}, {i: s for i, s in states.items() if s != "delivered"}
    texts = [t for t in sent_texts(phones) if t.startswith(traffic.label + "-")]
    assert sorted(texts) == sorted(traffic.accepted), "a message was sent twice or never"
    conn = psycopg2.connect(front.url)
    with conn, conn.cursor() as cur:  # one stored message per key: no retry made a second one
        cur.execute("SELECT count(*) FROM t_demo.messages WHERE id = ANY(%s)", (ids,))
        assert cur.fetchone()[0] == len(ids)
    conn.close()


def test_a_killed_web_process_loses_no_accepted_message_and_its_phones_move(front):
    phones = start_phones(front, 4)
    traffic = Traffic(front, [p[0] for p in phones], "kill")
    time.sleep(3)
    killed_port = front.a.port
    front.a.proc.kill()  # SIGKILL: no drain, parked polls and in-flight requests cut
    front.a.proc.wait(10)
    killed = time.monotonic()
    time.sleep(4)
    # Every phone (those parked on A too) takes work through nginx from B now.
    probes = [send(front.api, f"after kill {d}", device_id=d) for d, _s, _p in phones]
    assert all(r.status_code == 202 for r in probes), [r.text for r in probes]
    assert {upstream(front, r) for r in probes} == {"B"}
    states = all_final(front, [r.json()["id"] for r in probes], timeout=30)
    assert set(states.values()) == {"delivered"}, states
    moved = time.monotonic() - killed
    traffic.stop()
    check_nothing_lost_or_doubled(front, traffic, phones)
    print(f"\nA killed: {len(traffic.accepted)} messages accepted, {traffic.retries} retried sends, "
          f"every phone served by B within {moved:.1f} s")
    front.a = Server(front.env, "A", port=killed_port)  # back for the next tests


# -- item 6 ---------------------------------------------------------------------------------------

def test_a_rolling_restart_under_traffic_loses_and_duplicates_nothing(front):
    phones = start_phones(front, 4)
    traffic = Traffic(front, [p[0] for p in phones], "rolling")
    time.sleep(2)
    for name in ("A", "B"):
        old = getattr(front, name.lower())
        stopping = time.monotonic()
        setattr(front, name.lower(), old.restarted())  # SIGTERM: drains, exits; then started again
        print(f"\n{name}: stopped and ready again in {time.monotonic() - stopping:.1f} s")
        assert old.proc.returncode == 0, old.output()[-3000:]
        assert "Shutting down: no new connections" in old.output()
        assert "Traceback" not in old.output(), old.output()[-3000:]
        time.sleep(1.5)
    time.sleep(2)
    traffic.stop()
    check_nothing_lost_or_doubled(front, traffic, phones)
    print(f"rolling restart: {len(traffic.accepted)} messages accepted, {traffic.retries} sends retried")


def test_with_redis_down_wakeups_use_notify_and_queued_work_waits(front):
    phones = start_phones(front, 2)
    r = front.api.post("/api/v1/webhooks", json={"url": front.receiver.url("/redis"), "events": ["sms:sent"]})
    assert r.status_code == 201, r.text
    front.redis.kill()
    ids = []
    started = time.monotonic()
    for i in range(10):
        r = send(front.api, f"redis down {i}", device_id=phones[i % 2][0])
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    # The phones (parked on either process) are woken through PostgreSQL NOTIFY.
    assert set(all_final(front, ids, timeout=30).values()) == {"delivered"}
    print(f"\nwith Redis down: 10 messages delivered {time.monotonic() - started:.1f} s after the first send")
    front.redis = Redis(front.redis.port)
    wait_until(lambda: len(front.receiver.to("/redis")) >= 10, timeout=60,
               message="the webhooks of the outage delivered")
    time.sleep(2)
    got = sorted(event_of(q) for q in front.receiver.to("/redis"))
    assert got == sorted(("sms:sent", i) for i in ids), got
