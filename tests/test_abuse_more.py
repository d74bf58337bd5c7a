"""Abuse monitoring, issue 20's remaining parts: sandbox verification by SMS code, API tokens used
after a long idle time or outside their usual hours, the owners' mail about alerts, windows shared
by several web processes, a failed rule reload shown to the platform admin, summaries translated."""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
import requests

from addons.abuse import mail, rules, sandbox, service, signals
from core import due
from core.db import app_db, connection, tenant_transaction
from tests.support.abuse import shipped_defaults
from tests.support.identity import admin_sign_in, owner_email, sign_in, wait_for_mail
from tests.support.messaging import raw_device, sql, wait_until
from tests.support.phones import ALL_SCOPES, api_client, api_token

PROBLEM = "application/problem+json"


@pytest.fixture(autouse=True)
def shipped_rules(platform):
    with shipped_defaults():
        yield


def operator(statement: str, args=()) -> None:
    with connection():
        with app_db.atomic():
            app_db.execute_sql(statement, args)
    rules.forget()


def alerts_of(tenant, rule=None) -> list[dict]:
    with tenant_transaction(tenant.ref):
        return [a for a in service.alerts() if rule is None or a["rule"] == rule]


def sandboxed(tenant) -> None:
    operator("INSERT INTO public.abuse_rules (rule, action, severity, params) VALUES "
             "('sandbox', 'record', 1, '{\"days\": 14, \"daily_cap\": 3}') ON CONFLICT (rule) DO UPDATE "
             "SET action = excluded.action, params = excluded.params")


# -- 1. sandbox verification by SMS code --------------------------------------------------------------

def test_a_number_is_verified_by_a_code_sent_through_the_workspaces_phone(platform, live_server, make_tenant,
                                                                          tmp_path):
    tenant = make_tenant("avc")
    sandboxed(tenant)
    api = api_client(live_server, tenant.slug, ALL_SCOPES + ["abuse:sandbox"])
    # No phone yet: refused, with what to do; nothing stored.
    r = api.post("/api/v1/abuse/sandbox/codes", json={"phone": "+14155550101"})
    assert r.status_code == 409 and r.headers["Content-Type"].startswith(PROBLEM), r.text
    assert r.json()["code"] == "no-phone" and "connect a phone" in r.json()["detail"]
    assert sql(tenant, "SELECT count(*) FROM abuse_sandbox_codes") == [(0,)]

    # The 403 of an unverified number says how to verify it.
    r = api.post("/api/v1/messages", json={"text": "hi", "to": ["+14155550101"]})
    assert r.status_code == 403 and r.json()["code"] == "sandbox-number-not-allowed"
    assert sandbox.CODES_API in r.json()["detail"] and sandbox.VERIFY_API in r.json()["detail"]

    phone = raw_device(live_server, tenant.slug, tmp_path / "phone")
    for n in ("+14155550201", "+14155550202", "+14155550203"):  # the cap (3) is used up today
        assert api.post("/api/v1/abuse/sandbox/numbers", json={"phone": n}).status_code == 201
    assert api.post("/api/v1/messages", json={"text": "x", "to": ["+14155550201", "+14155550202",
                                                                 "+14155550203"]}).status_code == 202
    phone.fetch(limit=10)
    r = api.post("/api/v1/abuse/sandbox/codes", json={"phone": "+1 415 555 0101"})
    assert r.status_code == 202, r.text  # exempt from the list and the cap
    assert r.json() == {"phone": "+14155550101", "expires_in": 600, "attempts": 5}
    (sms,) = phone.fetch(limit=10)
    assert sms["to"] == "+14155550101" and tenant.name in sms["text"]
    code = re.search(r"\b(\d{6})\b", sms["text"]).group(1)
    (digest,) = [d for (d,) in sql(tenant, "SELECT digest FROM abuse_sandbox_codes")]
    assert code not in digest and len(digest) == 64  # a digest, never the code
    # Asked again at once: refused, the code stays.
    r = api.post("/api/v1/abuse/sandbox/codes", json={"phone": "+14155550101"})
    assert r.status_code == 429 and r.json()["code"] == "code-sent-recently"

    # Hostile and wrong input: a readable problem each, nothing verified.
    wrong = "000000" if code != "000000" else "111111"
    for body, status in (({"phone": "+14155550101", "code": wrong}, 422),
                         ({"phone": "+14155550101", "code": "1' OR '1'='1"}, 422),
                         ({"phone": "+14155550101", "code": 123456}, 422),
                         ({"phone": "<script>alert(1)</script>", "code": code}, 422),
                         ({"phone": ["+14155550101"], "code": code}, 422),
                         (["+14155550101", code], 400)):
        r = api.post(sandbox.VERIFY_API, json=body)
        assert r.status_code == status and r.headers["Content-Type"].startswith(PROBLEM), (body, r.text)
    r = api.post(sandbox.VERIFY_API, data=b"\xff{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert sql(tenant, "SELECT attempts FROM abuse_sandbox_codes") == [(3,)]  # the three wrong codes counted
    assert sql(tenant, "SELECT count(*) FROM abuse_sandbox_numbers WHERE phone = '+14155550101'") == [(0,)]

    r = api.post(sandbox.VERIFY_API, json={"phone": "+14155550101", "code": code})
    assert r.status_code == 200 and r.json() == {"phone": "+14155550101", "verified": True}
    r = api.post(sandbox.VERIFY_API, json={"phone": "+14155550101", "code": code})  # single use
    assert r.status_code == 422 and "ask for a code first" in r.json()["detail"]
    numbers = {n["phone"]: n for n in api.get("/api/v1/abuse/sandbox/numbers").json()["numbers"]}
    assert numbers["+14155550101"]["verified"] is True and numbers["+14155550101"]["listed"] is False
    # Verified: a send to it passes the list; the cap (3, used up by the three sends) still counts it,
    # but not the code message.
    r = api.post("/api/v1/messages", json={"text": "hi", "to": ["+14155550101"]})
    assert r.status_code == 403 and r.json()["code"] == "sandbox-daily-cap"
    assert "3 were sent today" in r.json()["detail"]


def test_codes_expire_and_wrong_guesses_are_limited(platform, live_server, make_tenant, tmp_path):
    tenant = make_tenant("ave")
    sandboxed(tenant)
    api = api_client(live_server, tenant.slug, ALL_SCOPES + ["abuse:sandbox"])
    phone = raw_device(live_server, tenant.slug, tmp_path / "phone")

    def new_code(number):
        sql(tenant, "UPDATE abuse_sandbox_codes SET sent_at = now() - interval '2 minutes'")
        assert api.post("/api/v1/abuse/sandbox/codes", json={"phone": number}).status_code == 202
        (sms,) = phone.fetch(limit=5)
        return re.search(r"\b(\d{6})\b", sms["text"]).group(1)

    code = new_code("+14155550301")
    sql(tenant, "UPDATE abuse_sandbox_codes SET expires_at = now() - interval '1 second'")
    r = api.post(sandbox.VERIFY_API, json={"phone": "+14155550301", "code": code})
    assert r.status_code == 422 and "expired" in r.json()["detail"]

    code = new_code("+14155550301")
    wrong = "000000" if code != "000000" else "111111"
    for left in range(4, -1, -1):
        r = api.post(sandbox.VERIFY_API, json={"phone": "+14155550301", "code": wrong})
        assert r.status_code == 422 and f"({left} attempts left)" in r.json()["detail"]
    r = api.post(sandbox.VERIFY_API, json={"phone": "+14155550301", "code": code})  # the right one, too late
    assert r.status_code == 422 and "Too many wrong codes" in r.json()["detail"]
    assert sql(tenant, "SELECT count(*) FROM abuse_sandbox_numbers") == [(0,)]
    code = new_code("+14155550301")  # a new code starts afresh
    assert api.post(sandbox.VERIFY_API, json={"phone": "+14155550301", "code": code}).status_code == 200


# -- 2, 3. API tokens: idle, outside usual hours; 7. summaries translated -----------------------------

def token_row(tenant, token_name=None):
    return sql(tenant, "SELECT id, name FROM api_tokens ORDER BY id DESC LIMIT 1")[0]


def fresh_principals(platform):
    platform.principal_cache.clear()  # the live server's 10-second cache of a token's lookup


def test_a_token_used_after_a_long_idle_time_raises_an_alert(platform, live_server, make_tenant):
    tenant = make_tenant("avi")
    token = api_token(tenant.slug)
    token_id, name = token_row(tenant)
    http = live_server.client(tenant.slug)
    http.headers.update({"Authorization": f"Bearer {token}", "X-Forwarded-For": "198.51.100.44"})
    assert http.get("/api/v1/messages").status_code == 200  # a new token: nothing
    sql(tenant, "UPDATE api_tokens SET last_used_at = now() - interval '29 days' WHERE id = %s", (token_id,))
    fresh_principals(platform)
    assert http.get("/api/v1/messages").status_code == 200  # 29 days < 30
    sql(tenant, "UPDATE api_tokens SET last_used_at = now() - interval '45 days' WHERE id = %s", (token_id,))
    fresh_principals(platform)
    assert http.get("/api/v1/messages").status_code == 200
    wait_until(lambda: alerts_of(tenant, "token_idle"), what="the idle alert")
    (alert,) = alerts_of(tenant, "token_idle")
    ev = alert["evidence"]
    assert ev["name"] == name and ev["days"] == 45 and ev["addresses"] == ["198.51.100.44"]
    assert ev["last_use"].startswith(str((dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=45)).date()))
    assert alert["action"] == "notify" and [q["rule"] for q in service.queue() if q["slug"] == tenant.slug] == [
        "token_idle"]
    for _ in range(3):  # used again now: not idle any more, nothing new
        http.get("/api/v1/messages")
    fresh_principals(platform)
    http.get("/api/v1/messages")
    time.sleep(0.3)
    assert len(alerts_of(tenant, "token_idle")) == 1


def test_a_token_used_outside_its_usual_hours(platform, live_server, make_tenant):
    tenant = make_tenant("avh")
    hour = dt.datetime.now(dt.timezone.utc).hour
    usual, odd, new = (api_token(tenant.slug) for _ in range(3))
    ids = [i for (i,) in sql(tenant, "SELECT id FROM api_tokens ORDER BY id")]
    # Profiles: one token used only 12 hours away from now, one around now too; the third has none.
    far = [0] * 24
    for h in range(24):
        if abs((h - (hour + 12)) % 24) <= 3 or abs((h - (hour + 12)) % 24) >= 21:
            far[h] = 60
    near = list(far)
    near[hour] = 40
    sql(tenant, "INSERT INTO abuse_token_hours (token, counts) VALUES (%s, %s), (%s, %s)",
        (f"token:{ids[1]}", far, f"token:{ids[0]}", near))
    for token in (usual, odd, new):
        c = live_server.client(tenant.slug)
        c.headers["Authorization"] = f"Bearer {token}"
        assert c.get("/api/v1/messages").status_code == 200
    wait_until(lambda: alerts_of(tenant, "token_hours"), what="the odd-hours alert")
    wait_until(lambda: sql(tenant, "SELECT count(*) FROM abuse_token_hours") == [(3,)], what="profiles")
    (alert,) = alerts_of(tenant, "token_hours")
    assert alert["evidence"]["token"] == f"token:{ids[1]}" and alert["evidence"]["hour_utc"] == hour
    assert hour not in alert["evidence"]["usual_hours_utc"]
    profiles = dict(sql(tenant, "SELECT token, counts FROM abuse_token_hours"))
    assert profiles[f"token:{ids[2]}"][hour] == 1 and sum(profiles[f"token:{ids[2]}"]) == 1  # a new token: counted
    assert profiles[f"token:{ids[0]}"][hour] == 41
    # The summary is kept as msgid + arguments and shown in the reader's language.
    said = alert["evidence"]["said"]
    assert said["msgid"] == "API token “%(name)s” used at %(hour)s UTC, outside its usual hours"
    owner = sign_in(live_server, tenant.slug, owner_email(tenant))
    english = owner.get("/security").text
    assert f"used at {hour:02d}:00 UTC, outside its usual hours" in english
    sql(tenant, "UPDATE users SET language = 'de' WHERE email = %s", (owner_email(tenant),))
    german = sign_in(live_server, tenant.slug, owner_email(tenant)).get("/security").text
    _ = platform.catalogues.gettext_for("de")[0]
    translated = _(said["msgid"], **said["args"])
    assert translated != said["msgid"] % said["args"] and translated in german.replace("&#34;", '"')


# -- 4. the owners' mail -------------------------------------------------------------------------------

def run_mail(platform, tenant) -> str:
    job = platform.setup_tasks().due_jobs[mail.JOB]
    return due.run_due(platform, job, tenant.id, tenant.slug)


def raise_one(tenant, rule_name: str, key: str, evidence: dict) -> None:
    with tenant_transaction(tenant.ref):
        service.raise_alert(tenant, rules.book().rule(tenant.id, rule_name),
                            signals.Finding(rule_name, key, f"{rule_name} {key}", evidence))


def test_owners_get_one_mail_per_burst_in_their_language_as_they_chose(platform, live_server, make_tenant):
    tenant = make_tenant("avm")
    owner = owner_email(tenant)
    raise_one(tenant, "new_country", "44", {"calling_code": "44", "example": "+447911123456"})  # record only
    run_mail(platform, tenant)
    assert wait_for_mail(platform, owner, "security alert", timeout=0.5) == []
    sql(tenant, "UPDATE users SET language = 'fr' WHERE email = %s", (owner,))
    for n in range(3):  # a burst of alerts that notify
        raise_one(tenant, "token_idle", f"token:{n}", {"token": f"token:{n}", "name": f"ci-{n}", "days": 40 + n,
                                                       "last_use": "2026-01-01", "addresses": ["192.0.2.1"]})
    with tenant_transaction(tenant.ref):
        armed = mail.next_due()
    assert armed is not None
    run_mail(platform, tenant)
    _ = platform.catalogues.gettext_for("fr")[0]
    ngettext = platform.catalogues.gettext_for("fr")[1]
    subject = ngettext("%(slug)s: %(num)s security alert", "%(slug)s: %(num)s security alerts", 3, slug=tenant.slug)
    (sent,) = wait_for_mail(platform, owner, subject)
    body = sent.get_body(preferencelist=("plain",)).get_content()
    assert _("API token “%(name)s” used again after %(days)s days unused", name="ci-2", days=42) in body
    assert "/security" in body and "/account/alerts" in body
    assert "44" not in re.findall(r"\+\d+", body)  # the record-only alert is not mailed
    # A fourth alert right after: no second mail now (the quiet time), armed for later.
    raise_one(tenant, "token_idle", "token:9", {"token": "token:9", "name": "ci-9", "days": 50,
                                                "last_use": "2026-01-01", "addresses": ["192.0.2.1"]})
    run_mail(platform, tenant)
    assert len(wait_for_mail(platform, owner, subject.split(":")[0], count=2, timeout=0.5)) == 1
    with tenant_transaction(tenant.ref):
        later = mail.next_due()
        now = app_db.execute_sql("SELECT now()").fetchone()[0]
    assert later > now + dt.timedelta(minutes=14)
    # After the quiet time, an owner who turned phone-alert mails off gets none.
    sql(tenant, "UPDATE abuse_alerts SET notified_at = notified_at - interval '20 minutes' WHERE notified_at IS NOT NULL")
    (user_id,) = sql(tenant, "SELECT id FROM users WHERE email = %s", (owner,))[0]
    sql(tenant, "INSERT INTO device_alert_prefs (user_id, email, banner) VALUES (%s, false, true)", (user_id,))
    with tenant_transaction(tenant.ref):  # the job as it runs when the armed time comes
        assert mail.run(platform, tenant) is None
    assert sql(tenant, "SELECT count(*) FROM abuse_alerts WHERE notified_at IS NULL AND action <> 'record'") == [(0,)]
    assert len(wait_for_mail(platform, owner, subject.split(":")[0], count=2, timeout=0.5)) == 1


# -- 5. windows shared by several web processes --------------------------------------------------------

def test_a_burst_and_a_token_spread_over_two_processes_are_seen_whole(platform, live_server, make_tenant, cli_env):
    from tests.support.serve import start_serve

    tenant = make_tenant("avw")
    operator("INSERT INTO public.abuse_rules (rule, action, severity) VALUES ('token_ips', 'hold', 3)")
    token = api_token(tenant.slug)
    proc, port, _ = start_serve(dict(cli_env, SMSGW_TRUST_PROXY="1"))  # X-Forwarded-For, as behind nginx
    try:
        other = requests.Session()
        other.headers.update({"Host": f"{tenant.slug}.localhost:{port}", "Authorization": f"Bearer {token}"})
        here = live_server.client(tenant.slug)
        here.headers["Authorization"] = f"Bearer {token}"

        def post(n, number, ip):
            if n % 2:
                return other.post(f"http://127.0.0.1:{port}/api/v1/messages", json={"text": "otp", "to": [number]},
                                  headers={"X-Forwarded-For": ip}, timeout=30)
            return here.post("/api/v1/messages", json={"text": "otp", "to": [number]}, headers={"X-Forwarded-For": ip})

        # One number per request, every other request through the other process: 10 each of 22.
        states = []
        for n in range(22):
            r = post(n, "+1415777%04d" % (4000 + n), "203.0.113.9")
            assert r.status_code == 202, r.text
            states.append(r.json()["recipients"][0]["state"])
        assert states[:19] == ["pending"] * 19 and states[19:] == ["held"] * 3  # the 20th number of the block
        (alert,) = alerts_of(tenant, "sequential")
        assert alert["evidence"]["distinct"] >= 20

        # The token from 5 addresses, spread over both processes: flagged in both.
        for n in range(5):
            c = (other if n % 2 else here)
            url = f"http://127.0.0.1:{port}/api/v1/messages" if n % 2 else "/api/v1/messages"
            assert c.get(url, headers={"X-Forwarded-For": f"198.51.100.{n + 1}"}, timeout=30).status_code == 200
        wait_until(lambda: alerts_of(tenant, "token_ips"), what="the token flagged")
        time.sleep(0.5)  # the flag's NOTIFY reaches the other process
        for attempt in range(2):
            r = post(attempt + 1, "+12125550%03d" % attempt, "198.51.100.1")
            assert r.status_code == 202 and r.json()["recipients"][0]["state"] == "held", (attempt, r.text)
    finally:
        proc.kill()
        proc.wait(10)
    assert sorted(ip for (ip,) in sql(tenant, "SELECT ip FROM abuse_token_ips")) == sorted(
        ["203.0.113.9"] + [f"198.51.100.{n + 1}" for n in range(5)])


# -- 6. a failed rule reload is not silent ---------------------------------------------------------------

def test_a_bad_rule_set_keeps_the_rules_in_use_and_the_admin_sees_why(platform, live_server, make_tenant):
    from core.admins import create_admin
    import secrets

    operator("INSERT INTO public.abuse_rules (rule, action, severity, params) VALUES ('premium', 'off', 3, '{}')")
    assert rules.book().rules["premium"].action == "off" and rules.failure() is None
    operator("UPDATE public.abuse_rules SET action = 'hold', params = '{\"numbers\": \"many\"}' WHERE rule = 'premium'; "
             "INSERT INTO public.abuse_rules (rule, action, severity, params) "
             "VALUES ('sequential', 'hold', 3, '{\"numbers\": \"twenty\"}'); "
             "INSERT INTO public.abuse_aup_patterns (kind, pattern) VALUES ('regex', '(a)\\1')")
    book = rules.book()
    assert book.rules["premium"].action == "off"  # the rules in use stay
    assert book.rules["sequential"].params["numbers"] == 20
    problems = rules.failure()["problems"]
    assert any("unknown parameter 'numbers'" in p and p.startswith("premium") for p in problems)
    assert any(p.startswith("sequential.numbers") for p in problems)
    assert any("acceptable-use pattern" in p for p in problems)
    admin = create_admin(platform, f"ops-{secrets.token_hex(3)}@platform.example", "admin password long enough")
    c = admin_sign_in(live_server, admin.email, "admin password long enough")
    page = c.get("/admin/abuse/rules")
    assert page.status_code == 200 and 'id="rules-failure"' in page.text
    assert "sequential.numbers: must be a number" in page.text
    operator("DELETE FROM public.abuse_rules; DELETE FROM public.abuse_aup_patterns")
    assert rules.book().rules["premium"].action == "hold" and rules.failure() is None
    page = c.get("/admin/abuse/rules")
    assert page.status_code == 200 and 'id="rules-failure"' not in page.text and 'data-rule="token_hours"' in page.text


def test_the_security_pages_forms_refuse_hostile_input_readably(platform, live_server, make_tenant):
    from tests.support.identity import post_form

    tenant = make_tenant("avp")
    sandboxed(tenant)
    owner = sign_in(live_server, tenant.slug, owner_email(tenant))
    r = post_form(owner, "/security/sandbox/code", {"phone": "<script>alert(1)</script>"})
    assert r.status_code == 422 and "<script>alert(1)" not in r.text and 'role="alert"' in r.text
    r = post_form(owner, "/security/sandbox/code", {"phone": "+14155550400"})  # no phone in the workspace
    assert r.status_code == 422 and "connect a phone first" in r.text
    r = post_form(owner, "/security/sandbox/verify", {"phone": "+14155550400", "code": "'; DROP TABLE users; --"})
    assert r.status_code == 422 and "ask for a code first" in r.text
    r = post_form(owner, "/security/sandbox/verify", {"phone": "+14155550400", "code": "9" * 5000})
    assert r.status_code == 422
    assert sql(tenant, "SELECT count(*) FROM abuse_sandbox_numbers") == [(0,)]
    assert sql(tenant, "SELECT count(*) FROM users") == [(1,)]


def test_held_messages_and_alerts_say_why_in_the_readers_language(platform, live_server, make_tenant):
    tenant = make_tenant("avt")
    api = api_client(live_server, tenant.slug)
    r = api.post("/api/v1/messages", json={"text": "vote", "to": ["+19005550111"]})
    assert r.json()["recipients"][0]["state"] == "held"
    assert r.json()["recipients"][0]["hold_reason"].startswith("premium: ")  # the API keeps the English record
    (alert,) = alerts_of(tenant, "premium")
    said = alert["evidence"]["said"]
    sql(tenant, "UPDATE users SET language = 'de' WHERE email = %s", (owner_email(tenant),))
    page = sign_in(live_server, tenant.slug, owner_email(tenant)).get("/security").text
    _ = platform.catalogues.gettext_for("de")[0]
    args = dict(said["args"], kind=_(said["args"]["kind"]))
    german = _(said["msgid"], **args)
    assert german != said["msgid"] % said["args"]
    row = re.search(r'<tr data-recipient="\d+">.*?</tr>', page, re.S).group(0)
    assert german in row and _("Premium-rate or shared-cost number") in row
    assert page.count(german) == 2  # the alert and its held message
