"""Quotas of the billing addon (issue 17, item 4): what a plan allows, answered where the work is asked.

* a hard-stop plan is filled to its last segment by 16 concurrent clients, none beyond it; the
  refusal is a 402 problem naming the limit, the usage and where to upgrade, and stores nothing;
* an overage plan accepts beyond its included segments and the meter counts the overage;
* a plan change reaches the cache by NOTIFY (no restart);
* a suspended or cancelled workspace reads but does not send (API, dashboard, compat surface);
* device and member limits refuse pairing and invites with a 402 of the same shape;
* the per-plan API rate answers 429 with Retry-After and RateLimit-* headers;
* warnings at 80 % and 100 %: a dashboard banner, one e-mail per level and period, never twice;
* a workspace without a subscription is on the default plan (``free``, in a real ``smsgw serve``).
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests

from addons.billing import metering, quotas
from core.clock import utcnow
from core.db import TenantContextMissing, after_transaction, app_db, tenant_transaction
from tests.support.identity import (OWNER_PASSWORD, add_user, admin_sql, mails_to, owner_email, post_form,
                                    sign_in, wait_for_mail)
from tests.support.messaging import row_counts, sql, wait_until
from tests.support.phones import api_client, api_token, pair_phone
from tests.support.problems import PROBLEM, problem
from tests.support.quotas import make_plan, set_status, subscribe, wait_forgotten
from tests.support.serve import start_serve, stop_serve

_numbers = itertools.count(1)


def numbers(n: int) -> list[str]:
    return [f"+1415{2000000 + next(_numbers) % 7000000:07d}" for _ in range(n)]


def billed(t) -> int:
    """The segments over the message tables themselves."""
    return sql(t, "SELECT coalesce(sum(m.segments), 0) FROM recipients r JOIN messages m ON m.id = r.message_id")[0][0]


def meter(t) -> int:
    now = utcnow()
    return metering.period_usage(t, now - dt.timedelta(days=1), now + dt.timedelta(days=1))


def assert_quota_problem(r, t, included: int) -> dict:
    body = problem(r, 402, "quota-exceeded")
    assert body["limit"] == "included_segments" and body["included"] == included
    link = urlsplit(body["upgrade_url"])
    assert (link.hostname, link.path) == (f"{t.slug}.localhost", "/billing")
    assert body["used"] + body["requested"] > included and body["used"] <= included
    assert "/billing" in body["detail"] and str(included) in body["detail"]
    return body


# -- segments ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("included", [60, 700], ids=["exact-path-only", "fast-then-exact"])
def test_sixteen_clients_fill_a_hard_stop_plan_to_its_last_segment_and_none_beyond(live_server, platform,
                                                                                  make_tenant, included):
    """700 starts 200 segments above the margin (500): the first sends pass from the cache alone,
    the last ones are serialized; 60 is inside the margin from the start."""
    t = make_tenant("qfill")
    subscribe(platform, t, make_plan(platform, included=included))
    token = api_token(t.slug, ["messages:send", "messages:read"])
    accepted, refusals, lock = [], [], threading.Lock()

    def client(i):
        c = live_server.client(t.slug)
        c.headers["Authorization"] = f"Bearer {token}"
        sizes = itertools.cycle([3, 1, 5, 2] if i % 2 else [2, 4, 1])
        while True:
            n = next(sizes)
            r = c.post("/api/v1/messages", json={"to": numbers(n), "text": f"fill {i}"})
            if r.status_code == 202:
                with lock:
                    accepted.append(n)
                    if sum(accepted) > included:  # beyond the plan: no need to go on
                        return
                continue
            body = assert_quota_problem(r, t, included)
            with lock:
                refusals.append(body)
            if n == 1:  # even one segment does not fit: the plan is full
                return

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(client, range(16)))
    assert sum(accepted) == included  # every one-segment send was refused only once all were used
    assert billed(t) == included == meter(t)
    assert refusals and all(b["used"] <= included for b in refusals)


def test_a_refused_batch_stores_nothing_and_a_smaller_send_still_fits(live_server, platform, make_tenant):
    t = make_tenant("qbatch")
    subscribe(platform, t, make_plan(platform, included=10))
    c = api_client(live_server, t.slug)
    assert c.post("/api/v1/messages", json={"to": numbers(4), "text": "x" * 200}).status_code == 202  # 2 segments
    before = row_counts(t)
    # A batch whose messages together need 4 + 4 segments: refused whole, though the first would fit.
    r = c.post("/api/v1/messages", json={"messages": [{"to": numbers(2), "text": "a" * 200},
                                                     {"to": numbers(4), "text": "b"}]})
    body = assert_quota_problem(r, t, 10)
    assert (body["used"], body["requested"]) == (8, 8)
    # The same Idempotency-Key later, with room made: nothing was remembered for the refusal.
    r = c.post("/api/v1/messages", json={"to": numbers(3), "text": "c"}, headers={"Idempotency-Key": "k-1"})
    assert_quota_problem(r, t, 10)
    assert row_counts(t) == before
    assert c.post("/api/v1/messages", json={"to": numbers(2), "text": "d"},
                  headers={"Idempotency-Key": "k-1"}).status_code == 202  # 2 more: exactly 10
    assert billed(t) == 10 == meter(t)
    assert_quota_problem(c.post("/api/v1/messages", json={"to": numbers(1), "text": "e"}), t, 10)


def test_an_overage_plan_accepts_beyond_its_included_segments_and_the_meter_counts_them(live_server, platform,
                                                                                        make_tenant):
    t = make_tenant("qover")
    subscribe(platform, t, make_plan(platform, included=5, overage=800))
    c = api_client(live_server, t.slug)
    for _ in range(4):
        assert c.post("/api/v1/messages", json={"to": numbers(3), "text": "over"}).status_code == 202
    assert billed(t) == 12 == meter(t)


def test_a_plan_change_reaches_the_cache_by_notify_and_sends_go_on(live_server, platform, make_tenant):
    t = make_tenant("qchange")
    subscribe(platform, t, make_plan(platform, included=3))
    c = api_client(live_server, t.slug)
    assert c.post("/api/v1/messages", json={"to": numbers(3), "text": "full"}).status_code == 202
    assert_quota_problem(c.post("/api/v1/messages", json={"to": numbers(1), "text": "no"}), t, 3)
    subscribe(platform, t, make_plan(platform, included=5, name="Bigger"))  # an upgrade, as the Billing page makes it
    wait_forgotten(t)
    assert c.post("/api/v1/messages", json={"to": numbers(2), "text": "yes"}).status_code == 202
    assert_quota_problem(c.post("/api/v1/messages", json={"to": numbers(1), "text": "no"}), t, 5)


def test_another_workspaces_full_plan_does_not_stop_this_one(live_server, platform, make_tenant):
    full, other = make_tenant("qfull"), make_tenant("qother")
    plan = make_plan(platform, included=2)
    subscribe(platform, full, plan)
    subscribe(platform, other, plan)
    a, b = api_client(live_server, full.slug), api_client(live_server, other.slug)
    assert a.post("/api/v1/messages", json={"to": numbers(2), "text": "a"}).status_code == 202
    assert_quota_problem(a.post("/api/v1/messages", json={"to": numbers(1), "text": "a"}), full, 2)
    assert b.post("/api/v1/messages", json={"to": numbers(2), "text": "b"}).status_code == 202


# -- a suspended or cancelled workspace ---------------------------------------------------------------

@pytest.mark.parametrize("status", ["suspended", "cancelled"])
def test_a_suspended_or_cancelled_workspace_reads_and_signs_in_but_does_not_send(live_server, platform,
                                                                                make_tenant, status):
    t = make_tenant("qsusp")
    subscribe(platform, t, make_plan(platform, included=100, overage=100))
    c = api_client(live_server, t.slug)
    assert c.post("/api/v1/messages", json={"to": numbers(1), "text": "before"}).status_code == 202
    set_status(platform, t, status)
    wait_forgotten(t)
    before = row_counts(t)
    body = problem(c.post("/api/v1/messages", json={"to": numbers(1), "text": "after"}), 402,
                   f"subscription-{status}")
    assert body["upgrade_url"].endswith("/billing") and "/billing" in body["detail"]
    assert ("unpaid" if status == "suspended" else "cancelled") in body["detail"]
    assert c.get("/api/v1/messages").status_code == 200  # reading goes on
    # The compat surface answers the same.
    compat = live_server.client(t.slug)
    r = compat.post("/3rdparty/v1/messages", json={"phoneNumbers": numbers(1), "textMessage": {"text": "x"}},
                    headers={"Authorization": c.headers["Authorization"], "Accept": PROBLEM})
    assert problem(r, 402, f"subscription-{status}")["upgrade_url"].endswith("/billing")
    # The dashboard: sign-in works, the send form says why.
    s = sign_in(live_server, t.slug, owner_email(t))
    r = post_form(s, "/send", {"to": numbers(1)[0], "text": "from the page"})
    assert r.status_code == 402 and "/billing" in r.text and "cannot send" in r.text
    assert 'id="quota-notice"' in s.get("/").text
    assert row_counts(t) == before


# -- devices and members ------------------------------------------------------------------------------

def test_the_device_limit_refuses_a_new_pairing_code_and_the_spending_of_an_older_one(live_server, platform,
                                                                                     make_tenant, tmp_path):
    t = make_tenant("qdev")
    subscribe(platform, t, make_plan(platform, devices=1))
    c = api_client(live_server, t.slug)
    spare = c.post("/api/v1/devices/pairing-codes", json={})  # made while there is room
    assert spare.status_code == 201
    pair_phone(live_server, t.slug, tmp_path / "one", client=c)
    body = problem(c.post("/api/v1/devices/pairing-codes", json={}), 402, "plan-limit")
    assert (body["limit"], body["allowed"], body["current"]) == ("max_devices", 1, 1)
    assert body["upgrade_url"].endswith("/billing")
    r = live_server.client(t.slug).post("/api/device/v1/register",
                                        json={"code": spare.json()["code"], "device": {"device_uid": "second"}})
    assert problem(r, 402, "plan-limit")["limit"] == "max_devices"
    assert sql(t, "SELECT count(*) FROM devices")[0][0] == 1
    # The page says it in words.
    s = sign_in(live_server, t.slug, owner_email(t))
    r = post_form(s, "/devices/pair", {})
    assert r.status_code == 402 and 'id="pair-refusal"' in r.text and "allows 1 phones" in r.text


def test_the_member_limit_refuses_an_invite_with_a_readable_message(live_server, platform, make_tenant):
    t = make_tenant("qmem")
    subscribe(platform, t, make_plan(platform, members=2))  # the owner and one more
    s = sign_in(live_server, t.slug, owner_email(t))
    assert post_form(s, "/team", {"action": "invite", "email": f"one@{t.slug}.example", "role": "user"}
                     ).status_code in (302, 303)
    r = post_form(s, "/team", {"action": "invite", "email": f"two@{t.slug}.example", "role": "user"})
    assert r.status_code == 402 and "allows 2 members" in r.text and "/billing" in r.text
    assert sql(t, "SELECT count(*) FROM users")[0][0] == 2
    assert mails_to(platform, f"two@{t.slug}.example") == []


# -- the API rate ----------------------------------------------------------------------------------

def test_the_plans_api_rate_answers_429_with_retry_after_and_ratelimit_headers(live_server, platform, make_tenant):
    t = make_tenant("qrate")
    subscribe(platform, t, make_plan(platform, per_minute=5))
    c = api_client(live_server, t.slug)
    r = c.get("/api/v1/messages")  # the plan is loaded in the background: this one is not counted
    assert r.status_code == 200 and "RateLimit-Limit" not in r.headers
    wait_until(lambda: quotas.cache.get(t.id) is not None, what="the plan to be loaded")
    for left in (4, 3, 2, 1, 0):
        r = c.get("/api/v1/messages")
        assert r.status_code == 200
        assert (r.headers["RateLimit-Limit"], r.headers["RateLimit-Remaining"]) == ("5", str(left))
        assert 1 <= int(r.headers["RateLimit-Reset"]) <= 60 and r.headers["RateLimit-Policy"] == "5;w=60"
    r = c.post("/api/v1/messages", json={"to": numbers(1), "text": "too fast"})
    body = problem(r, 429, "rate-limited")
    assert 1 <= int(r.headers["Retry-After"]) <= 60 and r.headers["RateLimit-Remaining"] == "0"
    assert body["allowed"] == 5 and body["upgrade_url"].endswith("/billing")
    assert row_counts(t)["messages"] == 0
    # Another workspace's budget is its own; a phone's protocol is not the customer's API.
    other = make_tenant("qrate2")
    subscribe(platform, other, make_plan(platform, per_minute=5))
    assert api_client(live_server, other.slug).get("/api/v1/messages").status_code == 200


# -- warnings ----------------------------------------------------------------------------------------

def test_warnings_at_80_and_100_percent_are_a_banner_and_one_mail_each_per_period(live_server, platform,
                                                                                   make_tenant):
    t = make_tenant("qwarn")
    subscribe(platform, t, make_plan(platform, included=10, overage=500))
    member = f"member@{t.slug}.example"
    add_user(platform, t, member, OWNER_PASSWORD)
    c = api_client(live_server, t.slug)
    s = sign_in(live_server, t.slug, owner_email(t))
    assert c.post("/api/v1/messages", json={"to": numbers(7), "text": "seven"}).status_code == 202
    assert 'id="quota-notice"' not in s.get("/").text
    assert c.post("/api/v1/messages", json={"to": numbers(1), "text": "eight"}).status_code == 202
    assert len(wait_for_mail(platform, owner_email(t), "80% of the included segments")) == 1
    page = s.get("/").text
    assert 'id="quota-notice"' in page and "80 %" in page and 'href="/billing"' in page
    assert c.post("/api/v1/messages", json={"to": numbers(4), "text": "twelve"}).status_code == 202
    full = wait_for_mail(platform, owner_email(t), "all 10 included segments")
    assert len(full) == 1 and "overage" in full[0].get_body(preferencelist=("plain",)).get_content()
    assert "overage" in s.get("/").text
    # Restarted processes (nothing in memory) and more sends: no mail again this period.
    quotas.cache.forget(None)
    assert c.post("/api/v1/messages", json={"to": numbers(1), "text": "more"}).status_code == 202
    assert quotas.send_notices(t) == 0
    assert len(mails_to(platform, owner_email(t), "80% of the included segments")) == 1
    assert len(mails_to(platform, owner_email(t), "all 10")) == 1
    assert mails_to(platform, member) == []  # a member is not the owner
    rows = admin_sql(platform, "SELECT level, used, included FROM public.billing_quota_notices WHERE tenant_id = %s "
                     "ORDER BY level", (t.id,), fetch=True)
    assert [(lvl, inc) for lvl, _used, inc in rows] == [(80, 10), (100, 10)] and rows[0][1] >= 8


def test_a_new_period_warns_again(live_server, platform, make_tenant):
    t = make_tenant("qperiod")
    plan = make_plan(platform, included=2, overage=500)
    now = dt.datetime.now(dt.timezone.utc)
    subscribe(platform, t, plan, start=now - dt.timedelta(days=31), end=now - dt.timedelta(days=1))
    c = api_client(live_server, t.slug)
    assert c.post("/api/v1/messages", json={"to": numbers(2), "text": "p"}).status_code == 202
    wait_until(lambda: len(mails_to(platform, owner_email(t), "all 2")) == 1, what="the first period's warning")
    subscribe(platform, t, plan, start=dt.datetime.now(dt.timezone.utc))  # renewed: a new period from now
    wait_forgotten(t)
    assert c.post("/api/v1/messages", json={"to": numbers(2), "text": "p"}).status_code == 202
    wait_until(lambda: len(mails_to(platform, owner_email(t), "all 2")) == 2, what="the new period's warning")


# -- no subscription: the default plan, in a real process ------------------------------------------

def test_a_workspace_without_a_subscription_is_on_the_free_plan(cli_env, make_tenant):
    t = make_tenant("qfree")
    token = api_token(t.slug, ["messages:send", "messages:read"])
    proc, port, _ = start_serve(dict(cli_env, SMSGW_BILLING_DEFAULT_PLAN="free"))
    try:
        c = requests.Session()
        c.headers.update({"Host": f"{t.slug}.localhost:{port}", "Authorization": f"Bearer {token}"})
        url = f"http://127.0.0.1:{port}/api/v1/messages"
        r = c.post(url, json={"to": numbers(201), "text": "free"})
        body = problem(r, 402, "quota-exceeded")
        assert (body["plan"], body["included"], body["used"], body["requested"]) == ("free", 200, 0, 201)
        assert c.post(url, json={"to": numbers(200), "text": "free"}).status_code == 202
        assert problem(c.post(url, json={"to": numbers(1), "text": "free"}), 402, "quota-exceeded")["used"] == 200
    finally:
        stop_serve(proc)
    assert billed(t) == 200


def test_enabling_a_disabled_member_counts_against_the_member_limit(live_server, platform, make_tenant):
    t = make_tenant("qenable")
    subscribe(platform, t, make_plan(platform, members=2))
    dormant = add_user(platform, t, f"dormant@{t.slug}.example", active=False)
    add_user(platform, t, f"active@{t.slug}.example")
    s = sign_in(live_server, t.slug, owner_email(t))
    r = post_form(s, "/team", {"action": "enable", "user_id": str(dormant)})
    assert r.status_code == 402 and "allows 2 members" in r.text
    assert sql(t, "SELECT is_active FROM users WHERE id = %s", (dormant,))[0][0] is False


def test_the_dashboards_own_session_calls_are_not_counted_against_the_api_rate(live_server, platform, make_tenant):
    t = make_tenant("qsess")
    subscribe(platform, t, make_plan(platform, per_minute=2))
    s = sign_in(live_server, t.slug, owner_email(t))
    for _ in range(4):
        r = s.get("/api/v1/messages")
        assert r.status_code == 200 and "RateLimit-Limit" not in r.headers


# -- the mechanism: sends let through without the lock and not committed yet ------------------------

def test_an_exact_check_counts_the_sends_let_through_without_the_lock_that_are_not_committed_yet(platform,
                                                                                                make_tenant):
    """600 included, margin 500: a send of 100 passes from the cache alone and stays uncommitted; a
    send of 501 then takes the exact path, whose sum cannot see the 100 yet: it must still refuse."""
    t = make_tenant("qflight")
    subscribe(platform, t, make_plan(platform, included=600))
    assert platform.settings.billing_exact_margin == 500
    first_in, release = threading.Event(), threading.Event()

    def first():
        with tenant_transaction(t.ref):
            assert quotas.messages_submitting(t, [100]) is None  # the fast path: no statement, no lock
            first_in.set()
            release.wait(10)

    holder = threading.Thread(target=first)
    holder.start()
    try:
        assert first_in.wait(10)
        assert quotas.cache.inflight(t.id) == 100
        # A change announced meanwhile (the subscription's own NOTIFY may arrive now, in a loaded
        # run) drops the view, not what is in flight: the next view's exact sum still counts it.
        quotas.cache.forget(str(t.id))
        with tenant_transaction(t.ref):
            refusals = quotas.messages_submitting(t, [501, 400])
        assert refusals[0].status == 402 and refusals[0].extra["used"] == 100 and refusals[1] is None
    finally:
        release.set()
        holder.join(10)
    assert quotas.cache.inflight(t.id) == 0  # the first transaction ended


def test_after_transaction_callbacks_run_once_the_outermost_transaction_ended(platform, make_tenant):
    t = make_tenant("qafter")
    seen = []
    with tenant_transaction(t.ref):
        with tenant_transaction(t.ref):  # joins the outer one
            after_transaction(lambda committed: seen.append(("nested", committed, app_db.in_transaction())))
        assert seen == []
    assert seen == [("nested", True, False)]
    with pytest.raises(ZeroDivisionError):
        with tenant_transaction(t.ref):
            after_transaction(lambda committed: seen.append(("failed", committed)))
            1 / 0
    assert seen[-1] == ("failed", False)
    with pytest.raises(TenantContextMissing):
        after_transaction(seen.append)


def test_a_view_read_while_a_change_is_announced_is_not_kept(platform, make_tenant):
    """A process reads a workspace's plan; before it stores what it read, the NOTIFY of a plan change
    arrives. What it read is older than the change: it answers that one request and is not kept, or
    the old plan would hold until the next change (seen once as a 402 after an upgrade)."""
    from addons.billing import quotas

    t = make_tenant("qrace")
    subscribe(platform, t, make_plan(platform, included=3))
    cache = quotas.cache
    # Read and kept once nothing is announced meanwhile. (The subscription's own NOTIFY, or another
    # test's in a parallel run, may still arrive during a read: that read is rightly not kept.)
    deadline = time.monotonic() + 10
    while True:
        cache.forget(str(t.id))
        stale = quotas.view_of(t)
        if cache.get(t.id) is stale or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert cache.get(t.id) is stale and stale.plan.included_segments == 3
    for announced in (str(t.id), "*"):
        cache.forget(str(t.id))
        mark = cache.mark(t.id)
        cache.forget(announced)  # the change's NOTIFY, between the read and the store
        assert cache.put(stale, mark) is stale and cache.get(t.id) is None
    cache.forget(str(t.id))  # a near-limit notice is no change: a view read meanwhile is kept
    mark = cache.mark(t.id)
    cache.forget(f"near:{t.id}")
    assert cache.put(stale, mark) is stale and cache.get(t.id) is stale
    subscribe(platform, t, make_plan(platform, included=5, name="Bigger"))
    cache.forget(str(t.id))
    assert quotas.view_of(t).plan.included_segments == 5
