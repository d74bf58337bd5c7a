"""Identity flows end to end in a real browser: sign-up, sign-in, invitations, password reset,
API tokens, and the platform admin's reasoned access as the customer sees it in the audit trail.

Every form is filled and submitted the way a person does it, so each POST carries
the XSRF token of the page it came from. Mail is read from the file backend's
outbox (``platform.mailer.outbox()``) and its links are opened as they are.
Tenant addresses ``<slug>.localhost`` reach the test server through Chromium's
``--host-resolver-rules`` (see tests/support/browser.py).
"""

from __future__ import annotations

import email
import email.policy
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from core.admins import PlatformAdmin, create_admin
from core.db import connection
from tests.support.browser import browser_page, chromium, new_page, page_problems  # noqa: F401
from tests.support.browser import server, submit  # noqa: F401
from tests.support.worker import run_worker_until

pytestmark = pytest.mark.browser

OWNER_PASSWORD = "a long enough password"  # what make_tenant gives the owner


# -- set-up ----------------------------------------------------------------------------


@pytest.fixture
def signed_up(server):
    """Slugs of tenants a test creates through the sign-up page; deleted afterwards."""
    slugs: list[str] = []
    yield slugs
    for slug in slugs:
        try:
            server.platform.tenants.delete(slug)
        except Exception:
            pass


def url(server, slug: str | None, path: str = "/") -> str:
    base = server.platform.settings.base_domain  # localhost in tests: see --host-resolver-rules
    host = f"{slug}.{base}" if slug else base
    return f"http://{host}:{server.port}{path}"


def problems(page, *expected_statuses):
    """The page's problems, less Chromium's log line for each document we expected to fail.

    ``expected_statuses`` are ``(status, address)`` pairs: Chromium logs "Failed
    to load resource: the server responded with a status of 403 (Forbidden)"
    for a page that answers 403, even when that is the answer we asked for.
    """
    expected = [re.compile(rf"status of {status} \(.*\) @ {re.escape(address)}$")
                for status, address in expected_statuses]
    return [p for p in page_problems(page) if not any(e.search(p) for e in expected)]


def menu(page) -> list[str]:
    return page.locator(".topnav a").all_inner_texts()


def sign_in(page, server, slug: str, email_address: str, password: str):
    """Sign in through the tenant's sign-in form; the browser is on the dashboard after."""
    page.goto(url(server, slug, "/login"))
    page.fill("#f-email", email_address)
    page.fill("#f-password", password)
    response = submit(page)
    assert page.url == url(server, slug, "/"), (
        f"signing in as {email_address} did not stick: the browser is at {page.url} ({response.status})")
    return response


# -- mail ----------------------------------------------------------------------------------

def mails_to(server, address: str, subject: str) -> list:
    found = []
    for path in server.platform.mailer.outbox():
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["To"] == address and msg["Subject"] == subject:
            found.append(msg)
    return found


def mail_link(server, address: str, subject: str, path: str) -> str:
    """The one link to ``path`` in the one mail ``address`` got with ``subject``."""
    mails = mails_to(server, address, subject)
    assert len(mails) == 1, f"{address} got {len(mails)} mails {subject!r}"
    body = mails[0].get_body(preferencelist=("plain",)).get_content()
    links = [u for u in re.findall(r"https?://\S+", body) if urlsplit(u).path == path]
    assert len(links) == 1, body
    assert parse_qs(urlsplit(links[0]).query)["token"][0]
    return links[0]


# -- sign-up and sign-in -----------------------------------------------------------------

def test_sign_up_creates_a_workspace_and_its_owner_signs_in(browser_page, server, signed_up):
    page = browser_page
    slug = f"acme-{secrets.token_hex(3)}"
    owner = f"founder@{slug}.example"
    password = "correct horse battery staple"

    page.goto(url(server, None, "/"))
    submit(page, "a.button[href='/signup']")
    assert page.url == url(server, None, "/signup")
    assert page.inner_text("h1") == "Create your workspace"
    page.fill("#f-company", "Acme & Söhne")
    page.fill("#f-slug", slug)
    page.fill("#f-email", owner)
    page.fill("#f-password", password)
    page.check("#f-accept_privacy")
    signed_up.append(slug)
    # The browser is sent from the main site to the new workspace's own address, signed in.
    landing = url(server, slug, "/")
    with page.expect_response(landing) as landed:
        page.click("main form button[type=submit]")
        try:
            page.wait_for_url(landing, timeout=10_000)
        except PlaywrightTimeoutError:
            pytest.fail(f"sign-up did not lead to {landing}; the browser is at {page.url}; "
                        f"problems: {problems(page)}")
    assert landed.value.status == 200
    welcome = landed.value.request.redirected_from
    assert welcome.url.startswith(url(server, slug, "/welcome?token="))
    assert welcome.redirected_from.url == url(server, None, "/signup")
    assert welcome.redirected_from.method == "POST"
    assert "Your workspace is ready" in page.inner_text(".flash")
    assert page.inner_text(".tenant-name") == "Acme & Söhne"
    assert page.inner_text(".user-name") == owner
    # The link that signed the owner in works once: opened again, it leads to the sign-in page.
    again = page.context.browser.new_context()
    try:
        other = again.new_page()
        other.goto(welcome.url)
        assert other.url == url(server, slug, "/login?signed_up=1")
    finally:
        again.close()
    page.goto(url(server, slug, "/"))
    assert page.url == url(server, slug, "/")
    assert page.inner_text("h1") == "Welcome to Acme & Söhne"
    assert page.inner_text(".tenant-name") == "Acme & Söhne"
    assert page.is_visible(".user-box form[action='/logout']")
    assert page.inner_text(".role-badge") == "Owner"
    items = menu(page)
    for label in ("Overview", "Team", "API tokens", "Audit trail", "Account"):
        assert label in items, items
    assert items.index("Overview") < items.index("Team") < items.index("API tokens") < items.index("Account")
    assert page.get_attribute(".topnav a[aria-current=page]", "href") == "/"
    assert page.inner_text(".stat:has(.stat-label:text-is('Active members')) .stat-value") == "1"

    # The confirmation mail sent at sign-up works once.
    link = mail_link(server, owner, "Confirm your email address", "/verify-email")
    assert link.startswith(url(server, slug, "/verify-email?token="))
    page.goto(link)
    assert page.inner_text("h1") == "Email confirmed"
    assert page.inner_text("main p >> nth=0") == "Thank you: your email address is confirmed."
    assert problems(page) == []


def test_sign_up_refuses_a_taken_subdomain_and_keeps_the_form(browser_page, server, make_tenant):
    page = browser_page
    taken = make_tenant("taken")
    page.goto(url(server, None, "/signup"))
    page.fill("#f-company", "Copycat Ltd")
    page.fill("#f-slug", taken.slug)
    page.fill("#f-email", f"someone@{taken.slug}.example")
    page.fill("#f-password", "a long enough password")
    page.check("#f-accept_privacy")
    response = submit(page)
    assert response.status == 422
    assert page.url == url(server, None, "/signup")
    assert "already taken" in page.inner_text("#e-slug")
    assert page.input_value("#f-company") == "Copycat Ltd"
    assert page.input_value("#f-password") == ""
    assert problems(page, (422, url(server, None, "/signup"))) == []


def test_sign_out_ends_the_session(browser_page, server, make_tenant):
    page = browser_page
    tenant = make_tenant("bye")
    sign_in(page, server, tenant.slug, f"owner@{tenant.slug}.example", OWNER_PASSWORD)
    assert page.url == url(server, tenant.slug, "/")
    submit(page, ".user-box button[type=submit]")
    assert page.url == url(server, tenant.slug, "/login")
    page.goto(url(server, tenant.slug, "/team"))
    assert page.url == url(server, tenant.slug, "/login?next=%2Fteam")
    assert problems(page) == []


# -- invitations ------------------------------------------------------------------------------

def test_invited_colleague_joins_as_a_user_with_fewer_rights(browser_page, new_page, server, make_tenant):
    customer = browser_page
    tenant = make_tenant("team", name="Team & Co")
    colleague = f"colleague@{tenant.slug}.example"

    sign_in(customer, server, tenant.slug, f"owner@{tenant.slug}.example", OWNER_PASSWORD)
    submit(customer, ".topnav a:text-is('Team')")
    assert customer.url == url(server, tenant.slug, "/team")
    customer.fill("#f-invite-email", colleague)
    assert customer.input_value("#f-invite-role") == "user"
    submit(customer, "form:has(#f-invite-email) button[type=submit]")
    assert customer.url == url(server, tenant.slug, "/team")
    assert customer.inner_text(".flash") == f"Invitation sent to {colleague}."
    row = f"tr[data-email='{colleague}']"
    assert customer.inner_text(f"{row} td >> nth=2") == "User"
    assert customer.inner_text(f"{row} td >> nth=3") == "Invited"

    link = mail_link(server, colleague, "You are invited to Team & Co", "/accept-invite")
    assert link.startswith(url(server, tenant.slug, "/accept-invite?token="))

    # The colleague opens the link in their own browser.
    page = new_page()
    page.goto(link)
    assert page.inner_text("h1") == "Join Team & Co"
    assert f"You were invited as {colleague}." in page.inner_text("main")
    page.fill("#f-name", "Cleo Colleague")
    page.fill("#f-password", "my own good password")
    submit(page)
    assert page.url == url(server, tenant.slug, "/")
    assert page.inner_text("h1") == "Welcome to Team & Co"
    assert page.inner_text(".user-box .user-name") == "Cleo Colleague"
    assert page.inner_text(".role-badge") == "User"
    items = menu(page)
    assert "Overview" in items and "Account" in items
    for label in ("Team", "API tokens", "Audit trail"):
        assert label not in items, items

    for path in ("/team", "/tokens"):
        response = page.goto(url(server, tenant.slug, path))
        assert response.status == 403
        assert page.inner_text("h1") == "Forbidden"
        assert "Your role does not allow this" in page.inner_text(".error-detail")
        assert page.inner_text("main code") == "forbidden"

    # The link worked once.
    response = page.goto(link)
    assert response.status == 400
    assert page.inner_text("h1") == "Invitation not valid"
    assert "already used" in page.inner_text("main")
    assert problems(page, (403, url(server, tenant.slug, "/team")),
                    (403, url(server, tenant.slug, "/tokens")),
                    (400, link)) == []

    # The Customer sees the new member as active, under the name they chose.
    customer.reload()
    assert customer.inner_text(f"{row} td >> nth=0") == "Cleo Colleague"
    assert customer.inner_text(f"{row} td >> nth=3") == "Active"
    assert problems(customer) == []


# -- password reset ------------------------------------------------------------------------------

def test_password_reset_by_mail_link(browser_page, new_page, server, make_tenant):
    page = browser_page
    tenant = make_tenant("reset", name="Reset GmbH")
    owner = f"owner@{tenant.slug}.example"
    new_password = "a brand new passphrase"

    page.goto(url(server, tenant.slug, "/login"))
    submit(page, "a[href='/forgot-password']")
    assert page.inner_text("h1") == "Reset your password"
    page.fill("#f-email", owner)
    submit(page)
    assert "If an account exists for that email" in page.inner_text("main")

    # The mail goes out from the worker, as with `smsgw serve --with-worker`.
    assert run_worker_until(server.platform, lambda: mails_to(server, owner, "Reset your password"))
    link = mail_link(server, owner, "Reset your password", "/reset-password")
    assert link.startswith(url(server, tenant.slug, "/reset-password?token="))
    page.goto(link)
    assert page.inner_text("h1") == "Choose a new password"
    page.fill("#f-password", new_password)
    submit(page)
    assert page.url == url(server, tenant.slug, "/login")
    assert page.inner_text(".flash") == "Your password was changed. Sign in with the new one."

    # The old password no longer works (the answer does not say which part was wrong) ...
    page.fill("#f-email", owner)
    page.fill("#f-password", OWNER_PASSWORD)
    response = submit(page)
    assert response.status == 401
    assert page.inner_text(".flash-error") == "The email or password is not right."
    # ... the new one does.
    page.fill("#f-password", new_password)
    submit(page)
    assert page.url == url(server, tenant.slug, "/")
    assert page.inner_text("h1") == "Welcome to Reset GmbH"

    # The link is spent: opened again, even in another browser, it is refused with a readable page.
    again = new_page()
    response = again.goto(link)
    assert response.status == 400
    assert again.inner_text("h1") == "Link not valid"
    assert again.inner_text("main p >> nth=0") == \
        "This link was already used. Ask for a new one if you still need it."
    assert again.get_attribute("main a", "href") == "/login"
    assert problems(page, (401, url(server, tenant.slug, "/login"))) == []
    assert problems(again, (400, link)) == []


# -- API tokens -------------------------------------------------------------------------------------

def test_api_token_is_shown_once_and_works(browser_page, server, make_tenant):
    page = browser_page
    tenant = make_tenant("tok")
    sign_in(page, server, tenant.slug, f"owner@{tenant.slug}.example", OWNER_PASSWORD)
    submit(page, ".topnav a:text-is('API tokens')")
    assert page.url == url(server, tenant.slug, "/tokens")
    assert "No API tokens yet" in page.inner_text("main")
    page.fill("#f-token-name", "CRM integration")
    assert page.is_checked("input[name=scope][value='messages:send']")
    assert page.is_checked("input[name=scope][value='messages:read']")
    response = submit(page, "form:has(#f-token-name) button[type=submit]")
    assert response.status == 200 and page.url == url(server, tenant.slug, "/tokens")  # after a redirect
    assert "no-store" in response.headers["cache-control"]
    token = page.inner_text("#new-token").strip()
    assert re.fullmatch(rf"sgw_{tenant.slug}_[0-9A-Za-z]{{38}}", token), token
    assert "shown only this once" in page.inner_text(".token-once")

    me = requests.get(f"{server.url}/api/v1/me", timeout=30, headers={
        "Host": f"{tenant.slug}.localhost:{server.port}", "Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["kind"] == "token" and body["via"] == "api_token"
    assert body["tenant"] == tenant.slug and body["name"] == "CRM integration"
    assert body["permissions"] == ["messages:read", "messages:send"]

    # Back on the page later, only the hint is left.
    page.goto(url(server, tenant.slug, "/tokens"))
    assert page.locator("#new-token").count() == 0
    assert token not in page.content()
    row = page.locator("tr:has(td:text-is('CRM integration'))")
    assert row.locator("code").inner_text() == f"sgw_{tenant.slug}_…{token[-4:]}"

    # Revoked, it stops working at once.
    submit(page, "tr:has(td:text-is('CRM integration')) button[type=submit]")
    assert page.inner_text("h1") == "Revoke the API token “CRM integration”?"
    submit(page, "main form button[type=submit]")
    assert page.inner_text(".flash") == "Token “CRM integration” revoked."
    assert "Revoked" in page.locator("tr:has(td:text-is('CRM integration'))").inner_text()
    me = requests.get(f"{server.url}/api/v1/me", timeout=30, headers={
        "Host": f"{tenant.slug}.localhost:{server.port}", "Authorization": f"Bearer {token}"})
    assert me.status_code == 401
    assert problems(page) == []


# -- platform admin ------------------------------------------------------------------------------------

@pytest.fixture
def platform_admin(server):
    address = f"ops-{secrets.token_hex(3)}@platform.example"
    password = "admin password long enough"
    create_admin(server.platform, address, password)
    yield address, password
    with connection():
        PlatformAdmin.delete().where(PlatformAdmin.email == address).execute()


def test_admin_access_needs_a_reason_and_the_customer_sees_it(browser_page, new_page, server, make_tenant,
                                                               platform_admin):
    tenant = make_tenant("watched", name="Watched Ltd")
    owner = f"owner@{tenant.slug}.example"
    admin_email, admin_password = platform_admin
    reason = f"Support ticket #{secrets.randbelow(10**6)}: SMS not delivered"

    admin = browser_page
    admin.goto(url(server, None, "/admin/login"))
    assert admin.inner_text("h1") == "Platform admin sign-in"
    admin.fill("#f-email", admin_email)
    admin.fill("#f-password", admin_password)
    submit(admin)
    assert admin.url == url(server, None, "/admin")
    submit(admin, f"a[href='/admin/tenants/{tenant.slug}']")
    assert admin.url == url(server, None, f"/admin/tenants/{tenant.slug}")
    assert "Watched Ltd" in admin.inner_text("h1")
    assert admin.inner_text(f"strong.status-active") == "Active"
    # The data stays closed without a grant.
    admin.goto(url(server, None, f"/admin/tenants/{tenant.slug}/data/users"))
    assert admin.url == url(server, None, f"/admin/tenants/{tenant.slug}")
    assert admin.inner_text(".flash-error") == "Write a reason to open this tenant's data."

    admin.fill("#f-reason", reason)
    submit(admin, "form:has(#f-reason) button[type=submit]")
    assert admin.url == url(server, None, f"/admin/tenants/{tenant.slug}/data/users")
    assert admin.inner_text("h1") == "Watched Ltd · Users"
    assert f"Recorded access, for the reason: {reason}" in admin.inner_text(".flash-error")
    assert owner in admin.inner_text("table")
    tabs = admin.locator("nav.tabs a").all_inner_texts()
    assert "Users" in tabs and "API tokens" in tabs and "Audit trail" in tabs
    assert problems(admin) == []

    # The tenant's Customer sees who looked, when, and why.
    customer = new_page()
    sign_in(customer, server, tenant.slug, owner, OWNER_PASSWORD)
    submit(customer, ".topnav a:text-is('Audit trail')")
    assert customer.url == url(server, tenant.slug, "/audit")
    staff_rows = customer.locator("tr.admin-access")
    views = staff_rows.filter(has=customer.locator("code:text-is('admin.access')"))
    assert views.count() == 1
    view = views.first.locator("td").all_inner_texts()
    assert view[1] == admin_email
    assert view[3] == f"/admin/tenants/{tenant.slug}/data/users"
    assert view[5] == reason
    granted = staff_rows.filter(has=customer.locator("code:text-is('admin.access_granted')"))
    assert granted.count() == 1 and granted.first.locator("td").nth(5).inner_text() == reason

    # Filtering for platform staff leaves only their rows.
    customer.check("input[name=admin]")
    submit(customer, "form.filters button[type=submit]")
    rows = customer.locator("table.audit tbody tr")
    assert rows.count() == staff_rows.count() >= 2
    assert problems(customer) == []


# -- translated while signed in -----------------------------------------------------------------------

def test_signed_in_pages_follow_the_language_switch(browser_page, server, make_tenant):
    page = browser_page
    tenant = make_tenant("sprache", name="Kaffeehaus")
    sign_in(page, server, tenant.slug, f"owner@{tenant.slug}.example", OWNER_PASSWORD)
    page.select_option("#lang-select", label="DE")
    submit(page, ".lang-switch button[type=submit]")
    assert page.url == url(server, tenant.slug, "/")
    assert page.get_attribute("html", "lang") == "de"
    assert page.inner_text("h1") == "Willkommen bei Kaffeehaus"
    items = menu(page)
    for label in ("Übersicht", "Team", "API-Tokens", "Audit-Protokoll", "Konto"):
        assert label in items, items
    assert page.inner_text(".role-badge") == "Inhaber"
    assert page.inner_text(".user-box button") == "Abmelden"
    submit(page, ".topnav a:text-is('Team')")
    assert page.inner_text("h1") == "Team"
    assert page.inner_text("tr[data-email] td >> nth=2") == "Inhaber"
    assert page.inner_text("tr[data-email] td >> nth=3") == "Aktiv"
    assert problems(page) == []
