"""The companion app (android_companion) against the real server: real client, outbox, runner and
simulator backend; the network between them is a real TCP proxy the tests can cut.

The Termux backend is driven with a stand-in for the Android OS commands (there is no phone
here): it parses argv exactly as Termux:API's ``termux-sms-send`` script does (``getopts
:hn:s:``) and answers ``termux-sms-list`` with JSON, so what the backend *would* send is checked.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from android_companion import cli
from android_companion.backends.simulator import SimulatorBackend
from android_companion.backends.termux import TermuxBackend
from android_companion.outbox import Outbox
from android_companion.runner import Backoff, Companion, pair
from android_companion.state import State
from tests.support.devices import (CuttableProxy, closed_port, history, new_code, phone, run_offline_sweep, sql,
                                   submit, wait_until, waiting_on)
from tests.support.phones import api_client

ROOT = Path(__file__).resolve().parent.parent
REPORTS = "/api/device/v1/reports"
FAST = dict(heartbeat_interval=60.0, inbound_interval=0.1, flush_interval=0.2, backoff_cap=0.5)


def tenant_url(live_server, slug: str) -> str:
    return f"http://{slug}.{live_server.platform.settings.base_domain}:{live_server.port}"


@pytest.fixture
def phones():
    """Start companions through ``phones.start(companion)``; all are stopped (poller included) at the end."""

    class Phones:
        def __init__(self):
            self.running = []

        def start(self, companion: Companion) -> Companion:
            self.running.append(companion)
            return companion.start()

        def stop(self, companion: Companion) -> None:
            companion.stop()
            for th in companion.threads:  # the poller may sit in its long poll; let it end
                th.join(companion.wait + 5)
            if companion in self.running:
                self.running.remove(companion)

    p = Phones()
    yield p
    for c in list(p.running):
        try:
            c.stop()  # joins the sender and flusher; a poller still in a long poll is a daemon and ends alone
        except Exception:
            pass


def paired(live_server, tenant, api, state_dir: Path, backend=None, port=None, wait: int = 2, **options):
    """Pair through the real pairing code API; ``port`` is where the phone connects (a proxy, say)."""
    backend = backend or SimulatorBackend()
    state = pair(state_dir, tenant_url(live_server, tenant.slug), new_code(api), backend,
                 connect_to=f"127.0.0.1:{port or live_server.port}")
    return state, Companion(state_dir, backend, wait=wait, **{**FAST, **options})


def recipient_states(tenant) -> dict:
    return dict(sql(tenant, "SELECT id, state FROM recipients"))


def event_counts(tenant, to_state: str) -> dict:
    return dict(sql(tenant, "SELECT r.id, count(e.id) FROM recipients r LEFT JOIN recipient_events e "
                            "ON e.recipient_id = r.id AND e.to_state = %s GROUP BY r.id", (to_state,)))


def first_heartbeat(api, device_id):
    """Wait until the phone's first heartbeat landed (the simulator reports 87 % battery).

    Settings changed after that reach only the woken long poll; changed before the phone starts, both
    its poller and its first heartbeat would refresh them at once (see the State test below)."""
    wait_until(lambda: api.get(f"/api/v1/devices/{device_id}").json()["battery_level"] == 87, 5,
               message="the first heartbeat")


# -- end to end --------------------------------------------------------------------------------


def test_pair_fetch_report_inbound_end_to_end(live_server, make_tenant, tmp_path, phones, capsys):
    t = make_tenant("e2e")
    api = api_client(live_server, t.slug)
    # The dashboard's pairing code, typed into `smsgw-companion pair` as its QR content.
    code = api.post("/api/v1/devices/pairing-codes", json={}).json()
    state_dir = tmp_path / "phone"
    rc = cli.main(["--state-dir", str(state_dir), "pair", code["pairing_uri"], "--backend", "simulator",
                   "--name", "Checkout phone", "--connect-to", f"127.0.0.1:{live_server.port}"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    state = State.load(state_dir)
    assert state.paired and state.server_url == code["server_url"] and state.token.startswith(f"sgd_{t.slug}_")
    assert f"Paired as device {state.device_id}" in out.out
    assert oct(os.stat(state_dir / "state.json").st_mode & 0o777) == "0o600"
    device = api.get(f"/api/v1/devices/{state.device_id}").json()
    assert (device["name"], device["model"], len(device["sims"])) == ("Checkout phone", "Simulated Pixel 8", 2)

    backend = SimulatorBackend(delivery_delay=0.05)
    companion = phones.start(Companion(state_dir, backend, wait=2, **FAST))
    wait_until(lambda: api.get(f"/api/v1/devices/{state.device_id}").json()["online"], 5, message="online")

    sent = submit(api, [phone(1)], "Your table is ready")
    mid = sent["id"]
    wait_until(lambda: api.get(f"/api/v1/messages/{mid}").json()["state"] == "delivered", 10,
               message="the message to be delivered")
    m = api.get(f"/api/v1/messages/{mid}").json()
    rec = m["recipients"][0]
    assert rec["device_id"] == state.device_id and rec["sent_at"] and rec["delivered_at"]
    assert [h["to"] for h in rec["history"]] == ["pending", "processed", "sent", "delivered"]
    assert [(s["to"], s["text"]) for s in backend.sent] == [(phone(1), "Your table is ready")]

    backend.inject_inbound("+14155550177", "Thanks, on my way")
    inbox = wait_until(lambda: api.get("/api/v1/inbox").json()["messages"], 5, message="the inbound SMS")
    assert [(x["from"], x["body"], x["device_id"]) for x in inbox] == [
        ("+14155550177", "Thanks, on my way", state.device_id)]
    assert api.get("/api/v1/inbox?from=%2B14155550177").json()["messages"][0]["body"] == "Thanks, on my way"

    # A person replies from the command line (what `make run` suggests), as the recipient.
    assert cli.main(["--state-dir", str(state_dir), "sim-receive", "--from", phone(1), "See you at 8"]) == 0
    assert f"Received from {phone(1)}" in capsys.readouterr().out
    replies = wait_until(lambda: api.get("/api/v1/inbox", params={"from": phone(1)}).json()["messages"], 5,
                         message="the reply")
    assert [(x["body"], x["device_id"]) for x in replies] == [("See you at 8", state.device_id)]
    assert cli.main(["--state-dir", str(state_dir), "sim-receive", "--from", " ", "x"]) == 2
    assert cli.main(["--state-dir", str(tmp_path / "unpaired"), "sim-receive", "--from", phone(1), "x"]) == 1
    assert "Not paired" in capsys.readouterr().err

    phones.stop(companion)
    assert cli.main(["--state-dir", str(state_dir), "status"]) == 0
    assert "waiting to upload: 0 report(s), 0 inbound SMS" in capsys.readouterr().out


def test_two_companions_share_the_work_and_send_each_message_once(live_server, make_tenant, tmp_path, phones):
    t = make_tenant("two")
    api = api_client(live_server, t.slug)
    started = []
    for name in ("a", "b"):
        _, companion = paired(live_server, t, api, tmp_path / name)
        started.append(phones.start(companion))
    wait_until(lambda: all(d["online"] for d in api.get("/api/v1/devices").json()["devices"]), 5)
    n = 40  # more than one phone may send in a minute (30 by default): both must take part
    submit(api, [phone(i) for i in range(n)], "one each")
    wait_until(lambda: list(recipient_states(t).values()).count("delivered") == n, 20,
               message="all recipients delivered")
    over_the_air = [s["to"] for c in started for s in c.backend.sent]
    assert len(over_the_air) == len(set(over_the_air)) == n
    assert all(c.backend.sent for c in started), "both phones should have sent some"
    assert set(event_counts(t, "sent").values()) == {1}


# -- network trouble -----------------------------------------------------------------------------


def test_a_network_drop_in_the_middle_of_a_report_batch_loses_and_duplicates_nothing(
        live_server, make_tenant, tmp_path, phones):
    t = make_tenant("drop")
    api = api_client(live_server, t.slug)
    proxy = CuttableProxy(live_server.port)
    try:
        backend = SimulatorBackend(delivery_delay=0.05)
        _, companion = paired(live_server, t, api, tmp_path / "phone", backend, port=proxy.port)
        # The first two report uploads reach the server and are applied there, but the answers are lost;
        # the next two are cut before they arrive. The phone keeps everything and tries again.
        proxy.plan(REPORTS, ["swallowed", "swallowed", "blocked", "blocked"])
        phones.start(companion)
        n = 25
        sent = submit(api, [phone(i) for i in range(n)], "through a bad network")
        wait_until(lambda: list(recipient_states(t).values()).count("delivered") == n, 20,
                   message="every recipient delivered")
        wait_until(lambda: companion.outbox.counts()["reports"] == 0, 5, message="an empty outbox")
        assert proxy.count(REPORTS, "swallowed") == 2 and proxy.count(REPORTS, "blocked") == 2
        assert proxy.count(REPORTS, "forwarded") >= 1
        h = history(api, sent["id"])
        assert len(h) == n
        for rid, seen in h.items():
            assert seen == ["pending", "processed", "sent", "delivered"], (rid, seen)
        assert set(event_counts(t, "sent").values()) == {1} and set(event_counts(t, "delivered").values()) == {1}
        over_the_air = [s["to"] for s in backend.sent]
        assert len(over_the_air) == len(set(over_the_air)) == n
        assert companion.fatal is None
    finally:
        proxy.close()


def test_reports_in_the_outbox_survive_a_restart(live_server, make_tenant, tmp_path, phones):
    t = make_tenant("restart")
    api = api_client(live_server, t.slug)
    proxy = CuttableProxy(live_server.port)
    try:
        state_dir = tmp_path / "phone"
        first_radio = SimulatorBackend()
        state, first = paired(live_server, t, api, state_dir, first_radio, port=proxy.port)
        proxy.block(REPORTS)  # reports cannot get through
        phones.start(first)
        sent = submit(api, [phone(1), phone(2)], "remember me")
        wait_until(lambda: len(first_radio.sent) == 2 and first.outbox.counts()["reports"] >= 4, 10,
                   message="sent, with reports waiting in the outbox")
        # The server goes out of reach entirely, and the phone app is stopped.
        proxy.down()
        phones.stop(first)
        assert set(recipient_states(t).values()) == {"processed"}
        kept = Outbox(state_dir / "outbox.sqlite3")
        assert kept.counts()["reports"] >= 4
        kept.close()

        # The server is reachable again; a new app process starts on the same state directory.
        proxy.unblock(REPORTS)
        proxy.up()
        second_radio = SimulatorBackend()
        second = phones.start(Companion(state_dir, second_radio, wait=2, **FAST))
        wait_until(lambda: set(recipient_states(t).values()) == {"delivered"}, 10,
                   message="the kept reports to arrive")
        assert second_radio.sent == []  # nothing was sent again
        assert {rid: seen for rid, seen in history(api, sent["id"]).items()} == {
            r["id"]: ["pending", "processed", "sent", "delivered"] for r in sent["recipients"]}
        wait_until(lambda: second.outbox.counts()["reports"] == 0, 5)
    finally:
        proxy.close()


def test_inbound_received_while_the_server_is_unreachable_is_uploaded_after_a_restart(
        live_server, make_tenant, tmp_path, phones):
    t = make_tenant("offline")
    api = api_client(live_server, t.slug)
    state_dir = tmp_path / "phone"
    state, _ = paired(live_server, t, api, state_dir)
    # The phone is pointed at a port nobody listens on: the server is unreachable.
    state.connect_to = f"127.0.0.1:{closed_port()}"
    state.save(state_dir)
    radio = SimulatorBackend()
    lonely = phones.start(Companion(state_dir, radio, wait=2, **{**FAST, "backoff_cap": 30.0}))
    radio.inject_inbound("+14155550142", "Are you open today?")
    wait_until(lambda: lonely.outbox.counts()["inbound"] == 1, 5, message="the SMS in the outbox")
    time.sleep(1.5)
    # It backs off rather than hammering the network.
    assert 1 <= lonely.stats["network_errors"] <= 20, lonely.stats
    phones.stop(lonely)
    assert api.get("/api/v1/inbox").json()["messages"] == []

    state = State.load(state_dir)
    state.connect_to = f"127.0.0.1:{live_server.port}"
    state.save(state_dir)
    again = phones.start(Companion(state_dir, SimulatorBackend(), wait=2, **FAST))
    inbox = wait_until(lambda: api.get("/api/v1/inbox").json()["messages"], 5, message="the upload")
    assert [(m["from"], m["body"]) for m in inbox] == [("+14155550142", "Are you open today?")]
    wait_until(lambda: again.outbox.counts()["inbound"] == 0, 5)
    assert again.stats["inbound_flushed"] == 1


def test_one_inbound_sms_the_server_refuses_does_not_hold_up_the_others(live_server, make_tenant, tmp_path,
                                                                       phones):
    """An SMS without a sender (the server requires one) must not block every later SMS in the outbox."""
    t = make_tenant("poison")
    api = api_client(live_server, t.slug)
    radio = SimulatorBackend()
    state, companion = paired(live_server, t, api, tmp_path / "phone", radio)
    phones.start(companion)
    radio.inject_inbound("", "a message from nobody")
    time.sleep(0.3)
    radio.inject_inbound("+14155550188", "a normal reply")
    inbox = wait_until(lambda: api.get("/api/v1/inbox").json()["messages"], 5,
                       message="the normal reply in the inbox")
    assert "a normal reply" in [m["body"] for m in inbox]


def test_a_message_handed_out_twice_is_reported_not_sent_twice(platform, live_server, make_tenant, tmp_path,
                                                                phones):
    t = make_tenant("twice")
    api = api_client(live_server, t.slug)
    proxy = CuttableProxy(live_server.port)
    try:
        radio = SimulatorBackend()
        state, companion = paired(live_server, t, api, tmp_path / "phone", radio, port=proxy.port)
        proxy.block(REPORTS)  # the phone's reports are lost ...
        phones.start(companion)
        sent = submit(api, [phone(5)], "only once, please")
        rid = sent["recipients"][0]["id"]
        wait_until(lambda: len(radio.sent) == 1 and companion.outbox.counts()["reports"] >= 2, 10)
        # ... the phone drops off the network and the server hands its work back.
        proxy.down()
        time.sleep(0.3)
        sql(t, "UPDATE devices SET last_seen_at = now() - interval '10 minutes'", fetch=False)
        assert run_offline_sweep(platform, t) == [state.device_id]
        assert recipient_states(t) == {rid: "pending"}
        # Back online, the phone is handed the same message again.
        proxy.up()
        wait_until(lambda: event_counts(t, "processed")[rid] == 2 and companion.stats["fetched"] == 2, 10,
                   message="the message handed out a second time")
        proxy.unblock(REPORTS)
        wait_until(lambda: recipient_states(t) == {rid: "delivered"}, 10, message="delivered")
        assert [s["to"] for s in radio.sent] == [phone(5)]
        assert history(api, sent["id"])[rid] == ["pending", "processed", "pending", "processed", "sent",
                                                 "delivered"]
    finally:
        proxy.close()


def test_a_disabled_phone_stops_with_a_clear_error(live_server, make_tenant, tmp_path, phones):
    t = make_tenant("cdis")
    api = api_client(live_server, t.slug)
    state, companion = paired(live_server, t, api, tmp_path / "phone", wait=30)
    phones.start(companion)
    wait_until(lambda: api.get(f"/api/v1/devices/{state.device_id}").json()["online"], 5)
    api.patch(f"/api/v1/devices/{state.device_id}", json={"enabled": False})
    wait_until(lambda: companion.fatal, 3, message="the phone to give up")
    assert "refused this phone" in companion.fatal and "Pair it again" in companion.fatal
    assert companion.stop_event.is_set()


def test_a_settings_change_reaches_a_running_phone_at_once(live_server, make_tenant, tmp_path, phones):
    t = make_tenant("cset")
    api = api_client(live_server, t.slug)
    state, companion = paired(live_server, t, api, tmp_path / "phone", wait=30)
    phones.start(companion)
    first_heartbeat(api, state.device_id)
    wait_until(lambda: waiting_on(live_server.platform, t.slug, state.device_id), 5, message="the long poll")
    time.sleep(0.2)
    t0 = time.monotonic()
    r = api.patch(f"/api/v1/devices/{state.device_id}", json={"settings": {"delay": {"min_ms": 10, "max_ms": 20}}})
    version = r.json()["settings_version"]
    wait_until(lambda: companion.state.settings_version == version, 3, message="the phone to learn the settings")
    assert time.monotonic() - t0 < 1.5
    assert companion.state.settings["delay"] == {"min_ms": 10, "max_ms": 20}
    assert State.load(tmp_path / "phone").settings_version == version  # kept on disk too


def test_a_message_that_expired_while_waiting_on_the_phone_is_not_sent(live_server, make_tenant, tmp_path, phones):
    t = make_tenant("cexp")
    api = api_client(live_server, t.slug)
    radio = SimulatorBackend()
    state, companion = paired(live_server, t, api, tmp_path / "phone", radio)
    phones.start(companion)
    first_heartbeat(api, state.device_id)
    # The phone waits 1.6 s before each send (its random delay), longer than the message may live.
    api.patch(f"/api/v1/devices/{state.device_id}", json={"settings": {"delay": {"min_ms": 1600, "max_ms": 1600}}})
    wait_until(lambda: companion.state.settings["delay"]["min_ms"] == 1600, 5)
    sent = submit(api, [phone(9)], "Your code is 123456 (valid 1 s)", ttl=1)
    wait_until(lambda: companion.stats["fetched"] == 1, 5, message="the phone to take it")
    time.sleep(2.2)
    assert radio.sent == [], "an SMS was sent after its valid_until"
    assert api.get(f"/api/v1/messages/{sent['id']}").json()["state"] not in ("sent", "delivered")


def test_a_stopped_phone_takes_no_more_work(platform, live_server, make_tenant, tmp_path, phones):
    """After stop() nothing may be claimed for a phone that will never send it."""
    t = make_tenant("cstop")
    api = api_client(live_server, t.slug)
    radio = SimulatorBackend()
    state, companion = paired(live_server, t, api, tmp_path / "phone", radio, wait=30)
    phones.start(companion)
    wait_until(lambda: waiting_on(platform, t.slug, state.device_id), 5, message="the phone's long poll")
    companion.stop()
    sent = submit(api, [phone(3)], "after the phone was stopped")
    time.sleep(1.5)
    rid = sent["recipients"][0]["id"]
    assert recipient_states(t) == {rid: "pending"}, "a stopped phone claimed a message it will never send"
    assert radio.sent == []


def test_the_phone_state_can_be_saved_from_two_threads_at_once(tmp_path):
    """The poller and the flusher both save new settings; concurrent saves must not fail."""
    State(server_url="https://acme.example.com", token="t").save(tmp_path)
    errors = []

    def saver(n):
        for i in range(200):
            try:
                State(server_url="https://acme.example.com", token="t", settings_version=n * 1000 + i).save(tmp_path)
            except Exception as exc:  # surfaced below
                errors.append(exc)
                return

    threads = [threading.Thread(target=saver, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert errors == []
    assert State.load(tmp_path).paired


# -- the outbox and backoff as units -------------------------------------------------------------------


def test_the_outbox_keeps_everything_until_acknowledged(tmp_path):
    box = Outbox(tmp_path / "o.sqlite3")
    box.add_report(7, "sent", None, "+14155550100", at=1_700_000_000.5)
    box.add_report(7, "delivered")
    assert box.add_inbound("p-1", "+1", "hi", 1_700_000_001.0) is True
    assert box.add_inbound("p-1", "+1", "hi", 1_700_000_001.0) is False  # the phone read it twice
    box.mark_handled(7, "sent")
    box.close()
    box = Outbox(tmp_path / "o.sqlite3")
    pending = box.pending_reports()
    assert [r for _, r in pending][0] == {"message_id": 7, "recipient": "+14155550100", "state": "sent",
                                          "error_code": None, "at": 1_700_000_000_500}
    assert [r["state"] for _, r in pending] == ["sent", "delivered"]
    assert box.pending_inbound() == [{"id": "p-1", "from": "+1", "body": "hi", "received_at": 1_700_000_001_000,
                                      "sim_slot": None}]
    assert box.handled(7) == ("sent", None) and box.handled(8) is None
    box.ack_reports([pending[0][0]])
    box.ack_inbound(["p-1"])
    assert [r["state"] for _, r in box.pending_reports()] == ["delivered"]
    assert box.pending_inbound() == [] and box.known_inbound("p-1")
    assert box.counts() == {"reports": 1, "inbound": 0}
    box.close()


def test_backoff_is_quick_after_a_healthy_server_then_grows_with_jitter_and_honours_retry_after():
    saved = random.getstate()
    random.seed(20240601)
    try:
        b = Backoff(base=0.5, cap=30.0, quick_cap=5.0, quick=6)
        samples = {k: [] for k in range(1, 13)}
        for _ in range(400):
            b.reset()
            for k in range(1, 13):
                samples[k].append(b.next())
        # The first attempts after the server was last reached: never more than 5 s ...
        for k in range(1, 7):
            assert all(0.5 <= v <= 5.0 for v in samples[k]), k
        # ... spread out (decorrelated jitter: no two phones wait alike) ...
        for k, values in samples.items():
            assert len(set(values)) == len(values), k
        assert max(samples[3]) > 4.0
        # ... and only a server that stays away lets the waits grow, up to the cap.
        later = [v for k in range(8, 13) for v in samples[k]]
        assert all(v <= 30.0 for v in later) and max(later) > 25.0
        assert statistics.mean(later) > 2 * statistics.mean(samples[2])
        b.reset()
        assert b.next() <= 1.5
        # A Retry-After is a floor, with as much again of jitter on top.
        waits = [b.next(retry_after=2.0) for _ in range(200)]
        assert all(2.0 <= w <= 4.0 for w in waits) and max(waits) - min(waits) > 1.5
    finally:
        random.setstate(saved)



# -- the pairing command -------------------------------------------------------------------------


def test_parse_pairing_accepts_url_and_code_or_the_qr_string():
    assert cli.parse_pairing("https://acme.example.com", "ABCD2345") == ("https://acme.example.com", "ABCD2345")
    assert cli.parse_pairing("smsgw://pair?url=https%3A%2F%2Facme.example.com%3A8443&code=ABCD2345", None) == (
        "https://acme.example.com:8443", "ABCD2345")
    for target, code, message in (("smsgw://pair?url=https%3A%2F%2Facme.example.com", None, "lacks url or code"),
                                  ("smsgw://pair?code=ABCD2345", None, "lacks url or code"),
                                  ("acme.example.com", "ABCD2345", "must start with https://"),
                                  ("https://acme.example.com", None, "give the pairing code"),
                                  ("https://acme.example.com", "", "give the pairing code")):
        with pytest.raises(ValueError, match=message):
            cli.parse_pairing(target, code)


def test_pair_command_explains_bad_input(live_server, make_tenant, tmp_path, capsys, monkeypatch):
    t = make_tenant("clierr")
    api = api_client(live_server, t.slug)
    url = tenant_url(live_server, t.slug)
    via = ["--backend", "simulator", "--connect-to", f"127.0.0.1:{live_server.port}"]

    def run(*args):
        rc = cli.main(["--state-dir", str(tmp_path / "s"), "pair", *args])
        return rc, capsys.readouterr().err

    rc, err = run("ftp://example.com", "ABCD2345", *via)
    assert rc == 2 and "must start with https://" in err
    rc, err = run(url, *via)
    assert rc == 2 and "give the pairing code" in err
    rc, err = run("smsgw://pair?url=http%3A%2F%2Fx", *via)
    assert rc == 2 and "lacks url or code" in err
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    rc, err = run(url, "WRONGCDE", *via)
    assert rc == 1 and "the server refused the code" in err and "not valid" in err
    # A phone whose shell speaks German reads the server's refusal in German (Accept-Language from LANG).
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    rc, err = run(url, "WRONGCDE", *via)
    assert rc == 1 and "Dieser Kopplungscode ist ungültig" in err
    monkeypatch.delenv("LANG")
    code = new_code(api)
    sql(t, "UPDATE pairing_codes SET expires_at = now() - interval '1 second'", fetch=False)
    rc, err = run(url, code, *via)
    assert rc == 1 and "expired" in err
    rc, err = run(url, new_code(api), "--backend", "simulator", "--connect-to", f"127.0.0.1:{closed_port()}")
    assert rc == 1 and "cannot reach" in err
    assert not State.load(tmp_path / "s").paired
    assert api.get("/api/v1/devices").json()["devices"] == []
    # `run` before pairing says what to do.
    assert cli.main(["--state-dir", str(tmp_path / "s"), "run", "--backend", "simulator"]) == 2
    assert "not paired yet" in capsys.readouterr().err


def test_the_installed_command_pairs_with_the_qr_string(live_server, make_tenant, tmp_path):
    t = make_tenant("clibin")
    api = api_client(live_server, t.slug)
    uri = api.post("/api/v1/devices/pairing-codes", json={}).json()["pairing_uri"]
    exe = Path(sys.executable).parent / "smsgw-companion"
    proc = subprocess.run([str(exe), "--state-dir", str(tmp_path / "s"), "pair", uri, "--backend", "simulator",
                           "--connect-to", f"127.0.0.1:{live_server.port}"], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    state = State.load(tmp_path / "s")
    assert f"Paired as device {state.device_id}" in proc.stdout
    assert [d["id"] for d in api.get("/api/v1/devices").json()["devices"]] == [state.device_id]
    # A rotated token is installed with set-token.
    new = api.post(f"/api/v1/devices/{state.device_id}/token", json={}).json()["token"]
    assert cli.main(["--state-dir", str(tmp_path / "s"), "set-token", new]) == 0
    assert State.load(tmp_path / "s").token == new


# -- the Termux backend, with a stand-in for the Android OS commands ----------------------------------


class FakeAndroid:
    """Answers Termux:API commands like a phone would; ``termux-sms-send`` parses its arguments as the
    real script does (``getopts :hn:s:``, then the rest, or stdin, is the text)."""

    def __init__(self):
        self.calls: list[dict] = []
        self.inbox: list[dict] = []
        self.sms_out: list[tuple] = []  # (recipients, slot, text) actually handed to Android
        self.missing = False
        self.radio_off = False

    def __call__(self, args, capture_output=True, text=True, timeout=None, input=None, **kwargs):
        args = list(args)
        self.calls.append({"argv": args, "input": input})
        if self.missing:
            raise FileNotFoundError(args[0])
        if args[0] == "termux-sms-send":
            if self.radio_off:
                return subprocess.CompletedProcess(args, 1, "", "Error: generic failure\n")
            return self._sms_send(args, input)
        answers = {"termux-sms-list": self.inbox, "termux-battery-status": {"percentage": 64,
                                                                            "plugged": "PLUGGED_USB"},
                   "termux-telephony-deviceinfo": {"sim_operator_name": "Vodafone", "line1_number": "+4915100000"}}
        if args[0] == "getprop":
            return subprocess.CompletedProcess(args, 0, {"ro.product.model": "Pixel 6",
                                                         "ro.build.version.release": "14"}[args[1]] + "\n", "")
        return subprocess.CompletedProcess(args, 0, json.dumps(answers[args[0]]), "")

    def _sms_send(self, args, stdin):
        rest = args[1:]
        recipients = slot = None
        i = 0
        while i < len(rest):
            a = rest[i]
            if a == "--":
                i += 1
                break
            if not a.startswith("-") or a == "-":
                break
            j = 1
            while j < len(a):
                c = a[j]
                if c in "ns":
                    if j + 1 < len(a):
                        value = a[j + 1:]
                    else:
                        i += 1
                        if i >= len(rest):
                            return subprocess.CompletedProcess(args, 1, f"termux-sms-send: illegal option -{c}\n",
                                                               "")
                        value = rest[i]
                    if c == "n":
                        recipients = value
                    else:
                        slot = value
                    break
                if c == "h":
                    return subprocess.CompletedProcess(args, 0, "Usage: termux-sms-send -n number ...\n", "")
                return subprocess.CompletedProcess(args, 1, f"termux-sms-send: illegal option -{c}\n", "")
            i += 1
        if not recipients:
            return subprocess.CompletedProcess(args, 1, "termux-sms-send: no recipient number given\n", "")
        words = rest[i:]
        body = " ".join(words) if words else (stdin or "")
        self.sms_out.append((recipients, slot, body.rstrip("\n")))
        return subprocess.CompletedProcess(args, 0, "", "")


def events():
    got = []
    return got, lambda state, error_code=None: got.append((state, error_code))


def test_termux_backend_sends_through_termux_sms_send():
    android = FakeAndroid()
    backend = TermuxBackend(runner=android)
    got, on_event = events()
    backend.send("+4915112345678", "Hello from the shop", 2, on_event)
    assert android.calls[0]["argv"][:5] == ["termux-sms-send", "-n", "+4915112345678", "-s", "1"]  # 0-based slot
    assert android.sms_out == [("+4915112345678", "1", "Hello from the shop")]
    assert got == [("sent", None)]  # Termux:API gives no delivery report
    backend.send("+4915112345678", "Default SIM", None, on_event)
    assert "-s" not in android.calls[1]["argv"] and android.sms_out[1] == ("+4915112345678", None, "Default SIM")
    # The command fails, or Termux:API is not installed: the message failed, retriably.
    android.radio_off = True
    backend.send("+4915112345678", "Radio off", None, on_event)
    assert got[-1] == ("failed", "GENERIC_FAILURE")
    android.missing = True
    backend.send("+4915112345678", "No Termux:API", 1, on_event)
    assert got[-1] == ("failed", "GENERIC_FAILURE")
    assert len(android.sms_out) == 2


def test_termux_backend_sends_texts_that_start_with_a_dash(tmp_path):
    """``termux-sms-send`` parses options with getopts: a text like "-h ..." or "-20% ..." after the
    options is taken for an option (usage, exit 0, nothing sent; or 'illegal option')."""
    android = FakeAndroid()
    backend = TermuxBackend(runner=android)
    got, on_event = events()
    backend.send("+4915112345678", "-20% on everything today", 1, on_event)
    backend.send("+4915112345678", "-h is the help flag", None, on_event)
    assert android.sms_out == [("+4915112345678", "0", "-20% on everything today"),
                               ("+4915112345678", None, "-h is the help flag")]
    assert got == [("sent", None), ("sent", None)]


def test_termux_backend_status_and_device_info():
    android = FakeAndroid()
    backend = TermuxBackend(runner=android)
    assert backend.device_info() == {"model": "Pixel 6", "os_version": "14",
                                     "sims": [{"slot": 1, "operator": "Vodafone", "number": "+4915100000"}]}
    assert backend.status() == {"battery_level": 64, "charging": True}
    android.missing = True
    assert backend.status() == {} and backend.read_inbound() == []
    assert backend.device_info()["model"] == "Android"


def sms(i: int, body: str, received: str = "2024-05-01 10:00:00") -> dict:
    return {"_id": i, "threadid": 1, "type": "inbox", "read": False, "number": f"+49151000{i:04d}",
            "received": received, "body": body}


def test_termux_inbox_watermark_skips_history_and_survives_restarts(tmp_path):
    mark = tmp_path / "inbox-watermark"
    android = FakeAndroid()
    android.inbox = [sms(5, "old news"), sms(3, "older news")]
    backend = TermuxBackend(runner=android, watermark_path=str(mark))
    assert backend.read_inbound() == []  # the phone's history is never uploaded
    assert mark.read_text() == "5"
    android.inbox.insert(0, sms(6, "new!", "2024-05-01 10:05:00"))
    got = backend.read_inbound()
    assert got == [{"id": "6", "from": "+491510000006", "body": "new!", "sim_slot": None,
                    "received_at": dt.datetime(2024, 5, 1, 10, 5).timestamp()}]
    assert backend.read_inbound() == []  # not twice
    assert android.calls[0]["argv"] == ["termux-sms-list", "-t", "inbox", "-l", "50"]
    # Stopped; an SMS arrives; started again: it is uploaded, the rest is not.
    android.inbox.insert(0, sms(7, "while you were away"))
    restarted = TermuxBackend(runner=android, watermark_path=str(mark))
    assert [m["id"] for m in restarted.read_inbound()] == ["7"]
    assert mark.read_text() == "7"


def test_termux_first_sms_on_a_phone_with_an_empty_inbox_is_uploaded(tmp_path):
    android = FakeAndroid()
    backend = TermuxBackend(runner=android, watermark_path=str(tmp_path / "inbox-watermark"))
    assert backend.read_inbound() == []  # nothing there yet
    android.inbox = [sms(1, "the very first SMS")]
    assert [m["body"] for m in backend.read_inbound()] == ["the very first SMS"]


def test_the_phone_users_language_comes_from_the_posix_locale():
    from android_companion.client import accept_language

    assert accept_language({"LANG": "de_DE.UTF-8"}) == "de-DE"
    assert accept_language({"LC_ALL": "fr_FR@euro", "LANG": "de_DE.UTF-8"}) == "fr-FR"  # LC_ALL wins
    assert accept_language({"LC_MESSAGES": "es", "LANG": "it_IT"}) == "es"
    assert accept_language({"LANG": "C.UTF-8"}) is None and accept_language({"LANG": "POSIX"}) is None
    assert accept_language({}) is None
    assert accept_language({"LANG": "de_DE\r\nX-Evil: 1"}) is None  # never a header of its own
