"""The cookie banner and analytics in Chromium, on a desktop (1280x800) and a phone (390x844).

These run on a server of their own whose base domain has two labels (``consent.localhost``):
browsers refuse a cookie ``Domain`` of one label such as ``localhost``, and the point here is that
one choice holds on the main site and on every workspace's subdomain. axe-core is vendored
(tests/vendor/axe.min.js, MPL-2.0) and injected through the DevTools protocol, never fetched."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.browser import browser_page, chromium, new_page, page_problems  # noqa: F401
from tests.support.identity import admin_sql, fresh_ip
from tests.support.messaging import wait_until

pytestmark = pytest.mark.browser

BASE = "consent.localhost"
SCREENS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"


@pytest.fixture(scope="module")
def site(platform):
    """A live server whose base domain is ``consent.localhost`` (workspaces at <slug>.consent.localhost)."""
    from tests.support.server import LiveServer

    configured = platform.settings
    platform.settings = dataclasses.replace(configured, base_domain=BASE)
    server = LiveServer(platform).start()
    platform.settings = dataclasses.replace(platform.settings, port=server.port)
    try:
        yield server
    finally:
        server.stop()
        platform.settings = configured


@pytest.fixture(params=list(SCREENS))
def page(request, browser_page):
    browser_page.set_viewport_size(SCREENS[request.param])
    browser_page.set_extra_http_headers({"X-Real-IP": fresh_ip()})
    return browser_page


def url(site, slug=None, path="/"):
    return f"http://{slug + '.' if slug else ''}{BASE}:{site.port}{path}"


def cookies(page) -> dict:
    return {c["name"]: c for c in page.context.cookies()}


def banner_visible(page) -> bool:
    return page.is_visible("#cookie-banner")


def views(platform, visitor) -> list:
    return admin_sql(platform, "SELECT path FROM public.analytics_view WHERE visitor = %s ORDER BY id",
                     (visitor,), fetch=True)


def count_views(platform) -> int:
    return admin_sql(platform, "SELECT count(*) FROM public.analytics_view", fetch=True)[0][0]


def consent_rows(platform, consent_id) -> list:
    return admin_sql(platform, "SELECT version, choice, source FROM public.cookie_consent WHERE consent_id = %s "
                               "ORDER BY id", (consent_id,), fetch=True)


def test_nothing_is_counted_before_consent_and_reject_leaves_no_analytics(page, site, platform):
    requests = []
    page.on("request", lambda r: requests.append(r.url))
    before = count_views(platform)
    page.goto(url(site))
    assert banner_visible(page)
    box = page.locator("#cookie-banner").bounding_box()
    viewport = page.viewport_size
    assert abs(box["y"] + box["height"] - viewport["height"]) < 1  # at the bottom of the screen
    # Accept and Reject: the same size, on the first layer.
    accept = page.locator("#cookie-banner button[value=analytics]").bounding_box()
    reject = page.locator("#cookie-banner button[value=essential]").bounding_box()
    assert abs(accept["width"] - reject["width"]) < 1 and abs(accept["height"] - reject["height"]) < 1
    page.goto(url(site, None, "/signup"))
    assert "smsgw_analytics" not in cookies(page) and "smsgw_consent" not in cookies(page)
    assert all(r.startswith(url(site)) for r in requests), requests  # nothing loaded from elsewhere
    assert not [r for r in requests if urlsplit(r).path == "/cookies/consent"]
    page.click("#cookie-banner button[value=essential]")
    assert wait_until(lambda: not banner_visible(page))
    jar = cookies(page)
    assert jar["smsgw_consent"]["value"].startswith("1:essential:")
    assert jar["smsgw_consent"]["domain"] in (BASE, "." + BASE)
    assert "smsgw_analytics" not in jar
    page.goto(url(site, None, "/privacy"))
    assert not banner_visible(page)
    assert "smsgw_analytics" not in cookies(page)
    assert count_views(platform) == before
    assert page_problems(page) == []


def test_accept_counts_views_and_withdrawal_deletes_the_cookie_and_stops_counting(page, site, platform):
    page.goto(url(site))
    page.click("#cookie-banner button[value=analytics]")
    assert wait_until(lambda: "smsgw_analytics" in cookies(page))
    assert wait_until(lambda: not banner_visible(page))  # the script hides it once the answer is in
    visitor = cookies(page)["smsgw_analytics"]["value"]
    consent_id = cookies(page)["smsgw_consent"]["value"].split(":")[2]
    assert consent_rows(platform, consent_id) == [("1", "analytics", "banner")]
    page.goto(url(site, None, "/signup"))
    assert views(platform, visitor) == [("/signup",)]
    # Withdraw through the footer's "Cookie settings": the banner opens in place, settings shown.
    page.click("footer a[href='/cookies']")
    assert banner_visible(page) and page.is_visible("#cookie-banner-analytics")
    assert page.is_checked("#cookie-banner-analytics")
    page.uncheck("#cookie-banner-analytics")
    page.click("#cookie-banner button[value=settings]")
    assert wait_until(lambda: "smsgw_analytics" not in cookies(page))
    assert cookies(page)["smsgw_consent"]["value"] == f"1:essential:{consent_id}"
    assert consent_rows(platform, consent_id)[-1] == ("1", "essential", "settings")
    page.goto(url(site, None, "/"))
    page.goto(url(site, None, "/signup"))
    assert views(platform, visitor) == [("/signup",)]
    assert "smsgw_analytics" not in cookies(page)
    assert page_problems(page) == []


def test_the_banner_works_by_keyboard_alone(page, site, platform):
    page.goto(url(site))
    order = []
    for _ in range(4):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.textContent.trim()"))
        if order[-1] == "Accept analytics":
            break
    # The banner comes first in the page: its link, then Accept.
    assert order == ["More about cookies", "Accept analytics"], order
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Reject"
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Settings"
    page.keyboard.press("Enter")  # the summary opens the categories
    assert page.is_visible("#cookie-banner-analytics")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Accept analytics"
    page.keyboard.press("Enter")
    assert wait_until(lambda: not banner_visible(page))
    assert cookies(page)["smsgw_consent"]["value"].startswith("1:analytics:")
    # Focus goes to the page's content, not lost on the hidden banner.
    assert page.evaluate("document.activeElement.id") == "content"
    assert page_problems(page) == []


def test_without_javascript_the_banner_forms_post_and_come_back(chromium, site, platform):
    context = chromium.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(url(site, None, "/privacy"))
        assert banner_visible(page)
        with page.expect_navigation():
            page.click("#cookie-banner button[value=analytics]")
        assert page.url == url(site, None, "/privacy")
        assert not banner_visible(page)
        jar = {c["name"]: c["value"] for c in context.cookies()}
        assert jar["smsgw_consent"].startswith("1:analytics:") and "smsgw_analytics" in jar
        # The footer link is a real page without scripts.
        with page.expect_navigation():
            page.click("footer a[href='/cookies']")
        assert page.url == url(site, None, "/cookies")
        page.uncheck("#cookie-page-analytics")
        with page.expect_navigation():
            page.click("main button[value=settings]")
        jar = {c["name"]: c["value"] for c in context.cookies()}
        assert jar["smsgw_consent"].startswith("1:essential:") and "smsgw_analytics" not in jar
    finally:
        context.close()


def test_the_choice_holds_across_pages_and_workspaces_and_a_new_policy_asks_again(page, site, platform,
                                                                                 make_tenant):
    one, two = make_tenant("cka"), make_tenant("ckb")
    page.goto(url(site, one.slug, "/login"))
    assert banner_visible(page)
    page.click("#cookie-banner button[value=essential]")
    assert wait_until(lambda: "smsgw_consent" in cookies(page))
    consent_id = cookies(page)["smsgw_consent"]["value"].split(":")[2]
    for slug, path in ((one.slug, "/login"), (two.slug, "/login"), (None, "/"), (None, "/signup"),
                       (two.slug, "/privacy")):
        page.goto(url(site, slug, path))
        assert not banner_visible(page), (slug, path)
    assert consent_rows(platform, consent_id) == [("1", "essential", "banner")]
    configured = platform.settings
    platform.settings = dataclasses.replace(configured, cookie_policy_version="2")
    try:
        page.goto(url(site, two.slug, "/login"))
        assert banner_visible(page)
        page.click("#cookie-banner button[value=analytics]")
        assert wait_until(lambda: cookies(page)["smsgw_consent"]["value"].startswith("2:analytics:"))
        assert consent_rows(platform, consent_id)[-1] == ("2", "analytics", "banner")
        page.goto(url(site, one.slug, "/login"))
        assert not banner_visible(page)
    finally:
        platform.settings = configured
    assert page_problems(page) == []


@pytest.mark.parametrize("lang, accept", [("de-DE", "Analyse erlauben"), ("fr-FR", "Accepter la mesure d’audience"),
                                          ("es-ES", "Aceptar analítica")])
def test_the_banner_speaks_every_shipped_language(new_page, site, lang, accept):
    page = new_page(locale=lang, accept_language=f"{lang},{lang[:2]};q=0.9")
    page.goto(url(site))
    assert page.inner_text("#cookie-banner button[value=analytics]") == accept


def run_axe(page) -> list:
    page.evaluate(AXE.read_text())  # through the DevTools protocol: the page's CSP does not apply
    result = page.evaluate("""async () => {
        const r = await axe.run('#cookie-banner', {resultTypes: ['violations']});
        return r.violations.map(v => v.id + ': ' + v.help + ' @ ' + v.nodes.map(n => n.target.join(' ')).join(', '));
    }""")
    return result


def test_axe_finds_no_violation_in_the_banner(page, site, make_tenant):
    page.goto(url(site))
    assert run_axe(page) == []
    page.click("#cookie-banner summary")
    assert page.is_visible("#cookie-banner-analytics")
    assert run_axe(page) == []
    tenant = make_tenant("ckx")
    page.goto(url(site, tenant.slug, "/login"))
    page.click("#cookie-banner summary")
    assert run_axe(page) == []
    # axe really looks: a checkbox that loses its label is a violation.
    page.evaluate("document.querySelector('label[for=cookie-banner-analytics]').remove()")
    assert [v for v in run_axe(page) if v.startswith("label:")]
