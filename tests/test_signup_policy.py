"""Self-service sign-up (issue 13, finding 4): throttled per address and platform-wide, across web
processes; an unverified workspace cannot send, invite or mint tokens by any path; the confirmation
mail carries no text the signer chose; unconfirmed workspaces are removed by a periodic task; and the
operator can close sign-up or require approval (``SMSGW_SIGNUP``)."""

from __future__ import annotations

import base64
import dataclasses
import secrets
import time

import pytest

from core.admins import create_admin
from core.db import tenant_transaction
from core.identity import create_api_token
from core.tasks import TaskQueue, make_huey
from core.users import User
from tests.support.identity import (admin_sign_in, admin_sql, audit_rows, bearer, client, fetch_xsrf,
                                    fresh_ip, link_token, mails_to, post_form, sign_in, signup_acceptance, smsgw, wait_for_mail)
from tests.support.messaging import sql
from tests.support.serve import start_serve, stop_serve
from tests.support.worker import run_huey_until

PASSWORD = "a long enough password"
ADMIN_PASSWORD = "admin password 123"


def signup(server_or_url, slug, ip, company="Signup Co", email_address=None):
    """POST the sign-up form from client address ``ip`` (the test servers trust X-Real-IP)."""
    c = client(server_or_url, None, ip)
    fetch_xsrf(c, "/signup")
    return post_form(c, "/signup", {"company": company, "slug": slug,
                                    "email": email_address or f"owner@{slug}.example", "password": PASSWORD,
                                    **signup_acceptance(c)})


def new_slug(prefix="su") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


@pytest.fixture
def cleanup(platform):
    slugs: list[str] = []
    yield slugs
    for slug in slugs:
        if platform.tenant_cache.loader(slug) is not None:
            platform.tenants.delete(slug)


@pytest.fixture
def settings_with(live_server):
    """Run the live server with some settings changed for one test (as tests/test_browser_identity does)."""
    platform = live_server.platform
    configured = platform.settings

    def change(**values):
        platform.settings = dataclasses.replace(configured, **values)

    yield change
    platform.settings = configured


def signups_in_the_last_hour(platform) -> int:
    return admin_sql(platform, "SELECT count(*) FROM public.signup_attempt WHERE key = 'signup:all' "
                               "AND at > now() - interval '1 hour'", fetch=True)[0][0]


# -- throttling ------------------------------------------------------------------------------

def test_one_address_creates_at_most_three_workspaces_an_hour(platform, live_server, cleanup):
    ip = fresh_ip()
    for _ in range(3):
        slug = new_slug()
        cleanup.append(slug)
        r = signup(live_server, slug, ip)
        assert r.status_code == 302, r.text[:300]
    refused = new_slug()
    cleanup.append(refused)
    r = signup(live_server, refused, ip)
    assert r.status_code == 429 and r.headers["Retry-After"] == "3600"
    assert "Too many workspaces were created recently" in r.text
    assert platform.tenant_cache.loader(refused) is None
    assert mails_to(platform, f"owner@{refused}.example") == []
    # Another address is not held back by this one.
    elsewhere = new_slug()
    cleanup.append(elsewhere)
    assert signup(live_server, elsewhere, fresh_ip()).status_code == 302


def test_an_ipv6_client_is_counted_by_its_64_network(platform, live_server, cleanup):
    group = secrets.randbelow(0xfff0)
    net = f"2001:db8:{secrets.randbelow(0xffff):x}:{group:x}"
    slugs = [new_slug() for _ in range(4)]
    cleanup += slugs
    for i, slug in enumerate(slugs[:3]):
        assert signup(live_server, slug, f"{net}::{i + 1}").status_code == 302
    assert signup(live_server, slugs[3], f"{net}:ffff:ffff:ffff:ffff").status_code == 429
    other = new_slug()
    cleanup.append(other)
    next_network = net.rsplit(":", 1)[0] + f":{group + 1:x}"  # the neighbouring /64: another subscriber
    assert signup(live_server, other, f"{next_network}::1").status_code == 302


def test_refused_forms_do_not_use_up_the_budget(platform, live_server, make_tenant, cleanup):
    ip = fresh_ip()
    taken = make_tenant("taken")
    for _ in range(4):  # a taken subdomain, four times: nothing was created, nothing counted
        r = signup(live_server, taken.slug, ip)
        assert r.status_code == 422 and "already taken" in r.text
    slug = new_slug()
    cleanup.append(slug)
    assert signup(live_server, slug, ip).status_code == 302


def test_the_platform_accepts_a_set_number_of_workspaces_an_hour(platform, live_server, settings_with, cleanup):
    settings_with(signup_per_hour=signups_in_the_last_hour(platform) + 1)
    first, second = new_slug(), new_slug()
    cleanup += [first, second]
    assert signup(live_server, first, fresh_ip()).status_code == 302
    r = signup(live_server, second, fresh_ip())  # another address, but the platform's hour is full
    assert r.status_code == 429
    assert platform.tenant_cache.loader(second) is None


@pytest.fixture
def second_process(cli_env):
    """Another web process (``smsgw serve``) on the same database, trusting X-Real-IP like the test server."""
    proc, port, _ = start_serve(dict(cli_env, SMSGW_BIND="127.0.0.1", SMSGW_TRUST_PROXY="1",
                                     SMSGW_MAIL_BACKEND="file"))
    yield f"http://127.0.0.1:{port}"
    stop_serve(proc)


class OtherProcess:
    """Enough of LiveServer for ``client()``: the address of the second web process."""

    def __init__(self, url, platform):
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])
        self.platform = platform


def test_web_processes_share_one_budget(platform, live_server, second_process, cleanup):
    other = OtherProcess(second_process, platform)
    ip = fresh_ip()
    slugs = [new_slug() for _ in range(5)]
    cleanup += slugs
    assert signup(live_server, slugs[0], ip).status_code == 302
    assert signup(other, slugs[1], ip).status_code == 302
    assert signup(live_server, slugs[2], ip).status_code == 302
    assert signup(other, slugs[3], ip).status_code == 429  # the fourth, whichever process answers
    assert signup(live_server, slugs[4], ip).status_code == 429
    assert [platform.tenant_cache.loader(s) is not None for s in slugs] == [True, True, True, False, False]


# -- an unverified workspace -------------------------------------------------------------------

def basic(email_address, password=PASSWORD) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{email_address}:{password}".encode()).decode()}


def every_sending_path(platform, live_server, slug, owner, session, token) -> dict:
    """Try to send an SMS (and invite, and mint a token) by every path; the answers' status codes."""
    api = client(live_server, slug)
    jwt = api.post("/api/v1/auth/token", json={"email": owner, "password": PASSWORD}).json()["access_token"]
    out = {
        "dashboard send form": post_form(session, "/send", {"to": "+14155550123", "text": "hello"}),
        "dashboard invite": post_form(session, "/team", {"action": "invite", "email": f"friend@{slug}.example",
                                                         "role": "user"}),
        "dashboard new API token": post_form(session, "/tokens", {"action": "create", "name": "mine",
                                                                  "scope": "messages:send"}),
        "API with a JWT": api.post("/api/v1/messages", headers=bearer(jwt),
                                   json={"to": ["+14155550123"], "text": "hello"}),
        "API with an API token": api.post("/api/v1/messages", headers=bearer(token),
                                          json={"to": ["+14155550123"], "text": "hello"}),
        "compat with Basic": api.post("/3rdparty/v1/messages", headers=basic(owner),
                                      json={"phoneNumbers": ["+14155550123"], "textMessage": {"text": "hello"}}),
        "compat with an API token": api.post("/3rdparty/v1/messages", headers=bearer(token),
                                             json={"phoneNumbers": ["+14155550123"],
                                                   "textMessage": {"text": "hello"}}),
    }
    return out


def test_an_unverified_workspace_cannot_send_invite_or_mint_tokens_until_its_owner_confirms(
        platform, live_server, cleanup):
    slug = new_slug("unv")
    cleanup.append(slug)
    owner = f"owner@{slug}.example"
    assert signup(live_server, slug, fresh_ip()).status_code == 302
    tenant = platform.tenants.get(slug)
    assert not tenant.verified
    # A token the operator made (the dashboard cannot) must not be a way around it either.
    with tenant_transaction(tenant.ref):
        _row, token = create_api_token(slug, "ops", ["messages:send", "messages:read"], 1)
    session = sign_in(live_server, slug, owner, PASSWORD, ip=fresh_ip())

    answers = every_sending_path(platform, live_server, slug, owner, session, token)
    for path, r in answers.items():
        assert r.status_code == 403, (path, r.status_code, r.text[:300])
        if path.startswith("compat"):  # their error shape: {"code": 403, "message": ..., "data": {"code": ...}}
            body = r.json()
            assert body["data"]["code"] == "workspace-unverified", (path, body)
            assert body["message"].startswith("Confirm your e-mail address first: we sent a link to "), body
        elif path.startswith("API"):
            problem = r.json()
            assert problem["code"] == "workspace-unverified", (path, problem)
            assert problem["detail"].startswith("Confirm your e-mail address first: we sent a link to "), problem
        else:
            assert "Confirm your e-mail address first" in r.text and "workspace-unverified" in r.text, path
    with tenant_transaction(tenant.ref):
        assert User.select().count() == 1  # nobody was invited
    assert mails_to(platform, f"friend@{slug}.example") == []
    assert sql(tenant, "SELECT count(*) FROM messages") == [(0,)]

    # Reading is allowed: the workspace is usable, it just cannot reach anybody.
    assert client(live_server, slug).get("/api/v1/messages", headers=bearer(token)).status_code == 200
    dashboard = session.get("/")
    assert dashboard.status_code == 200 and "notice-unverified" in dashboard.text

    # The owner confirms: every path opens, at once.
    mail, = wait_for_mail(platform, owner, "Confirm your email address")
    confirm = client(live_server, slug).get(f"/verify-email?token={link_token(mail, '/verify-email')}")
    assert confirm.status_code == 200 and "Email confirmed" in confirm.text
    assert platform.tenants.get(slug).verified
    assert [e["actor"] for e in audit_rows(platform, tenant.id, "tenant.verified")] == ["user:1"]
    answers = every_sending_path(platform, live_server, slug, owner, session, token)
    assert {path: r.status_code for path, r in answers.items()} == {
        "dashboard send form": 302, "dashboard invite": 302, "dashboard new API token": 303,
        "API with a JWT": 202, "API with an API token": 202, "compat with Basic": 202,
        "compat with an API token": 202}
    assert "notice-unverified" not in session.get("/").text


def test_operator_and_cli_workspaces_are_verified(platform, make_tenant, cli_env):
    assert make_tenant("ops").verified
    slug = new_slug("cli")
    r = smsgw(cli_env, "tenant", "create", slug, "--name", "CLI Co", "--owner-email", f"o@{slug}.example",
              "--owner-password", PASSWORD)
    try:
        assert r.returncode == 0, r.stderr
        assert platform.tenants.get(slug).verified
    finally:
        platform.tenants.delete(slug)


def test_the_confirmation_mail_carries_no_text_the_signer_chose(platform, live_server, cleanup):
    slug = new_slug("txt")
    cleanup.append(slug)
    victim = f"victim@{slug}.example"
    bait = "URGENT call +1 900 555 0100 to claim your prize"
    r = signup(live_server, slug, fresh_ip(), company=bait, email_address=victim)
    assert r.status_code == 302

    def check(mail):
        body = mail.get_body(preferencelist=("plain",)).get_content()
        assert "prize" not in body.lower() and "900" not in body and "Prize Department" not in body, body
        assert f"{slug}.localhost" in body and "/verify-email?token=" in body
        assert "prize" not in mail["Subject"].lower()

    first, = wait_for_mail(platform, victim, "Confirm your email address")
    check(first)
    # The person's name, were it set, stays out of the resent mail too.
    with tenant_transaction(platform.tenants.get(slug).ref):
        User.update(name="Prize Department").where(User.id == 1).execute()
    session = sign_in(live_server, slug, victim, PASSWORD, ip=fresh_ip())
    r = post_form(session, "/verify-email/resend", {})
    assert r.status_code == 302
    mails = wait_for_mail(platform, victim, "Confirm your email address", count=2)
    assert len(mails) == 2
    check(mails[1] if mails[0]["Message-ID"] == first["Message-ID"] else mails[0])


def test_resending_the_confirmation_mail_is_limited(platform, live_server, cleanup):
    slug = new_slug("rs")
    cleanup.append(slug)
    owner = f"owner@{slug}.example"
    assert signup(live_server, slug, fresh_ip()).status_code == 302
    session = sign_in(live_server, slug, owner, PASSWORD, ip=fresh_ip())
    for _ in range(5):
        assert post_form(session, "/verify-email/resend", {}).status_code == 302
    time.sleep(0.3)
    assert len(mails_to(platform, owner, "Confirm your email address")) == 1 + 3


# -- removal of unconfirmed workspaces -----------------------------------------------------------

def age(platform, slug, days):
    admin_sql(platform, "UPDATE public.tenant SET created_at = now() - %s * interval '1 day' WHERE slug = %s",
              (days, slug))


def test_unconfirmed_workspaces_are_removed_after_seven_days_by_a_periodic_task(platform, live_server, make_tenant,
                                                                                cleanup):
    old, young = new_slug("old"), new_slug("young")
    cleanup += [old, young]
    for slug in (old, young):
        assert signup(live_server, slug, fresh_ip()).status_code == 302
    verified_old = make_tenant("kept")
    age(platform, old, 7.1)
    age(platform, young, 6.9)
    age(platform, verified_old.slug, 30)
    old_id = platform.tenants.get(old).id

    queue = TaskQueue(make_huey(platform.settings, platform.app_url, name=f"test-{secrets.token_hex(3)}"), platform)
    try:
        queue.periodic_tasks["core.remove_unverified_tenants"]()  # as the scheduler does each hour
        assert run_huey_until(queue.huey, lambda: platform.tenant_cache.loader(old) is None)
    finally:
        queue.huey.flush()
    assert platform.tenant_cache.loader(young) is not None
    assert platform.tenant_cache.loader(verified_old.slug) is not None
    schema = admin_sql(platform, "SELECT count(*) FROM pg_namespace WHERE nspname = %s",
                       (platform.roles.tenant_schema(old),), fetch=True)[0][0]
    assert schema == 0
    removed, = audit_rows(platform, old_id, "tenant.removed_unverified")
    assert removed["actor"] == "system" and removed["tenant_slug"] == old
    assert removed["details"]["unconfirmed_for_days"] == 7
    # Its address now answers "no such workspace".
    assert client(live_server, old).get("/login").status_code == 404


def test_the_removal_period_is_a_setting(platform, live_server, settings_with, cleanup):
    slug = new_slug("ttl")
    cleanup.append(slug)
    assert signup(live_server, slug, fresh_ip()).status_code == 302
    age(platform, slug, 2.5)
    assert platform.tenants.remove_unverified() == []
    settings_with(unverified_ttl_days=2)
    assert [t.slug for t in platform.tenants.remove_unverified()] == [slug]


# -- SMSGW_SIGNUP ------------------------------------------------------------------------------

def test_settings_read_the_signup_policy_from_the_environment():
    from core.config import ConfigError, Settings

    s = Settings.from_env({})
    assert (s.signup, s.signup_per_ip_hour, s.signup_per_hour, s.unverified_ttl_days) == ("open", 3, 50, 7)
    s = Settings.from_env({"SMSGW_SIGNUP": "approval", "SMSGW_SIGNUP_PER_IP_HOUR": "5",
                           "SMSGW_SIGNUP_PER_HOUR": "200", "SMSGW_UNVERIFIED_TTL_DAYS": "3"})
    assert (s.signup, s.signup_per_ip_hour, s.signup_per_hour, s.unverified_ttl_days) == ("approval", 5, 200, 3)
    assert Settings.from_env({"SMSGW_SIGNUP": "Closed"}).signup == "closed"
    with pytest.raises(ConfigError, match="SMSGW_SIGNUP must be one of open, approval, closed"):
        Settings.from_env({"SMSGW_SIGNUP": "maybe"})


def test_closed_sign_up_shows_no_form_and_creates_nothing(platform, live_server, settings_with, cleanup):
    c = client(live_server, None, fresh_ip())
    fetch_xsrf(c, "/signup")  # the form's XSRF cookie, taken while sign-up was open
    settings_with(signup="closed")
    page = c.get("/signup")
    assert page.status_code == 200 and "Sign-up is closed" in page.text
    assert "<form method=\"post\" action=\"/signup\"" not in page.text
    slug = new_slug("closed")
    cleanup.append(slug)
    r = post_form(c, "/signup", {"company": "Late Co", "slug": slug, "email": f"o@{slug}.example",
                                 "password": PASSWORD})
    assert r.status_code == 403 and "Sign-up is closed" in r.text
    assert platform.tenant_cache.loader(slug) is None


@pytest.fixture
def console(platform, live_server):
    admin = create_admin(platform, f"ops-{secrets.token_hex(4)}@platform.example", ADMIN_PASSWORD, "Ops")
    return admin, admin_sign_in(live_server, admin.email, ADMIN_PASSWORD)


def test_approval_mode_holds_new_workspaces_until_an_admin_approves(platform, live_server, settings_with, console,
                                                                     cleanup):
    admin, c = console
    settings_with(signup="approval")
    slug = new_slug("appr")
    cleanup.append(slug)
    owner = f"owner@{slug}.example"
    r = signup(live_server, slug, fresh_ip())
    assert r.status_code == 200 and "Your workspace awaits approval" in r.text
    tenant = platform.tenants.get(slug)
    assert tenant.status == "pending" and not tenant.verified
    assert mails_to(platform, owner) == []  # nothing goes to the address before an Admin looked
    # The workspace's address answers a clear page, not the sign-in or the dashboard.
    page = client(live_server, slug).get("/login")
    assert page.status_code == 403 and "waiting for the platform operator" in page.text
    assert "tenant-pending" in page.text
    api = client(live_server, slug).post("/api/v1/auth/token", json={"email": owner, "password": PASSWORD})
    assert api.status_code == 403 and api.json()["code"] == "tenant-pending"

    listing = c.get("/admin")
    assert f'data-slug="{slug}"' in listing.text and "Waiting for approval" in listing.text
    r = post_form(c, f"/admin/tenants/{slug}", {"action": "approve", "reason": "ok"})
    assert r.status_code == 422 and "at least 10 characters" in r.text
    assert platform.tenants.get(slug).status == "pending"
    r = post_form(c, f"/admin/tenants/{slug}", {"action": "approve", "reason": "Known customer, called us today"})
    assert r.status_code == 302
    assert platform.tenants.get(slug).status == "active"
    event, = audit_rows(platform, tenant.id, "admin.tenant_approved")
    assert event["reason"] == "Known customer, called us today" and event["actor"] == f"admin:{admin.id}"
    mail, = wait_for_mail(platform, owner, "Confirm your email address")
    assert client(live_server, slug).get("/login").status_code == 200
    # Approved is not verified: it still cannot send until the owner confirms.
    assert not platform.tenants.get(slug).verified
    assert link_token(mail, "/verify-email")


def test_an_admin_rejects_a_pending_workspace_with_a_reason(platform, live_server, settings_with, console, cleanup):
    admin, c = console
    settings_with(signup="approval")
    slug = new_slug("rej")
    cleanup.append(slug)
    assert signup(live_server, slug, fresh_ip()).status_code == 200
    tenant_id = platform.tenants.get(slug).id
    r = post_form(c, f"/admin/tenants/{slug}", {"action": "reject", "reason": "Looks like a spam operation"})
    assert r.status_code == 302
    assert platform.tenant_cache.loader(slug) is None
    event, = audit_rows(platform, tenant_id, "admin.tenant_rejected")
    assert event["reason"] == "Looks like a spam operation"
    assert mails_to(platform, f"owner@{slug}.example") == []
    # Approve/reject only apply to pending workspaces: an active one is never deleted this way.
    settings_with(signup="open")
    active = new_slug("act")
    cleanup.append(active)
    assert signup(live_server, active, fresh_ip()).status_code == 302
    r = post_form(c, f"/admin/tenants/{active}", {"action": "reject", "reason": "Looks like a spam operation"})
    assert r.status_code == 409
    assert platform.tenant_cache.loader(active) is not None
