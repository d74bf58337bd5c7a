"""Dunning: what happens to an unpaid invoice, step by step, each step once.

An invoice enters dunning when a payment of it fails (:func:`.payments.record_outcome`) or when its
due date passes unpaid (a bank transfer that did not come): ``dunning_since``. From then on

* ``past_due``: the subscription is told the payment failed (once; a failed card payment told it
  already when the failure was recorded);
* ``reminder_1``, ``reminder_3``, ``reminder_7``: an e-mail 1, 3 and 7 days later, to the billing
  e-mail (or the workspace's Customers), each once; when several fell due together (the worker was
  down) only the latest is sent and the earlier ones are recorded as passed;
* ``suspended``: after ``SMSGW_BILLING_DUNNING_GRACE_DAYS`` (14 by default) the subscription is
  suspended: the workspace can sign in, read, export and pay, but not send. Nothing is deleted.

Paying the invoice (any provider) ends its dunning: the steps only look at open invoices. Every step
is a row of ``public.billing_dunning_steps`` written in the transaction that takes it.

One platform-wide periodic task runs it (every 15 minutes), reading only the index of open
invoices in dunning: no per-workspace fan-out, no per-workspace job.
"""

from __future__ import annotations

import datetime as dt
import logging

from core.catalogue import Tenant
from core.clock import utcnow
from core.datamap import NO_PERSONAL_DATA, Table
from core.db import app_db, connection, tenant_transaction
from core.events import AuditEvent, emit
from core.i18n import N_

from . import accounts, invoicing, payments
from .money import format_money

log = logging.getLogger(__name__)

MODELS = [Table("billing_dunning_steps", "public", NO_PERSONAL_DATA)]
REMINDERS = (("reminder_1", 1), ("reminder_3", 3), ("reminder_7", 7))
# The steps as an operator reads them (the past-due page).
STEP_LABELS = {"past_due": N_("marked past due"), "reminder_1": N_("reminder after 1 day"),
               "reminder_3": N_("reminder after 3 days"), "reminder_7": N_("reminder after 7 days"),
               "suspended": N_("sending suspended")}


def tasks(queue) -> None:
    from huey import crontab

    queue.periodic(crontab(minute="*/15"), run, name="billing.dunning", per_tenant=False)
    queue.periodic(crontab(minute="*/5"), payments.collect_open, name="billing.collect", per_tenant=False)


def run(now: dt.datetime | None = None) -> dict:
    """One pass over every open invoice in dunning (or overdue). Returns counts of steps taken."""
    now = now or utcnow()
    settings = payments.platform().settings
    taken = {"past_due": 0, "reminders": 0, "suspended": 0}
    with connection():
        # The due date passing unpaid starts dunning (bank transfers; a card that was never tried).
        app_db.execute_sql("UPDATE public.billing_invoices SET dunning_since = due_at, updated_at = now() "
                           "WHERE status = 'open' AND kind = 'invoice' AND total > 0 AND dunning_since IS NULL "
                           "AND due_at <= %s", (now,))
        unpaid = [r[0] for r in app_db.execute_sql(
            "SELECT id FROM public.billing_invoices WHERE status = 'open' AND dunning_since IS NOT NULL "
            "AND dunning_since <= %s ORDER BY dunning_since, id", (now,))]
    for invoice_id in unpaid:
        try:
            for step in _advance(invoice_id, now, settings):
                taken["reminders" if step.startswith("reminder") else step] += 1
        except Exception:  # one invoice's trouble (a mail server down) must not stop the others
            log.exception("billing: dunning of invoice %s failed; tried again next pass", invoice_id)
    return taken


def _advance(invoice_id: int, now: dt.datetime, settings) -> list[str]:
    # Whom to write, read first: the Customers' addresses need a transaction of the workspace's own.
    with connection():
        (tenant_id,) = app_db.execute_sql("SELECT tenant_id FROM public.billing_invoices WHERE id = %s",
                                          (invoice_id,)).fetchone()
        to = recipients(tenant_id)
    # The steps and their mail: a mail that cannot be sent rolls the steps back (tried next pass).
    with connection(), app_db.atomic():
        invoice = invoicing.get(invoice_id, lock=True)  # a payment recorded meanwhile waits, or wins
        if invoice is None or invoice.status != "open":
            return []
        done = {r[0] for r in app_db.execute_sql(
            "SELECT step FROM public.billing_dunning_steps WHERE invoice_id = %s", (invoice_id,))}
        age = now - invoice.dunning_since
        steps = [] if "past_due" in done else ["past_due"]
        steps += [name for name, days in REMINDERS if name not in done and age >= dt.timedelta(days=days)]
        suspend = "suspended" not in done and age >= dt.timedelta(days=settings.billing_dunning_grace_days)
        if suspend:
            steps.append("suspended")
        for step in steps:
            app_db.execute_sql("INSERT INTO public.billing_dunning_steps (invoice_id, step, done_at) "
                               "VALUES (%s, %s, %s)", (invoice_id, step, now))
        if "past_due" in steps and invoice.payment_failed_at is None:
            payments._subscription_changed(invoice.tenant_id, invoice_id, "failed")
        reminders = [s for s in steps if s.startswith("reminder")]
        if suspend:
            payments._subscription_changed(invoice.tenant_id, invoice_id, "suspended")
            emit(payments.platform(), AuditEvent("billing.suspended", tenant_id=invoice.tenant_id, actor="system",
                                                 target=f"invoice:{invoice.number}",
                                                 details={"grace_days": settings.billing_dunning_grace_days}))
        if reminders or suspend:
            _mail(invoice, "suspended" if suspend else reminders[-1], settings, to)
        return steps


def recipients(tenant_id: int) -> list[str]:
    """The billing e-mail the workspace gave, else its active Customers' addresses."""
    account = accounts.get(tenant_id)
    if account.email:
        return [account.email]
    tenant = Tenant.get_or_none(Tenant.id == tenant_id)
    if tenant is None:
        return []
    from core.users import ROLE_CUSTOMER, User

    with tenant_transaction(tenant.ref):
        return [u.email for u in User.select().where(User.role == ROLE_CUSTOMER, User.is_active == True)  # noqa: E712
                if u.email]


def _mail(invoice, step: str, settings, to: list[str]) -> None:
    platform = payments.platform()
    _, ngettext = platform.catalogues.gettext_for(invoice.language)
    amount = format_money(invoice.total, invoice.currency, invoice.language)
    slug = Tenant.get_by_id(invoice.tenant_id).slug
    link = f"{settings.public_url(slug)}/billing/invoices/{invoice.id}"
    if step == "suspended":
        subject = _("Sending suspended: invoice %(number)s is unpaid", number=invoice.number)
        body = _("Invoice %(number)s of %(amount)s is still unpaid, so sending from your workspace is suspended. "
                 "You can still sign in, read and export your data. Pay the invoice to resume sending:\n\n%(link)s\n",
                 number=invoice.number, amount=amount, link=link)
    else:
        subject = _("Reminder: invoice %(number)s is unpaid", number=invoice.number)
        days = settings.billing_dunning_grace_days
        body = _("Invoice %(number)s of %(amount)s is unpaid. Please pay it, or update your payment method:\n\n"
                 "%(link)s\n\n", number=invoice.number, amount=amount, link=link) + ngettext(
            "Without payment, sending is suspended %(num)d day after the payment was due.",
            "Without payment, sending is suspended %(num)d days after the payment was due.", days) + "\n"
    lang = platform.catalogues.resolve(invoice.language)
    for address in to:
        platform.mailer.send(address, subject, body, lang=lang, direction=platform.catalogues.direction(lang))


def past_due(db=app_db) -> list[dict]:
    """Open invoices in dunning, longest unpaid first, with their workspace and the steps taken (Admin)."""
    cols = ", ".join(f"i.{c}" for c in invoicing.COLUMNS)
    rows = db.execute_sql(
        f"SELECT {cols}, t.slug, coalesce((SELECT array_agg(s.step ORDER BY s.done_at, s.step) "
        "FROM public.billing_dunning_steps s WHERE s.invoice_id = i.id), '{}') "
        "FROM public.billing_invoices i LEFT JOIN public.tenant t ON t.id = i.tenant_id "
        "WHERE i.status = 'open' AND i.dunning_since IS NOT NULL ORDER BY i.dunning_since, i.id LIMIT 1000")
    n = len(invoicing.COLUMNS)
    return [{"invoice": invoicing.from_row(r[:n]), "slug": r[n] or f"#{r[1]}", "steps": list(r[n + 1])} for r in rows]
