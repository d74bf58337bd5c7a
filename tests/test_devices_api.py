"""The customer's side of devices: /api/v1/devices, pairing codes, tokens, settings, removal,
hand-back of a silent phone's work, fleet health and the /devices dashboard page."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
from urllib.parse import quote

from tests.support.devices import (LongPoll, device_client, fetch, history, phone, raw_device, run_offline_sweep,
                                   sign_in, sql, submit, wait_until, waiting_on)
from tests.support.phones import api_client
from tests.support.problems import problem


def fields(body: dict) -> set:
    return {e["field"] for e in body.get("errors", [])}


def device_row(tenant, device_id):
    rows = sql(tenant, "SELECT name, enabled, settings, settings_version, online, removed_at FROM devices "
                       "WHERE id = %s", (device_id,))
    return rows[0] if rows else None


# -- pairing codes --------------------------------------------------------------------------


def test_pairing_code_api(live_server, make_tenant):
    t = make_tenant("pcode")
    api = api_client(live_server, t.slug)
    r = api.post("/api/v1/devices/pairing-codes", json={})
    assert r.status_code == 201 and r.headers["Cache-Control"] == "no-store"
    body = r.json()
    code = body["code"]
    assert re.fullmatch(r"[2-9A-HJ-NP-Z]{8}", code)
    expires = dt.datetime.fromisoformat(body["expires_at"])
    left = expires - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(minutes=9) < left <= dt.timedelta(minutes=10)
    assert body["server_url"].startswith(f"http://{t.slug}.localhost")
    assert body["pairing_uri"] == f"smsgw://pair?url={quote(body['server_url'], safe='')}&code={code}"
    assert body["qr_svg"].startswith("data:image/svg+xml")
    assert body["command"] == f"smsgw-companion pair {body['server_url']} {code}"
    # The stored row is a digest of the code.
    assert sql(t, "SELECT count(*) FROM pairing_codes WHERE code_hash = %s",
               (hashlib.sha256(code.encode()).hexdigest(),))[0][0] == 1
    # A token without devices:write may not create codes; one without devices:read may not list.
    reader = api_client(live_server, t.slug, scopes=["devices:read"])
    problem(reader.post("/api/v1/devices/pairing-codes", json={}), 403, "forbidden")
    assert reader.get("/api/v1/devices").status_code == 200
    sender = api_client(live_server, t.slug, scopes=["messages:send"])
    problem(sender.get("/api/v1/devices"), 403, "forbidden")


# -- list, read, rename, hostile input --------------------------------------------------------


def test_list_read_and_rename_devices(live_server, make_tenant):
    t = make_tenant("dlist")
    api = api_client(live_server, t.slug)
    assert api.get("/api/v1/devices").json() == {"devices": []}
    device_id, token = raw_device(live_server, t.slug, api, model="Pixel 9", name="Shop",
                                  sims=[{"slot": 1, "operator": "Op A", "number": "+14155550001"},
                                        {"slot": 2, "operator": "Op B"}, {"slot": 9}, "junk"])
    listed = api.get("/api/v1/devices").json()["devices"]
    assert [d["id"] for d in listed] == [device_id]
    d = listed[0]
    assert (d["name"], d["model"], d["enabled"], d["online"], d["last_seen_at"]) == (
        "Shop", "Pixel 9", True, False, None)
    assert d["sims"] == [{"slot": 1, "operator": "Op A", "number": "+14155550001"},
                         {"slot": 2, "operator": "Op B", "number": ""}]
    assert d["token_hint"].endswith(token[-4:]) and token not in str(listed)
    assert d["settings"]["working_hours"]["timezone"] == "UTC"  # defaults are filled in

    r = api.patch(f"/api/v1/devices/{device_id}", json={"name": "  Back office  "})
    assert r.status_code == 200 and r.json()["name"] == "Back office"
    assert api.get(f"/api/v1/devices/{device_id}").json()["name"] == "Back office"
    # The phone learns its new name.
    assert device_client(live_server, t.slug, token).get("/api/device/v1/settings").json()["name"] == "Back office"


def test_hostile_device_ids_and_fields_are_refused_never_500(live_server, make_tenant):
    a, b = make_tenant("hosta"), make_tenant("hostb")
    api_a, api_b = api_client(live_server, a.slug), api_client(live_server, b.slug)
    a_id, _ = raw_device(live_server, a.slug, api_a, name="A phone")
    raw_device(live_server, b.slug, api_b, name="B phone 1")
    b_id, b_token = raw_device(live_server, b.slug, api_b, name="B phone 2")
    assert b_id not in (a_id,)  # a B id that does not exist in A

    # B's device id on A's address: not found, whatever the verb; B's device untouched.
    for method, path, body in (("GET", f"/api/v1/devices/{b_id}", None),
                               ("PATCH", f"/api/v1/devices/{b_id}", {"name": "taken over", "enabled": False}),
                               ("POST", f"/api/v1/devices/{b_id}/token", {}),
                               ("DELETE", f"/api/v1/devices/{b_id}", None)):
        problem(api_a.request(method, path, json=body), 404, "not-found")
    assert device_row(b, b_id)[:2] == ("B phone 2", True)
    assert fetch(device_client(live_server, b.slug, b_token)).status_code == 200

    for raw in ("1 OR 1=1", "1;DROP TABLE devices", "-1", "0x1", "1e3", "9" * 19, "%00", "' OR ''='",
                "1%20UNION%20SELECT%20token_hash%20FROM%20devices", "x" * 10_240):
        for method in ("GET", "PATCH", "DELETE"):
            r = api_a.request(method, f"/api/v1/devices/{raw}", json={"name": "x"} if method == "PATCH" else None)
            assert r.status_code == 404, (method, raw[:40], r.status_code, r.text[:200])

    for body, field in (({"name": "x" * 10_240}, "name"), ({"name": ""}, "name"), ({"name": "   "}, "name"),
                        ({"name": 42}, "name"), ({"enabled": "false"}, "enabled"),
                        ({"token_hash": "x", "name": "ok"}, "token_hash"), ({"id": 7}, "id"),
                        ({"settings": "'; DROP TABLE devices; --"}, "settings"),
                        ({"settings": {"limits": {"per_minute": "1; DROP TABLE devices"}}},
                         "settings.limits.per_minute")):
        r = api_a.patch(f"/api/v1/devices/{a_id}", json=body)
        assert field in fields(problem(r, 422, "validation-failed")), (body, r.text[:300])
    problem(api_a.patch(f"/api/v1/devices/{a_id}", json=["name"]), 400, "invalid-json")

    # An injection-looking name is just a name.
    evil = "Robert'); DROP TABLE devices;--"
    r = api_a.patch(f"/api/v1/devices/{a_id}", json={"name": evil})
    assert r.status_code == 200 and r.json()["name"] == evil
    assert [d["name"] for d in api_a.get("/api/v1/devices").json()["devices"]] == [evil]
    assert device_row(a, a_id)[0] == evil


def test_a_device_id_in_unicode_digits_is_not_found_not_a_500(live_server, make_tenant):
    t = make_tenant("udig")
    api = api_client(live_server, t.slug)
    raw_device(live_server, t.slug, api)
    r = api.get("/api/v1/devices/%C2%B2")  # "²" passes str.isdigit() but not int()
    problem(r, 404, "not-found")


def test_a_nul_byte_in_a_device_name_is_refused_not_a_500(live_server, make_tenant):
    """PostgreSQL text cannot hold U+0000: the customer gets a clear refusal, and nothing changes."""
    t = make_tenant("nul")
    api = api_client(live_server, t.slug)
    device_id, _ = raw_device(live_server, t.slug, api, name="Before")
    r = api.patch(f"/api/v1/devices/{device_id}", json={"name": "Front\u0000desk"})
    assert r.status_code in (400, 422), (r.status_code, r.text[:300])
    body = problem(r, r.status_code)
    assert body["code"] in ("invalid-characters", "validation-failed") and body["detail"]
    assert device_row(t, device_id)[0] == "Before"


# -- settings --------------------------------------------------------------------------------


def test_invalid_settings_are_refused_and_change_nothing(live_server, make_tenant):
    t = make_tenant("sett")
    api = api_client(live_server, t.slug)
    device_id, _ = raw_device(live_server, t.slug, api, name="Unchanged")
    before = device_row(t, device_id)
    cases = (  # fields as named in the request body (the documented `errors[].field`)
        ({"limits": {"per_minute": "ten"}}, {"limits.per_minute"}),
        ({"limits": {"per_hour": -1, "per_day": 100_001}}, {"limits.per_hour", "limits.per_day"}),
        ({"working_hours": {"timezone": "Mars/Olympus_Mons"}}, {"working_hours.timezone"}),
        ({"working_hours": {"start": "25:00", "days": [7]}}, {"working_hours.start", "working_hours.days"}),
        ({"working_hours": {"start": "08:30\n"}}, {"working_hours.start"}),
        ({"working_hours": {"enabled": "yes"}}, {"working_hours.enabled"}),
        ({"delay": {"min_ms": 5000, "max_ms": 10}}, {"delay.min_ms"}),
        ({"sim": {"mode": "random", "slot": 5}}, {"sim.mode", "sim.slot"}),
        ({"limits": {"per_minute": True}}, {"limits.per_minute"}),
        ({"limits": {"per_minute": 1.5}}, {"limits.per_minute"}),
        ({"radio": {"power": 11}}, {"radio"}),
        ({"limits": {"per_second": 1}}, {"limits.per_second"}),
        ({"limits": [1, 2]}, {"limits"}),
    )
    for patch, expected in cases:
        # A valid rename in the same request must not be applied either.
        body = problem(api.patch(f"/api/v1/devices/{device_id}", json={"name": "Changed", "settings": patch}),
                       422, "validation-failed")
        assert fields(body) == {"settings." + f for f in expected}, (patch, body)
        assert all(e["message"] for e in body["errors"])
    assert device_row(t, device_id) == before

    r = api.patch(f"/api/v1/devices/{device_id}", json={"settings": {
        "limits": {"per_minute": 10, "per_day": 500},
        "working_hours": {"enabled": True, "start": "09:00", "end": "17:30", "timezone": "Europe/Berlin",
                          "days": [0, 1, 2, 3, 4]},
        "delay": {"min_ms": 100, "max_ms": 900}, "sim": {"mode": "round_robin"}}})
    assert r.status_code == 200, r.text
    s = r.json()["settings"]
    assert s["limits"] == {"per_minute": 10, "per_hour": 0, "per_day": 500}
    assert s["working_hours"]["timezone"] == "Europe/Berlin" and s["sim"]["mode"] == "round_robin"
    assert r.json()["settings_version"] == before[3] + 1
    # Patching one key keeps the others.
    r = api.patch(f"/api/v1/devices/{device_id}", json={"settings": {"limits": {"per_minute": 3}}})
    assert r.json()["settings"]["limits"] == {"per_minute": 3, "per_hour": 0, "per_day": 500}
    assert r.json()["settings"]["delay"] == {"min_ms": 100, "max_ms": 900}


# -- tokens, disabling, removal ---------------------------------------------------------------


def test_rotating_a_token_from_the_api_refuses_the_old_one(live_server, make_tenant):
    t = make_tenant("arot")
    api = api_client(live_server, t.slug)
    device_id, old = raw_device(live_server, t.slug, api)
    r = api.post(f"/api/v1/devices/{device_id}/token", json={})
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    new = r.json()["token"]
    assert new.startswith(f"sgd_{t.slug}_") and new != old and "set-token" in r.json()["note"]
    problem(fetch(device_client(live_server, t.slug, old)), 401, "invalid-token")
    assert fetch(device_client(live_server, t.slug, new)).status_code == 200
    assert api.get(f"/api/v1/devices/{device_id}").json()["token_hint"].endswith(new[-4:])
    assert sql(t, "SELECT token_hash FROM devices")[0][0] == hashlib.sha256(new.encode()).hexdigest()


def test_a_disabled_device_is_refused_even_while_it_waits(platform, live_server, make_tenant):
    t = make_tenant("dis")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    dev = device_client(live_server, t.slug, token)
    assert fetch(dev).status_code == 200
    poll = LongPoll(dev, wait=30).start()
    wait_until(lambda: waiting_on(platform, t.slug, device_id), 5, message="the poll to park")
    t0 = time.monotonic()
    r = api.patch(f"/api/v1/devices/{device_id}", json={"enabled": False})
    assert r.status_code == 200 and r.json()["enabled"] is False
    poll.join(5)
    assert poll.finished - t0 < 1.0
    assert poll.response.status_code in (401, 403), poll.response.text
    submit(api, [phone(1)], "not for a disabled phone")
    for call in (lambda: fetch(dev), lambda: dev.post("/api/device/v1/heartbeat", json={}),
                 lambda: dev.post("/api/device/v1/reports", json={"reports": []})):
        assert call().status_code in (401, 403)
    # Enabled again, it works again and takes the waiting message.
    api.patch(f"/api/v1/devices/{device_id}", json={"enabled": True})
    assert [m["to"] for m in fetch(dev).json()["messages"]] == [phone(1)]


def test_removing_a_device_revokes_its_token_and_hands_back_its_work(live_server, make_tenant):
    t = make_tenant("rm")
    api = api_client(live_server, t.slug)
    gone_id, gone_token = raw_device(live_server, t.slug, api, uid="gone")
    other_id, other_token = raw_device(live_server, t.slug, api, uid="other")
    gone, other = device_client(live_server, t.slug, gone_token), device_client(live_server, t.slug, other_token)
    sent = submit(api, [phone(1), phone(2)], "hand me back")
    claimed = [m["id"] for m in fetch(gone).json()["messages"]]
    assert len(claimed) == 2
    r = api.delete(f"/api/v1/devices/{gone_id}")
    assert r.status_code == 204
    problem(fetch(gone), 401, "invalid-token")
    problem(gone.post("/api/device/v1/reports", json={"reports": [{"message_id": claimed[0], "state": "sent"}]}),
            401, "invalid-token")
    problem(api.get(f"/api/v1/devices/{gone_id}"), 404, "not-found")
    problem(api.delete(f"/api/v1/devices/{gone_id}"), 404, "not-found")
    assert [d["id"] for d in api.get("/api/v1/devices").json()["devices"]] == [other_id]
    assert sql(t, "SELECT token_hash FROM devices WHERE id = %s", (gone_id,))[0][0] is None
    h = history(api, sent["id"])
    assert all(h[rid] == ["pending", "processed", "pending"] for rid in claimed)
    assert sorted(m["id"] for m in fetch(other).json()["messages"]) == sorted(claimed)


def test_a_silent_phone_has_its_claimed_messages_handed_back(platform, live_server, make_tenant):
    t = make_tenant("silent")
    api = api_client(live_server, t.slug)
    silent_id, silent_token = raw_device(live_server, t.slug, api, uid="silent")
    alive_id, alive_token = raw_device(live_server, t.slug, api, uid="alive")
    silent, alive = (device_client(live_server, t.slug, tok) for tok in (silent_token, alive_token))
    fetch(alive)
    sent = submit(api, [phone(i) for i in range(3)], "anyone there?")
    claimed = [m["id"] for m in fetch(silent).json()["messages"]]
    assert len(claimed) == 3
    # A sweep now changes nothing: the phone was just seen.
    assert run_offline_sweep(platform, t) == []
    # The phone goes silent (fixture data: its last contact moved into the past) and the sweep runs.
    sql(t, "UPDATE devices SET last_seen_at = now() - interval '10 minutes' WHERE id = %s", (silent_id,),
        fetch=False)
    assert run_offline_sweep(platform, t) == [silent_id]
    assert run_offline_sweep(platform, t) == []  # idempotent
    rows = dict(sql(t, "SELECT id, state FROM recipients"))
    assert rows == {rid: "pending" for rid in claimed}
    detail = api.get(f"/api/v1/messages/{sent['id']}").json()
    for rec in detail["recipients"]:
        assert [(h["from"], h["to"], h["source"]) for h in rec["history"]][-1] == ("processed", "pending", "handback")
        assert rec["device_id"] is None
    assert api.get(f"/api/v1/devices/{silent_id}").json()["online"] is False
    # Another phone takes them; the silent phone's late word no longer counts.
    assert sorted(m["id"] for m in fetch(alive).json()["messages"]) == sorted(claimed)
    late = silent.post("/api/device/v1/reports", json={"reports": [{"message_id": claimed[0], "state": "sent"}]})
    assert late.json()["results"][0]["status"] == "unknown"
    assert dict(sql(t, "SELECT id, device_id FROM recipients")) == {rid: alive_id for rid in claimed}


# -- fleet health and the dashboard ----------------------------------------------------------


def test_fleet_health_in_the_api_and_on_the_devices_page(platform, live_server, make_tenant):
    t = make_tenant("fleet")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api, name="Till phone")
    dev = device_client(live_server, t.slug, token)

    def listed():
        return {d["id"]: d for d in api.get("/api/v1/devices").json()["devices"]}[device_id]

    assert (listed()["online"], listed()["last_seen_at"]) == (False, None)
    fetch(dev)
    assert listed()["online"] is True and listed()["last_seen_at"]

    page = sign_in(live_server, t.slug, f"owner@{t.slug}.example")
    r = page.get("/devices")
    assert r.status_code == 200
    assert 'href="/devices/pair"' in r.text  # signed in as the Customer: may pair phones
    row = re.search(rf'<tr data-device="{device_id}">(.*?)</tr>', r.text, re.S).group(1)
    assert "Till phone" in row and "Online" in row

    # It goes silent; the worker's offline sweep (the devices addon's due job) marks it offline.
    sql(t, "UPDATE devices SET last_seen_at = now() - interval '5 minutes'", fetch=False)
    assert run_offline_sweep(platform, t) == [device_id]
    assert listed()["online"] is False
    row = re.search(rf'<tr data-device="{device_id}">(.*?)</tr>', page.get("/devices").text, re.S).group(1)
    assert "Offline" in row and "offline" in row  # the status badge and the waiting reason

    # Back online, limited to one message a minute, with three to send: the page says why it waits.
    api.patch(f"/api/v1/devices/{device_id}", json={"settings": {"limits": {"per_minute": 1}}})
    ids = [submit(api, [phone(i)], f"message {i}")["id"] for i in range(3)]
    got = fetch(dev).json()["messages"]
    assert len(got) == 1
    assert fetch(dev).json()["messages"] == []  # the limit holds on the server too
    row = re.search(rf'<tr data-device="{device_id}">(.*?)</tr>', page.get("/devices").text, re.S).group(1)
    assert "Online" in row and re.search(r"rate limit until \d\d:\d\d UTC", row), row
    waiting = [api.get(f"/api/v1/messages/{i}").json() for i in ids]
    reasons = [rec.get("waiting_reason") for m in waiting for rec in m["recipients"] if rec["state"] == "pending"]
    assert len(reasons) == 2 and all("rate limit" in r for r in reasons), reasons
    # The device's own page shows it too.
    detail = page.get(f"/devices/{device_id}")
    assert detail.status_code == 200 and "Till phone" in detail.text


def test_the_devices_page_needs_a_sign_in(live_server, make_tenant):
    t = make_tenant("fleetanon")
    r = live_server.client(t.slug).get("/devices", allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
