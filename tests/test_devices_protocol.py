"""The device protocol (/api/device/v1/...) against the real server and database.

Pairing and its refusals, device tokens, the long poll that is woken (not polled),
exclusive claims, reports (validation, order, idempotency), inbound deduplication,
heartbeat and settings, and what a device of another workspace can do (nothing).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time

import pytest
import tornado.httpserver
import tornado.netutil

from core import tokenformat
from core.db import app_db, connection
from tests.support.devices import (LongPoll, device_client, fetch, fresh_ip, history, new_code, phone, raw_device,
                                   register, sql, submit, tenant_db, wait_until, waiting_on)
from tests.support.phones import api_client
from tests.support.problems import problem
from tests.support.server import HostClient


def fields(body: dict) -> set:
    return {e["field"] for e in body.get("errors", [])}


def states(tenant, ids) -> dict:
    rows = sql(tenant, "SELECT id, state FROM recipients WHERE id = ANY(%s)", (list(ids),))
    return dict(rows)


def no_limits(api, device_id):
    r = api.patch(f"/api/v1/devices/{device_id}", json={"settings": {"limits": {"per_minute": 0}}})
    assert r.status_code == 200, r.text[:300]


# -- pairing ------------------------------------------------------------------------------


def test_pairing_gives_a_prefixed_token_that_is_stored_only_as_a_hash(live_server, make_tenant):
    t = make_tenant("pair")
    api = api_client(live_server, t.slug)
    code = new_code(api)
    assert len(code) == 8
    r = register(live_server, t.slug, code, uid="phone-one", model="Pixel 7", name="Front desk")
    assert r.status_code == 201, r.text
    assert r.headers["Cache-Control"] == "no-store"
    body = r.json()
    token = body["token"]
    assert token.startswith(f"sgd_{t.slug}_")
    assert tokenformat.parse(token) == ("sgd", t.slug)
    assert body["name"] == "Front desk"
    assert body["settings"]["limits"]["per_minute"] == 30 and body["settings_version"] >= 1

    # The database holds a digest, never the token or its secret part; nor the pairing code.
    rows = sql(t, "SELECT row_to_json(d)::text, token_hash FROM devices d")
    assert len(rows) == 1
    row_text, token_hash = rows[0]
    secret_part = token.rsplit("_", 1)[1]
    assert token not in row_text and secret_part not in row_text and secret_part[:20] not in row_text
    assert token_hash == hashlib.sha256(token.encode()).hexdigest()
    codes = sql(t, "SELECT row_to_json(p)::text FROM pairing_codes p")
    assert codes and all(code not in c[0] for c in codes)

    # The token works on the device protocol ...
    dev = device_client(live_server, t.slug, token)
    r = fetch(dev)
    assert r.status_code == 200 and r.json()["messages"] == []
    # ... and a token one character off is refused before any lookup (checksum).
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert problem(device_client(live_server, t.slug, forged).get("/api/device/v1/settings"), 401,
                   "invalid-token")


def test_pairing_refusals_are_clear(live_server, make_tenant):
    t = make_tenant("pairno")
    api = api_client(live_server, t.slug)
    ip = fresh_ip()

    # A wrong code of the right shape, and malformed codes.
    body = problem(register(live_server, t.slug, "ABCDEFGH", ip=ip), 400, "invalid-code")
    assert "not valid" in body["detail"]
    problem(register(live_server, t.slug, "SHORT", ip=ip), 400, "invalid-code")
    problem(register(live_server, t.slug, None, ip=ip), 400, "invalid-code")
    problem(register(live_server, t.slug, "' OR 1=1", ip=ip), 400, "invalid-code")

    # A used code.
    code = new_code(api)
    assert register(live_server, t.slug, code, ip=ip).status_code == 201
    body = problem(register(live_server, t.slug, code, uid="another-phone", ip=ip), 400, "code-used")
    assert "already used" in body["detail"]

    # An expired code (fixture data: its expiry moved into the past).
    code = new_code(api)
    n = sql(t, "UPDATE pairing_codes SET expires_at = now() - interval '1 second' WHERE code_hash = %s",
            (hashlib.sha256(code.encode()).hexdigest(),), fetch=False)
    assert n == 1
    body = problem(register(live_server, t.slug, code, ip=ip), 400, "code-expired")
    assert "expired" in body["detail"]
    # Codes are case-insensitive and trimmed, as typed on a phone; a still-valid one works.
    code = new_code(api)
    assert register(live_server, t.slug, f"  {code.lower()} ", ip=ip).status_code == 201

    # A device without its identity is refused without spending the code.
    code = new_code(api)
    problem(register(live_server, t.slug, code, uid="", ip=ip), 422, "validation-failed")
    problem(register(live_server, t.slug, code, uid="x" * 10_000, ip=ip), 422, "validation-failed")
    assert register(live_server, t.slug, code, ip=ip).status_code == 201

    # Only three devices were created, whatever was tried.
    assert sql(t, "SELECT count(*) FROM devices")[0][0] == 3


def test_too_many_wrong_pairing_codes_are_throttled(live_server, make_tenant):
    t = make_tenant("pairth")
    api = api_client(live_server, t.slug)
    ip = fresh_ip()
    statuses = []
    try:
        for _ in range(101):
            r = register(live_server, t.slug, "WRONGCDE", ip=ip)
            statuses.append(r.status_code)
            if r.status_code == 429:
                break
        assert statuses[0] == 400
        assert statuses[-1] == 429, statuses[-5:]
        body = problem(r, 429, "too-many-attempts")
        assert int(r.headers["Retry-After"]) > 0
        assert "Too many wrong pairing codes" in body["detail"]
        # While throttled even a right code is refused, and nothing gets paired.
        problem(register(live_server, t.slug, new_code(api), ip=ip), 429, "too-many-attempts")
        assert sql(t, "SELECT count(*) FROM devices")[0][0] == 0
    finally:  # leave no failure counts behind for other tests sharing this address
        with connection():
            app_db.execute_sql("DELETE FROM public.login_failure WHERE key IN (%s, %s)",
                               (f"pair:{t.slug}", f"ip:{ip}"))


def test_device_rotates_its_own_token(live_server, make_tenant):
    t = make_tenant("rot")
    _, old = raw_device(live_server, t.slug)
    dev = device_client(live_server, t.slug, old)
    r = dev.post("/api/device/v1/token", json={})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    new = r.json()["token"]
    assert new != old and new.startswith(f"sgd_{t.slug}_")
    problem(fetch(dev), 401, "invalid-token")
    problem(dev.post("/api/device/v1/token", json={}), 401, "invalid-token")
    assert fetch(device_client(live_server, t.slug, new)).status_code == 200


# -- the long poll ---------------------------------------------------------------------------


def test_a_waiting_phone_is_woken_within_milliseconds(platform, live_server, make_tenant):
    t = make_tenant("wake")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    dev = device_client(live_server, t.slug, token)
    assert fetch(dev).json()["messages"] == []  # the first contact: the phone is online now

    wakes_before = platform.wakeups.wakes
    poll = LongPoll(dev, wait=30).start()
    wait_until(lambda: waiting_on(platform, t.slug, device_id), 5, message="the long poll to park")
    assert platform.wakeups.waiting > 0
    time.sleep(0.3)
    assert not poll.done  # it really waits (30 s), it does not return empty

    t0 = time.monotonic()
    sent = submit(api, [phone(1)], "wake up")
    poll.join(5)
    assert poll.finished >= t0
    latency = poll.finished - t0
    assert poll.response.status_code == 200, poll.response.text
    messages = poll.response.json()["messages"]
    assert [(m["message_id"], m["to"], m["text"]) for m in messages] == [(sent["id"], phone(1), "wake up")]
    assert latency < 1.0, f"the phone got the message after {latency:.3f} s"
    assert platform.wakeups.wakes > wakes_before
    wait_until(lambda: not waiting_on(platform, t.slug, device_id), 2, message="the waiter to be released")


class PlainServer:
    """The test session's application behind Tornado's own HTTPServer, on the session server's loop:
    no detaching delegate, so every handler keeps its request (``detach`` returns ``None``)."""

    def __init__(self, live_server):
        self.platform, self.loop = live_server.platform, live_server.loop

        async def start():
            sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
            server = tornado.httpserver.HTTPServer(live_server.app, xheaders=True)
            server.add_sockets(sockets)
            return server, sockets[0].getsockname()[1]

        self.server, self.port = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.url = f"http://127.0.0.1:{self.port}"

    def client(self, slug):
        return HostClient(self, slug)

    def stop(self):
        async def stop():
            self.server.stop()
            await self.server.close_all_connections()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)


def test_without_the_detaching_delegate_a_long_poll_waits_in_its_handler_the_same_way(platform, live_server,
                                                                                      make_tenant):
    """The one long-poll path also runs through a handler that keeps its request: woken by work,
    superseded by the device's newer poll, and released when answered."""
    t = make_tenant("plainpoll")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    plain = PlainServer(live_server)
    try:
        dev = device_client(plain, t.slug, token)
        assert fetch(dev).json()["messages"] == []  # wait=0: one look, answered at once
        poll = LongPoll(dev, wait=30).start()
        wait_until(lambda: waiting_on(platform, t.slug, device_id), 5, message="the poll to wait in its handler")
        sent = submit(api, [phone(3)], "no delegate")
        poll.join(5)
        assert [m["message_id"] for m in poll.response.json()["messages"]] == [sent["id"]]
        wait_until(lambda: not waiting_on(platform, t.slug, device_id), 2, message="the waiter to be released")

        older = LongPoll(dev, wait=30).start()
        wait_until(lambda: waiting_on(platform, t.slug, device_id), 5, message="the older poll to wait")
        newer = LongPoll(dev, wait=30).start()
        older.join(5)  # answered at once with nothing to do, as a parked poll is
        assert older.response.status_code == 200 and older.response.json()["messages"] == []
        wait_until(lambda: waiting_on(platform, t.slug, device_id), 5, message="the newer poll to wait")
        sent = submit(api, [phone(4)], "to the newer poll")
        newer.join(5)
        assert [m["message_id"] for m in newer.response.json()["messages"]] == [sent["id"]]
    finally:
        plain.stop()


def test_work_for_one_chosen_phone_wakes_that_phone(platform, live_server, make_tenant):
    """A message sent through a chosen device must wake that device, not merely "the least loaded" one."""
    t = make_tenant("wakepick")
    api = api_client(live_server, t.slug)
    first_id, first_token = raw_device(live_server, t.slug, api, uid="first")
    chosen_id, chosen_token = raw_device(live_server, t.slug, api, uid="chosen")
    first, chosen = (device_client(live_server, t.slug, tok) for tok in (first_token, chosen_token))
    for dev in (first, chosen):
        assert fetch(dev).status_code == 200  # both online
    polls = {first_id: LongPoll(first, wait=30).start(), chosen_id: LongPoll(chosen, wait=30).start()}
    for device_id in polls:
        wait_until(lambda: waiting_on(platform, t.slug, device_id), 5, message="both polls to park")
    t0 = time.monotonic()
    sent = submit(api, [phone(2)], "through the chosen phone", device_id=chosen_id)
    polls[chosen_id].join(5)
    latency = polls[chosen_id].finished - t0
    got = polls[chosen_id].response.json()["messages"]
    assert [m["message_id"] for m in got] == [sent["id"]]
    assert latency < 1.0, f"the chosen phone got its message only after {latency:.1f} s"
    fetch(first, 0)  # let the first phone's poll end (it may still wait)


def test_new_work_wakes_a_phone_that_can_take_it(platform, live_server, make_tenant):
    """A phone at its rate limit cannot take new work; waking only it leaves the work waiting until
    another phone's long poll happens to end."""
    t = make_tenant("wakefree")
    api = api_client(live_server, t.slug)
    limited_id, limited_token = raw_device(live_server, t.slug, api, uid="limited")
    free_id, free_token = raw_device(live_server, t.slug, api, uid="free")
    limited, free = (device_client(live_server, t.slug, tok) for tok in (limited_token, free_token))
    assert api.patch(f"/api/v1/devices/{limited_id}", json={"settings": {"limits": {"per_minute": 1}}}
                     ).status_code == 200
    fetch(free)
    # The limited phone uses its one message of this minute (and reports it, so it holds no work).
    submit(api, [phone(1)], "the limited phone's one message", device_id=limited_id)
    [item] = fetch(limited).json()["messages"]
    post_reports(limited, [{"message_id": item["id"], "state": "sent"}])
    polls = {limited_id: LongPoll(limited, wait=30).start(), free_id: LongPoll(free, wait=30).start()}
    for device_id in polls:
        wait_until(lambda: waiting_on(platform, t.slug, device_id), 5, message="both polls to park")
    sent = submit(api, [phone(2)], "anyone free?")
    polls[free_id].join(5)
    assert [m["message_id"] for m in polls[free_id].response.json()["messages"]] == [sent["id"]]


def test_two_phones_polling_at_once_never_get_the_same_message(platform, live_server, make_tenant):
    t = make_tenant("excl")
    api = api_client(live_server, t.slug)
    devices = [raw_device(live_server, t.slug, api, uid=f"phone-{i}") for i in range(2)]
    for device_id, _ in devices:
        no_limits(api, device_id)
    clients = [device_client(live_server, t.slug, tok) for _, tok in devices]
    for c in clients:
        fetch(c)
    got = {0: [], 1: []}
    errors = []
    stop = threading.Event()
    total = 200

    def poller(i):
        try:
            while not stop.is_set():
                r = fetch(clients[i], wait=1, limit=7)
                assert r.status_code == 200, r.text
                got[i].extend(m["id"] for m in r.json()["messages"])
                if len(got[0]) + len(got[1]) >= total:
                    stop.set()
        except Exception as exc:  # surfaced below
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=poller, args=(i,), daemon=True) for i in range(2)]
    for th in threads:
        th.start()
    wait_until(lambda: platform.wakeups.waiting >= 1, 5)
    sent = submit(api, [phone(i) for i in range(total)], "one each")
    wait_until(lambda: stop.is_set(), 30, message="all recipients to be claimed")
    stop.set()
    for th in threads:
        th.join(10)
    assert not errors, errors
    union = got[0] + got[1]
    assert len(union) == len(set(union)) == total
    assert set(union) == {r["id"] for r in sent["recipients"]}
    assert got[0] and got[1], "both phones should have taken part"
    rows = sql(t, "SELECT r.device_id, count(e.id) FROM recipients r JOIN recipient_events e "
                  "ON e.recipient_id = r.id AND e.to_state = 'processed' GROUP BY r.id, r.device_id")
    assert len(rows) == total and all(n == 1 for _, n in rows)
    owner = {rid: i for i in (0, 1) for rid in got[i]}
    by_db = dict(sql(t, "SELECT id, device_id FROM recipients"))
    assert all(by_db[rid] == devices[owner[rid]][0] for rid in union)


def test_fetch_parameters_are_validated(live_server, make_tenant):
    t = make_tenant("fparm")
    _, token = raw_device(live_server, t.slug)
    dev = device_client(live_server, t.slug, token)
    for query in ("wait=abc", "limit=-1", "wait=1;DROP", "settings_version=1e3", "wait=" + "9" * 30):
        problem(dev.get(f"/api/device/v1/messages?{query}"), 400, "invalid-parameter")


def test_fetch_parameter_with_unicode_digits_is_a_400_not_a_500(live_server, make_tenant):
    t = make_tenant("fparu")
    _, token = raw_device(live_server, t.slug)
    dev = device_client(live_server, t.slug, token)
    r = dev.get("/api/device/v1/messages?wait=%C2%B2")  # "²": str.isdigit() says yes, int() says no
    problem(r, 400, "invalid-parameter")


# -- reports ---------------------------------------------------------------------------------


@pytest.fixture
def claimed(live_server, make_tenant):
    """A tenant with one phone that claimed three recipients of one message."""
    t = make_tenant("rep")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    dev = device_client(live_server, t.slug, token)
    sent = submit(api, [phone(10), phone(11), phone(12)], "report me")
    items = fetch(dev).json()["messages"]
    assert len(items) == 3
    return t, api, dev, sent["id"], [m["id"] for m in items]


def post_reports(dev, reports):
    return dev.post("/api/device/v1/reports", json={"reports": reports})


def test_malformed_reports_are_refused_with_per_field_errors_and_change_nothing(claimed):
    t, api, dev, _mid, (r1, r2, r3) = claimed
    batch = [
        {"message_id": r1, "state": "sent"},  # valid, but the batch is refused as a whole
        {"message_id": r2, "state": "exploded"},
        {"state": "sent"},
        "garbage",
        {"message_id": r3, "state": "sent", "at": "yesterday"},
        {"message_id": True, "state": "delivered"},
        {"message_id": r3, "state": "failed", "error_code": {"nested": 1}},
        {"message_id": "1 OR 1=1", "state": "sent"},
        {"message_id": r3, "state": "sent", "recipient": 12345},
        {"message_id": -5, "state": ["sent"]},
    ]
    body = problem(post_reports(dev, batch), 422, "validation-failed")
    assert fields(body) == {"reports[1].state", "reports[2].message_id", "reports[3]", "reports[4].at",
                            "reports[5].message_id", "reports[6].error_code", "reports[7].message_id",
                            "reports[8].recipient", "reports[9].message_id", "reports[9].state"}
    assert "none were applied" in body["detail"]
    problem(dev.post("/api/device/v1/reports", json={"reports": "sent"}), 422, "validation-failed")
    problem(dev.post("/api/device/v1/reports", data="not json", headers={"Content-Type": "application/json"}),
            400, "invalid-json")
    problem(dev.post("/api/device/v1/reports", data="reports=1"), 415, "unsupported-media-type")
    assert states(t, [r1, r2, r3]) == {r1: "processed", r2: "processed", r3: "processed"}


def test_a_report_id_in_unicode_digits_is_a_validation_error_not_a_500(claimed):
    t, api, dev, _mid, (r1, _r2, _r3) = claimed
    body = problem(post_reports(dev, [{"message_id": r1, "state": "sent"}, {"message_id": "²", "state": "sent"}]),
                   422, "validation-failed")
    assert fields(body) == {"reports[1].message_id"}
    assert states(t, [r1]) == {r1: "processed"}


def test_oversized_report_batches_are_refused(claimed):
    t, api, dev, _mid, (r1, r2, r3) = claimed
    body = problem(post_reports(dev, [{"message_id": r1, "state": "sent"}] * 501), 413, "batch-too-large")
    assert "500" in body["detail"]
    padded = {"reports": [{"message_id": r1, "state": "sent"}], "padding": "x" * (1024 * 1024 + 10)}
    problem(dev.post("/api/device/v1/reports", json=padded), 413, "body-too-large")
    assert states(t, [r1, r2, r3]) == {r1: "processed", r2: "processed", r3: "processed"}
    # Exactly 500 is fine.
    r = post_reports(dev, [{"message_id": r1, "state": "sent"}] * 500)
    assert r.status_code == 200 and r.json()["accepted"] == 500
    statuses = [x["status"] for x in r.json()["results"]]
    assert statuses[0] == "applied" and set(statuses[1:]) == {"ignored"}


def test_reports_out_of_order_and_repeated_never_move_backwards(claimed):
    t, api, dev, mid, (r1, r2, r3) = claimed
    # r1: delivered before sent applies; the late 'sent' is ignored.
    r = post_reports(dev, [{"message_id": r1, "state": "delivered", "at": "2030-01-01T00:00:00Z"}])
    assert r.json()["results"] == [{"message_id": r1, "status": "applied", "state": "delivered"}]
    r = post_reports(dev, [{"message_id": r1, "state": "sent"}])
    assert r.json()["results"] == [{"message_id": r1, "status": "ignored", "state": "delivered"}]
    # r2: the normal order, each report sent twice (a retried upload), ms epoch times as Android sends.
    now_ms = int(time.time() * 1000)
    twice = [{"message_id": r2, "state": "sent", "at": now_ms}, {"message_id": r2, "state": "sent", "at": now_ms},
             {"message_id": str(r2), "state": "delivered", "at": now_ms + 500},
             {"message_id": r2, "state": "delivered", "at": now_ms + 500}]
    results = post_reports(dev, twice).json()["results"]
    assert [x["status"] for x in results] == ["applied", "ignored", "applied", "ignored"]
    assert post_reports(dev, twice).json()["results"][-1] == {"message_id": r2, "status": "ignored",
                                                               "state": "delivered"}
    # r3: a permanent failure is final; a later 'sent' does not revive it.
    post_reports(dev, [{"message_id": r3, "state": "failed", "error_code": "INVALID_DESTINATION"}])
    assert post_reports(dev, [{"message_id": r3, "state": "sent"}]).json()["results"][0]["status"] == "ignored"
    # Unknown ids are said to be unknown.
    assert post_reports(dev, [{"message_id": 987654321, "state": "sent"}]).json()["results"] == [
        {"message_id": 987654321, "status": "unknown", "state": None}]

    assert states(t, [r1, r2, r3]) == {r1: "delivered", r2: "delivered", r3: "failed"}
    h = history(api, mid)
    assert h[r1] == ["pending", "processed", "delivered"]
    assert h[r2] == ["pending", "processed", "sent", "delivered"]
    assert h[r3] == ["pending", "processed", "failed"]
    detail = api.get(f"/api/v1/messages/{mid}").json()
    rec = {x["id"]: x for x in detail["recipients"]}
    assert rec[r1]["delivered_at"].startswith("2030-01-01") and rec[r1]["sent_at"].startswith("2030-01-01")
    assert rec[r3]["error_code"] == "INVALID_DESTINATION"


# -- inbound ---------------------------------------------------------------------------------


def test_inbound_upload_retried_three_times_is_stored_once(live_server, make_tenant):
    t = make_tenant("inb")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    dev = device_client(live_server, t.slug, token)
    received = int(time.time() * 1000) - 60_000
    batch = {"messages": [{"id": "sms-1", "from": "+14155550123", "body": "Hi there", "received_at": received,
                           "sim_slot": 1},
                          {"id": 2, "from": "ACME", "body": "Your code is 1234", "received_at": received + 1}]}
    replies = [dev.post("/api/device/v1/inbound", json=batch) for _ in range(3)]
    assert [r.status_code for r in replies] == [200, 200, 200]
    assert [r.json() for r in replies] == [{"stored": 2, "duplicates": 0}, {"stored": 0, "duplicates": 2},
                                           {"stored": 0, "duplicates": 2}]
    assert sql(t, "SELECT count(*) FROM device_inbound")[0][0] == 2
    inbox = api.get("/api/v1/inbox").json()["messages"]
    assert sorted((m["from"], m["body"], m["device_id"]) for m in inbox) == [
        ("+14155550123", "Hi there", device_id), ("ACME", "Your code is 1234", device_id)]
    first = next(m for m in inbox if m["phone_message_id"] == "sms-1")
    assert first["sim_slot"] == 1 and first["received_at"].startswith(
        time.strftime("%Y-%m-%dT%H:%M", time.gmtime(received / 1000)))


def test_malformed_inbound_is_refused_whole(live_server, make_tenant):
    t = make_tenant("inbbad")
    _, token = raw_device(live_server, t.slug)
    dev = device_client(live_server, t.slug, token)
    batch = {"messages": [{"id": "ok-1", "from": "+14155550123", "body": "fine"},
                          {"from": "+14155550123", "body": "no id"},
                          {"id": "x", "from": "", "body": "no sender"},
                          {"id": "y", "from": "+1", "body": "b" * 10_001},
                          {"id": "z", "from": "+1", "body": "slot", "sim_slot": 9},
                          42]}
    body = problem(dev.post("/api/device/v1/inbound", json=batch), 422, "validation-failed")
    assert fields(body) == {"messages[1].id", "messages[2].from", "messages[3].body", "messages[4].sim_slot",
                            "messages[5]"}
    problem(dev.post("/api/device/v1/inbound", json={"messages": [{"id": str(i), "from": "+1", "body": "x"}
                                                                  for i in range(501)]}), 413, "batch-too-large")
    assert sql(t, "SELECT count(*) FROM device_inbound")[0][0] == 0


def test_nul_bytes_from_a_phone_never_cause_a_500(live_server, make_tenant):
    """PostgreSQL text cannot hold U+0000; a phone sending one must get a clear answer (refused, or
    stored without it), never an internal error."""
    t = make_tenant("nulp")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    dev = device_client(live_server, t.slug, token)
    submit(api, [phone(30)], "x")
    rid = fetch(dev).json()["messages"][0]["id"]
    calls = {
        "register name": lambda: register(live_server, t.slug, new_code(api), name="Front\u0000desk"),
        "register sim": lambda: register(live_server, t.slug, new_code(api),
                                         sims=[{"slot": 1, "operator": "Op\u0000"}]),
        "inbound body": lambda: dev.post("/api/device/v1/inbound", json={"messages": [
            {"id": "n-1", "from": "+14155550123", "body": "garbled\u0000text"}]}),
        "inbound id": lambda: dev.post("/api/device/v1/inbound", json={"messages": [
            {"id": "n\u00002", "from": "+14155550123", "body": "text"}]}),
        "heartbeat": lambda: dev.post("/api/device/v1/heartbeat", json={"app_version": "1.0\u0000"}),
        "report": lambda: post_reports(dev, [{"message_id": rid, "state": "failed", "error_code": "E\u0000"}]),
    }
    answers = {name: call().status_code for name, call in calls.items()}
    assert all(status < 500 for status in answers.values()), answers
    if answers["inbound body"] == 200:  # accepted: then it is really stored, not dropped
        assert sql(t, "SELECT count(*) FROM device_inbound WHERE phone_message_id = 'n-1'")[0][0] == 1


# -- heartbeat and settings --------------------------------------------------------------------


def test_heartbeat_is_validated_and_lands_in_the_device_list(live_server, make_tenant):
    t = make_tenant("hb")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    dev = device_client(live_server, t.slug, token)
    good = {"battery_level": 55, "charging": False, "signal": -80, "queue_length": 3, "app_version": "9.9"}
    r = dev.post("/api/device/v1/heartbeat", json=good)
    assert r.status_code == 200 and r.json()["settings_version"] >= 1
    for bad, field in (({"battery_level": 101}, "battery_level"), ({"battery_level": "50"}, "battery_level"),
                       ({"charging": "yes"}, "charging"), ({"signal": -300}, "signal"),
                       ({"queue_length": -1}, "queue_length"), ({"app_version": "v" * 51}, "app_version"),
                       ({"battery_level": True}, "battery_level")):
        body = problem(dev.post("/api/device/v1/heartbeat", json={**bad, "queue_length": 99}
                                if field != "queue_length" else bad), 422, "validation-failed")
        assert fields(body) == {field}
    d = api.get(f"/api/v1/devices/{device_id}").json()
    assert (d["battery_level"], d["charging"], d["signal"], d["queue_length"], d["app_version"]) == (
        55, False, -80, 3, "9.9")
    assert d["online"] is True and d["last_seen_at"]
    listed = {x["id"]: x for x in api.get("/api/v1/devices").json()["devices"]}
    assert listed[device_id]["battery_level"] == 55


def test_a_settings_change_reaches_a_waiting_phone_at_once(platform, live_server, make_tenant):
    t = make_tenant("setw")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    dev = device_client(live_server, t.slug, token)
    version = dev.get("/api/device/v1/settings").json()["settings_version"]
    poll = LongPoll(dev, wait=30, settings_version=version).start()
    wait_until(lambda: waiting_on(platform, t.slug, device_id), 5, message="the poll to park")
    time.sleep(0.2)
    assert not poll.done
    t0 = time.monotonic()
    r = api.patch(f"/api/v1/devices/{device_id}", json={"settings": {"limits": {"per_minute": 5},
                                                                     "sim": {"mode": "fixed", "slot": 2}}})
    assert r.status_code == 200, r.text
    poll.join(5)
    assert poll.finished - t0 < 1.0
    body = poll.response.json()
    assert body["settings_changed"] is True and body["settings_version"] == version + 1
    assert body["messages"] == []
    s = dev.get("/api/device/v1/settings").json()
    assert s["settings_version"] == version + 1
    assert s["settings"]["limits"]["per_minute"] == 5 and s["settings"]["sim"] == {"mode": "fixed", "slot": 2}
    # A phone that already knows the current version is not told again.
    r = fetch(dev, 0, settings_version=version + 1)
    assert r.json()["settings_changed"] is False


# -- other workspaces --------------------------------------------------------------------------


def test_a_device_of_another_workspace_can_do_nothing_here(live_server, make_tenant):
    a, b = make_tenant("isoa"), make_tenant("isob")
    api_a = api_client(live_server, a.slug)
    _, token_a = raw_device(live_server, a.slug, api_a)
    _, token_b = raw_device(live_server, b.slug)
    dev_a = device_client(live_server, a.slug, token_a)
    sent = submit(api_a, [phone(20)], "for A only")
    rid = fetch(dev_a).json()["messages"][0]["id"]

    # B's token on A's address: refused everywhere.
    b_on_a = device_client(live_server, a.slug, token_b)
    problem(fetch(b_on_a), 401, "invalid-token")
    problem(post_reports(b_on_a, [{"message_id": rid, "state": "sent"}]), 401, "invalid-token")
    problem(b_on_a.post("/api/device/v1/inbound", json={"messages": [{"id": "1", "from": "+1", "body": "x"}]}),
            401, "invalid-token")
    problem(b_on_a.post("/api/device/v1/heartbeat", json={"battery_level": 1}), 401, "invalid-token")
    problem(b_on_a.get("/api/device/v1/settings"), 401, "invalid-token")
    problem(b_on_a.post("/api/device/v1/token", json={}), 401, "invalid-token")
    # A token made up for A's workspace (right format and checksum) is unknown.
    made_up = tokenformat.generate("sgd", a.slug)
    problem(fetch(device_client(live_server, a.slug, made_up)), 401, "invalid-token")

    # B's device reporting A's recipient on its own address: unknown, nothing changes in A.
    dev_b = device_client(live_server, b.slug, token_b)
    r = post_reports(dev_b, [{"message_id": rid, "state": "delivered"}])
    assert r.status_code == 200
    assert r.json()["results"] == [{"message_id": rid, "status": "unknown", "state": None}]
    r = dev_b.post("/api/device/v1/inbound", json={"messages": [{"id": "b-1", "from": "+14155550999",
                                                                 "body": "to B"}]})
    assert r.json() == {"stored": 1, "duplicates": 0}
    assert states(a, [rid]) == {rid: "processed"}
    assert history(api_a, sent["id"])[rid] == ["pending", "processed"]
    assert api_a.get("/api/v1/inbox").json()["messages"] == []
    assert sql(a, "SELECT count(*) FROM device_inbound")[0][0] == 0


def test_device_tokens_and_api_tokens_do_not_cross_over(live_server, make_tenant):
    t = make_tenant("cross")
    api = api_client(live_server, t.slug)
    _, token = raw_device(live_server, t.slug, api)
    dev = device_client(live_server, t.slug, token)
    # A device token cannot use the customer API ...
    for method, path in (("GET", "/api/v1/devices"), ("GET", "/api/v1/messages"),
                         ("POST", "/api/v1/devices/pairing-codes")):
        problem(dev.request(method, path, json={}), 403, "forbidden")
    # ... and a customer API token cannot act as a phone.
    problem(fetch(api), 403, "forbidden")
    problem(post_reports(api, [{"message_id": 1, "state": "sent"}]), 403, "forbidden")
    # No token at all: 401.
    problem(fetch(live_server.client(t.slug)), 401, "unauthorized")


# -- parked long polls: the handler is gone, the answer is the same ------------------------------------------------

def _parked(platform, live_server, make_tenant, name: str):
    t = make_tenant(name)
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    dev = device_client(live_server, t.slug, token)
    assert fetch(dev).json()["messages"] == []  # first contact
    poll = LongPoll(dev, wait=30).start()
    wait_until(lambda: waiting_on(platform, t.slug, device_id), 5, message="the long poll to park")
    return t, api, device_id, dev, poll


def test_a_parked_poll_holds_no_handler_and_answers_like_any_response(platform, live_server, make_tenant, caplog):
    import gc
    import logging

    from addons.devices.longpoll import ParkedPoll
    from addons.devices.protocol import FetchHandler

    t, api, device_id, dev, poll = _parked(platform, live_server, make_tenant, "parked")
    gc.collect()
    live = gc.get_objects()
    mine = [o for o in live if isinstance(o, FetchHandler) and getattr(o, "tenant_slug", None) == t.slug]
    assert mine == [], "a waiting poll still holds its request handler"
    assert any(isinstance(o, ParkedPoll) and o.device_id == device_id and o.tenant.slug == t.slug for o in live)

    caplog.set_level(logging.INFO, logger="smsgw.access")
    sent = submit(api, [phone(7)], "parked and woken")
    poll.join(5)
    r = poll.response
    assert r.status_code == 200, r.text
    assert [m["message_id"] for m in r.json()["messages"]] == [sent["id"]]
    assert r.headers["Content-Type"].startswith("application/json")
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "Server" not in r.headers

    def logged():  # written on the server's thread right after the answer
        return any(line.startswith("200 GET ") and f"{t.slug}." in line and "/api/device/v1/messages?wait=30" in line
                   for line in [rec.getMessage() for rec in caplog.records if rec.name == "smsgw.access"])

    wait_until(logged, 2, message="the access log line of the detached answer")
    # Keep-alive still works on the same connection after a detached answer.
    assert fetch(dev).status_code == 200


def test_a_parked_poll_keeps_no_request_headers_and_http10_keep_alive_still_works(platform, live_server,
                                                                                  make_tenant):
    """Detaching drops the request's header lines (Tornado keeps the object while the poll waits);
    only ``Connection`` stays, which Tornado reads to answer an HTTP/1.0 keep-alive request. The
    audit event of the device coming online still has the phone's User-Agent."""
    import gc
    import socket

    from tornado.httputil import HTTPHeaders

    from tests.support.identity import audit_rows

    t = make_tenant("parkhdr")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    s = socket.create_connection(("127.0.0.1", live_server.port))
    s.settimeout(10)
    head = (f"GET /api/device/v1/messages?wait=30 HTTP/1.0\r\nHost: {t.slug}.localhost\r\nConnection: keep-alive\r\n"
            f"User-Agent: parked-phone/1.0\r\nAuthorization: Bearer {token}\r\nX-Real-IP: {fresh_ip()}\r\n\r\n")
    s.sendall(head.encode())
    wait_until(lambda: waiting_on(platform, t.slug, device_id), 5, message="the long poll to park")
    gc.collect()
    holding = [h for h in gc.get_objects() if isinstance(h, HTTPHeaders) and token in h.get("Authorization", "")]
    assert holding == [], "a parked poll still holds its request headers (and the phone's token)"
    online = audit_rows(platform, t.id, "device.online")
    assert len(online) == 1 and online[0]["user_agent"] == "parked-phone/1.0"

    sent = submit(api, [phone(9)], "woken over HTTP/1.0")
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head_part, _, body = data.partition(b"\r\n\r\n")
    lines = head_part.decode().split("\r\n")
    assert lines[0].split()[1] == "200", lines[0]
    hdrs = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert hdrs.get("connection", "").lower() == "keep-alive"
    while len(body) < int(hdrs["content-length"]):
        body += s.recv(65536)
    assert sent["id"] in [m["message_id"] for m in __import__("json").loads(body)["messages"]]
    # The same connection takes another request.
    s.sendall(head.replace("wait=30", "wait=0").encode())
    again = b""
    while b"\r\n\r\n" not in again:
        chunk = s.recv(65536)
        assert chunk, "the server closed a keep-alive connection"
        again += chunk
    assert again.split()[1] == b"200"
    s.close()


def parked_raw_poll(platform, live_server, slug: str, device_id: int, token: str):
    """A long poll on a raw socket (so the test can hang up), once it is parked."""
    import socket

    s = socket.create_connection(("127.0.0.1", live_server.port))
    s.sendall((f"GET /api/device/v1/messages?wait=30 HTTP/1.1\r\nHost: {slug}.localhost\r\n"
               f"Authorization: Bearer {token}\r\nX-Real-IP: {fresh_ip()}\r\n\r\n").encode())
    wait_until(lambda: waiting_on(platform, slug, device_id), 5, message="the long poll to park")
    return s


def test_a_phone_that_hangs_up_while_parked_leaves_nothing_waiting_and_takes_nothing(platform, live_server,
                                                                                     make_tenant, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="smsgw.access")

    t = make_tenant("hangup")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    assert fetch(device_client(live_server, t.slug, token)).status_code == 200
    s = parked_raw_poll(platform, live_server, t.slug, device_id, token)
    s.close()
    wait_until(lambda: not waiting_on(platform, t.slug, device_id), 5, message="the hung-up poll to be forgotten")
    assert any(rec.getMessage().startswith(f"499 GET {t.slug}.") for rec in caplog.records
               if rec.name == "smsgw.access"), "the access log should show the phone hanging up"
    sent = submit(api, [phone(8)], "nobody is listening")
    time.sleep(0.3)
    assert states(t, [r["id"] for r in sent["recipients"]]) == {sent["recipients"][0]["id"]: "pending"}


def test_a_parked_poll_of_a_device_disabled_meanwhile_is_told_so(platform, live_server, make_tenant):
    t, api, device_id, dev, poll = _parked(platform, live_server, make_tenant, "parkoff")
    r = api.patch(f"/api/v1/devices/{device_id}", json={"enabled": False})
    assert r.status_code == 200, r.text
    poll.join(5)
    problem(poll.response, 403, "device-disabled")
    assert not waiting_on(platform, t.slug, device_id)


def test_work_claimed_while_the_phone_hangs_up_goes_straight_back(platform, live_server, make_tenant):
    """The phone's look is held up (its device row locked), the phone hangs up, then the look
    claims a message it can no longer hand over: the message is back in the queue at once."""
    t = make_tenant("unclaim")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    assert fetch(device_client(live_server, t.slug, token)).status_code == 200
    s = parked_raw_poll(platform, live_server, t.slug, device_id, token)
    with tenant_db(t) as db:
        db.execute_sql("SELECT 1 FROM devices WHERE id = %s FOR UPDATE", (device_id,))
        sent = submit(api, [phone(9)], "claimed for nobody")  # wakes the poll; its look waits for the lock
        time.sleep(0.3)
        s.close()
        wait_until(lambda: not waiting_on(platform, t.slug, device_id), 5, message="the hang-up to be seen")
    rid = sent["recipients"][0]["id"]
    wait_until(lambda: history(api, sent["id"])[rid][-1:] == ["pending"] and len(history(api, sent["id"])[rid]) >= 3,
               5, message="the claim to be put back")
    assert states(t, [rid]) == {rid: "pending"}
    steps = [(h["from"], h["to"], h["source"])
             for h in api.get(f"/api/v1/messages/{sent['id']}").json()["recipients"][0]["history"]]
    assert steps == [(None, "pending", "api"), ("pending", "processed", "claim"), ("processed", "pending", "unclaimed")]
    assert sql(t, "SELECT attempts FROM recipients WHERE id = %s", (rid,)) == [(0,)]


def test_a_parked_poll_with_nothing_to_do_answers_empty_when_its_wait_ends(platform, live_server, make_tenant):
    t = make_tenant("parkend")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    dev = device_client(live_server, t.slug, token)
    poll = LongPoll(dev, wait=1).start()
    wait_until(lambda: waiting_on(platform, t.slug, device_id), 5, message="the long poll to park")
    poll.join(5)
    assert poll.response.status_code == 200 and poll.response.json()["messages"] == []
    assert 1.0 <= poll.finished - poll.started < 2.5
    assert not waiting_on(platform, t.slug, device_id)


def test_a_report_group_and_a_look_group_never_deadlock_on_phone_rows(platform, live_server, make_tenant):
    """Report groups touch their phones, look groups lock theirs: both in id order, so neither can
    hold one phone's row while waiting for another's that the other holds. A trigger in the test
    tenant makes touching the higher phone slow (holding its row) to open the window where a
    look group locks the lower one; touching in arrival order deadlocked here."""
    import threading

    from addons.devices import longpoll, protocol
    from core.db import tenant_transaction

    t = make_tenant("dlock")
    lo, hi = sorted(raw_device(live_server, t.slug)[0] for _ in range(2))
    sql(t, f"""CREATE FUNCTION slow_touch() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN IF NEW.id = {hi} THEN PERFORM pg_sleep(0.6); END IF; RETURN NEW; END $$""", fetch=False)
    sql(t, "CREATE TRIGGER slow_touch BEFORE UPDATE ON devices FOR EACH ROW EXECUTE FUNCTION slow_touch()",
        fetch=False)
    sql(t, "UPDATE devices SET online = false", fetch=False)  # stale: the reports touch both phones
    errors, touching = {}, threading.Event()

    def report_group():
        try:
            with tenant_transaction(t.ref):  # the higher phone's reports arrived first
                touching.set()
                protocol._apply_reports([protocol.ReportBatch(platform, t, hi, []),
                                         protocol.ReportBatch(platform, t, lo, [])])
        except Exception as exc:
            errors["reports"] = exc

    def look_group():
        touching.wait(5)
        time.sleep(0.3)  # the report group is inside its slow touch now
        try:
            with tenant_transaction(t.ref):
                longpoll.look_many([longpoll.Look(platform, t, lo, 10, False, None),
                                    longpoll.Look(platform, t, hi, 10, False, None)])
        except Exception as exc:
            errors["looks"] = exc

    threads = [threading.Thread(target=report_group), threading.Thread(target=look_group)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    sql(t, "DROP TRIGGER slow_touch ON devices", fetch=False)
    assert not errors, {k: str(v)[:200] for k, v in errors.items()}
    assert sql(t, "SELECT count(*) FROM devices WHERE online") == [(2,)]
