"""Password sign-ins are throttled per account *and source*: a stranger's failures cost the stranger.

Every way to sign in with a password goes through one throttle: the sign-in page,
``POST /api/v1/auth/token``, and HTTP Basic on the compat API (``/3rdparty/v1``, where
scripts send email and password with every call). Whoever hammers an account from
their addresses is slowed and then refused there; the owner, from an address that did
not fail, still signs in at full speed, and API tokens are never throttled at all.

Each test uses addresses of its own (``X-Real-IP``, which the test server honours as a
proxy-set header) so that counts never mix between tests.
"""

from __future__ import annotations

import base64
import secrets
import time

import psycopg2
import pytest

from core.throttle import ThrottlePolicy, account_key, account_source_key, ip_key
from tests.support.identity import OWNER_PASSWORD, client, fetch_xsrf, fresh_ip, owner_email, post_form
from tests.support.phones import api_token

TOKEN_URL = "/api/v1/auth/token"


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("thr")


@pytest.fixture
def throttle_policy(platform):
    """Set the live server's throttle policy for one test, and put the original back."""
    original = platform.throttle.policy

    def use(**kwargs):
        platform.throttle.policy = ThrottlePolicy(**kwargs)

    yield use
    platform.throttle.policy = original


def basic(email_address: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{email_address}:{password}".encode()).decode()}


def token_api(c, email_address, password):
    return c.post(TOKEN_URL, json={"email": email_address, "password": password})


def compat_basic(c, email_address, password):
    return c.get("/3rdparty/v1/devices", headers=basic(email_address, password))


def login_page(c, email_address, password):
    fetch_xsrf(c)
    return post_form(c, "/login", {"email": email_address, "password": password})


def seed_failures(platform, keys, n):
    """Fixture data: ``n`` failures under each of ``keys``, five minutes ago (as the serving role)."""
    conn = psycopg2.connect(platform.app_url)
    try:
        with conn, conn.cursor() as cur:
            cur.executemany("INSERT INTO public.login_failure (key, at) VALUES (%s, now() - interval '5 minutes')",
                            [(k,) for k in keys for _ in range(n)])
    finally:
        conn.close()


def test_a_strangers_failures_from_one_address_do_not_stop_the_owner_at_another(
        live_server, tenant, throttle_policy):
    throttle_policy(base_delay=0, per_account=50)
    email_address = owner_email(tenant)
    ip_a, ip_b = fresh_ip(), fresh_ip()
    stranger = client(live_server, tenant.slug, ip_a)

    # 50 wrong guesses from A, half through the token API and half as Basic auth on the compat API.
    for i in range(25):
        assert token_api(stranger, email_address, f"guess {i}").status_code == 401
        assert compat_basic(stranger, email_address, f"basic guess {i}").status_code == 401
    # A is throttled for this account now, on every way in, even with the right password.
    assert token_api(stranger, email_address, OWNER_PASSWORD).status_code == 429
    r = compat_basic(stranger, email_address, OWNER_PASSWORD)
    assert r.status_code == 429 and r.json()["data"]["code"] == "too-many-attempts"
    assert login_page(client(live_server, tenant.slug, ip_a), email_address, OWNER_PASSWORD).status_code == 429

    # The owner at B, which did not fail, signs in on every way in.
    owner = client(live_server, tenant.slug, ip_b)
    r = token_api(owner, email_address, OWNER_PASSWORD)
    assert r.status_code == 200 and r.json()["access_token"], r.text
    assert compat_basic(owner, email_address, OWNER_PASSWORD).status_code == 200
    r = owner.post("/3rdparty/v1/auth/token", json={"scopes": ["messages:read"]},
                   headers=basic(email_address, OWNER_PASSWORD))
    assert r.status_code == 201, r.text
    r = login_page(client(live_server, tenant.slug, ip_b), email_address, OWNER_PASSWORD)
    assert r.status_code == 302 and r.headers["Location"] == "/"

    # A valid API token is never throttled, not even from the throttled address.
    token = {"Authorization": f"Bearer {api_token(tenant.slug)}"}
    assert stranger.get("/3rdparty/v1/devices", headers=token).status_code == 200
    assert stranger.get("/api/v1/messages", headers=token).status_code == 200
    # ... and A stays refused for the account.
    assert token_api(stranger, email_address, OWNER_PASSWORD).status_code == 429


def test_the_owner_is_not_slowed_down_by_a_strangers_failures(platform, live_server, tenant):
    assert platform.throttle.policy == ThrottlePolicy()  # the shipped policy: from the 3rd failure, 0.25 s doubling
    email_address = owner_email(tenant)
    account = account_key(tenant.slug, email_address)
    ip_a, ip_b = fresh_ip(), fresh_ip()
    # Four failures from A within the last 15 minutes.
    seed_failures(platform, [account, account_source_key(account, ip_a), ip_key(ip_a)], 4)

    t0 = time.perf_counter()
    assert token_api(client(live_server, tenant.slug, ip_b), email_address, OWNER_PASSWORD).status_code == 200
    owner_took = time.perf_counter() - t0
    t0 = time.perf_counter()
    assert token_api(client(live_server, tenant.slug, ip_a), email_address, "guess").status_code == 401
    stranger_took = time.perf_counter() - t0
    assert owner_took < 0.4, owner_took  # B pays nothing for A's failures ...
    assert stranger_took >= 0.5, stranger_took  # ... while A's fifth failure waits 0.5 s


def test_a_distributed_attack_leaves_the_account_open_to_addresses_that_did_not_fail(
        live_server, tenant, throttle_policy):
    throttle_policy(base_delay=0, account_alarm=12, alarm_per_source=2)
    email_address = owner_email(tenant)
    bots = [client(live_server, tenant.slug, fresh_ip()) for _ in range(6)]
    for bot in bots:  # 12 failures on the account in all: it is under attack
        for i in range(2):
            assert token_api(bot, email_address, f"guess {i}").status_code == 401
    # Every address that already failed twice is refused for this account now ...
    for bot in bots:
        assert token_api(bot, email_address, OWNER_PASSWORD).status_code == 429
    # ... a new one gets its two failures and no more ...
    late = client(live_server, tenant.slug, fresh_ip())
    assert [token_api(late, email_address, f"late guess {i}").status_code for i in range(3)] == [401, 401, 429]
    # ... and the owner, at an address that did not fail, signs in (a typo first costs nothing).
    owner = client(live_server, tenant.slug, fresh_ip())
    assert token_api(owner, email_address, "a typo").status_code == 401
    assert token_api(owner, email_address, OWNER_PASSWORD).status_code == 200


def test_ipv6_addresses_count_by_their_64(live_server, tenant, throttle_policy):
    """One IPv6 subscriber holds a whole /64: every address in it is one source."""
    throttle_policy(base_delay=0, per_ip=3)
    prefix = f"2001:db8:{secrets.randbelow(0xffff):x}:{secrets.randbelow(0xffff):x}"
    for i in range(3):
        c = client(live_server, tenant.slug, f"{prefix}::{i + 1:x}")
        assert token_api(c, f"someone{i}@{tenant.slug}.example", "guess").status_code == 401
    assert token_api(client(live_server, tenant.slug, f"{prefix}:1:2:3:4"), owner_email(tenant),
                     OWNER_PASSWORD).status_code == 429
    neighbour = f"2001:db8:{secrets.randbelow(0xffff):x}:{secrets.randbelow(0xffff):x}::1"
    assert token_api(client(live_server, tenant.slug, neighbour), owner_email(tenant),
                     OWNER_PASSWORD).status_code == 200


def test_password_reset_mails_stay_capped_per_account_from_all_addresses(platform, tenant):
    """Reset mails cost the account holder, whoever asks: five an hour for one address, however many ask."""
    key = "reset:" + account_key(tenant.slug, f"victim-{secrets.token_hex(3)}@{tenant.slug}.example")
    verdicts = [platform.reset_throttle.begin(key, fresh_ip(), False).allowed for _ in range(6)]
    assert verdicts == [True] * 5 + [False]
