"""Addons for resellers: the operator makes an installed addon available to a reseller; the reseller
enables it for some of its workspaces through the same path as ``smsgw addons enable``, workspace by
workspace, with each outcome shown. The example addon ``tests/fixtures/hello_addon`` goes through it
installed by pip into a second ``smsgw serve`` process."""

from __future__ import annotations

import re
import secrets

from addons.resellers import service
from core.tenancy import load_tenant
from tests.support.identity import OWNER_PASSWORD, admin_sql, audit_rows, client, post_form, sign_in, smsgw
from tests.support.resellers import hello_server, make_reseller, partner_sign_in, wait_for_status  # noqa: F401


def make_workspace(c, reseller, prefix):
    slug = f"{prefix}-{secrets.token_hex(3)}"
    r = post_form(c, f"/{reseller.slug}", {"slug": slug, "name": f"Customer {slug}", "owner_email": f"owner@{slug}.example",
                                          "owner_password": OWNER_PASSWORD})
    assert r.status_code == 302, r.text[:400]
    return slug


def outcomes(page: str) -> dict:
    """The outcome page's ``{workspace: "done" | "failed"}``."""
    return {slug: result for result, slug in re.findall(r'<li class="(done|failed)" data-slug="([a-z0-9-]+)"', page)}


def test_hello_is_enabled_by_reseller_a_for_one_workspace_only(platform, hello_server):
    a, b = make_reseller(platform, "ra"), make_reseller(platform, "rb")
    allowed = smsgw(hello_server.env, "reseller", "addon-allow", a.slug, "hello")
    assert allowed.returncode == 0, allowed.stderr
    a_console, b_console = partner_sign_in(hello_server, a), partner_sign_in(hello_server, b)
    a1, a2, a3 = (make_workspace(a_console, a, p) for p in ("a1", "a2", "a3"))
    b1 = make_workspace(b_console, b, "b1")
    try:
        # B is offered nothing, and asking for hello by name is a 404 that changes nothing.
        b_page = b_console.get(f"/{b.slug}/addons")
        assert b_page.status_code == 200 and 'data-addon="hello"' not in b_page.text
        r = post_form(b_console, f"/{b.slug}/addons", {"addon": "hello", "action": "enable", "workspace": b1})
        assert r.status_code == 404
        # A enables it for a1 only.
        page = a_console.get(f"/{a.slug}/addons")
        assert 'data-addon="hello"' in page.text
        r = post_form(a_console, f"/{a.slug}/addons", {"addon": "hello", "action": "enable", "workspace": a1})
        assert r.status_code == 200 and outcomes(r.text) == {a1: "done"}, r.text[-1500:]
        hello = {slug: client(hello_server, slug) for slug in (a1, a2, a3, b1)}
        assert wait_for_status(hello[a1], "/hello", 200).status_code == 200
        assert "Hello from a third-party addon to Customer " + a1 in hello[a1].get("/hello").text
        for slug in (a2, a3, b1):
            assert hello[slug].get("/hello").status_code == 404, slug
        assert load_tenant(a1).enabled_addons >= {"hello"} and "hello" not in load_tenant(a2).enabled_addons
        # Recorded in the workspace's own trail, by the reseller's person.
        row = audit_rows(platform, tenant_id=load_tenant(a1).id, action="reseller.addon_enabled")[-1]
        assert row["actor"].startswith("reseller:") and row["target"] == "addon:hello"
        # A's workspace whose messaging is off cannot take hello (it depends on messaging): that one
        # fails with the reason, the others are done.
        a3_id = load_tenant(a3).id
        admin_sql(platform, "UPDATE public.tenant_addon SET enabled = false WHERE tenant_id = %s AND addon = 'messaging'",
                  (a3_id,))
        r = post_form(a_console, f"/{a.slug}/addons", {"addon": "hello", "action": "enable", "workspace": [a2, a3]})
        assert r.status_code == 422
        assert outcomes(r.text) == {a2: "done", a3: "failed"}
        assert "Enable messaging first" in r.text and "1 of 2 workspaces done." in r.text
        assert "hello" not in load_tenant(a3).enabled_addons
        # A workspace of B's in A's list: refused before anything changed.
        r = post_form(a_console, f"/{a.slug}/addons", {"addon": "hello", "action": "disable", "workspace": [a1, b1]})
        assert r.status_code == 404 and "hello" in load_tenant(a1).enabled_addons
        # Disabling "all" takes it away again.
        r = post_form(a_console, f"/{a.slug}/addons", {"addon": "hello", "action": "disable", "all": "1"})
        assert r.status_code == 200 and set(outcomes(r.text)) == {a1, a2, a3}
        assert wait_for_status(hello[a1], "/hello", 404).status_code == 404
        # The Customer saw the addon's page only while it was enabled; B never did.
        owner = sign_in(hello_server, b1, f"owner@{b1}.example")
        assert owner.get("/hello").status_code == 404
    finally:
        for slug in (a1, a2, a3, b1):
            platform.tenants.delete(slug)


def test_operator_withdraws_an_addon_and_the_reseller_can_no_longer_enable_it(platform, hello_server):
    a = make_reseller(platform, "rw")
    assert smsgw(hello_server.env, "reseller", "addon-allow", a.slug, "hello").returncode == 0
    assert smsgw(hello_server.env, "reseller", "addon-withdraw", a.slug, "hello").returncode == 0
    c = partner_sign_in(hello_server, a)
    slug = make_workspace(c, a, "w1")
    try:
        r = post_form(c, f"/{a.slug}/addons", {"addon": "hello", "action": "enable", "workspace": slug})
        assert r.status_code == 404 and "hello" not in load_tenant(slug).enabled_addons
        assert service.available_addons(a) == []
    finally:
        platform.tenants.delete(slug)
