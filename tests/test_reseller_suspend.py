"""Suspending a reseller from the platform Admin's console (issue 18): with a written reason,
audited; its console refuses every sign-in and every open session at once, saying why; its
customers' workspaces keep working with its brand (README, "Suspending a reseller"); resuming
lets its people sign in again (their old sessions stay ended)."""

from __future__ import annotations

import secrets

import pytest

from addons.resellers import service
from core.admins import create_admin
from tests.support.identity import (OWNER_PASSWORD, admin_sign_in, audit_rows, client, fetch_xsrf, post_form,
                                    sign_in)
from tests.support.resellers import PARTNER_PASSWORD, make_reseller, partner_email, partner_sign_in

ADMIN_PASSWORD = "an operator's long password"
REASON = "Invoices W-000012 and W-000015 unpaid <b>since</b> October"


@pytest.fixture
def ops(platform, live_server):
    admin = create_admin(platform, f"ops-{secrets.token_hex(4)}@platform.example", ADMIN_PASSWORD, "Ops")
    return admin_sign_in(live_server, admin.email, ADMIN_PASSWORD)


@pytest.fixture
def seller(platform, live_server):
    reseller = make_reseller(platform, "sus")
    console = partner_sign_in(live_server, reseller)
    slug = f"sus-ws-{secrets.token_hex(3)}"
    service.create_workspace(platform, reseller, slug, "Customer Co", f"owner@{slug}.example", OWNER_PASSWORD)
    from addons.resellers import brand

    assert brand.save(reseller.id, {"product_name": "Partner Texts"}, True) == {}
    yield reseller, console, slug
    platform.tenants.delete(slug)


def suspend(ops, reseller, reason=REASON):
    fetch_xsrf(ops, f"/admin/resellers/{reseller.slug}")
    return post_form(ops, f"/admin/resellers/{reseller.slug}", {"action": "suspend", "reason": reason})


@pytest.mark.parametrize("reason", ["", "too short", " " * 40])
def test_a_suspension_needs_a_written_reason(ops, seller, reason):
    reseller, console, _slug = seller
    r = suspend(ops, reseller, reason)
    assert r.status_code == 422 and "Write why the reseller is suspended" in r.text
    assert service.get(reseller.slug).is_active and console.get(f"/{reseller.slug}").status_code == 200


def test_a_suspended_reseller_s_console_refuses_sign_in_and_its_workspaces_keep_working(platform, live_server, ops,
                                                                                         seller):
    reseller, console, slug = seller
    page = ops.get(f"/admin/resellers/{reseller.slug}")
    assert page.status_code == 200 and 'value="suspend"' in page.text
    r = suspend(ops, reseller)
    assert r.status_code == 302
    assert service.get(reseller.slug).status == "suspended"
    event = audit_rows(platform, action="admin.reseller_suspend")[-1]
    assert event["target"] == f"reseller:{reseller.slug}" and event["reason"] == REASON
    # The open session is over at once, with the reason said (escaped).
    refused = console.get(f"/{reseller.slug}")
    assert refused.status_code == 403 and "is suspended by the platform operator" in refused.text
    assert "unpaid &lt;b&gt;since&lt;/b&gt; October" in refused.text and "<b>since" not in refused.text
    # Signing in is refused with the same clear message, even with the right password.
    fresh = client(live_server, "partners")
    page = fresh.get(f"/{reseller.slug}/login")
    assert page.status_code == 403 and "is suspended" in page.text
    fetch_xsrf(fresh, f"/{make_reseller(platform, 'suo').slug}/login")  # a form's token from an active console
    r = post_form(fresh, f"/{reseller.slug}/login", {"email": partner_email(reseller), "password": PARTNER_PASSWORD})
    assert r.status_code == 403 and "is suspended" in r.text and not fresh.cookies.get("smsgw_partner")
    # Its customers keep working, with its brand.
    owner = sign_in(live_server, slug, f"owner@{slug}.example", OWNER_PASSWORD)
    home = owner.get("/")
    assert home.status_code == 200 and "Partner Texts" in home.text
    # The Admin's page says why; resuming lets its people sign in again (the old session stays ended).
    assert "unpaid &lt;b&gt;since&lt;/b&gt; October" in ops.get(f"/admin/resellers/{reseller.slug}").text
    assert post_form(ops, f"/admin/resellers/{reseller.slug}", {"action": "resume"}).status_code == 302
    assert service.get(reseller.slug).is_active and service.get(reseller.slug).status_reason == ""
    assert audit_rows(platform, action="admin.reseller_resume")[-1]["target"] == f"reseller:{reseller.slug}"
    assert console.get(f"/{reseller.slug}").status_code == 302  # to the sign-in page
    assert partner_sign_in(live_server, reseller).get(f"/{reseller.slug}").status_code == 200


def test_only_the_platform_admin_suspends_a_reseller(platform, live_server, seller):
    reseller, console, _slug = seller
    other = make_reseller(platform, "sut")
    # A reseller's console session is no Admin session: the Admin's page is not its.
    r = console.get(f"/admin/resellers/{other.slug}")
    assert r.status_code in (302, 400, 401, 403, 404)
    anonymous = client(live_server)
    fetch_xsrf(anonymous, "/login") if anonymous.get("/login").status_code == 200 else None
    r = post_form(anonymous, f"/admin/resellers/{other.slug}", {"action": "suspend", "reason": REASON})
    assert r.status_code in (302, 401, 403) and service.get(other.slug).is_active


def test_a_suspended_reseller_cannot_create_workspaces(platform, ops, seller):
    reseller, _console, _slug = seller
    assert suspend(ops, reseller).status_code == 302
    with pytest.raises(service.ResellerError):
        service.create_workspace(platform, service.get(reseller.slug), f"sus-x-{secrets.token_hex(3)}", "X",
                                 "o@x.example", OWNER_PASSWORD)
