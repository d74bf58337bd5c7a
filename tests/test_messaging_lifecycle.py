"""A recipient's life after it was accepted: reports (never backwards), routing between phones with
limits and waiting reasons, retries on another phone, expiry and scheduled release at a chosen
time, hand-back of silent claims, cancelling, message events, and a server killed mid-flow.

Time passing is simulated by running our own sweeper (``lifecycle.sweep`` / ``expire``) with a
``now`` in the future, inside the tenant's transaction, as the periodic task does.
"""

from __future__ import annotations

import datetime as dt
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from addons.messaging import dispatch, lifecycle
from addons.messaging.models import Recipient
from android_companion.backends.simulator import SimulatorBackend
from android_companion.runner import Companion, pair
from core.addons import hookimpl
from core.clock import utcnow
from core.db import tenant_transaction
from tests.support.messaging import parse_time, raw_device, row_counts, sql, wait_for_states, wait_until
from tests.support.phones import api_client, api_token, pair_phone, start_phone

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = "application/problem+json"
FINAL = {"delivered", "failed", "expired", "cancelled"}
COMPANION_OPTIONS = dict(heartbeat_interval=60.0, inbound_interval=0.1, flush_interval=0.2, backoff_cap=1.0)


def sweep_at(tenant, when: dt.datetime) -> dict:
    """The sweeper, run at ``when`` in the tenant's transaction (what its due job does)."""
    with tenant_transaction(tenant.ref):
        return lifecycle.sweep(tenant, now=when)


def send(client, **body) -> dict:
    r = client.post("/api/v1/messages", json=body)
    assert r.status_code == 202, r.text
    return r.json()


def get(client, mid) -> dict:
    r = client.get(f"/api/v1/messages/{mid}")
    assert r.status_code == 200, r.text
    return r.json()


def steps(recipient: dict) -> list[tuple]:
    return [(h["from"], h["to"], h["source"]) for h in recipient["history"]]


def by_phone(message: dict) -> dict:
    return {r["phone"]: r for r in message["recipients"]}


def ms(t: dt.datetime) -> int:
    return int(t.timestamp() * 1000)


# -- reports: idempotent and never backwards ------------------------------------------------------

def test_duplicated_and_reordered_reports_never_move_a_recipient_backwards(live_server, make_tenant, tmp_path):
    t = make_tenant("rep")
    c = api_client(live_server, t.slug)
    dev = raw_device(live_server, t.slug, tmp_path / "dev")
    m = send(c, text="reports", to=["+14155550201", "+14155550202", "+14155550203", "+14155550204"])
    handed = {x["to"]: x["id"] for x in dev.fetch()}
    assert sorted(handed) == ["+14155550201", "+14155550202", "+14155550203", "+14155550204"]
    a, b, cc, d = (handed[p] for p in sorted(handed))
    t0 = utcnow().replace(microsecond=0) - dt.timedelta(seconds=30)

    def report(*items):
        r = dev.report(*items)
        assert r.status_code == 200, r.text
        return [(x["status"], x["state"]) for x in r.json()["results"]]

    # A: 'delivered' overtakes 'sent' (reordered in one batch): delivered stays.
    assert report({"message_id": a, "state": "delivered", "at": ms(t0 + dt.timedelta(seconds=2))},
                  {"message_id": a, "state": "sent", "at": ms(t0 + dt.timedelta(seconds=1))}) == [
        ("applied", "delivered"), ("ignored", "delivered")]
    # B: 'sent' twice (the phone lost our answer and retried), then delivered, then a late failure.
    assert report({"message_id": b, "state": "sent", "at": ms(t0)}) == [("applied", "sent")]
    assert report({"message_id": b, "state": "sent", "at": ms(t0)}) == [("ignored", "sent")]
    assert report({"message_id": b, "state": "delivered", "at": ms(t0 + dt.timedelta(seconds=3))}) == [
        ("applied", "delivered")]
    assert report({"message_id": b, "state": "failed", "error_code": "GENERIC_FAILURE"}) == [
        ("ignored", "delivered")]
    # C: sent, then the delivery failed (a real forward step), then a stray 'delivered'.
    assert report({"message_id": cc, "state": "sent"}, {"message_id": cc, "state": "failed", "error_code": "34"},
                  {"message_id": cc, "state": "delivered"}) == [
        ("applied", "sent"), ("applied", "failed"), ("ignored", "failed")]
    # D: failed for good before it left, then a late 'sent'.
    assert report({"message_id": d, "state": "failed", "error_code": "INVALID_DESTINATION"},
                  {"message_id": d, "state": "sent"}) == [("applied", "failed"), ("ignored", "failed")]
    # A report for something this phone does not hold counts for nothing.
    assert report({"message_id": 987654321, "state": "delivered"}) == [("unknown", None)]

    events_before = row_counts(t)["events"]
    # The phone replays everything (it never saw our answers): nothing changes.
    replay = report({"message_id": a, "state": "sent"}, {"message_id": a, "state": "delivered"},
                    {"message_id": b, "state": "sent"}, {"message_id": b, "state": "delivered"},
                    {"message_id": cc, "state": "failed", "error_code": "34"}, {"message_id": d, "state": "failed"})
    assert {status for status, _ in replay} == {"ignored"}
    assert row_counts(t)["events"] == events_before

    got = by_phone(get(c, m["id"]))
    ra, rb, rc, rd = (got[p] for p in sorted(got))
    assert (ra["state"], rb["state"], rc["state"], rd["state"]) == ("delivered", "delivered", "failed", "failed")
    assert (rc["error_code"], rd["error_code"]) == ("34", "INVALID_DESTINATION")
    assert steps(ra) == [(None, "pending", "api"), ("pending", "processed", "claim"),
                         ("processed", "delivered", "device")]
    assert ra["sent_at"] == ra["delivered_at"]
    assert parse_time(ra["delivered_at"]) == t0 + dt.timedelta(seconds=2)
    assert steps(rb) == [(None, "pending", "api"), ("pending", "processed", "claim"),
                         ("processed", "sent", "device"), ("sent", "delivered", "device")]
    assert parse_time(rb["history"][2]["reported_at"]) == t0
    assert parse_time(rb["history"][3]["reported_at"]) == t0 + dt.timedelta(seconds=3)
    assert steps(rc)[-2:] == [("processed", "sent", "device"), ("sent", "failed", "device")]
    assert steps(rd)[-1] == ("processed", "failed", "device")
    for rec in (ra, rb, rc, rd):
        for h in rec["history"]:
            assert parse_time(h["at"]) and h["source"]
        assert all(h["device_id"] == dev.device_id for h in rec["history"][1:])

    # Malformed reports are refused as a whole.
    r = dev.report({"message_id": a, "state": "read"}, {"message_id": "x", "state": "sent"})
    assert r.status_code == 422 and r.headers["Content-Type"].startswith(PROBLEM)
    assert {e["field"] for e in r.json()["errors"]} == {"reports[0].state", "reports[1].message_id"}


# -- routing between phones, limits and waiting reasons ----------------------------------------------

def test_work_flows_to_the_phone_that_is_not_rate_limited_and_waiting_says_why(live_server, make_tenant, tmp_path):
    t = make_tenant("rate")
    c = api_client(live_server, t.slug)
    backend_a, backend_b = SimulatorBackend(), SimulatorBackend()
    phone_a = start_phone(live_server, t.slug, tmp_path / "a", backend=backend_a, **COMPANION_OPTIONS)
    phone_b = start_phone(live_server, t.slug, tmp_path / "b", backend=backend_b, **COMPANION_OPTIONS)
    a, b = phone_a.state.device_id, phone_b.state.device_id
    try:
        r = c.patch(f"/api/v1/devices/{a}", json={"settings": {"limits": {"per_minute": 1}}})
        assert r.status_code == 200 and r.json()["settings"]["limits"]["per_minute"] == 1, r.text
        # A spends its one send of this minute on a message asked of it explicitly ...
        first = send(c, text="for A", to=["+14155550210"], device_id=a)
        assert wait_for_states(c, first["id"], FINAL)["recipients"][0]["device_id"] == a
        # ... so everything else goes to B.
        batch = send(c, messages=[{"text": f"flow {i}", "to": [f"+1415555021{i}"]} for i in range(1, 6)])
        for m in batch["messages"]:
            rec = wait_for_states(c, m["id"], FINAL)["recipients"][0]
            assert (rec["state"], rec["device_id"]) == ("delivered", b), rec
        assert [s["to"] for s in backend_a.sent] == ["+14155550210"]
        assert sorted(s["to"] for s in backend_b.sent) == [f"+1415555021{i}" for i in range(1, 6)]

        # Now B is limited too (it used five this minute): new work waits, and says until when.
        r = c.patch(f"/api/v1/devices/{b}", json={"settings": {"limits": {"per_minute": 1}}})
        assert r.status_code == 200, r.text
        waiting = send(c, text="waits", to=["+14155550219"])
        time.sleep(0.5)  # both phones had their chance to fetch
        rec = get(c, waiting["id"])["recipients"][0]
        assert rec["state"] == "pending" and rec["device_id"] is None
        latest = dict(sql(t, "SELECT device_id, max(at) FROM recipient_events WHERE to_state = 'processed' "
                             "GROUP BY device_id"))
        expected = "; ".join(sorted({
            f"rate limit until {(latest[d] + dt.timedelta(minutes=1)).astimezone(dt.timezone.utc):%H:%M} UTC"
            for d in (a, b)}))
        assert rec["waiting_reason"] == expected
    finally:
        phone_a.stop()
        phone_b.stop()


def test_waiting_reason_without_an_online_phone(live_server, make_tenant, tmp_path):
    t = make_tenant("wait")
    c = api_client(live_server, t.slug)
    m = send(c, text="nobody", to=["+14155550220"])
    assert get(c, m["id"])["recipients"][0]["waiting_reason"].startswith("no online device")  # no phone at all
    pair_phone(live_server, t.slug, tmp_path / "off", client=c)  # paired, but never connected since
    rec = get(c, m["id"])["recipients"][0]
    assert (rec["state"], rec["waiting_reason"]) == ("pending", "no online device")
    later = send(c, text="later", to=["+14155550221"], send_at=(utcnow() + dt.timedelta(hours=2)).isoformat())
    reason = get(c, later["id"])["recipients"][0]["waiting_reason"]
    assert reason == f"scheduled for {parse_time(later['send_at']).astimezone(dt.timezone.utc):%Y-%m-%d %H:%M} UTC"


def test_waiting_reasons_are_in_utc_whatever_the_database_time_zone(live_server, make_tenant, tmp_path):
    """PostgreSQL answers timestamps in its session time zone (the server's default, often the machine's
    local zone); reasons that say "UTC" must show UTC times all the same."""
    t = make_tenant("tz")
    c = api_client(live_server, t.slug)
    dev = raw_device(live_server, t.slug, tmp_path / "dev")
    r = c.patch(f"/api/v1/devices/{dev.device_id}", json={"settings": {"limits": {"per_minute": 1}}})
    assert r.status_code == 200, r.text
    send_at = (utcnow() + dt.timedelta(days=3)).replace(hour=9, minute=30, second=0, microsecond=0)
    scheduled = send(c, text="later", to=["+14155550225"], send_at=send_at.isoformat())
    first = send(c, text="first", to=["+14155550226"])
    assert [x["to"] for x in dev.fetch()] == ["+14155550226"]
    limited = send(c, text="second", to=["+14155550227"])
    claim_at = sql(t, "SELECT at FROM recipient_events WHERE to_state = 'processed'")[0][0]
    expected = {
        scheduled["id"]: f"scheduled for {send_at:%Y-%m-%d} 09:30 UTC",
        limited["id"]: f"rate limit until {(claim_at + dt.timedelta(minutes=1)).astimezone(dt.timezone.utc):%H:%M} UTC",
    }
    assert {mid: get(c, mid)["recipients"][0]["waiting_reason"] for mid in expected} == expected
    assert first["id"] not in expected
    for zone in ("America/New_York", "Asia/Kolkata"):
        with tenant_transaction(t.ref) as db:
            db.execute_sql(f"SET LOCAL TIME ZONE '{zone}'")
            got = {r.message_id: dispatch.why_waiting(r)
                   for r in Recipient.select().where(Recipient.message.in_(list(expected)))}
        assert got == expected, zone


# -- retries --------------------------------------------------------------------------------------------

def test_retriable_failure_is_retried_on_another_phone_and_a_permanent_one_is_not(live_server, make_tenant,
                                                                                   tmp_path):
    t = make_tenant("rtry")
    c = api_client(live_server, t.slug)
    flaky, wrong = "+14155550230", "+14155550231"
    backend_a = SimulatorBackend(fail_numbers={flaky: "NO_SERVICE", wrong: "INVALID_DESTINATION"})
    backend_b = SimulatorBackend()
    state_b, _ = pair_phone(live_server, t.slug, tmp_path / "b", backend=backend_b, client=c)  # not running yet
    phone_a = start_phone(live_server, t.slug, tmp_path / "a", backend=backend_a, **COMPANION_OPTIONS)
    a, b = phone_a.state.device_id, state_b.device_id
    phone_b = None
    try:
        m = send(c, text="try twice", to=[flaky, wrong])

        def a_done():
            got = by_phone(get(c, m["id"]))
            return got if got[flaky]["attempts"] == 1 and got[flaky]["state"] == "pending" \
                and got[wrong]["state"] == "failed" else None

        got = wait_until(a_done, 10, what="phone A to fail both")
        assert got[flaky]["error_code"] == "NO_SERVICE" and got[flaky]["device_id"] is None
        assert got[flaky]["waiting_reason"] == "no online device"  # only B may take it now, and B is off
        assert (got[wrong]["attempts"], got[wrong]["error_code"], got[wrong]["device_id"]) == (
            1, "INVALID_DESTINATION", a)

        phone_b = Companion(tmp_path / "b", backend_b, wait=5, **COMPANION_OPTIONS).start()
        got = by_phone(wait_for_states(c, m["id"], FINAL))
        assert (got[flaky]["state"], got[flaky]["device_id"], got[flaky]["attempts"]) == ("delivered", b, 2)
        assert steps(got[flaky]) == [(None, "pending", "api"), ("pending", "processed", "claim"),
                                     ("processed", "pending", "retry"), ("pending", "processed", "claim"),
                                     ("processed", "sent", "device"), ("sent", "delivered", "device")]
        history = got[flaky]["history"]
        assert (history[1]["device_id"], history[2]["device_id"], history[2]["error_code"]) == (a, a, "NO_SERVICE")
        assert history[3]["device_id"] == b
        time.sleep(0.3)
        got = by_phone(get(c, m["id"]))
        assert (got[wrong]["state"], got[wrong]["attempts"]) == ("failed", 1)
        assert steps(got[wrong]) == [(None, "pending", "api"), ("pending", "processed", "claim"),
                                     ("processed", "failed", "device")]
    finally:
        phone_a.stop()
        if phone_b:
            phone_b.stop()
    assert backend_a.sent == []
    assert [s["to"] for s in backend_b.sent] == [flaky]


# -- time: expiry, hand-back, scheduled release ------------------------------------------------------------

def test_ttl_expiry_when_time_passes(live_server, make_tenant, tmp_path):
    t = make_tenant("ttl")
    c = api_client(live_server, t.slug)
    dev = raw_device(live_server, t.slug, tmp_path / "dev")
    m = send(c, text="stale soon", to=["+14155550240", "+14155550241"], ttl=300)
    assert parse_time(m["valid_until"]) - parse_time(m["created_at"]) == pytest.approx(
        dt.timedelta(seconds=300), abs=dt.timedelta(seconds=2))
    held = dev.fetch(limit=1)  # one recipient is on a phone (processed), the other still queued
    assert len(held) == 1 and parse_time(held[0]["valid_until"]) == parse_time(m["valid_until"])

    assert sweep_at(t, utcnow() + dt.timedelta(seconds=200))["expired"] == 0
    assert {r["state"] for r in get(c, m["id"])["recipients"]} == {"pending", "processed"}
    result = sweep_at(t, utcnow() + dt.timedelta(seconds=301))
    assert (result["expired"], result["handed_back"]) == (2, 0)
    got = get(c, m["id"])
    assert got["state"] == "expired"
    for rec in got["recipients"]:
        assert rec["state"] == "expired" and "waiting_reason" not in rec
        assert steps(rec)[-1][1:] == ("expired", "sweeper")
    assert sweep_at(t, utcnow() + dt.timedelta(hours=1))["expired"] == 0  # idempotent

    # The phone's late word changes nothing, and nothing expired is handed out.
    r = dev.report({"message_id": held[0]["id"], "state": "sent"})
    assert r.json()["results"][0]["status"] == "ignored"
    assert dev.fetch() == []
    # lifecycle.expire on its own, too.
    m2 = send(c, text="also stale", to=["+14155550242"], valid_until=(utcnow() + dt.timedelta(minutes=5)).isoformat())
    with tenant_transaction(t.ref):
        assert lifecycle.expire(t, now=utcnow() + dt.timedelta(minutes=4)) == 0
    with tenant_transaction(t.ref):
        assert lifecycle.expire(t, now=utcnow() + dt.timedelta(minutes=6)) == 1
    assert get(c, m2["id"])["state"] == "expired"


def test_a_claim_the_phone_never_reports_is_handed_back_after_the_claim_timeout(live_server, make_tenant,
                                                                                 tmp_path):
    t = make_tenant("hand")
    c = api_client(live_server, t.slug)
    silent = raw_device(live_server, t.slug, tmp_path / "silent")
    other = raw_device(live_server, t.slug, tmp_path / "other")
    m = send(c, text="silent phone", to=["+14155550245"])
    assert [x["to"] for x in silent.fetch()] == ["+14155550245"]
    timeout = sql(t, "SELECT claim_timeout_seconds FROM messaging_settings")[0][0]
    assert sweep_at(t, utcnow() + dt.timedelta(seconds=timeout - 60))["handed_back"] == 0
    assert get(c, m["id"])["recipients"][0]["state"] == "processed"
    assert sweep_at(t, utcnow() + dt.timedelta(seconds=timeout + 60))["handed_back"] == 1
    rec = get(c, m["id"])["recipients"][0]
    assert (rec["state"], rec["device_id"]) == ("pending", None)
    assert steps(rec)[-1] == ("processed", "pending", "handback")
    got = other.fetch()
    assert [x["to"] for x in got] == ["+14155550245"]
    assert other.report({"message_id": got[0]["id"], "state": "delivered"}).json()["results"][0]["status"] == "applied"
    rec = get(c, m["id"])["recipients"][0]
    assert (rec["state"], rec["device_id"], rec["attempts"]) == ("delivered", other.device_id, 2)


def test_scheduled_message_is_not_handed_out_before_send_at(live_server, make_tenant, tmp_path):
    t = make_tenant("sched")
    c = api_client(live_server, t.slug)
    dev = raw_device(live_server, t.slug, tmp_path / "dev")
    send_at = utcnow() + dt.timedelta(seconds=2)
    m = send(c, text="at the stroke", to=["+14155550250"], send_at=send_at.isoformat())
    assert parse_time(m["send_at"]) == send_at
    assert get(c, m["id"])["recipients"][0]["waiting_reason"].startswith("scheduled for ")
    assert dev.fetch() == []
    got = wait_until(lambda: dev.fetch(), 6, interval=0.2, what="the scheduled message to become due")
    assert [x["to"] for x in got] == ["+14155550250"]
    claimed = parse_time(get(c, m["id"])["recipients"][0]["history"][1]["at"])
    assert claimed >= send_at
    # Another, scheduled later, is still held back.
    later = send(c, text="later", to=["+14155550251"], send_at=(utcnow() + dt.timedelta(hours=1)).isoformat())
    assert dev.fetch() == []
    sql(t, "UPDATE recipients SET not_before = now() - interval '1 second' WHERE message_id = %s", (later["id"],))
    assert [x["to"] for x in dev.fetch()] == ["+14155550251"]


def test_time_limits_that_cannot_be_met_are_refused(live_server, make_tenant):
    t = make_tenant("vu")
    c = api_client(live_server, t.slug)
    now = utcnow()
    cases = [
        ({"valid_until": (now - dt.timedelta(minutes=1)).isoformat()}, {"valid_until"}),
        ({"ttl": 60, "valid_until": (now + dt.timedelta(hours=1)).isoformat()}, {"ttl"}),
        ({"send_at": (now + dt.timedelta(hours=2)).isoformat(),
          "valid_until": (now + dt.timedelta(hours=1)).isoformat()}, {"valid_until"}),
        ({"send_at": (now + dt.timedelta(days=400)).isoformat()}, {"send_at"}),
        ({"ttl": 0}, {"ttl"}),
    ]
    for extra, fields in cases:
        r = c.post("/api/v1/messages", json={"text": "timed", "to": ["+14155550255"], **extra})
        assert r.status_code == 422 and r.headers["Content-Type"].startswith(PROBLEM), (extra, r.text)
        assert {e["field"] for e in r.json()["errors"]} == fields, (extra, r.json())
    assert row_counts(t)["messages"] == 0


# -- cancelling ------------------------------------------------------------------------------------------

def test_cancel_pending_and_scheduled_recipients(live_server, make_tenant, tmp_path):
    t = make_tenant("cncl")
    c = api_client(live_server, t.slug)
    dev = raw_device(live_server, t.slug, tmp_path / "dev")
    m = send(c, text="two of them", to=["+14155550260", "+14155550261"])
    held = dev.fetch(limit=1)
    assert [x["to"] for x in held] == ["+14155550260"]
    scheduled = send(c, text="tomorrow", to=["+14155550262"], send_at=(utcnow() + dt.timedelta(days=1)).isoformat())

    r = c.post(f"/api/v1/messages/{m['id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["cancelled"] == 1
    got = by_phone(r.json())
    assert (got["+14155550260"]["state"], got["+14155550261"]["state"]) == ("processed", "cancelled")
    assert steps(get(c, m["id"])["recipients"][1])[-1] == ("pending", "cancelled", "api")

    r = c.post(f"/api/v1/messages/{scheduled['id']}/cancel")
    assert r.status_code == 200 and r.json()["cancelled"] == 1 and r.json()["state"] == "cancelled"
    again = c.post(f"/api/v1/messages/{scheduled['id']}/cancel")
    assert again.status_code == 200 and again.json()["cancelled"] == 0
    later = sql(t, "SELECT not_before FROM recipients WHERE message_id = %s", (scheduled["id"],))[0][0]
    sql(t, "UPDATE recipients SET not_before = now() - interval '1 second' WHERE message_id = %s", (scheduled["id"],))
    assert later and dev.fetch() == []  # cancelled work is never handed out, even when due

    # The phone delivers the one it held; now nothing is left to cancel.
    dev.report({"message_id": held[0]["id"], "state": "delivered"})
    r = c.post(f"/api/v1/messages/{m['id']}/cancel")
    assert r.status_code == 409 and r.headers["Content-Type"].startswith(PROBLEM)
    assert r.json()["code"] == "not-cancellable" and "delivered" in r.json()["detail"]
    assert {x["state"] for x in get(c, m["id"])["recipients"]} == {"delivered", "cancelled"}


def test_a_delivered_message_cannot_be_cancelled(live_server, make_tenant, tmp_path):
    t = make_tenant("cdel")
    c = api_client(live_server, t.slug)
    dev = raw_device(live_server, t.slug, tmp_path / "dev")
    m = send(c, text="done", to=["+14155550263"])
    dev.report({"message_id": dev.fetch()[0]["id"], "state": "delivered"})
    events = row_counts(t)["events"]
    r = c.post(f"/api/v1/messages/{m['id']}/cancel")
    assert r.status_code == 409 and r.json()["code"] == "not-cancellable"
    assert get(c, m["id"])["state"] == "delivered" and row_counts(t)["events"] == events


def test_another_tenant_can_neither_read_nor_cancel_a_message(live_server, make_tenant):
    a, b = make_tenant("owna"), make_tenant("ownb")
    ca, cb = api_client(live_server, a.slug), api_client(live_server, b.slug)
    mine = [send(ca, text=f"A secret {i}", to=["+14155550270"]) for i in range(3)]
    theirs = send(cb, text="B's own", to=["+14155550271"])
    assert theirs["id"] == mine[0]["id"]  # each workspace numbers its own messages
    target = mine[2]["id"]
    for r in (cb.get(f"/api/v1/messages/{target}"), cb.post(f"/api/v1/messages/{target}/cancel")):
        assert r.status_code == 404 and r.headers["Content-Type"].startswith(PROBLEM), r.text
        assert "A secret" not in r.text
    assert [m["text"] for m in cb.get("/api/v1/messages").json()["messages"]] == ["B's own"]
    # B cancelling "its" message 1 cancels its own, not A's message 1.
    assert cb.post(f"/api/v1/messages/{theirs['id']}/cancel").json()["cancelled"] == 1
    # B's token on A's address is refused outright.
    stray = requests.Session()
    stray.headers.update(ca.headers)
    stray.headers["Authorization"] = cb.headers["Authorization"]
    r = stray.get(f"{live_server.url}/api/v1/messages/{target}", timeout=10)
    assert r.status_code == 401
    for m in mine:
        got = get(ca, m["id"])
        assert got["state"] == "pending" and got["text"] == m["text"]
        assert steps(got["recipients"][0]) == [(None, "pending", "api")]


# -- message events through pluggy -------------------------------------------------------------------------

class EventRecorder:
    """A real subscriber of ``smsgw_message_events`` (what a webhook addon would be)."""

    def __init__(self, slug: str):
        self.slug = slug
        self.events: list[tuple[str, dict]] = []
        self.lock = threading.Lock()

    @hookimpl
    def smsgw_message_events(self, tenant, events):
        if tenant.slug == self.slug:
            with self.lock:
                self.events.extend((event, dict(data)) for event, data in events)

    def of(self, event: str) -> list[dict]:
        with self.lock:
            return [d for e, d in self.events if e == event]


def test_message_events_reach_subscribers_with_their_data(platform, live_server, make_tenant, tmp_path):
    # The messaging addon keeps the process's platform, as start-up binds it; bind it to the serving one
    # again in case another test built a second Platform in this process.
    platform.registry.hook.smsgw_configure(platform=platform)
    t = make_tenant("evt")
    c = api_client(live_server, t.slug)
    recorder = EventRecorder(t.slug)
    platform.registry.pm.register(recorder, name=f"recorder-{t.slug}")
    ok, bad = "+14155550280", "+14155550281"
    backend = SimulatorBackend(fail_numbers={bad: "INVALID_DESTINATION"}, delivery_delay=0.02)
    phone = start_phone(live_server, t.slug, tmp_path / "phone", backend=backend, **COMPANION_OPTIONS)
    device = phone.state.device_id
    try:
        m = send(c, text="events", to=[ok, bad], reference="evt-1")
        rid = {r["phone"]: r["id"] for r in m["recipients"]}
        wait_for_states(c, m["id"], FINAL)
        backend.inject_inbound("+14155550282", "Thanks!", sim_slot=2)
        wait_until(lambda: recorder.of("received"), 10, what="the inbound SMS")
    finally:
        phone.stop()
    try:
        scheduled = send(c, text="to cancel", to=["+14155550283"],
                         send_at=(utcnow() + dt.timedelta(hours=1)).isoformat())
        assert c.post(f"/api/v1/messages/{scheduled['id']}/cancel").status_code == 200
        short = send(c, text="to expire", to=["+14155550284"], ttl=60)
        assert sweep_at(t, utcnow() + dt.timedelta(minutes=2))["expired"] == 1
    finally:
        platform.registry.pm.unregister(recorder)

    keys = {"message_id", "recipient_id", "phone", "state", "device_id", "error_code", "reference", "at"}
    accepted = recorder.of("accepted")
    assert sorted(d["phone"] for d in accepted) == [ok, bad, "+14155550283", "+14155550284"]
    for d in accepted:
        assert set(d) == keys and d["state"] == "pending" and d["device_id"] is None and parse_time(d["at"])
    assert {d["recipient_id"]: d["reference"] for d in accepted if d["message_id"] == m["id"]} == {
        rid[ok]: "evt-1", rid[bad]: "evt-1"}

    def one(event):
        got = recorder.of(event)
        assert len(got) == 1, (event, recorder.events)
        assert set(got[0]) == keys, got[0]
        assert parse_time(got[0]["at"])
        return got[0]

    sent, delivered, failed = one("sent"), one("delivered"), one("failed")
    assert (sent["recipient_id"], sent["phone"], sent["state"], sent["device_id"], sent["reference"]) == (
        rid[ok], ok, "sent", device, "evt-1")
    assert (delivered["recipient_id"], delivered["state"], delivered["device_id"]) == (rid[ok], "delivered", device)
    assert parse_time(delivered["at"]) >= parse_time(sent["at"])
    assert (failed["recipient_id"], failed["state"], failed["error_code"], failed["device_id"]) == (
        rid[bad], "failed", "INVALID_DESTINATION", device)
    cancelled, expired = one("cancelled"), one("expired")
    assert (cancelled["message_id"], cancelled["state"], cancelled["phone"]) == (
        scheduled["id"], "cancelled", "+14155550283")
    assert (expired["message_id"], expired["state"], expired["phone"]) == (short["id"], "expired", "+14155550284")
    received = recorder.of("received")
    assert len(received) == 1
    r = received[0]
    assert {"inbound_id", "from", "body", "device_id", "received_at"} <= set(r)
    assert (r["from"], r["body"], r["device_id"], r["sim_slot"], r["keyword"]) == (
        "+14155550282", "Thanks!", device, 2, None)
    assert parse_time(r["received_at"])
    inbox = c.get("/api/v1/inbox").json()["messages"]
    assert [x["id"] for x in inbox] == [r["inbound_id"]]
    # Unregistered: no more events reach it.
    before = len(recorder.events)
    send(c, text="after", to=["+14155550285"])
    assert len(recorder.events) == before


# -- a phone whose work was handed back while it was sending -------------------------------------------------

def test_a_phone_that_sent_work_handed_back_meanwhile_still_gets_it_delivered_once(live_server, make_tenant,
                                                                                    tmp_path):
    """The phone takes a message and sends it; while it sends, the sweeper hands the claim back (its
    timeout passed) and the phone cannot take it back at once (its limit is used up). Its reports then
    arrive for work it no longer holds. When it may fetch again it is handed the same message: it must
    not send it twice, and the message must end delivered, as it was."""
    t = make_tenant("late")
    c = api_client(live_server, t.slug)
    backend = SimulatorBackend(send_latency=1.0)
    state, _ = pair_phone(live_server, t.slug, tmp_path / "phone", backend=backend, client=c)
    r = c.patch(f"/api/v1/devices/{state.device_id}", json={"settings": {"limits": {"per_minute": 1}}})
    assert r.status_code == 200, r.text
    phone = Companion(tmp_path / "phone", backend, wait=5, **COMPANION_OPTIONS).start()
    try:
        m = send(c, text="slow radio", to=["+14155550290"])
        wait_until(lambda: get(c, m["id"])["recipients"][0]["state"] == "processed", 5, what="the claim")
        timeout = sql(t, "SELECT claim_timeout_seconds FROM messaging_settings")[0][0]
        assert sweep_at(t, utcnow() + dt.timedelta(seconds=timeout + 60))["handed_back"] == 1
        wait_until(lambda: backend.sent, 5, what="the phone to send it")
        wait_until(lambda: phone.outbox.counts()["reports"] == 0 and phone.stats["reports_flushed"] >= 2, 5,
                   what="the phone to upload its reports")
        # Its limit lifted, the phone fetches again.
        r = c.patch(f"/api/v1/devices/{state.device_id}", json={"settings": {"limits": {"per_minute": 0}}})
        assert r.status_code == 200, r.text
        wait_until(lambda: get(c, m["id"])["recipients"][0]["state"] not in ("pending", "processed"), 10,
                   what="the message to leave the queue")
        time.sleep(0.5)
        rec = get(c, m["id"])["recipients"][0]
    finally:
        phone.stop()
    assert [s["to"] for s in backend.sent] == ["+14155550290"]
    assert rec["state"] == "delivered", rec


# -- the server killed mid-flow ----------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``smsgw serve --with-worker`` as a real subprocess against this session's database."""

    def __init__(self, cli_env: dict, port: int):
        self.env = dict(cli_env, SMSGW_PORT=str(port), PYTHONUNBUFFERED="1")
        self.port = port
        self.proc = None
        self.output: list[str] = []

    def start(self, timeout: float = 60) -> "Server":
        self.proc = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--with-worker", "--port",
                                      str(self.port)], env=self.env, cwd=ROOT, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue = queue.Queue()

        def drain(proc=self.proc):
            for line in proc.stdout:
                self.output.append(line)
                lines.put(line)
            lines.put(None)

        threading.Thread(target=drain, daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            if line is None:
                break
            if "Press Ctrl-C to stop." in line:
                return self
        self.kill()
        pytest.fail("smsgw serve did not start:\n" + "".join(self.output[-50:]))

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


def test_sigkill_of_the_server_mid_flow_loses_nothing_and_sends_nothing_twice(platform, make_tenant, cli_env,
                                                                              tmp_path):
    t = make_tenant("kill")
    port = free_port()
    server = Server(cli_env, port).start()
    phone = None
    accepted: dict[int, tuple] = {}
    sweeps = []
    try:
        http = requests.Session()
        http.headers.update({"Host": f"{t.slug}.localhost:{port}", "Authorization": f"Bearer {api_token(t.slug)}"})
        base = f"http://127.0.0.1:{port}"
        r = http.post(base + "/api/v1/devices/pairing-codes", json={}, timeout=10)
        assert r.status_code == 201, r.text
        backend = SimulatorBackend(send_latency=0.05)
        state = pair(tmp_path / "phone", f"http://{t.slug}.localhost:{port}", r.json()["code"], backend,
                     connect_to=f"127.0.0.1:{port}")
        # No per-minute cap (the default is 30): 50 messages, and claims again after a hand-back.
        r = http.patch(f"{base}/api/v1/devices/{state.device_id}", timeout=10,
                       json={"settings": {"limits": {"per_minute": 0}}})
        assert r.status_code == 200, r.text
        phone = Companion(tmp_path / "phone", backend, wait=2, heartbeat_interval=60.0, inbound_interval=0.5,
                          flush_interval=0.1, backoff_cap=0.5).start()

        def submit(first: int, count: int):
            r = http.post(base + "/api/v1/messages", timeout=10, json={"messages": [
                {"text": f"killed mid-flow #{i}", "to": [f"+1415555{300 + i:04d}"]} for i in range(first, first + count)]})
            assert r.status_code == 202, r.text
            for m in r.json()["messages"]:
                accepted[m["recipients"][0]["id"]] = (m["recipients"][0]["phone"], m["text"])

        def final_count():
            return sql(t, "SELECT count(*) FROM recipients WHERE state IN ('delivered', 'failed', 'expired')")[0][0]

        submit(0, 30)
        try:
            wait_until(lambda: len(backend.sent) >= 5, 20, interval=0.005, what="the phone to be sending")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nphone: {phone.stats} {phone.fatal}\nserver:\n"
                                 + "".join(server.output[-40:])) from None
        server.kill()  # SIGKILL: the web process and its in-process worker die mid-flow
        assert final_count() < 30  # it died mid-flow

        server.start()
        submit(30, 20)
        # Kill it again while the phone's reports stream in.
        done_before = final_count()
        wait_until(lambda: final_count() > done_before, 15, interval=0.005, what="reports after the restart")
        server.kill()
        assert final_count() < len(accepted)
        server.start()

        n = len(accepted)
        timeout = sql(t, "SELECT claim_timeout_seconds FROM messaging_settings")[0][0]
        quiet_since, last_sent = time.monotonic(), len(backend.sent)
        deadline = time.monotonic() + 45
        while True:
            rows = sql(t, "SELECT id, state FROM recipients")
            if len(rows) == n and all(s in FINAL for _, s in rows):
                break
            assert time.monotonic() < deadline, f"not settled: {sorted(rows)}"
            if len(backend.sent) != last_sent:
                quiet_since, last_sent = time.monotonic(), len(backend.sent)
            idle = phone.outbox.counts()["reports"] == 0 and phone.work.qsize() == 0
            if idle and time.monotonic() - quiet_since > 1.0:
                # The phone is idle and has reported all it got: what is still claimed was lost with the
                # dead process. Run the sweeper as it runs once the claim timeout has passed.
                sweeps.append(sweep_at(t, utcnow() + dt.timedelta(seconds=timeout + 60)))
                quiet_since = time.monotonic()
            time.sleep(0.2)
    finally:
        if phone:
            phone.stop()
        server.kill()

    final = dict(sql(t, "SELECT id, state FROM recipients"))
    assert sorted(final) == sorted(accepted)  # none lost, none invented
    assert set(final.values()) == {"delivered"}, final
    over_the_air = [(s["to"], s["text"]) for s in backend.sent]
    assert len(over_the_air) == len(set(over_the_air)), "a message was sent twice"
    assert sorted(over_the_air) == sorted(accepted.values())
