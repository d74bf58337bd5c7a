"""Checksummed API tokens: created once (CLI or dashboard), stored as a digest, scoped, revocable."""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import re

import pytest

from core import tokenformat
from core.clock import utcnow
from core.db import tenant_transaction
from core.identity import create_api_token
from core.users import ApiToken
from tests.support.identity import (audit_rows, bearer, client, owner_email, post_form, sign_in, smsgw)

PROBLEM = "application/problem+json"


def mutate(token: str, position: int = -10) -> str:
    """The same token with one character of its random part changed (still well-formed)."""
    chars = list(token)
    chars[position] = "B" if chars[position] != "B" else "C"
    return "".join(chars)


def new_token(tenant, scopes=("messages:read",), name="test token") -> tuple[int, str]:
    with tenant_transaction(tenant.ref):
        row, token = create_api_token(tenant.slug, name, list(scopes), None)
    return row.id, token


def token_row(tenant, token_id) -> dict:
    with tenant_transaction(tenant.ref) as db:
        cur = db.execute_sql("SELECT * FROM api_tokens WHERE id = %s", (token_id,))
        cols = [d[0] for d in cur.description]
        return dict(zip(cols, cur.fetchone()))


def me(live_server, slug, token):
    return client(live_server, slug).get("/api/v1/me", headers=bearer(token))


def create_on_dashboard(browser, name, scopes):
    r = post_form(browser, "/tokens", {"action": "create", "name": name, "scope": list(scopes)})
    assert r.status_code == 303 and r.headers["Location"] == "/tokens", r.text[:500]  # post/redirect/get
    r = browser.get("/tokens")
    assert r.status_code == 200, r.text[:500]
    found = re.search(r'<pre class="secret" id="new-token">([^<]+)</pre>', r.text)
    assert found, "the new token is not shown on the creation page"
    return r, html.unescape(found.group(1)).strip()


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("api")


def test_cli_prints_the_token_once_and_the_database_keeps_only_its_digest(platform, live_server, tenant, cli_env):
    r = smsgw(cli_env, "token", "create", "--tenant", tenant.slug, "--name", "CRM sync",
              "--scope", "messages:read", "--scope", "devices:read")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1, r.stdout
    token = lines[0].strip()
    assert tokenformat.parse(token) == ("sgw", tenant.slug)
    assert token not in r.stderr  # printed once, on stdout only
    assert "shown only now" in r.stderr

    with tenant_transaction(tenant.ref) as db:
        cur = db.execute_sql("SELECT * FROM api_tokens")
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, row)) for row in cur.fetchall()]
    assert len(rows) == 1
    row = rows[0]
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    secret_part = token.split("_", 2)[2]
    for column, value in row.items():
        text = str(value)
        assert token not in text, column
        assert secret_part[:32] not in text, column
        assert secret_part[:12] not in text, column
    assert row["hint"].endswith(token[-4:]) and len(row["hint"]) < 30
    assert sorted(row["scopes"]) == ["devices:read", "messages:read"]

    r = me(live_server, tenant.slug, token)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["kind"] == "token" and body["via"] == "api_token" and body["tenant"] == tenant.slug
    assert body["permissions"] == ["devices:read", "messages:read"]


def test_cli_default_scopes_are_send_and_read(live_server, tenant, cli_env):
    r = smsgw(cli_env, "token", "create", "--tenant", tenant.slug, "--name", "defaults")
    assert r.returncode == 0, r.stderr
    assert me(live_server, tenant.slug, r.stdout.strip()).json()["permissions"] == ["messages:read",
                                                                                     "messages:send"]


def test_cli_refuses_unknown_scope_and_unknown_tenant(tenant, cli_env):
    r = smsgw(cli_env, "token", "create", "--tenant", tenant.slug, "--name", "x", "--scope", "users:manage")
    assert r.returncode == 2 and "Unknown scope" in r.stderr and "sgw_" not in r.stdout
    r = smsgw(cli_env, "token", "create", "--tenant", "no-such-tenant", "--name", "x")
    assert r.returncode == 2 and "no-such-tenant" in r.stderr and "Traceback" not in r.stderr
    with tenant_transaction(tenant.ref):
        assert ApiToken.select().count() == 0


def test_a_mistyped_token_fails_its_checksum(live_server, tenant):
    _id, token = new_token(tenant)
    assert me(live_server, tenant.slug, token).status_code == 200
    for position in (-1, -7, -20, len(f"sgw_{tenant.slug}_")):
        bad = mutate(token, position)
        assert bad != token and len(bad) == len(token)
        r = me(live_server, tenant.slug, bad)
        assert r.status_code == 401
        assert r.headers["Content-Type"].startswith(PROBLEM)
        body = r.json()
        assert body["code"] == "invalid-token" and "checksum" in body["detail"], body


def test_the_checksum_is_checked_before_any_lookup(platform, live_server):
    ghost_slug = "ghost-" + tokenformat.generate("sgw", "xyz")[-8:].lower()
    good = tokenformat.generate("sgw", ghost_slug)  # well-formed, right checksum, no such tenant
    bad = mutate(good)
    base = client(live_server, None)

    r = base.get("/api/v1/me", headers=bearer(bad))
    assert r.status_code == 401 and "checksum" in r.json()["detail"]
    # Refused without even looking the tenant up: nothing about that slug is cached.
    assert platform.tenant_cache.peek(ghost_slug) == (False, None)

    r = base.get("/api/v1/me", headers=bearer(good))
    assert r.status_code == 401 and r.json()["code"] == "invalid-token"
    assert "unknown" in r.json()["detail"]
    assert platform.tenant_cache.peek(ghost_slug) == (True, None)  # this one was looked up


def test_scopes_are_enforced(live_server, tenant):
    _id, token = new_token(tenant, scopes=["messages:read"])
    r = me(live_server, tenant.slug, token)
    assert r.status_code == 200 and r.json()["permissions"] == ["messages:read"]
    c = client(live_server, tenant.slug)
    # The API routes of the scope it has answer; those of scopes it lacks refuse.
    assert c.get("/api/v1/messages", headers=bearer(token)).status_code == 200
    r = c.post("/api/v1/devices/pairing-codes", headers=bearer(token))
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    r = c.post("/api/v1/messages", headers=bearer(token), json={"to": "+15551234567", "text": "hi"})
    assert r.status_code == 403
    _id, writer = new_token(tenant, scopes=["devices:write"])
    assert c.post("/api/v1/devices/pairing-codes", headers=bearer(writer)).status_code == 201
    assert c.get("/api/v1/messages", headers=bearer(writer)).status_code == 403
    # Nothing a Customer may do and the token was not given: users, tokens, audit, the dashboard.
    for path in ("/team", "/tokens", "/audit", "/audit/export.json", "/", "/account"):
        r = c.get(path, headers=bearer(token))
        assert r.status_code == 403, (path, r.status_code)
    # A token is not a signed-in user: it may not sign its creator out (that needs profile:edit).
    r = c.post("/api/v1/auth/logout", headers=bearer(token))
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


def test_dashboard_token_is_shown_once_and_never_again(platform, live_server, tenant):
    browser = sign_in(live_server, tenant.slug, owner_email(tenant))
    r, token = create_on_dashboard(browser, "Dashboard token", ["messages:send", "webhooks:read"])
    assert r.text.count(token) == 1
    assert "no-store" in r.headers.get("Cache-Control", "")
    assert tokenformat.parse(token) == ("sgw", tenant.slug)
    assert me(live_server, tenant.slug, token).json()["permissions"] == ["messages:send", "webhooks:read"]

    hint = tokenformat.hint(token)
    listing = browser.get("/tokens")
    assert listing.status_code == 200
    assert token not in listing.text and token[:-4] not in listing.text
    assert html.escape(hint) in listing.text or hint in listing.text
    for path in ("/", "/audit", "/audit/export.json", "/team", "/account"):
        page = browser.get(path)
        assert page.status_code == 200, path
        assert token not in page.text and token.split("_", 2)[2][:20] not in page.text, path
    assert token not in me(live_server, tenant.slug, token).text
    for row in audit_rows(platform, tenant.id):
        assert token not in str(row)


def test_revoked_token_stops_working(platform, live_server, tenant):
    browser = sign_in(live_server, tenant.slug, owner_email(tenant))
    _r, token = create_on_dashboard(browser, "To be revoked", ["messages:read"])
    with tenant_transaction(tenant.ref):
        token_id = ApiToken.get(ApiToken.token_hash == tokenformat.digest(token)).id
    assert me(live_server, tenant.slug, token).status_code == 200
    r = post_form(browser, "/tokens", {"action": "revoke", "token_id": str(token_id), "confirmed": "1"})
    assert r.status_code == 302
    r = me(live_server, tenant.slug, token)
    assert r.status_code == 401 and r.json()["code"] == "invalid-token" and "revoked" in r.json()["detail"]
    assert client(live_server, None).get("/api/v1/me", headers=bearer(token)).status_code == 401
    assert token_row(tenant, token_id)["revoked_at"] is not None


def test_last_used_at_is_recorded(live_server, tenant):
    token_id, token = new_token(tenant)
    assert token_row(tenant, token_id)["last_used_at"] is None
    before = utcnow()
    assert me(live_server, tenant.slug, token).status_code == 200
    used = token_row(tenant, token_id)["last_used_at"]
    assert used is not None and before - dt.timedelta(seconds=5) <= used <= utcnow() + dt.timedelta(seconds=5)


def test_token_of_tenant_b_is_refused_on_tenant_a(live_server, make_tenant):
    a, b = make_tenant("tka"), make_tenant("tkb")
    _id, token_b = new_token(b)
    r = me(live_server, a.slug, token_b)
    assert r.status_code == 401 and r.json()["code"] == "invalid-token"
    assert "another workspace" in r.json()["detail"]
    assert me(live_server, b.slug, token_b).status_code == 200


def test_token_works_on_the_base_domain_for_its_own_tenant(live_server, make_tenant, platform):
    a = make_tenant("tkbase")
    _id, token = new_token(a, scopes=["messages:send"])
    base = client(live_server, None)
    r = base.get("/api/v1/me", headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["tenant"] == a.slug and r.json()["permissions"] == ["messages:send"]
    # Base-domain access follows the tenant's status.
    platform.tenants.suspend(a.slug)
    try:
        r = base.get("/api/v1/me", headers=bearer(token))
        assert r.status_code == 403 and r.json()["code"] == "tenant-suspended"
    finally:
        platform.tenants.resume(a.slug)
    # Pages stay on the tenant's own address even with a token.
    assert base.get("/tokens", headers=bearer(token)).status_code == 404


@pytest.mark.parametrize("name, scopes, message", [
    ("", ["messages:read"], "name of 1 to 100"),
    ("n" * 101, ["messages:read"], "name of 1 to 100"),
    ("no scopes", [], "at least one scope"),
    ("bad scope", ["users:manage"], "Unknown scope"),
])
def test_dashboard_refuses_bad_token_requests(live_server, tenant, name, scopes, message):
    browser = sign_in(live_server, tenant.slug, owner_email(tenant))
    r = post_form(browser, "/tokens", {"action": "create", "name": name, "scope": scopes})
    assert r.status_code == 422 and message in r.text
    assert "sgw_" + tenant.slug not in r.text
    with tenant_transaction(tenant.ref):
        assert ApiToken.select().count() == 0


def test_the_principal_cache_drops_expired_entries_as_new_ones_come():
    import time

    from core.web.principals import PRINCIPAL_TTL, remember_principal

    now = time.monotonic()
    cache = {("t", f"old{i}"): (now - 1, object()) for i in range(20)}
    cache[("t", "fresh")] = (now + 5, "fresh")
    remember_principal(cache, ("t", "new"), "new")
    assert list(cache) == [("t", "fresh"), ("t", "new")]
    assert PRINCIPAL_TTL - 1 < cache[("t", "new")][0] - now <= PRINCIPAL_TTL + 1
    remember_principal(cache, ("t", "fresh"), "renewed")  # a renewed key moves to the end
    assert list(cache) == [("t", "new"), ("t", "fresh")] and cache[("t", "fresh")][1] == "renewed"


def test_the_prefetch_warms_the_principal_cache_only_for_a_real_token(platform, live_server, make_tenant):
    """The server looks a bearer token up when the request head arrives, before a handler exists;
    it only fills the cache (the handler still checks everything) and skips what it cannot use."""
    import asyncio

    from core import tokenformat
    from core.web.principals import cached_token_principal, prefetch_principal
    from tests.support.devices import raw_device

    t = make_tenant("prefetch")
    device_id, token = raw_device(live_server, t.slug)
    platform.principal_cache.clear()
    tenant = platform.tenant_cache.get(t.slug)
    assert cached_token_principal(platform, tenant, token) is None

    pending = prefetch_principal(platform, f"Bearer {token}")
    assert pending is not None
    asyncio.run(pending())
    principal = cached_token_principal(platform, tenant, token)
    assert principal is not None and principal.kind == "device" and principal.id == device_id
    assert prefetch_principal(platform, f"Bearer {token}") is None  # cached: nothing to do

    forged = tokenformat.generate("sgd", t.slug)  # well-formed, unknown
    pending = prefetch_principal(platform, f"Bearer {forged}")
    asyncio.run(pending())
    assert cached_token_principal(platform, tenant, forged) is None  # nothing cached for it
    for header in (None, "", "Basic dXNlcjpwYXNz", "Bearer a.b.c", "Bearer sgd_prefetch_not-a-token",
                   f"Bearer {token[:-1]}x"):
        assert prefetch_principal(platform, header) is None, header

    # A token of this workspace sent to another workspace's address: no lookup (the handler refuses it).
    platform.principal_cache.clear()
    base = platform.settings.base_domain
    assert prefetch_principal(platform, f"Bearer {token}", f"someone-else.{base}:8888") is None
    assert cached_token_principal(platform, tenant, token) is None
    pending = prefetch_principal(platform, f"Bearer {token}", f"{t.slug}.{base}:8888")
    assert pending is not None
    asyncio.run(pending())
    assert cached_token_principal(platform, tenant, token) is not None
    platform.principal_cache.clear()
    pending = prefetch_principal(platform, f"Bearer {token}", f"{base}:8888")  # base domain: the token names it
    assert pending is not None
    asyncio.run(pending())
