"""Billing end to end across its parts: a subscription change issues its invoice in the same
transaction, and a payment's outcome moves the subscription (issue 17 items 2, 5 and 6)."""

from __future__ import annotations

import datetime as dt

from addons.billing import invoicing, payments, subscriptions
from core.clock import utcnow
from core.db import connection
from tests.test_billing_subscriptions import DAY, actions, make_plan, public, run_renewal, set_period


def invoices_of(tenant) -> list[invoicing.Invoice]:
    with connection():
        return invoicing.for_tenant(tenant.id)


def test_an_upgrade_issues_its_prorated_invoice_with_the_change(platform, make_tenant):
    cheap, dear = make_plan(platform, price=1000), make_plan(platform, price=3000)
    t = make_tenant("bflow")
    subscriptions.start(t.id, cheap.plan_code, actor="test")
    before = {i.id for i in invoices_of(t)}
    now = utcnow()
    set_period(t, now - 15 * DAY, now + 15 * DAY)
    subscriptions.change_plan(t.id, dear.plan_code, actor="user:1")
    (invoice,) = [i for i in invoices_of(t) if i.id not in before]
    assert invoice.reason == "upgrade" and invoice.currency == "EUR" and invoice.subtotal == 1000
    assert invoice.status == "open" and invoice.number.startswith("INV-")


def test_a_renewal_issues_the_next_periods_invoice(platform, make_tenant):
    plan = make_plan(platform, price=1200)
    t = make_tenant("bflow")
    subscriptions.start(t.id, plan.plan_code, actor="test")
    before = {i.id for i in invoices_of(t)}
    now = utcnow()
    set_period(t, now - 30 * DAY, now - dt.timedelta(seconds=5))
    assert run_renewal(platform, t) == "ran"
    (invoice,) = [i for i in invoices_of(t) if i.id not in before]
    assert invoice.reason == "renewal" and invoice.subtotal == 1200


def test_a_failed_payment_makes_the_workspace_past_due_and_the_payment_makes_it_active(platform, make_tenant):
    plan = make_plan(platform, price=1000)
    t = make_tenant("bflow")
    subscriptions.start(t.id, plan.plan_code, actor="test")
    invoice = invoicing.issue(t.id, [invoicing.Line("Pro plan, one month", 1, 1000)], reason="renewal",
                              currency="EUR")
    payments.record_outcome(invoice.id, provider="manual", outcome="failed", amount=invoice.total, currency="EUR",
                            provider_ref="try-1")
    sub = subscriptions.get_now(t.id)
    assert sub.status == "past_due" and sub.past_due_since is not None
    # The outcome's transaction went on in the serving role after the subscription's change.
    with connection():
        assert invoicing.get(invoice.id).payment_failed_at is not None

    payments.record_outcome(invoice.id, provider="manual", outcome="succeeded", amount=invoice.total, currency="EUR",
                            provider_ref="try-2")
    sub = subscriptions.get_now(t.id)
    assert sub.status == "active" and sub.past_due_since is None
    with connection():
        assert invoicing.get(invoice.id).status == "paid"
    assert actions(platform, t)[-2:] == ["billing.subscription_past_due", "billing.subscription_reactivated"]


def test_an_outcome_for_another_workspaces_invoice_leaves_this_subscription_alone(platform, make_tenant):
    plan = make_plan(platform, price=1000)
    mine, other = make_tenant("bflow"), make_tenant("bflow")
    for t in (mine, other):
        subscriptions.start(t.id, plan.plan_code, actor="test")
    invoice = invoicing.issue(other.id, [invoicing.Line("Pro", 1, 1000)], reason="renewal", currency="EUR")
    payments.record_outcome(invoice.id, provider="manual", outcome="failed", amount=1000, currency="EUR",
                            provider_ref="x")
    assert subscriptions.get_now(mine.id).status == "active"
    assert subscriptions.get_now(other.id).status == "past_due"
    assert public("SELECT count(*) FROM public.billing_invoices WHERE tenant_id = %s AND id = %s",
                  (mine.id, invoice.id))[0][0] == 0


def test_a_suspended_workspace_is_not_charged_for_the_period_it_cannot_send_in(platform, make_tenant):
    plan = make_plan(platform, price=1200)
    t = make_tenant("bflow")
    subscriptions.start(t.id, plan.plan_code, actor="test")
    subscriptions.suspend(t.id, "unpaid invoice")
    before = {i.id for i in invoices_of(t)}
    now = utcnow()
    set_period(t, now - 30 * DAY, now - dt.timedelta(seconds=5))
    assert run_renewal(platform, t) == "ran"
    assert [i for i in invoices_of(t) if i.id not in before] == []
    sub = subscriptions.get_now(t.id)
    assert sub.status == "suspended" and sub.period_end > now  # the period moved on, uncharged
