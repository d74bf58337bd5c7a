"""Erasure (issue 15, item 3) and the Customer's "freeze sending" switch (item 5), end to end.

Everything goes through the live server over HTTP (pages with their XSRF tokens, the API, the
device protocol); the outcome is read from the database itself: the catalogue, every table of
every schema, pg_namespace and pg_roles, with the administrative connection.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets

import psycopg2
import pytest
from babel.dates import format_date

from addons.billing import subscriptions
from addons.privacy import erasure
from core.admins import create_admin
from core.clock import utcnow
from core.config import ConfigError, Settings
from core.db import tenant_transaction
from core.identity import create_api_token
from core.tenancy import TenantError
from core.users import User
from core.web.auth_pages import RESET_MAIL_TASK
from tests.support.devices import device_client, fetch, raw_device, register
from tests.support.identity import (OWNER_PASSWORD, add_user, admin_sign_in, admin_sql, api_sign_in, audit_rows,
                                    bearer, client, fetch_xsrf, fresh_ip, owner_email, post_form, sign_in)
from tests.support.phones import api_client, api_token

ADMIN_PASSWORD = "admin password 123"
USER_PASSWORD = "the member's own password"


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("era", name="Erase Me GmbH")


def current(platform, tenant):
    return platform.tenants.get(tenant.slug)


def privacy_post(c, section: str, **data):
    fetch_xsrf(c, "/account/privacy")
    return post_form(c, "/account/privacy", {"section": section, **data})


def delete_workspace(c, tenant, password=OWNER_PASSWORD, name=None):
    return privacy_post(c, "delete-workspace", action="delete-workspace", password=password,
                        confirm_name=tenant.name if name is None else name)


def owner(live_server, tenant):
    return sign_in(live_server, tenant.slug, owner_email(tenant), ip=fresh_ip())


def send(api, to="+12025550123", text="hello"):
    return api.post("/api/v1/messages", json={"text": text, "to": [to]})


def signed_out(c) -> bool:
    r = c.get("/account/privacy")
    return r.status_code == 302 and "/login" in r.headers["Location"]


# -- scheduling: revocation at once, sending stops, the notice --------------------------------

def test_deleting_the_organisation_revokes_every_credential_at_once_and_stops_sending(platform, live_server, tenant):
    api = api_client(live_server, tenant.slug)
    assert send(api).status_code == 202
    device_id, device_token = raw_device(live_server, tenant.slug, api)
    dev = device_client(live_server, tenant.slug, device_token)
    grant = api_sign_in(live_server, tenant.slug, owner_email(tenant), ip=fresh_ip())
    add_user(platform, tenant, f"member@{tenant.slug}.example", USER_PASSWORD)
    member = sign_in(live_server, tenant.slug, f"member@{tenant.slug}.example", USER_PASSWORD, ip=fresh_ip())
    # every credential works before (and is cached by the server: the revocation must reach the caches)
    assert api.get("/api/v1/messages").status_code == 200
    access = client(live_server, tenant.slug)
    assert access.get("/api/v1/me", headers=bearer(grant["access_token"])).status_code == 200
    assert fetch(dev).status_code == 200
    queued = send(api, text="queued before the deletion").json()["id"]

    c = owner(live_server, tenant)
    r = delete_workspace(c, tenant)
    assert r.status_code == 303, r.text[:500]

    scheduled = current(platform, tenant).deletion_scheduled_at
    assert scheduled is not None
    assert abs(scheduled - (utcnow() + dt.timedelta(days=14))) < dt.timedelta(minutes=5)
    assert api.get("/api/v1/messages").status_code == 401
    assert access.get("/api/v1/me", headers=bearer(grant["access_token"])).status_code == 401
    assert access.post("/api/v1/auth/refresh", json={"refresh_token": grant["refresh_token"]}).status_code == 401
    assert fetch(dev).status_code == 401
    assert signed_out(c) and signed_out(member)

    # anyone who signs in sees the date; only the Customer may cancel
    page = owner(live_server, tenant).get("/account/privacy").text
    assert f"scheduled for deletion on {format_date(scheduled, 'medium', locale='en')}" in page and 'id="cancel-deletion"' in page
    member = sign_in(live_server, tenant.slug, f"member@{tenant.slug}.example", USER_PASSWORD, ip=fresh_ip())
    page = member.get("/").text
    assert f"scheduled for deletion on {format_date(scheduled, 'medium', locale='en')}" in page and "cancel-deletion" not in page

    # sending stops: a new credential cannot send, and nothing queued reaches a phone
    fresh = api_client(live_server, tenant.slug)
    r = send(fresh)
    assert r.status_code == 409 and r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json()["code"] == "sending-paused" and "scheduled for deletion" in r.json()["detail"]
    _, token = raw_device(live_server, tenant.slug, fresh)
    assert fetch(device_client(live_server, tenant.slug, token)).json()["messages"] == []
    with tenant_transaction(tenant.ref) as db:
        assert db.execute_sql("SELECT state FROM recipients WHERE message_id = %s", (queued,)).fetchone()[0] == "pending"

    [event] = audit_rows(platform, tenant.id, "tenant.deletion_scheduled")
    assert event["actor"] == "user:1"
    [request] = admin_sql(platform, "SELECT kind, subject, state FROM public.privacy_request WHERE tenant_id = %s",
                          (tenant.id,), fetch=True)
    assert request == ("erasure", "tenant", "in_progress")


@pytest.mark.parametrize("case", ["wrong password", "wrong name", "another workspace's name", "no xsrf",
                                  "a member", "already scheduled"])
def test_hostile_or_mistaken_deletions_change_nothing(platform, live_server, tenant, make_tenant, case):
    api = api_client(live_server, tenant.slug)
    c = owner(live_server, tenant)
    if case == "wrong password":
        r = delete_workspace(c, tenant, password="not my password")
    elif case == "wrong name":
        r = delete_workspace(c, tenant, name="Erase Me")
    elif case == "another workspace's name":
        other = make_tenant("era", name="Someone Else Ltd")
        r = delete_workspace(c, tenant, name=other.name)
        assert current(platform, other).deletion_scheduled_at is None
    elif case == "no xsrf":
        fetch_xsrf(c, "/account/privacy")
        r = c.post("/account/privacy", data={"section": "delete-workspace", "action": "delete-workspace",
                                             "password": OWNER_PASSWORD, "confirm_name": tenant.name})
    elif case == "a member":
        add_user(platform, tenant, f"member@{tenant.slug}.example", USER_PASSWORD)
        c = sign_in(live_server, tenant.slug, f"member@{tenant.slug}.example", USER_PASSWORD, ip=fresh_ip())
        r = delete_workspace(c, tenant, password=USER_PASSWORD)
    else:
        platform.tenants.schedule_deletion(tenant.slug, utcnow() + dt.timedelta(days=3))
        before = current(platform, tenant).deletion_scheduled_at
        r = delete_workspace(c, tenant)
        assert r.status_code == 422
        assert current(platform, tenant).deletion_scheduled_at == before
        assert not audit_rows(platform, tenant.id, "tenant.deletion_scheduled")
        return
    assert r.status_code in (400, 403, 422), r.status_code
    assert current(platform, tenant).deletion_scheduled_at is None
    assert api.get("/api/v1/messages").status_code == 200  # nothing was revoked
    assert send(api).status_code == 202
    assert not signed_out(c)
    assert not audit_rows(platform, tenant.id, "tenant.deletion_scheduled")


def test_the_grace_period_comes_from_the_environment_and_never_exceeds_30_days(test_env):
    assert Settings.from_env(dict(test_env)).deletion_grace_days == 14
    assert Settings.from_env({**test_env, "SMSGW_DELETION_GRACE_DAYS": "30"}).deletion_grace_days == 30
    with pytest.raises(ConfigError, match="at most 30"):
        Settings.from_env({**test_env, "SMSGW_DELETION_GRACE_DAYS": "31"})


# -- cancelling ----------------------------------------------------------------------------------

def test_a_cancelled_deletion_restores_the_workspace_but_not_the_revoked_credentials(platform, live_server, tenant):
    api = api_client(live_server, tenant.slug)
    queued = send(api, text="waits through the grace period").json()["id"]
    c = owner(live_server, tenant)
    assert delete_workspace(c, tenant).status_code == 303
    c = owner(live_server, tenant)
    r = privacy_post(c, "delete-workspace", action="cancel-deletion")
    assert r.status_code == 303, r.text[:300]

    assert current(platform, tenant).deletion_scheduled_at is None
    assert current(platform, tenant).sending_paused == ""
    assert "scheduled for deletion" not in c.get("/account/privacy").text
    assert not signed_out(owner(live_server, tenant))
    assert api.get("/api/v1/messages").status_code == 401  # revoked stays revoked (documented)
    fresh = api_client(live_server, tenant.slug)
    assert send(fresh).status_code == 202  # sending resumes
    _, token = raw_device(live_server, tenant.slug, fresh)
    handed = fetch(device_client(live_server, tenant.slug, token)).json()["messages"]
    assert queued in {m["message_id"] for m in handed}  # what waited goes out
    assert audit_rows(platform, tenant.id, "tenant.deletion_cancelled")
    [state] = admin_sql(platform, "SELECT state FROM public.privacy_request WHERE tenant_id = %s AND kind = 'erasure'",
                        (tenant.id,), fetch=True)
    assert state == ("cancelled",)


# -- the run ------------------------------------------------------------------------------------

TEXT_TYPES = ("text", "character varying", "jsonb", "json", "ARRAY", "USER-DEFINED", "inet")


def traces(platform, needles: list[str], tenant_id: int) -> dict[str, int]:
    """``{schema.table: rows}`` of every table of every schema that mentions one of ``needles`` in a
    text, JSON, array or bytes column, or ``tenant_id`` in a column named like a tenant id."""
    conn = psycopg2.connect(platform.admin_url)
    found = {}
    try:
        with conn, conn.cursor() as cur:
            cur.execute("""
                SELECT c.table_schema, c.table_name, c.column_name, c.data_type
                  FROM information_schema.columns c
                  JOIN information_schema.tables t USING (table_schema, table_name)
                 WHERE t.table_type = 'BASE TABLE' AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
            """)
            columns = cur.fetchall()
            for schema, table, column, kind in columns:
                q = f'"{schema}"."{table}"'
                if kind == "bytea":
                    cond = " OR ".join(["position(convert_to(%s, 'UTF8') in \"" + column + "\") > 0"] * len(needles))
                    params = needles
                elif kind in TEXT_TYPES:
                    cond = " OR ".join(["\"" + column + "\"::text ILIKE %s"] * len(needles))
                    params = [f"%{n}%" for n in needles]
                elif column in ("tenant_id", "tenant") and kind in ("bigint", "integer"):
                    cond, params = f'"{column}" = %s', [tenant_id]
                else:
                    continue
                cur.execute(f"SELECT count(*) FROM {q} WHERE {cond}", params)
                n = cur.fetchone()[0]
                if n:
                    found[f"{schema}.{table}"] = found.get(f"{schema}.{table}", 0) + n
    finally:
        conn.close()
    return found


def test_on_the_date_nothing_of_the_workspace_remains_but_the_pseudonymised_audit_trail_and_the_tombstone(
        platform, live_server, tenant):
    slug, owner_addr, member_addr = tenant.slug, owner_email(tenant), f"member@{tenant.slug}.example"
    api = api_client(live_server, slug)
    send(api, to="+12025550177", text="a body that must go")
    raw_device(live_server, slug, api)
    add_user(platform, tenant, member_addr, USER_PASSWORD)
    member_ip, owner_ip = fresh_ip(), fresh_ip()
    sign_in(live_server, slug, member_addr, USER_PASSWORD, ip=member_ip)
    bad = client(live_server, slug, fresh_ip())
    fetch_xsrf(bad)
    post_form(bad, "/login", {"email": member_addr, "password": "wrong password"})  # a login throttle row
    c = sign_in(live_server, slug, owner_addr, ip=owner_ip)
    assert privacy_post(c, "company-details", name=tenant.name, contact_name="Carla Contact",
                        contact_email=f"billing@{slug}.example", contact_phone="+49 30 1234567",
                        billing_address="Street 1\n10115 Berlin", vat_id="DE123").status_code == 303
    subscriptions.create_for(tenant, "free")  # a billing record (the tests' platform subscribes nobody itself)
    platform.setup_tasks()
    platform.queue.tasks[RESET_MAIL_TASK](slug, owner_addr)  # a task of the workspace waiting in the queue
    assert traces(platform, [slug], tenant.id).get(f"{platform.settings.role_prefix}_queue.task")
    assert delete_workspace(c, tenant).status_code == 303

    assert erasure.run_due(platform, utcnow() + dt.timedelta(days=13)) == []  # not before its date
    assert platform.tenants.get(slug).deletion_scheduled_at is not None
    assert erasure.run_due(platform, utcnow() + dt.timedelta(days=14, minutes=5)) == [slug]

    role, schema = tenant.role_name, tenant.schema_name
    assert admin_sql(platform, "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,), fetch=True) == [(0,)]
    assert admin_sql(platform, "SELECT count(*) FROM pg_roles WHERE rolname = %s", (role,), fetch=True) == [(0,)]
    left = traces(platform, [slug, schema, role, owner_addr, member_addr, "Carla Contact"], tenant.id)
    # The billing record stays (tax law keeps what invoices rest on), cancelled, naming no one: the
    # workspace's id, its plan and dates (addons/billing/subscriptions.py declares it erase="keep").
    assert set(left) <= {"public.audit_event", "public.reserved_slug", "public.privacy_request",
                         "public.billing_subscriptions"}, left
    assert admin_sql(platform, "SELECT status FROM public.billing_subscriptions WHERE tenant_id = %s",
                     (tenant.id,), fetch=True) == [("cancelled",)]
    assert admin_sql(platform, "SELECT count(*) FROM public.reserved_slug WHERE slug = %s AND reserved_until > "
                               "now() + interval '89 days'", (slug,), fetch=True) == [(1,)]

    # the audit trail stays, with no address, IP or name of anyone in it
    rows = audit_rows(platform, tenant.id)
    assert {"login.success", "tenant.deletion_scheduled", "tenant.erased"} <= {r["action"] for r in rows}
    text = repr(rows).lower()
    # "member@": the member's address in any form (the bare word is also a table's name in the
    # erasure record's row counts, e.g. member_directory, which names no one)
    for secret in (owner_addr, member_addr, member_ip, owner_ip, "carla", "+12025550177", "member@"):
        assert secret.lower() not in text, secret
    assert all(r["ip"] == "" or re.fullmatch(r"ip-[0-9a-f]{12}", r["ip"]) for r in rows)
    assert all(r["user_agent"] == "" for r in rows if r["action"] != "tenant.erased")
    [done] = admin_sql(platform, "SELECT state FROM public.privacy_request WHERE tenant_id = %s AND kind = 'erasure'",
                       (tenant.id,), fetch=True)
    assert done == ("done",)

    # the address answers "no such workspace", and sign-up refuses it for 90 days
    assert client(live_server, slug).get("/login").status_code == 404
    with pytest.raises(TenantError, match="deleted recently"):
        platform.tenants.create(slug, "Squatter", f"x@{slug}.example", OWNER_PASSWORD)


def test_the_platform_admin_sees_pending_deletions_and_erases_one_early_with_a_reason(platform, live_server, tenant):
    admin = create_admin(platform, f"ops-{secrets.token_hex(4)}@platform.example", ADMIN_PASSWORD, "Ops")
    console = admin_sign_in(live_server, admin.email, ADMIN_PASSWORD)
    assert delete_workspace(owner(live_server, tenant), tenant).status_code == 303
    page = console.get("/admin/privacy/deletions")
    assert page.status_code == 200 and f'data-slug="{tenant.slug}"' in page.text
    assert "Its owner deleted it: erased on" in console.get(f"/admin/tenants/{tenant.slug}").text
    r = post_form(console, "/admin/privacy/deletions", {"slug": tenant.slug, "reason": "short"})
    assert r.status_code == 422
    assert platform.tenants.get(tenant.slug).deletion_scheduled_at is not None
    # a workspace's owner is not an admin
    c = owner(live_server, tenant)
    assert client(live_server).get("/admin/privacy/deletions").status_code == 302
    assert c.get("/admin/privacy/deletions").status_code == 404

    reason = "The customer asked support by phone to erase it today."
    r = post_form(console, "/admin/privacy/deletions", {"slug": tenant.slug, "reason": reason})
    assert r.status_code == 303, r.text[:300]
    with pytest.raises(TenantError):
        platform.tenants.get(tenant.slug)
    [event] = audit_rows(platform, tenant.id, "tenant.erased")
    assert event["actor"] == f"admin:{admin.id}" and event["reason"] == reason
    [outcome] = admin_sql(platform, "SELECT outcome FROM public.privacy_request WHERE tenant_id = %s AND kind = 'erasure'",
                          (tenant.id,), fetch=True)
    assert reason in outcome[0]
    assert f'data-slug="{tenant.slug}"' not in console.get("/admin/privacy/deletions").text


# -- a member deletes their own account ------------------------------------------------------------

def member_with_history(platform, live_server, tenant):
    addr = f"leaver-{secrets.token_hex(2)}@{tenant.slug}.example"
    uid = add_user(platform, tenant, addr, USER_PASSWORD)
    with tenant_transaction(tenant.ref):
        User.update(role="user").where(User.id == uid).execute()
        _, token = create_api_token(tenant.slug, "leaver's integration", ["messages:send", "messages:read"], uid)
    c = sign_in(live_server, tenant.slug, addr, USER_PASSWORD, ip=fresh_ip())
    api = client(live_server, tenant.slug)
    api.headers.update(bearer(token))
    fetch_xsrf(c, "/send")
    r = post_form(c, "/send", {"to": "+12025550123", "text": "sent by the leaver"})
    assert r.status_code == 302, r.text[:300]
    message_id = int(r.headers["Location"].rsplit("/", 1)[1])
    return uid, addr, c, api, message_id


def test_a_member_deletes_their_account_and_their_personal_data_but_not_the_workspace_messages(
        platform, live_server, tenant):
    uid, addr, c, api, message_id = member_with_history(platform, live_server, tenant)
    boss = owner(live_server, tenant)
    r = privacy_post(c, "delete-account", password="not my password")
    assert r.status_code == 422
    with tenant_transaction(tenant.ref):
        assert User.get_or_none(User.id == uid) is not None
    assert api.get("/api/v1/messages").status_code == 200

    r = privacy_post(c, "delete-account", password=USER_PASSWORD)
    assert r.status_code == 303, r.text[:300]
    assert signed_out(c)
    assert api.get("/api/v1/messages").status_code == 401  # the token they created (they know its secret)
    with tenant_transaction(tenant.ref) as db:
        assert User.get_or_none(User.id == uid) is None
        assert db.execute_sql("SELECT count(*) FROM sessions WHERE user_id = %s", (uid,)).fetchone()[0] == 0
        assert db.execute_sql("SELECT count(*) FROM refresh_tokens WHERE user_id = %s", (uid,)).fetchone()[0] == 0
        text, created_by = db.execute_sql("SELECT text, created_by FROM messages WHERE id = %s", (message_id,)).fetchone()
        assert db.execute_sql("SELECT created_by FROM api_tokens").fetchall() == [(None,)]
    assert text == "sent by the leaver" and created_by.startswith("erased-user-")
    rows = audit_rows(platform, tenant.id)
    assert addr.lower() not in repr(rows).lower()
    assert [r["actor"] for r in rows if r["action"] == "user.erased"] == [f"user:{uid}"]
    assert admin_sql(platform, "SELECT state FROM public.privacy_request WHERE tenant_id = %s AND subject = %s",
                     (tenant.id, f"user:{uid}"), fetch=True) == [("done",)]
    assert not signed_out(boss)  # nobody else is touched
    r = client(live_server, tenant.slug, fresh_ip()).post("/api/v1/auth/token", json={"email": addr, "password": USER_PASSWORD})
    assert r.status_code == 401


def test_the_last_customer_cannot_delete_their_own_account(platform, live_server, tenant):
    c = owner(live_server, tenant)
    assert 'id="last-customer"' in c.get("/account/privacy").text
    r = privacy_post(c, "delete-account", password=OWNER_PASSWORD)
    assert r.status_code == 422 and "only owner" in r.text
    with tenant_transaction(tenant.ref):
        assert User.get_by_id(1).is_active
    assert not signed_out(c)
    # with a second Customer, the first may go
    add_user(platform, tenant, f"second@{tenant.slug}.example", USER_PASSWORD, role="customer")
    assert privacy_post(c, "delete-account", password=OWNER_PASSWORD).status_code == 303
    with tenant_transaction(tenant.ref):
        assert User.get_or_none(User.id == 1) is None


# -- freeze sending ----------------------------------------------------------------------------------

def test_freezing_blocks_sends_from_api_and_dashboard_and_phones_until_unfrozen(platform, live_server, tenant):
    api = api_client(live_server, tenant.slug)
    _, token = raw_device(live_server, tenant.slug, api)
    dev = device_client(live_server, tenant.slug, token)
    queued = send(api, text="queued before the freeze").json()["id"]
    c = owner(live_server, tenant)
    assert privacy_post(c, "freeze-sending", action="freeze", reason="").status_code == 422
    assert current(platform, tenant).sending_paused == ""
    assert privacy_post(c, "freeze-sending", action="freeze", reason="complaint being checked").status_code == 303

    r = send(api)
    assert r.status_code == 409 and r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json()["code"] == "sending-paused" and "complaint being checked" in r.json()["detail"]
    fetch_xsrf(c, "/send")
    page = post_form(c, "/send", {"to": "+12025550123", "text": "from the dashboard"})
    assert page.status_code == 422 and "paused sending" in page.text
    assert fetch(dev).json()["messages"] == []
    assert "Sending is paused for this workspace" in c.get("/").text
    with tenant_transaction(tenant.ref) as db:
        assert db.execute_sql("SELECT count(*) FROM messages").fetchone()[0] == 1
    [event] = audit_rows(platform, tenant.id, "sending.paused")
    assert event["reason"] == "complaint being checked"

    assert privacy_post(c, "freeze-sending", action="unfreeze").status_code == 303
    assert queued in {m["message_id"] for m in fetch(dev).json()["messages"]}
    assert send(api).status_code == 202
    assert audit_rows(platform, tenant.id, "sending.resumed")


def test_only_the_customer_can_freeze(platform, live_server, tenant):
    add_user(platform, tenant, f"member@{tenant.slug}.example", USER_PASSWORD)
    c = sign_in(live_server, tenant.slug, f"member@{tenant.slug}.example", USER_PASSWORD, ip=fresh_ip())
    assert 'value="freeze-sending"' not in c.get("/account/privacy").text
    r = privacy_post(c, "freeze-sending", action="freeze", reason="not mine to decide")
    assert r.status_code == 400
    assert current(platform, tenant).sending_paused == ""


def test_a_parked_long_poll_does_not_hand_out_work_after_a_freeze(platform, live_server, tenant):
    """A phone that parked its poll before the freeze holds the old tenant snapshot: the wake-up
    that follows (here a scheduled message coming due) must see the freeze."""
    from tests.support.devices import LongPoll, waiting_on
    from tests.support.devices import wait_until

    api = api_client(live_server, tenant.slug)
    device_id, token = raw_device(live_server, tenant.slug, api)
    dev = device_client(live_server, tenant.slug, token)
    poll = LongPoll(dev, wait=8).start()
    wait_until(lambda: waiting_on(platform, tenant.slug, device_id), message="the poll to park")
    platform.tenants.pause_sending(tenant.slug, "checking a complaint")
    platform.tenant_cache.invalidate(tenant.slug)
    # a message that slipped in (stored straight in the queue) and a wake-up for the phone
    with tenant_transaction(tenant.ref) as db:
        mid = db.execute_sql("INSERT INTO messages (text, encoding, segments) VALUES ('slipped in', 'GSM-7', 1) RETURNING id").fetchone()[0]
        db.execute_sql("INSERT INTO recipients (message_id, phone) VALUES (%s, '+12025550100')", (mid,))
    from addons.devices.service import wake_key
    platform.wakeups.wake_threadsafe(wake_key(tenant.slug, device_id))
    poll.join(20)
    assert poll.response.status_code == 200
    assert poll.response.json()["messages"] == []


def test_a_workspace_whose_deletion_was_cancelled_is_not_erased(platform, live_server, tenant):
    platform.tenants.schedule_deletion(tenant.slug, utcnow() + dt.timedelta(days=1))
    platform.tenants.schedule_deletion(tenant.slug, None)  # cancelled before the run
    assert erasure.erase_workspace(platform, tenant.slug) is None
    assert erasure.run_due(platform, utcnow() + dt.timedelta(days=30)) == []
    assert platform.tenants.get(tenant.slug).is_active
    assert admin_sql(platform, "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (tenant.schema_name,),
                     fetch=True) == [(1,)]
