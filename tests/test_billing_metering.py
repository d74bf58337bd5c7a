"""Metering exactly once (issue 17, item 3): the billable usage of a period (accepted segments) equals
a count over the message tables, whatever happened on the way.

* 16 clients send through a real ``smsgw serve`` (on an overage plan, so the quota path runs too),
  retrying every send with the same Idempotency-Key, while the server is SIGKILLed mid-run and a
  second one takes over: the meter equals the segments over ``recipients`` x ``messages``.
* Phone reports, redelivered, never change it.
* Periods that start or end in the middle of a UTC day split that day exactly: two adjoining
  periods add up to the whole, and a send falls in the period of its accepted time.
"""

from __future__ import annotations

import datetime as dt
import itertools
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from addons.billing import metering
from tests.support.messaging import raw_device, sql, wait_until
from tests.support.phones import api_client, api_token
from tests.support.quotas import make_plan, subscribe
from tests.test_faults_usage import Served

_numbers = itertools.count(1)


def numbers(n: int) -> list[str]:
    return [f"+1415{3000000 + next(_numbers) % 6000000:07d}" for _ in range(n)]


def rows_segments(t, start=None, end=None) -> int:
    """Accepted segments counted over the message tables (a recipient costs its message's segments)."""
    where, params = "", ()
    if start is not None:
        where, params = "WHERE r.created_at >= %s AND r.created_at < %s", (start, end)
    return sql(t, "SELECT coalesce(sum(m.segments), 0) FROM recipients r JOIN messages m ON m.id = r.message_id "
                  + where, params)[0][0]


def whole(t) -> int:
    now = dt.datetime.now(dt.timezone.utc)
    return metering.period_usage(t, now - dt.timedelta(days=40), now + dt.timedelta(days=40))


@pytest.mark.fault
@pytest.mark.slow
def test_sixteen_clients_idempotent_retries_and_a_sigkill_are_metered_exactly_once(cli_env, platform,
                                                                                   live_server, make_tenant,
                                                                                   tmp_path):
    t = make_tenant("mkill")
    subscribe(platform, t, make_plan(platform, included=100_000, overage=900))
    token = api_token(t.slug, ["messages:send", "messages:read"])
    phone = raw_device(live_server, t.slug, tmp_path / "p")
    servers = [Served(cli_env)]
    stop = threading.Event()
    answered: dict[str, int] = {}  # Idempotency-Key -> the message id its (first) 202 named
    lock = threading.Lock()

    def session():
        return servers[-1].session(t.slug, token)

    def sender(i):
        k = 0
        while not stop.is_set():
            key = str(uuid.uuid4())
            body = {"to": numbers(1 + (k % 3 == 0)), "text": "z" * (170 if k % 2 else 40)}
            ids = set()
            for attempt in range(3):  # the same request again, as a client whose answer was lost retries
                try:
                    r = session().post(servers[-1].url("/api/v1/messages"), json=body, timeout=10,
                                       headers={"Idempotency-Key": key})
                except requests.RequestException:
                    time.sleep(0.2)  # the server is gone: retry on the one that takes over
                    continue
                if r.status_code == 202:
                    ids.add(r.json()["id"])
                elif r.status_code != 409:  # 409: the first attempt is still in flight
                    raise AssertionError(r.text)
            assert len(ids) <= 1, "one Idempotency-Key stored two messages"
            if ids:
                with lock:
                    answered[key] = ids.pop()
            k += 1

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(sender, i) for i in range(16)]
        deadline = time.monotonic() + 40
        while len(answered) < 150 and time.monotonic() < deadline:
            time.sleep(0.05)
        servers[0].proc.send_signal(signal.SIGKILL)  # mid-run: requests and transactions in flight
        servers[0].proc.wait(10)
        servers.append(Served(cli_env))  # the clients retry there
        more = len(answered) + 60
        while len(answered) < more and time.monotonic() < deadline + 30:
            time.sleep(0.05)
        stop.set()
        for f in futures:
            f.result(60)
    servers[1].proc.send_signal(signal.SIGINT)
    servers[1].proc.wait(60)
    assert len(answered) >= 210, "too few sends were answered"

    # PostgreSQL aborts the killed process's open transactions once it sees their connections close.
    readings = [rows_segments(t)]
    wait_until(lambda: readings.append(rows_segments(t)) or readings[-1] == readings[-2], timeout=30, interval=0.5,
               what="the killed server's transactions to end")
    stored = sql(t, "SELECT count(*) FROM messages")[0][0]
    assert stored >= len(set(answered.values()))  # every answered send is stored (some cut off unanswered too)
    assert whole(t) == rows_segments(t) > 0

    # Phone reports, delivered twice (a redelivery), change the state and never the meter.
    before = whole(t)
    work = phone.fetch(limit=20)
    assert work
    for state in ("sent", "delivered", "delivered"):
        r = phone.report(*[{"message_id": x["id"], "state": state} for x in work])
        assert r.status_code == 200, r.text
    assert sql(t, "SELECT count(*) FROM recipient_events WHERE to_state = 'delivered'")[0][0] == len(work)
    assert whole(t) == before == rows_segments(t)


def test_periods_that_start_mid_day_split_it_exactly(live_server, make_tenant):
    """A period starting at a time of day counts from that moment, not from the day's midnight: the
    part of the day before it belongs to the period before (the daily aggregate alone cannot say)."""
    t = make_tenant("mday")
    c = api_client(live_server, t.slug)
    assert c.post("/api/v1/messages", json={"to": numbers(3), "text": "first"}).status_code == 202
    time.sleep(0.05)
    split = dt.datetime.now(dt.timezone.utc)
    time.sleep(0.05)
    assert c.post("/api/v1/messages", json={"to": numbers(2), "text": "y" * 200}).status_code == 202  # 2 segments
    far_past, far_future = split - dt.timedelta(days=40), split + dt.timedelta(days=40)
    assert metering.period_usage(t, split, far_future) == 4 == rows_segments(t, split, far_future)
    assert metering.period_usage(t, far_past, split) == 3
    assert metering.period_usage(t, far_past, far_future) == 7
    # Both ends inside the same day, and a period that ended (a partial last day) read from the rows.
    assert metering.period_usage(t, split - dt.timedelta(milliseconds=20), split) == 0
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(milliseconds=1)
    assert metering.period_usage(t, split, later) == 4
    # Whole UTC days come from the aggregates: today from its midnight.
    midnight = split.replace(hour=0, minute=0, second=0, microsecond=0)
    assert metering.period_usage(t, midnight, midnight + dt.timedelta(days=1)) == 7
    assert metering.period_usage(t, far_future, far_past) == 0  # an empty range
