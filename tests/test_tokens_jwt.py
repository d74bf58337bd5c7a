"""Access tokens (RS256 JWT), key rotation and JWKS, refresh-token families, revocation.

Every forged or damaged token is presented to a real endpoint (GET /api/v1/me on
the tenant's host) and must be refused with a 401 problem+json. A token signed
by the test with the platform's real current key and correct claims is accepted
(see ``test_a_token_signed_with_the_real_key_and_right_claims_is_accepted``), so
each refusal below is caused by the one thing that was changed.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
import time
import uuid

import jwt
import psycopg2
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from core import tokenformat
from core.clock import utcnow
from core.db import tenant_transaction
from core.identity import set_password
from core.jwtkeys import ACCESS_TTL, AUDIENCE, KeyRing, TokenError
from core.permissions import role_permissions
from core.users import RefreshToken, User
from tests.support.identity import (OWNER_PASSWORD, add_user, admin_sql, api_sign_in, bearer, client, owner_email,
                                    post_form, sign_in, smsgw)

PROBLEM = "application/problem+json"


# -- helpers ----------------------------------------------------------------------

def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_json(obj) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def current_signer(platform):
    """``(kid, private_key)`` of the key that signs now, read from public.signing_key like a process would."""
    platform.keyring.jwks()  # makes sure a key exists
    conn = psycopg2.connect(platform.app_url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT kid, private_key_enc FROM public.signing_key WHERE retired_at IS NULL "
                        "ORDER BY created_at DESC LIMIT 1")
            kid, enc = cur.fetchone()
    finally:
        conn.close()
    key = serialization.load_pem_private_key(platform.data_cipher().decrypt(enc).encode(), password=None)
    return kid, key


def public_pem_of(platform, kid) -> bytes:
    rows = admin_sql(platform, "SELECT public_pem FROM public.signing_key WHERE kid = %s", (kid,), fetch=True)
    return rows[0][0].encode()


def claims_for(platform, slug, user_id=1, **overrides):
    now = int(time.time())
    claims = {"iss": platform.keyring.issuer, "aud": AUDIENCE, "sub": f"user:{user_id}", "tenant": slug,
              "role": "customer", "typ": "access", "iat": now, "nbf": now, "exp": now + ACCESS_TTL,
              "jti": uuid.uuid4().hex}
    for k, v in overrides.items():
        if v is None:
            claims.pop(k, None)
        else:
            claims[k] = v
    return claims


def me(live_server, slug, token):
    return client(live_server, slug).get("/api/v1/me", headers=bearer(token))


def assert_refused(r, code="invalid-token", www_authenticate=True):
    assert r.status_code == 401, (r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith(PROBLEM), r.headers["Content-Type"]
    body = r.json()
    assert body["status"] == 401 and body["code"] == code, body
    if www_authenticate:  # RFC 9110: a 401 MUST say which scheme to use
        assert "Bearer" in r.headers.get("WWW-Authenticate", ""), dict(r.headers)
    return body


def refresh(live_server, slug, token):
    return client(live_server, slug).post("/api/v1/auth/refresh", json={"refresh_token": token})


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("jwt")


# -- the good case ---------------------------------------------------------------

def test_sign_in_issues_an_rs256_access_token_with_the_documented_claims(platform, live_server, tenant):
    body = api_sign_in(live_server, tenant.slug, owner_email(tenant))
    token = body["access_token"]
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert isinstance(header.get("kid"), str) and header["kid"]
    jwks = client(live_server, None).get("/.well-known/jwks.json").json()
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    key = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=AUDIENCE, issuer=platform.keyring.issuer)
    for name in ("iss", "aud", "sub", "tenant", "role", "typ", "iat", "exp"):
        assert name in claims, name
    assert claims["aud"] == AUDIENCE == "smsgw-api"
    assert claims["iss"] == platform.settings.public_url()
    assert claims["sub"] == "user:1"
    assert claims["tenant"] == tenant.slug
    assert claims["role"] == "customer"
    assert claims["typ"] == "access"
    # Exactly 15 minutes, and the response says so.
    assert claims["exp"] - claims["iat"] == 900 == ACCESS_TTL
    assert body["expires_in"] == 900 and body["expires_at"] == claims["exp"]
    assert abs(claims["iat"] - time.time()) < 60
    assert body["token_type"] == "Bearer"
    assert tokenformat.parse(body["refresh_token"], "sgr") == ("sgr", tenant.slug)

    r = me(live_server, tenant.slug, token)
    assert r.status_code == 200, r.text
    who = r.json()
    assert who["via"] == "jwt" and who["tenant"] == tenant.slug and who["role"] == "customer"
    assert who["permissions"] == sorted(role_permissions("customer"))


def test_a_token_signed_with_the_real_key_and_right_claims_is_accepted(platform, live_server, tenant):
    """The control for every forgery below: our hand-made token is good when nothing is wrong with it."""
    kid, key = current_signer(platform)
    token = jwt.encode(claims_for(platform, tenant.slug), key, algorithm="RS256", headers={"kid": kid})
    r = me(live_server, tenant.slug, token)
    assert r.status_code == 200, r.text
    assert r.json()["id"] == 1


# -- forgeries and damaged tokens ---------------------------------------------------

def forge(case, platform, slug):
    kid, key = current_signer(platform)
    good = claims_for(platform, slug)
    if case == "alg-none":
        return f"{b64u_json({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64u_json(good)}."
    if case == "alg-none-with-signature":
        return f"{b64u_json({'alg': 'none', 'kid': kid})}.{b64u_json(good)}.{b64u(b'x' * 32)}"
    if case == "hs256-with-public-key-as-secret":
        signing_input = f"{b64u_json({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{b64u_json(good)}"
        mac = hmac.new(public_pem_of(platform, kid), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64u(mac)}"
    if case == "rs512-with-the-real-key":
        return jwt.encode(good, key, algorithm="RS512", headers={"kid": kid})
    if case == "es256-with-own-key":
        own = ec.generate_private_key(ec.SECP256R1())
        return jwt.encode(good, own, algorithm="ES256", headers={"kid": kid})
    if case == "wrong-iss":
        return jwt.encode(claims_for(platform, slug, iss="https://evil.example"), key, "RS256", headers={"kid": kid})
    if case == "wrong-aud":
        return jwt.encode(claims_for(platform, slug, aud="some-other-api"), key, "RS256", headers={"kid": kid})
    if case == "typ-refresh":
        return jwt.encode(claims_for(platform, slug, typ="refresh"), key, "RS256", headers={"kid": kid})
    if case == "no-typ":
        return jwt.encode(claims_for(platform, slug, typ=None), key, "RS256", headers={"kid": kid})
    if case == "no-exp":
        return jwt.encode(claims_for(platform, slug, exp=None), key, "RS256", headers={"kid": kid})
    if case == "expired":
        now = int(time.time())
        return jwt.encode(claims_for(platform, slug, iat=now - 3600, nbf=now - 3600, exp=now - 2700), key, "RS256",
                          headers={"kid": kid})
    if case == "not-yet-valid":
        now = int(time.time())
        return jwt.encode(claims_for(platform, slug, nbf=now + 3600), key, "RS256", headers={"kid": kid})
    if case == "unknown-kid":
        own = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(good, own, algorithm="RS256", headers={"kid": "20200101-deadbeef"})
    if case == "known-kid-other-key":
        own = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return jwt.encode(good, own, algorithm="RS256", headers={"kid": kid})
    if case == "no-kid":
        return jwt.encode(good, key, algorithm="RS256")
    if case == "tampered-payload":
        token = jwt.encode(claims_for(platform, slug, user_id=1, role="user"), key, "RS256", headers={"kid": kid})
        h, _p, s = token.split(".")
        return f"{h}.{b64u_json(claims_for(platform, slug, user_id=1, role='customer'))}.{s}"
    if case == "tampered-signature":
        token = jwt.encode(good, key, "RS256", headers={"kid": kid})
        h, p, s = token.split(".")
        sig = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
        sig[10] ^= 0x01
        return f"{h}.{p}.{b64u(bytes(sig))}"
    if case == "garbage-three-parts":
        return "abc.def.ghi"
    raise AssertionError(case)


FORGERIES = ["alg-none", "alg-none-with-signature", "hs256-with-public-key-as-secret", "rs512-with-the-real-key",
             "es256-with-own-key", "wrong-iss", "wrong-aud", "typ-refresh", "no-typ", "no-exp", "expired",
             "not-yet-valid", "unknown-kid", "known-kid-other-key", "no-kid", "tampered-payload",
             "tampered-signature", "garbage-three-parts"]


@pytest.mark.parametrize("case", FORGERIES)
def test_bad_access_tokens_are_refused_with_401_problem(platform, live_server, tenant, case):
    token = forge(case, platform, tenant.slug)
    assert_refused(me(live_server, tenant.slug, token))
    # The same token on the base domain (where a token may name its tenant) is refused as well.
    assert_refused(client(live_server, None).get("/api/v1/me", headers=bearer(token)))


def test_expired_token_says_so(platform, live_server, tenant):
    body = assert_refused(me(live_server, tenant.slug, forge("expired", platform, tenant.slug)))
    assert "expired" in body["detail"]


def test_unknown_kid_says_so(platform, live_server, tenant):
    body = assert_refused(me(live_server, tenant.slug, forge("unknown-kid", platform, tenant.slug)))
    assert "unknown key" in body["detail"]


def test_refresh_token_is_not_an_access_token(live_server, tenant):
    tokens = api_sign_in(live_server, tenant.slug, owner_email(tenant))
    assert_refused(me(live_server, tenant.slug, tokens["refresh_token"]))
    assert_refused(client(live_server, None).get("/api/v1/me", headers=bearer(tokens["refresh_token"])))
    # And an access token is not a refresh token.
    r = refresh(live_server, tenant.slug, tokens["access_token"])
    assert r.status_code == 401 and r.json()["code"] == "invalid-refresh-token"


def test_access_token_of_one_tenant_is_refused_on_another(live_server, make_tenant):
    a, b = make_tenant("ja"), make_tenant("jb")
    token = api_sign_in(live_server, a.slug, owner_email(a))["access_token"]
    body = assert_refused(me(live_server, b.slug, token))
    assert "another workspace" in body["detail"]
    # On the base domain the token names its own tenant, and only that one.
    r = client(live_server, None).get("/api/v1/me", headers=bearer(token))
    assert r.status_code == 200 and r.json()["tenant"] == a.slug


def test_token_for_a_user_id_of_another_tenant_is_bound_to_its_own_tenant(platform, live_server, make_tenant):
    """A correctly signed token says tenant A; presenting it to B, whose user 1 exists, gets nothing."""
    a, b = make_tenant("jc"), make_tenant("jd")
    kid, key = current_signer(platform)
    token = jwt.encode(claims_for(platform, a.slug), key, "RS256", headers={"kid": kid})
    assert me(live_server, a.slug, token).status_code == 200
    assert_refused(me(live_server, b.slug, token))


# -- rotation and JWKS ---------------------------------------------------------------

def jwks_kids(live_server, slug=None) -> set:
    r = client(live_server, slug).get("/.well-known/jwks.json")
    assert r.status_code == 200
    keys = r.json()["keys"]
    for k in keys:
        assert k["kty"] == "RSA" and k["alg"] == "RS256" and k["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(k), "private key material in the JWKS"
    return {k["kid"] for k in keys}


def test_rotation_keeps_old_tokens_valid_and_publishes_old_and_new_kid(platform, live_server, tenant):
    old = api_sign_in(live_server, tenant.slug, owner_email(tenant))["access_token"]
    old_kid = jwt.get_unverified_header(old)["kid"]
    new_kid = platform.keyring.rotate()
    assert new_kid != old_kid
    kids = jwks_kids(live_server)
    assert {old_kid, new_kid} <= kids
    assert {old_kid, new_kid} <= jwks_kids(live_server, tenant.slug)
    # The old token still verifies (until it expires) ...
    assert me(live_server, tenant.slug, old).status_code == 200
    # ... and new tokens carry the new kid and verify too.
    new = api_sign_in(live_server, tenant.slug, owner_email(tenant))["access_token"]
    assert jwt.get_unverified_header(new)["kid"] == new_kid
    assert me(live_server, tenant.slug, new).status_code == 200
    # Each published key verifies the tokens of its kid, and only those.
    jwks = client(live_server, None).get("/.well-known/jwks.json").json()
    by_kid = {k["kid"]: jwt.PyJWK(k).key for k in jwks["keys"]}
    jwt.decode(old, by_kid[old_kid], algorithms=["RS256"], audience=AUDIENCE)
    jwt.decode(new, by_kid[new_kid], algorithms=["RS256"], audience=AUDIENCE)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(new, by_kid[old_kid], algorithms=["RS256"], audience=AUDIENCE)


def test_cli_rotation_is_honoured_by_a_running_server(platform, live_server, tenant, cli_env):
    old = api_sign_in(live_server, tenant.slug, owner_email(tenant))["access_token"]
    old_kid = jwt.get_unverified_header(old)["kid"]
    r = smsgw(cli_env, "keys", "rotate")
    assert r.returncode == 0, r.stderr
    new_kid = re.search(r"New signing key (\S+)\.", r.stdout).group(1)
    time.sleep(1.1)  # a server reloads its keys for an unknown kid at most once a second
    kid, key = current_signer(platform)
    assert kid == new_kid != old_kid
    # Another process signs with the new key at once: this server must accept it ...
    fresh = jwt.encode(claims_for(platform, tenant.slug), key, "RS256", headers={"kid": new_kid})
    assert me(live_server, tenant.slug, fresh).status_code == 200
    # ... while the tokens it signed before stay valid, and both keys are published.
    assert me(live_server, tenant.slug, old).status_code == 200
    assert {old_kid, new_kid} <= jwks_kids(live_server)
    new = api_sign_in(live_server, tenant.slug, owner_email(tenant))["access_token"]
    assert jwt.get_unverified_header(new)["kid"] == new_kid


def test_retired_key_leaves_the_jwks_once_its_tokens_have_expired(platform, live_server, tenant):
    old = api_sign_in(live_server, tenant.slug, owner_email(tenant))["access_token"]
    old_kid = jwt.get_unverified_header(old)["kid"]
    new_kid = platform.keyring.rotate()
    fresh_ring = KeyRing(platform)
    assert {old_kid, new_kid} <= {k["kid"] for k in fresh_ring.jwks()["keys"]}
    # Simulate the passing of time: the old key was retired longer ago than a token lives.
    admin_sql(platform, "UPDATE public.signing_key SET retired_at = now() - interval '2 hours' WHERE kid = %s",
              (old_kid,))
    later_ring = KeyRing(platform)
    kids = {k["kid"] for k in later_ring.jwks()["keys"]}
    assert old_kid not in kids and new_kid in kids
    with pytest.raises(TokenError) as exc:
        later_ring.verify_access(old)
    assert "unknown key" in str(exc.value)


# -- refresh tokens --------------------------------------------------------------------

def refresh_row(tenant, token):
    with tenant_transaction(tenant.ref):
        return RefreshToken.get(RefreshToken.token_hash == tokenformat.digest(token))


def test_refresh_rotates_within_a_family_that_dies_at_30_days(live_server, tenant):
    first = api_sign_in(live_server, tenant.slug, owner_email(tenant))["refresh_token"]
    row = refresh_row(tenant, first)
    assert abs((row.family_expires_at - row.created_at) - dt.timedelta(days=30)) < dt.timedelta(minutes=1)

    r = refresh(live_server, tenant.slug, first)
    assert r.status_code == 200, r.text
    second = r.json()["refresh_token"]
    assert second != first and r.json()["access_token"]
    assert me(live_server, tenant.slug, r.json()["access_token"]).status_code == 200
    row2 = refresh_row(tenant, second)
    # Rotation keeps the family and does not extend its life.
    assert row2.family_id == row.family_id
    assert row2.family_expires_at == row.family_expires_at

    # Thirty days later (simulated), the family is dead even though this token is unused.
    with tenant_transaction(tenant.ref):
        RefreshToken.update(family_expires_at=utcnow() - dt.timedelta(seconds=1)).where(
            RefreshToken.family_id == row.family_id).execute()
    r = refresh(live_server, tenant.slug, second)
    assert r.status_code == 401 and r.json()["code"] == "invalid-refresh-token"
    assert r.headers["Content-Type"].startswith(PROBLEM)


def test_refresh_token_used_twice_revokes_the_whole_family(live_server, tenant):
    first = api_sign_in(live_server, tenant.slug, owner_email(tenant))["refresh_token"]
    other_family = api_sign_in(live_server, tenant.slug, owner_email(tenant))["refresh_token"]
    r = refresh(live_server, tenant.slug, first)
    assert r.status_code == 200
    second = r.json()["refresh_token"]
    # The replay (by a thief or the client, we cannot tell) ...
    r = refresh(live_server, tenant.slug, first)
    assert r.status_code == 401 and r.json()["code"] == "invalid-refresh-token"
    # ... kills the second generation too.
    r = refresh(live_server, tenant.slug, second)
    assert r.status_code == 401
    family = refresh_row(tenant, first).family_id
    with tenant_transaction(tenant.ref):
        rows = list(RefreshToken.select().where(RefreshToken.family_id == family))
    assert len(rows) == 2 and all(x.revoked_at is not None for x in rows)
    # Another sign-in's family is untouched.
    assert refresh(live_server, tenant.slug, other_family).status_code == 200


def test_refresh_token_of_another_tenant_is_refused(live_server, make_tenant):
    a, b = make_tenant("ra"), make_tenant("rb")
    token = api_sign_in(live_server, a.slug, owner_email(a))["refresh_token"]
    r = refresh(live_server, b.slug, token)
    assert r.status_code == 401
    # It was not spent by the failed attempt.
    assert refresh(live_server, a.slug, token).status_code == 200


def test_password_change_on_the_account_page_revokes_refresh_tokens(live_server, tenant):
    tokens = api_sign_in(live_server, tenant.slug, owner_email(tenant))
    browser = sign_in(live_server, tenant.slug, owner_email(tenant))
    other_browser = sign_in(live_server, tenant.slug, owner_email(tenant))
    new_password = "a brand new passphrase"
    r = post_form(browser, "/account", {"action": "password", "current_password": OWNER_PASSWORD,
                                        "new_password": new_password})
    assert r.status_code == 302, r.text[:500]
    r = refresh(live_server, tenant.slug, tokens["refresh_token"])
    assert r.status_code == 401 and r.json()["code"] == "invalid-refresh-token"
    # Other browser sessions are signed out as well.
    r = other_browser.get("/account")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    # The new password works; the old one no longer does.
    api_sign_in(live_server, tenant.slug, owner_email(tenant), new_password)
    r = client(live_server, tenant.slug).post("/api/v1/auth/token",
                                             json={"email": owner_email(tenant), "password": OWNER_PASSWORD})
    assert r.status_code == 401


def test_the_browser_that_changed_the_password_stays_signed_in(live_server, tenant):
    """identity.revoke_user_credentials(keep_session_id=...) exists for this, and the account page says
    "Other sessions were signed out": the browser that made the change keeps its session."""
    browser = sign_in(live_server, tenant.slug, owner_email(tenant))
    other_browser = sign_in(live_server, tenant.slug, owner_email(tenant))
    r = post_form(browser, "/account", {"action": "password", "current_password": OWNER_PASSWORD,
                                        "new_password": "a brand new passphrase"})
    assert r.status_code == 302
    assert other_browser.get("/account").status_code == 302
    r = browser.get("/account")
    assert r.status_code == 200, r.headers.get("Location")


def test_set_password_revokes_refresh_tokens(platform, live_server, tenant):
    tokens = api_sign_in(live_server, tenant.slug, owner_email(tenant))
    with tenant_transaction(tenant.ref):
        set_password(User.get_by_id(1), "another fine passphrase", platform.pepper, platform.bcrypt_cost)
    assert refresh(live_server, tenant.slug, tokens["refresh_token"]).status_code == 401


def test_disabling_a_user_revokes_refresh_tokens_and_stops_their_access_token(platform, live_server, tenant):
    email_address = f"member@{tenant.slug}.example"
    user_id = add_user(platform, tenant, email_address, "member password 123")
    tokens = api_sign_in(live_server, tenant.slug, email_address, "member password 123")
    assert me(live_server, tenant.slug, tokens["access_token"]).json()["id"] == user_id

    owner = sign_in(live_server, tenant.slug, owner_email(tenant))
    r = post_form(owner, "/team", {"action": "disable", "user_id": str(user_id), "confirmed": "1"})
    assert r.status_code == 302, r.text[:500]

    assert_refused(me(live_server, tenant.slug, tokens["access_token"]), www_authenticate=False)
    assert refresh(live_server, tenant.slug, tokens["refresh_token"]).status_code == 401
    r = client(live_server, tenant.slug).post("/api/v1/auth/token",
                                             json={"email": email_address, "password": "member password 123"})
    assert r.status_code == 401
    # Enabling the account again does not resurrect the revoked refresh token.
    r = post_form(owner, "/team", {"action": "enable", "user_id": str(user_id)})
    assert r.status_code == 302
    assert refresh(live_server, tenant.slug, tokens["refresh_token"]).status_code == 401


def test_401_for_a_disabled_account_names_the_bearer_scheme(platform, live_server, tenant):
    email_address = f"gone@{tenant.slug}.example"
    user_id = add_user(platform, tenant, email_address, "member password 123")
    token = api_sign_in(live_server, tenant.slug, email_address, "member password 123")["access_token"]
    with tenant_transaction(tenant.ref):
        User.update(is_active=False).where(User.id == user_id).execute()
    assert_refused(me(live_server, tenant.slug, token))


def test_api_logout_revokes_refresh_tokens(live_server, tenant):
    tokens = api_sign_in(live_server, tenant.slug, owner_email(tenant))
    second = api_sign_in(live_server, tenant.slug, owner_email(tenant))
    r = client(live_server, tenant.slug).post("/api/v1/auth/logout", headers=bearer(tokens["access_token"]))
    assert r.status_code == 204, r.text
    assert refresh(live_server, tenant.slug, tokens["refresh_token"]).status_code == 401
    # Logout means every refresh token of this user.
    assert refresh(live_server, tenant.slug, second["refresh_token"]).status_code == 401


def test_page_logout_revokes_the_session_and_refresh_tokens(live_server, tenant):
    tokens = api_sign_in(live_server, tenant.slug, owner_email(tenant))
    browser = sign_in(live_server, tenant.slug, owner_email(tenant))
    stolen_cookie = browser.cookies.get("smsgw_session")
    r = post_form(browser, "/logout", {})
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert refresh(live_server, tenant.slug, tokens["refresh_token"]).status_code == 401
    # The session cookie, even if kept by someone, is dead.
    other = client(live_server, tenant.slug)
    other.cookies.set("smsgw_session", stolen_cookie)
    r = other.get("/account")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
