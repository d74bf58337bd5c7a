"""A reseller's logo (issue 18): uploaded on its console's brand page, checked by the branding
addon's own validators (a PNG re-written from its image chunks, an SVG rebuilt from an allow-list),
shown on its console and on its customers' workspaces unless a workspace uploaded its own; hostile
files refused with the reason and nothing changed; another reseller cannot reach it."""

from __future__ import annotations

import re

import pytest

from addons.branding import logo as logos
from addons.resellers import brand
from tests.support.identity import OWNER_PASSWORD, fetch_xsrf, post_form, sign_in
from tests.support.resellers import make_reseller, partner_sign_in
from tests.test_branding import HOSTILE, SVG, png
from tests.test_reseller_brand import sellers  # noqa: F401  (the fixture)


def upload(console, reseller, data: bytes, name: str = "logo.png", kind: str = "image/png"):
    fetch_xsrf(console, f"/{reseller.slug}/brand")
    return post_form(console, f"/{reseller.slug}/brand/logo", {}, files={"logo": (name, data, kind)})


def logo_src(page: str) -> str | None:
    found = re.search(r'<img class="brand-logo" src="([^"]+)"', page)
    return found.group(1) if found else None


def test_the_reseller_s_logo_shows_on_its_console_and_its_customers_workspaces(live_server, sellers):  # noqa: F811
    (a, console_a, ws_a), (_b, _console_b, ws_b) = sellers
    assert logo_src(console_a.get(f"/{a.slug}").text) is None
    r = upload(console_a, a, png(text=b"<script>alert(1)</script>"))
    assert r.status_code == 303 and r.headers["Location"] == f"/{a.slug}/brand"
    # The console shows it, served as an image under a sandbox, with no text chunk of the upload.
    src = logo_src(console_a.get(f"/{a.slug}").text)
    assert src and src.startswith(f"/{a.slug}/brand/logo?v=")
    served = console_a.get(src)
    assert served.status_code == 200 and served.headers["Content-Type"] == "image/png"
    assert "sandbox" in served.headers["Content-Security-Policy"] and b"<script>" not in served.content
    assert served.content == logos.png(png(text=b"<script>alert(1)</script>"))
    # The sign-in page (no session) shows it too.
    from tests.support.identity import client

    assert logo_src(client(live_server, "partners").get(f"/{a.slug}/login").text) == src
    # Its customer's workspace shows it, from the workspace's own host.
    owner_a = sign_in(live_server, ws_a, f"owner@{ws_a}.example", OWNER_PASSWORD)
    ws_src = logo_src(owner_a.get("/").text)
    assert ws_src and ws_src.startswith("/brand/logo?v=r")
    assert owner_a.get(ws_src).content == served.content
    # Another reseller's workspace does not.
    owner_b = sign_in(live_server, ws_b, f"owner@{ws_b}.example", OWNER_PASSWORD)
    assert logo_src(owner_b.get("/").text) is None and owner_b.get("/brand/logo").status_code == 404
    # An SVG replaces it (a new address), rebuilt without the comment.
    assert upload(console_a, a, SVG, "logo.svg", "image/svg+xml").status_code == 303
    src2 = logo_src(console_a.get(f"/{a.slug}").text)
    assert src2 != src and console_a.get(src2).headers["Content-Type"] == "image/svg+xml"
    assert b"made by hand" not in console_a.get(src2).content
    assert owner_a.get(logo_src(owner_a.get("/").text)).headers["Content-Type"] == "image/svg+xml"


def test_a_workspace_s_own_logo_wins_over_its_reseller_s(live_server, sellers):  # noqa: F811
    (a, console_a, ws_a), _ = sellers
    assert upload(console_a, a, png()).status_code == 303
    owner = sign_in(live_server, ws_a, f"owner@{ws_a}.example", OWNER_PASSWORD)
    fetch_xsrf(owner, "/brand")
    own = png(48, 48)
    assert post_form(owner, "/brand/logo", {}, files={"logo": ("own.png", own, "image/png")}).status_code == 303
    src = logo_src(owner.get("/").text)
    assert src.startswith("/brand/logo?v=") and not src.startswith("/brand/logo?v=r")
    assert owner.get(src).content == logos.png(own)
    # Removing its own brings the reseller's back.
    assert post_form(owner, "/brand/logo", {"action": "remove"}).status_code == 303
    assert owner.get(logo_src(owner.get("/").text)).content == logos.png(png())


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_logos_are_refused_with_the_reason_and_the_old_logo_stays(sellers, name):  # noqa: F811
    (a, console_a, _ws), _ = sellers
    assert upload(console_a, a, png()).status_code == 303
    before = brand.logo(a.id)
    data, says = HOSTILE[name]
    r = upload(console_a, a, data, "logo.svg", "image/svg+xml")
    assert r.status_code == 422, (r.status_code, r.text[:300])
    error = re.search(r'<p class="field-error" id="e-logo" role="alert">([^<]*)</p>', r.text).group(1)
    assert says in error.replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'"), error
    assert brand.logo(a.id) == before


def test_support_people_and_another_reseller_cannot_change_the_logo(platform, live_server, sellers):  # noqa: F811
    (a, console_a, _ws), (b, console_b, _ws_b) = sellers
    support = make_reseller(platform, "rl", role="reseller_support")
    console_s = partner_sign_in(live_server, support)
    fetch_xsrf(console_s, f"/{support.slug}")
    r = post_form(console_s, f"/{support.slug}/brand/logo", {}, files={"logo": ("x.png", png(), "image/png")})
    assert r.status_code == 403 and brand.logo(support.id) is None
    # B's session posting to A's console: no session there, nothing stored; A's removal likewise.
    fetch_xsrf(console_b, f"/{b.slug}/brand")
    r = post_form(console_b, f"/{a.slug}/brand/logo", {}, files={"logo": ("x.png", png(), "image/png")})
    assert r.status_code in (302, 401, 403, 404) and brand.logo(a.id) is None
    assert upload(console_a, a, png()).status_code == 303
    r = post_form(console_b, f"/{a.slug}/brand/logo", {"action": "remove"})
    assert r.status_code in (302, 401, 403, 404) and brand.logo(a.id) is not None
    # Nothing of B's: B has no logo to serve.
    assert console_b.get(f"/{b.slug}/brand/logo").status_code == 404
