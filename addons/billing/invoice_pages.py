"""Pages of invoices and payments.

Workspace (Customer): ``/billing/invoices`` (list), ``/billing/invoices/<id>`` (the invoice, in
its own language, with how to pay it), ``/billing/invoices/<id>.pdf``, ``/billing/details`` (the
buyer's details invoices copy), ``/billing/payment`` (payment method: bank details, or Stripe's
Checkout and customer portal). Another workspace's invoice id is a 404, like one that does not exist.

Admin console: ``/admin/billing/invoices`` (all, mark a bank transfer paid, issue a credit note),
``/admin/billing/past-due``, ``/admin/billing/revenue`` (MRR and revenue per month),
``/admin/billing/tax`` (tax rate per buyer country).
"""

from __future__ import annotations

from core.db import app_db, connection
from core.i18n import N_
from core.web.admin_pages import AdminHandler
from core.web.base import PageHandler
from core.web.menu import SETTINGS, MenuItem
from core.web.params import is_digits
from core.web.problem import Problem

from . import accounts, dunning, invoice_pdf, invoicing, payments, revenue, tax
from .money import MoneyError, format_money, format_rate, parse_rate

READ = "invoices:read"
PAY = "billing:payment"


def permissions(register) -> None:
    register(READ, "See and download the workspace's invoices and credit notes", ["customer", "admin"])
    register(PAY, "Change the workspace's billing details and payment method, and pay invoices", ["customer"])


# Why an invoice was issued (``invoice.reason``), as the invoice lists show it.
INVOICE_REASONS = (N_("start"), N_("upgrade"), N_("renewal"), N_("final"))
MENU = [MenuItem(N_("Invoices"), "/billing/invoices", READ, 72, SETTINGS)]
ADMIN_LINKS = [{"label": N_("Invoices"), "url": "/admin/billing/invoices"},
               {"label": N_("Revenue"), "url": "/admin/billing/revenue"}]


def template_context(handler) -> dict:
    ctx = {"format_money": format_money, "format_tax_rate": format_rate}
    if handler.tenant is None:
        ctx["admin_links"] = ADMIN_LINKS
    return ctx


class StripeFormsMixin:
    """Pages whose forms a provider's checkout answers with a redirect off the site: browsers hold
    a redirect after a form submission to the page's CSP ``form-action``, so these pages allow the
    provider's hosts there too (Stripe's Checkout and customer portal)."""

    FORM_HOSTS = "https://checkout.stripe.com https://billing.stripe.com"

    def set_default_headers(self):
        super().set_default_headers()
        from core.web.security_headers import CSP

        if self.application.platform.settings.stripe_secret_key:
            self.set_header("Content-Security-Policy", CSP.replace("form-action 'self'",
                                                                   f"form-action 'self' {self.FORM_HOSTS}"))


def _in_public(fn, *args, **kwargs):
    with connection():
        return fn(*args, **kwargs)


class InvoiceMixin:
    async def own_invoice(self, raw_id: str) -> invoicing.Invoice:
        """The workspace's invoice ``raw_id``; 404 for any other (another workspace's included)."""
        invoice = None
        if is_digits(raw_id) and len(raw_id) < 19:
            invoice = await self.run_db(_in_public, invoicing.get, int(raw_id), self.tenant.id)
        if invoice is None:
            raise Problem(404, "not-found", N_("There is no such invoice in this workspace."))
        return invoice

    def document_context(self, invoice, corrects=None) -> dict:
        doc_, _n = self.platform.catalogues.gettext_for(invoice.language)
        return {"invoice": invoice, "d_": doc_, "d_fmt": self.platform.catalogues.formats(invoice.language),
                "corrects": corrects}


def _corrected(invoice):
    return invoicing.get(invoice.corrects_invoice_id) if invoice.corrects_invoice_id else None


class InvoicesPage(PageHandler, InvoiceMixin):
    permissions = {"GET": READ}

    async def get(self):
        rows = await self.run_db(_in_public, invoicing.for_tenant, self.tenant.id)
        self.render("billing/invoices.html", invoices=rows)


class InvoicePage(StripeFormsMixin, PageHandler, InvoiceMixin):
    permissions = {"GET": READ}

    async def get(self, raw_id):
        invoice = await self.own_invoice(raw_id)

        def load():
            with connection():
                return _corrected(invoice), accounts.get(self.tenant.id), payments.payments_of(invoice.id)

        corrects, account, paid = await self.run_db(load)
        provider = payments.provider_of(account, self.settings_) if invoice.payable else None
        self.render("billing/invoice.html", provider=provider, account=account, payments=paid,
                    can_pay=self.principal.can(PAY), **self.document_context(invoice, corrects))


class InvoicePdf(PageHandler, InvoiceMixin):
    permissions = {"GET": READ}

    async def get(self, raw_id):
        invoice = await self.own_invoice(raw_id)
        corrects = await self.run_db(_in_public, _corrected, invoice)
        doc_, _n = self.platform.catalogues.gettext_for(invoice.language)
        pdf = await self.run_db(invoice_pdf.render, invoice, doc_, corrects.number if corrects else "")
        self.set_header("Content-Type", "application/pdf")
        self.set_header("Content-Disposition", f'attachment; filename="{invoice.number}.pdf"')
        self.set_header("Cache-Control", "private, no-store")
        self.finish(pdf)


class InvoicePay(PageHandler, InvoiceMixin):
    """``POST /billing/invoices/<id>/pay``: off to the provider's checkout (Stripe)."""

    permissions = {"POST": PAY}

    async def post(self, raw_id):
        invoice = await self.own_invoice(raw_id)
        if not invoice.payable:
            raise Problem(409, "not-payable", N_("Invoice %(number)s has nothing left to pay."),
            args={"number": invoice.number})
        account = await self.run_db(_in_public, accounts.get, self.tenant.id)
        provider = payments.provider_of(account, self.settings_)
        back = f"{self.settings_.public_url(self.tenant.slug)}/billing/invoices/{invoice.id}"
        url = await self.run_db(provider.checkout_url, self.settings_, account, invoice, back)
        if not url:
            raise Problem(400, "no-checkout", N_("This invoice is paid by bank transfer: the invoice "
                                                 "says where to."))
        self.redirect(url, status=303)


LANGUAGE_FIELD = "language"


class AuditedChange:
    def save_audited(self, action: str, change, *args, **details):
        """``change(*args)`` and its audit event in one transaction of the catalogue."""
        from core.events import emit
        from core.web.auth_pages import audit

        with connection(), app_db.atomic():
            change(*args)
            emit(self.platform, audit(self, action, actor=self.principal.actor,
                                      actor_name=self.principal.email or "", **details))


class BillingDetailsPage(AuditedChange, PageHandler):
    permissions = {"GET": PAY, "POST": PAY}

    async def get(self):
        account = await self.run_db(_in_public, accounts.get, self.tenant.id)
        self.render("billing/payment_details.html", values=account.__dict__, errors={})

    async def post(self):
        form = {k: self.get_body_argument(k, "") for k in ("company", "address", "country", "vat_id", "email",
                                                              LANGUAGE_FIELD)}
        values, errors = accounts.validate(form, self.platform.catalogues.languages)
        if errors:
            _, _n = self.gettext()
            self.set_status(422)
            self.render("billing/payment_details.html", values=values, errors={k: _(v) for k, v in errors.items()})
            return
        await self.run_db(self.save_audited, "billing.details_changed", accounts.save, self.tenant.id, values,
                          fields=sorted(values))
        self.flash("success", self.gettext()[0]("Billing details saved. Invoices issued from now on use them."))
        self.redirect("/billing/details")


class PaymentMethodPage(StripeFormsMixin, AuditedChange, PageHandler):
    permissions = {"GET": PAY, "POST": PAY}

    async def get(self):
        account = await self.run_db(_in_public, accounts.get, self.tenant.id)
        current = payments.provider_of(account, self.settings_)
        self.render("billing/payment_method.html", account=account, current=current, invoice=None,
                    offered=payments.offered(self.settings_), provider=current, can_pay=True)

    async def post(self):
        action = self.get_body_argument("action", "")
        account = await self.run_db(_in_public, accounts.get, self.tenant.id)
        back = f"{self.settings_.public_url(self.tenant.slug)}/billing/payment"
        if action == "choose":
            chosen = self.get_body_argument("provider", "")
            if chosen not in {p.name for p in payments.offered(self.settings_)}:
                raise Problem(400, "invalid-provider", N_("Choose one of the payment methods offered."))
            await self.run_db(self.save_audited, "billing.payment_method_changed", accounts.set_provider,
                              self.tenant.id, chosen, provider=chosen)
            self.flash("success", self.gettext()[0]("Payment method changed."))
            self.redirect("/billing/payment")
            return
        provider = payments.provider_of(account, self.settings_)
        if action == "card":
            url = await self.run_db(provider.checkout_url, self.settings_, account, None, back)
        elif action == "portal":
            url = await self.run_db(provider.portal_url, self.settings_, account, back)
        else:
            raise Problem(400, "invalid-action", N_("Unknown action."))
        if not url:
            raise Problem(400, "not-available", N_("This payment method has no such page."))
        self.redirect(url, status=303)


# -- Admin console -------------------------------------------------------------------------------

class AdminInvoicesPage(AdminHandler):
    async def get(self):
        status = self.get_query_argument("status", "")
        if status not in ("", "open", "paid", "credited", "issued"):
            raise Problem(400, "invalid-parameter", N_("status must be open, paid, credited or "
                                                       "issued."))
        rows = await self.run_db(_in_public, invoicing.everyone, status or None)
        self.render("billing/invoices_admin.html", rows=rows, status=status)

    async def post(self):
        action = self.get_body_argument("action", "")
        raw = self.get_body_argument("invoice_id", "")
        if not is_digits(raw) or len(raw) > 18:
            raise Problem(400, "invalid-invoice", N_("Name an invoice."))
        invoice_id = int(raw)
        if action == "paid":
            done = await self.run_db(payments.mark_paid, invoice_id, self.principal,
                                     self.get_body_argument("note", ""))
            if done.invoice is None:
                raise Problem(404, "not-found", N_("There is no such invoice."))
            self.flash("success" if done.recorded else "error",
                       N_("%(number)s: marked paid.") if done.recorded else N_("%(number)s: nothing to pay."),
                       number=done.invoice.number)
        elif action == "credit":
            try:
                note = await self.run_db(self.credit, invoice_id, self.get_body_argument("reason", ""))
            except invoicing.InvoiceError as exc:
                raise Problem.refused(409, "not-credited", exc) from None
            self.flash("success", N_("Credit note %(number)s issued."), number=note.number)
        else:
            raise Problem(400, "invalid-action", N_("Unknown action."))
        self.redirect("/admin/billing/invoices")

    def credit(self, invoice_id: int, reason: str):
        from core.events import AuditEvent, emit

        with connection(), app_db.atomic():
            note = invoicing.credit_note(invoice_id, reason)
            emit(self.platform, AuditEvent("billing.credit_note", tenant_id=note.tenant_id, actor=self.principal.actor,
                                           actor_name=self.principal.email, target=f"invoice:{note.number}",
                                           reason=reason.strip(), details={"corrects": note.corrects_invoice_id}))
            return note


class AdminPastDuePage(AdminHandler):
    async def get(self):
        rows = await self.run_db(_in_public, dunning.past_due)
        self.render("billing/invoices_admin_past_due.html", rows=rows, step_labels=dunning.STEP_LABELS,
                    grace=self.settings_.billing_dunning_grace_days)


class AdminRevenuePage(AdminHandler):
    async def get(self):
        data = await self.run_db(_in_public, revenue.overview)
        self.render("billing/revenue_admin.html", **data)


class AdminTaxPage(AdminHandler):
    def audited(self, action: str, country: str, change, *args):
        from core.events import AuditEvent, emit

        with connection(), app_db.atomic():
            change(*args)
            rate = next((r for r in tax.rates() if r["country"] == country), None)
            emit(self.platform, AuditEvent(action, actor=self.principal.actor, actor_name=self.principal.email,
                                           target=f"tax:{country}", details={"rate": rate}))

    async def get(self, error=None):
        rates = await self.run_db(_in_public, tax.rates)
        self.render("billing/revenue_admin_tax.html", rates=rates, error=error,
                    seller_country=self.settings_.billing_seller_country)

    async def post(self):
        country = self.get_body_argument("country", "").strip().upper()
        try:
            if self.get_body_argument("action", "") == "remove":
                await self.run_db(self.audited, "billing.tax_rate_removed", country, tax.remove_rate, country)
            else:
                rate = parse_rate(self.get_body_argument("rate", ""))
                await self.run_db(self.audited, "billing.tax_rate_set", country, tax.set_rate, country, rate,
                                  self.get_body_argument("name", ""))
        except (MoneyError, ValueError) as exc:
            self.set_status(422)
            await self.get(error=self.refusal_text(exc))
            return
        self.flash("success", N_("Tax rates saved (%(country)s)."), country=country)
        self.redirect("/admin/billing/tax")


ROUTES = [
    (r"/billing/invoices", InvoicesPage),
    (r"/billing/invoices/([^/]+)\.pdf", InvoicePdf),
    (r"/billing/invoices/([^/]+)/pay", InvoicePay),
    (r"/billing/invoices/([^/.]+)", InvoicePage),
    (r"/billing/details", BillingDetailsPage),
    (r"/billing/payment", PaymentMethodPage),
    (r"/admin/billing/invoices", AdminInvoicesPage),
    (r"/admin/billing/past-due", AdminPastDuePage),
    (r"/admin/billing/revenue", AdminRevenuePage),
    (r"/admin/billing/tax", AdminTaxPage),
]
