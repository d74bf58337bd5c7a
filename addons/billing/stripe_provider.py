"""The Stripe payment provider, on the ``stripe`` library.

Outbound (a :class:`stripe.StripeClient` per call, so nothing global is set): a Checkout session
to pay an invoice (the card is saved for later invoices: ``setup_future_usage=off_session``) or, in
``setup`` mode, to add or change the card; the customer portal; an off-session PaymentIntent
that charges the saved card for a new invoice. ``SMSGW_STRIPE_API_BASE`` points the client
elsewhere (the tests' local stand-in, or stripe-mock).

Inbound: ``POST /billing/stripe/webhook`` on the base domain. The signature (``Stripe-Signature``)
is checked by the library itself (:func:`stripe.Webhook.construct_event`, with the endpoint secret
``SMSGW_STRIPE_WEBHOOK_SECRET``); anything it refuses is a 400 and changes nothing. Each event id
is handled once (``public.billing_stripe_events``, written in the transaction that handles it).
Outcomes go through :func:`.payments.record_outcome`.
"""

from __future__ import annotations

import json
import logging

import stripe

from core.db import app_db, connection
from core.i18n import N_
from core.permissions import PUBLIC
from core.web.base import BaseHandler
from core.web.problem import Problem

from . import accounts, payments

log = logging.getLogger(__name__)


def client(settings) -> stripe.StripeClient:
    extra = {"base_addresses": {"api": settings.stripe_api_base}} if settings.stripe_api_base else {}
    return stripe.StripeClient(settings.stripe_secret_key, max_network_retries=1, **extra)


def _meta(invoice=None, tenant_id=None) -> dict:
    meta = {"tenant_id": str(tenant_id if tenant_id is not None else invoice.tenant_id)}
    if invoice is not None:
        meta["invoice_id"] = str(invoice.id)
    return meta


class StripeProvider(payments.PaymentProvider):
    name = "stripe"
    label = N_("Card (Stripe)")
    template = "billing/payment_stripe.html"

    def available(self, settings) -> bool:
        return bool(settings.stripe_secret_key and settings.stripe_webhook_secret)

    def _customer(self, settings, account) -> str:
        """The workspace's Stripe customer, created on first use (and remembered)."""
        if account.provider_customer:
            return account.provider_customer
        customer = client(settings).v1.customers.create(params={
            "email": account.email or None, "name": account.company or None,
            "metadata": _meta(tenant_id=account.tenant_id)})
        with connection():
            accounts.set_provider(account.tenant_id, account.provider, customer.id)
        return customer.id

    def checkout_url(self, settings, account, invoice, return_url: str) -> str | None:
        customer = self._customer(settings, account)
        params = {"customer": customer, "client_reference_id": str(account.tenant_id),
                  "success_url": return_url + ("&" if "?" in return_url else "?") + "checkout=done",
                  "cancel_url": return_url}
        if invoice is None:
            params.update(mode="setup", payment_method_types=["card"], metadata=_meta(tenant_id=account.tenant_id))
        else:
            params.update(mode="payment", metadata=_meta(invoice), line_items=[{
                "quantity": 1, "price_data": {"currency": invoice.currency.lower(), "unit_amount": invoice.total,
                                              "product_data": {"name": f"Invoice {invoice.number}"}}}],
                payment_intent_data={"setup_future_usage": "off_session", "metadata": _meta(invoice)})
        return client(settings).v1.checkout.sessions.create(params=params).url

    def portal_url(self, settings, account, return_url: str) -> str | None:
        if not account.provider_customer:
            return None
        return client(settings).v1.billing_portal.sessions.create(params={
            "customer": account.provider_customer, "return_url": return_url}).url

    def collect(self, settings, account, invoice) -> bool:
        api = client(settings)
        methods = api.v1.customers.payment_methods.list(account.provider_customer, params={"type": "card", "limit": 1})
        if not methods.data:
            return False
        # The outcome comes back as payment_intent.succeeded / payment_failed (also when the card
        # needs the Customer's action: Stripe then fails the off-session attempt).
        try:
            api.v1.payment_intents.create(params={
                "amount": invoice.total, "currency": invoice.currency.lower(), "customer": account.provider_customer,
                "payment_method": methods.data[0].id, "off_session": True, "confirm": True,
                "metadata": _meta(invoice), "description": f"Invoice {invoice.number}"},
                options={"idempotency_key": f"invoice-{invoice.id}"})
        except stripe.CardError as exc:  # declined at once: Stripe also sends payment_intent.payment_failed
            log.info("billing: card declined for %s: %s", invoice.number, exc.user_message)
        return True


# -- webhook --------------------------------------------------------------------------------------

def _invoice_ref(obj: dict) -> tuple[int, int] | None:
    meta = obj.get("metadata") or {}
    try:
        return int(meta["invoice_id"]), int(meta["tenant_id"])
    except (KeyError, TypeError, ValueError):
        return None


def handle_event(event: dict, db=app_db) -> str:
    """Apply one verified event, once per event id. Returns ``duplicate``, ``applied`` or ``ignored``."""
    obj = (event.get("data") or {}).get("object") or {}
    kind = str(event.get("type") or "")
    with connection(db), db.atomic():
        first = db.execute_sql("INSERT INTO public.billing_stripe_events (event_id, type) VALUES (%s, %s) "
                               "ON CONFLICT DO NOTHING RETURNING event_id", (str(event["id"]), kind[:100])).fetchone()
        if first is None:
            return "duplicate"
        ref = _invoice_ref(obj)
        if kind == "checkout.session.completed":
            tenant = (obj.get("metadata") or {}).get("tenant_id") or obj.get("client_reference_id")
            if tenant and str(tenant).isdigit() and obj.get("customer"):
                accounts.set_provider(int(tenant), "stripe", str(obj["customer"]), db)
            if obj.get("mode") == "payment" and obj.get("payment_status") == "paid" and ref:
                return _outcome(ref, "succeeded", obj.get("amount_total"), obj.get("currency"),
                                str(obj.get("payment_intent") or obj.get("id")), event, db)
            return "applied"
        if kind in ("payment_intent.succeeded", "payment_intent.payment_failed") and ref:
            outcome = "succeeded" if kind.endswith("succeeded") else "failed"
            amount = obj.get("amount_received") if outcome == "succeeded" else obj.get("amount")
            detail = ((obj.get("last_payment_error") or {}).get("message") or "") if outcome == "failed" else ""
            return _outcome(ref, outcome, amount, obj.get("currency"), str(obj.get("id")), event, db, detail)
        return "ignored"


def _outcome(ref, outcome, amount, currency, provider_ref, event, db, detail="") -> str:
    invoice_id, tenant_id = ref
    from . import invoicing

    invoice = invoicing.get(invoice_id, tenant_id, db)
    if invoice is None:  # an event naming an invoice of another workspace, or none: not ours to apply
        log.warning("billing: Stripe event %s names invoice %s of tenant %s: no such invoice", event["id"],
                    invoice_id, tenant_id)
        return "ignored"
    try:
        amount = int(amount)
    except (TypeError, ValueError):
        amount = 0
    payments.record_outcome(invoice_id, provider="stripe", outcome=outcome, amount=amount,
                            currency=str(currency or "").upper(), provider_ref=provider_ref, detail=detail,
                            recorded_by=f"stripe:{event['id']}", db=db)
    return "applied"


class StripeWebhookHandler(BaseHandler):
    """``POST /billing/stripe/webhook`` (base domain): Stripe's events, verified by the library."""

    scope = "platform"
    permission = PUBLIC
    max_body_size = 512 * 1024

    def check_xsrf_cookie(self):
        return None  # authenticated by the signature, not by a browser session

    def wants_json(self) -> bool:
        return True

    async def post(self):
        settings = self.settings_
        if not settings.stripe_webhook_secret:
            raise Problem(404, "not-found", N_("Stripe is not configured on this platform."))
        try:
            event = stripe.Webhook.construct_event(self.request.body, self.request.headers.get("Stripe-Signature"),
                                                   settings.stripe_webhook_secret)
        except stripe.SignatureVerificationError:
            raise Problem(400, "invalid-signature", N_("The Stripe-Signature header does not match "
                                                       "this body.")) from None
        except ValueError:
            raise Problem(400, "invalid-payload", N_("The body is not a Stripe event.")) from None
        data = json.loads(self.request.body)  # verified: the very bytes Stripe signed
        if not isinstance(data, dict) or not data.get("id"):
            raise Problem(400, "invalid-payload", N_("The event has no id."))
        result = await self.run_db(handle_event, data)
        log.info("billing: Stripe event %s (%s): %s", event.id, event.type, result)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"received": True, "result": result}))


ROUTES = [(r"/billing/stripe/webhook", StripeWebhookHandler)]
