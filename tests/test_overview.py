"""The workspace's Overview (issue 22, item 3) and phone alerts (item 4).

The Overview is core's page; the phones, message figures, webhooks and quota come from the addons
through ``smsgw_overview_parts``. Alerts open when a phone with waiting work goes offline or its
battery runs low, reach members by e-mail (a due job) and banner as each prefers, and end with a
recovery notice.
"""

from __future__ import annotations

import datetime as dt
import re

from core import due
from core.clock import utcnow
from tests.support.devices import run_offline_sweep, sql
from tests.support.identity import add_user, mails_to, owner_email, sign_in
from tests.support.messaging import raw_device
from tests.support.phones import api_client
from tests.support.quotas import make_plan, set_status, subscribe, wait_forgotten


def steps(html: str) -> dict[str, bool]:
    return {key: cls == "step-done" for key, cls in re.findall(r'data-step="(\w+)" class="(step-\w+)"', html)}


def attention(html: str) -> str:
    m = re.search(r'<section class="card overview-attention".*?</section>', html, re.S)
    assert m, html[:2000]
    return m.group(0)


def run_notices(platform, tenant) -> str:
    from addons.devices.health import NOTICE_JOB

    job = platform.setup_tasks().due_jobs[NOTICE_JOB]
    return due.run_due(platform, job, tenant.id, tenant.slug)


def test_a_new_workspace_sees_first_steps_that_tick_themselves(live_server, make_tenant, tmp_path, monkeypatch):
    monkeypatch.setenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", "1")  # the endpoint is on loopback
    t = make_tenant("ovs")
    owner = sign_in(live_server, t.slug, owner_email(t))
    page = owner.get("/")
    assert page.status_code == 200
    assert steps(page.text) == {"phone": False, "message": False, "token": False, "webhook": False}
    assert "Nothing needs your attention." in page.text

    api = api_client(live_server, t.slug)  # an API token
    raw_device(live_server, t.slug, tmp_path / "p", client=api)  # a phone
    assert api.post("/api/v1/messages", json={"to": ["+14155550100"], "text": "test"}).status_code == 202
    assert steps(owner.get("/").text) == {"phone": True, "message": True, "token": True, "webhook": False}
    r = api.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["sms:delivered"]})
    assert r.status_code == 201, r.text
    page = owner.get("/")
    assert 'id="first-steps"' not in page.text  # all done: the checklist goes away


def test_the_overview_shows_phones_figures_and_what_needs_attention(platform, live_server, make_tenant, tmp_path):
    t = make_tenant("ovf")
    api = api_client(live_server, t.slug)
    phone = raw_device(live_server, t.slug, tmp_path / "p", client=api, name="Shop phone")
    assert phone.http.post("/api/device/v1/heartbeat", json={"battery_level": 9, "charging": False,
                                                             "signal": -71}).status_code == 200
    ids = [api.post("/api/v1/messages", json={"to": [f"+1415555010{i}"], "text": f"m{i}"}).json()["id"]
           for i in range(3)]
    work = phone.fetch(limit=2)
    assert len(work) == 2
    assert phone.report({"message_id": work[0]["id"], "state": "delivered"},
                        {"message_id": work[1]["id"], "state": "failed", "error_code": "RESULT_ERROR_NO_SERVICE"}
                        ).status_code == 200
    owner = sign_in(live_server, t.slug, owner_email(t))
    page = owner.get("/").text
    today = re.search(r'<tr data-period="today">(.*?)</tr>', page, re.S).group(1)
    assert re.findall(r'data-state="(\w+)">(\d+)<', today) == [("submitted", "3"), ("sent", "1"),
                                                              ("delivered", "1"), ("failed", "1")]
    assert 'id="overview-rate">50.0 %' in page
    week = re.search(r'<tr data-period="week">(.*?)</tr>', page, re.S).group(1)
    assert re.findall(r'data-state="(\w+)">(\d+)<', week) == re.findall(r'data-state="(\w+)">(\d+)<', today)
    p50 = re.search(r'id="overview-p50">([\d.]+) s<', page)  # one delivered message: its delivery time
    assert p50 and 0 <= float(p50.group(1)) < 60, re.search(r'id="overview-p50">[^<]*<', page)
    assert "Shop phone" in page and "9 %" in page and "-71 dBm" in page
    box = attention(page)
    assert "Messages that failed today: 1." in box and "/messages?state=failed" in box
    assert "has 9 % battery left" in box
    assert "<svg" in page and "Messages per day" in page
    assert owner.get("/?days=30").text.count('data-period="today"') == 1

    # The phone goes silent: once its last contact is older than the timeout it shows offline, and
    # with a message waiting it needs attention, before any sweep has run.
    sql(t, "UPDATE devices SET last_seen_at = now() - interval '10 minutes'", fetch=False)
    box = attention(owner.get("/").text)
    assert "Phone “Shop phone” is offline. Messages waiting for it: 1." in box
    assert ids


def test_a_failing_webhook_endpoint_needs_attention(live_server, make_tenant, monkeypatch):
    monkeypatch.setenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", "1")  # the endpoint is on loopback
    t = make_tenant("ovw")
    api = api_client(live_server, t.slug)
    r = api.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/orders", "events": ["sms:delivered"]})
    assert r.status_code == 201, r.text
    owner = sign_in(live_server, t.slug, owner_email(t))
    assert "Webhook" not in attention(owner.get("/").text)
    sql(t, "UPDATE webhook_endpoints SET failing_since = now() - interval '2 hours'", fetch=False)
    box = attention(owner.get("/").text)
    assert "Webhook http://127.0.0.1:9/orders has been failing since" in box and 'href="/webhooks"' in box
    sql(t, "UPDATE webhook_endpoints SET enabled = false, disabled_reason = 'failing'", fetch=False)
    assert "Webhook http://127.0.0.1:9/orders was switched off after failing deliveries." in \
        attention(owner.get("/").text)


def test_a_plan_near_its_limit_needs_attention_and_a_stopped_one_says_so(platform, live_server, make_tenant):
    """Item 3's "quota near its end once billing exists": from 80 % of the included segments a
    warning, at 100 % an error, both linking to the billing page; a suspended subscription says
    sending is stopped."""
    t = make_tenant("ovq")
    subscribe(platform, t, make_plan(platform, included=10, overage=500))
    api = api_client(live_server, t.slug)
    owner = sign_in(live_server, t.slug, owner_email(t))
    to = [f"+1415555{n:04d}" for n in range(12)]
    assert api.post("/api/v1/messages", json={"to": to[:7], "text": "seven"}).status_code == 202
    assert "You have used" not in attention(owner.get("/").text)
    assert api.post("/api/v1/messages", json={"to": to[7:8], "text": "eight"}).status_code == 202
    box = attention(owner.get("/").text)
    assert re.search(r'<li class="attention-warning"><a href="/billing">You have used 80 % of your plan&#39;s 10 '
                     r'segments \(8\) for this period\.</a></li>', box), box
    assert api.post("/api/v1/messages", json={"to": to[8:], "text": "twelve"}).status_code == 202
    box = attention(owner.get("/").text)
    assert '<li class="attention-error"><a href="/billing">You have used 100 %' in box, box
    set_status(platform, t, "suspended")
    wait_forgotten(t)
    assert "Sending is stopped: see your subscription." in attention(owner.get("/").text)


def test_a_phone_with_waiting_work_going_offline_alerts_by_mail_and_banner_and_recovers(
        platform, live_server, make_tenant, tmp_path):
    t = make_tenant("ova")
    member = "member@" + t.slug + ".example"
    member_id = add_user(platform, t, member, password="a long enough password")
    api = api_client(live_server, t.slug)
    phone = raw_device(live_server, t.slug, tmp_path / "p", client=api, name="Till")
    phone.fetch()  # online
    assert api.post("/api/v1/messages", json={"to": ["+14155550100"], "text": "waiting"}).status_code == 202
    sql(t, "UPDATE devices SET last_seen_at = now() - interval '10 minutes'", fetch=False)
    assert run_offline_sweep(platform, t)
    assert run_notices(platform, t) == "ran"
    assert [m["Subject"] for m in mails_to(platform, owner_email(t), "is offline")] == [f"{t.slug}: phone “Till” is offline"]
    assert mails_to(platform, member, "is offline")
    owner = sign_in(live_server, t.slug, owner_email(t))
    banner = owner.get("/messages").text  # the banner, on any page: in the reader's time zone, UTC on hover
    assert re.search(r'Phone “Till” is offline and 1 message waits for it\. Offline since: <time datetime="[^"]+Z" '
                     r'title="[^"]+ UTC">[^<]+</time>\.', banner), banner[:3000]

    # The member turns both off: no banner for them, no mail for the next alert.
    them = sign_in(live_server, t.slug, member, "a long enough password")
    xsrf = them.cookies.get("_xsrf")
    assert them.post("/account/alerts", data={"_xsrf": xsrf}).status_code in (200, 302)
    assert sql(t, "SELECT email, banner FROM device_alert_prefs WHERE user_id = %s", (member_id,)) == [(False, False)]
    assert "data-device-alert" not in them.get("/messages").text

    phone.fetch()  # back: the alert ends, and those told it started hear it ended
    assert run_notices(platform, t) == "ran"
    assert mails_to(platform, owner_email(t), "is back online")
    assert not mails_to(platform, member, "is back online")  # they turned e-mail off meanwhile
    assert sql(t, "SELECT count(*) FROM device_alerts WHERE ended_at IS NULL") == [(0,)]
    assert run_notices(platform, t) in ("not-due", "busy")  # nothing left to tell: the entry is gone
    assert len(mails_to(platform, owner_email(t), "is back online")) == 1


def test_an_idle_phone_going_offline_alerts_nobody_and_low_battery_does(platform, live_server, make_tenant, tmp_path):
    t = make_tenant("ovb")
    api = api_client(live_server, t.slug)
    phone = raw_device(live_server, t.slug, tmp_path / "p", client=api, name="Idle")
    phone.fetch()
    sql(t, "UPDATE devices SET last_seen_at = now() - interval '10 minutes'", fetch=False)
    assert run_offline_sweep(platform, t)
    assert sql(t, "SELECT count(*) FROM device_alerts") == [(0,)]

    assert phone.http.post("/api/device/v1/heartbeat", json={"battery_level": 12, "charging": False}).status_code == 200
    assert phone.http.post("/api/device/v1/heartbeat", json={"battery_level": 11, "charging": False}).status_code == 200
    assert sql(t, "SELECT kind, battery_level FROM device_alerts WHERE ended_at IS NULL") == [("battery", 12)]
    assert run_notices(platform, t) == "ran"
    assert len(mails_to(platform, owner_email(t), "battery is low")) == 1
    assert phone.http.post("/api/device/v1/heartbeat", json={"battery_level": 12, "charging": True}).status_code == 200
    assert sql(t, "SELECT count(*) FROM device_alerts WHERE ended_at IS NULL") == [(0,)]
    assert run_notices(platform, t) == "ran"
    assert len(mails_to(platform, owner_email(t), "charging again")) == 1


def test_a_reply_returns_to_its_conversation_and_nowhere_else(live_server, make_tenant):
    t = make_tenant("ovr")
    owner = sign_in(live_server, t.slug, owner_email(t))
    xsrf = owner.cookies.get("_xsrf")
    for back, where in (("/inbox/%2B14155550100", "/inbox/%2B14155550100"),
                        ("//evil.example/inbox/x", "/messages/"), ("/account", "/messages/")):
        r = owner.post("/send", data={"to": "+14155550100", "text": "reply", "return_to": back, "_xsrf": xsrf})
        assert r.status_code == 302 and r.headers["Location"].startswith(where), (back, r.headers.get("Location"))
