"""Password hashing, the password policy on every form that sets one, and login throttling.

Throttling tests send ``X-Real-IP`` (the test server honours it) so each test
has an IP of its own and the per-IP budget of 127.0.0.1 is not spent for the
rest of the suite.
"""

from __future__ import annotations

import secrets
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import bcrypt
import psycopg2
import pytest

from core import passwords
from core.db import tenant_transaction
from core.identity import set_password
from core.throttle import ThrottlePolicy, account_key, account_source_key
from core.users import User
from tests.conftest import make_settings
from tests.support.identity import (OWNER_PASSWORD, add_user, api_sign_in, audit_rows, client, fetch_xsrf, fresh_ip,
                                    link_token, mails_to, owner_email, post_form, sign_in, signup_acceptance, wait_for_mail)
from tests.support.worker import run_worker_until

TOKEN_URL = "/api/v1/auth/token"


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("pw")


@pytest.fixture
def throttle_policy(platform):
    """Set the live server's throttle policy for one test, and put the original back."""
    original = platform.throttle.policy

    def use(**kwargs):
        platform.throttle.policy = ThrottlePolicy(**kwargs)

    yield use
    platform.throttle.policy = original


def api_attempt(c, email_address, password):
    return c.post(TOKEN_URL, json={"email": email_address, "password": password})


def seed_failures(platform, key, n):
    """Fixture data: ``n`` failures recorded for ``key`` earlier this hour (as the serving role)."""
    conn = psycopg2.connect(platform.app_url)
    try:
        with conn, conn.cursor() as cur:
            cur.executemany("INSERT INTO public.login_failure (key, at) VALUES (%s, now() - interval '5 minutes')",
                            [(key,)] * n)
    finally:
        conn.close()


# -- hashing ----------------------------------------------------------------------------

def test_long_multibyte_passwords_differing_after_byte_72_do_not_collide(platform, live_server, tenant):
    head = "é€" * 40  # 200 bytes of UTF-8
    first, second = head + "first", head + "second"
    assert first.encode()[:72] == second.encode()[:72] and len(first.encode()) > 72
    stored = passwords.hash_password(first, platform.pepper, platform.bcrypt_cost)
    assert passwords.verify_password(first, stored, platform.pepper)
    assert not passwords.verify_password(second, stored, platform.pepper)
    # Differing only in the very last of 1,024 characters is still a different password.
    long_a, long_b = "ü" * 1023 + "a", "ü" * 1023 + "b"
    stored_long = passwords.hash_password(long_a, platform.pepper, platform.bcrypt_cost)
    assert passwords.verify_password(long_a, stored_long, platform.pepper)
    assert not passwords.verify_password(long_b, stored_long, platform.pepper)

    # End to end: the owner's password becomes ``first``; ``second`` does not sign in.
    with tenant_transaction(tenant.ref):
        set_password(User.get_by_id(1), first, platform.pepper, platform.bcrypt_cost)
    c = client(live_server, tenant.slug, fresh_ip())
    assert api_attempt(c, owner_email(tenant), second).status_code == 401
    assert api_attempt(c, owner_email(tenant), first).status_code == 200
    sign_in(live_server, tenant.slug, owner_email(tenant), first, ip=fresh_ip())


def test_stored_hashes_use_the_configured_cost_and_the_default_is_at_least_12(platform, test_env, tenant):
    with tenant_transaction(tenant.ref):
        stored = User.get_by_id(1).password_hash
    assert stored.startswith("$2b$")
    assert passwords.hash_cost(stored) == platform.bcrypt_cost == 4  # the suite's fast setting
    # The cost follows the configuration.
    assert passwords.hash_cost(passwords.hash_password("ten chars!!", platform.pepper, 6)) == 6
    # Out of the box it is 12 or more, and a real hash made with the default shows it.
    from core.platform import Platform

    try:
        assert Platform(make_settings(test_env)).bcrypt_cost >= 12
    finally:
        # Building a Platform configures every addon with it (smsgw_configure); hand them back the
        # session's, or a later test module in this process would run against the throwaway one.
        platform.registry.hook.smsgw_configure(platform=platform)
    assert passwords.DEFAULT_COST >= 12
    real = passwords.hash_password("a long enough password", platform.pepper)
    assert passwords.hash_cost(real) == passwords.DEFAULT_COST
    assert passwords.verify_password("a long enough password", real, platform.pepper)


def test_stored_hash_is_useless_without_the_pepper(platform, tenant):
    with tenant_transaction(tenant.ref):
        stored = User.get_by_id(1).password_hash
    # bcrypt of the bare password does not match: the hash is of a keyed pre-hash.
    assert not bcrypt.checkpw(OWNER_PASSWORD.encode(), stored.encode())
    assert not passwords.verify_password(OWNER_PASSWORD, stored, b"another pepper")
    assert passwords.verify_password(OWNER_PASSWORD, stored, platform.pepper)


# -- policy on sign-up and reset -------------------------------------------------------

def signup(live_server, slug, password):
    c = client(live_server, None)
    fetch_xsrf(c, "/signup")
    return post_form(c, "/signup", {"company": "Policy Co", "slug": slug, "email": f"owner@{slug}.example",
                                    "password": password, **signup_acceptance(c)})


@pytest.mark.parametrize("password, message", [
    ("123456789", "at least 10 characters"),
    ("x" * 1025, "at most 1024 characters"),
    ("€" * 1025, "at most 1024 characters"),
])
def test_signup_refuses_passwords_outside_10_to_1024_with_a_clear_message(platform, live_server, password, message):
    slug = f"pol-{secrets.token_hex(4)}"
    r = signup(live_server, slug, password)
    assert r.status_code == 422, r.text[:500]
    assert message in r.text
    assert platform.tenant_cache.loader(slug) is None


@pytest.mark.parametrize("password", ["0123456789", "€" * 1024])
def test_signup_accepts_passwords_of_10_and_1024_characters(platform, live_server, password):
    slug = f"pol-{secrets.token_hex(4)}"
    try:
        r = signup(live_server, slug, password)
        assert r.status_code == 302, r.text[:500]
        assert platform.tenant_cache.loader(slug) is not None
        sign_in(live_server, slug, f"owner@{slug}.example", password, ip=fresh_ip())
    finally:
        if platform.tenant_cache.loader(slug) is not None:
            platform.tenants.delete(slug)


def reset_link(platform, live_server, tenant):
    c = client(live_server, tenant.slug)
    fetch_xsrf(c, "/forgot-password")
    before = len(wait_for_mail(platform, owner_email(tenant), "Reset your password", count=0))
    r = post_form(c, "/forgot-password", {"email": owner_email(tenant)})
    assert r.status_code == 200
    # The mail goes out from the worker (see test_forgot_password.py).
    run_worker_until(platform, lambda: len(mails_to(platform, owner_email(tenant), "Reset your password")) > before)
    mails = wait_for_mail(platform, owner_email(tenant), "Reset your password", count=before + 1)
    assert len(mails) == before + 1
    return c, link_token(mails[-1], "/reset-password")


def test_reset_enforces_the_policy_then_accepts_a_good_password(platform, live_server, tenant):
    c, token = reset_link(platform, live_server, tenant)
    r = c.get(f"/reset-password?token={token}")
    assert r.status_code == 200
    for bad, message in (("short", "at least 10 characters"), ("y" * 1025, "at most 1024 characters")):
        r = post_form(c, "/reset-password", {"token": token, "password": bad})
        assert r.status_code == 422, r.text[:300]
        assert message in r.text
    # The refusals did not spend the link, and did not change the password.
    api_sign_in(live_server, tenant.slug, owner_email(tenant), OWNER_PASSWORD, ip=fresh_ip())
    new_password = "z" * 1024
    r = post_form(c, "/reset-password", {"token": token, "password": new_password})
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    api_sign_in(live_server, tenant.slug, owner_email(tenant), new_password, ip=fresh_ip())
    # A reset link works once.
    r = post_form(c, "/reset-password", {"token": token, "password": "yet another password"})
    assert r.status_code == 400


def test_account_page_enforces_the_policy(live_server, tenant):
    browser = sign_in(live_server, tenant.slug, owner_email(tenant))
    for bad, message in (("short", "at least 10 characters"), ("q" * 1025, "at most 1024 characters")):
        r = post_form(browser, "/account", {"action": "password", "current_password": OWNER_PASSWORD,
                                            "new_password": bad})
        assert r.status_code == 422 and message in r.text
    api_sign_in(live_server, tenant.slug, owner_email(tenant), OWNER_PASSWORD, ip=fresh_ip())


# -- throttling -------------------------------------------------------------------------

def test_default_throttle_budgets():
    policy = ThrottlePolicy()
    assert policy.per_account == 100 and policy.per_ip == 300
    assert policy.base_delay > 0 and policy.max_delay >= policy.base_delay


def test_101st_failure_is_refused_and_an_unknown_email_gets_byte_identical_answers(
        platform, live_server, tenant, throttle_policy):
    throttle_policy(base_delay=0)
    c = client(live_server, tenant.slug, fresh_ip())
    known, unknown = owner_email(tenant), f"nobody-{secrets.token_hex(3)}@{tenant.slug}.example"

    first_known = api_attempt(c, known, "wrong password 0")
    first_unknown = api_attempt(c, unknown, "wrong password 0")
    assert first_known.status_code == first_unknown.status_code == 401
    assert first_known.content == first_unknown.content
    assert first_known.headers["Content-Type"] == first_unknown.headers["Content-Type"]

    for i in range(1, 100):
        r = api_attempt(c, known, f"wrong password {i}")
        assert r.status_code == 401, (i, r.text)
    # Failures 1 to 100 were answered; the 101st is refused, even with the right password.
    refused_known = api_attempt(c, known, "wrong password 100")
    assert refused_known.status_code == 429, refused_known.text
    assert refused_known.json()["code"] == "too-many-attempts"
    assert refused_known.headers.get("Retry-After")
    assert api_attempt(c, known, OWNER_PASSWORD).status_code == 429
    throttled = audit_rows(platform, tenant.id, "login.throttled")
    assert len(throttled) == 2 and all(t["actor_name"] == known for t in throttled)

    # The unknown address: 1 real failure above, 99 more from this address earlier this hour, then the 101st.
    seed_failures(platform, account_source_key(account_key(tenant.slug, unknown), c.headers["X-Real-IP"]), 99)
    refused_unknown = api_attempt(c, unknown, "wrong password 100")
    assert refused_unknown.status_code == 429
    assert refused_unknown.content == refused_known.content
    for header in ("Content-Type", "Retry-After", "WWW-Authenticate"):
        assert refused_unknown.headers.get(header) == refused_known.headers.get(header), header

    # The sign-in page answers both the same way too.
    page = client(live_server, tenant.slug, c.headers["X-Real-IP"])
    fetch_xsrf(page)
    answers = [post_form(page, "/login", {"email": e, "password": "wrong password"}) for e in (known, unknown)]
    assert [a.status_code for a in answers] == [429, 429]
    assert all("Too many failed sign-ins" in a.text for a in answers)


def test_unknown_email_costs_as_much_time_as_a_wrong_password(live_server, tenant, throttle_policy):
    """No timing oracle: an unknown address must not answer measurably slower (or faster) than a real one."""
    throttle_policy(base_delay=0)
    c = client(live_server, tenant.slug, fresh_ip())
    known, unknown = owner_email(tenant), f"ghost-{secrets.token_hex(3)}@{tenant.slug}.example"
    api_attempt(c, unknown, "warm-up password")  # first use builds the dummy hash
    times = {known: [], unknown: []}
    for i in range(5):
        for who in (known, unknown):
            t0 = time.perf_counter()
            assert api_attempt(c, who, f"wrong password {i}").status_code == 401
            times[who].append(time.perf_counter() - t0)
    diff = statistics.median(times[unknown]) - statistics.median(times[known])
    assert abs(diff) < 0.12, f"unknown email {diff * 1000:.0f} ms slower than a wrong password: {times}"


def test_per_ip_cap_refuses_every_account_from_that_ip(platform, live_server, make_tenant, throttle_policy):
    throttle_policy(base_delay=0, per_ip=6)
    a, b = make_tenant("ipa"), make_tenant("ipb")
    attacker_ip, other_ip = fresh_ip(), fresh_ip()
    c = client(live_server, a.slug, attacker_ip)
    for i in range(6):
        r = api_attempt(c, owner_email(a), f"wrong password {i}")
        assert r.status_code == 401
    # From that IP nothing more is checked, even a right password on another tenant ...
    r = api_attempt(c, owner_email(a), OWNER_PASSWORD)
    assert r.status_code == 429
    r = api_attempt(client(live_server, b.slug, attacker_ip), owner_email(b), OWNER_PASSWORD)
    assert r.status_code == 429
    # ... while another IP signs in normally.
    assert api_attempt(client(live_server, a.slug, other_ip), owner_email(a), OWNER_PASSWORD).status_code == 200


def test_known_device_is_not_locked_out_by_an_attackers_failures(platform, live_server, tenant, throttle_policy):
    """The attacker and the owner share an address (one office, one carrier NAT): the owner's browser that
    signed in before still gets in, where anyone else from that address is refused."""
    throttle_policy(base_delay=0)
    shared_ip = fresh_ip()
    device = sign_in(live_server, tenant.slug, owner_email(tenant), ip=shared_ip)
    assert device.cookies.get("smsgw_known")
    member_email = f"member@{tenant.slug}.example"
    add_user(platform, tenant, member_email, "member password 123")

    attacker = client(live_server, tenant.slug, shared_ip)
    for victim in (owner_email(tenant), member_email):
        for i in range(100):
            assert api_attempt(attacker, victim, f"guess {i}").status_code == 401
        assert api_attempt(attacker, victim, "guess 100").status_code == 429

    # Another browser at that address with the right password is refused for now ...
    stranger = client(live_server, tenant.slug, shared_ip)
    fetch_xsrf(stranger)
    r = post_form(stranger, "/login", {"email": owner_email(tenant), "password": OWNER_PASSWORD})
    assert r.status_code == 429
    # ... and a forged (unsigned) known-device cookie does not help.
    forged = client(live_server, tenant.slug, shared_ip)
    fetch_xsrf(forged)
    forged.cookies.set("smsgw_known", f"{tenant.slug}:1")
    r = post_form(forged, "/login", {"email": owner_email(tenant), "password": OWNER_PASSWORD})
    assert r.status_code == 429

    # The owner's own browser, which signed in before, still gets in.
    r = post_form(device, "/logout", {})
    assert r.status_code == 302
    r = post_form(device, "/login", {"email": owner_email(tenant), "password": OWNER_PASSWORD})
    assert r.status_code == 302, r.text[:500]
    assert device.get("/account").status_code == 200
    # That browser is trusted for the account it signed in to, not for every account.
    post_form(device, "/logout", {})
    r = post_form(device, "/login", {"email": member_email, "password": "member password 123"})
    assert r.status_code == 429


def test_parallel_guesses_cannot_exceed_the_account_budget(platform, live_server, tenant, throttle_policy):
    throttle_policy(base_delay=0)
    ip = fresh_ip()
    c = client(live_server, tenant.slug, ip)
    for i in range(95):
        assert api_attempt(c, owner_email(tenant), f"guess {i}").status_code == 401

    def guess(i):
        return api_attempt(client(live_server, tenant.slug, ip), owner_email(tenant), f"parallel guess {i}").status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(guess, range(20)))
    assert set(statuses) <= {401, 429}
    # Only five guesses were left in this hour's budget.
    assert statuses.count(401) <= 5, statuses


def test_growing_delay_after_repeated_failures(platform, live_server, tenant):
    assert platform.throttle.policy == ThrottlePolicy()  # the shipped policy
    c = client(live_server, tenant.slug, fresh_ip())
    durations = []
    for i in range(5):
        t0 = time.perf_counter()
        assert api_attempt(c, owner_email(tenant), f"typo {i}").status_code == 401
        durations.append(time.perf_counter() - t0)
    # The first failures cost nothing extra; the 4th and 5th wait 0.25 s and 0.5 s.
    assert durations[3] >= 0.25 and durations[4] >= 0.5, durations
    assert durations[4] - min(durations[:3]) >= 0.4, durations
    # A successful sign-in clears the account's failures: the next typo is fast again.
    assert api_attempt(c, owner_email(tenant), OWNER_PASSWORD).status_code == 200
    t0 = time.perf_counter()
    assert api_attempt(c, owner_email(tenant), "typo again").status_code == 401
    assert time.perf_counter() - t0 < 0.5  # uncleared, this 6th failure would wait 1 s
