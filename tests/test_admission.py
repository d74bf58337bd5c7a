"""Admission lets a fixed number of requests work at once, queues the rest in order, loses no place."""

from __future__ import annotations

import asyncio
import threading

from tests.support.devices import LongPoll, device_client, fetch, raw_device, wait_until, waiting_on
from tests.support.phones import api_client

import pytest
from tornado.http1connection import HTTP1Connection

from core.server import run_loop
from core.web.admission import Admission
from core.web.detach import DetachingDelegate, IncompatibleTornado


def test_places_are_limited_handed_over_in_arrival_order_and_given_back_once():
    async def scenario():
        gate = Admission(2)
        tickets = {}

        class Entrant:
            def __init__(self, name):
                self.name = name

            def admitted(self, ticket):
                tickets[self.name] = ticket

        def start(name):
            return Entrant(name)

        for name in "abcd":
            gate.admit(start(name))
        assert sorted(tickets) == ["a", "b"] and gate.inside == 2 and gate.queued == 2 and gate.waited == 2
        tickets["a"].release()
        tickets["a"].release()  # a second release of the same ticket gives nothing back
        assert sorted(tickets) == ["a", "b", "c"] and gate.inside == 2 and gate.queued == 1
        tickets["b"].release()
        assert "d" in tickets and gate.inside == 2 and gate.queued == 0
        tickets["c"].release()
        tickets["d"].release()
        tickets["d"].release()
        assert gate.inside == 0 and gate.admitted == 4
        gate.admit(start("e"))  # free again: straight in
        assert gate.inside == 1 and gate.queued == 0 and gate.waited == 2

    asyncio.run(scenario())  # tickets time themselves on the running loop


def test_a_burst_of_new_phones_goes_through_admission_and_leaves_no_place_taken(platform, live_server, make_tenant):
    """Phones whose tokens the server has not seen yet (as after a restart) queue for a place; the
    parked ones give theirs back after their first look, the others when answered."""
    t = make_tenant("admit")
    api = api_client(live_server, t.slug)
    devices = [raw_device(live_server, t.slug, api) for _ in range(6)]
    gate = live_server.delegate.admission
    admitted_before, limit_before = gate.admitted, gate.limit
    gate.limit = 2
    try:
        polls = [LongPoll(device_client(live_server, t.slug, tok), wait=30).start() for _, tok in devices[:3]]
        answers = []
        quick = [threading.Thread(target=lambda tok=tok: answers.append(fetch(device_client(live_server, t.slug, tok))))
                 for _, tok in devices[3:]]
        for th in quick:
            th.start()
        for th in quick:
            th.join(20)
        assert sorted(r.status_code for r in answers) == [200, 200, 200]
        for device_id, _ in devices[:3]:
            wait_until(lambda d=device_id: waiting_on(platform, t.slug, d), 10, message="the long polls to park")
        wait_until(lambda: gate.inside == 0, 5, message="every place given back")
        assert gate.queued == 0 and gate.admitted - admitted_before == 6
        assert all(not p.done for p in polls), "the parked polls are still waiting"
    finally:
        gate.limit = limit_before
    r = api.post("/api/v1/messages", json={"text": "after the burst", "to": ["+14155550123"]})
    assert r.status_code == 202, r.text
    wait_until(lambda: any(p.done for p in polls), 5, message="one parked poll to get the message")
    got = [p.join(1).response.json()["messages"] for p in polls if p.done]
    assert [m["text"] for batch in got for m in batch] == ["after the burst"]


def test_a_connection_that_sends_no_request_in_time_is_closed_and_a_parked_poll_is_not(platform, live_server,
                                                                                       make_tenant):
    """Idle connections are timed by one sweep (not a Tornado timer each): silent connections and
    half-sent heads are closed after the idle timeout; a parked poll (its head has arrived) stays."""
    import socket
    import time

    from tests.support.devices import fresh_ip

    idle = live_server.delegate.idle
    timeout_before = idle.timeout
    t = make_tenant("idle")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    idle.timeout = 1.0
    try:
        silent = socket.create_connection(("127.0.0.1", live_server.port))
        half = socket.create_connection(("127.0.0.1", live_server.port))
        half.sendall(f"GET /api/device/v1/messages?wait=30 HTTP/1.1\r\nHost: {t.slug}.localhost\r\n".encode())
        parked = socket.create_connection(("127.0.0.1", live_server.port))
        parked.sendall((f"GET /api/device/v1/messages?wait=30 HTTP/1.1\r\nHost: {t.slug}.localhost\r\n"
                        f"Authorization: Bearer {token}\r\nX-Real-IP: {fresh_ip()}\r\n\r\n").encode())
        wait_until(lambda: waiting_on(platform, t.slug, device_id), 5, message="the long poll to park")
        started = time.monotonic()
        for s in (silent, half):
            s.settimeout(5)
            assert s.recv(100) == b"", "the server should close a connection that sends no complete head"
        assert 0.5 < time.monotonic() - started < 4.5
        time.sleep(1.5)  # well past the idle timeout: the parked poll's connection is still there
        assert waiting_on(platform, t.slug, device_id)
        r = api.post("/api/v1/messages", json={"text": "still there", "to": ["+14155550124"]})
        assert r.status_code == 202, r.text
        parked.settimeout(5)
        assert b"still there" in parked.recv(65536)
        for s in (silent, half, parked):
            s.close()
    finally:
        idle.timeout = timeout_before


def test_a_body_that_does_not_arrive_in_time_is_closed_and_a_slow_but_complete_one_is_answered(live_server,
                                                                                                make_tenant):
    """Bodies are timed by the same sweep (Tornado's per-body timer is off): a sender that stops
    mid-body is closed after the body timeout; one whose body is complete in time is answered."""
    import socket
    import time

    idle = live_server.delegate.idle
    before = idle.body_timeout
    t = make_tenant("bodyt")
    api = api_client(live_server, t.slug)
    raw = api.headers["Authorization"].split()[1]
    body = b'{"text": "slow", "to": ["+14155550125"]}'
    head = (f"POST /api/v1/messages HTTP/1.1\r\nHost: {t.slug}.localhost\r\nAuthorization: Bearer {raw}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    idle.body_timeout = 1.0
    try:
        stuck = socket.create_connection(("127.0.0.1", live_server.port))
        stuck.sendall(head + body[:10])
        slow = socket.create_connection(("127.0.0.1", live_server.port))
        slow.sendall(head + body[:10])
        time.sleep(0.4)
        slow.sendall(body[10:])  # complete within the timeout
        slow.settimeout(5)
        assert slow.recv(65536).startswith(b"HTTP/1.1 202"), "a complete body must be answered"
        started = time.monotonic()
        stuck.settimeout(5)
        assert stuck.recv(100) == b"", "the server should close a connection whose body stopped"
        assert time.monotonic() - started < 4.5
        # The connection that was answered is kept (its wait is for its next head now).
        time.sleep(1.5)
        slow.sendall(head + body)
        assert slow.recv(65536).startswith(b"HTTP/1.1 202")
        for s in (stuck, slow):
            s.close()
    finally:
        idle.body_timeout = before
    texts = [m["text"] for m in api.get("/api/v1/messages").json()["messages"]]
    assert texts == ["slow", "slow"]  # the stuck request stored nothing


def test_a_place_is_held_at_most_hold_seconds():
    import asyncio

    async def scenario():
        gate = Admission(1, hold=0.5)
        got = []

        class Entrant:
            def admitted(self, ticket):
                got.append(ticket)

        gate.admit(Entrant())
        gate.admit(Entrant())
        assert len(got) == 1 and gate.queued == 1
        await asyncio.sleep(0.75)  # the first never gives its place back: it loses it at 0.5 s
        assert len(got) == 2 and gate.queued == 0 and gate.inside == 1
        got[0].release()  # too late: nothing more is given back
        assert gate.inside == 1
        got[1].release()
        assert gate.inside == 0

    asyncio.run(scenario())


def test_clients_that_hang_up_mid_body_or_never_read_keep_no_place(live_server, make_tenant):
    """An unknown (well-formed) token makes every request take a place; a body that never comes,
    or a client gone before its answer, must not keep it."""
    t = make_tenant("admitdrop")
    gate = live_server.delegate.admission
    base, hold_before = gate.admitted, gate.hold
    gate.hold = 60.0  # so that only the request's own end can give the place back
    try:
        _hang_up_six(live_server, t, gate, base)
    finally:
        gate.hold = hold_before


def _hang_up_six(live_server, t, gate, base):
    import socket

    from core import tokenformat
    from tests.support.devices import fresh_ip

    for i in range(6):
        forged = tokenformat.generate("sgd", t.slug)
        s = socket.create_connection(("127.0.0.1", live_server.port))
        method = "POST /api/device/v1/reports" if i % 2 else "GET /api/device/v1/messages?wait=30"
        body_head = "Content-Type: application/json\r\nContent-Length: 1000\r\n" if i % 2 else ""
        s.sendall((f"{method} HTTP/1.1\r\nHost: {t.slug}.localhost\r\nAuthorization: Bearer {forged}\r\n"
                   f"X-Real-IP: {fresh_ip()}\r\n{body_head}\r\n" + ('{"reports": [' if i % 2 else "")).encode())
        wait_until(lambda n=i: gate.admitted - base >= n + 1, 5, message="the request to be admitted")
        s.close()
    wait_until(lambda: gate.inside == 0 and gate.queued == 0, 5, message="every place given back")


def test_token_lookups_that_arrive_together_each_get_their_own_answer(live_server, make_tenant):
    """After a restart the token lookups of one workspace share transactions (``token_lookups``):
    in such a burst every phone still gets its own answer: its own messages, a refusal for a
    disabled phone or an unknown token, and an API token works beside them."""
    import concurrent.futures

    from core import tokenformat

    t = make_tenant("lookups")
    api = api_client(live_server, t.slug)
    devices = [raw_device(live_server, t.slug, api) for _ in range(8)]
    off_id, off_token = devices.pop()
    r = api.patch(f"/api/v1/devices/{off_id}", json={"enabled": False})
    assert r.status_code == 200, r.text
    for device_id, _ in devices:
        assert api.post("/api/v1/messages", json={"text": f"for {device_id}", "to": ["+14155550126"],
                                                  "device_id": device_id}).status_code == 202
    unknown = tokenformat.generate("sgd", t.slug)  # well formed, checksum right, no such device

    calls = [(tok, device_id) for device_id, tok in devices] + [(off_token, "off"), (unknown, "unknown")]
    with concurrent.futures.ThreadPoolExecutor(len(calls) + 1) as pool:
        answers = list(pool.map(lambda c: (c[1], fetch(device_client(live_server, t.slug, c[0]))), calls))
        me = pool.submit(lambda: api_client(live_server, t.slug).get("/api/v1/devices")).result()
    by = dict(answers)
    for device_id, _ in devices:
        assert by[device_id].status_code == 200, by[device_id].text
        assert [m["text"] for m in by[device_id].json()["messages"]] == [f"for {device_id}"]
    for refused in ("off", "unknown"):  # a disabled phone's token no longer names a principal
        assert by[refused].status_code == 401 and by[refused].json()["code"] == "invalid-token", by[refused].text
    assert me.status_code == 200 and len(me.json()["devices"]) == 8, me.text


class ConnectionWithoutFinishFuture(HTTP1Connection):
    """A Tornado whose connections no longer carry the private ``_finish_future``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self._finish_future


class ConnectionThatNeverResolvesIt(HTTP1Connection):
    """A Tornado that keeps ``_finish_future`` but no longer resolves it when a connection ends."""

    def close(self):
        self.stream = None


def test_admission_refuses_to_start_on_a_tornado_it_cannot_work_with(live_server):
    """It used to switch itself off without a word (every request let in at once). Building the
    server's delegate with an admission (as ``Application.http_server`` does at start-up) checks
    the connection class Tornado uses and refuses, saying what is wrong and what to do."""
    assert live_server.delegate.admission is not None  # start-up built it with one: the check ran

    def build(connection_class, admission):
        delegate_class = type("OnThisTornado", (DetachingDelegate,), {"connection_class": connection_class})

        async def on_the_loop():  # as at start-up: on the loop that will serve
            return delegate_class(live_server.app, admission=admission)

        return run_loop(on_the_loop())

    for broken, why in ((ConnectionWithoutFinishFuture, "have no _finish_future"),
                        (ConnectionThatNeverResolvesIt, "does not resolve its _finish_future")):
        with pytest.raises(IncompatibleTornado, match=why) as refused:
            build(broken, Admission())
        assert "Admission" in str(refused.value) and "tornado>=6.4,<7" in str(refused.value)
        assert build(broken, None).admission is None  # without admission nothing needs it
    assert build(HTTP1Connection, Admission()).admission is not None  # the installed Tornado passes

