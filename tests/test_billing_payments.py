"""Payments (issue 17 item 6): the Stripe webhook verified by the stripe library itself with events
we build and sign (Stripe's scheme: HMAC-SHA256 of "<t>.<payload>" with the endpoint secret),
idempotent per event id; forged events -> 400 and nothing changes; the outbound half (Checkout,
portal, off-session charges) against a local stand-in that checks each request's shape. There is
no network here: nothing reaches Stripe."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import secrets
import time

import pytest

from addons.billing import accounts, invoicing, payments
from addons.billing.invoicing import Line
from core.db import app_db, connection
from tests.support.identity import client, owner_email, post_form, sign_in
from tests.support.stripe_standin import StripeStandIn

SECRET = "whsec_test_" + secrets.token_hex(8)
KEY = "sk_test_" + secrets.token_hex(8)


@pytest.fixture
def stripe_on(platform):
    configured = platform.settings
    platform.settings = dataclasses.replace(configured, billing_issuer=f"pay-{secrets.token_hex(4)}",
                                            stripe_secret_key=KEY, stripe_webhook_secret=SECRET)
    yield platform.settings
    platform.settings = configured


def sign(payload: bytes, secret: str = SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def event(kind: str, obj: dict, event_id: str | None = None) -> bytes:
    return json.dumps({"id": event_id or f"evt_{secrets.token_hex(8)}", "object": "event", "type": kind,
                       "api_version": "2024-06-20", "created": int(time.time()), "livemode": False,
                       "data": {"object": obj}}).encode()


def post_event(live_server, payload: bytes, signature: str | None):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return client(live_server).post("/billing/stripe/webhook", data=payload, headers=headers)


def state(invoice_id: int):
    with connection():
        inv = invoicing.get(invoice_id)
        pays = payments.payments_of(invoice_id)
        (events,) = app_db.execute_sql("SELECT count(*) FROM public.billing_stripe_events").fetchone()
    return inv.status, inv.dunning_since, [(p["provider"], p["outcome"], p["amount"]) for p in pays], events


def new_invoice(tenant, settings, amount=4900):
    return invoicing.issue(tenant.id, [Line("Pro plan", 1, amount)], reason="renewal", currency="EUR",
                           settings=settings)


def checkout_completed(inv, session="cs_1", pi="pi_1", customer="cus_1", amount=None):
    return {"id": session, "object": "checkout.session", "mode": "payment", "payment_status": "paid",
            "amount_total": inv.total if amount is None else amount, "currency": "eur", "customer": customer,
            "payment_intent": pi, "client_reference_id": str(inv.tenant_id),
            "metadata": {"invoice_id": str(inv.id), "tenant_id": str(inv.tenant_id)}}


def test_a_signed_checkout_completion_pays_the_invoice_once_however_often_it_arrives(live_server, make_tenant,
                                                                                     stripe_on):
    t = make_tenant("pay")
    inv = new_invoice(t, stripe_on)
    pi = f"pi_{secrets.token_hex(6)}"
    payload = event("checkout.session.completed", checkout_completed(inv, pi=pi, customer="cus_abc"))
    r = post_event(live_server, payload, sign(payload))
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "applied"
    status, _since, pays, _ = state(inv.id)
    assert status == "paid" and pays == [("stripe", "succeeded", inv.total)]
    with connection():
        account = accounts.get(t.id)
    assert (account.provider, account.provider_customer) == ("stripe", "cus_abc")
    # Stripe redelivers the same event, and sends the PaymentIntent's own event: nothing more happens.
    again = post_event(live_server, payload, sign(payload))
    assert again.status_code == 200 and again.json()["result"] == "duplicate"
    pi_event = event("payment_intent.succeeded", {"id": pi, "object": "payment_intent", "amount_received": inv.total,
                                                  "currency": "eur", "metadata": {"invoice_id": str(inv.id),
                                                                                  "tenant_id": str(t.id)}})
    assert post_event(live_server, pi_event, sign(pi_event)).status_code == 200
    assert state(inv.id)[2] == [("stripe", "succeeded", inv.total)]


def test_forged_or_mis_signed_events_are_refused_with_400_and_change_nothing(live_server, make_tenant, stripe_on):
    t = make_tenant("pay")
    inv = new_invoice(t, stripe_on)
    payload = event("checkout.session.completed", checkout_completed(inv))
    before = state(inv.id)
    tampered = payload.replace(b'"payment_status": "paid"', b'"payment_status": "paid" ')
    attempts = [
        (payload, sign(payload, secret="whsec_someone_else")),         # another endpoint's secret
        (tampered, sign(payload)),                                     # body changed after signing
        (payload, None),                                               # no signature at all
        (payload, "t=1,v1=" + "0" * 64),                               # made up
        (payload, sign(payload, at=int(time.time()) - 3600)),          # replayed an hour later
        (b"not json", sign(b"not json")),                              # signed, but not an event
    ]
    for body, signature in attempts:
        r = post_event(live_server, body, signature)
        assert r.status_code == 400, (signature, r.status_code, r.text)
        assert r.headers["Content-Type"].startswith("application/problem+json")
    assert state(inv.id) == before
    assert before[0] == "open"


def test_a_failed_payment_starts_dunning_and_a_later_success_ends_it(live_server, make_tenant, stripe_on):
    t = make_tenant("pay")
    inv = new_invoice(t, stripe_on)
    meta = {"invoice_id": str(inv.id), "tenant_id": str(t.id)}
    failed = event("payment_intent.payment_failed", {"id": "pi_f", "object": "payment_intent", "amount": inv.total,
                                                     "currency": "eur", "metadata": meta,
                                                     "last_payment_error": {"message": "Your card was declined."}})
    assert post_event(live_server, failed, sign(failed)).status_code == 200
    status, since, pays, _ = state(inv.id)
    assert status == "open" and since is not None and pays == [("stripe", "failed", inv.total)]
    ok = event("payment_intent.succeeded", {"id": "pi_f", "object": "payment_intent", "amount_received": inv.total,
                                            "currency": "eur", "metadata": meta})
    assert post_event(live_server, ok, sign(ok)).status_code == 200
    assert state(inv.id)[0] == "paid"


def test_an_event_naming_another_workspaces_invoice_or_too_little_money_pays_nothing(live_server, make_tenant,
                                                                                   stripe_on):
    a, b = make_tenant("pay"), make_tenant("pay")
    inv = new_invoice(a, stripe_on)
    wrong_tenant = checkout_completed(inv, pi="pi_x")
    wrong_tenant["metadata"]["tenant_id"] = str(b.id)
    payload = event("checkout.session.completed", wrong_tenant)
    assert post_event(live_server, payload, sign(payload)).json()["result"] == "ignored"
    short = event("checkout.session.completed", checkout_completed(inv, pi="pi_y", amount=inv.total - 1))
    assert post_event(live_server, short, sign(short)).status_code == 200
    status, _since, pays, _ = state(inv.id)
    assert status == "open" and pays == [("stripe", "succeeded", inv.total - 1)]


def test_checkout_portal_and_saved_card_charges_send_requests_of_stripes_shape(live_server, platform, make_tenant,
                                                                               stripe_on):
    t = make_tenant("pay")
    set_email = {"company": "Acme Ltd", "email": f"billing@{t.slug}.example", "country": "GB"}
    with connection():
        accounts.save(t.id, set_email)
    inv = new_invoice(t, stripe_on)
    with StripeStandIn(KEY) as stand_in:
        platform.settings = dataclasses.replace(platform.settings, stripe_api_base=stand_in.url)
        c = sign_in(live_server, t.slug, owner_email(t))
        method = c.get("/billing/payment")
        assert "Card (Stripe)" in method.text
        # The forms' redirects to Stripe's hosts are allowed by the page's CSP (form-action).
        assert "form-action 'self' https://checkout.stripe.com https://billing.stripe.com" in \
            method.headers["Content-Security-Policy"]
        assert post_form(c, "/billing/payment", {"action": "choose", "provider": "stripe"}).status_code == 302
        pay = post_form(c, f"/billing/invoices/{inv.id}/pay", {})
        assert pay.status_code == 303, pay.text
        assert pay.headers["Location"].startswith("https://checkout.stripe.test/c/pay/cs_test_")
        card = post_form(c, "/billing/payment", {"action": "card"})
        assert card.status_code == 303
        portal = post_form(c, "/billing/payment", {"action": "portal"})
        assert portal.status_code == 303 and portal.headers["Location"] == "https://billing.stripe.test/p/session/x"
        sessions = stand_in.calls("/v1/checkout/sessions")
        assert [s["form"]["mode"] for s in sessions] == ["payment", "setup"]
        assert sessions[0]["form"]["line_items[0][price_data][unit_amount]"] == str(inv.total)
        assert sessions[0]["form"]["metadata[invoice_id]"] == str(inv.id)
        assert len(stand_in.calls("/v1/customers")) == 1  # created once, then remembered
        # A later invoice is charged off-session on the saved card, once, with an idempotency key.
        later = new_invoice(t, stripe_on, 2500)
        with connection():
            # (other tests' open invoices are not this test's business: the pass is platform-wide)
            app_db.execute_sql("UPDATE public.billing_invoices SET collect_attempted_at = now() "
                               "WHERE id <> %s AND collect_attempted_at IS NULL", (later.id,))
        assert payments.collect_open() == 1
        assert payments.collect_open() == 0
        charges = stand_in.calls("/v1/payment_intents")
        assert len(charges) == 1 and charges[0]["form"]["amount"] == "2500"
        assert charges[0]["idempotency_key"] == f"invoice-{later.id}"
        assert stand_in.problems == []


RESELLER_HOOKS = '''
    from core.addons import hookimpl
    from addons.billing.payments import PaymentProvider


    class Invoiced(PaymentProvider):
        name = "invoiced"
        label = "Pay by direct debit"
        template = "billing/payment_manual.html"


    class Impostor(PaymentProvider):
        name = "manual"
        label = "Not the real bank transfer"


    @hookimpl
    def smsgw_billing_payment_providers():
        return [Invoiced(), Impostor()]
'''


def test_a_resellers_addon_adds_a_payment_provider_and_cannot_replace_a_shipped_one(tmp_path):
    from core.addons import AddonRegistry, discover
    from tests.support.addons import addon_folder, make_addon

    with addon_folder(tmp_path):
        reseller = make_addon(tmp_path, "resellerpay", RESELLER_HOOKS, depends=("billing",))
        found = payments.providers(AddonRegistry(addons=[*discover(), reseller]))
    assert list(found) == ["manual", "stripe", "invoiced"]
    assert isinstance(found["manual"], payments.ManualProvider)
    assert found["invoiced"].label == "Pay by direct debit"


def test_the_same_event_delivered_eight_times_at_once_pays_once(live_server, make_tenant, stripe_on):
    from concurrent.futures import ThreadPoolExecutor

    t = make_tenant("pay")
    inv = new_invoice(t, stripe_on)
    payload = event("checkout.session.completed", checkout_completed(inv, pi=f"pi_{secrets.token_hex(6)}"))
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _i: post_event(live_server, payload, sign(payload)), range(8)))
    assert [a.status_code for a in answers] == [200] * 8
    assert sorted(a.json()["result"] for a in answers) == ["applied"] + ["duplicate"] * 7
    assert state(inv.id)[2] == [("stripe", "succeeded", inv.total)]
