"""Rectification (issue 15, item 4): Customers correct the company's details, members their own;
a new sign-in address is used only once confirmed from it. Each change is audited; bad input
changes nothing. Over HTTP against the live server; outcomes read from the database."""

from __future__ import annotations

import pytest

from core.db import tenant_transaction
from core.users import User
from tests.support.identity import (OWNER_PASSWORD, add_user, admin_sql, audit_rows, fetch_xsrf, fresh_ip,
                                    owner_email, post_form, sign_in)
from tests.test_email_change import confirm, new_address, requested

USER_PASSWORD = "the member's own password"
DETAILS = {"name": "Renamed Trading Ltd", "contact_name": "Carla Contact", "contact_email": "billing@renamed.example",
           "contact_phone": "+44 20 7946 0000", "billing_address": "1 High Street\nLondon EC1A 1AA", "vat_id": "GB123"}


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("rect", name="Original Name Ltd")


def company_row(platform, tenant):
    rows = admin_sql(platform, "SELECT contact_name, contact_email, contact_phone, billing_address, vat_id "
                               "FROM public.tenant_contact WHERE tenant_id = %s", (tenant.id,), fetch=True)
    return rows[0] if rows else None


def post_details(c, **fields):
    fetch_xsrf(c, "/account/privacy")
    return post_form(c, "/account/privacy", {"section": "company-details", **DETAILS, **fields})


def test_the_customer_corrects_the_company_name_contact_and_billing_address(platform, live_server, tenant):
    c = sign_in(live_server, tenant.slug, owner_email(tenant), ip=fresh_ip())
    r = post_details(c)
    assert r.status_code == 303, r.text[:300]
    assert platform.tenants.get(tenant.slug).name == DETAILS["name"]
    assert company_row(platform, tenant) == ("Carla Contact", "billing@renamed.example", "+44 20 7946 0000",
                                             "1 High Street\nLondon EC1A 1AA", "GB123")
    page = c.get("/account/privacy").text
    assert 'value="Renamed Trading Ltd"' in page and "1 High Street" in page
    [event] = audit_rows(platform, tenant.id, "tenant.details_changed")
    assert event["actor"] == "user:1"
    assert set(event["details"]["fields"]) == {"name", "contact_name", "contact_email", "contact_phone",
                                               "billing_address", "vat_id"}
    # the same details again: nothing changes, nothing is recorded
    assert post_details(c).status_code == 303
    assert len(audit_rows(platform, tenant.id, "tenant.details_changed")) == 1
    r = post_details(c, billing_address="2 Low Road")
    assert company_row(platform, tenant)[3] == "2 Low Road"
    assert audit_rows(platform, tenant.id, "tenant.details_changed")[-1]["details"]["fields"] == ["billing_address"]


@pytest.mark.parametrize("fields", [{"name": ""}, {"name": "x" * 201}, {"contact_email": "not an address"},
                                    {"contact_phone": "call me maybe"}, {"vat_id": "V" * 41}])
def test_bad_company_details_change_nothing(platform, live_server, tenant, fields):
    c = sign_in(live_server, tenant.slug, owner_email(tenant), ip=fresh_ip())
    r = post_details(c, **fields)
    assert r.status_code == 422
    assert platform.tenants.get(tenant.slug).name == "Original Name Ltd"
    assert company_row(platform, tenant) is None
    assert not audit_rows(platform, tenant.id, "tenant.details_changed")


def test_a_member_cannot_change_the_company_details(platform, live_server, tenant):
    add_user(platform, tenant, f"member@{tenant.slug}.example", USER_PASSWORD)
    c = sign_in(live_server, tenant.slug, f"member@{tenant.slug}.example", USER_PASSWORD, ip=fresh_ip())
    assert 'id="company-details-form"' not in c.get("/account/privacy").text
    assert post_details(c).status_code == 422
    assert platform.tenants.get(tenant.slug).name == "Original Name Ltd"
    assert company_row(platform, tenant) is None
    # a CSRF-less post from the Customer's browser changes nothing either
    owner = sign_in(live_server, tenant.slug, owner_email(tenant), ip=fresh_ip())
    fetch_xsrf(owner, "/account/privacy")
    assert owner.post("/account/privacy", data={"section": "company-details", **DETAILS}).status_code == 403
    assert platform.tenants.get(tenant.slug).name == "Original Name Ltd"


def test_a_member_corrects_their_own_details_and_the_change_is_audited(platform, live_server, tenant):
    addr = f"member@{tenant.slug}.example"
    uid = add_user(platform, tenant, addr, USER_PASSWORD)
    c = sign_in(live_server, tenant.slug, addr, USER_PASSWORD, ip=fresh_ip())
    assert 'href="/account"' in c.get("/account/privacy").text
    r = post_form(c, "/account", {"action": "profile", "name": "Mia Member", "email": addr, "phone": "+49 30 555",
                                  "job_title": "Dispatcher"})
    assert r.status_code == 302
    with tenant_transaction(tenant.ref):
        user = User.get_by_id(uid)
    assert (user.name, user.phone, user.job_title) == ("Mia Member", "+49 30 555", "Dispatcher")
    [event] = audit_rows(platform, tenant.id, "profile.updated")
    assert event["actor"] == f"user:{uid}" and set(event["details"]["fields"]) == {"name", "phone", "job_title"}
    r = post_form(c, "/account", {"action": "profile", "name": "Mia Member", "email": addr, "phone": "not a phone",
                                  "job_title": "Boss"})
    assert r.status_code == 422
    with tenant_transaction(tenant.ref):
        assert User.get_by_id(uid).job_title == "Dispatcher"
    assert len(audit_rows(platform, tenant.id, "profile.updated")) == 1


def test_a_new_address_is_used_only_once_confirmed_from_it(platform, live_server, tenant):
    new = new_address(tenant)
    _c, confirm_token, _undo = requested(live_server, platform, tenant, new)
    with tenant_transaction(tenant.ref):
        assert User.get_by_id(1).email == owner_email(tenant)
    assert confirm(live_server, tenant, confirm_token).status_code in (200, 302)
    with tenant_transaction(tenant.ref):
        assert User.get_by_id(1).email == new
    actions = [r["action"] for r in audit_rows(platform, tenant.id)]
    assert "email.change_requested" in actions and "email.changed" in actions
    sign_in(live_server, tenant.slug, new, OWNER_PASSWORD, ip=fresh_ip())
