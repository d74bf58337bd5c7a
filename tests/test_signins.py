"""Sign-in history on Account -> Security (issue 16, item 4): each sign-in (and each failed one for a
member's own address) is kept 90 days in the workspace's own schema with its time, address, browser
family and device type, never the User-Agent text; each member sees only their own; "this wasn't me"
ends every session and credential of the member; the due job cuts addresses after 7 days and removes
rows after 90; the data export carries the history and deleting the account removes it."""

from __future__ import annotations

import datetime as dt
import re

import peewee
import pytest

from addons.privacy import signins, useragent
from core import due
from core.db import as_serving_role, tenant_transaction
from core.events import AuditEvent, emit_with_work
from tests.support.identity import (OWNER_PASSWORD, add_user, admin_sql, api_sign_in, audit_rows, bearer, client,
                                    fetch_xsrf, owner_email, post_form)
from tests.support.messaging import sql

PASSWORD = "another long password"
CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                  "Chrome/120.0.0.0 Safari/537.36")
SAFARI_IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
                 "Version/17.1 Mobile/15E148 Safari/604.1")
DAY = dt.timedelta(days=1)


def rows(tenant, user_id=None) -> list[dict]:
    where, params = ("WHERE user_id = %s", (user_id,)) if user_id is not None else ("", ())
    found = sql(tenant, "SELECT id, user_id, at, succeeded, ip, browser, device FROM privacy_signins "
                        f"{where} ORDER BY id", params)
    return [dict(zip(("id", "user_id", "at", "succeeded", "ip", "browser", "device"), r)) for r in found]


def browser_sign_in(live_server, slug, email, password=OWNER_PASSWORD, ua=CHROME_WINDOWS, ip=None):
    c = client(live_server, slug, ip)
    c.headers["User-Agent"] = ua
    fetch_xsrf(c)
    r = post_form(c, "/login", {"email": email, "password": password})
    assert r.status_code == 302, (r.status_code, r.text[:300])
    return c


def owner_id(tenant) -> int:
    return sql(tenant, "SELECT id FROM users WHERE email = %s", (owner_email(tenant),))[0][0]


# -- the User-Agent parser --------------------------------------------------------------------------

@pytest.mark.parametrize("ua, family, device", [
    (CHROME_WINDOWS, "chrome", "desktop"),
    (SAFARI_IPHONE, "safari", "phone"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
     "Safari/605.1.15", "safari", "desktop"),
    ("Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 "
     "Mobile/15E148 Safari/604.1", "safari", "tablet"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0", "firefox", "desktop"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", "firefox", "desktop"),
    ("Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0", "firefox", "phone"),
    ("Mozilla/5.0 (Android 14; Tablet; rv:121.0) Gecko/121.0 Firefox/121.0", "firefox", "tablet"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36 Edg/120.0.2210.91", "edge", "desktop"),
    ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile "
     "Safari/537.36", "chrome", "phone"),
    ("Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36", "chrome", "tablet"),
    ("Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36", "samsung", "phone"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36 OPR/106.0.0.0", "opera", "desktop"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1", "chrome", "phone"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "FxiOS/121.0 Mobile/15E148 Safari/605.1.15", "firefox", "phone"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chromium/120.0.0.0 "
     "Chrome/120.0.0.0 Safari/537.36", "chromium", "desktop"),
    ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 "
     "Safari/537.36", "chrome", "desktop"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 "
     "Safari/537.36", "chrome", "desktop"),
    ("Mozilla/5.0 (Windows NT 10.0; Trident/7.0; rv:11.0) like Gecko", "ie", "desktop"),
    ("Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/4.0 "
     "Chrome/76.0.3809.146 TV Safari/537.36", "samsung", "other"),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", "other"),
    ("curl/8.5.0", "tool", "other"),
    ("python-requests/2.31.0", "tool", "other"),
    ("", "unknown", "unknown"),
    ("something nobody knows", "other", "unknown"),
])
def test_the_parser_reads_family_and_device(ua, family, device):
    assert useragent.parse(ua) == (family, device)


@pytest.mark.parametrize("ua", [
    "A" * 100_000,
    "Mozilla/5.0 " + "(" * 50_000,
    "<script>alert(1)</script>",
    "Mozilla/5.0 (Windows NT 10.0)\x00\x01\x1b[31m Chrome/120.0 <img src=x onerror=alert(1)>",
    "\u202eMozilla\u200b/5.0 (iPhone) Safari/604.1 \ud800",
    None,
])
def test_any_header_gives_words_from_the_fixed_lists(ua):
    family, device = useragent.parse(ua)
    assert family in useragent.FAMILIES and device in useragent.DEVICES


def test_addresses_are_stored_valid_or_not_at_all():
    assert signins.stored_ip("203.0.113.7") == "203.0.113.7"
    assert signins.stored_ip("::ffff:203.0.113.7") == "203.0.113.7"
    assert signins.stored_ip("fe80::1%eth0") == "fe80::1"
    assert signins.stored_ip("2001:db8::1") == "2001:db8::1"
    for bad in ("", None, "not an ip", "203.0.113.7<b>", "1.2.3.4.5"):
        assert signins.stored_ip(bad) is None


# -- recording -----------------------------------------------------------------------------------

def test_two_browsers_give_two_rows_with_their_family_and_device(live_server, make_tenant):
    t = make_tenant("sgn")
    browser_sign_in(live_server, t.slug, owner_email(t), ua=CHROME_WINDOWS, ip="198.51.100.10")
    phone = browser_sign_in(live_server, t.slug, owner_email(t), ua=SAFARI_IPHONE, ip="2001:db8:aa:bb::5")
    found = rows(t)
    assert [(r["succeeded"], r["ip"], r["browser"], r["device"]) for r in found] == [
        (True, "198.51.100.10", "chrome", "desktop"), (True, "2001:db8:aa:bb::5", "safari", "phone")]
    assert {r["user_id"] for r in found} == {owner_id(t)}
    # No User-Agent text anywhere in the table.
    assert "Mozilla" not in str(sql(t, "SELECT * FROM privacy_signins"))

    page = phone.get("/account/security")
    assert page.status_code == 200
    body = page.text
    assert body.index("2001:db8:aa:bb::5") < body.index("198.51.100.10")  # newest first
    assert "Safari" in body and "Chrome" in body and "Phone" in body and "Computer" in body
    # The phone's own sign-in is marked as this session; the other is not.
    marked = re.findall(r'<tr class="[^"]*signin-current[^"]*" data-signin="(\d+)"', body)
    assert marked == [str(found[1]["id"])]
    assert body.count("This session") == 1


def test_the_token_api_sign_in_is_recorded_too(live_server, make_tenant):
    t = make_tenant("sgn")
    api_sign_in(live_server, t.slug, owner_email(t))
    (row,) = rows(t)
    assert row["succeeded"] and row["user_id"] == owner_id(t)


def test_a_failed_sign_in_for_a_members_address_is_shown_as_failed(live_server, make_tenant):
    t = make_tenant("sgn")
    c = client(live_server, t.slug, "198.51.100.77")
    fetch_xsrf(c)
    r = post_form(c, "/login", {"email": owner_email(t).upper(), "password": "wrong password here"})
    assert r.status_code == 401
    r = post_form(c, "/login", {"email": f"nobody@{t.slug}.example", "password": "wrong password here"})
    assert r.status_code == 401
    (row,) = rows(t)  # the unknown address is nobody's history
    assert (row["succeeded"], row["ip"], row["user_id"]) == (False, "198.51.100.77", owner_id(t))
    owner = browser_sign_in(live_server, t.slug, owner_email(t))
    body = owner.get("/account/security").text
    assert "Failed: wrong password" in body and "198.51.100.77" in body


def test_hostile_user_agents_are_stored_bounded_and_shown_escaped(live_server, make_tenant):
    t = make_tenant("sgn")
    hostile = ["<script>alert('ua')</script>", "Mozilla/5.0 \t<b>bold</b> Chrome/1", "Z" * 8000]
    for ua in hostile:
        browser_sign_in(live_server, t.slug, owner_email(t), ua=ua)
    # Tornado answers 400 to a header with control characters; a recorder could still be handed one.
    live_server.platform.registry.hook.smsgw_audit_event(event=AuditEvent(
        "login.success", t.id, t.slug, actor=f"user:{owner_id(t)}", ip="<b>not an address</b>",
        user_agent="Mozilla/5.0 (iPhone\x1b[31m) \x7f<i>x</i> Safari/604.1" + "\x01" * 5000))
    stored = [(r["browser"], r["device"], r["ip"]) for r in rows(t)]
    assert stored[:3] == [("other", "unknown", "127.0.0.1")] + [("chrome", "unknown", "127.0.0.1"),
                                                                 ("other", "unknown", "127.0.0.1")]
    assert stored[3] == ("other", "phone", None)
    widest = sql(t, "SELECT max(octet_length(browser) + octet_length(device)) FROM privacy_signins")[0][0]
    assert widest <= 32
    c = browser_sign_in(live_server, t.slug, owner_email(t), ua=hostile[0])
    body = c.get("/account/security").text
    for text in ("<script>alert", "alert('ua')", "<b>bold", "Z" * 100):
        assert text not in body


def test_the_schema_allows_nothing_but_the_fixed_words(make_tenant, platform):
    t = make_tenant("sgn")
    uid = owner_id(t)
    for browser, device in (("<b>", "phone"), ("chrome", "toaster"), ("x" * 40, "phone")):
        with pytest.raises(peewee.IntegrityError, match="check constraint"):
            sql(t, "INSERT INTO privacy_signins (user_id, succeeded, browser, device) VALUES (%s, true, %s, %s)",
                (uid, browser, device))


def test_an_event_recorded_with_work_leaves_the_transaction_as_the_serving_role(live_server, make_tenant):
    """``emit_with_work`` hands the recorders a tenant transaction as the serving role: after this
    addon's row (written as the workspace), the recorders that follow still write the catalogue as
    that role, and the work's transaction goes on as the workspace afterwards."""
    platform = live_server.platform
    t = make_tenant("sgn")
    uid = owner_id(t)
    event = AuditEvent("login.success", t.id, t.slug, actor=f"user:{uid}", ip="192.0.2.1", user_agent=CHROME_WINDOWS)
    with tenant_transaction(t.ref) as db:
        with as_serving_role():
            signins.on_audit_event(event)
            state = db.execute_sql("SELECT current_user = session_user, current_setting('search_path')").fetchone()
            assert state == (True, "public")
        emit_with_work(platform, event)
        assert db.execute_sql("SELECT current_user").fetchone()[0] == t.role_name
    assert [r["ip"] for r in rows(t)] == ["192.0.2.1", "192.0.2.1"]
    assert len(audit_rows(platform, t.id, "login.success")) == 1


def test_a_workspace_that_disabled_privacy_keeps_no_history(live_server, make_tenant):
    platform = live_server.platform
    t = make_tenant("sgn")
    admin_sql(platform, "UPDATE public.tenant_addon SET enabled = false WHERE tenant_id = %s AND addon = 'privacy'",
              (t.id,))
    platform.tenant_cache.invalidate(t.slug)
    try:
        browser_sign_in(live_server, t.slug, owner_email(t))
        assert rows(t) == []
    finally:
        admin_sql(platform, "UPDATE public.tenant_addon SET enabled = true WHERE tenant_id = %s AND addon = 'privacy'",
                  (t.id,))
        platform.tenant_cache.invalidate(t.slug)


# -- who sees what ----------------------------------------------------------------------------------

def test_a_member_sees_only_their_own_history(live_server, make_tenant, platform):
    a, b = make_tenant("sgn"), make_tenant("sgn")
    ann = add_user(platform, a, f"ann@{a.slug}.example", PASSWORD)
    browser_sign_in(live_server, a.slug, owner_email(a), ip="198.51.100.1")
    browser_sign_in(live_server, b.slug, owner_email(b), ip="198.51.100.2")
    assert owner_id(b) == owner_id(a)  # the same user id in another workspace
    ann_c = browser_sign_in(live_server, a.slug, f"ann@{a.slug}.example", PASSWORD, ip="198.51.100.3")
    body = ann_c.get("/account/security").text
    assert "198.51.100.3" in body and "198.51.100.1" not in body and "198.51.100.2" not in body
    # The page takes no user or workspace from the request: asking for more shows the same.
    assert "198.51.100.1" not in ann_c.get(f"/account/security?user_id={owner_id(a)}&page=1").text
    owner_body = browser_sign_in(live_server, a.slug, owner_email(a)).get("/account/security").text
    assert "198.51.100.1" in owner_body and "198.51.100.3" not in owner_body and "198.51.100.2" not in owner_body
    assert {r["user_id"] for r in rows(a)} == {owner_id(a), ann}


def test_another_workspace_cannot_read_the_table_at_the_database_level(make_tenant, live_server):
    a, b = make_tenant("sgn"), make_tenant("sgn")
    browser_sign_in(live_server, a.slug, owner_email(a))
    with pytest.raises(peewee.ProgrammingError, match="permission denied for schema"):
        with tenant_transaction(b.ref) as db:
            db.execute_sql(f'SELECT * FROM "{a.schema_name}".privacy_signins')
    assert len(rows(a)) == 1


def test_pages_hold_twenty_newest_first(live_server, make_tenant):
    t = make_tenant("sgn")
    uid = owner_id(t)
    now = dt.datetime.now(dt.timezone.utc)
    with tenant_transaction(t.ref):
        for i in range(25):
            signins.record(t, uid, True, f"192.0.2.{i + 1}", CHROME_WINDOWS, at=now - dt.timedelta(hours=25 - i))
    c = browser_sign_in(live_server, t.slug, owner_email(t), ip="198.51.100.99")
    first = c.get("/account/security").text
    second = c.get("/account/security?page=2").text
    assert first.count("data-signin=") == 20 and second.count("data-signin=") == 6
    assert "198.51.100.99" in first and ">192.0.2.1<" not in first and ">192.0.2.1<" in second
    assert "Page 1 of 2" in first and 'href="/account/security?page=2"' in first
    assert c.get("/account/security?page=99").text.count("data-signin=") == 6  # past the end: the last page
    assert c.get("/account/security?page=x").status_code == 200


def test_the_account_pages_link_security_and_the_other_slots_stay(live_server, make_tenant):
    """Several features of one addon fill template slots (``specname``): each one's part shows."""
    t = make_tenant("sgn")
    c = browser_sign_in(live_server, t.slug, owner_email(t))
    for path in ("/account", "/account/privacy", "/account/security"):
        body = c.get(path).text
        assert 'href="/account/security"' in body and 'href="/account/privacy"' in body, path
        assert 'class="footer-link" href="/privacy"' in body, path  # the policy feature's footer link


def test_signed_out_visitors_are_sent_to_sign_in(live_server, make_tenant):
    t = make_tenant("sgn")
    r = client(live_server, t.slug).get("/account/security")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login?next=%2Faccount%2Fsecurity")


# -- this wasn't me ---------------------------------------------------------------------------------

def test_this_wasnt_me_ends_every_session_and_credential_of_the_member(live_server, make_tenant, platform):
    t = make_tenant("sgn")
    ann = add_user(platform, t, f"ann@{t.slug}.example", PASSWORD, role="customer")
    mine = browser_sign_in(live_server, t.slug, f"ann@{t.slug}.example", PASSWORD, ua=CHROME_WINDOWS)
    other = browser_sign_in(live_server, t.slug, f"ann@{t.slug}.example", PASSWORD, ua=SAFARI_IPHONE)
    owner = browser_sign_in(live_server, t.slug, owner_email(t))
    tokens = api_sign_in(live_server, t.slug, f"ann@{t.slug}.example", PASSWORD)
    assert other.get("/account").status_code == 200

    r = post_form(mine, "/account/security", {})
    assert r.status_code == 303 and r.headers["Location"] == "/account/security/signed-out"
    done = mine.get("/account/security/signed-out")
    assert done.status_code == 200
    assert 'href="/login?next=%2Faccount"' in done.text and 'href="/forgot-password"' in done.text
    assert "change it now" in done.text

    for c in (mine, other):  # the other session's next request, and this one's
        r = c.get("/account")
        assert r.status_code == 302 and r.headers["Location"].startswith("/login"), r.status_code
    refreshed = client(live_server, t.slug).post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401
    api = client(live_server, t.slug)
    api.headers.update(bearer(tokens["access_token"]))
    assert api.get("/api/v1/me").status_code == 401
    assert sql(t, "SELECT count(*) FROM sessions WHERE user_id = %s AND revoked_at IS NULL", (ann,)) == [(0,)]
    assert owner.get("/account").status_code == 200  # nobody else is signed out
    (event,) = audit_rows(platform, t.id, "account.signed_out_everywhere")
    assert event["actor"] == f"user:{ann}" and event["target"] == f"user:{ann}"


def test_this_wasnt_me_needs_the_forms_token(live_server, make_tenant):
    t = make_tenant("sgn")
    c = browser_sign_in(live_server, t.slug, owner_email(t))
    r = c.post("/account/security", data={})
    assert r.status_code == 403
    assert c.get("/account").status_code == 200


# -- retention ---------------------------------------------------------------------------------------

def _armed(platform, tenant):
    return [r[0] for r in admin_sql(platform, "SELECT due_at FROM public.due_work WHERE job = %s AND tenant_id = %s",
                                    (signins.JOB, tenant.id), fetch=True)]


def test_a_sign_in_arms_the_job_for_when_its_address_is_cut(live_server, make_tenant):
    platform = live_server.platform
    t = make_tenant("sgn")
    assert _armed(platform, t) == []
    browser_sign_in(live_server, t.slug, owner_email(t), ip="198.51.100.5")
    (row,) = rows(t)
    assert _armed(platform, t) == [row["at"] + signins.EXACT_IP]
    browser_sign_in(live_server, t.slug, owner_email(t), ip="198.51.100.6")
    assert _armed(platform, t) == [row["at"] + signins.EXACT_IP]  # the earlier time stays


def test_the_due_run_cuts_addresses_after_7_days_and_removes_rows_after_90(platform, make_tenant):
    t, other = make_tenant("sgn"), make_tenant("sgn")
    uid = owner_id(t)
    now = dt.datetime.now(dt.timezone.utc)
    with tenant_transaction(t.ref):
        old = signins.record(t, uid, True, "203.0.113.9", CHROME_WINDOWS, at=now - 90 * DAY - dt.timedelta(minutes=1))
        kept = signins.record(t, uid, False, "2001:db8:1234:5678::1", SAFARI_IPHONE, at=now - 89 * DAY)
        week = signins.record(t, uid, True, "198.51.100.200", CHROME_WINDOWS, at=now - 8 * DAY)
        fresh = signins.record(t, uid, True, "198.51.100.201", CHROME_WINDOWS, at=now - 6 * DAY)
    with tenant_transaction(other.ref):
        foreign = signins.record(other, owner_id(other), True, "203.0.113.10", CHROME_WINDOWS, at=now - 100 * DAY)
    job = platform.setup_tasks().due_jobs[signins.JOB]
    assert due.run_due(platform, job, t.id, t.slug) == "ran"
    found = {r["id"]: r for r in rows(t)}
    assert old not in found
    assert found[kept]["ip"] == "2001:db8:1234::/48" and found[kept]["browser"] == "safari"
    assert found[week]["ip"] == "198.51.100.0/24"
    assert found[fresh]["ip"] == "198.51.100.201"
    assert [r["id"] for r in rows(other)] == [foreign]  # another workspace's rows wait for its own run
    # Next: the fresh row's address, a day from now.
    (due_at,) = _armed(platform, t)
    assert abs((due_at - (now - 6 * DAY + signins.EXACT_IP)).total_seconds()) < 1
    with tenant_transaction(t.ref):
        signins.run(t, now=now + 91 * DAY)
        assert signins.next_due(t) is None
    assert rows(t) == []


def test_the_page_says_an_address_was_cut(live_server, make_tenant):
    t = make_tenant("sgn")
    uid = owner_id(t)
    now = dt.datetime.now(dt.timezone.utc)
    with tenant_transaction(t.ref):
        signins.record(t, uid, True, "203.0.113.50", CHROME_WINDOWS, at=now - 10 * DAY)
        signins.run(t)
    body = browser_sign_in(live_server, t.slug, owner_email(t)).get("/account/security").text
    assert "203.0.113.0/24" in body and "(network only)" in body and "203.0.113.50" not in body


# -- export and erasure -----------------------------------------------------------------------------

def test_the_history_is_declared_for_export_and_erasure(platform):
    (d,) = [d for d in platform.registry.models() if d.table == "privacy_signins"]
    assert d.scope == "tenant" and d.addon == "privacy"
    assert d.privacy.subjects == {"user": "user_id"} and d.privacy.erase == "delete"
    assert {"at", "succeeded", "ip", "browser", "device"} == set(d.privacy.export)


def test_the_members_export_holds_their_history_and_deleting_the_account_removes_it(live_server, make_tenant,
                                                                                     platform):
    from tests.test_privacy_export import exports_of, page_link, part_rows, unzip, wait_ready

    t = make_tenant("sgn")
    ann = add_user(platform, t, f"ann@{t.slug}.example", PASSWORD)
    browser_sign_in(live_server, t.slug, owner_email(t), ip="198.51.100.30")
    c = browser_sign_in(live_server, t.slug, f"ann@{t.slug}.example", PASSWORD, ua=SAFARI_IPHONE, ip="198.51.100.31")
    r = post_form(c, "/account/privacy", {"section": "export", "scope": "me"})
    assert r.status_code == 303, r.text[:300]
    export_id = exports_of(platform, t.id)[-1]["id"]
    wait_ready(platform, t.id, export_id)
    files = unzip(c.get(page_link(c, export_id)).content)
    history = part_rows(files, "privacy_signins")
    assert [(h["ip"], h["browser"], h["device"], h["succeeded"]) for h in history] == [
        ("198.51.100.31", "safari", "phone", True)]

    r = post_form(c, "/account/privacy", {"section": "delete-account", "password": PASSWORD})
    assert r.status_code == 303, r.text[:300]
    assert rows(t, ann) == []
    assert [r["ip"] for r in rows(t)] == ["198.51.100.30"]  # the owner's stays
