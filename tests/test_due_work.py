"""Due work (core/due.py): timed work arms ``public.due_work``, the scheduler runs only what is due.

* Each path that creates work with a time arms its job in the same transaction: a scheduled send
  and a ``valid_until`` (messaging), a claim that can lapse (messaging), a webhook retry and a
  delivery's claim lease (webhooks), a phone that came online (devices).
* Only the workspace's own row, only through the SECURITY DEFINER function, earliest time wins.
* The repair pass re-creates an entry deleted by hand, and the work then runs.
* A worker process SIGKILLed in the middle of a run loses nothing; two worker processes never run
  one workspace's job at once (real ``smsgw worker`` processes, a row lock holds the run midway).
* Pooled connections that entered many schemas are closed when they come back.
"""

from __future__ import annotations

import datetime as dt
import signal
import threading
import time

import psycopg2
import pytest

from addons.devices import service as devices
from addons.messaging import lifecycle
from addons.webhooks import service as webhooks
from addons.webhooks.sender import Outcome
from core import due
from core.catalogue import utcnow
from core.db import FastPool, TenantRef, app_db, connection, tenant_transaction
from tests.support.devices import raw_device, submit, wait_until
from tests.support.phones import api_client
from tests.test_webhook_isolation import Worker


def entry(tenant, job) -> dt.datetime | None:
    with connection():
        row = app_db.execute_sql("SELECT due_at FROM public.due_work WHERE tenant_id = %s AND job = %s",
                                 (tenant.id, job)).fetchone()
    return row[0] if row else None


def delete_entries(tenant) -> None:
    with connection():
        app_db.execute_sql("DELETE FROM public.due_work WHERE tenant_id = %s", (tenant.id,))


def close(a: dt.datetime | None, b: dt.datetime, within: float = 2.0) -> bool:
    return a is not None and abs((a - b).total_seconds()) <= within


# -- the index and its function ---------------------------------------------------------------

def test_arm_keeps_the_earliest_time_for_the_own_workspace_only(platform, make_tenant):
    a, b = make_tenant("duea"), make_tenant("dueb")
    t0 = utcnow() + dt.timedelta(hours=1)
    with tenant_transaction(a.ref):
        due.arm("test.job", t0)
        due.arm("test.job", t0 + dt.timedelta(minutes=5))  # later: the earlier time stays
    assert entry(a, "test.job") == t0 and entry(b, "test.job") is None
    with tenant_transaction(a.ref):
        due.arm("test.job", t0 - dt.timedelta(minutes=5))  # earlier: it wins
    assert entry(a, "test.job") == t0 - dt.timedelta(minutes=5)
    with tenant_transaction(a.ref):
        due.disarm("test.job")
    assert entry(a, "test.job") is None


def test_a_tenant_cannot_write_the_index_or_arm_outside_its_transaction(platform, make_tenant):
    a, b = make_tenant("dueiso"), make_tenant("dueiso2")
    with pytest.raises(Exception, match="permission denied"):
        with tenant_transaction(a.ref) as db:
            db.execute_sql("INSERT INTO public.due_work (tenant_id, job, due_at) VALUES (%s, 'x', now())", (b.id,))
    with pytest.raises(Exception, match="permission denied"):
        with tenant_transaction(a.ref) as db:
            db.execute_sql("DELETE FROM public.due_work")
    with pytest.raises(Exception, match="permission denied|tenant transaction"):
        with connection():
            with app_db.atomic():  # the serving role itself, in no tenant
                due.arm("test.job", utcnow())
    assert entry(a, "test.job") is None and entry(b, "x") is None


# -- every path that creates timed work arms its job --------------------------------------------

def test_a_scheduled_send_arms_the_messaging_job_and_a_plain_send_does_not(platform, live_server, make_tenant):
    t = make_tenant("duesend")
    api = api_client(live_server, t.slug)
    submit(api, ["+14155550100"], "now")
    assert entry(t, lifecycle.JOB) is None  # nothing timed: nothing armed
    send_at = (utcnow() + dt.timedelta(hours=2)).replace(microsecond=0)
    submit(api, ["+14155550101"], "later", send_at=send_at.isoformat())
    assert entry(t, lifecycle.JOB) == send_at
    valid_until = (utcnow() + dt.timedelta(minutes=30)).replace(microsecond=0)
    submit(api, ["+14155550102"], "soon or never", valid_until=valid_until.isoformat())
    assert entry(t, lifecycle.JOB) == valid_until


def test_a_claim_arms_its_hand_back(platform, live_server, make_tenant):
    t = make_tenant("dueclaim")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api=api)
    delete_entries(t)  # (the phone's pairing contact armed the offline job)
    submit(api, ["+14155550103"], "claim me")
    assert entry(t, lifecycle.JOB) is None
    dev = live_server.client(t.slug)
    dev.headers["Authorization"] = f"Bearer {token}"
    r = dev.get("/api/device/v1/messages", params={"wait": 0, "limit": 10})
    assert r.status_code == 200 and len(r.json()["messages"]) == 1, r.text
    assert close(entry(t, lifecycle.JOB), utcnow() + dt.timedelta(seconds=600))  # the claim timeout
    with tenant_transaction(t.ref):
        assert close(lifecycle.next_due(), utcnow() + dt.timedelta(seconds=600))


def set_entry(tenant, job, when: dt.datetime) -> None:
    with connection():
        app_db.execute_sql("INSERT INTO public.due_work (tenant_id, job, due_at) VALUES (%s, %s, %s) "
                           "ON CONFLICT (tenant_id, job) DO UPDATE SET due_at = excluded.due_at", (tenant.id, job, when))


def claiming_phone(live_server, tenant):
    api = api_client(live_server, tenant.slug)
    _device_id, token = raw_device(live_server, tenant.slug, api=api)
    dev = live_server.client(tenant.slug)
    dev.headers["Authorization"] = f"Bearer {token}"

    def claim_one(text: str):
        submit(api, ["+14155550104"], text)
        r = dev.get("/api/device/v1/messages", params={"wait": 0, "limit": 10}, timeout=30)
        assert r.status_code == 200 and len(r.json()["messages"]) == 1, r.text

    return claim_one


def test_a_claim_arms_only_when_nothing_as_early_is_armed(platform, live_server, make_tenant):
    """A claim looks at what its workspace has armed (its own view of the index) and arms only when
    nothing is armed early enough: an earlier time stays, a later one or none is replaced."""
    t = make_tenant("dueonly")
    claim_one = claiming_phone(live_server, t)
    soon = utcnow().replace(microsecond=0) + dt.timedelta(seconds=60)
    set_entry(t, lifecycle.JOB, soon)
    claim_one("covered by the earlier time")
    assert entry(t, lifecycle.JOB) == soon
    set_entry(t, lifecycle.JOB, soon + dt.timedelta(hours=2))
    claim_one("the armed time is too late")
    assert close(entry(t, lifecycle.JOB), utcnow() + dt.timedelta(seconds=600))
    delete_entries(t)  # what a run that found nothing left does
    claim_one("nothing armed")
    assert close(entry(t, lifecycle.JOB), utcnow() + dt.timedelta(seconds=600))


def test_a_claim_during_a_run_arms_after_the_run_not_before(platform, live_server, make_tenant, test_env):
    """A run holds the job's lock exclusively while it reads the workspace's work and re-arms. A
    claim that comes meanwhile waits for the run before it looks at what is armed: had it looked
    first, it would have seen the run's old row (which the run then deletes, not knowing of the
    claim) and armed nothing, and its hand-back would wait for the hourly repair pass."""
    t = make_tenant("duerace")
    claim_one = claiming_phone(live_server, t)
    set_entry(t, lifecycle.JOB, utcnow() + dt.timedelta(seconds=60))
    run = psycopg2.connect(test_env["DATABASE_URL"])
    try:
        cur = run.cursor()  # a run of the job, as core.due does it: lock, look, re-arm (here: nothing left)
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", (lifecycle.JOB, due.tenant_lock_key(t)))
        cur.execute("DELETE FROM public.due_work WHERE tenant_id = %s AND job = %s", (t.id, lifecycle.JOB))
        claimer = threading.Thread(target=claim_one, args=("claimed while the sweep runs",))
        claimer.start()
        time.sleep(1.0)
        assert claimer.is_alive(), "the claim did not wait for the run's lock"
        run.commit()
        claimer.join(30)
        assert not claimer.is_alive()
    finally:
        run.close()
    assert close(entry(t, lifecycle.JOB), utcnow() + dt.timedelta(seconds=600))


def test_a_workspace_reads_only_its_own_armed_times_and_writes_none(platform, make_tenant):
    a, b = make_tenant("duevwa"), make_tenant("duevwb")
    set_entry(a, "test.mine", utcnow() + dt.timedelta(hours=1))
    set_entry(b, "test.theirs", utcnow() + dt.timedelta(hours=1))
    prefix = platform.settings.role_prefix
    with tenant_transaction(a.ref) as db:
        assert [r[0] for r in db.execute_sql(f"SELECT job FROM {prefix}_due.armed")] == ["test.mine"]
    for statement in (f"INSERT INTO {prefix}_due.armed (job, due_at) VALUES ('x', now())",
                      f"UPDATE {prefix}_due.armed SET due_at = now()", f"DELETE FROM {prefix}_due.armed"):
        with pytest.raises(Exception, match="permission denied"):
            with tenant_transaction(a.ref) as db:
                db.execute_sql(statement)
    assert entry(a, "test.mine") is not None and entry(b, "test.theirs") is not None


def test_a_phone_coming_online_arms_the_offline_job(platform, live_server, make_tenant):
    t = make_tenant("dueonline")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api=api)
    with tenant_transaction(t.ref) as db:
        db.execute_sql("UPDATE devices SET online = false")
    delete_entries(t)
    dev = live_server.client(t.slug)
    dev.headers["Authorization"] = f"Bearer {token}"
    assert dev.get("/api/device/v1/messages", params={"wait": 0}).status_code == 200
    assert close(entry(t, devices.OFFLINE_JOB), utcnow() + devices.OFFLINE_AFTER)


def _delivery(tenant) -> int:
    """An endpoint, an event and its delivery, as recording an event makes them."""
    with tenant_transaction(tenant.ref) as db:
        db.execute_sql("INSERT INTO webhook_endpoints (url, events, secret_enc) VALUES "
                       "('https://receiver.example/hook', '{system:ping}', %s)",
                       (platform_cipher().encrypt("whsec_test"),))
        [delivery_id] = webhooks.record("system:ping", {})
    return delivery_id


def platform_cipher():
    from addons.webhooks.service import _cipher

    return _cipher()


def test_a_webhook_trigger_its_claim_and_its_retry_arm_the_webhooks_job(platform, make_tenant):
    platform.setup_tasks()
    t = make_tenant("duehook")
    before = utcnow()
    delivery_id = _delivery(t)
    # Recorded: the trigger goes through the queue; the job looks a little later in case it was lost.
    assert close(entry(t, webhooks.JOB), before + webhooks.BACKSTOP)
    delete_entries(t)
    with tenant_transaction(t.ref):
        job = webhooks.claim(delivery_id, lease=120)
    assert job is not None
    assert close(entry(t, webhooks.JOB), utcnow() + dt.timedelta(seconds=120))  # the claim's lapse
    delete_entries(t)
    with tenant_transaction(t.ref):
        webhooks.record_outcome(job, Outcome(status=500, duration_ms=3))
        with connection():
            retry_at = app_db.execute_sql("SELECT next_attempt_at FROM webhook_deliveries WHERE id = %s",
                                          (delivery_id,)).fetchone()[0]
    assert retry_at > utcnow() and entry(t, webhooks.JOB) == retry_at
    with tenant_transaction(t.ref):
        assert webhooks.next_due() == retry_at


# -- the scheduler, the repair pass -------------------------------------------------------------

def test_the_repair_pass_restores_a_deleted_entry_and_the_work_then_runs(platform, live_server, make_tenant):
    """An entry lost (deleted by hand): the repair pass re-arms it from the workspace's own tables,
    and the scheduler then runs the job: the message past its valid_until is expired."""
    t = make_tenant("duerepair")
    api = api_client(live_server, t.slug)
    valid_until = utcnow() + dt.timedelta(seconds=2)
    mid = submit(api, ["+14155550104"], "short-lived", valid_until=valid_until.isoformat())["id"]
    assert entry(t, lifecycle.JOB) is not None
    delete_entries(t)
    time.sleep(2.2)
    scheduler = due.DueScheduler(platform, platform.setup_tasks().due_jobs.values())
    scheduler.step()  # nothing is in the index: nothing runs
    time.sleep(0.5)
    assert api.get(f"/api/v1/messages/{mid}").json()["state"] == "pending"

    _last, visited, armed = due.repair(list(scheduler.jobs.values()), after_id=t.id - 1, limit=1)
    assert visited == 1 and armed >= 1
    assert close(entry(t, lifecycle.JOB), valid_until, within=0.01)
    scheduler.start()
    try:
        wait_until(lambda: api.get(f"/api/v1/messages/{mid}").json()["state"] == "expired", timeout=10,
                   message="the repaired entry ran the sweep")
        wait_until(lambda: entry(t, lifecycle.JOB) is None, timeout=5, message="the entry cleared")
    finally:
        scheduler.stop()


def test_the_repair_pass_goes_a_few_workspaces_per_transaction_and_misses_none(platform, make_tenant):
    """A slice is cut into transactions of ``chunk`` workspaces (each transaction holds locks on the
    relations of every workspace it entered until it ends: one over 1,400 workspaces overflowed
    PostgreSQL's lock table in bench_idle); the chunks continue where the last one stopped."""
    made = [make_tenant("duechunk") for _ in range(5)]
    for t in made:
        with tenant_transaction(t.ref) as db:
            db.execute_sql("INSERT INTO idempotency_keys (key, request_hash, status, response) "
                           "VALUES ('k', 'h', 202, '{}')")
        delete_entries(t)
    jobs = [j for j in platform.setup_tasks().due_jobs.values() if j.name == lifecycle.JOB]
    first = min(t.id for t in made)
    last, visited, armed = due.repair(jobs, after_id=first - 1, limit=5, chunk=2)
    assert (visited, armed) == (5, 5) and last == max(t.id for t in made)
    assert all(entry(t, lifecycle.JOB) is not None for t in made)


def test_the_repair_pass_enters_only_workspaces_changed_since_their_last_check(platform, make_tenant):
    """Issue 25: an idle workspace costs the safety net nothing (not entered: no transaction in its
    schema, no catalogue cache), and each kind of change makes the next pass look again: rows
    written in its schema that armed nothing, an entry deleted by hand."""
    t = make_tenant("dueseen")
    # One job with nothing armed at first (every workspace's billing renewal is armed from its start).
    jobs = [j for j in platform.setup_tasks().due_jobs.values() if j.name == lifecycle.JOB]

    def check():
        _last, entered, armed = due.repair(jobs, after_id=t.id - 1, limit=1)
        return entered, armed

    # The statistics learn of the workspace's creation within a second (a backend flushes its
    # counts when idle): a change after the first check would rightly make the second look again.
    wait_until(lambda: (due.write_counters() or {}).get(t.schema_name, 0) > 0, timeout=30,
               message="the workspace's creation in the statistics")
    assert check()[0] == 1  # never checked
    assert check() == (0, 0)  # nothing changed since: skipped
    assert entry(t, lifecycle.JOB) is None

    written = due.write_counters()[t.schema_name]
    with tenant_transaction(t.ref) as db:  # work with a time that armed nothing (a lost entry)
        db.execute_sql("INSERT INTO idempotency_keys (key, request_hash, status, response) "
                       "VALUES ('k', 'h', 202, '{}')")
    wait_until(lambda: due.write_counters()[t.schema_name] != written, timeout=30,
               message="the write in the statistics")
    assert check() == (1, 1) and entry(t, lifecycle.JOB) is not None
    assert check() == (0, 0)

    delete_entries(t)  # its entry lost
    assert check() == (1, 1) and entry(t, lifecycle.JOB) is not None
    assert check() == (0, 0)


def test_a_run_that_raises_keeps_its_entry_and_is_tried_again_later(platform, make_tenant):
    t = make_tenant("duefail")
    calls = []

    def boom(tenant):
        calls.append(tenant.slug)
        raise RuntimeError("the job failed")

    job = due.DueJob("test.boom", boom, lambda tenant: None)
    with tenant_transaction(t.ref):
        due.arm(job.name, utcnow() - dt.timedelta(seconds=1))
    scheduler = due.DueScheduler(platform, [job])
    scheduler.start()
    try:
        wait_until(lambda: calls and entry(t, job.name) and entry(t, job.name) > utcnow(), timeout=10,
                   message="the failed run postponed")
    finally:
        scheduler.stop()
    assert calls == [t.slug]
    assert entry(t, job.name) > utcnow() + dt.timedelta(seconds=due.RETRY_FAILED - 5)


# -- worker processes: killed mid-run, two at once ------------------------------------------------

def _silent_phone(platform, live_server, make_tenant, prefix):
    """A workspace whose phone is online, seen 5 minutes ago, its offline job due now."""
    t = make_tenant(prefix)
    api = api_client(live_server, t.slug)
    device_id, _token = raw_device(live_server, t.slug, api=api)
    with tenant_transaction(t.ref) as db:
        db.execute_sql("UPDATE devices SET online = true, last_seen_at = now() - interval '5 minutes'")
    return t, device_id


def _hold_device(admin_url, t, device_id):
    """An administrator's transaction that locks the phone's row: a run of the offline job waits on it."""
    conn = psycopg2.connect(admin_url)
    cur = conn.cursor()
    cur.execute(f"SELECT 1 FROM {t.schema_name}.devices WHERE id = %s FOR UPDATE", (device_id,))
    return conn


def _runs_waiting(admin_url, t) -> int:
    """Backends now running the offline job's UPDATE for this workspace (waiting on the lock)."""
    conn = psycopg2.connect(admin_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted "
                        "WHERE a.query LIKE 'UPDATE devices SET online = false%%' AND a.pid <> pg_backend_pid()")
            return cur.fetchone()[0]
    finally:
        conn.close()


def _online(t) -> bool:
    with tenant_transaction(t.ref) as db:
        return db.execute_sql("SELECT online FROM devices").fetchone()[0]


def test_a_worker_killed_between_due_and_done_loses_nothing(platform, live_server, make_tenant, cli_env):
    t, device_id = _silent_phone(platform, live_server, make_tenant, "duekill")
    hold = _hold_device(platform.admin_url, t, device_id)
    doomed = Worker(cli_env)
    try:
        with tenant_transaction(t.ref):
            due.arm(devices.OFFLINE_JOB, utcnow())
        wait_until(lambda: _runs_waiting(platform.admin_url, t) == 1, timeout=15, message="the run midway")
        doomed.proc.send_signal(signal.SIGKILL)
        doomed.proc.wait(10)
    finally:
        hold.rollback()
        hold.close()
    assert entry(t, devices.OFFLINE_JOB) is not None and _online(t)  # the run died: its entry stays
    after = Worker(cli_env)
    try:
        wait_until(lambda: not _online(t), timeout=15, message="the next worker ran the job")
        wait_until(lambda: entry(t, devices.OFFLINE_JOB) is None, timeout=5, message="the entry cleared")
    finally:
        after.stop()


def test_two_workers_never_run_one_workspaces_job_at_once(platform, live_server, make_tenant, cli_env):
    t, device_id = _silent_phone(platform, live_server, make_tenant, "duetwo")
    hold = _hold_device(platform.admin_url, t, device_id)
    workers = [Worker(cli_env), Worker(cli_env)]
    try:
        with tenant_transaction(t.ref):
            due.arm(devices.OFFLINE_JOB, utcnow())
        wait_until(lambda: _runs_waiting(platform.admin_url, t) == 1, timeout=15, message="one run midway")
        seen = []
        for _ in range(30):  # 3 s: both schedulers look again every 0.25 s while the entry is due
            seen.append(_runs_waiting(platform.admin_url, t))
            time.sleep(0.1)
        assert max(seen) == 1, seen
        hold.rollback()
        wait_until(lambda: not _online(t), timeout=10, message="the run finished")
        wait_until(lambda: entry(t, devices.OFFLINE_JOB) is None, timeout=5, message="the entry cleared")
    finally:
        hold.close()
        for w in workers:
            w.stop()
    with connection():
        offline_events = app_db.execute_sql(
            "SELECT count(*) FROM public.audit_event WHERE tenant_id = %s AND action = 'device.offline'",
            (t.id,)).fetchone()[0]
    assert offline_events == 1


# -- connections that visited many schemas --------------------------------------------------------

def test_a_connection_that_entered_many_schemas_is_closed_when_it_comes_back(platform, make_tenant):
    tenants = [make_tenant("duepool") for _ in range(4)]
    pool = FastPool(platform.app_url, max_connections=2, stale_timeout=300, schemas_per_connection=3)
    try:
        def backend_after(visit) -> tuple[int, int]:
            with connection(pool):
                for t in visit:
                    with tenant_transaction(TenantRef(t.id, t.slug, t.schema_name, t.role_name), db=pool):
                        pass
                first = pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
            with connection(pool):
                second = pool.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
            return first, second

        first, second = backend_after(tenants[:3])
        assert first == second  # three schemas: kept
        first, second = backend_after(tenants[3:])
        assert first != second  # the fourth: closed on its way back, a fresh backend next time
    finally:
        pool.close_all()


def test_the_write_counters_match_the_statistics_views_and_their_backend_does_not_stay(platform, make_tenant):
    """Issue 25 item 4: reading every workspace's counters visits every relation; the backend that
    did it is closed, not pooled (it held 26 MB at 3,000 workspaces), and the sums are those of
    pg_stat_user_tables."""
    t = make_tenant("duecount")
    with tenant_transaction(t.ref) as db:
        db.execute_sql("INSERT INTO idempotency_keys (key, request_hash, status, response) VALUES ('k', 'h', 202, '{}')")
    expected = "SELECT sum(n_tup_ins + n_tup_upd + n_tup_del)::bigint FROM pg_stat_user_tables WHERE schemaname = %s"
    wait_until(lambda: (due.write_counters() or {}).get(t.schema_name, 0) > 0, timeout=30,
               message="the write in the statistics")
    with connection():
        counters = due.write_counters()
        reader = app_db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
    with connection():
        assert counters[t.schema_name] == app_db.execute_sql(expected, (t.schema_name,)).fetchone()[0]

    def alive(pid):
        with connection():
            return app_db.execute_sql("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]
    wait_until(lambda: alive(reader) == 0, timeout=10, message="the reading backend closed")


# -- the worker's tenant lookups come from the cache that NOTIFY keeps fresh ----------------------

def test_a_worker_learns_of_a_suspension_through_notify(platform, make_tenant, cli_env):
    """The worker looks tenants up in the request path's cache (no catalogue query per run); a
    suspension made by another process reaches it through NOTIFY at once, not after the TTL."""
    t = make_tenant("duenotify")
    worker = Worker(cli_env)
    try:
        with tenant_transaction(t.ref):
            due.arm(devices.OFFLINE_JOB, utcnow())
        wait_until(lambda: entry(t, devices.OFFLINE_JOB) is None, timeout=15, message="the first run (tenant cached)")
        platform.tenants.suspend(t.slug)
        with tenant_transaction(t.ref):
            due.arm(devices.OFFLINE_JOB, utcnow())
        # Suspended: the run is skipped and its entry looked at again later, not run and cleared.
        wait_until(lambda: (entry(t, devices.OFFLINE_JOB) or utcnow()) > utcnow() + dt.timedelta(seconds=200),
                   timeout=15, message="the run skipped for the suspended workspace")
    finally:
        worker.stop()
        platform.tenants.resume(t.slug)
