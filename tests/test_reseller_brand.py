"""A reseller's brand (issue 18, item 4): set in its console at ``partners.<base-domain>/<reseller>/brand``,
shown by the workspaces it sells where their own settings say nothing, kept fixed for them if it
chooses, checked by the branding addon's own rules, and never shown by another reseller's workspaces."""

from __future__ import annotations

import re
import secrets

import pytest

from core.tenancy import load_tenant
from tests.support.identity import OWNER_PASSWORD, fetch_xsrf, post_form, sign_in
from tests.support.resellers import make_reseller, partner_sign_in

FORM = {"product_name": "", "mail_sender_name": "", "support_email": "", "colour_brand": "", "colour_text": "",
        "theme": ""}


@pytest.fixture
def sellers(platform, live_server):
    """Two resellers with a workspace each (made through their consoles), signed in."""
    made = []
    out = []
    for prefix in ("rb", "rc"):
        reseller = make_reseller(platform, prefix)
        console = partner_sign_in(live_server, reseller)
        slug = f"{prefix}-ws-{secrets.token_hex(3)}"
        fetch_xsrf(console, f"/{reseller.slug}")
        r = post_form(console, f"/{reseller.slug}", {"slug": slug, "name": "Customer Co",
                                                     "owner_email": f"owner@{slug}.example",
                                                     "owner_password": OWNER_PASSWORD})
        assert r.status_code == 302, r.text[:400]
        made.append(slug)
        out.append((reseller, console, slug))
    yield out
    for slug in made:
        try:
            platform.tenants.delete(slug)
        except Exception:
            pass


def set_brand(console, reseller, may_rebrand=True, **fields):
    fetch_xsrf(console, f"/{reseller.slug}/brand")
    form = dict(FORM, **fields)
    if may_rebrand:
        form["workspaces_may_rebrand"] = "1"
    return post_form(console, f"/{reseller.slug}/brand", form)


def title(page: str) -> str:
    return re.search(r"<title>([^<]*)</title>", page).group(1)


def test_a_reseller_s_brand_shows_in_its_workspaces_and_nowhere_else(live_server, sellers):
    (a, console_a, ws_a), (_b, _console_b, ws_b) = sellers
    assert console_a.get(f"/{a.slug}/brand").status_code == 200
    r = set_brand(console_a, a, product_name="Acme Texts", colour_brand="#202060", colour_text="#ffffff",
                  mail_sender_name="Acme Support", support_email="help@acme.example")
    assert r.status_code == 302 and r.headers["Location"] == f"/{a.slug}/brand"
    owner_a = sign_in(live_server, ws_a, f"owner@{ws_a}.example", OWNER_PASSWORD)
    page = owner_a.get("/").text
    assert title(page).endswith("Acme Texts") and "help@acme.example" in page
    sheet = re.search(r'href="(/brand/style\.css\?v=[0-9a-f]+)"', page).group(1)
    assert "--brand: #202060;" in owner_a.get(sheet).text
    # The other reseller's workspace keeps the platform's brand.
    owner_b = sign_in(live_server, ws_b, f"owner@{ws_b}.example", OWNER_PASSWORD)
    assert "Acme Texts" not in owner_b.get("/").text
    # The workspace's own setting wins over its reseller's.
    fetch_xsrf(owner_a, "/brand")
    assert post_form(owner_a, "/brand", dict(FORM, product_name="Own Name")).status_code == 303
    page = owner_a.get("/").text
    assert title(page).endswith("Own Name") and "Acme Texts" not in title(page)


def test_a_reseller_may_keep_its_customers_from_changing_the_brand(live_server, sellers):
    (a, console_a, ws_a), _ = sellers
    assert set_brand(console_a, a, may_rebrand=False, product_name="Fixed Brand").status_code == 302
    owner = sign_in(live_server, ws_a, f"owner@{ws_a}.example", OWNER_PASSWORD)
    page = owner.get("/brand")
    assert page.status_code == 200 and "managed by the company that provides it" in page.text
    fetch_xsrf(owner, "/brand")
    refused = post_form(owner, "/brand", dict(FORM, product_name="Mine"))
    assert refused.status_code == 403 and title(owner.get("/").text).endswith("Fixed Brand")
    # Allowing it again reaches the workspace at once (every process forgets the cached brand).
    assert set_brand(console_a, a, may_rebrand=True, product_name="Fixed Brand").status_code == 302
    fetch_xsrf(owner, "/brand")
    assert post_form(owner, "/brand", dict(FORM, product_name="Mine")).status_code == 303


@pytest.mark.parametrize("fields, message", [
    ({"colour_brand": "#ffffff", "colour_text": "#fefefe"}, "at least 4.5:1"),
    ({"colour_brand": "red; background:url(x)"}, "#rrggbb"),
    ({"support_email": "not an address"}, "e-mail address"),
    ({"theme": "../../etc"}, "Choose a theme from the list"),
    ({"mail_sender_name": "Evil <x@y>"}, "simple punctuation"),
    ({"product_name": "x" * 61}, "At most 60 characters"),
])
def test_bad_brand_fields_are_refused_with_a_reason_and_nothing_is_saved(platform, live_server, sellers, fields,
                                                                         message):
    (a, console_a, ws_a), _ = sellers
    assert set_brand(console_a, a, product_name="Kept Name").status_code == 302
    r = set_brand(console_a, a, product_name="Changed", **{k: v for k, v in fields.items() if k != "product_name"}) \
        if "product_name" not in fields else set_brand(console_a, a, **fields)
    assert r.status_code == 422 and message in r.text
    from addons.resellers import brand

    saved, _may = brand.of_reseller(a.id)
    assert saved["product_name"] == "Kept Name"
    owner = sign_in(live_server, ws_a, f"owner@{ws_a}.example", OWNER_PASSWORD)
    assert title(owner.get("/").text).endswith("Kept Name")


def test_support_people_cannot_change_the_brand_and_another_reseller_cannot_reach_it(platform, live_server, sellers):
    (a, _console_a, _ws_a), (b, console_b, _ws_b) = sellers
    support = make_reseller(platform, "rs", role="reseller_support")
    console_s = partner_sign_in(live_server, support)
    assert console_s.get(f"/{support.slug}/brand").status_code == 403
    # B's session is scoped to B's console: A's brand page is not B's to see or change.
    assert console_b.get(f"/{a.slug}/brand").status_code in (302, 401, 403, 404)
    fetch_xsrf(console_b, f"/{b.slug}/brand")
    r = post_form(console_b, f"/{a.slug}/brand", dict(FORM, product_name="Hijacked", workspaces_may_rebrand="1"))
    assert r.status_code in (302, 401, 403, 404)
    from addons.resellers import brand

    assert brand.of_reseller(a.id)[0]["product_name"] == ""
    assert load_tenant(_ws_a) is not None
