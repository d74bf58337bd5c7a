"""In Chromium, at desktop and phone sizes: a reseller's person signs in to the partner console,
creates a workspace for a customer, enables the example addon (pip-installed into the server) for
it, and opens it for support with a written reason; the workspace's owner then sees the addon's
page and, in the audit trail, the support access with that reason. Hostile text is shown as text."""

from __future__ import annotations

import secrets

import pytest

from tests.support.browser import address, chromium, new_page, overflowing, page_problems, submit  # noqa: F401
from tests.support.identity import OWNER_PASSWORD, smsgw
from tests.support.resellers import PARTNER_PASSWORD, hello_server, make_reseller, partner_email  # noqa: F401

VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
HOSTILE = "<img src=x onerror=\"document.title='pwned'\"> & {{7*7}}"


def partners(server, path: str) -> str:
    return f"http://partners.{server.platform.settings.base_domain}:{server.port}{path}"


def fits(page, where: str) -> None:
    assert overflowing(page) == [], where
    assert page.title() != "pwned" and page.locator("main img").count() == 0, where


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_reseller_creates_enables_and_opens_a_workspace_that_its_owner_sees(platform, hello_server, new_page,
                                                                           viewport):
    reseller = make_reseller(platform, "br")
    assert smsgw(hello_server.env, "reseller", "addon-allow", reseller.slug, "hello").returncode == 0
    page = new_page()
    page.set_viewport_size(VIEWPORTS[viewport])
    # Signing in: a wrong password first (the same answer for everyone), then the right one.
    page.goto(partners(hello_server, f"/{reseller.slug}"))
    assert page.url.endswith(f"/{reseller.slug}/login?next=%2F{reseller.slug}")
    page.fill("#f-email", partner_email(reseller))
    page.fill("#f-password", "not the password")
    submit(page)
    assert "The email or password is not right." in page.inner_text("main")
    page.fill("#f-email", partner_email(reseller))
    page.fill("#f-password", PARTNER_PASSWORD)
    submit(page)
    assert page.url == partners(hello_server, f"/{reseller.slug}")
    fits(page, "home")
    # A workspace for a customer, with a hostile company name (shown as text everywhere).
    slug = f"bw-{secrets.token_hex(3)}"
    page.fill("#f-slug", slug)
    page.fill("#f-name", HOSTILE)
    page.fill("#f-owner", f"owner@{slug}.example")
    page.fill("#f-owner-password", OWNER_PASSWORD)
    submit(page, "#create-workspace button[type=submit]")
    try:
        assert page.url == partners(hello_server, f"/{reseller.slug}/workspaces/{slug}")
        assert HOSTILE in page.inner_text("h1")
        fits(page, "workspace")
        # The example addon, for this workspace.
        page.click(f"nav a[href='/{reseller.slug}/addons']") if viewport == "desktop" else \
            page.goto(partners(hello_server, f"/{reseller.slug}/addons"))
        page.wait_for_selector("[data-addon=hello]")
        fits(page, "addons")
        page.check(f"[data-addon=hello] input[name=workspace][value='{slug}']")
        before = page.url
        page.click("[data-addon=hello] button[value=enable]")  # the page's script: no navigation, progress shown
        page.wait_for_selector("#outcomes[data-state=finished]")
        assert page.url == before
        assert page.inner_text(f"#outcomes li[data-slug='{slug}']").endswith("done")
        fits(page, "outcomes")
        # Support access: a reason too short is refused with a message; a real one opens the data.
        page.goto(partners(hello_server, f"/{reseller.slug}/workspaces/{slug}"))
        page.fill("#f-reason", "short")
        page.eval_on_selector("#f-reason", "e => e.removeAttribute('minlength')")  # past the browser's own check
        submit(page, "form:has(#f-reason) button[type=submit]")
        assert "at least 10 characters" in page.inner_text("main")
        reason = f"Ticket {secrets.token_hex(2)}: <b>sending</b> fails"
        page.fill("#f-reason", reason)
        submit(page, "form:has(#f-reason) button[type=submit]")
        assert page.url.endswith(f"/workspaces/{slug}/data/users")
        assert f"owner@{slug}.example" in page.inner_text("main") and reason in page.inner_text("main")
        fits(page, "support data")
        assert page_problems(page, allow=("status of 401", "status of 422")) == []  # the refusals asked for

        # The owner: the addon's page is there, and the support access with its reason in the trail.
        owner = new_page()
        owner.set_viewport_size(VIEWPORTS[viewport])
        owner.goto(address(hello_server, slug, "/login"))
        owner.fill("#f-email", f"owner@{slug}.example")
        owner.fill("#f-password", OWNER_PASSWORD)
        submit(owner)
        owner.goto(address(hello_server, slug, "/hello"))
        assert "Hello from a third-party addon" in owner.inner_text("body")
        owner.goto(address(hello_server, slug, "/audit"))
        trail = owner.inner_text("main")
        assert "reseller.access" in trail and reason in trail and partner_email(reseller) in trail
        assert owner.locator("main b").count() == 0  # the reason's markup is text
        fits(owner, "owner's audit trail")
        assert page_problems(owner) == []
    finally:
        platform.tenants.delete(slug)
