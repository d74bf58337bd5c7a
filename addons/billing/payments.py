"""Payments: providers plug in through ``smsgw_billing_payment_providers``; outcomes land here.

A provider is a :class:`PaymentProvider`. Whatever the provider, an outcome goes through
:func:`record_outcome`, one transaction that writes the payment row (once per provider reference
and outcome: a redelivered notice changes nothing), marks the invoice paid or failed, and tells the
subscription through :func:`_subscription_changed`, so the invoice and the subscription's state
commit together.

``manual`` (bank transfer) ships here: the invoice shows the operator's bank details and an Admin
marks it paid in the console (:func:`mark_paid`). ``stripe`` is in :mod:`.stripe_provider`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from core.clock import utcnow
from core.datamap import NO_PERSONAL_DATA, PersonalData, Table
from core.db import app_db, connection
from core.i18n import N_

from . import accounts, invoicing

log = logging.getLogger(__name__)

MODELS = [
    Table("billing_payments", "public", PersonalData(
        subjects={"tenant": "tenant_id"}, export=("invoice_id", "provider", "outcome", "amount", "currency", "created_at"),
        erase="keep", why="the record that an invoice was paid, which accounting law requires keeping")),
    Table("billing_stripe_events", "public", NO_PERSONAL_DATA),
]
OUTCOMES = ("succeeded", "failed")
_platform = None


def configure(platform) -> None:
    global _platform
    _platform = platform


def platform():
    if _platform is None:
        raise RuntimeError("the billing addon is not configured (no platform)")
    return _platform


class PaymentProvider:
    """What a payment provider offers. Subclass it and return an instance from
    ``smsgw_billing_payment_providers``.

    * ``name``: stored in ``billing_accounts.provider`` and on each payment row;
    * ``label``: an English msgid shown on *Billing -> Payment method*;
    * ``template``: the part of that page (and of an unpaid invoice's page) that says how to pay,
      rendered with ``provider``, ``account`` and ``invoice`` (``None`` on the payment-method page);
    * :meth:`available`: offered on this installation (e.g. configured);
    * :meth:`checkout_url`: where to send the Customer to pay ``invoice`` (or, with ``None``, to
      add or change a card); ``None`` when there is nowhere to go;
    * :meth:`portal_url`: the provider's own page for the Customer's payment methods, or ``None``;
    * :meth:`collect`: charge a saved payment method for ``invoice`` (outside any transaction);
      return True if it tried. The outcome arrives later through :func:`record_outcome`.
    """

    name = ""
    label = ""
    template = ""

    def available(self, settings) -> bool:
        return True

    def checkout_url(self, settings, account, invoice, return_url: str) -> str | None:
        return None

    def portal_url(self, settings, account, return_url: str) -> str | None:
        return None

    def collect(self, settings, account, invoice) -> bool:
        return False


class ManualProvider(PaymentProvider):
    """Bank transfer: the invoice carries the operator's bank details and the invoice number as the
    reference; an Admin marks the invoice paid when the money arrived."""

    name = "manual"
    label = N_("Bank transfer")
    template = "billing/payment_manual.html"


@dataclass(frozen=True)
class Outcome:
    recorded: bool  # False: the same outcome was recorded before (nothing changed)
    invoice: invoicing.Invoice | None


def providers(registry=None) -> dict[str, PaymentProvider]:
    """Every provider the addons offer, by name, in dependency order (the first of a name wins, so
    a reseller cannot replace ``manual`` or ``stripe``; a clash is logged)."""
    found: dict[str, PaymentProvider] = {}
    for batch in (registry or platform().registry).hook.smsgw_billing_payment_providers():
        for provider in batch or ():
            if provider.name in found:
                log.error("two payment providers are called %r; the second is ignored", provider.name)
                continue
            found[provider.name] = provider
    return found


def offered(settings) -> list[PaymentProvider]:
    return [p for p in providers().values() if p.available(settings)]


def provider_of(account, settings=None) -> PaymentProvider:
    """The workspace's provider, or ``manual`` if the one it chose is gone or not configured (in
    ``settings``: the serving platform's; the configured platform's when not given)."""
    found = providers()
    chosen = found.get(account.provider)
    if chosen is None or not chosen.available(settings or platform().settings):
        return found["manual"]
    return chosen


def _subscription_changed(tenant_id: int, invoice_id: int | None, outcome: str) -> None:
    """The one place payments and dunning change a subscription's state: ``succeeded`` (past_due or
    suspended becomes active), ``failed`` (active becomes past_due) or ``suspended`` (after the
    dunning grace). Runs inside the transaction that recorded the outcome (the subscription's change
    is a savepoint of it, in the workspace's role, so its renewal stays armed)."""
    from . import subscriptions

    if outcome == "succeeded":
        subscriptions.payment_succeeded(tenant_id, invoice_id)
    elif outcome == "failed":
        subscriptions.payment_failed(tenant_id, invoice_id)
    else:
        subscriptions.suspend(tenant_id, f"unpaid invoice {invoice_id}")


def record_outcome(invoice_id: int, *, provider: str, outcome: str, amount: int, currency: str,
                   provider_ref: str = "", detail: str = "", recorded_by: str = "", db=app_db) -> Outcome:
    """Record a payment attempt's outcome (opens a connection if none is open; joins the caller's
    transaction). ``succeeded`` for the invoice's total in its currency marks it paid; ``failed``
    marks it failed and starts dunning. The same (provider, provider_ref, outcome) twice is recorded
    once. Outcomes for an invoice that is no longer open are recorded and change nothing else."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {OUTCOMES}")
    with connection(db), db.atomic():
        invoice = invoicing.get(invoice_id, db=db, lock=True)  # concurrent outcomes of one invoice queue here
        if invoice is None:
            return Outcome(False, None)
        inserted = db.execute_sql(
            "INSERT INTO public.billing_payments (invoice_id, tenant_id, provider, provider_ref, outcome, amount, "
            "currency, detail, recorded_by) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (provider, provider_ref, outcome) WHERE provider_ref <> '' DO NOTHING RETURNING id",
            (invoice_id, invoice.tenant_id, provider, provider_ref, outcome, max(0, int(amount)), currency,
             detail[:500], recorded_by[:200])).fetchone()
        if inserted is None:
            return Outcome(False, invoice)
        if invoice.status != "open":
            return Outcome(True, invoice)
        if outcome == "succeeded":
            if currency != invoice.currency or amount < invoice.total:
                log.warning("billing: %s paid %s %s of %s %s: left open", invoice.number, amount, currency,
                            invoice.total, invoice.currency)
                return Outcome(True, invoice)
            db.execute_sql("UPDATE public.billing_invoices SET status = 'paid', paid_at = now(), updated_at = now() "
                           "WHERE id = %s", (invoice_id,))
        else:
            db.execute_sql("UPDATE public.billing_invoices SET payment_failed_at = now(), "
                           "dunning_since = coalesce(dunning_since, now()), updated_at = now() WHERE id = %s",
                           (invoice_id,))
        _subscription_changed(invoice.tenant_id, invoice_id, outcome)
        return Outcome(True, invoicing.get(invoice_id, db=db))


def mark_paid(invoice_id: int, admin, note: str = "") -> Outcome:
    """An Admin marks a bank transfer received: the invoice's total, recorded with who did it and
    audited in the same transaction. A second click changes nothing."""
    from core.events import AuditEvent, emit

    with connection(), app_db.atomic():
        invoice = invoicing.get(invoice_id)
        if invoice is None or not invoice.payable:
            return Outcome(False, invoice)
        done = record_outcome(invoice_id, provider="manual", outcome="succeeded", amount=invoice.total,
                              currency=invoice.currency, provider_ref=f"manual:{invoice_id}",
                              detail=note.strip()[:500], recorded_by=admin.actor)
        if done.recorded:
            emit(platform(), AuditEvent("billing.invoice_paid", tenant_id=invoice.tenant_id, actor=admin.actor,
                                        actor_name=admin.email, target=f"invoice:{invoice.number}",
                                        details={"amount": invoice.total, "currency": invoice.currency,
                                                 "provider": "manual"}))
        return done


def payments_of(invoice_id: int, db=app_db) -> list[dict]:
    cols = ("provider", "provider_ref", "outcome", "amount", "currency", "detail", "recorded_by", "created_at")
    return [dict(zip(cols, r)) for r in db.execute_sql(
        f"SELECT {', '.join(cols)} FROM public.billing_payments WHERE invoice_id = %s ORDER BY id", (invoice_id,))]


def collect_open(limit: int = 200) -> int:
    """Ask each workspace's provider to charge its saved payment method for open invoices not tried
    yet (a platform-wide periodic; the provider's call happens outside any transaction)."""
    settings = platform().settings
    with connection():
        rows = list(app_db.execute_sql(
            "SELECT i.id FROM public.billing_invoices i JOIN public.billing_accounts a ON a.tenant_id = i.tenant_id "
            "WHERE i.status = 'open' AND i.kind = 'invoice' AND i.total > 0 AND i.collect_attempted_at IS NULL "
            "AND a.provider <> 'manual' AND a.provider_customer <> '' ORDER BY i.id LIMIT %s", (limit,)))
    tried = 0
    for (invoice_id,) in rows:
        with connection(), app_db.atomic():
            claimed = app_db.execute_sql(
                "UPDATE public.billing_invoices SET collect_attempted_at = now(), updated_at = now() "
                "WHERE id = %s AND collect_attempted_at IS NULL AND status = 'open' RETURNING tenant_id",
                (invoice_id,)).fetchone()
            if claimed is None:
                continue
            account = accounts.get(claimed[0])
            invoice = invoicing.get(invoice_id)
        try:
            if provider_of(account, settings).collect(settings, account, invoice):
                tried += 1
        except Exception as exc:  # the provider refused or was unreachable: a failed attempt
            log.warning("billing: collecting %s failed: %s", invoice.number, exc)
            record_outcome(invoice_id, provider=account.provider, outcome="failed", amount=invoice.total,
                           currency=invoice.currency, provider_ref=f"collect:{invoice_id}:{utcnow().isoformat()}",
                           detail=str(exc)[:500], recorded_by="system")
    return tried
