"""core.groupcommit: requests that arrive together share a transaction, and nothing else is shared.

Against the real database, in real tenants: what is grouped, that a refusal or a failure of
one item leaves the others' work intact and written exactly once, that tenants never share
a transaction, and that at most ``concurrency`` transactions of a kind run per tenant (with
``stagger``, a second only beside a slow one).
"""

from __future__ import annotations

import asyncio
import threading
import time

from core.db import app_db
from core.groupcommit import GroupCommit
from core.web.problem import Problem
from tests.support.messaging import sql


class Overlap:
    """How many threads were inside at once, at most."""

    def __init__(self):
        self.running = self.peak = 0
        self.lock = threading.Lock()

    def __enter__(self):
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)

    def __exit__(self, *exc):
        with self.lock:
            self.running -= 1


def txid_work(items):
    """Each item's transaction id and search path; refuses ``"no"`` alone."""
    txid, path = app_db.execute_sql("SELECT txid_current(), current_setting('search_path')").fetchone()
    return [Problem(422, "refused", "no") if item == "no" else (item, txid, path) for item in items]


def suppress_work(items):
    """Writes one suppression row per item (a duplicate phone fails the whole statement)."""
    for phone in items:
        app_db.execute_sql("INSERT INTO suppressions (phone, source) VALUES (%s, 'test')", (phone,))
    return [f"stored {phone}" for phone in items]


def test_requests_arriving_together_share_a_transaction_and_a_lone_one_waits_for_nothing(platform, make_tenant):
    t = make_tenant("gc")
    group = GroupCommit(txid_work, concurrency=2)

    async def scenario():
        alone = await group(t.ref, "alone")
        together = await asyncio.gather(*(group(t.ref, f"item-{i}") for i in range(10)))
        return alone, together

    alone, together = asyncio.run(scenario())
    assert alone[0] == "alone"
    assert [r[0] for r in together] == [f"item-{i}" for i in range(10)]  # each caller gets its own outcome
    sizes = {}
    for _, txid, _ in together:
        sizes[txid] = sizes.get(txid, 0) + 1
    # The first two start at once (two may run); the other eight wait and go together.
    assert sorted(sizes.values()) == [1, 1, 8]
    assert all(path == f'"{t.ref.schema_name}"' or path == t.ref.schema_name for _, _, path in together)


def test_a_refused_item_fails_alone_and_the_others_are_written(platform, make_tenant):
    t = make_tenant("gcref")
    group = GroupCommit(txid_work)

    async def scenario():
        return await asyncio.gather(*(group(t.ref, item) for item in ["a", "b", "no", "c", "d"]),
                                    return_exceptions=True)

    out = asyncio.run(scenario())
    assert isinstance(out[2], Problem) and out[2].status == 422
    assert [o[0] for i, o in enumerate(out) if i != 2] == ["a", "b", "c", "d"]


def test_a_group_whose_transaction_fails_is_retried_item_by_item_and_nothing_is_written_twice(platform,
                                                                                           make_tenant):
    """A duplicate phone fails its group's statement: the group is rolled back, each item runs again
    alone; the good ones are stored exactly once and only the bad one gets the error."""
    t = make_tenant("gcfail")
    sql(t, "INSERT INTO suppressions (phone, source) VALUES ('+14155550199', 'test')")
    group = GroupCommit(suppress_work, concurrency=1)
    phones = ["+14155550101", "+14155550102", "+14155550199", "+14155550103", "+14155550104"]

    async def scenario():
        return await asyncio.gather(*(group(t.ref, p) for p in phones), return_exceptions=True)

    out = asyncio.run(scenario())
    assert isinstance(out[2], Exception) and "duplicate key" in str(out[2])
    assert [o for i, o in enumerate(out) if i != 2] == [f"stored {p}" for i, p in enumerate(phones) if i != 2]
    rows = sql(t, "SELECT phone, count(*) FROM suppressions GROUP BY phone ORDER BY phone")
    assert rows == [(p, 1) for p in sorted(phones)]


def test_tenants_never_share_a_transaction(platform, make_tenant):
    a, b = make_tenant("gca"), make_tenant("gcb")
    group = GroupCommit(txid_work, concurrency=1)

    async def scenario():
        calls = [group(tenant.ref, f"{tenant.slug}:{i}") for i in range(6) for tenant in (a, b)]
        return await asyncio.gather(*calls)

    out = asyncio.run(scenario())
    txids_of = {a.slug: set(), b.slug: set()}
    for item, txid, path in out:
        slug = item.split(":")[0]
        tenant = a if slug == a.slug else b
        assert tenant.ref.schema_name in path, (item, path)  # each ran in its own tenant's schema
        txids_of[slug].add(txid)
    assert not txids_of[a.slug] & txids_of[b.slug]


def test_at_most_concurrency_transactions_run_at_once_per_tenant(platform, make_tenant):
    t = make_tenant("gcconc")
    meter = Overlap()

    def slow_work(items):
        with meter:
            time.sleep(0.05)
        return items

    group = GroupCommit(slow_work, concurrency=2, max_size=3)

    async def scenario():
        return await asyncio.gather(*(group(t.ref, i) for i in range(20)))

    assert asyncio.run(scenario()) == list(range(20))
    assert meter.peak == 2


def test_with_stagger_quick_transactions_run_one_at_a_time_in_larger_groups(platform, make_tenant):
    t = make_tenant("gcstag")
    meter = Overlap()

    def quick_work(items):
        with meter:
            txid = app_db.execute_sql("SELECT txid_current()").fetchone()[0]
        return [(item, txid) for item in items]

    group = GroupCommit(quick_work, concurrency=2, stagger=0.5)

    async def scenario():
        return await asyncio.gather(*(group(t.ref, i) for i in range(10)))

    together = asyncio.run(scenario())
    assert [item for item, _ in together] == list(range(10))
    sizes = {}
    for _, txid in together:
        sizes[txid] = sizes.get(txid, 0) + 1
    assert sorted(sizes.values()) == [1, 9]  # without stagger: [1, 1, 8]
    assert meter.peak == 1


def test_with_stagger_a_slow_transaction_gets_a_second_beside_it_after_the_stagger(platform, make_tenant):
    t = make_tenant("gcslow")
    meter, started = Overlap(), {}

    def work(items):
        started[items[0]] = time.monotonic()
        with meter:
            time.sleep(0.6 if items[0] == "slow" else 0.01)
        return items

    group = GroupCommit(work, concurrency=2, stagger=0.15)

    async def scenario():
        first = asyncio.ensure_future(group(t.ref, "slow"))
        await asyncio.sleep(0.02)
        second = await group(t.ref, "next")
        finished_second = time.monotonic()
        return await first, second, finished_second

    first, second, finished_second = asyncio.run(scenario())
    assert (first, second) == ("slow", "next")
    assert meter.peak == 2  # the second ran beside the slow one ...
    assert 0.14 <= started["next"] - started["slow"] < 0.4  # ... once it had run for the stagger
    assert finished_second - started["slow"] < 0.55  # not after the slow one


def test_with_stagger_what_waits_goes_as_soon_as_the_running_group_is_done(platform, make_tenant):
    t = make_tenant("gcdone")

    def work(items):
        time.sleep(0.05 if items[0] == "first" else 0)
        return items

    group = GroupCommit(work, concurrency=2, stagger=2.0)

    async def scenario():
        t0 = time.monotonic()
        first = asyncio.ensure_future(group(t.ref, "first"))
        await asyncio.sleep(0.01)
        second = await group(t.ref, "second")
        return await first, second, time.monotonic() - t0

    first, second, elapsed = asyncio.run(scenario())
    assert (first, second) == ("first", "second")
    assert elapsed < 1.0  # the 2 s timer was dropped when the first group finished


def test_a_group_commit_keeps_working_on_a_new_event_loop(platform, make_tenant):
    """A server restarted in the same process (as tests do) starts with nothing running or queued."""
    t = make_tenant("gcloop")
    group = GroupCommit(txid_work)
    for _ in range(3):
        assert asyncio.run(group(t.ref, "x"))[0] == "x"


def test_an_item_too_large_for_a_group_goes_alone(platform, make_tenant):
    t = make_tenant("gcsize")
    group = GroupCommit(txid_work, concurrency=1, max_size=10, size=len)

    async def scenario():
        return await asyncio.gather(group(t.ref, "x"), *(group(t.ref, s) for s in ["aaaa", "b" * 30, "cc", "dd"]))

    out = asyncio.run(scenario())
    txid = {item: tx for item, tx, _ in out}
    assert txid["b" * 30] not in (txid["aaaa"], txid["cc"], txid["dd"])  # too large: alone
    assert txid["aaaa"] != txid["x"]


def test_concurrent_sends_with_one_idempotency_key_store_one_message(live_server, make_tenant):
    """Retries of one request arriving together may land in the same group: one is stored, the others
    are told it is in flight (409) or get its answer; never a second message."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.support.messaging import row_counts
    from tests.support.phones import api_client

    t = make_tenant("gcidem")
    clients = [api_client(live_server, t.slug) for _ in range(8)]
    body = {"text": "Pay 10", "to": ["+14155550140"]}

    def send(i):
        r = clients[i % len(clients)].post("/api/v1/messages", json=body, headers={"Idempotency-Key": "pay-10"})
        return r.status_code, r.json()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, range(40)))
    accepted = [b for s, b in results if s == 202]
    assert {s for s, _ in results} <= {202, 409}
    assert accepted and all(b == accepted[0] for b in accepted)
    assert all(b["code"] == "idempotency-in-flight" for s, b in results if s == 409)
    assert row_counts(t)["messages"] == 1


def test_a_failure_at_commit_goes_to_every_caller_and_is_not_retried(platform, make_tenant):
    """COMMIT fails (a deferred unique check, as a lost connection would): a commit whose answer was
    lost may have happened, so nothing is done again; every caller of the group gets the error."""
    t = make_tenant("gccommit")
    sql(t, "CREATE TABLE gc_probe (x int UNIQUE DEFERRABLE INITIALLY DEFERRED)")
    calls = []

    def work(items):
        calls.append(list(items))
        for _ in items:
            app_db.execute_sql("INSERT INTO gc_probe VALUES (1)")  # checked only at COMMIT
        return items

    group = GroupCommit(work, concurrency=1)

    async def scenario():
        first = asyncio.ensure_future(group(t.ref, "first"))
        await asyncio.sleep(0)
        rest = [group(t.ref, f"r{i}") for i in range(4)]
        return await asyncio.gather(first, *rest, return_exceptions=True)

    out = asyncio.run(scenario())
    assert out[0] == "first"  # alone: one row, committed
    assert all(isinstance(o, Exception) and "duplicate key" in str(o) for o in out[1:]), out
    assert calls == [["first"], ["r0", "r1", "r2", "r3"]]  # the failed group was not run again
    assert sql(t, "SELECT count(*) FROM gc_probe") == [(1,)]


def test_the_retries_of_a_failed_group_stay_within_the_concurrency_limit(platform, make_tenant):
    t = make_tenant("gcretry")
    meter = Overlap()

    def work(items):
        with meter:
            time.sleep(0.01)
            if "bad" in items:
                raise ValueError("bad item")
            return items

    group = GroupCommit(work, concurrency=2)

    async def scenario():
        return await asyncio.gather(*(group(t.ref, "bad" if i == 7 else i) for i in range(30)),
                                    return_exceptions=True)

    out = asyncio.run(scenario())
    assert isinstance(out[7], ValueError)
    assert [o for i, o in enumerate(out) if i != 7] == [i for i in range(30) if i != 7]
    assert meter.peak <= 2


def test_work_that_answers_for_too_few_items_fails_its_callers_instead_of_leaving_one_waiting(platform,
                                                                                              make_tenant):
    t = make_tenant("gccount")
    group = GroupCommit(lambda items: items[:1], concurrency=1)

    async def scenario():
        first = asyncio.ensure_future(group(t.ref, "a"))
        await asyncio.sleep(0)
        return await asyncio.wait_for(asyncio.gather(first, group(t.ref, "b"), group(t.ref, "c"),
                                                     return_exceptions=True), 10)

    out = asyncio.run(scenario())
    assert out[0] == "a"
    # The group of two answered for one: it is rolled back and each is done alone.
    assert out[1:] == ["b", "c"]


def test_concurrent_sends_reusing_one_idempotency_key_with_different_bodies_store_one(live_server, make_tenant):
    """The same key with two bodies, all at once: one body is stored; requests with it are answered
    with it (or told it is in flight), requests with the other body are told the key is reused."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.support.messaging import row_counts
    from tests.support.phones import api_client

    t = make_tenant("gcreuse")
    clients = [api_client(live_server, t.slug) for _ in range(8)]
    bodies = [{"text": "Pay 10", "to": ["+14155550141"]}, {"text": "Pay 99", "to": ["+14155550141"]}]

    def send(i):
        r = clients[i % len(clients)].post("/api/v1/messages", json=bodies[i % 2],
                                           headers={"Idempotency-Key": "pay-once"})
        return i % 2, r.status_code, r.json()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(send, range(32)))
    stored = {b["text"] for _, s, b in results if s == 202}
    assert len(stored) == 1
    kept = 0 if stored == {"Pay 10"} else 1
    for which, status, body in results:
        if which == kept:
            assert status in (202, 409), (status, body)
        else:
            assert status in (409, 422), (status, body)
            assert status == 409 or body["code"] == "idempotency-key-reused"
    assert row_counts(t)["messages"] == 1


def test_with_overlap_commit_the_next_group_works_while_the_last_one_commits(platform, make_tenant):
    """``overlap_commit``: once a group's work is done and only its COMMIT is left, the next group
    starts at once, not after the stagger, and its work runs beside that COMMIT."""
    from tests.support.identity import admin_sql

    t = make_tenant("gcover")
    # A COMMIT that takes 0.6 s: a deferred constraint trigger that sleeps, on a table of the
    # workspace's schema the test makes as the administrator.
    admin_sql(platform, f"""
        CREATE TABLE {t.schema_name}.gc_slow_commit (n int);
        GRANT INSERT ON {t.schema_name}.gc_slow_commit TO {t.role_name};
        CREATE FUNCTION {t.schema_name}.gc_sleep() RETURNS trigger LANGUAGE plpgsql
            AS $$ BEGIN PERFORM pg_sleep(0.6); RETURN NULL; END $$;
        CREATE CONSTRAINT TRIGGER gc_sleep AFTER INSERT ON {t.schema_name}.gc_slow_commit
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {t.schema_name}.gc_sleep();
    """)
    times = {}

    def work(items):
        times[items[0]] = time.monotonic()
        if items[0] == "first":
            app_db.execute_sql("INSERT INTO gc_slow_commit VALUES (1)")
        return items

    async def scenario(group):
        first = asyncio.ensure_future(group(t.ref, "first"))
        await asyncio.sleep(0.05)  # the first is committing now
        second = await group(t.ref, "second")
        times["second done"] = time.monotonic()
        return await first, second, time.monotonic()

    group = GroupCommit(work, concurrency=2, stagger=5.0, overlap_commit=True)
    first, second, first_done = asyncio.run(scenario(group))
    assert (first, second) == ("first", "second")
    assert times["second"] - times["first"] < 0.3  # started during the first's 0.6 s COMMIT ...
    assert times["second done"] < first_done  # ... and answered before it

    # Without it the stagger holds the second back until the first is done.
    times.clear()
    group = GroupCommit(work, concurrency=2, stagger=5.0)
    asyncio.run(scenario(group))
    assert times["second"] - times["first"] >= 0.55
