"""The platform admin console: CLI-created admins, reasoned access grants, suspend/resume, separation."""

from __future__ import annotations

import secrets
import time

import pytest

from core import tokenformat
from core.admins import create_admin
from core.db import tenant_transaction
from core.identity import create_api_token
from core.throttle import ThrottlePolicy
from tests.support.identity import (admin_sign_in, admin_sql, api_sign_in, audit_rows, bearer, client,
                                    fetch_xsrf, fresh_ip, owner_email, post_form, sign_in, smsgw)

ADMIN_PASSWORD = "admin password 123"


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("adm")


@pytest.fixture
def admin(platform):
    email_address = f"ops-{secrets.token_hex(4)}@platform.example"
    return create_admin(platform, email_address, ADMIN_PASSWORD, "Ops")


@pytest.fixture
def console(live_server, admin):
    return admin_sign_in(live_server, admin.email, ADMIN_PASSWORD)


def grants(platform, admin_id, tenant_id) -> int:
    return admin_sql(platform, "SELECT count(*) FROM public.admin_access_grant WHERE admin_id = %s AND tenant_id = %s",
                     (admin_id, tenant_id), fetch=True)[0][0]


def test_cli_created_admin_signs_in_on_the_base_domain(platform, live_server, tenant, cli_env):
    email_address = f"cli-admin-{secrets.token_hex(3)}@platform.example"
    r = smsgw(cli_env, "admin", "create", "--email", email_address, "--password", ADMIN_PASSWORD, "--name", "CLI")
    assert r.returncode == 0, r.stderr
    assert f"Created platform admin {email_address}" in r.stdout
    r = smsgw(cli_env, "admin", "create", "--email", email_address, "--password", ADMIN_PASSWORD)
    assert r.returncode == 2 and "already exists" in r.stderr
    r = smsgw(cli_env, "admin", "create", "--email", "short@platform.example", "--password", "short")
    assert r.returncode == 2 and "at least 10" in r.stderr

    c = client(live_server, None)
    fetch_xsrf(c, "/admin/login")
    r = post_form(c, "/admin/login", {"email": email_address, "password": "wrong password!"})
    assert r.status_code == 401 and not c.cookies.get("smsgw_admin")
    r = post_form(c, "/admin/login", {"email": email_address, "password": ADMIN_PASSWORD})
    assert r.status_code == 302 and r.headers["Location"] == "/admin"
    r = c.get("/admin")
    assert r.status_code == 200 and f'href="/admin/tenants/{tenant.slug}"' in r.text and "<table" in r.text
    # The console lives on the base domain only.
    t = client(live_server, tenant.slug)
    assert t.get("/admin/login").status_code == 404
    assert t.get("/admin").status_code == 404


def test_unauthenticated_console_redirects_to_admin_login(live_server, tenant):
    c = client(live_server, None)
    for path in ("/admin", f"/admin/tenants/{tenant.slug}", f"/admin/tenants/{tenant.slug}/data/users"):
        r = c.get(path)
        assert r.status_code == 302 and r.headers["Location"].startswith("/admin/login"), path


@pytest.mark.parametrize("reason", ["", "   ", "too short", "   too short     "])
def test_access_without_a_real_reason_is_refused_and_grants_nothing(platform, live_server, tenant, admin, console,
                                                                    reason):
    r = post_form(console, f"/admin/tenants/{tenant.slug}", {"action": "access", "reason": reason})
    assert r.status_code == 422, r.text[:300]
    assert "at least 10 characters" in r.text
    assert grants(platform, admin.id, tenant.id) == 0
    r = console.get(f"/admin/tenants/{tenant.slug}/data/users")
    assert r.status_code == 302 and r.headers["Location"] == f"/admin/tenants/{tenant.slug}"
    assert owner_email(tenant) not in r.text
    assert audit_rows(platform, tenant.id, "admin.access") == []
    assert audit_rows(platform, tenant.id, "admin.access_granted") == []


def test_access_with_a_reason_shows_data_and_records_it(platform, live_server, tenant, admin, console):
    with tenant_transaction(tenant.ref):
        _row, token = create_api_token(tenant.slug, "Integration", ["messages:read"], None)
    reason = "Support ticket 1234: the owner cannot invite a colleague"
    r = post_form(console, f"/admin/tenants/{tenant.slug}", {"action": "access", "reason": reason})
    assert r.status_code == 302 and r.headers["Location"] == f"/admin/tenants/{tenant.slug}/data/users"
    assert grants(platform, admin.id, tenant.id) == 1

    r = console.get(f"/admin/tenants/{tenant.slug}/data/users")
    assert r.status_code == 200
    assert owner_email(tenant) in r.text and reason in r.text
    rows = audit_rows(platform, tenant.id, "admin.access")
    assert len(rows) == 1
    assert rows[0]["reason"] == reason and rows[0]["actor"] == f"admin:{admin.id}"
    assert rows[0]["target"] == f"/admin/tenants/{tenant.slug}/data/users"

    # Every page viewed is recorded; the tokens section shows hints, never a token.
    r = console.get(f"/admin/tenants/{tenant.slug}/data/tokens")
    assert r.status_code == 200
    assert token not in r.text and token.split("_", 2)[2][:20] not in r.text
    assert tokenformat.hint(token)[-4:] in r.text
    assert len(audit_rows(platform, tenant.id, "admin.access")) == 2

    # A grant is personal: another admin sees nothing without writing a reason of their own.
    other = create_admin(platform, f"other-{secrets.token_hex(3)}@platform.example", ADMIN_PASSWORD)
    other_console = admin_sign_in(live_server, other.email, ADMIN_PASSWORD)
    r = other_console.get(f"/admin/tenants/{tenant.slug}/data/users")
    assert r.status_code == 302 and owner_email(tenant) not in r.text

    # An expired grant opens nothing.
    admin_sql(platform, "UPDATE public.admin_access_grant SET expires_at = now() - interval '1 second' "
                        "WHERE admin_id = %s", (admin.id,))
    r = console.get(f"/admin/tenants/{tenant.slug}/data/users")
    assert r.status_code == 302 and owner_email(tenant) not in r.text


def test_customer_sees_the_admin_access_on_the_audit_page_and_export(platform, live_server, tenant, console):
    reason = f"Investigating delivery report {secrets.token_hex(3)}"
    post_form(console, f"/admin/tenants/{tenant.slug}", {"action": "access", "reason": reason})
    assert console.get(f"/admin/tenants/{tenant.slug}/data/users").status_code == 200

    owner = sign_in(live_server, tenant.slug, owner_email(tenant))
    page = owner.get("/audit")
    assert page.status_code == 200
    assert reason in page.text and "admin.access" in page.text
    staff_only = owner.get("/audit?admin=1")
    assert reason in staff_only.text and "login.success" not in staff_only.text
    export = owner.get("/audit/export.json")
    assert export.status_code == 200 and export.headers["Content-Type"].startswith("application/json")
    events = export.json()["events"]
    access = [e for e in events if e["action"] == "admin.access"]
    assert len(access) == 1 and access[0]["reason"] == reason
    assert access[0]["actor"].startswith("admin:")


def test_suspend_and_resume_from_the_console(platform, live_server, tenant, console):
    # First a question that names the workspace; nothing is suspended until it is answered.
    r = post_form(console, f"/admin/tenants/{tenant.slug}", {"action": "suspend"})
    assert r.status_code == 200 and f"Suspend the workspace {tenant.slug} ({tenant.name})?" in r.text
    assert 'name="confirmed" value="1"' in r.text and 'name="action" value="suspend"' in r.text
    assert platform.tenants.get(tenant.slug).status == "active"
    assert audit_rows(platform, tenant.id, "admin.tenant_suspended") == []
    r = post_form(console, f"/admin/tenants/{tenant.slug}", {"action": "suspend", "confirmed": "1"})
    assert r.status_code == 302
    assert platform.tenants.get(tenant.slug).status == "suspended"
    assert client(live_server, tenant.slug).get("/login").status_code == 403
    assert len(audit_rows(platform, tenant.id, "admin.tenant_suspended")) == 1
    r = post_form(console, f"/admin/tenants/{tenant.slug}", {"action": "resume"})
    assert r.status_code == 302
    assert platform.tenants.get(tenant.slug).status == "active"
    assert client(live_server, tenant.slug).get("/login").status_code == 200
    assert len(audit_rows(platform, tenant.id, "admin.tenant_resumed")) == 1
    # Without the form's XSRF token nothing happens.
    r = console.post(f"/admin/tenants/{tenant.slug}", data={"action": "suspend", "confirmed": "1"})
    assert r.status_code == 403
    assert platform.tenants.get(tenant.slug).status == "active"


def test_a_tenant_session_gets_nothing_from_the_console(platform, live_server, tenant):
    owner = sign_in(live_server, tenant.slug, owner_email(tenant))
    session = owner.cookies.get("smsgw_session")
    jwt_token = api_sign_in(live_server, tenant.slug, owner_email(tenant))["access_token"]
    with tenant_transaction(tenant.ref):
        _row, api_token = create_api_token(tenant.slug, "probe", ["settings:write"], None)

    c = client(live_server, None)
    fetch_xsrf(c, "/admin/login")
    c.cookies.set("smsgw_session", session)
    c.cookies.set("smsgw_admin", session)  # the same value under the admin cookie's name
    for path in ("/admin", f"/admin/tenants/{tenant.slug}", f"/admin/tenants/{tenant.slug}/data/users"):
        r = c.get(path)
        assert r.status_code == 302 and r.headers["Location"].startswith("/admin/login"), path
    r = post_form(c, f"/admin/tenants/{tenant.slug}", {"action": "suspend", "confirmed": "1"})
    assert r.status_code in (401, 403)
    for credential in (jwt_token, api_token):
        plain = client(live_server, None)
        for path in ("/admin", f"/admin/tenants/{tenant.slug}/data/users"):
            r = plain.get(path, headers=bearer(credential))
            assert r.status_code in (401, 403), (path, r.status_code)
            assert 'href="/admin/tenants/' not in r.text and "<table" not in r.text  # no console content
    assert platform.tenants.get(tenant.slug).status == "active"
    assert admin_sql(platform, "SELECT count(*) FROM public.admin_access_grant WHERE tenant_id = %s",
                     (tenant.id,), fetch=True)[0][0] == 0
    assert audit_rows(platform, tenant.id, "admin.access") == []


def test_an_admin_session_gets_nothing_on_a_tenant_subdomain(live_server, tenant, console):
    admin_cookie = console.cookies.get("smsgw_admin")
    c = client(live_server, tenant.slug)
    c.cookies.set("smsgw_admin", admin_cookie)
    c.cookies.set("smsgw_session", admin_cookie)
    for path in ("/", "/team", "/tokens", "/audit", "/account"):
        r = c.get(path)
        assert r.status_code == 302 and r.headers["Location"].startswith("/login"), path
    assert c.get("/audit/export.json").status_code == 302
    r = c.get("/api/v1/me")
    assert r.status_code == 401


def test_admin_logout_ends_the_session(live_server, console):
    cookie = console.cookies.get("smsgw_admin")
    r = post_form(console, "/admin/logout", {})
    assert r.status_code == 302
    c = client(live_server, None)
    c.cookies.set("smsgw_admin", cookie)
    r = c.get("/admin")
    assert r.status_code == 302 and r.headers["Location"].startswith("/admin/login")


# -- admin sign-in throttling ------------------------------------------------------------------

def admin_attempt(c, email_address, password):
    if not c.cookies.get("_xsrf"):
        fetch_xsrf(c, "/admin/login")
    return post_form(c, "/admin/login", {"email": email_address, "password": password})


def test_admin_sign_in_is_capped_per_account(platform, live_server, admin):
    original = platform.throttle.policy
    platform.throttle.policy = ThrottlePolicy(base_delay=0)
    try:
        attacker = client(live_server, None, fresh_ip())
        for i in range(100):
            assert admin_attempt(attacker, admin.email, f"guess {i}").status_code == 401
        assert admin_attempt(attacker, admin.email, "guess 100").status_code == 429
        assert admin_attempt(attacker, admin.email, ADMIN_PASSWORD).status_code == 429
        assert not attacker.cookies.get("smsgw_admin")
    finally:
        platform.throttle.policy = original


def test_an_attacker_cannot_lock_an_admin_out_of_their_own_browser(platform, live_server, admin):
    """The throttle's promise (core/throttle.py): strangers exhaust the budget for strangers, not for the
    real person on a browser that signed in to that account before."""
    original = platform.throttle.policy
    platform.throttle.policy = ThrottlePolicy(base_delay=0)
    try:
        own_browser = admin_sign_in(live_server, admin.email, ADMIN_PASSWORD, ip=fresh_ip())
        assert post_form(own_browser, "/admin/logout", {}).status_code == 302
        attacker = client(live_server, None, fresh_ip())
        for i in range(100):
            admin_attempt(attacker, admin.email, f"guess {i}")
        assert admin_attempt(attacker, admin.email, ADMIN_PASSWORD).status_code == 429
        r = admin_attempt(own_browser, admin.email, ADMIN_PASSWORD)
        assert r.status_code == 302, r.status_code
    finally:
        platform.throttle.policy = original


def test_admin_sign_in_slows_down_after_repeated_failures(platform, live_server, admin):
    assert platform.throttle.policy == ThrottlePolicy()
    c = client(live_server, None, fresh_ip())
    fetch_xsrf(c, "/admin/login")
    durations = []
    for i in range(5):
        t0 = time.perf_counter()
        assert admin_attempt(c, admin.email, f"typo {i}").status_code == 401
        durations.append(time.perf_counter() - t0)
    assert durations[4] >= 0.5 and durations[4] - min(durations[:3]) >= 0.4, durations
