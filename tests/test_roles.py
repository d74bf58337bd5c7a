"""Who may do what: every route declares its permission, roles are enforced, tenants stay apart."""

from __future__ import annotations

import inspect

import pytest
import requests
import tornado.web

from core.db import tenant_transaction
from core.identity import create_api_token
from core.permissions import AUTHENTICATED, MATRIX, PUBLIC, role_permissions
from core.users import ApiToken, User
from core.web.base import ApiHandler, BaseHandler
from tests.support.identity import (add_user, api_sign_in, bearer, client, fetch_xsrf, fresh_ip, link_token,
                                    owner_email, post_form, sign_in, wait_for_mail)

HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ALLOWED = set(MATRIX) | {PUBLIC, AUTHENTICATED}


def implemented_methods(handler) -> list[str]:
    return [m for m in HTTP_METHODS
            if getattr(handler, m.lower()) is not getattr(tornado.web.RequestHandler, m.lower())]


def declared(handler, method):
    if handler.permissions is not None:
        return handler.permissions.get(method)
    return handler.permission


# -- every route declares a permission -----------------------------------------------------

def test_every_route_declares_a_known_permission_for_every_method_it_implements(live_server):
    table = live_server.app.route_table
    assert len(table) >= 20
    assert any(addon == "audit" for *_rest, addon in table), "addon routes are part of the walk"
    missing, unknown = [], []
    for pattern, handler, _kwargs, addon in table:
        methods = implemented_methods(handler)
        assert methods, f"{pattern} ({handler.__name__}) implements no HTTP method"
        for method in methods:
            required = declared(handler, method)
            if required is None:
                missing.append(f"{method} {pattern} ({handler.__name__}, addon={addon})")
            elif addon is None and required not in ALLOWED:
                unknown.append(f"{method} {pattern}: {required!r}")
            elif not (required in ALLOWED or (isinstance(required, str) and ":" in required)):
                # Addons may define permissions of their own (e.g. for device principals), as "area:action".
                unknown.append(f"{method} {pattern}: {required!r}")
    assert not missing, "handlers without a permission: " + "; ".join(missing)
    assert not unknown, "unknown permissions (nobody would get in): " + "; ".join(unknown)


def test_handlers_that_skip_the_central_check_are_public(live_server):
    """A handler overriding prepare() without calling the base one never reaches check_permission()."""
    for pattern, handler, _kwargs, _addon in live_server.app.route_table:
        prepare = handler.prepare
        if prepare is BaseHandler.prepare:
            continue
        source = inspect.getsource(prepare)
        if "super().prepare()" in source or "BaseHandler.prepare(" in source:
            continue
        for method in implemented_methods(handler):
            assert declared(handler, method) == PUBLIC, f"{method} {pattern} skips the permission check"


def test_the_walk_reads_permissions_as_the_central_check_does(live_server):
    class Fake:
        def __init__(self, handler, method):
            self.permissions, self.permission = handler.permissions, handler.permission
            self.request = type("R", (), {"method": method})()

    for _pattern, handler, _kwargs, _addon in live_server.app.route_table:
        for method in HTTP_METHODS:
            assert declared(handler, method) == BaseHandler.required_permission(Fake(handler, method))


class ForgottenHandler(ApiHandler):
    """A handler someone added without declaring a permission."""

    scope = "any"

    def get(self):
        self.write_json({"secret": "leaked"})


class PartlyDeclaredHandler(ApiHandler):
    scope = "any"
    permissions = {"GET": PUBLIC}

    def get(self):
        self.write_json({"ok": True})

    def post(self):
        self.write_json({"secret": "leaked"})


def test_an_undeclared_permission_means_refused(platform):
    """What the walk above protects against, at run time: no declaration, no access, for anyone."""
    from tests.support.server import LiveServer

    server = LiveServer(platform)
    server.app.add_handlers(r"localhost", [(r"/forgotten", ForgottenHandler),
                                           (r"/partly", PartlyDeclaredHandler)])
    server.start()
    try:
        c = requests.Session()
        c.headers["Host"] = "localhost"  # the base domain: other hosts are refused before any handler's check
        r = c.get(server.url + "/forgotten", timeout=10)
        assert r.status_code == 403 and r.json()["code"] == "forbidden" and "leaked" not in r.text
        assert c.get(server.url + "/partly", timeout=10).json() == {"ok": True}
        r = c.post(server.url + "/partly", json={}, timeout=10)
        assert r.status_code == 403 and "leaked" not in r.text
    finally:
        server.stop()


# -- Customer and User --------------------------------------------------------------------

@pytest.fixture
def tenant(make_tenant):
    return make_tenant("role")


def invite_and_accept(platform, live_server, tenant, customer, email_address, role="user"):
    r = post_form(customer, "/team", {"action": "invite", "email": email_address, "role": role})
    assert r.status_code == 302, r.text[:300]
    mails = wait_for_mail(platform, email_address, "invited")
    assert len(mails) == 1
    token = link_token(mails[0], "/accept-invite")
    c = client(live_server, tenant.slug)
    r = c.get(f"/accept-invite?token={token}")
    assert r.status_code == 200 and email_address in r.text
    r = post_form(c, "/accept-invite", {"token": token, "name": "Invited Person",
                                        "password": "invited password 1"})
    assert r.status_code == 302, r.text[:300]
    assert c.cookies.get("smsgw_session")
    return c


def test_user_cannot_do_customer_only_things_and_the_customer_can(platform, live_server, tenant):
    customer = sign_in(live_server, tenant.slug, owner_email(tenant))
    member_email = f"member@{tenant.slug}.example"
    member = invite_and_accept(platform, live_server, tenant, customer, member_email)

    # What a User may do.
    assert member.get("/").status_code == 200
    assert member.get("/account").status_code == 200
    me = api_sign_in(live_server, tenant.slug, member_email, "invited password 1")
    who = client(live_server, tenant.slug).get("/api/v1/me", headers=bearer(me["access_token"])).json()
    assert who["role"] == "user" and who["permissions"] == sorted(role_permissions("user"))

    # What only a Customer may do.
    for path in ("/team", "/tokens", "/audit", "/audit/export.json"):
        r = member.get(path)
        assert r.status_code == 403, (path, r.status_code)
    r = post_form(member, "/team", {"action": "invite", "email": f"x@{tenant.slug}.example", "role": "customer"})
    assert r.status_code == 403
    r = post_form(member, "/team", {"action": "role", "user_id": "1", "role": "user"})
    assert r.status_code == 403
    r = post_form(member, "/team", {"action": "disable", "user_id": "1", "confirmed": "1"})
    assert r.status_code == 403
    r = post_form(member, "/tokens", {"action": "create", "name": "sneaky", "scope": ["messages:read"]})
    assert r.status_code == 403 and "sgw_" not in r.text
    with tenant_transaction(tenant.ref):
        assert User.by_email(f"x@{tenant.slug}.example") is None
        owner = User.get_by_id(1)
        assert owner.is_active and owner.role == "customer"
        assert ApiToken.select().count() == 0

    # The Customer can.
    for path in ("/team", "/tokens", "/audit", "/audit/export.json"):
        assert customer.get(path).status_code == 200, path
    r = post_form(customer, "/tokens", {"action": "create", "name": "allowed", "scope": ["messages:read"]})
    assert r.status_code == 303 and "sgw_" in customer.get("/tokens").text


def test_a_demoted_customer_loses_customer_rights(platform, live_server, tenant):
    second = f"second@{tenant.slug}.example"
    second_id = add_user(platform, tenant, second, "second password 1", role="customer")
    browser = sign_in(live_server, tenant.slug, second, "second password 1")
    assert browser.get("/team").status_code == 200
    owner = sign_in(live_server, tenant.slug, owner_email(tenant))
    assert post_form(owner, "/team", {"action": "role", "user_id": str(second_id), "role": "user"}).status_code == 302
    # The role change signed them out; signed in again they are a User.
    r = browser.get("/team")
    assert r.status_code == 302
    browser = sign_in(live_server, tenant.slug, second, "second password 1")
    assert browser.get("/team").status_code == 403


# -- tenants apart --------------------------------------------------------------------------

@pytest.fixture
def two_tenants(platform, make_tenant):
    a, b = make_tenant("ra"), make_tenant("rb")
    # B has more users and tokens than A, so B's ids do not exist in A.
    b_users = [add_user(platform, b, f"u{i}@{b.slug}.example", "b member password") for i in range(3)]
    with tenant_transaction(b.ref):
        b_tokens = [create_api_token(b.slug, f"b token {i}", ["messages:read"], None) for i in range(3)]
    return a, b, b_users, [(row.id, token) for row, token in b_tokens]


def test_tenant_b_credentials_get_nothing_on_tenant_a(platform, live_server, two_tenants):
    a, b, _users, b_tokens = two_tenants
    b_browser = sign_in(live_server, b.slug, owner_email(b))
    b_jwt = api_sign_in(live_server, b.slug, owner_email(b))
    a_client = client(live_server, a.slug)
    fetch_xsrf(a_client)
    a_client.cookies.set("smsgw_session", b_browser.cookies.get("smsgw_session"))
    for path in ("/", "/team", "/tokens", "/audit", "/audit/export.json", "/account"):
        r = a_client.get(path)
        assert r.status_code == 302 and r.headers["Location"].startswith("/login"), (path, r.status_code)
    r = post_form(a_client, "/team", {"action": "disable", "user_id": "1", "confirmed": "1"})
    assert r.status_code in (401, 403)
    r = a_client.get("/api/v1/me")
    assert r.status_code == 401
    for credential in (b_jwt["access_token"], b_tokens[0][1], b_jwt["refresh_token"]):
        for path in ("/api/v1/me", "/team", "/tokens", "/audit", "/"):
            r = client(live_server, a.slug).get(path, headers=bearer(credential))
            assert r.status_code in (401, 403), (path, r.status_code)
    r = client(live_server, a.slug).post("/api/v1/auth/refresh", json={"refresh_token": b_jwt["refresh_token"]})
    assert r.status_code == 401
    with tenant_transaction(a.ref):
        assert User.get_by_id(1).is_active


def test_ids_of_another_tenant_are_not_found_and_nothing_changes(platform, live_server, two_tenants):
    a, b, b_users, b_tokens = two_tenants
    a_owner = sign_in(live_server, a.slug, owner_email(a))
    target_user = b_users[-1]
    for action in ("disable", "delete"):
        r = post_form(a_owner, "/team", {"action": action, "user_id": str(target_user)})
        assert r.status_code == 404, (action, r.status_code)
    r = post_form(a_owner, "/team", {"action": "role", "user_id": str(target_user), "role": "customer"})
    assert r.status_code == 404
    token_id, token = b_tokens[-1]
    r = post_form(a_owner, "/tokens", {"action": "revoke", "token_id": str(token_id), "confirmed": "1"})
    assert r.status_code == 404
    with tenant_transaction(b.ref):
        user = User.get_by_id(target_user)
        assert user.is_active and user.role == "user"
        assert ApiToken.get_by_id(token_id).revoked_at is None
    assert client(live_server, b.slug).get("/api/v1/me", headers=bearer(token)).status_code == 200


# -- hostile input never breaks the server ----------------------------------------------------

HOSTILE_IDS = ["1 OR 1=1", "1; DROP TABLE users; --", "' OR '1'='1", "-1", "", "0", "99999999999999999999999",
               "999999999999999999", "1e3", "0x10", "²", "١٢", "１２", "🙂", "1" * 10000]


@pytest.fixture
def hostile(platform, live_server, make_tenant):
    t = make_tenant("hostile")
    add_user(platform, t, f"member@{t.slug}.example", "member password 1")
    return t, sign_in(live_server, t.slug, owner_email(t))


@pytest.mark.parametrize("value", HOSTILE_IDS)
def test_hostile_ids_never_give_500(live_server, hostile, value):
    t, browser = hostile
    wrong = []
    for path, field, action in (("/team", "user_id", "disable"), ("/team", "user_id", "role"),
                                ("/tokens", "token_id", "revoke")):
        r = post_form(browser, path, {"action": action, field: value, "role": "user"})
        if r.status_code not in (400, 404):
            wrong.append((f"POST {path} action={action}", r.status_code))
    for path in ("/audit", "/audit/export.json"):
        r = browser.get(path, params={"before": value})
        if r.status_code != 200:
            wrong.append((f"GET {path}?before=", r.status_code))
    assert not wrong, (value[:20], wrong)


SQLI = "x' OR '1'='1'; DROP TABLE users; --"
HUGE = "A" * 10240


def test_hostile_form_input_never_gives_500(platform, live_server, hostile):
    t, browser = hostile
    cases = [
        ("/team", {"action": "invite", "email": SQLI, "role": "user"}, {422}),
        ("/team", {"action": "invite", "email": HUGE + "@x.example", "role": "user"}, {422}),
        ("/team", {"action": "invite", "email": f"new@{t.slug}.example", "role": "admin"}, {422}),
        ("/team", {"action": "invite", "email": f"new@{t.slug}.example", "role": SQLI}, {422}),
        ("/team", {"action": "role", "user_id": "2", "role": "admin"}, {400}),
        ("/team", {"action": SQLI, "user_id": "2"}, {400}),
        ("/tokens", {"action": "create", "name": HUGE, "scope": ["messages:read"]}, {422}),
        ("/tokens", {"action": "create", "name": "ok", "scope": [SQLI]}, {422}),
        ("/tokens", {"action": "create", "name": "ok", "scope": [HUGE]}, {422}),
        ("/account", {"action": "profile", "name": HUGE, "email": owner_email(t), "phone": SQLI}, {422}),
        ("/account", {"action": "profile", "name": SQLI, "email": SQLI}, {422}),
        ("/account", {"action": "password", "current_password": HUGE, "new_password": HUGE}, {422}),
    ]
    for path, data, expected in cases:
        r = post_form(browser, path, data)
        assert r.status_code in expected, (path, {k: str(v)[:30] for k, v in data.items()}, r.status_code)
    # A token named with SQL is stored literally, and users survived it all.
    r = post_form(browser, "/tokens", {"action": "create", "name": SQLI[:100], "scope": ["messages:read"]})
    assert r.status_code == 303
    with tenant_transaction(t.ref):
        assert ApiToken.get(ApiToken.name == SQLI[:100])
        assert User.select().count() == 2
        assert User.get_by_id(1).name != HUGE


def test_hostile_sign_in_and_link_input_never_gives_500(live_server, hostile):
    t, browser = hostile
    for params in ({"from": "2026-13-45"}, {"to": SQLI}, {"action": SQLI, "actor": HUGE}, {"admin": SQLI}):
        assert browser.get("/audit", params=params).status_code in (200, 400), params
    ip = fresh_ip()
    c = client(live_server, t.slug, ip)
    fetch_xsrf(c)
    for email_address, password in ((SQLI, SQLI), (HUGE, HUGE), ("", ""), ("a@b.c", "x" * 5000)):
        r = post_form(c, "/login", {"email": email_address, "password": password})
        assert r.status_code == 401, (email_address[:20], r.status_code)
    for path in ("/accept-invite", "/reset-password", "/verify-email"):
        for token in (SQLI, HUGE, "", "a.b.c"):
            r = c.get(path, params={"token": token})
            assert r.status_code == 400, (path, token[:20], r.status_code)


@pytest.mark.parametrize("body, expected", [
    ({"email": SQLI, "password": SQLI}, 401),
    ({"email": HUGE, "password": HUGE}, 401),
    ({"email": 12, "password": ["x"]}, 422),
    ({"email": None}, 422),
    ({"email": "nul\u0000byte@example.com", "password": "whatever password"}, (400, 401, 422)),
    ({"email": "owner@example.com", "password": "nul\u0000byte password"}, (400, 401, 422)),
    ({"email": "\ud800@example.com", "password": "lone surrogate"}, (400, 401, 422)),
])
def test_hostile_json_to_the_token_api_never_gives_500(live_server, hostile, body, expected):
    t, _browser = hostile
    c = client(live_server, t.slug, fresh_ip())
    try:
        r = c.post("/api/v1/auth/token", json=body)
    except (UnicodeEncodeError, ValueError):
        # requests may refuse to encode a lone surrogate; send the raw JSON escape instead.
        r = c.post("/api/v1/auth/token", data=b'{"email": "\\ud800@example.com", "password": "x"}',
                   headers={"Content-Type": "application/json"})
    allowed = expected if isinstance(expected, tuple) else (expected,)
    assert r.status_code in allowed, (body, r.status_code, r.text[:200])
    assert r.headers["Content-Type"].startswith("application/problem+json")


@pytest.mark.parametrize("raw, ctype", [
    (b"not json", "application/json"), (b"[]", "application/json"), (b"null", "application/json"),
    (b'{"email": "a"', "application/json"), (b"\xff\xfe", "application/json"),
    (b"email=a&password=b", "application/x-www-form-urlencoded"),
])
def test_malformed_api_bodies_are_4xx(live_server, hostile, raw, ctype):
    t, _browser = hostile
    c = client(live_server, t.slug, fresh_ip())
    for path in ("/api/v1/auth/token", "/api/v1/auth/refresh"):
        r = c.post(path, data=raw, headers={"Content-Type": ctype})
        assert 400 <= r.status_code < 500, (path, raw, r.status_code)


@pytest.mark.parametrize("header", [
    "Bearer " + "A" * 10000, "Bearer a.b.c", "Bearer ...", "Bearer sgw_", "Basic dXNlcjpwYXNz", "Bearer",
    "Bearer sgr_x_y", "Bearer " + SQLI, "Digest username=x", "Bearer eyJhbGciOiJub25lIn0.e30.",
    "Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6WzEsMl19.e30.c2ln",  # kid is a list
    "Bearer W10.W10.W10",  # header and payload are JSON lists
])
def test_hostile_authorization_headers_are_401(live_server, hostile, header):
    t, _browser = hostile
    for slug in (t.slug, None):
        r = client(live_server, slug).get("/api/v1/me", headers={"Authorization": header})
        assert r.status_code == 401, (slug, header[:40], r.status_code, r.text[:200])
