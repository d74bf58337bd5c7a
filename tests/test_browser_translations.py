"""Translations in Chromium (issue 24): right-to-left layout, and screenshots of the main pages in
every shipped language for translators to review (``build/screenshots/translations/``, ignored).

The pseudo-RTL locale (``qps-plocm``) sets ``<html dir="rtl">``: the layout must mirror (the
sidebar on the right on desktop, headings starting at the right on phones) without horizontal
scrolling.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.i18n import PSEUDO_RTL
from tests.support.browser import address, chromium, keep_screenshot, open_page, server, submit  # noqa: F401
from tests.support.identity import OWNER_PASSWORD, owner_email
from tests.test_i18n import SHIPPED

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "build" / "screenshots" / "translations"
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
MAIN_PAGES = ("/", "/messages", "/devices")


# Where the text of the page's heading is drawn (its box, not the block's, which spans the line).
HEADING_TEXT_BOX = """() => { const r = document.createRange(); r.selectNodeContents(document.querySelector('main h1'));
  const b = r.getBoundingClientRect(); return {left: b.left, right: b.right}; }"""


@pytest.fixture(scope="module")
def owner(server, chromium):
    """The owner of a fresh workspace, signed in, in one browser context for the module."""
    import secrets

    platform = server.platform
    slug = f"rtl-{secrets.token_hex(4)}"
    tenant = platform.tenants.create(slug, "Mirror & Co", f"owner@{slug}.example", OWNER_PASSWORD)
    page = open_page(chromium)
    page.goto(address(server, slug, "/login"))
    page.fill("#f-email", owner_email(tenant))
    page.fill("#f-password", OWNER_PASSWORD)
    submit(page)
    page.click("#cookie-banner button[value=essential]")
    page.wait_for_selector("#cookie-banner", state="hidden")
    try:
        yield {"page": page, "slug": slug, "server": server}
    finally:
        page.context.close()
        try:
            platform.tenants.delete(slug)
        except Exception:
            pass


def choose(owner, lang: str) -> None:
    """The language menu's choice, as a person makes it (its form posts to /lang)."""
    page = owner["page"]
    page.goto(address(owner["server"], owner["slug"], f"/?lang={lang}"))  # preview: no cookie yet
    assert page.get_attribute("html", "lang") == lang
    page.context.add_cookies([{"name": "lang", "value": lang, "url": address(owner["server"], owner["slug"], "/")}])


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_the_layout_mirrors_right_to_left(owner, viewport):
    page = owner["page"]
    page.set_viewport_size(VIEWPORTS[viewport])
    choose(owner, PSEUDO_RTL)
    page.goto(address(owner["server"], owner["slug"], "/messages"))
    assert page.get_attribute("html", "dir") == "rtl"
    assert page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth") <= 0
    keep_screenshot(page, SCREENSHOTS / f"{viewport}-{PSEUDO_RTL}-messages.png")
    width = VIEWPORTS[viewport]["width"]
    if viewport == "desktop":  # the sidebar is on the right, the content on its left
        sidebar = page.locator(".sidebar").bounding_box()
        main = page.locator("main").bounding_box()
        assert sidebar["x"] + sidebar["width"] >= width - 2, sidebar
        assert main["x"] + main["width"] <= sidebar["x"] + 1, (main, sidebar)
    else:  # the page's heading starts at the right
        heading = page.evaluate(HEADING_TEXT_BOX)
        assert heading["left"] > width - heading["right"], heading
    # and the same page left to right puts them the other way round
    choose(owner, "en")
    page.goto(address(owner["server"], owner["slug"], "/messages"))
    assert page.get_attribute("html", "dir") is None
    if viewport == "desktop":
        assert page.locator(".sidebar").bounding_box()["x"] <= 2
    else:
        heading = page.evaluate(HEADING_TEXT_BOX)
        assert heading["left"] < width - heading["right"], heading


@pytest.mark.parametrize("lang", ("en", *SHIPPED))
def test_screenshots_of_the_main_pages_in_each_language(owner, lang):
    """For translators' review: three main pages at desktop size; each fits the screen."""
    page = owner["page"]
    page.set_viewport_size(VIEWPORTS["desktop"])
    choose(owner, lang)
    for path in MAIN_PAGES:
        response = page.goto(address(owner["server"], owner["slug"], path))
        assert response.status == 200 and page.get_attribute("html", "lang") == lang
        assert page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth") <= 0, (lang, path)
        keep_screenshot(page, SCREENSHOTS / f"{lang}-{path.strip('/') or 'overview'}.png", full_page=True)
