"""The sign-up policy's pages in Chromium, on a desktop (1280x800) and a phone (390x844): sign-up
closed, a workspace awaiting approval (and the Admin approving it), and the dashboard of a workspace
whose owner has not confirmed their address yet, with its "resend" action."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import secrets

import pytest

from core.admins import create_admin
from tests.support.browser import browser_page, chromium, page_problems  # noqa: F401
from tests.support.browser import server, submit  # noqa: F401
from tests.support.identity import fresh_ip, mails_to, owner_email, sign_in as http_sign_in

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
ADMIN_PASSWORD = "admin password 123"
SCREENS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.fixture
def settings_with(server):
    platform = server.platform
    configured = platform.settings

    def change(**values):
        platform.settings = dataclasses.replace(configured, **values)

    yield change
    platform.settings = configured


@pytest.fixture(params=list(SCREENS))
def page(request, browser_page):
    """A browser page at a desktop or a phone size, from a client address of its own (the test
    server trusts X-Real-IP), so the per-address sign-up limit is this test's alone."""
    browser_page.set_viewport_size(SCREENS[request.param])
    browser_page.set_extra_http_headers({"X-Real-IP": fresh_ip()})
    return browser_page


@pytest.fixture
def signed_up(server):
    slugs: list[str] = []
    yield slugs
    for slug in slugs:
        if server.platform.tenant_cache.loader(slug) is not None:
            server.platform.tenants.delete(slug)


def url(server, slug, path="/"):
    host = f"{slug}.{server.platform.settings.base_domain}" if slug else server.platform.settings.base_domain
    return f"http://{host}:{server.port}{path}"


def fits_the_screen(page, selector: str = "main") -> bool:
    """Whether ``selector`` and everything in it lie within the window's width (nothing to scroll
    sideways for). Tenant pages are checked from ``main`` down: their top navigation scrolls
    sideways on a phone whatever the page."""
    return page.evaluate("""(selector) => {
        const width = window.innerWidth;
        const boxes = Array.from(document.querySelectorAll(selector + ', ' + selector + ' *'));
        return boxes.length > 0 && boxes.every(e => e.getBoundingClientRect().right <= width + 1);
    }""", selector)


def problems(page, *expected):
    """Page problems, less Chromium's log line for pages we expected to answer an error status."""
    return [p for p in page_problems(page) if not any(f"status of {status} " in p and address in p
                                                      for status, address in expected)]


def fill_signup(page, slug, owner, company="Pending & Co"):
    page.fill("#f-company", company)
    page.fill("#f-slug", slug)
    page.fill("#f-email", owner)
    page.fill("#f-password", PASSWORD)
    page.check("#f-accept_privacy")


def confirmation_mails(server, owner):
    out = []
    for path in server.platform.mailer.outbox():
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["To"] == owner and msg["Subject"] == "Confirm your email address":
            out.append(msg)
    return out


def test_closed_sign_up_says_so_without_a_form(page, server, settings_with):
    settings_with(signup="closed")
    page.goto(url(server, None, "/signup"))
    assert page.inner_text("h1") == "Sign-up is closed"
    assert "does not accept new workspaces" in page.inner_text("main")
    assert page.locator("main form").count() == 0
    assert fits_the_screen(page)
    assert problems(page) == []


def test_a_workspace_awaiting_approval_and_the_admin_who_approves_it(page, server, settings_with, signed_up):
    settings_with(signup="approval")
    slug = f"wait-{secrets.token_hex(3)}"
    owner = f"owner@{slug}.example"
    signed_up.append(slug)
    page.goto(url(server, None, "/signup"))
    assert "once the platform operator approves them" in page.inner_text("main")
    fill_signup(page, slug, owner)
    response = submit(page)
    assert response.status == 200 and page.url == url(server, None, "/signup")
    assert page.inner_text("h1") == "Your workspace awaits approval"
    assert f"{slug}.localhost" in page.inner_text(".signup-pending")
    assert fits_the_screen(page)
    assert confirmation_mails(server, owner) == []

    # The workspace's own address: a clear page, no sign-in form.
    response = page.goto(url(server, slug, "/"))
    assert response.status == 403
    assert page.inner_text("h1") == "Waiting for approval"
    assert "waiting for the platform operator's approval" in page.inner_text(".error-detail")
    assert page.locator("#f-password").count() == 0
    assert fits_the_screen(page)

    # The Admin finds it in the console and approves it with a reason.
    admin = create_admin(server.platform, f"ops-{secrets.token_hex(4)}@platform.example", ADMIN_PASSWORD, "Ops")
    page.goto(url(server, None, "/admin/login"))
    page.fill("#f-email", admin.email)
    page.fill("#f-password", ADMIN_PASSWORD)
    submit(page)
    form = f".pending-signups form[data-slug='{slug}']"
    assert slug in page.inner_text(form)
    assert fits_the_screen(page, ".pending-signups")
    page.fill(f"{form} textarea[name=reason]", "Known customer, called us today")
    submit(page, f"{form} button[value=approve]")
    assert page.url == url(server, None, f"/admin/tenants/{slug}")
    assert page.inner_text(".flash") == f"Workspace {slug}: approved."
    assert "Owner's address not confirmed" in page.inner_text("main")
    assert len(confirmation_mails(server, owner)) == 1
    response = page.goto(url(server, slug, "/login"))
    assert response.status == 200 and page.locator("#f-password").count() == 1
    assert problems(page, (403, url(server, slug, "/"))) == []


def test_the_dashboard_of_an_unconfirmed_workspace_offers_to_resend_the_link(page, server, signed_up):
    slug = f"unconf-{secrets.token_hex(3)}"
    owner = f"owner@{slug}.example"
    signed_up.append(slug)
    page.goto(url(server, None, "/signup"))
    fill_signup(page, slug, owner, company="Unconfirmed Ltd")
    submit(page)
    assert page.url == url(server, slug, "/")  # signed in by sign-up itself
    assert page.locator("#first-steps li").count() == 4 and page.locator("#first-steps li.step-done").count() == 0

    notice = page.locator(".notice-unverified")
    assert notice.is_visible()
    assert notice.locator("h2").inner_text() == "Confirm your email address"
    text = notice.inner_text()
    assert f"We sent a link to {owner}." in text
    assert "cannot send messages, invite people or create API tokens" in text and "removed 7 days" in text
    assert fits_the_screen(page, ".notice-unverified")
    assert len(confirmation_mails(server, owner)) == 1

    submit(page, ".notice-unverified button[type=submit]")
    assert page.url == url(server, slug, "/")
    assert page.inner_text(".flash") == "We sent the confirmation link again. It works once, for 48 hours."
    assert len(confirmation_mails(server, owner)) == 2

    # Sending is refused with the way out spelled out.
    response = page.goto(url(server, slug, "/send"))
    assert response.status == 403
    assert page.inner_text("h1") == "Confirm your e-mail address first"
    assert f"we sent a link to {owner}" in page.inner_text(".error-detail")
    assert fits_the_screen(page)
    # ... and the way out is on the page itself: resend the link, or go back to the Overview.
    assert page.get_attribute("#back-to-overview", "href") == "/"
    submit(page, ".error-page button[type=submit]")
    assert page.url == url(server, slug, "/")
    assert len(confirmation_mails(server, owner)) == 3

    # The link (from either mail) confirms it: the notice is gone, sending opens.
    body = confirmation_mails(server, owner)[-1].get_body(preferencelist=("plain",)).get_content()
    link = next(line for line in body.splitlines() if "/verify-email?token=" in line).strip()
    page.goto(link)
    assert page.inner_text("h1") == "Email confirmed"
    page.goto(url(server, slug, "/"))
    assert page.locator(".notice-unverified").count() == 0
    assert page.goto(url(server, slug, "/send")).status == 200
    assert problems(page, (403, url(server, slug, "/send"))) == []


def test_find_my_workspace_from_the_landing_page(page, server, make_tenant):
    """Item 5: the landing page's *Sign in to your workspace* mails a member the sign-in links of
    their workspaces; a malformed address is said beside the field, with what was typed kept."""
    t = make_tenant("findweb", name="Findable Bakery")
    http_sign_in(server, t.slug, owner_email(t))  # a sign-in is remembered in the directory
    page.goto(url(server, None, "/"))
    page.fill("#f-find-email", "not an address")
    assert submit(page, "#find-workspace button[type=submit]").status == 422
    assert page.locator("#e-find-email[role=alert]").count() == 1
    assert page.input_value("#f-find-email") == "not an address"
    page.fill("#f-find-email", owner_email(t))
    submit(page, "#find-workspace button[type=submit]")
    assert "we have sent it an email with the sign-in links" in page.inner_text("#find-workspace-sent")
    assert fits_the_screen(page)
    for _ in range(50):
        mails = mails_to(server.platform, owner_email(t), "Your workspaces")
        if mails:
            break
        page.wait_for_timeout(100)
    assert len(mails) == 1
    text = mails[0].get_body(preferencelist=("plain",)).get_content()
    assert f"Findable Bakery: {server.platform.settings.public_url(t.slug)}/login" in text
    assert problems(page, (422, url(server, None, "/find-workspace"))) == []
