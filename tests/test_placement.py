"""Workspaces on two PostgreSQL servers (issue 21, item 4; core/placement.py).

Two real servers: the session's PostgreSQL (the default one, holding the catalogue) and a second
embedded PostgreSQL started by this module, named in ``SMSGW_DATABASES``. A ``smsgw serve``
process, a ``smsgw worker`` and the CLI run as subprocesses against both, as in production:

* a new workspace goes to the least-loaded server; its role and schema are made there and only
  there, with the same least privilege as on the default server;
* on the second server a phone claims and reports, the parked long poll is woken, webhooks go out
  (the worker's due-work scheduler of that server), tokens and devices work;
* ``smsgw tenant move`` under traffic (a sender retrying on 503, a phone long-polling): every
  accepted message is there afterwards, once; tokens, devices and messages work on the new server;
  the old copy is gone; requests during the pause answer 503 problem+json with Retry-After;
* bad input to the move and to ``SMSGW_DATABASES`` is refused with a readable message.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import threading
import time
import uuid

import psycopg2
import pytest
from android_companion.backends.simulator import SimulatorBackend
from android_companion.runner import Companion

from core import dbsetup
from core.config import ConfigError, Settings
from core.embedded_pg import EmbeddedPostgres
from tests.support.devices import LongPoll, device_client, raw_device, wait_until
from tests.support.phones import pair_phone
from tests.test_faults import ROOT, Server, drain
from tests.test_faults_worker import SlowReceiver
from tests.test_webhook_isolation import Worker

pytestmark = [pytest.mark.slow]

SCOPES = ["messages:send", "messages:read", "devices:write", "devices:read", "webhooks:write", "webhooks:read"]
PASSWORD = "a long enough password"


def cli(env, *args, ok=True) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-m", "core.cli", *args], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    if ok:
        assert out.returncode == 0, out.stdout + out.stderr
    return out


def query(url, statement, params=None):
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else cur.rowcount
    finally:
        conn.close()


@pytest.fixture(scope="module")
def two(pg_server_url, tmp_path_factory):
    base = tmp_path_factory.mktemp("placement")
    token = secrets.token_hex(3)
    dbname, prefix = f"smsgw_place_{token}", f"plc{token}"
    dbsetup.ensure_database(pg_server_url, dbname)
    second_pg = EmbeddedPostgres(base / "pg2", fast=True)
    second_admin = second_pg.start()
    c = type("Two", (), {})()
    c.prefix = prefix
    c.default_url = dbsetup.with_database(pg_server_url, dbname)
    c.second_url = dbsetup.with_database(second_admin, "smsgw_second")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SMSGW_APP_DATABASE_URL", "REDIS_URL")}
    env.update(DATABASE_URL=c.default_url, SMSGW_DATABASES=f"second={c.second_url}", SMSGW_DB_ROLE_PREFIX=prefix,
               SMSGW_DATA_DIR=str(base / "var"), SMSGW_BASE_DOMAIN="localhost", PYTHONPATH=str(ROOT),
               SMSGW_WEBHOOK_ALLOW_PRIVATE="1", SMSGW_BILLING_DEFAULT_PLAN="")
    c.env, c.base = env, base
    c.web = Server(env, "web", demo=True)  # migrates both servers; the demo workspace goes to the default one
    c.worker = None
    c.receiver = SlowReceiver()
    c.phones = []
    try:
        c.worker = Worker(env)
        # The second workspace: the second server holds none yet, so it goes there.
        cli(env, "tenant", "create", "far", "--name", "Far Ltd", "--owner-email", "owner@far.example",
            "--owner-password", PASSWORD)
        c.token = cli(env, "token", "create", "--tenant", "far", "--name", "placement",
                      *[a for s in SCOPES for a in ("--scope", s)]).stdout.split()[0]
        c.api = c.web.client("far")
        c.api.headers["Authorization"] = f"Bearer {c.token}"
        yield c
    finally:
        for phone in c.phones:
            phone.stop()
        c.receiver.close()
        if c.worker is not None:
            c.worker.stop()
        c.web.stop()
        dbsetup.drop_database(pg_server_url, dbname, prefix)
        second_pg.destroy()


def start_phone(c, slug="far") -> tuple[int, SimulatorBackend]:
    d = c.base / f"phone-{uuid.uuid4().hex[:8]}"
    state, sim = pair_phone(c.web, slug, d, backend=SimulatorBackend(), client=c.api)
    phone = Companion(d, sim, wait=25, heartbeat_interval=60.0, inbound_interval=0.2, flush_interval=0.2,
                      backoff_cap=2.0).start()
    c.phones.append(phone)
    return state.device_id, sim


def send(api, text, key=None, **fields):
    headers = {"Idempotency-Key": key} if key else {}
    return api.post("/api/v1/messages", json={"to": ["+14155550100"], "text": text, **fields}, headers=headers,
                    timeout=30)


def final_states(api, ids, timeout=60.0) -> dict:
    final = {"delivered", "failed", "cancelled", "expired"}
    states, waiting = {}, list(ids)
    deadline = time.time() + timeout
    while waiting and time.time() < deadline:
        for i in waiting:
            r = api.get(f"/api/v1/messages/{i}")
            if r.status_code == 200:
                states[i] = r.json()["state"]
        waiting = [i for i in waiting if states.get(i) not in final]
        if waiting:
            time.sleep(0.3)
    return states


def schemas(url, prefix) -> set:
    return {n for (n,) in query(url, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 't\\_%%'")}


def test_a_new_workspace_goes_to_the_least_loaded_server_with_its_role_and_schema_there_only(two):
    placed = dict(query(two.default_url, "SELECT slug, database_alias FROM public.tenant"))
    assert placed == {"demo": "default", "far": "second"}
    assert "t_far" in schemas(two.second_url, two.prefix) and "t_far" not in schemas(two.default_url, two.prefix)
    assert "t_demo" in schemas(two.default_url, two.prefix) and "t_demo" not in schemas(two.second_url, two.prefix)
    role, app = f"{two.prefix}_t_far", f"{two.prefix}_app"
    # Least privilege on the second server as on the first: the serving role reaches the schema only by
    # SET ROLE (member without inherit), the workspace's role owns its schema and nothing in public.
    [(member, usage, owner, public_usage)] = query(
        two.second_url, "SELECT pg_has_role(%s, %s, 'MEMBER'), has_schema_privilege(%s, 't_far', 'USAGE'), "
        "(SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 't_far'), "
        "has_schema_privilege(%s, 'public', 'USAGE')", (app, role, app, role))
    assert (member, usage, owner, public_usage) == (True, False, role, False)
    assert query(two.default_url, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,)) == [(0,)]
    listed = cli(two.env, "tenant", "servers").stdout
    assert re.search(r"^default\s+1 workspace", listed, re.M) and re.search(r"^second\s+1 workspace", listed, re.M)


def test_phones_long_polls_and_webhooks_work_for_a_workspace_on_the_second_server(two):
    r = two.api.post("/api/v1/webhooks", json={"url": two.receiver.url("/far"), "events": ["sms:sent", "sms:delivered"]})
    assert r.status_code == 201, r.text
    # A parked long poll is woken by a send (the wake-up goes out as NOTIFY on the second server).
    device_id, device_token = raw_device(two.web, "far", api=two.api)
    device = device_client(two.web, "far", device_token)
    drain(device)
    poll = LongPoll(device, wait=20, limit=10).start()
    time.sleep(0.4)
    assert not poll.done
    r = send(two.api, "wake me", device_id=device_id)
    assert r.status_code == 202, r.text
    poll.join(15)
    assert [m["id"] for m in poll.response.json()["messages"]] == [r.json()["id"]]
    assert poll.finished - poll.started < 5
    # A real phone claims, sends and reports; the worker delivers both webhooks of each message.
    phone_id, sim = start_phone(two)
    ids = [send(two.api, f"far {i}", device_id=phone_id).json()["id"] for i in range(5)]
    assert set(final_states(two.api, ids).values()) == {"delivered"}
    assert sorted(s["text"] for s in sim.sent) == [f"far {i}" for i in range(5)]
    wait_until(lambda: len(two.receiver.to("/far")) >= 10, timeout=40, message="10 webhook deliveries")
    ids_seen = [q["webhook_id"] for q in two.receiver.to("/far")]
    assert len(ids_seen) == len(set(ids_seen)) == 10
    # The rows are on the second server, none of them on the default one.
    [(n,)] = query(two.second_url, "SELECT count(*) FROM t_far.messages")
    assert n >= 6
    # Catalogue work done inside its transactions (the audit trail of the pairings) went to the
    # catalogue's server, where the workspace's Customer and the operator read it.
    paired = "SELECT count(*) FROM public.audit_event WHERE tenant_slug = 'far' AND action = 'device.paired'"
    assert query(two.default_url, paired) == [(2,)]
    assert query(two.second_url, paired) == [(0,)]


def test_moving_under_traffic_loses_nothing_and_leaves_no_old_copy(two):
    phone_id, sim = start_phone(two)
    # The traffic is more than a phone's default 30 a minute: no limit for this one.
    r = two.api.patch(f"/api/v1/devices/{phone_id}", json={"settings": {"limits": {"per_minute": 0}}})
    assert r.status_code == 200, r.text
    device_id, device_token = raw_device(two.web, "far", api=two.api)
    device = device_client(two.web, "far", device_token)
    drain(device)
    accepted: dict[str, int] = {}  # idempotency key -> message id
    answers: list = []
    stop = threading.Event()

    def sender():
        i = 0
        while not stop.is_set():
            key = f"move-{i}"
            while True:  # as the API asks: the same Idempotency-Key until an answer that is not 503
                r = send(two.api, f"during move {i}", key=key, device_id=phone_id)
                answers.append((r.status_code, r.headers.get("Retry-After"), r.headers.get("Content-Type")))
                if r.status_code != 503:
                    break
                time.sleep(0.1)
            assert r.status_code == 202, r.text
            accepted[key] = r.json()["id"]
            i += 1
            time.sleep(0.02)

    poll = LongPoll(device, wait=25, limit=10).start()  # parked on the old server through the move
    thread = threading.Thread(target=sender, daemon=True)
    thread.start()
    time.sleep(1.5)
    out = cli(two.env, "tenant", "move", "far", "--to", "default")
    time.sleep(1.5)
    stop.set()
    thread.join(60)
    print("\n" + out.stdout)
    assert "Writes paused" in out.stdout and "now lives on default" in out.stdout
    pause = float(re.search(r"Writes resumed after ([0-9.]+) s", out.stdout).group(1))
    assert pause < 10
    assert len(accepted) >= 20
    moved_503 = [a for a in answers if a[0] == 503]
    assert all(a[1] and "problem+json" in a[2] for a in moved_503), moved_503
    assert {a[0] for a in answers} <= {202, 503}
    # The catalogue points at the default server; the old copy is gone from the second one.
    assert query(two.default_url, "SELECT database_alias, status FROM public.tenant WHERE slug = 'far'") == \
        [("default", "active")]
    assert "t_far" not in schemas(two.second_url, two.prefix)
    assert query(two.second_url, "SELECT count(*) FROM public.tenant WHERE slug = 'far'") == [(0,)]
    assert query(two.second_url, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (f"{two.prefix}_t_far",)) == [(0,)]
    # Every accepted message is there, once, and reaches a final state through the phone.
    [(n_keys,)] = query(two.default_url, "SELECT count(DISTINCT id) FROM t_far.messages WHERE text LIKE 'during move %%'")
    assert n_keys == len(accepted)
    states = final_states(two.api, list(accepted.values()), timeout=90)
    stuck = sorted(i for i, st in states.items() if st != "delivered")
    if stuck:
        (two.base / "debug.txt").write_text(repr((stuck, [s["text"] for s in sim.sent][-20:], query(
            two.default_url, "SELECT r.message_id, r.state, r.claimed_at, e.to_state, e.source, e.at FROM t_far.recipients r "
            "LEFT JOIN t_far.recipient_events e ON e.recipient_id = r.id WHERE r.message_id = ANY(%s) ORDER BY 1, e.at",
            (stuck,)), out.stdout, two.web.output())))
        print("DEBUG", two.base / "debug.txt")
    assert not stuck, (stuck, [s["text"] for s in sim.sent][-20:], query(
        two.default_url, "SELECT r.message_id, r.state, r.claimed_at, e.to_state, e.source, e.at FROM t_far.recipients r "
        "LEFT JOIN t_far.recipient_events e ON e.recipient_id = r.id WHERE r.message_id = ANY(%s) ORDER BY 1, e.at",
        (stuck,)), out.stdout)
    texts = [s["text"] for s in sim.sent if s["text"].startswith("during move")]
    assert sorted(texts) == sorted(set(texts)) and len(texts) == len(accepted)
    # The raw phone's poll, parked before the move, answers; the device and the token work on the new server.
    poll.join(40)  # answered: nothing for it, or (if it looked during the pause) 503 with Retry-After
    assert poll.response.status_code == 200 or (
        poll.response.status_code == 503 and poll.response.json()["code"] == "tenant-moving"
        and poll.response.headers["Retry-After"]), poll.response.text
    drain(device)
    poll = LongPoll(device, wait=20, limit=10).start()
    time.sleep(0.4)
    r = send(two.api, "after the move", device_id=device_id)
    assert r.status_code == 202, r.text
    poll.join(15)
    assert [m["id"] for m in poll.response.json()["messages"]] == [r.json()["id"]]
    assert two.api.get(f"/api/v1/messages/{r.json()['id']}").status_code == 200
    # And back to the second server: the move works both ways.
    out = cli(two.env, "tenant", "move", "far", "--to", "second")
    assert "now lives on second" in out.stdout
    assert "t_far" not in schemas(two.default_url, two.prefix) and "t_far" in schemas(two.second_url, two.prefix)
    ready = two.web.ready()
    assert ready.get("tenants_lagging", 0) == 0, ready  # the moved workspace's ledger is on its server
    r = send(two.api, "back on second", device_id=phone_id)
    assert r.status_code == 202, r.text
    assert final_states(two.api, [r.json()["id"]]) == {r.json()["id"]: "delivered"}


def test_a_workspace_that_is_moving_answers_503_with_retry_after(two):
    query(two.default_url, "UPDATE public.tenant SET status = 'moving' WHERE slug = 'far'")
    query(two.default_url, "SELECT pg_notify('smsgw_tenant_changed', 'far')")
    try:
        wait_until(lambda: two.api.get("/api/v1/messages").status_code == 503, timeout=10, message="503 while moving")
        r = two.api.get("/api/v1/messages")
        assert r.headers["Retry-After"] == "2"
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert r.json()["code"] == "tenant-moving"
    finally:
        query(two.default_url, "UPDATE public.tenant SET status = 'active' WHERE slug = 'far'")
        query(two.default_url, "SELECT pg_notify('smsgw_tenant_changed', 'far')")
    wait_until(lambda: two.api.get("/api/v1/messages").status_code == 200, timeout=10, message="200 again")


@pytest.mark.parametrize("args, says", [
    (["far", "--to", "nowhere"], "there is no database server 'nowhere'"),
    (["nobody-here", "--to", "default"], "there is no workspace 'nobody-here'"),
    (["far", "--to", "second"], "is on second already"),
    (["far; DROP TABLE x", "--to", "default"], "there is no workspace"),
])
def test_bad_moves_are_refused_with_a_reason_and_change_nothing(two, args, says):
    out = cli(two.env, "tenant", "move", *args, ok=False)
    assert out.returncode == 2 and says in out.stderr, out.stdout + out.stderr
    assert query(two.default_url, "SELECT database_alias, status FROM public.tenant WHERE slug = 'far'") == \
        [("second", "active")]


def test_deleting_a_workspace_on_the_second_server_drops_it_there(two):
    cli(two.env, "tenant", "create", "gone-soon", "--name", "Gone Soon", "--owner-email", "owner@gone.example",
        "--owner-password", PASSWORD)
    if query(two.default_url, "SELECT database_alias FROM public.tenant WHERE slug = 'gone-soon'") != [("second",)]:
        cli(two.env, "tenant", "move", "gone-soon", "--to", "second")
    assert "t_gone_soon" in schemas(two.second_url, two.prefix)
    cli(two.env, "tenant", "delete", "gone-soon", "--yes")
    assert "t_gone_soon" not in schemas(two.second_url, two.prefix)
    for url in (two.default_url, two.second_url):
        assert query(url, "SELECT count(*) FROM public.tenant WHERE slug = 'gone-soon'") == [(0,)]
        assert query(url, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (f"{two.prefix}_t_gone_soon",)) == [(0,)]


@pytest.mark.parametrize("raw, says", [
    ("default=postgresql://x@h/db", "not 'default'"),
    ("Eu=postgresql://x@h/db", "alias=URL"),
    ("eu=http://x@h/db", "must be postgresql://"),
    ("eu=postgresql://x@h/db eu=postgresql://y@h/db", "twice"),
    ("eu=postgresql://x@h/", "must be postgresql://"),
])
def test_bad_server_lists_are_refused(raw, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        Settings.from_env({"SMSGW_DATABASES": raw})


def test_region_placement_and_its_bad_input():
    from core.placement import choose

    s = Settings.from_env({"SMSGW_DATABASES": "eu=postgresql://x@h/db us2=postgresql://x@h/db2",
                           "SMSGW_PLACEMENT": "region", "SMSGW_DATABASE_REGIONS": "eu=DE,FR default=US us2=US"})
    load = {"default": 5, "eu": 9, "us2": 2}
    assert choose(s, load, "DE") == "eu"  # its region, although the most loaded
    assert choose(s, load, "US") == "us2"  # the least loaded of its region
    assert choose(s, load, "JP") == "us2"  # no server for it: least loaded of all
    least = Settings.from_env({"SMSGW_DATABASES": "eu=postgresql://x@h/db"})
    assert choose(least, {"default": 3, "eu": 3}, "DE") == "default"  # a tie: the first named
    for bad in ("eu=Germany", "mars=DE", "eu="):
        with pytest.raises(ConfigError, match="SMSGW_DATABASE_REGIONS"):
            Settings.from_env({"SMSGW_DATABASES": "eu=postgresql://x@h/db", "SMSGW_DATABASE_REGIONS": bad})
