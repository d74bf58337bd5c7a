"""Cookie consent and first-party analytics over plain HTTP (no JavaScript): the banner's forms post
and come back, the choice is recorded with the policy version, analytics counts only with consent,
hostile input changes nothing. The browser side (scripts, keyboard, subdomains, axe) is in
tests/test_browser_cookies.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from email.utils import parsedate_to_datetime

import pytest

from core.admins import create_admin
from core.config import ConfigError, Settings
from core.db import connection
from tests.support.identity import admin_sign_in, admin_sql, client, fetch_xsrf, fresh_ip, owner_email, post_form, sign_in

def banner_open(html: str) -> bool:
    tag = re.search(r'<section id="cookie-banner"[^>]*>', html)
    assert tag, "no cookie banner on the page"
    return " hidden" not in tag.group(0)


def consent_rows(platform, consent_id):
    return admin_sql(platform, "SELECT version, choice, source, tenant_id, subject FROM public.cookie_consent "
                               "WHERE consent_id = %s ORDER BY id", (consent_id,), fetch=True)


def views(platform, visitor):
    return admin_sql(platform, "SELECT path, referrer_host, referrer_path FROM public.analytics_view "
                               "WHERE visitor = %s ORDER BY id", (visitor,), fetch=True)


def all_views(platform) -> int:
    return admin_sql(platform, "SELECT count(*) FROM public.analytics_view", fetch=True)[0][0]


def all_consents(platform) -> int:
    return admin_sql(platform, "SELECT count(*) FROM public.cookie_consent", fetch=True)[0][0]


def choose(c, choice, nxt="/", **extra):
    token = c.cookies.get("_xsrf") or fetch_xsrf(c, "/")
    return c.post("/cookies/consent", data={"_xsrf": token, "choice": choice, "next": nxt, **extra})


def test_without_javascript_the_banner_posts_records_and_comes_back(live_server, platform):
    c = client(live_server)
    page = c.get("/")
    assert page.status_code == 200 and banner_open(page.text)
    assert 'action="/cookies/consent"' in page.text and 'value="analytics"' in page.text and 'value="essential"' in page.text
    assert "smsgw_analytics" not in page.headers.get("Set-Cookie", "")
    r = choose(c, "essential", "/privacy?x=1")
    assert r.status_code == 303 and r.headers["Location"] == "/privacy?x=1"
    value = c.cookies.get("smsgw_consent")
    version, choice, consent_id = value.split(":")
    assert (version, choice) == ("1", "essential") and len(consent_id) == 16
    assert consent_rows(platform, consent_id) == [("1", "essential", "banner", None, "")]
    assert "smsgw_analytics" not in c.cookies
    again = c.get("/privacy")
    assert not banner_open(again.text)  # decided: the banner is on the page, hidden, for "Cookie settings"
    assert 'href="/cookies"' in again.text
    # The settings form: the analytics box ticked means analytics, unticked means essential.
    r = choose(c, "settings", "/cookies", analytics="yes")
    assert r.status_code == 303 and c.cookies.get("smsgw_consent") == f"1:analytics:{consent_id}"
    assert [row[:3] for row in consent_rows(platform, consent_id)] == [("1", "essential", "banner"),
                                                                       ("1", "analytics", "settings")]
    settings_page = c.get("/cookies")
    assert settings_page.status_code == 200 and "Your choice: analytics allowed." in settings_page.text


def test_analytics_counts_public_pages_only_after_consent_and_withdrawal_deletes_its_cookie(live_server, platform):
    c = client(live_server)
    before = all_views(platform)
    for path in ("/", "/signup", "/privacy", "/api/docs"):
        assert c.get(path).status_code == 200
    assert all_views(platform) == before, "a view was counted without consent"
    assert "smsgw_analytics" not in c.cookies
    choose(c, "analytics")
    visitor = c.cookies.get("smsgw_analytics")
    assert visitor and len(visitor) == 16
    c.get("/signup", headers={"Referer": "https://search.example/q?who=me"})
    c.get("/privacy", headers={"Referer": f"http://localhost:{live_server.port}/signup?step=2"})
    c.get("/login")  # not a public page of the base domain: not counted (404 here, no workspace)
    assert views(platform, visitor) == [("/signup", "search.example", ""), ("/privacy", "", "/signup")]
    r = choose(c, "essential")
    assert r.status_code == 303
    deleted = re.search(r'smsgw_analytics=""; expires=([^;]+)', r.headers["Set-Cookie"])
    assert deleted and parsedate_to_datetime(deleted.group(1)) < dt.datetime.now(dt.timezone.utc), r.headers["Set-Cookie"]
    assert "smsgw_analytics" not in c.cookies
    c.get("/")
    assert len(views(platform, visitor)) == 2


def test_a_workspace_shows_the_banner_and_takes_the_choice(live_server, platform, make_tenant):
    t = make_tenant("ck")
    c = client(live_server, t.slug)
    page = c.get("/login")
    assert page.status_code == 200 and banner_open(page.text)
    assert choose(c, "essential", "/login").status_code == 303
    assert not banner_open(c.get("/login").text)
    # A signed-in member's choice is theirs (in their export, erased with them).
    member = sign_in(live_server, t.slug, owner_email(t))
    assert banner_open(member.get("/").text)
    choose(member, "analytics")
    consent_id = member.cookies.get("smsgw_consent").split(":")[2]
    assert consent_rows(platform, consent_id) == [("1", "analytics", "banner", t.id, "user:1")]


def test_a_member_who_objected_to_profiling_is_never_counted(live_server, platform, make_tenant):
    t = make_tenant("obj")
    member = sign_in(live_server, t.slug, owner_email(t))
    fetch_xsrf(member, "/account/privacy")
    r = post_form(member, "/account/privacy", {"section": "objection", "action": "object", "purpose": "profiling"})
    assert r.status_code in (302, 303), r.text[:300]
    r = choose(member, "analytics")
    assert r.status_code == 303
    consent_id = member.cookies.get("smsgw_consent").split(":")[2]
    assert member.cookies.get("smsgw_consent").split(":")[1] == "essential"
    assert "smsgw_analytics" not in member.cookies
    assert consent_rows(platform, consent_id) == [("1", "essential", "objection", t.id, "user:1")]


def test_an_objection_overrides_an_earlier_acceptance_on_the_next_page(live_server, platform, make_tenant):
    t = make_tenant("obj2")
    member = sign_in(live_server, t.slug, owner_email(t))
    choose(member, "analytics")
    assert member.cookies.get("smsgw_analytics")
    consent_id = member.cookies.get("smsgw_consent").split(":")[2]
    fetch_xsrf(member, "/account/privacy")
    r = post_form(member, "/account/privacy", {"section": "objection", "action": "object", "purpose": "profiling"})
    assert r.status_code in (302, 303), r.text[:300]
    member.get("/")
    assert member.cookies.get("smsgw_consent") == f"1:essential:{consent_id}"
    assert "smsgw_analytics" not in member.cookies
    assert consent_rows(platform, consent_id)[-1] == ("1", "essential", "objection", t.id, "user:1")


def test_a_new_cookie_policy_version_asks_again_and_stops_analytics(live_server, platform):
    c = client(live_server)
    choose(c, "analytics")
    visitor = c.cookies.get("smsgw_analytics")
    c.get("/")
    assert len(views(platform, visitor)) == 1
    configured = platform.settings
    platform.settings = dataclasses.replace(configured, cookie_policy_version="2026-12-07")
    try:
        page = c.get("/")
        assert banner_open(page.text)
        assert len(views(platform, visitor)) == 1, "counted under a policy the visitor never answered"
        assert "smsgw_analytics" not in c.cookies
        choose(c, "analytics")
        version, choice, consent_id = c.cookies.get("smsgw_consent").split(":")
        assert (version, choice) == ("2026-12-07", "analytics")
        assert consent_rows(platform, consent_id)[-1][:2] == ("2026-12-07", "analytics")
        assert not banner_open(c.get("/").text)
    finally:
        platform.settings = configured


@pytest.mark.parametrize("data, code", [
    ({"choice": "everything"}, "bad-choice"),
    ({"choice": ""}, "bad-choice"),
    ({"choice": "analytics" * 1000}, "bad-choice"),
    ({"choice": "analytics", "next": "https://evil.example/"}, "bad-return-url"),
    ({"choice": "analytics", "next": "//evil.example/x"}, "bad-return-url"),
    ({"choice": "analytics", "next": "/\\evil.example"}, "bad-return-url"),
    ({"choice": "analytics", "next": "javascript:alert(1)"}, "bad-return-url"),
    ({"choice": "analytics", "next": "/" + "a" * 3000}, "bad-return-url"),
])
def test_hostile_consent_posts_are_refused_and_store_nothing(live_server, platform, data, code):
    c = client(live_server)
    c.headers["Accept"] = "application/json"
    token = fetch_xsrf(c, "/")
    before = all_consents(platform)
    r = c.post("/cookies/consent", data={"_xsrf": token, "next": "/", **data})
    assert r.status_code == 400 and r.json()["code"] == code
    assert "smsgw_consent" not in c.cookies and "smsgw_analytics" not in c.cookies
    assert all_consents(platform) == before


def test_a_consent_post_without_the_form_token_is_refused(live_server, platform):
    c = client(live_server)
    before = all_consents(platform)
    r = c.post("/cookies/consent", data={"choice": "analytics", "next": "/"})
    assert r.status_code == 403 and all_consents(platform) == before


@pytest.mark.parametrize("cookie", ["1:analytics:" + "a" * 200, "1:analytics:short", "1:everything:AAAAAAAAAAAAAAAA",
                                    "x" * 4000, "1:analytics:AAAAAAAAAAAAAAA!"])
def test_an_oversized_or_malformed_consent_cookie_counts_as_no_choice(live_server, platform, cookie):
    c = client(live_server)
    sent = {"Cookie": f"smsgw_consent={cookie}; smsgw_analytics=BBBBBBBBBBBBBBBB"}
    before = all_views(platform)
    page = c.get("/", headers=sent)
    assert page.status_code == 200 and banner_open(page.text)
    assert all_views(platform) == before
    assert 'smsgw_analytics=""; expires=' in page.headers["Set-Cookie"]  # no consent: an analytics cookie goes
    token = c.cookies.get("_xsrf")
    r = c.post("/cookies/consent", data={"_xsrf": token, "choice": "essential", "next": "/"},
               headers={"Cookie": f"{sent['Cookie']}; _xsrf={token}"})
    assert r.status_code == 303
    assert all_views(platform) == before
    assert c.cookies.get("smsgw_consent") != cookie and c.cookies.get("smsgw_consent").startswith("1:essential:")


def test_sign_up_conversion_and_the_admin_page(live_server, platform):
    import secrets

    c = client(live_server, ip=fresh_ip())
    choose(c, "analytics")
    visitor = c.cookies.get("smsgw_analytics")
    page = c.get("/signup")
    version = re.search(r'name="privacy_version" value="([^"]+)"', page.text).group(1)
    slug = f"conv-{secrets.token_hex(4)}"
    r = post_form(c, "/signup", {"company": "Conversion Co", "slug": slug, "email": f"owner@{slug}.example",
                                 "password": "a long enough password", "accept_privacy": "yes",
                                 "privacy_version": version})
    assert r.status_code in (302, 303, 200), r.text[:300]
    assert admin_sql(platform, "SELECT count(*) FROM public.analytics_signup WHERE visitor = %s", (visitor,),
                     fetch=True)[0][0] == 1
    if not admin_sql(platform, "SELECT 1 FROM public.platform_admin WHERE email = %s",
                     ("analytics-admin@example.com",), fetch=True):
        with connection():
            create_admin(platform, "analytics-admin@example.com", "admin password 123")
    admin = admin_sign_in(live_server, "analytics-admin@example.com", "admin password 123", ip=fresh_ip())
    before = all_views(platform)
    page = admin.get("/admin/analytics")
    assert page.status_code == 200
    assert "Views per day" in page.text and "Top pages" in page.text and "Sign-up conversion" in page.text
    assert re.search(r'id="signup-conversion">\d+ of \d+ visitors', page.text)
    assert "<svg" in page.text and 'href="/admin/analytics"' in page.text
    assert all_views(platform) == before  # an admin's pages are never counted
    assert client(live_server).get("/admin/analytics").status_code in (302, 303)


def test_the_cookie_policy_version_setting_is_checked():
    assert Settings.from_env({"SMSGW_COOKIE_POLICY_VERSION": "2026-12-07"}).cookie_policy_version == "2026-12-07"
    assert Settings.from_env({}).cookie_policy_version == "1"
    for bad in ("has space", "a" * 41, "x:y", "ü"):
        with pytest.raises(ConfigError, match="SMSGW_COOKIE_POLICY_VERSION"):
            Settings.from_env({"SMSGW_COOKIE_POLICY_VERSION": bad})


def test_analytics_rows_are_kept_thirteen_months(platform):
    from addons.cookies import analytics

    admin_sql(platform, "INSERT INTO public.analytics_view (viewed_at, path, visitor) VALUES "
                        "(now() - interval '396 days', '/', 'OLDOLDOLDOLDOLD1'), (now() - interval '394 days', '/', 'OLDOLDOLDOLDOLD2')")
    admin_sql(platform, "INSERT INTO public.analytics_signup (signed_up_at, visitor) VALUES "
                        "(now() - interval '396 days', 'OLDOLDOLDOLDOLD1')")
    assert analytics.purge() >= 2
    left = admin_sql(platform, "SELECT visitor FROM public.analytics_view WHERE visitor LIKE 'OLDOLD%%'", fetch=True)
    assert left == [("OLDOLDOLDOLDOLD2",)]
    assert admin_sql(platform, "SELECT count(*) FROM public.analytics_signup WHERE visitor LIKE 'OLDOLD%%'",
                     fetch=True) == [(0,)]
    assert "cookies.purge_analytics" in platform.setup_tasks().periodic_tasks


def test_erasing_a_member_walks_their_recorded_choices(live_server, platform, make_tenant):
    """The consent table is declared (subject, tenant): the privacy addon's erasure walk finds it."""
    from addons.privacy.erasure_walk import forget_member_shared, new_salt
    from core.db import tenant_transaction

    t = make_tenant("ckerase")
    member = sign_in(live_server, t.slug, owner_email(t))
    choose(member, "essential")
    consent_id = member.cookies.get("smsgw_consent").split(":")[2]
    assert consent_rows(platform, consent_id)[0][3:] == (t.id, "user:1")
    with tenant_transaction(t.ref):
        touched = forget_member_shared(platform, t, 1, owner_email(t), new_salt())
    assert touched["cookie_consent"] == 1  # found and scrubbed like every public table naming the member
    (row,) = consent_rows(platform, consent_id)
    assert row[:3] == ("1", "essential", "banner")  # the proof stays; it never held an address


def test_a_forged_analytics_cookie_is_replaced_not_recorded(live_server, platform):
    c = client(live_server)
    choose(c, "analytics")
    consent_value = c.cookies.get("smsgw_consent")
    bogus = "x" * 500
    r = c.get("/", headers={"Cookie": f"smsgw_consent={consent_value}; smsgw_analytics={bogus}"})
    assert r.status_code == 200
    fresh = re.search(r"smsgw_analytics=([A-Za-z0-9_-]{16});", r.headers["Set-Cookie"])
    assert fresh and views(platform, fresh.group(1)) == [("/", "", "")]
    assert views(platform, bogus) == [] and views(platform, bogus[:16]) == []
