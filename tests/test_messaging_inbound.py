"""Inbound SMS: STOP / START keywords and the suppression list (API and permissions), and the inbox
listing with its filters and cursor paging. Inbound arrives through the real device protocol:
from a paired phone's token, or from the companion app reading the simulator's inbox."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from urllib.parse import quote

from android_companion.backends.simulator import SimulatorBackend
from tests.support.messaging import parse_time, raw_device, row_counts, wait_for_states, wait_until
from tests.support.phones import api_client, start_phone
from tests.support.problems import problem

OPTED_OUT = "opted out (the recipient sent STOP)"


def suppressed(client) -> dict:
    r = client.get("/api/v1/suppressions")
    assert r.status_code == 200, r.text
    return {s["phone"]: s for s in r.json()["suppressions"]}


def cursor_of(data) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def now_ms(offset_s: float = 0) -> int:
    return int((time.time() + offset_s) * 1000)


# -- STOP and START -------------------------------------------------------------------------------------

def test_stop_refuses_sending_to_that_number_and_start_allows_it_again(live_server, make_tenant, tmp_path):
    t = make_tenant("stop")
    c = api_client(live_server, t.slug)
    dev = raw_device(live_server, t.slug, tmp_path / "dev")
    who, other = "+14155550400", "+14155550401"

    r = dev.inbound({"id": "in-1", "from": who, "body": " Stop. ", "received_at": now_ms()})
    assert r.status_code == 200 and r.json() == {"stored": 1, "duplicates": 0}, r.text
    entry = suppressed(c)[who]
    assert entry["source"] == "keyword" and "STOP" in entry["reason"]

    before = row_counts(t)
    p = problem(c.post("/api/v1/messages", json={"text": "Sale!", "to": [who]}), 422, "no-recipients")
    assert p["errors"] == [{"field": "to", "message": OPTED_OUT, "input": who}]
    assert row_counts(t) == before
    # Numbers are compared after normalisation: the national form is refused too.
    problem(c.post("/api/v1/messages", json={"text": "Sale!", "to": ["(415) 555-0400"]}), 422, "no-recipients")

    r = c.post("/api/v1/messages", json={"text": "Sale!", "to": [who, other]})
    assert r.status_code == 202, r.text
    assert [x["phone"] for x in r.json()["recipients"]] == [other]
    assert r.json()["rejected"] == [{"input": who, "reason": OPTED_OUT}]
    # A batch: the opted-out message is reported, the others go.
    r = c.post("/api/v1/messages", json={"messages": [{"text": "a", "to": [who]}, {"text": "b", "to": [other]}]})
    assert r.status_code == 202, r.text
    first, second = r.json()["messages"]
    assert (first["id"], first["state"], first["rejected"]) == (None, "rejected", [{"input": who,
                                                                                     "reason": OPTED_OUT}])
    assert second["state"] == "pending" and second["recipients"][0]["phone"] == other

    # The phone uploads the same SMS again (it lost our answer): stored once, nothing changes.
    r = dev.inbound({"id": "in-1", "from": who, "body": " Stop. ", "received_at": now_ms()})
    assert r.json() == {"stored": 0, "duplicates": 1}
    # A message that merely contains the word is no keyword.
    dev.inbound({"id": "in-2", "from": other, "body": "please don't stop the music"})
    assert other not in suppressed(c)

    r = dev.inbound({"id": "in-3", "from": "4155550400", "body": "start", "received_at": now_ms()})
    assert r.status_code == 200 and r.json()["stored"] == 1
    assert who not in suppressed(c)
    r = c.post("/api/v1/messages", json={"text": "Welcome back", "to": [who]})
    assert r.status_code == 202 and r.json()["recipients"][0]["phone"] == who and r.json()["rejected"] == []


def test_stop_and_start_through_the_companion_app(live_server, make_tenant, tmp_path):
    t = make_tenant("stpc")
    c = api_client(live_server, t.slug)
    backend = SimulatorBackend()
    phone = start_phone(live_server, t.slug, tmp_path / "phone", backend=backend, backoff_cap=1.0,
                        heartbeat_interval=60.0, inbound_interval=0.1, flush_interval=0.2)
    who = "+14155550410"
    try:
        backend.inject_inbound(who, "STOP", sim_slot=2)
        wait_until(lambda: who in suppressed(c), 10, what="the STOP to arrive")
        problem(c.post("/api/v1/messages", json={"text": "promo", "to": [who]}), 422, "no-recipients")
        backend.inject_inbound(who, "UNSTOP")
        wait_until(lambda: who not in suppressed(c), 10, what="the UNSTOP to arrive")
        r = c.post("/api/v1/messages", json={"text": "we missed you", "to": [who]})
        assert r.status_code == 202, r.text
        assert wait_for_states(c, r.json()["id"], {"delivered", "failed"})["state"] == "delivered"
        inbox = c.get("/api/v1/inbox").json()["messages"]
        assert [(m["from"], m["body"], m["device_id"]) for m in inbox] == [
            (who, "UNSTOP", phone.state.device_id), (who, "STOP", phone.state.device_id)]
        assert inbox[1]["sim_slot"] == 2
    finally:
        phone.stop()
    assert [(s["to"], s["text"]) for s in backend.sent] == [(who, "we missed you")]


# -- the suppression list API ---------------------------------------------------------------------------

def test_suppression_list_api_and_its_permissions(live_server, make_tenant):
    t = make_tenant("supp")
    reader = api_client(live_server, t.slug, ["messages:read"])
    sender = api_client(live_server, t.slug, ["messages:send"])
    admin = api_client(live_server, t.slug, ["messages:read", "messages:send", "settings:write"])
    who = "+14155550420"

    assert suppressed(reader) == {}
    for r in (reader.post("/api/v1/suppressions", json={"phone": who}),
              sender.post("/api/v1/suppressions", json={"phone": who})):
        problem(r, 403, "forbidden")
    assert suppressed(reader) == {}

    r = admin.post("/api/v1/suppressions", json={"phone": "(415) 555-0420", "reason": "asked us by phone"})
    assert r.status_code == 201 and r.json() == {"phone": who, "reason": "asked us by phone"}, r.text
    entry = suppressed(reader)[who]
    assert (entry["reason"], entry["source"]) == ("asked us by phone", "manual") and parse_time(entry["created_at"])
    r = admin.post("/api/v1/suppressions", json={"phone": who, "reason": "complained"})
    assert r.status_code == 201 and suppressed(reader)[who]["reason"] == "complained"
    assert len(suppressed(reader)) == 1

    p = problem(admin.post("/api/v1/suppressions", json={"phone": "12345"}), 422, "validation-failed")
    assert p["errors"][0]["field"] == "phone"
    problem(admin.post("/api/v1/suppressions", json={"phone": who, "reason": "x" * 201}), 422, "validation-failed")
    problem(admin.post("/api/v1/suppressions", json={}), 422, "validation-failed")

    problem(sender.post("/api/v1/messages", json={"text": "hi", "to": [who]}), 422, "no-recipients")

    for r in (reader.delete(f"/api/v1/suppressions/{quote(who)}"),
              sender.delete(f"/api/v1/suppressions/{quote(who)}")):
        problem(r, 403, "forbidden")
    assert who in suppressed(reader)
    r = admin.delete(f"/api/v1/suppressions/{quote(who)}")
    assert r.status_code == 204, r.text
    assert suppressed(reader) == {}
    problem(admin.delete(f"/api/v1/suppressions/{quote(who)}"), 404, "not-found")
    problem(admin.delete("/api/v1/suppressions/not-a-number"), 404, "not-found")
    r = sender.post("/api/v1/messages", json={"text": "hi", "to": [who]})
    assert r.status_code == 202 and r.json()["recipients"][0]["phone"] == who

    # The national form works in the address too.
    admin.post("/api/v1/suppressions", json={"phone": who})
    assert admin.delete("/api/v1/suppressions/4155550420").status_code == 204
    # Without a token: 401.
    anon = live_server.client(t.slug)
    problem(anon.get("/api/v1/suppressions"), 401, "unauthorized")


def test_suppression_lists_are_per_workspace(live_server, make_tenant, tmp_path):
    a, b = make_tenant("spa"), make_tenant("spb")
    ca, cb = api_client(live_server, a.slug), api_client(live_server, b.slug)
    dev_a = raw_device(live_server, a.slug, tmp_path / "a")
    who = "+14155550430"
    dev_a.inbound({"id": "x1", "from": who, "body": "STOP"})
    assert who in suppressed(ca) and suppressed(cb) == {}
    r = cb.post("/api/v1/messages", json={"text": "B may still write", "to": [who]})
    assert r.status_code == 202 and r.json()["rejected"] == []
    problem(cb.delete(f"/api/v1/suppressions/{quote(who)}"), 404, "not-found")
    assert who in suppressed(ca)


# -- the inbox -------------------------------------------------------------------------------------------

def test_inbox_filters_and_cursor_paging(live_server, make_tenant, tmp_path):
    t = make_tenant("inbx")
    c = api_client(live_server, t.slug)
    d1 = raw_device(live_server, t.slug, tmp_path / "d1")
    d2 = raw_device(live_server, t.slug, tmp_path / "d2")
    base = dt.datetime.now(dt.timezone.utc).replace(microsecond=0) - dt.timedelta(hours=1)

    def at(minutes):
        return int((base + dt.timedelta(minutes=minutes)).timestamp() * 1000)

    alice, bob, carol = "+14155550440", "+14155550441", "+14155550442"
    r = d1.inbound({"id": "p1", "from": alice, "body": "one", "received_at": at(0)},
                   {"id": "p2", "from": bob, "body": "two", "received_at": at(1), "sim_slot": 2},
                   {"id": "p3", "from": alice, "body": "three", "received_at": at(2)})
    assert r.json() == {"stored": 3, "duplicates": 0}, r.text
    r = d2.inbound({"id": "p1", "from": alice, "body": "four", "received_at": at(3)},  # its own id space
                   {"id": "q2", "from": carol, "body": "five", "received_at": at(4)})
    assert r.json() == {"stored": 2, "duplicates": 0}, r.text

    def listed(**params):
        r = c.get("/api/v1/inbox", params=params)
        assert r.status_code == 200, r.text
        return [m["body"] for m in r.json()["messages"]]

    everything = c.get("/api/v1/inbox").json()
    assert [m["body"] for m in everything["messages"]] == ["five", "four", "three", "two", "one"]
    assert everything["next_cursor"] is None
    two = everything["messages"][3]
    assert (two["from"], two["device_id"], two["sim_slot"], two["phone_message_id"]) == (bob, d1.device_id, 2, "p2")
    assert parse_time(two["received_at"]) == base + dt.timedelta(minutes=1)

    assert listed(**{"from": alice}) == ["four", "three", "one"]
    assert listed(**{"from": "(415) 555-0440"}) == ["four", "three", "one"]
    assert listed(device_id=str(d2.device_id)) == ["five", "four"]
    assert listed(**{"from": alice, "device_id": str(d1.device_id)}) == ["three", "one"]
    assert listed(since=(base + dt.timedelta(minutes=2)).isoformat()) == ["five", "four", "three"]
    assert listed(since=(base + dt.timedelta(minutes=2)).isoformat(), **{"from": alice}) == ["four", "three"]
    assert listed(**{"from": "+14155550449"}) == []

    pages, cursor = [], None
    while True:
        page = c.get("/api/v1/inbox", params={"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        pages.append([m["body"] for m in page["messages"]])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == [["five", "four"], ["three", "two"], ["one"]]
    first = c.get("/api/v1/inbox", params={"limit": 1, "from": alice}).json()
    assert [m["body"] for m in first["messages"]] == ["four"]
    rest = c.get("/api/v1/inbox", params={"limit": 5, "from": alice, "cursor": first["next_cursor"]}).json()
    assert [m["body"] for m in rest["messages"]] == ["three", "one"] and rest["next_cursor"] is None

    for params, code in (({"cursor": "%%%"}, "invalid-cursor"), ({"cursor": cursor_of({"before": -1})}, "invalid-cursor"),
                         ({"device_id": "one"}, "invalid-parameter"), ({"since": "last week"}, "invalid-parameter"),
                         ({"limit": "501"}, "invalid-parameter")):
        problem(c.get("/api/v1/inbox", params=params), 400, code)

    # Read access is needed; another workspace sees none of it.
    problem(api_client(live_server, t.slug, ["settings:write"]).get("/api/v1/inbox"), 403, "forbidden")
    assert api_client(live_server, t.slug, ["messages:read"]).get("/api/v1/inbox").status_code == 200
    other = make_tenant("inbo")
    assert api_client(live_server, other.slug).get("/api/v1/inbox").json() == {"messages": [], "next_cursor": None}

    # Malformed inbound is refused as a whole.
    r = d1.inbound({"id": "ok", "from": alice, "body": "fine"}, {"from": alice, "body": "no id"},
                   {"id": "x", "from": "", "body": "no sender"}, {"id": "y", "from": alice, "body": 5})
    assert r.status_code == 422
    assert {e["field"] for e in r.json()["errors"]} == {"messages[1].id", "messages[2].from", "messages[3].body"}
    assert len(listed()) == 5
