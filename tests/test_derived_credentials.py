"""A credential derived from another never carries more than its source, and dies with it.

Issue 13, findings 1 and 6, and the part of 12 about access tokens outliving a sign-out:

* an API token exchanged for an access token (``POST /3rdparty/v1/auth/token``) yields a token
  that acts as the API token, within its scopes, through any number of refreshes at either
  refresh endpoint; it never becomes the Customer who created the token;
* revoking the API token kills every access and refresh token minted from it, at once;
* a family minted with an access token dies with that token's family;
* signing out (or a replayed refresh token) stops the access tokens of the revoked families at
  once, not when they expire;
* an ``AUTHENTICATED`` endpoint that acts on the person (sign out everywhere, their e-mail)
  is closed to a scoped credential.

Everything goes through the live server over HTTP, against the real database.
"""

from __future__ import annotations

import pytest

from core.db import tenant_transaction
from core.identity import create_api_token, set_password
from core.permissions import API_SCOPES, role_permissions
from core.users import User
from tests.support.identity import (OWNER_PASSWORD, api_sign_in, audit_rows, bearer, fresh_ip, owner_email,
                                    post_form, sign_in)


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("dc")


def new_api_token(tenant, scopes) -> tuple[int, str]:
    with tenant_transaction(tenant.ref):
        owner = User.by_email(owner_email(tenant))
        row, token = create_api_token(tenant.slug, "integration", list(scopes), owner.id)
    return row.id, token


def exchange(live_server, tenant, credential, scopes):
    """``POST /3rdparty/v1/auth/token`` with ``credential``: the (status, body)."""
    r = live_server.client(tenant.slug).post("/3rdparty/v1/auth/token", json={"scopes": scopes},
                                             headers=bearer(credential))
    return r.status_code, r.json()


def me(live_server, tenant, access):
    return live_server.client(tenant.slug).get("/api/v1/me", headers=bearer(access))


def native_refresh(live_server, tenant, refresh):
    return live_server.client(tenant.slug).post("/api/v1/auth/refresh", json={"refresh_token": refresh})


def compat_refresh(live_server, tenant, refresh):
    return live_server.client(tenant.slug).post("/3rdparty/v1/auth/token/refresh", headers=bearer(refresh))


@pytest.mark.parametrize("scope", API_SCOPES)
def test_an_api_tokens_access_token_stays_within_its_scope_through_every_refresh(live_server, tenant, scope):
    token_id, api = new_api_token(tenant, [scope])
    status, pair = exchange(live_server, tenant, api, ["all:any"])
    assert status == 201, pair
    access, refresh = pair["access_token"], pair["refresh_token"]
    # Alternate the two refresh endpoints, several rounds: the scope never grows.
    for step in range(4):
        who = me(live_server, tenant, access)
        assert who.status_code == 200, who.text
        assert who.json()["kind"] == "token" and who.json()["id"] == token_id, (step, who.json())
        assert who.json()["permissions"] == [scope], (step, who.json())
        assert who.json()["email"] is None
        # The Customer's own powers stay out of reach: the team, API tokens, minting more tokens.
        c = live_server.client(tenant.slug)
        assert c.get("/team", headers=bearer(access)).status_code == 403
        assert c.get("/tokens", headers=bearer(access)).status_code == 403
        assert exchange(live_server, tenant, access, ["all:any"])[0] == 403
        r = (native_refresh if step % 2 == 0 else compat_refresh)(live_server, tenant, refresh)
        assert r.status_code == 200, r.text
        body = r.json()
        access = body.get("access_token") or body["accessToken"]
        refresh = body.get("refresh_token") or body["refreshToken"]


def test_an_api_token_cannot_get_an_access_token_beyond_its_scopes(live_server, tenant):
    _id, api = new_api_token(tenant, ["messages:read"])
    assert exchange(live_server, tenant, api, ["messages:send"])[0] == 403
    assert exchange(live_server, tenant, api, ["devices:read"])[0] == 403
    status, pair = exchange(live_server, tenant, api, ["messages:list"])
    assert status == 201
    assert me(live_server, tenant, pair["access_token"]).json()["permissions"] == ["messages:read"]


def test_revoking_the_api_token_kills_everything_minted_from_it_at_once(live_server, tenant):
    token_id, api = new_api_token(tenant, ["messages:read", "messages:send"])
    _, first = exchange(live_server, tenant, api, ["messages:read"])
    _, second = exchange(live_server, tenant, api, ["all:any"])
    refreshed = native_refresh(live_server, tenant, second["refresh_token"]).json()
    live = [first["access_token"], second["access_token"], refreshed["access_token"]]
    for access in live:
        assert me(live_server, tenant, access).status_code == 200

    # The Customer revokes the token from the dashboard.
    owner = sign_in(live_server, tenant.slug, owner_email(tenant), ip=fresh_ip())
    r = post_form(owner, "/tokens", {"action": "revoke", "token_id": str(token_id), "confirmed": "1"})
    assert r.status_code == 302, r.text[:300]

    for access in live:  # no waiting for expiry or a cache
        r = me(live_server, tenant, access)
        assert r.status_code == 401 and r.headers["Content-Type"].startswith("application/problem+json")
    for refresh in (first["refresh_token"], refreshed["refresh_token"]):
        assert native_refresh(live_server, tenant, refresh).status_code == 401
        assert compat_refresh(live_server, tenant, refresh).status_code == 401
    assert live_server.client(tenant.slug).get("/api/v1/messages", headers=bearer(api)).status_code == 401


def test_the_audit_trail_names_the_api_token_not_its_creator(live_server, tenant):
    token_id, api = new_api_token(tenant, ["messages:read"])
    status, pair = exchange(live_server, tenant, api, ["messages:read"])
    assert status == 201
    issued = [row for row in audit_rows(live_server.platform, tenant.id, "token.issued")]
    assert issued and issued[-1]["actor"] == f"token:{token_id}", issued[-1]
    # And what the derived access token does is the token's doing too.
    status, again = exchange(live_server, tenant, pair["access_token"], ["messages:read"])
    assert status == 403  # an access token without tokens:manage mints nothing


def test_a_family_minted_with_an_access_token_dies_with_that_tokens_family(live_server, tenant):
    ip = fresh_ip()
    parent = api_sign_in(live_server, tenant.slug, owner_email(tenant), ip=ip)  # the Customer: tokens:manage
    status, child = exchange(live_server, tenant, parent["access_token"], ["messages:read"])
    assert status == 201, child
    child_access = native_refresh(live_server, tenant, child["refresh_token"]).json()
    assert me(live_server, tenant, child_access["access_token"]).json()["permissions"] == ["messages:read"]

    # The parent's refresh token is replayed (stolen, or a client bug): its family is revoked ...
    assert native_refresh(live_server, tenant, parent["refresh_token"]).status_code == 200
    assert native_refresh(live_server, tenant, parent["refresh_token"]).status_code == 401
    # ... and what was derived from it goes with it.
    assert me(live_server, tenant, parent["access_token"]).status_code == 401
    assert me(live_server, tenant, child_access["access_token"]).status_code == 401
    assert compat_refresh(live_server, tenant, child_access["refresh_token"]).status_code == 401


def test_signing_out_stops_access_tokens_at_once(live_server, tenant):
    ip = fresh_ip()
    pair = api_sign_in(live_server, tenant.slug, owner_email(tenant), ip=ip)
    other = api_sign_in(live_server, tenant.slug, owner_email(tenant), ip=ip)
    assert me(live_server, tenant, pair["access_token"]).status_code == 200
    r = live_server.client(tenant.slug).post("/api/v1/auth/logout", headers=bearer(pair["access_token"]))
    assert r.status_code == 204
    for access in (pair["access_token"], other["access_token"]):  # every sign-in of the person
        assert me(live_server, tenant, access).status_code == 401


def test_a_password_change_stops_access_tokens_at_once(live_server, tenant):
    pair = api_sign_in(live_server, tenant.slug, owner_email(tenant), ip=fresh_ip())
    platform = live_server.platform
    with tenant_transaction(tenant.ref):
        set_password(User.by_email(owner_email(tenant)), "another long password", platform.pepper,
                     platform.bcrypt_cost)
    assert me(live_server, tenant, pair["access_token"]).status_code == 401
    assert native_refresh(live_server, tenant, pair["refresh_token"]).status_code == 401


def test_a_scoped_access_token_cannot_sign_its_person_out_or_read_their_email(live_server, tenant):
    ip = fresh_ip()
    full = api_sign_in(live_server, tenant.slug, owner_email(tenant), ip=ip)
    status, reader = exchange(live_server, tenant, full["access_token"], ["messages:read"])
    assert status == 201
    r = live_server.client(tenant.slug).post("/api/v1/auth/logout", headers=bearer(reader["access_token"]))
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    who = me(live_server, tenant, reader["access_token"]).json()
    assert who["email"] is None and who["permissions"] == ["messages:read"]
    # Nothing was signed out: the person's own sign-in still refreshes and works.
    assert native_refresh(live_server, tenant, full["refresh_token"]).status_code == 200
    # The full sign-in does see its e-mail and may sign out.
    assert me(live_server, tenant, full["access_token"]).json()["email"] == owner_email(tenant)


def test_a_password_sign_in_refreshes_to_the_roles_permissions(live_server, tenant):
    pair = api_sign_in(live_server, tenant.slug, owner_email(tenant), password=OWNER_PASSWORD, ip=fresh_ip())
    again = native_refresh(live_server, tenant, pair["refresh_token"]).json()
    who = me(live_server, tenant, again["access_token"]).json()
    assert who["kind"] == "user" and set(who["permissions"]) == role_permissions("customer")
