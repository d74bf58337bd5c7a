"""Subscriptions (issue 17, item 2): one per workspace, trial -> active -> past_due -> suspended ->
cancelled, renewal at the period's end as due work, upgrade at once with a prorated charge,
downgrade and cancel at the period's end, erasure cancels at once, every change audited; and the
customer's Billing page (item 7): plan, usage meter, projected invoice, change plan."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from addons.billing import charges, plans, subscriptions
from addons.billing.charges import prorate
from core import due
from core.clock import utcnow
from core.db import app_db, connection, tenant_transaction
from tests.support.identity import (OWNER_PASSWORD, add_user, audit_rows, client, fetch_xsrf, owner_email,
                                    post_form, sign_in, signup_acceptance, smsgw)
from tests.support.messaging import sql

DAY = dt.timedelta(days=1)



@pytest.fixture
def make_tenant(make_tenant):
    """Workspaces subscribed to the free plan when made, as an installation's are (the tests' platform
    runs with SMSGW_BILLING_DEFAULT_PLAN empty so that tests of other things meet no plan limits)."""
    def make(*args, **kwargs):
        tenant = make_tenant(*args, **kwargs)
        subscriptions.create_for(tenant, plans.DEFAULT_PLAN)
        return tenant
    return make

def public(query: str, params=()) -> list[tuple]:
    with connection():
        with app_db.atomic():
            cur = app_db.execute_sql(query, params)
            return cur.fetchall() if cur.description else []


def make_plan(platform, price=1000, **terms) -> plans.PlanVersion:
    values = {"plan_code": f"p-{secrets.token_hex(4)}", "name": "Pro", "currency": "EUR", "monthly_price": price,
              "yearly_price": price * 10, "included_segments": 100, "overage_per_1000": 2000, **terms}
    return plans.create(platform, values, actor="test")


def set_period(tenant, start: dt.datetime, end: dt.datetime) -> None:
    public("UPDATE public.billing_subscriptions SET period_start = %s, period_end = %s, anchor_day = %s "
           "WHERE tenant_id = %s", (start, end, end.day, tenant.id))


def due_at(tenant) -> dt.datetime | None:
    rows = public("SELECT due_at FROM public.due_work WHERE tenant_id = %s AND job = %s",
                  (tenant.id, subscriptions.JOB))
    return rows[0][0] if rows else None


def run_renewal(platform, tenant) -> str:
    """The worker's path: arm the job now, then core.due runs it for this workspace."""
    with tenant_transaction(tenant.ref):
        due.arm(subscriptions.JOB, utcnow() - dt.timedelta(seconds=1))
    job = platform.setup_tasks().due_jobs[subscriptions.JOB]
    return due.run_due(platform, job, tenant.id, tenant.slug)


def segments_used(tenant, day: dt.date, segments: int) -> None:
    """Accepted segments as the usage addon's triggers record them (metric 'submitted')."""
    sql(tenant, "INSERT INTO usage_counts (day, metric, shard, n, segments) VALUES (%s, 'submitted', 1, %s, %s)",
        (day, segments, segments))


def actions(platform, tenant) -> list[str]:
    return [r["action"] for r in sorted(audit_rows(platform, tenant.id), key=lambda r: r["id"])
            if r["action"].startswith("billing.")]


# -- money arithmetic ------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.integers(0, 10**12), st.integers(1, 10**8), st.data())
def test_prorate_rounds_half_up_exactly_and_stays_within_the_amount(amount, whole, data):
    part = data.draw(st.integers(0, whole))
    got = prorate(amount, part, whole)
    exact = Fraction(amount * part, whole)
    assert got - Fraction(1, 2) <= exact < got + Fraction(1, 2)  # nearest, an exact half rounds up
    assert 0 <= got <= amount
    assert prorate(amount, whole, whole) == amount and prorate(amount, 0, whole) == 0


def test_periods_keep_their_day_of_the_month():
    jan31 = dt.datetime(2027, 1, 31, 9, 30, tzinfo=dt.timezone.utc)
    feb = subscriptions.add_interval(jan31, "month", 31)
    assert feb == dt.datetime(2027, 2, 28, 9, 30, tzinfo=dt.timezone.utc)
    assert subscriptions.add_interval(feb, "month", 31) == dt.datetime(2027, 3, 31, 9, 30, tzinfo=dt.timezone.utc)
    assert subscriptions.add_interval(dt.datetime(2028, 2, 29, tzinfo=dt.timezone.utc), "year", 29) == \
        dt.datetime(2029, 2, 28, tzinfo=dt.timezone.utc)


# -- the lifecycle ---------------------------------------------------------------------------------

def test_a_new_workspace_is_subscribed_to_the_free_plan_and_its_renewal_is_armed(platform, cli_env):
    # The tests' own platform runs with SMSGW_BILLING_DEFAULT_PLAN empty (no plan limits in tests of
    # other things); an installation's default is "free", as here.
    slug = f"bsub{secrets.token_hex(3)}"
    r = smsgw({**cli_env, "SMSGW_BILLING_DEFAULT_PLAN": "free"}, "tenant", "create", slug, "--name", "Sub Co",
              "--owner-email", f"o@{slug}.example", "--owner-password", OWNER_PASSWORD)
    assert r.returncode == 0, r.stderr
    t = platform.tenants.get(slug)
    sub = subscriptions.get_now(t.id)
    assert sub.plan.plan_code == "free" and sub.status == "active" and sub.billing_interval == "month"
    assert sub.period_end == subscriptions.add_interval(sub.period_start, "month", sub.period_start.day)
    assert due_at(t) == sub.period_end  # the due index holds the workspace's one renewal, keyed by it
    assert actions(platform, t) == ["billing.subscription_created"]


def test_renewal_charges_the_next_period_and_the_overage_once(platform, make_tenant):
    plan = make_plan(platform, price=1000, included_segments=100, overage_per_1000=2000)
    t = make_tenant("bsub")
    subscriptions.start(t.id, plan.plan_code, actor="test")
    now = utcnow()
    start, end = now - 30 * DAY, now - dt.timedelta(minutes=1)
    set_period(t, start, end)
    segments_used(t, start.date() + DAY, 300)  # in the period: 200 beyond the 100 included
    segments_used(t, end.date(), 50)  # the renewal day's own figures count into the next period
    assert run_renewal(platform, t) == "ran"
    sub = subscriptions.get_now(t.id)
    assert sub.period_start == end and sub.period_end == subscriptions.add_interval(end, "month", end.day)
    assert sub.status == "active" and sub.plan.id == plan.id
    (event,) = audit_rows(platform, t.id, "billing.subscription_renewed")
    lines = event["details"]["lines"]
    assert [(x["quantity"], x["unit_amount"]) for x in lines] == [(1, 400), (1, 1000)]  # 200 x 20.00/1000; price
    assert event["details"]["used"] == 300
    assert due_at(t) == sub.period_end
    # Run again (a worker that died after its commit, a repair pass): nothing ended, nothing charged.
    assert run_renewal(platform, t) == "ran"
    assert len(audit_rows(platform, t.id, "billing.subscription_renewed")) == 1


def test_a_worker_that_was_away_renews_every_missed_period(platform, make_tenant):
    t = make_tenant("bsub")
    now = utcnow()
    start = now - 75 * DAY
    set_period(t, start, subscriptions.add_interval(start, "month", start.day))
    assert run_renewal(platform, t) == "ran"
    sub = subscriptions.get_now(t.id)
    assert sub.period_start <= now < sub.period_end
    assert len(audit_rows(platform, t.id, "billing.subscription_renewed")) in (2, 3)


def test_an_upgrade_applies_at_once_with_the_prorated_difference(platform, make_tenant):
    cheap, dear = make_plan(platform, price=1000), make_plan(platform, price=3000)
    t = make_tenant("bsub")
    subscriptions.start(t.id, cheap.plan_code, actor="test")
    now = utcnow()
    set_period(t, now - 15 * DAY, now + 15 * DAY)  # half of the period left
    result = subscriptions.change_plan(t.id, dear.plan_code, actor="user:1")
    assert result["kind"] == "upgraded"
    (line,) = result["lines"]
    assert line.quantity == 1 and line.unit_amount == 1000  # (30.00 - 10.00) x 1/2
    sub = subscriptions.get_now(t.id)
    assert sub.plan.id == dear.id and sub.pending_plan_version_id is None
    assert sub.period_end - sub.period_start == 30 * DAY  # the period stays
    (event,) = audit_rows(platform, t.id, "billing.subscription_upgraded")
    assert event["details"]["lines"][0]["unit_amount"] == 1000 and event["actor"] == "user:1"


def test_a_downgrade_and_an_interval_switch_wait_for_the_period_end(platform, make_tenant):
    cheap, dear = make_plan(platform, price=1000), make_plan(platform, price=3000)
    t = make_tenant("bsub")
    subscriptions.start(t.id, dear.plan_code, actor="test")
    assert subscriptions.change_plan(t.id, cheap.plan_code, "year", actor="user:1")["kind"] == "scheduled"
    sub = subscriptions.get_now(t.id)
    assert sub.plan.id == dear.id and sub.pending_plan_version_id == cheap.id and sub.pending_interval == "year"
    now = utcnow()
    set_period(t, now - 30 * DAY, now - dt.timedelta(seconds=5))
    assert run_renewal(platform, t) == "ran"
    sub = subscriptions.get_now(t.id)
    assert sub.plan.id == cheap.id and sub.billing_interval == "year" and sub.pending_plan_version_id is None
    (event,) = audit_rows(platform, t.id, "billing.subscription_renewed")
    assert [x["unit_amount"] for x in event["details"]["lines"]] == [10000]  # a year of the cheap plan


def test_a_plan_changed_by_the_operator_reaches_subscribers_at_renewal_only(platform, make_tenant):
    plan = make_plan(platform, price=1000)
    t = make_tenant("bsub")
    subscriptions.start(t.id, plan.plan_code, actor="test")
    newer = plans.update(platform, plan.plan_code, {"monthly_price": "1500"}, actor="test")
    with connection():
        assert newer.version == 2 and plans.current(plan.plan_code).id == newer.id
    assert subscriptions.get_now(t.id).plan.id == plan.id  # keeps version 1
    now = utcnow()
    set_period(t, now - 30 * DAY, now - dt.timedelta(seconds=5))
    assert run_renewal(platform, t) == "ran"
    sub = subscriptions.get_now(t.id)
    assert sub.plan.id == newer.id and sub.plan.version == 2
    (event,) = audit_rows(platform, t.id, "billing.subscription_renewed")
    assert [x["unit_amount"] for x in event["details"]["lines"]] == [1500]


def test_cancel_ends_at_the_period_end_and_can_be_withdrawn(platform, make_tenant):
    t = make_tenant("bsub")
    subscriptions.cancel(t.id, actor="user:1")
    assert subscriptions.get_now(t.id).cancel_at_period_end
    subscriptions.resume(t.id, actor="user:1")
    assert not subscriptions.get_now(t.id).cancel_at_period_end
    subscriptions.cancel(t.id, actor="user:1")
    now = utcnow()
    set_period(t, now - 30 * DAY, now - dt.timedelta(seconds=5))
    assert run_renewal(platform, t) == "ran"
    sub = subscriptions.get_now(t.id)
    assert sub.status == "cancelled" and sub.cancelled_at == sub.period_end
    assert due_at(t) is None  # nothing left to renew: the entry is gone
    assert not subscriptions.get_now(t.id).may_send
    assert actions(platform, t)[-3:] == ["billing.subscription_resumed", "billing.subscription_cancel_scheduled",
                                         "billing.subscription_cancelled"]


def test_payments_move_the_status_and_an_overdue_workspace_cannot_upgrade(platform, make_tenant):
    dear = make_plan(platform, price=5000)
    t = make_tenant("bsub")
    assert subscriptions.payment_failed(t.id, "inv-1").status == "past_due"
    since = subscriptions.get_now(t.id).past_due_since
    assert since is not None
    assert subscriptions.payment_failed(t.id, "inv-2").past_due_since == since  # kept from the first
    with pytest.raises(subscriptions.SubscriptionError, match="Pay the overdue invoice first"):
        subscriptions.change_plan(t.id, dear.plan_code, actor="user:1")
    assert subscriptions.suspend(t.id, "unpaid after 14 days").status == "suspended"
    assert not subscriptions.get_now(t.id).may_send
    sub = subscriptions.payment_succeeded(t.id, "inv-1")
    assert sub.status == "active" and sub.past_due_since is None and sub.may_send
    assert actions(platform, t)[1:] == ["billing.subscription_past_due", "billing.subscription_past_due",
                                        "billing.subscription_suspended", "billing.subscription_reactivated"]
    (suspended,) = audit_rows(platform, t.id, "billing.subscription_suspended")
    assert suspended["reason"] == "unpaid after 14 days"


def test_a_plan_with_trial_days_starts_in_trial_and_is_charged_when_it_ends(platform, make_tenant):
    plan = make_plan(platform, price=2000, trial_days=14)
    t = make_tenant("bsub")
    result = subscriptions.start(t.id, plan.plan_code, actor="test")
    sub = result["subscription"]
    assert sub.status == "trial" and result["lines"] == []
    assert sub.trial_end == sub.period_end and sub.period_end - sub.period_start == 14 * DAY
    now = utcnow()
    set_period(t, now - 14 * DAY, now - dt.timedelta(seconds=5))
    assert run_renewal(platform, t) == "ran"
    sub = subscriptions.get_now(t.id)
    assert sub.status == "active"
    (event,) = audit_rows(platform, t.id, "billing.trial_ended")
    assert [x["unit_amount"] for x in event["details"]["lines"]] == [2000]


def test_unknown_or_hidden_plans_and_bad_intervals_are_refused_and_change_nothing(platform, make_tenant):
    hidden = make_plan(platform, public="false")
    t = make_tenant("bsub")
    before = subscriptions.get_now(t.id)
    for code, interval in (("no-such-plan", "month"), (hidden.plan_code, "month"), ("free", "week"),
                           ("'; DROP TABLE x; --", "month")):
        with pytest.raises(subscriptions.SubscriptionError):
            subscriptions.change_plan(t.id, code, interval, actor="user:1")
    assert subscriptions.get_now(t.id) == before


def test_erasing_the_workspace_cancels_its_subscription_at_once(platform, make_tenant):
    from addons.privacy import erasure

    t = make_tenant("bsub")
    platform.tenants.schedule_deletion(t.slug, utcnow() - dt.timedelta(minutes=1))
    assert erasure.erase_workspace(platform, t.slug) is not None
    sub = subscriptions.get_now(t.id)
    assert sub.status == "cancelled" and sub.cancelled_at is not None and not sub.cancel_at_period_end
    (event,) = audit_rows(platform, t.id, "billing.subscription_cancelled")
    assert event["details"]["immediately"] is True


# -- the Billing page --------------------------------------------------------------------------------

def test_the_billing_page_shows_the_plan_the_meter_and_the_projected_invoice(platform, live_server, make_tenant):
    plan = make_plan(platform, price=1000, included_segments=100, overage_per_1000=1000)
    t = make_tenant("bpage")
    subscriptions.start(t.id, plan.plan_code, actor="test")
    now = utcnow()
    set_period(t, now - 2 * DAY, now + 28 * DAY)
    segments_used(t, now.date() - DAY, 150)
    c = sign_in(live_server, t.slug, owner_email(t))
    r = c.get("/billing")
    assert r.status_code == 200, r.text
    assert f'data-plan="{plan.plan_code}"' in r.text and 'data-status="active"' in r.text
    assert re.search(r'data-figure="used">150<', r.text) and 'id="billing-meter"' in r.text
    assert "<svg" in r.text  # the chart of this period, drawn on the server
    # projected: 50 segments beyond x 10.00/1000 = 0.50, plus the next month's 10.00
    assert re.search(r'data-figure="projected-total">€10\.50<', r.text), r.text


def test_plan_change_on_the_billing_page_needs_the_form_token_and_refuses_bad_plans(platform, live_server,
                                                                                   make_tenant):
    dear = make_plan(platform, price=2000)
    t = make_tenant("bpage")
    c = sign_in(live_server, t.slug, owner_email(t))
    fetch_xsrf(c, "/billing")
    r = c.post("/billing", data={"action": "change", "plan": dear.plan_code, "interval": "month"})
    assert r.status_code == 403  # no form token: refused, nothing changed
    assert subscriptions.get_now(t.id).plan.plan_code == "free"
    r = post_form(c, "/billing", {"action": "change", "plan": "nope-plan", "interval": "month"})
    assert r.status_code == 422 and "There is no plan" in r.text and "nope-plan" in r.text
    assert subscriptions.get_now(t.id).plan.plan_code == "free"
    r = post_form(c, "/billing", {"action": "change", "plan": dear.plan_code, "interval": "month"})
    assert r.status_code == 303 and r.headers["Location"] == "/billing"
    assert subscriptions.get_now(t.id).plan.id == dear.id  # from free: an upgrade, at once
    r = post_form(c, "/billing", {"action": "cancel"})
    assert r.status_code == 303 and subscriptions.get_now(t.id).cancel_at_period_end
    assert 'id="billing-resume"' in c.get("/billing").text


def test_another_workspace_and_members_without_the_permission_see_nothing(platform, live_server, make_tenant):
    a, b = make_tenant("bpage"), make_tenant("bpage")
    ca = sign_in(live_server, a.slug, owner_email(a))
    # a's session on b's address: refused; b's page shows b's subscription only
    r = ca.get("/billing", headers={"Host": f"{b.slug}.localhost"})
    assert r.status_code in (302, 401, 403) and a.slug not in r.text
    add_user(platform, a, f"member@{a.slug}.example", OWNER_PASSWORD, role="user")
    cm = sign_in(live_server, a.slug, f"member@{a.slug}.example")
    assert cm.get("/billing").status_code == 403
    assert post_form(cm, "/billing", {"action": "cancel"}).status_code == 403
    assert not subscriptions.get_now(a.id).cancel_at_period_end


def test_sign_up_picks_a_plan_and_a_forged_plan_is_refused(platform, live_server):
    plan = make_plan(platform, price=900, trial_days=7)
    c = client(live_server, None, ip=f"10.9.{secrets.randbelow(250)}.{secrets.randbelow(250)}")
    page = c.get(f"/signup?plan={plan.plan_code}").text
    assert f'value="{plan.plan_code}" selected' in page and 'href="/pricing"' in page
    slug = f"bsign-{secrets.token_hex(3)}"
    form = {"company": "Signup Co", "slug": slug, "email": f"owner@{slug}.example", "password": OWNER_PASSWORD,
            **signup_acceptance(c)}
    r = post_form(c, "/signup", {**form, "plan": "made-up", "interval": "month"}, allow_redirects=False)
    assert r.status_code == 422 and "There is no plan" in r.text
    assert slug not in [x.slug for x in platform.tenants.list()]  # nothing was made
    r = post_form(c, "/signup", {**form, "plan": plan.plan_code, "interval": "month"}, allow_redirects=False)
    assert r.status_code == 302, r.text[:500]
    try:
        tenant = platform.tenants.get(slug)
        sub = subscriptions.get_now(tenant.id)
        assert sub.plan.id == plan.id and sub.status == "trial"
        assert actions(platform, tenant) == ["billing.subscription_created", "billing.subscription_started"]
    finally:
        platform.tenants.delete(slug)
