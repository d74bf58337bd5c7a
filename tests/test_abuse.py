"""Abuse and fraud monitoring (issue 20): accept-time signals hold exactly the right recipients, an
alert with evidence is raised, review releases (then sent normally) or rejects (failed,
``held-rejected``), webhooks report both, rules reach every process, windows never mix workspaces."""

from __future__ import annotations

import json
import time

import phonenumbers
import pytest

from addons.abuse import numbers, rules, service, signals
from addons.messaging import lifecycle
from core.db import app_db, connection, tenant_transaction
from tests.support.abuse import shipped_defaults
from tests.support.messaging import sql, wait_until
from tests.support.phones import api_client

PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def shipped_rules(platform):
    """The rules as shipped for each test (the session's other tests record only)."""
    with shipped_defaults():
        yield

def send(client, **body) -> dict:
    r = client.post("/api/v1/messages", json=body)
    assert r.status_code == 202, r.text
    return r.json()


def states(message: dict) -> dict:
    return {r["phone"]: r["state"] for r in message["recipients"]}


def alerts_of(tenant) -> list[dict]:
    with tenant_transaction(tenant.ref):
        return service.alerts()


def review(platform, tenant, alert_id, action, reason="checked with the customer", customer=False):
    with tenant_transaction(tenant.ref):
        done = service.review(tenant, alert_id, action, "admin:1", reason, customer=customer)
    service.after_review(tenant, done, reason)
    service.audit(platform, tenant, done, "admin:1", reason)
    return done


def webhook_events(tenant, event: str) -> list[dict]:
    return [json.loads(p) if isinstance(p, str) else p for (p,) in
            sql(tenant, "SELECT payload FROM webhook_events WHERE event = %s ORDER BY created_at", (event,))]


# -- the number facts -------------------------------------------------------------------------------

def test_high_cost_agrees_with_phonenumbers():
    samples = ["+448712345678", "+449012345678", "+447911123456", "+19005551234", "+12125551234",
               "+33891123456", "+33612345678", "+4919012345678", "+4915112345678", "+390899123456"]
    for region in ("GB", "US", "FR", "DE", "IT", "ES", "AU", "CH", "AT"):
        meta = phonenumbers.PhoneMetadata.metadata_for_region(region)
        for kind in ("premium_rate", "shared_cost", "mobile", "fixed_line", "toll_free"):
            desc = getattr(meta, kind)
            if desc is not None and desc.example_number:
                samples.append(phonenumbers.format_number(phonenumbers.parse(desc.example_number, region),
                                                          phonenumbers.PhoneNumberFormat.E164))
    expected = {phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium_rate",
                phonenumbers.PhoneNumberType.SHARED_COST: "shared_cost"}
    flagged = 0
    for e164 in samples:
        want = expected.get(phonenumbers.number_type(phonenumbers.parse(e164)))
        assert numbers.high_cost(e164) == want, e164
        flagged += want is not None
    assert flagged >= 8
    assert numbers.calling_code("+447911123456") == "44" and numbers.calling_code("+12125551234") == "1"


def test_the_start_shortcut_never_skips_what_the_patterns_match():
    """``numbers.starts`` (first national digits a high-cost number can have) is exact: random
    numbers of every calling code, and numbers built from each start, agree with the regex alone."""
    import random

    rng = random.Random(20)
    checked = 0
    for code in sorted({str(c) for c in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}):
        pattern, possible = numbers._high_cost_pattern(code), numbers.starts(code)
        if pattern is None or possible is None:
            continue
        candidates = ["".join(rng.choice("0123456789") for _ in range(rng.randint(4, 13))) for _ in range(200)]
        candidates += [start + "".join(rng.choice("0123456789") for _ in range(n))
                       for start in sorted(possible)[:50] for n in range(1, 11)]
        for national in candidates:
            regex_says = pattern.fullmatch(national)
            assert numbers.high_cost(f"+{code}{national}", code) == (regex_says.lastgroup if regex_says else None)
            checked += regex_says is not None
    assert checked > 100  # the built numbers do meet the patterns


# -- signals: each holds exactly its recipients ----------------------------------------------------

def test_sequential_burst_is_held_and_released_or_rejected(platform, live_server, make_tenant):
    tenant = make_tenant("abs")
    api = api_client(live_server, tenant.slug)
    ordinary = send(api, text="Your table is ready", to=["+14155550123", "+12125550111"])
    assert set(states(ordinary).values()) == {"pending"}
    burst = ["+1415666%04d" % i for i in range(1000, 1030)]  # 30 numbers in one block of 100
    first = send(api, text="code 1234", to=burst[:10])
    assert set(states(first).values()) == {"pending"}  # 10 < 20: nothing yet
    second = send(api, text="code 1234", to=burst[10:] + ["+14155550999"])
    held = {p for p, s in states(second).items() if s == "held"}
    assert held == set(burst[10:])  # exactly the block's numbers; the other recipient goes on
    assert states(second)["+14155550999"] == "pending"
    assert second["state"] == "held"
    reason = next(r["hold_reason"] for r in second["recipients"] if r["state"] == "held")
    assert reason.startswith("sequential:") and "(alert " in reason
    got = api.get(f"/api/v1/messages/{second['id']}").json()
    assert {r["phone"]: r.get("hold_reason") is not None for r in got["recipients"]}["+14155550999"] is False
    assert [h["to"] for h in got["recipients"][0]["history"]] == ["pending", "held"]

    (alert,) = [a for a in alerts_of(tenant) if a["rule"] == "sequential"]
    assert alert["severity"] == 3 and alert["status"] == "open" and alert["held"] == 20
    assert alert["evidence"]["range"] == "+141566610" + "00-+141566610" + "99"
    assert set(alert["evidence"]["numbers"]) == set(burst[10:]) and alert["evidence"]["series"]
    queue = [q for q in service.queue() if q["slug"] == tenant.slug]
    assert [q["alert_id"] for q in queue] == [alert["id"]]

    # More of the burst joins the open alert and is held too.
    third = send(api, text="code 1234", to=["+14156661050"])
    assert states(third) == {"+14156661050": "held"}

    # Release half (the alert's holds), reject the other way: release all of this alert.
    done = review(platform, tenant, alert["id"], "release")
    assert done["messages"] == 21
    after = api.get(f"/api/v1/messages/{second['id']}").json()
    assert set(states(after).values()) == {"pending"}
    assert [q for q in service.queue(status="released") if q["slug"] == tenant.slug]
    audit = sql(tenant, "SELECT 1") and None  # the audit trail is public: read it there
    with connection():
        actions = [a for (a,) in app_db.execute_sql(
            "SELECT action FROM public.audit_event WHERE tenant_id = %s AND action LIKE 'abuse.%%'", (tenant.id,))]
    assert actions == ["abuse.release"]


def test_reject_fails_with_the_code_and_webhooks_report_held_and_failed(platform, live_server, make_tenant,
                                                                       monkeypatch):
    monkeypatch.setenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", "1")  # the endpoint is never called here: events are read
    tenant = make_tenant("abr")
    api = api_client(live_server, tenant.slug)
    r = api.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/in",
                                          "events": ["sms:held", "sms:failed", "sms:sent"]})
    assert r.status_code == 201, r.text
    premium = send(api, text="win a prize", to=["+19005551234", "+14155550100"])
    assert states(premium) == {"+19005551234": "held", "+14155550100": "pending"}
    (alert,) = [a for a in alerts_of(tenant) if a["rule"] == "premium"]
    held_events = webhook_events(tenant, "sms:held")
    assert [e["data"]["phone"] for e in held_events] == ["+19005551234"]
    assert held_events[0]["data"]["hold_reason"].startswith("premium:")
    with pytest.raises(service.ReviewError):  # a high-severity alert: not the Customer's to release
        review(platform, tenant, alert["id"], "release", customer=True)
    review(platform, tenant, alert["id"], "reject")
    got = api.get(f"/api/v1/messages/{premium['id']}").json()
    rec = {r["phone"]: r for r in got["recipients"]}
    assert rec["+19005551234"]["state"] == "failed" and rec["+19005551234"]["error_code"] == "held-rejected"
    failed = webhook_events(tenant, "sms:failed")
    assert [(e["data"]["phone"], e["data"]["error_code"]) for e in failed] == [("+19005551234", "held-rejected")]
    with pytest.raises(service.ReviewError):
        review(platform, tenant, alert["id"], "release")  # done already


def test_new_country_is_recorded_and_outside_the_allow_list_is_held(platform, live_server, make_tenant):
    tenant = make_tenant("abg", default_region="DE")
    api = api_client(live_server, tenant.slug)
    home = send(api, text="Hallo", to=["+4915112345678"])
    assert states(home) == {"+4915112345678": "pending"}
    abroad = send(api, text="Hello", to=["+447911123456", "+4915112345679"])
    assert states(abroad) == {"+447911123456": "held", "+4915112345679": "pending"}
    by_rule = {a["rule"]: a for a in alerts_of(tenant)}
    assert by_rule["geo"]["key"] == "44" and by_rule["geo"]["evidence"]["numbers"] == ["+447911123456"]
    assert {"new_country"} <= set(by_rule) and by_rule["new_country"]["action"] == "record"
    assert not [q for q in service.queue() if q["slug"] == tenant.slug and q["rule"] == "new_country"]
    # A false positive allows the country for this workspace (every process reloads the rules).
    review(platform, tenant, by_rule["geo"]["id"], "false_positive")
    assert states(api.get(f"/api/v1/messages/{abroad['id']}").json())["+447911123456"] == "pending"
    again = send(api, text="Hello again", to=["+447911123457"])
    assert states(again) == {"+447911123457": "pending"}


def test_volume_spike_against_own_baseline_and_other_workspaces_never_count(platform, live_server, make_tenant):
    quiet, busy = make_tenant("abq"), make_tenant("abb")
    with connection():
        with app_db.atomic():
            app_db.execute_sql("INSERT INTO public.abuse_rules (rule, action, severity, params) VALUES "
                               "('volume_spike', 'hold', 2, '{\"factor\": 5, \"minimum\": 50}'), "
                               "('sequential', 'off', 3, '{}'), "
                               # Both workspaces are minutes old: one text to 150 would be held as such.
                               "('identical_text', 'off', 2, '{}')")
    rules.forget()
    api_busy, api_quiet = api_client(live_server, busy.slug), api_client(live_server, quiet.slug)
    # The busy workspace's history: 7 days of 40 an hour (its own p95 is 40), as the counter rows hold it.
    with tenant_transaction(busy.ref):
        app_db.execute_sql("INSERT INTO abuse_hourly (hour, shard, n) SELECT date_trunc('hour', now()) "
                           "- make_interval(hours => h), 1, 40 FROM generate_series(1, 168) h")
    signals.forget()
    # 150 in this hour: more than 5x the quiet one's baseline (none: minimum 50), under 5x 40 for the busy one.
    batch = ["+1212555%04d" % (i * 61) for i in range(150)]
    assert set(states(send(api_busy, text="news", to=batch)).values()) == {"pending"}
    quiet_batch = send(api_quiet, text="news", to=batch[:60])
    assert set(states(quiet_batch).values()) == {"held"}
    assert [a["rule"] for a in alerts_of(quiet)] == ["volume_spike"]
    assert [a["rule"] for a in alerts_of(busy) if a["rule"] == "volume_spike"] == []
    assert signals._windows[busy.id].hours != signals._windows[quiet.id].hours


def test_leaked_token_from_many_addresses_is_held(platform, live_server, make_tenant):
    tenant = make_tenant("abt")
    with connection():
        with app_db.atomic():  # the operator holds (the default only notifies)
            app_db.execute_sql("INSERT INTO public.abuse_rules (rule, action, severity) VALUES ('token_ips', 'hold', 3)")
    rules.forget()
    api = api_client(live_server, tenant.slug)
    token = api.headers["Authorization"].split()[1]
    other = api_client(live_server, tenant.slug)
    assert set(states(send(api, text="hi", to=["+14155550001"])).values()) == {"pending"}
    for n in range(6):  # the same token from 6 addresses (as a proxy in front would say)
        live = live_server.client(tenant.slug)
        live.headers.update({"Authorization": f"Bearer {token}", "X-Forwarded-For": f"203.0.113.{n + 1}"})
        live.get("/api/v1/messages")
    # The hook notes each request as it is logged, just after the answer: wait for the sixth.
    wait_until(lambda: [k for k in signals.flagged_tokens if k[0] == tenant.id], what="the token flagged")
    assert len([k for k in signals.flagged_tokens if k[0] == tenant.id]) == 1  # that token only
    held = send(api, text="hi", to=["+14155550002"])
    assert states(held) == {"+14155550002": "held"}
    assert set(states(send(other, text="hi", to=["+14155550003"])).values()) == {"pending"}
    (alert,) = [a for a in alerts_of(tenant) if a["rule"] == "token_ips"]
    assert len(alert["evidence"]["addresses"]) >= 5
    review(platform, tenant, alert["id"], "reject", "the token leaked; revoked with the customer")
    assert states(api.get(f"/api/v1/messages/{held['id']}").json()) == {"+14155550002": "failed"}


def test_acceptable_use_patterns_and_a_hostile_regex(platform, live_server, make_tenant):
    tenant = make_tenant("abu")
    api = api_client(live_server, tenant.slug)
    with pytest.raises(rules.PatternError):
        rules.check_pattern("regex", r"(a)\1")  # a backreference: RE2 cannot run it in linear time
    hostile = "(a+)+$"
    with connection():
        with app_db.atomic():
            app_db.execute_sql("INSERT INTO public.abuse_aup_patterns (kind, pattern) VALUES "
                               "('keyword', 'CASINO'), ('domain', 'bad.example'), ('regex', %s)", (hostile,))
    rules.forget()
    assert states(send(api, text="Visit our Casino tonight", to=["+14155550001"])) == {"+14155550001": "held"}
    assert states(send(api, text="see https://x.bad.example/p", to=["+14155550002"])) == {"+14155550002": "held"}
    assert states(send(api, text="see https://good.example/p", to=["+14155550003"])) == {"+14155550003": "pending"}
    started = time.monotonic()
    slow = send(api, text="a" * 1500 + "!", to=["+14155550004"])  # catastrophic for a backtracking engine
    assert time.monotonic() - started < 2.0
    assert states(slow) == {"+14155550004": "pending"}
    assert states(send(api, text="a" * 100, to=["+14155550005"])) == {"+14155550005": "held"}


def test_rule_change_reaches_every_process(platform, live_server, make_tenant):
    """The live server runs in its own threads with its own listener; a row written here (plain SQL,
    another process's connection) turns the premium rule off there via NOTIFY."""
    tenant = make_tenant("abn")
    api = api_client(live_server, tenant.slug)
    assert states(send(api, text="a", to=["+19005550001"])) == {"+19005550001": "held"}
    rules.book()  # loaded
    with connection():
        with app_db.atomic():
            app_db.execute_sql("INSERT INTO public.abuse_rules (rule, action, severity) VALUES ('premium', 'off', 3)")
    wait_until(lambda: rules.stale() or rules.book().rules["premium"].action == "off", what="NOTIFY")
    assert states(send(api, text="a", to=["+19005550002"])) == {"+19005550002": "pending"}


def test_held_work_expires_and_is_never_claimed(platform, live_server, make_tenant):
    import datetime as dt
    from core.clock import utcnow

    tenant = make_tenant("abx")
    api = api_client(live_server, tenant.slug)
    m = send(api, text="x", to=["+19005550009"], ttl=60)
    assert states(m) == {"+19005550009": "held"}
    with tenant_transaction(tenant.ref):
        assert lifecycle.next_due() is not None
        lifecycle.expire(tenant, now=utcnow() + dt.timedelta(minutes=5))
    assert states(api.get(f"/api/v1/messages/{m['id']}").json()) == {"+19005550009": "expired"}


def test_sigkill_between_hold_and_release_loses_nothing(platform, live_server, make_tenant, cli_env, tmp_path):
    """A server SIGKILLed right after it held a burst: after a restart every held recipient is still
    held with its alert; released, a phone fetches exactly them; none is sent twice."""
    import requests

    from tests.support.messaging import raw_device
    from tests.support.phones import api_token
    from tests.support.serve import start_serve

    tenant = make_tenant("abk")
    burst = ["+1415888%04d" % i for i in range(3000, 3025)]
    proc, port, _ = start_serve(cli_env)
    try:
        http = requests.Session()
        http.headers.update({"Host": f"{tenant.slug}.localhost:{port}",
                             "Authorization": f"Bearer {api_token(tenant.slug)}"})
        r = http.post(f"http://127.0.0.1:{port}/api/v1/messages", json={"text": "otp 9", "to": burst}, timeout=30)
        assert r.status_code == 202, r.text
        assert {x["state"] for x in r.json()["recipients"]} == {"held"}
    finally:
        proc.kill()  # SIGKILL
        proc.wait(10)
    rows = dict(sql(tenant, "SELECT phone, state FROM recipients"))
    assert rows == dict.fromkeys(burst, "held")
    (alert,) = [a for a in alerts_of(tenant) if a["rule"] == "sequential"]
    assert alert["held_now"] == 25
    phone = raw_device(live_server, tenant.slug, tmp_path / "phone")
    assert phone.fetch(limit=50) == []  # held: never offered
    proc, port, _ = start_serve(cli_env)  # a restarted server changes nothing
    proc.kill()
    proc.wait(10)
    assert dict(sql(tenant, "SELECT phone, state FROM recipients")) == dict.fromkeys(burst, "held")
    review(platform, tenant, alert["id"], "release")
    got = phone.fetch(limit=50)
    assert sorted(x["to"] for x in got) == sorted(burst)
    assert phone.fetch(limit=50) == []
    assert {s for (s,) in sql(tenant, "SELECT state FROM recipients")} == {"processed"}


def test_sandbox_refuses_an_unlisted_number_with_a_403_that_says_how(platform, live_server, make_tenant):
    from tests.support.phones import ALL_SCOPES

    tenant = make_tenant("abs")
    api = api_client(live_server, tenant.slug, ALL_SCOPES + ["abuse:sandbox"])
    with connection():
        with app_db.atomic():
            app_db.execute_sql("INSERT INTO public.abuse_rules (rule, action, severity, params) VALUES "
                               "('sandbox', 'record', 1, '{\"days\": 14, \"daily_cap\": 3}')")
    rules.forget()
    r = api.post("/api/v1/messages", json={"text": "hi", "to": ["+14155550101"]})
    assert r.status_code == 403 and r.headers["Content-Type"].startswith(PROBLEM)
    problem = r.json()
    assert problem["code"] == "sandbox-number-not-allowed"
    assert "+14155550101" in problem["detail"] and "/security" in problem["detail"]
    assert "/api/v1/abuse/sandbox/numbers" in problem["detail"]
    assert sql(tenant, "SELECT count(*) FROM recipients") == [(0,)]  # nothing stored
    for bad, status in (({"phone": "<script>"}, 422), ({"phone": 12}, 422), ({"phone": "+1" + "9" * 40}, 422),
                        (["+14155550101"], 400)):
        r = api.post("/api/v1/abuse/sandbox/numbers", json=bad)
        assert r.status_code == status and r.headers["Content-Type"].startswith(PROBLEM), (bad, r.text)
    r = api.post("/api/v1/abuse/sandbox/numbers", json={"phone": "+1 (415) 555-0101"})
    assert r.status_code == 201 and r.json()["phone"] == "+14155550101"
    for n in ("+14155550102", "+14155550103"):
        assert api.post("/api/v1/abuse/sandbox/numbers", json={"phone": n}).status_code == 201
    assert states(send(api, text="hi", to=["+14155550101", "+14155550102"])) == dict.fromkeys(
        ["+14155550101", "+14155550102"], "pending")
    r = api.post("/api/v1/messages", json={"text": "hi", "to": ["+14155550102", "+14155550103"]})
    assert r.status_code == 403 and r.json()["code"] == "sandbox-daily-cap"  # 2 + 2 > 3
    assert sql(tenant, "SELECT count(*) FROM recipients") == [(2,)]
    # The operator approves the workspace: any number, no cap.
    with connection():
        with app_db.atomic():
            app_db.execute_sql("INSERT INTO public.abuse_rule_overrides (tenant_id, rule, action, reason) "
                               "VALUES (%s, 'sandbox', 'off', 'approved')", (tenant.id,))
    rules.forget()
    assert states(send(api, text="hi", to=["+12125550177"])) == {"+12125550177": "pending"}
