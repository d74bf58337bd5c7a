"""White label in Chromium, at desktop and phone sizes: the owner brands the workspace on the
Brand page (name, colours, the dark theme, a logo), and every page of the workspace then shows the
brand (top bar, logo, colours, browser title), with no CSP violation and no serious axe finding."""

from __future__ import annotations

import struct
import zlib

import pytest

from tests.support.browser import address, chromium, new_page, page_problems, server, sign_in_owner, submit  # noqa: F401
from tests.test_browser_layout import VIEWPORTS, horizontal_scroll, run_axe

pytestmark = pytest.mark.browser
ACME_BLUE = "rgb(26, 61, 107)"  # #1a3d6b, the colour the owner chooses below


def png_logo(tmp_path) -> str:
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + b"\xff\xd2\x3f" * 96 for _ in range(32))
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 96, 32, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    path = tmp_path / "acme.png"
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_the_owner_brands_the_workspace_and_its_pages_show_the_brand(server, make_tenant, new_page, tmp_path,
                                                                     viewport):
    tenant = make_tenant("look")
    page = new_page()
    page.set_viewport_size(VIEWPORTS[viewport])
    sign_in_owner(page, server, tenant)
    page.goto(address(server, tenant.slug, "/brand"))
    assert page.title() == "Brand · SMS Gateway"
    assert horizontal_scroll(page) <= 0 and run_axe(page) == []

    page.fill("#f-product_name", "Acme Texts")
    page.fill("#f-colour_brand", "#1a3d6b")
    page.fill("#f-colour_text", "#ffffff")
    submit(page)
    assert "Saved." in page.inner_text(".flash")
    assert page.title() == "Brand · Acme Texts"
    assert "Acme Texts" in page.inner_text(".brand")
    assert page.eval_on_selector(".topbar", "el => getComputedStyle(el).backgroundColor") == ACME_BLUE

    page.set_input_files("#f-logo", png_logo(tmp_path))
    submit(page, "#logo form button[type=submit]")
    assert "The logo was saved." in page.inner_text(".flash")
    logo = page.locator(".topbar img.brand-logo")
    assert logo.is_visible() and page.evaluate("document.querySelector('.topbar img.brand-logo').naturalWidth") == 96

    for path in ("/", "/messages", "/team", "/no-such-page"):
        response = page.goto(address(server, tenant.slug, path))
        assert response.status == (404 if path == "/no-such-page" else 200)
        assert page.title().endswith("Acme Texts"), page.title()
        assert "SMS Gateway" not in page.content()
        assert page.locator(".topbar img.brand-logo").is_visible()
        assert horizontal_scroll(page) <= 0
    assert page_problems(page, allow=["404"]) == []


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_the_dark_theme_and_an_unreadable_colour_in_the_browser(server, make_tenant, new_page, viewport):
    tenant = make_tenant("dark")
    page = new_page()
    page.set_viewport_size(VIEWPORTS[viewport])
    sign_in_owner(page, server, tenant)
    page.goto(address(server, tenant.slug, "/brand"))
    page.select_option("#f-theme", "contrast")
    page.fill("#f-colour_brand", "#777777")
    page.fill("#f-colour_text", "#888888")
    response = submit(page)
    assert response.status == 422
    error = page.inner_text("#e-colour_brand")
    assert "contrast of 1.3:1" in error and page.get_attribute("#f-colour_brand", "aria-invalid") == "true"
    page.fill("#f-colour_brand", "")
    page.fill("#f-colour_text", "")
    submit(page)
    assert page.eval_on_selector("body", "el => getComputedStyle(el).backgroundColor") == "rgb(11, 13, 16)"
    for path in ("/brand", "/", "/devices"):
        page.goto(address(server, tenant.slug, path))
        assert horizontal_scroll(page) <= 0 and run_axe(page) == [], path
    assert page_problems(page, allow=["422"]) == []
