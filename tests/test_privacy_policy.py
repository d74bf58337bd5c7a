"""The privacy page (issue 15, item 7): ``/privacy`` in every shipped language on the base domain
and in a workspace, linked from every page's footer and from the sign-up form (acceptance recorded
with the policy version), and a changed version asks signed-in people to acknowledge it.

A version change is made as an operator makes it: a theme with its own policy template, whose
front matter is then edited on disk.
"""

from __future__ import annotations

import re
import secrets
import shutil
from pathlib import Path

import pytest

from addons.privacy import policy
from core.db import connection
from tests.support.identity import (audit_rows, admin_sql, client, fetch_xsrf, fresh_ip, owner_email, post_form,
                                    sign_in, signup_acceptance)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "themes" / "default" / "templates" / "privacy" / "policy"
TITLES = {"en": "Privacy policy", "de": "Datenschutzerklärung", "fr": "Politique de confidentialité",
          "es": "Política de privacidad"}
PASSWORD = "a long enough password"


def shipped_version() -> str:
    return policy.VERSION.search((SHIPPED / "en.html").read_text().split("\n", 1)[0]).group(1)


def acceptances(platform, tenant_id):
    return admin_sql(platform, "SELECT subject, version, how FROM public.privacy_policy_acceptance "
                               "WHERE tenant_id = %s ORDER BY id", (tenant_id,), fetch=True)


def test_every_shipped_language_has_the_policy_with_one_version():
    assert sorted(p.stem for p in SHIPPED.glob("*.html")) == sorted(TITLES)
    versions = {p.stem: policy.VERSION.search(p.read_text().split("\n", 1)[0]) for p in SHIPPED.glob("*.html")}
    assert all(versions.values()), "each translation states its version on its first line"
    assert {m.group(1) for m in versions.values()} == {shipped_version()}


@pytest.mark.parametrize("where", ["base domain", "workspace"])
@pytest.mark.parametrize("lang", sorted(TITLES))
def test_the_privacy_page_renders_in_each_language(live_server, make_tenant, where, lang):
    slug = make_tenant("pol").slug if where == "workspace" else None
    c = client(live_server, slug)
    c.cookies.set("lang", lang)
    r = c.get("/privacy")
    assert r.status_code == 200, r.text[:300]
    assert f"<h1>{TITLES[lang]}</h1>" in r.text and f'lang="{lang}"' in r.text
    assert f'data-policy-version="{shipped_version()}"' in r.text
    assert live_server.platform.settings.privacy_address in r.text
    assert 'action="/privacy/contact"' in r.text
    # The Jinja front matter is not shown, and the page is the policy, not the template source.
    assert "policy-version:" not in r.text and "{{" not in r.text


def test_the_privacy_address_is_a_setting(test_env):
    from core.config import ConfigError, Settings

    assert Settings.from_env(dict(test_env)).privacy_address == "privacy@localhost"
    assert Settings.from_env({**test_env, "SMSGW_PRIVACY_EMAIL": "dpo@example.com"}).privacy_address == "dpo@example.com"
    for bad in ("not-an-address", "a@b@c", "x@y, z@w"):
        with pytest.raises(ConfigError, match="SMSGW_PRIVACY_EMAIL"):
            Settings.from_env({**test_env, "SMSGW_PRIVACY_EMAIL": bad})


def footer_links_privacy(html: str) -> bool:
    footer = html.split('<footer class="footer">', 1)[1]
    return 'href="/privacy"' in footer


def test_every_page_links_the_policy_in_its_footer(platform, live_server, make_tenant):
    tenant = make_tenant("foot")
    base = client(live_server, None)
    for path in ("/", "/signup", "/admin/login", "/privacy", "/no-such-page"):
        r = base.get(path)
        assert r.status_code in (200, 404) and footer_links_privacy(r.text), path
    anon = client(live_server, tenant.slug)
    for path in ("/login", "/forgot-password", "/privacy"):
        r = anon.get(path)
        assert r.status_code == 200 and footer_links_privacy(r.text), path
    owner = sign_in(live_server, tenant.slug, owner_email(tenant))
    for path in ("/", "/account", "/account/privacy", "/team", "/tokens", "/no-such-page"):
        r = owner.get(path)
        assert r.status_code in (200, 404) and footer_links_privacy(r.text), path
    # ... and the privacy settings page links it in its text too.
    assert 'href="/privacy"' in owner.get("/account/privacy").text.split('<footer')[0]


def signup(live_server, slug, fields):
    c = client(live_server, None, fresh_ip())
    fetch_xsrf(c, "/signup")
    return post_form(c, "/signup", {"company": "Policy Readers", "slug": slug, "email": f"owner@{slug}.example",
                                    "password": PASSWORD, **fields}), c


@pytest.fixture
def signed_up(platform):
    slugs = []
    yield slugs
    for slug in slugs:
        try:
            platform.tenants.delete(slug)
        except Exception:
            pass


def test_sign_up_links_the_policy_and_records_its_acceptance_with_the_version(platform, live_server, signed_up):
    form = client(live_server, None).get("/signup").text
    assert 'href="/privacy"' in form.split("<footer")[0]
    assert f'name="privacy_version" value="{shipped_version()}"' in form

    slug = f"nopol-{secrets.token_hex(3)}"
    r, c = signup(live_server, slug, {})
    assert r.status_code == 422 and "tick the box" in r.text
    assert platform.tenant_cache.loader(slug) is None
    r, c = signup(live_server, slug, {"accept_privacy": "yes", "privacy_version": "1999-01-01"})
    assert r.status_code == 422 and "changed while you were signing up" in r.text
    assert platform.tenant_cache.loader(slug) is None

    slug = f"pol-{secrets.token_hex(3)}"
    signed_up.append(slug)
    c = client(live_server, None, fresh_ip())
    fetch_xsrf(c, "/signup")
    r = post_form(c, "/signup", {"company": "Policy Readers", "slug": slug, "email": f"owner@{slug}.example",
                                 "password": PASSWORD, **signup_acceptance(c)})
    assert r.status_code == 302, r.text[:500]
    tenant = platform.tenant_cache.loader(slug)
    assert acceptances(platform, tenant.id) == [("user:1", shipped_version(), "signup")]
    with connection():
        assert policy.accepted_version(tenant.id, "user:1") == shipped_version()
    [event] = audit_rows(platform, tenant.id, "privacy.policy_accepted")
    assert event["details"]["version"] == shipped_version() and event["ip"]


@pytest.fixture
def own_theme(platform, make_tenant):
    """A workspace whose theme carries its own copy of the policy (removed afterwards)."""
    name = f"tpol{secrets.token_hex(3)}"
    folder = ROOT / "themes" / name
    shutil.copytree(SHIPPED, folder / "templates" / "privacy" / "policy")
    tenant = make_tenant("ack")
    admin_sql(platform, "UPDATE public.tenant SET theme = %s WHERE id = %s", (name, tenant.id))
    platform.tenant_cache.invalidate(tenant.slug)
    try:
        yield tenant, folder / "templates" / "privacy" / "policy" / "en.html"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def set_version(path: Path, version: str) -> None:
    first, rest = path.read_text().split("\n", 1)
    path.write_text(policy.VERSION.sub("{#- policy-version: %s -#}" % version, first) + "\n" + rest)


def notice(html: str) -> str | None:
    found = re.search(r'<div class="page-notice policy-notice".*?</div>', html, re.S)
    return found.group(0) if found else None


def test_a_new_policy_version_asks_signed_in_people_to_acknowledge_it(platform, live_server, own_theme):
    tenant, template = own_theme
    set_version(template, "2027-01-01")
    owner = sign_in(live_server, tenant.slug, owner_email(tenant))
    # Never acknowledged anything (created before the policy): asked, on every page.
    for path in ("/", "/account"):
        shown = notice(owner.get(path).text)
        assert shown and "2027-01-01" in shown and 'action="/privacy/acknowledge"' in shown
    assert acceptances(platform, tenant.id) == []
    # No forged acknowledgement: without the form token, or for a version not shown, nothing is recorded.
    r = owner.post("/privacy/acknowledge", data={"version": "2027-01-01", "next": "/account"})
    assert r.status_code == 403
    r = post_form(owner, "/privacy/acknowledge", {"version": "2026-01-01", "next": "/account"})
    assert r.status_code == 409 and acceptances(platform, tenant.id) == []

    r = post_form(owner, "/privacy/acknowledge", {"version": "2027-01-01", "next": "/account"})
    assert r.status_code == 303 and r.headers["Location"] == "/account"
    assert acceptances(platform, tenant.id) == [("user:1", "2027-01-01", "acknowledged")]
    assert notice(owner.get("/").text) is None
    [event] = audit_rows(platform, tenant.id, "privacy.policy_acknowledged")
    assert event["details"]["version"] == "2027-01-01"
    # Another browser of the same person is not asked again (the record, not only a cookie, counts).
    policy._last_seen.clear()  # as in another web process
    other_browser = sign_in(live_server, tenant.slug, owner_email(tenant))
    assert notice(other_browser.get("/").text) is None

    # The operator raises the version: everyone is asked again, the new acknowledgement recorded.
    set_version(template, "2027-02-01")
    policy._last_seen.clear()  # what another web process would hold: nothing cached yet
    shown = notice(owner.get("/").text)
    assert shown and "2027-02-01" in shown
    assert 'data-policy-version="2027-02-01"' in owner.get("/privacy").text
    assert post_form(owner, "/privacy/acknowledge", {"version": "2027-02-01", "next": "/"}).status_code == 303
    assert acceptances(platform, tenant.id)[-1] == ("user:1", "2027-02-01", "acknowledged")
    assert notice(owner.get("/").text) is None
    # An unsafe "next" goes home, not elsewhere.
    set_version(template, "2027-03-01")
    r = post_form(owner, "/privacy/acknowledge", {"version": "2027-03-01", "next": "//evil.example/"})
    assert r.status_code == 303 and r.headers["Location"] == "/"
    # Visitors who are not signed in are never asked.
    assert notice(client(live_server, tenant.slug).get("/login").text) is None


def test_a_theme_without_its_own_policy_shows_the_default_one(platform, live_server, make_tenant):
    tenant = make_tenant("ocean")
    admin_sql(platform, "UPDATE public.tenant SET theme = 'ocean' WHERE id = %s", (tenant.id,))
    platform.tenant_cache.invalidate(tenant.slug)
    r = client(live_server, tenant.slug).get("/privacy")
    assert r.status_code == 200 and "Ocean SMS" in r.text and "<h1>Privacy policy</h1>" in r.text
    assert f'data-policy-version="{shipped_version()}"' in r.text and footer_links_privacy(r.text)
