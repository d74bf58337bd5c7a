"""Pairing never takes over a phone that is already paired, and one device keeps one long poll.

* A pairing code pairs a *new* device, whatever ``device_uid`` the phone sends: the uid is chosen
  by the phone, so it cannot be what decides which device (and whose token) a pairing replaces.
* A removed device never comes back through pairing.
* Only the Customer's "Re-pair this phone" on the device's page makes a code that replaces that
  device's token (keeping its history); the old token is refused at once, in every process
  (``platform.credentials_changed`` flushes principal caches and NOTIFYs the others), and a poll
  of the old token that is still parked gets no work.
* A second long poll with the same device token answers the first at once; the newest gets the work.
"""

from __future__ import annotations

import re
import time

import pytest

from core.notify import Listener
from core.tenancy import TENANT_CHANNEL
from tests.support.devices import (
    LongPoll, device_client, fetch, new_code, phone, raw_device, register, sql, submit, wait_until, waiting_on,
)
from tests.support.identity import owner_email, post_form, sign_in
from tests.support.phones import api_client
from tests.support.problems import problem


def repair_code(live_server, slug: str, device_id: int) -> str:
    """The Customer presses "Re-pair this phone" on the device's page; the code it shows."""
    c = sign_in(live_server, slug, f"owner@{slug}.example")
    c.get(f"/devices/{device_id}")
    r = post_form(c, f"/devices/{device_id}", {"action": "repair"})
    assert r.status_code == 200, (r.status_code, r.text[:500])
    assert r.headers["Cache-Control"] == "no-store"
    found = re.search(r'id="pairing-code">([2-9A-Z]{8})<', r.text)
    assert found, r.text[:2000]
    return found.group(1)


def test_an_ordinary_code_with_a_known_device_uid_pairs_a_new_device(live_server, make_tenant):
    t = make_tenant("uidnew")
    api = api_client(live_server, t.slug)
    old_id, old_token = raw_device(live_server, t.slug, api, uid="victim-phone", name="Till")
    old = device_client(live_server, t.slug, old_token)
    assert fetch(old).status_code == 200  # its principal is now cached too

    # Someone holding any pairing code sends the victim phone's uid.
    r = register(live_server, t.slug, new_code(api), uid="victim-phone", name="Intruder")
    assert r.status_code == 201, r.text
    assert r.json()["device_id"] != old_id
    new_token = r.json()["token"]

    # The old phone was not touched: its token works and it is still "Till".
    assert fetch(old).status_code == 200
    r = api.get(f"/api/v1/devices/{old_id}")
    assert r.status_code == 200 and r.json()["name"] == "Till"
    assert fetch(device_client(live_server, t.slug, new_token)).status_code == 200
    assert sorted(d["name"] for d in api.get("/api/v1/devices").json()["devices"]) == ["Intruder", "Till"]


def test_a_removed_device_never_comes_back_through_pairing(live_server, make_tenant):
    t = make_tenant("uidgone")
    api = api_client(live_server, t.slug)
    gone_id, gone_token = raw_device(live_server, t.slug, api, uid="gone-phone")
    # A re-pair code made before the removal must not bring it back either.
    code_for_gone = repair_code(live_server, t.slug, gone_id)
    assert api.delete(f"/api/v1/devices/{gone_id}").status_code == 204

    body = problem(register(live_server, t.slug, code_for_gone, uid="gone-phone"), 400, "device-removed")
    assert "removed" in body["detail"]
    r = register(live_server, t.slug, new_code(api), uid="gone-phone")
    assert r.status_code == 201 and r.json()["device_id"] != gone_id

    assert api.get(f"/api/v1/devices/{gone_id}").status_code == 404
    problem(device_client(live_server, t.slug, gone_token).get("/api/device/v1/settings"), 401, "invalid-token")
    assert sql(t, "SELECT removed_at IS NOT NULL, token_hash IS NULL FROM devices WHERE id = %s",
               (gone_id,)) == [(True, True)]


def test_re_pairing_from_the_device_page_replaces_the_token_and_keeps_the_history(platform, live_server,
                                                                                  make_tenant):
    t = make_tenant("repair")
    api = api_client(live_server, t.slug)
    device_id, old_token = raw_device(live_server, t.slug, api, uid="old-uid", name="Counter phone")
    old = device_client(live_server, t.slug, old_token)
    r = old.post("/api/device/v1/inbound", json={"messages": [
        {"id": "in-1", "from": phone(1), "body": "kept", "received_at": "2026-01-01T10:00:00Z"}]})
    assert r.status_code == 200 and r.json()["stored"] == 1
    assert fetch(old).status_code == 200  # cached principal of the old token

    # Another process's view: what the platform's listener hears on the tenant channel.
    heard: list[str] = []
    listener = Listener(platform.app_url)
    listener.subscribe(TENANT_CHANNEL, heard.append)
    listener.start()
    try:
        assert listener.connected.wait(10)
        code = repair_code(live_server, t.slug, device_id)
        # The old phone is still parked in a long poll when the new pairing happens.
        parked = LongPoll(old, wait=30).start()
        wait_until(lambda: waiting_on(platform, t.slug, device_id), message="the old token's poll to park")

        r = register(live_server, t.slug, code, uid="reset-phone-uid", model="Pixel 8")
        assert r.status_code == 201, r.text
        assert r.json()["device_id"] == device_id and r.json()["name"] == "Counter phone"
        new_token = r.json()["token"]
        assert new_token != old_token

        # NOTIFY: every process flushes its cached principals. (A listener also hears None once when it
        # connects, meaning "refresh everything": wait for the slug itself.)
        wait_until(lambda: t.slug in heard, timeout=10, message="the tenant's NOTIFY")
    finally:
        listener.stop()

    # The old token is refused at once (it was cached a moment ago), also by its parked poll,
    # which is refused rather than handed the work that comes next.
    problem(old.get("/api/device/v1/settings"), 401, "invalid-token")
    parked.join(10)
    problem(parked.response, 401, "invalid-token")
    new = device_client(live_server, t.slug, new_token)
    sent = submit(api, [phone(2)], "after the re-pair")
    got = fetch(new).json()["messages"]
    assert [m["id"] for m in got] == [sent["id"]]

    # Same device: its history, name and settings stay; nothing new was created; the code is spent.
    assert sql(t, "SELECT count(*) FROM devices") == [(1,)]
    assert sql(t, "SELECT body FROM device_inbound WHERE device_id = %s", (device_id,)) == [("kept",)]
    assert sql(t, "SELECT device_uid, model FROM devices WHERE id = %s", (device_id,)) == [("reset-phone-uid",
                                                                                             "Pixel 8")]
    problem(register(live_server, t.slug, code, uid="again"), 400, "code-used")


def test_only_the_customer_can_make_a_re_pair_code_and_only_for_a_device_of_theirs(live_server, make_tenant):
    t = make_tenant("repairno")
    api = api_client(live_server, t.slug)
    device_id, _ = raw_device(live_server, t.slug, api)
    c = sign_in(live_server, t.slug, owner_email(t))
    c.get("/devices")
    r = post_form(c, "/devices/999999", {"action": "repair"})
    assert r.status_code == 404
    assert sql(t, "SELECT count(*) FROM pairing_codes WHERE repair_device_id IS NOT NULL") == [(0,)]
    # Without the XSRF token of the page nothing is made.
    r = c.post(f"/devices/{device_id}", data={"action": "repair"})
    assert r.status_code == 403
    assert sql(t, "SELECT count(*) FROM pairing_codes WHERE repair_device_id IS NOT NULL") == [(0,)]


# -- one long poll per device -----------------------------------------------------------------


def test_a_second_long_poll_answers_the_first_and_the_newest_gets_the_work(platform, live_server, make_tenant):
    t = make_tenant("onepoll")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    first = LongPoll(device_client(live_server, t.slug, token), wait=30).start()
    wait_until(lambda: waiting_on(platform, t.slug, device_id), message="the first poll to park")
    time.sleep(0.2)  # its first look is done: it is waiting

    second = LongPoll(device_client(live_server, t.slug, token), wait=30).start()
    first.join(5)
    assert first.response.status_code == 200
    assert first.response.json()["messages"] == []
    assert first.finished - second.started < 2.0, "the first poll was not answered promptly"
    assert not second.done

    sent = submit(api, [phone(3)], "for the newest poll")
    second.join(10)
    assert second.response.status_code == 200
    assert [m["id"] for m in second.response.json()["messages"]] == [sent["id"]]
    # Nothing of this device is left parked.
    wait_until(lambda: not waiting_on(platform, t.slug, device_id), message="no poll left parked")
    from addons.devices.longpoll import PARKED
    assert f"{t.slug}:device:{device_id}" not in PARKED


def test_many_polls_of_one_token_hold_one_parked_poll(platform, live_server, make_tenant):
    t = make_tenant("pollpile")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    polls = []
    for _ in range(6):
        polls.append(LongPoll(device_client(live_server, t.slug, token), wait=30).start())
        wait_until(lambda: waiting_on(platform, t.slug, device_id), message="a poll to park")
        time.sleep(0.1)
    for poll in polls[:-1]:
        poll.join(5)
        assert poll.response.status_code == 200 and poll.response.json()["messages"] == []
    from addons.devices.service import wake_key
    assert len(platform.wakeups.waiters_of(wake_key(t.slug, device_id))) == 1
    assert not polls[-1].done
    submit(api, [phone(4)], "last")
    polls[-1].join(10)
    assert len(polls[-1].response.json()["messages"]) == 1


@pytest.mark.parametrize("uid", ["same", " same "])
def test_pairing_twice_with_one_uid_never_fails_on_uniqueness(live_server, make_tenant, uid):
    t = make_tenant("uiddup")
    api = api_client(live_server, t.slug)
    for _ in range(3):
        assert register(live_server, t.slug, new_code(api), uid=uid).status_code == 201
    assert sql(t, "SELECT count(*), count(DISTINCT token_hash) FROM devices") == [(3, 3)]
