"""Unauthorized-access monitoring (issue 20, item 5): failed sign-ins across accounts from one
address, and a sign-in from a new device (mailed, with the "this wasn't me" link), in the review queue."""

from __future__ import annotations

import pytest

from addons.abuse import service
from core.db import tenant_transaction
from tests.support.abuse import shipped_defaults
from tests.support.identity import client, fetch_xsrf, owner_email, post_form, sign_in, wait_for_mail


@pytest.fixture(autouse=True)
def shipped_rules(platform):
    with shipped_defaults():
        yield


def alerts_of(tenant, rule):
    with tenant_transaction(tenant.ref):
        return [a for a in service.alerts() if a["rule"] == rule]


def test_failed_sign_ins_across_accounts_from_one_address(live_server, make_tenant):
    tenant, other = make_tenant("abl"), make_tenant("abo")
    for n in range(4):
        c = client(live_server, tenant.slug, ip="198.51.100.7")
        fetch_xsrf(c)
        post_form(c, "/login", {"email": f"guess{n}@{tenant.slug}.example", "password": "wrong password 1"})
    assert alerts_of(tenant, "signin_failures") == []  # 4 accounts: not yet
    c = client(live_server, other.slug, ip="198.51.100.7")  # another workspace's failure counts there only
    fetch_xsrf(c)
    post_form(c, "/login", {"email": f"guess9@{other.slug}.example", "password": "wrong password 1"})
    assert alerts_of(other, "signin_failures") == []
    c = client(live_server, tenant.slug, ip="198.51.100.7")
    fetch_xsrf(c)
    post_form(c, "/login", {"email": f"guess4@{tenant.slug}.example", "password": "wrong password 1"})
    (alert,) = alerts_of(tenant, "signin_failures")
    assert alert["key"] == "198.51.100.7" and alert["evidence"]["count"] == 5
    assert all(a.endswith(f"@{tenant.slug}.example") for a in alert["evidence"]["accounts"])
    assert [q["rule"] for q in service.queue() if q["slug"] == tenant.slug] == ["signin_failures"]


def test_a_sign_in_from_a_new_device_is_mailed_with_this_wasnt_me(live_server, make_tenant):
    tenant = make_tenant("abd")
    owner = owner_email(tenant)
    laptop = sign_in(live_server, tenant.slug, owner, ip="203.0.113.10")  # the first ever: known from now on
    assert alerts_of(tenant, "new_device") == []
    sign_in(live_server, tenant.slug, owner, ip="203.0.113.11")  # the same browser again
    assert alerts_of(tenant, "new_device") == []
    phone = client(live_server, tenant.slug, ip="192.0.2.55")
    phone.headers["User-Agent"] = "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile Safari/537.36"
    fetch_xsrf(phone)
    r = post_form(phone, "/login", {"email": owner, "password": "a long enough password"})
    assert r.status_code == 302
    (alert,) = alerts_of(tenant, "new_device")
    assert alert["severity"] == 1 and alert["evidence"]["addresses"] == ["192.0.2.55"]
    (mail,) = wait_for_mail(live_server.platform, owner, "New sign-in")
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "192.0.2.55" in body and "This wasn't me" in body and f"{tenant.slug}." in body
    assert "/account/security" in body
    assert laptop is not None
