"""The kernel's pages in a real browser: tenant addresses, CSP-clean styles, 404s, language switch.

An anonymous visitor of a tenant address is sent to the tenant's sign-in page,
so that page stands for "the tenant's page" here; signed-in pages are covered
by tests/test_browser_identity.py.
"""

from __future__ import annotations

import secrets

import pytest

from core.catalogue import Tenant
from core.db import connection
from tests.support.browser import browser_page, chromium, chromium_executable, page_problems  # noqa: F401

pytestmark = pytest.mark.browser

BRAND_GREEN = "rgb(11, 110, 79)"  # --brand in core/static/app.css
OCEAN_BLUE = "rgb(29, 78, 216)"  # --brand in themes/ocean/static/theme.css


def problems(page, *allow):
    # base.html declares an inline icon, so not even /favicon.ico may fail.
    return page_problems(page, allow=allow)


def address(live_server, slug: str | None, path: str = "/") -> str:
    base = live_server.platform.settings.base_domain
    host = f"{slug}.{base}" if slug else base
    return f"http://{host}:{live_server.port}{path}"


def topbar_background(page) -> str:
    return page.eval_on_selector(".topbar", "el => getComputedStyle(el).backgroundColor")


def stylesheet_responses(page):
    """Collect the responses of stylesheets the page loads (register before navigating)."""
    seen = {}
    page.on("response", lambda r: seen.__setitem__(r.url, r.status) if r.request.resource_type == "stylesheet"
            else None)
    return seen


def test_system_chromium_is_installed():
    """A missing browser fails the run (CI installs Debian's chromium); it never skips."""
    chromium_executable()


def test_tenant_address_shows_the_tenant_sign_in_page_and_loads_its_css(browser_page, live_server, make_tenant):
    page = browser_page
    tenant = make_tenant("web", name="Blumen & Söhne <GmbH>")
    sheets = stylesheet_responses(page)
    response = page.goto(address(live_server, tenant.slug))
    # Anonymous visitors of the tenant home are sent to its sign-in page, and come back after.
    assert response.status == 200
    assert response.request.redirected_from is not None
    assert response.request.redirected_from.url == address(live_server, tenant.slug)
    assert page.url == address(live_server, tenant.slug, "/login?next=%2F")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert page.title() == "Sign in · Blumen & Söhne <GmbH> · SMS Gateway"  # the brand follows the page
    assert page.inner_text("h1") == "Sign in to Blumen & Söhne <GmbH>"  # escaped, then shown as text
    assert page.inner_text(".tenant-name") == "Blumen & Söhne <GmbH>"
    assert page.input_value("form[action='/login'] input[name=next]") == "/"
    assert page.get_attribute("html", "lang") == "en"
    # The stylesheet really applied (CSP style-src 'self' let it through).
    assert topbar_background(page) == BRAND_GREEN
    origin = address(live_server, tenant.slug, "")
    assert {url: status for url, status in sheets.items() if "/static/addons/" not in url} == {
        origin + "/static/core/app.css": 200, origin + "/static/theme/default/theme.css": 200}
    assert set(sheets.values()) == {200}  # addons' parts of the page (the cookie banner) load their own
    assert problems(page) == []


def test_tenant_theme_stylesheet_overrides_core_colours(browser_page, live_server, make_tenant):
    page = browser_page
    tenant = make_tenant("ocean")
    with connection():
        Tenant.update(theme="ocean").where(Tenant.slug == tenant.slug).execute()
    live_server.platform.tenant_cache.invalidate(tenant.slug)
    response = page.goto(address(live_server, tenant.slug))
    assert response.status == 200
    assert "Ocean SMS" in page.inner_text(".brand")
    assert topbar_background(page) == OCEAN_BLUE
    assert problems(page) == []


def test_unknown_subdomain_shows_a_readable_404(browser_page, live_server):
    page = browser_page
    slug = f"nobody-{secrets.token_hex(4)}"
    url = address(live_server, slug)
    response = page.goto(url)
    assert response.status == 404
    assert page.inner_text("h1") == "Not found"
    assert page.title() == "404 · Not found · SMS Gateway"
    assert f"There is no workspace at {slug}." in page.inner_text(".error-detail")
    assert page.inner_text("main code") == "tenant-not-found"
    # The link uses the configured public address (settings.port), not the test server's port.
    assert page.get_attribute("main a", "href") == live_server.platform.settings.public_url() + "/"
    assert topbar_background(page) == BRAND_GREEN  # the error page is styled too
    # Chromium logs the 404 of the document we asked for; nothing else may go wrong.
    assert problems(page, f"404 (Not Found) @ {url}") == []


def test_404_page_follows_the_browser_language(chromium, live_server):
    context = chromium.new_context(locale="de-DE", extra_http_headers={"Accept-Language": "de-DE,de;q=0.9"})
    try:
        page = context.new_page()
        response = page.goto(address(live_server, f"niemand-{secrets.token_hex(4)}"))
        assert response.status == 404
        assert page.get_attribute("html", "lang") == "de"
        assert page.inner_text("h1") == "Nicht gefunden"
        assert "Fehlercode" in page.inner_text("main")
    finally:
        context.close()


def test_language_switcher_changes_the_page_to_german(browser_page, live_server, make_tenant):
    page = browser_page
    tenant = make_tenant("lang", name="Kaffeehaus")
    page.goto(address(live_server, tenant.slug, "/login"))
    assert page.inner_text("h1") == "Sign in to Kaffeehaus"
    assert page.input_value("#lang-select") == "en"
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert "_xsrf" in cookies and "lang" not in cookies

    page.select_option("#lang-select", label="DE")
    with page.expect_navigation() as nav:
        page.click(".lang-switch button[type=submit]")
    assert nav.value.status == 200  # the 302 from POST /lang was followed back to the sign-in page
    assert page.url == address(live_server, tenant.slug, "/login")
    assert page.get_attribute("html", "lang") == "de"
    assert page.inner_text("h1") == "Bei Kaffeehaus anmelden"
    assert page.title() == "Anmelden · Kaffeehaus · SMS Gateway"
    assert page.inner_text("label[for=f-password]") == "Passwort"
    assert page.inner_text("form[action='/login'] button[type=submit]") == "Anmelden"
    assert page.inner_text(".lang-switch button") == "Wechseln"
    assert page.input_value("#lang-select") == "de"
    lang_cookie = {c["name"]: c for c in page.context.cookies()}["lang"]
    assert lang_cookie["value"] == "de" and lang_cookie["httpOnly"]

    # The cookie outranks the browser's English Accept-Language on later visits.
    page.reload()
    assert page.inner_text("h1") == "Bei Kaffeehaus anmelden"
    page.goto(address(live_server, tenant.slug, "/forgot-password"))
    assert page.inner_text("h1") == "Passwort zurücksetzen"
    assert problems(page) == []


def test_csp_probe_notices_violations(browser_page, live_server, make_tenant):
    """Control: the CSP check above is not vacuous -- an inline style is blocked and reported."""
    page = browser_page
    tenant = make_tenant("csp")
    page.goto(address(live_server, tenant.slug, "/login"))
    page.evaluate("""() => {
        const s = document.createElement('style');
        s.textContent = '.topbar { background: rgb(1, 2, 3) !important; }';
        document.head.append(s);
    }""")
    page.wait_for_function("window.__cspViolations.length > 0")
    assert topbar_background(page) == BRAND_GREEN  # the injected style did not apply
    found = problems(page)
    assert any(p.startswith("CSP violation: style-src") for p in found), found
    # Violations of a page we have since left still count: multi-page flows check at the end.
    page.goto(address(live_server, tenant.slug, "/forgot-password"))
    assert page.evaluate("window.__cspViolations.length") == 0
    assert problems(page) == found
