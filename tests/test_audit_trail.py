"""The audit trail: append-only for the serving role, purged only past 90 days, and complete."""

from __future__ import annotations

import secrets

import psycopg2
import psycopg2.errors
import pytest

from addons.audit import trail
from core.admins import create_admin
from tests.support.identity import (OWNER_PASSWORD, add_user, admin_sign_in, admin_sql, audit_rows, client,
                                    fetch_xsrf, fresh_ip, owner_email, post_form, sign_in, smsgw)


def app_conn(platform):
    return psycopg2.connect(platform.app_url)


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("aud")


@pytest.fixture
def marker(platform):
    """A unique action prefix for rows this test writes as fixture data; removed afterwards (as admin)."""
    value = f"test.{secrets.token_hex(4)}"
    yield value
    admin_sql(platform, "DELETE FROM public.audit_event WHERE action LIKE %s", (value + "%",))


def count_rows(platform) -> int:
    return admin_sql(platform, "SELECT count(*) FROM public.audit_event", fetch=True)[0][0]


# -- append-only ------------------------------------------------------------------------

@pytest.mark.parametrize("statement", [
    "UPDATE public.audit_event SET reason = 'rewritten'",
    "UPDATE public.audit_event SET at = now() - interval '1 year' WHERE false",
    "DELETE FROM public.audit_event",
    "DELETE FROM public.audit_event WHERE id = -1",
    "TRUNCATE public.audit_event",
])
def test_serving_role_cannot_change_or_remove_audit_rows(platform, marker, statement):
    admin_sql(platform, "INSERT INTO public.audit_event (action, reason) VALUES (%s, 'original')", (marker,))
    before = count_rows(platform)
    conn = app_conn(platform)
    try:
        with conn.cursor() as cur:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(statement)
        conn.rollback()
    finally:
        conn.close()
    assert count_rows(platform) >= before
    rows = admin_sql(platform, "SELECT reason FROM public.audit_event WHERE action = %s", (marker,), fetch=True)
    assert rows == [("original",)]


def test_serving_role_may_insert_and_read(platform, marker):
    conn = app_conn(platform)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("INSERT INTO public.audit_event (action, actor) VALUES (%s, 'system') RETURNING id",
                        (marker,))
            row_id = cur.fetchone()[0]
            cur.execute("SELECT action, actor FROM public.audit_event WHERE id = %s", (row_id,))
            assert cur.fetchone() == (marker, "system")
    finally:
        conn.close()


def test_serving_role_cannot_become_the_maintenance_role_or_alter_the_trail(platform):
    maintenance = platform.roles.maintenance
    purge_fn = f"public.{platform.roles.prefix}_purge_audit()"
    statements = [
        f'SET ROLE "{maintenance}"',
        f'SET SESSION AUTHORIZATION "{maintenance}"',
        "ALTER TABLE public.audit_event DISABLE TRIGGER ALL",
        "DROP TABLE public.audit_event",
        f"ALTER FUNCTION {purge_fn} OWNER TO {platform.roles.app}",
        f"CREATE OR REPLACE FUNCTION {purge_fn} RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint'",
    ]
    conn = app_conn(platform)
    try:
        for statement in statements:
            with conn.cursor() as cur:
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement)
            conn.rollback()
        with conn.cursor() as cur:
            cur.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", (maintenance,))
            assert cur.fetchone()[0] is False
        # Granting itself more is at best a no-op (PostgreSQL only warns): UPDATE stays refused.
        with conn.cursor() as cur:
            try:
                cur.execute(f"GRANT UPDATE, DELETE ON public.audit_event TO {platform.roles.app}")
            except psycopg2.errors.InsufficientPrivilege:
                conn.rollback()
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("UPDATE public.audit_event SET reason = 'rewritten'")
        conn.rollback()
    finally:
        conn.close()


def test_purge_removes_rows_older_than_90_days_and_keeps_the_rest(platform, marker):
    for age in ("400 days", "91 days", "89 days", "1 day", "0 days"):
        admin_sql(platform, "INSERT INTO public.audit_event (action, at) VALUES (%s, now() - %s::interval)",
                  (f"{marker}.{age.replace(' ', '')}", age))
    removed = trail.purge(platform.settings.role_prefix)  # as the serving role, through the definer function
    assert removed >= 2
    left = {r[0] for r in admin_sql(platform, "SELECT action FROM public.audit_event WHERE action LIKE %s",
                                     (marker + "%",), fetch=True)}
    assert left == {f"{marker}.89days", f"{marker}.1day", f"{marker}.0days"}
    # Calling it again removes nothing more of ours.
    trail.purge(platform.settings.role_prefix)
    assert len(admin_sql(platform, "SELECT 1 FROM public.audit_event WHERE action LIKE %s", (marker + "%",),
                         fetch=True)) == 3


# -- what is recorded --------------------------------------------------------------------

def actions(platform, tenant) -> list[str]:
    return [r["action"] for r in audit_rows(platform, tenant.id)]


def test_sign_in_success_and_failure_are_recorded(platform, live_server, tenant):
    ip = fresh_ip()
    c = client(live_server, tenant.slug, ip)
    fetch_xsrf(c)
    r = post_form(c, "/login", {"email": owner_email(tenant), "password": "not the password"},
                  headers={"User-Agent": "audit-test-agent"})
    assert r.status_code == 401
    sign_in(live_server, tenant.slug, owner_email(tenant), ip=ip)
    failures = audit_rows(platform, tenant.id, "login.failure")
    assert len(failures) == 1
    assert failures[0]["actor_name"] == owner_email(tenant) and failures[0]["ip"] == ip
    assert failures[0]["user_agent"] == "audit-test-agent"
    assert failures[0]["tenant_slug"] == tenant.slug
    assert "not the password" not in str(failures[0])
    successes = audit_rows(platform, tenant.id, "login.success")
    assert len(successes) == 1 and successes[0]["actor"] == "user:1" and successes[0]["ip"] == ip
    assert OWNER_PASSWORD not in str(successes[0])


def test_token_creation_and_revocation_are_recorded_from_dashboard_and_cli(platform, live_server, tenant,
                                                                             cli_env):
    browser = sign_in(live_server, tenant.slug, owner_email(tenant))
    r = post_form(browser, "/tokens", {"action": "create", "name": "Audited", "scope": ["messages:read"]})
    assert r.status_code == 303
    created = audit_rows(platform, tenant.id, "token.created")
    assert len(created) == 1
    assert created[0]["actor"] == "user:1" and created[0]["actor_name"] == owner_email(tenant)
    assert created[0]["details"]["name"] == "Audited" and created[0]["details"]["scopes"] == ["messages:read"]
    token_id = created[0]["target"].split(":")[1]
    r = post_form(browser, "/tokens", {"action": "revoke", "token_id": token_id, "confirmed": "1"})
    assert r.status_code == 302
    revoked = audit_rows(platform, tenant.id, "token.revoked")
    assert len(revoked) == 1 and revoked[0]["target"] == f"token:{token_id}" and revoked[0]["actor"] == "user:1"

    r = smsgw(cli_env, "token", "create", "--tenant", tenant.slug, "--name", "From CLI")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    created = audit_rows(platform, tenant.id, "token.created")
    assert len(created) == 2
    assert created[1]["actor"] == "system:cli" and created[1]["details"]["name"] == "From CLI"
    assert token not in str(created[1]) and token[-12:] not in str(created[1])


def test_password_change_and_role_change_are_recorded(platform, live_server, tenant):
    member = f"member@{tenant.slug}.example"
    member_id = add_user(platform, tenant, member, "member password 123")
    browser = sign_in(live_server, tenant.slug, owner_email(tenant))
    r = post_form(browser, "/team", {"action": "role", "user_id": str(member_id), "role": "customer"})
    assert r.status_code == 302
    changed = audit_rows(platform, tenant.id, "user.role_changed")
    assert len(changed) == 1
    assert changed[0]["target"] == f"user:{member_id}" and changed[0]["actor"] == "user:1"
    assert changed[0]["details"]["from"] == "user" and changed[0]["details"]["to"] == "customer"

    r = post_form(browser, "/team", {"action": "disable", "user_id": str(member_id), "confirmed": "1"})
    assert r.status_code == 302
    disabled = audit_rows(platform, tenant.id, "user.disabled")
    assert len(disabled) == 1 and disabled[0]["target"] == f"user:{member_id}"
    assert post_form(browser, "/team", {"action": "enable", "user_id": str(member_id)}).status_code == 302
    assert len(audit_rows(platform, tenant.id, "user.enabled")) == 1

    member_browser = sign_in(live_server, tenant.slug, member, "member password 123")
    r = post_form(member_browser, "/account", {"action": "password", "current_password": "member password 123",
                                               "new_password": "member password 456"})
    assert r.status_code == 302
    pw = audit_rows(platform, tenant.id, "password.changed")
    assert len(pw) == 1 and pw[0]["actor"] == f"user:{member_id}"
    assert "member password" not in str(pw[0])


def test_admin_access_is_recorded_with_its_reason(platform, live_server, tenant):
    email_address = f"auditor-{secrets.token_hex(3)}@platform.example"
    admin = create_admin(platform, email_address, "admin password 123", "Auditor")
    console = admin_sign_in(live_server, email_address, "admin password 123")
    reason = f"Ticket {secrets.token_hex(3)}: customer asked us to check their team"
    r = post_form(console, f"/admin/tenants/{tenant.slug}", {"action": "access", "reason": reason})
    assert r.status_code == 302
    r = console.get(f"/admin/tenants/{tenant.slug}/data/users")
    assert r.status_code == 200
    access = audit_rows(platform, tenant.id, "admin.access")
    assert len(access) == 1
    assert access[0]["reason"] == reason and access[0]["actor"] == f"admin:{admin.id}"
    assert access[0]["actor_name"] == email_address
    assert access[0]["target"] == f"/admin/tenants/{tenant.slug}/data/users"
    granted = audit_rows(platform, tenant.id, "admin.access_granted")
    assert len(granted) == 1 and granted[0]["reason"] == reason
    # The admin's own sign-in is recorded on the platform's trail.
    assert any(r["actor"] == f"admin:{admin.id}" for r in audit_rows(platform, None, "admin.login.success"))


def test_audit_page_shows_only_this_tenants_events(platform, live_server, make_tenant):
    a, b = make_tenant("auda"), make_tenant("audb")
    sign_in(live_server, b.slug, owner_email(b))  # a login.success in B only
    browser = sign_in(live_server, a.slug, owner_email(a))
    export = browser.get("/audit/export.json")
    assert export.status_code == 200
    events = export.json()["events"]
    assert events and all(e["tenant_slug"] == a.slug for e in events)
    assert owner_email(b) not in export.text and owner_email(b) not in browser.get("/audit").text
