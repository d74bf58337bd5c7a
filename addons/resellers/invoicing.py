"""Reseller plans and invoicing, on top of the billing addon.

* A **retail plan** is a reseller's price for its customers (monthly price, included segments,
  overage per 1,000), in the reseller's currency; a workspace of the reseller has one or none.
* **Customer invoices**: for a month, each workspace on a retail plan gets an invoice issued by the
  reseller through billing (:func:`addons.billing.invoicing.issue` with the reseller as
  :class:`~addons.billing.invoicing.Issuer`: its own gapless series, its company as seller). Once
  per workspace and month.
* **Wholesale invoice**: for a month, the platform invoices the reseller one document with a line
  per workspace: the segments it used (billing's usage figures) and their wholesale price (the
  reseller's wholesale plan: its monthly price and overage; or the commission on the workspace's
  retail invoice of that month). Its own gapless series (``W-000001``), once per reseller and month.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from core.db import app_db, connection, tenant_transaction

from . import service
from .service import Reseller, ResellerError
from core.i18n import N_

UTC = dt.timezone.utc


@dataclass(frozen=True)
class RetailPlan:
    id: int
    code: str
    name: str
    currency: str
    monthly_price: int
    included_segments: int
    overage_per_1000: int


PLAN_COLUMNS = ("id", "code", "name", "currency", "monthly_price", "included_segments", "overage_per_1000")


def month_bounds(month: str | dt.date) -> tuple[dt.datetime, dt.datetime]:
    """``[start, end)`` of a calendar month (UTC) given as ``YYYY-MM`` or a date in it."""
    if isinstance(month, str):
        try:
            month = dt.datetime.strptime(month.strip(), "%Y-%m").date()
        except ValueError:
            raise ResellerError(N_("Give the month as YYYY-MM, e.g. 2026-11.")) from None
    start = dt.datetime(month.year, month.month, 1, tzinfo=UTC)
    end = dt.datetime(month.year + (month.month == 12), month.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def overage_amount(segments: int, included: int, per_1000: int) -> int:
    """Minor units for the segments beyond ``included`` at ``per_1000`` per 1,000, rounded up."""
    over = max(0, segments - included)
    return -(-over * per_1000 // 1000)


def create_plan(reseller: Reseller, values: dict) -> RetailPlan:
    from addons.billing.money import MoneyError, check_currency

    code = str(values.get("code") or "").strip()
    name = str(values.get("name") or "").strip()
    if not re.match(r"^[a-z0-9][a-z0-9-]{0,39}$", code):
        raise ResellerError(N_("A plan code is 1 to 40 lowercase letters, digits or hyphens."))
    if not 1 <= len(name) <= 80:
        raise ResellerError(N_("Give the plan a name of 1 to 80 characters."))
    try:
        currency = check_currency(str(values.get("currency") or "").strip())
    except MoneyError as exc:
        raise service.passed_on(exc) from None
    monthly = service.whole_number(values.get("monthly_price"), 0, 10**11, "The monthly price (in cents)")
    included = service.whole_number(values.get("included_segments"), 0, 10**9, "The included segments")
    overage = service.whole_number(values.get("overage_per_1000"), 0, 10**11, "The price per 1,000 more segments (in cents)")
    with connection():
        with app_db.atomic():
            if app_db.execute_sql("SELECT 1 FROM public.reseller_plan WHERE reseller_id = %s AND code = %s",
                                  (reseller.id, code)).fetchone():
                raise ResellerError(N_("You have a plan “%(code)s” already."), {"code": code})
            row = app_db.execute_sql(
                "INSERT INTO public.reseller_plan (reseller_id, code, name, currency, monthly_price, included_segments, "
                f"overage_per_1000) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {', '.join(PLAN_COLUMNS)}",
                (reseller.id, code, name, currency, monthly, included, overage)).fetchone()
    return RetailPlan(*row)


def plans(reseller: Reseller) -> list[RetailPlan]:
    with connection():
        return [RetailPlan(*r) for r in app_db.execute_sql(
            f"SELECT {', '.join(PLAN_COLUMNS)} FROM public.reseller_plan WHERE reseller_id = %s ORDER BY code",
            (reseller.id,)).fetchall()]


def plan_by_code(reseller: Reseller, code: str) -> RetailPlan:
    """One of the reseller's own plans; :class:`~.service.NotYours` for any other code."""
    plan = next((p for p in plans(reseller) if p.code == code), None)
    if plan is None:
        raise service.NotYours(N_("There is no such workspace or plan."))
    return plan


def assign_plan(platform, reseller: Reseller, slug: str, code: str) -> list:
    """Put one of the reseller's workspaces on one of its retail plans (``""``: none); the addons
    that come with the plans follow (:func:`.plan_addons.moved`: what failed, per addon)."""
    from . import plan_addons

    info = service.workspace(reseller.id, slug)
    plan = plan_by_code(reseller, code) if code else None
    if info is None:
        raise service.NotYours(N_("There is no such workspace or plan."))
    with connection(), app_db.atomic():
        (old_plan_id,) = app_db.execute_sql("SELECT retail_plan_id FROM public.reseller_tenant WHERE tenant_id = %s "
                                            "AND reseller_id = %s FOR UPDATE", (info.id, reseller.id)).fetchone()
        app_db.execute_sql("UPDATE public.reseller_tenant SET retail_plan_id = %s WHERE tenant_id = %s AND reseller_id = %s",
                           (plan.id if plan else None, info.id, reseller.id))
    return plan_addons.moved(platform, reseller, info.slug, old_plan_id, plan.id if plan else None)


def _usage(info, start: dt.datetime, end: dt.datetime) -> int:
    from addons.billing import usage_figures

    with tenant_transaction(info.ref):
        return usage_figures.period_usage(info, start, end)


def _retail(reseller: Reseller) -> dict[int, RetailPlan]:
    with connection():
        rows = app_db.execute_sql(
            f"SELECT rt.tenant_id, {', '.join('p.' + c for c in PLAN_COLUMNS)} FROM public.reseller_tenant rt "
            "JOIN public.reseller_plan p ON p.id = rt.retail_plan_id WHERE rt.reseller_id = %s", (reseller.id,)).fetchall()
    return {r[0]: RetailPlan(*r[1:]) for r in rows}


def invoice_customers(reseller: Reseller, month) -> list:
    """Issue the month's retail invoices of the reseller's workspaces on a retail plan (each once);
    billing's :class:`~addons.billing.invoicing.Invoice` objects issued now."""
    from addons.billing import invoicing

    start, end = month_bounds(month)
    retail = _retail(reseller)
    issuer = invoicing.Issuer(f"reseller:{reseller.slug}", f"{reseller.slug.upper()}-",
                              {"name": reseller.company, "address": reseller.address, "country": reseller.country,
                               "vat_id": reseller.vat_id, "email": reseller.contact_email, "bank_details": ""})
    issued = []
    for info in service.workspaces(reseller.id):
        plan = retail.get(info.id)
        if plan is None:
            continue
        used = _usage(info, start, end)
        lines = [invoicing.Line(f"{plan.name}, {start:%Y-%m}", 1, plan.monthly_price)]
        extra = overage_amount(used, plan.included_segments, plan.overage_per_1000)
        if extra:
            lines.append(invoicing.Line(f"{used - plan.included_segments} segments beyond {plan.included_segments}",
                                        1, extra))
        with connection():
            with app_db.atomic():
                # The workspace's row is the lock: two runs at once issue one invoice, not two.
                app_db.execute_sql("SELECT 1 FROM public.reseller_tenant WHERE tenant_id = %s FOR UPDATE", (info.id,))
                if app_db.execute_sql("SELECT 1 FROM public.reseller_customer_invoice WHERE tenant_id = %s AND month = %s",
                                      (info.id, start.date())).fetchone():
                    continue
                invoice = invoicing.issue(info.id, lines, reason=f"Subscription {start:%Y-%m}", currency=plan.currency,
                                          period_start=start, period_end=end, issuer=issuer)
                app_db.execute_sql("INSERT INTO public.reseller_customer_invoice (tenant_id, month, invoice_id) "
                                   "VALUES (%s, %s, %s)", (info.id, start.date(), invoice.id))
        issued.append(invoice)
    return issued


@dataclass(frozen=True)
class WholesaleInvoice:
    id: int
    number: str
    month: dt.date
    currency: str
    total: int
    lines: list  # [{"tenant_id", "tenant_slug", "segments", "amount", "description"}]
    subtotal: int = 0
    tax_rate_bp: int = 0
    tax_name: str = ""
    reverse_charge: bool = False
    tax_amount: int = 0


def wholesale_tax(reseller: Reseller, subtotal: int, db=app_db) -> tuple:
    """``(decision, tax amount)`` of the platform's invoice to the reseller: billing's rule
    (:func:`addons.billing.tax.decide`) with the operator as seller and the reseller as buyer."""
    from addons.billing import tax
    from addons.billing.money import tax_of
    from addons.billing.payments import platform

    decision = tax.decide(platform().settings.billing_seller_country, reseller.country, reseller.vat_id, db)
    return decision, tax_of(subtotal, decision.rate_bp)


def invoice_wholesale(reseller: Reseller, month) -> WholesaleInvoice:
    """The platform's invoice to the reseller for ``month``: a line per workspace it had, with the
    segments used and their wholesale price. Issued once; asking again gives the issued one."""
    start, end = month_bounds(month)
    existing = wholesale_invoice(reseller, start.date())
    if existing is not None:
        return existing
    lines, currency = [], "EUR"
    wholesale_plan = None
    if reseller.pricing == "wholesale":
        from addons.billing import plans as billing_plans

        with connection():
            wholesale_plan = billing_plans.current(reseller.wholesale_plan)
        if wholesale_plan is None:
            raise ResellerError(N_("The wholesale plan “%(plan)s” no longer exists."), {"plan": reseller.wholesale_plan})
        currency = wholesale_plan.currency
    for info in service.workspaces(reseller.id):
        used = _usage(info, start, end)
        if wholesale_plan is not None:
            per_1000 = wholesale_plan.overage_per_1000 or 0
            amount = wholesale_plan.monthly_price + overage_amount(used, wholesale_plan.included_segments, per_1000)
            description = f"{info.slug}: {wholesale_plan.name}, {used} segments"
        else:
            amount, retail_currency = _commission(reseller, info.id, start.date())
            currency = retail_currency or currency
            description = f"{info.slug}: {reseller.commission_bp / 100:g}% commission, {used} segments"
        lines.append({"tenant_id": info.id, "tenant_slug": info.slug, "segments": used, "amount": amount,
                      "description": description[:200]})
    with connection():
        with app_db.atomic():
            (last,) = app_db.execute_sql("SELECT last_number FROM public.reseller_wholesale_counter WHERE id = 1 "
                                         "FOR UPDATE").fetchone()
            if wholesale_invoice(reseller, start.date()) is not None:  # issued meanwhile
                return wholesale_invoice(reseller, start.date())
            seq = last + 1
            app_db.execute_sql("UPDATE public.reseller_wholesale_counter SET last_number = %s WHERE id = 1", (seq,))
            subtotal = sum(l["amount"] for l in lines)
            decision, tax_amount = wholesale_tax(reseller, subtotal)
            invoice_id = app_db.execute_sql(
                "INSERT INTO public.reseller_wholesale_invoice (reseller_id, month, seq, number, currency, subtotal, "
                "tax_rate_bp, tax_name, reverse_charge, tax_amount, total) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (reseller.id, start.date(), seq, f"W-{seq:06d}", currency, subtotal, decision.rate_bp, decision.name,
                 decision.reverse_charge, tax_amount, subtotal + tax_amount)).fetchone()[0]
            for line in lines:
                app_db.execute_sql(
                    "INSERT INTO public.reseller_wholesale_line (invoice_id, tenant_id, tenant_slug, segments, amount, "
                    "description) VALUES (%s, %s, %s, %s, %s, %s)",
                    (invoice_id, line["tenant_id"], line["tenant_slug"], line["segments"], line["amount"],
                     line["description"]))
    return wholesale_invoice(reseller, start.date())


def _commission(reseller: Reseller, tenant_id: int, month: dt.date) -> tuple[int, str | None]:
    with connection():
        row = app_db.execute_sql(
            "SELECT i.subtotal, i.currency FROM public.reseller_customer_invoice ci "
            "JOIN public.billing_invoices i ON i.id = ci.invoice_id WHERE ci.tenant_id = %s AND ci.month = %s",
            (tenant_id, month)).fetchone()
    if row is None:
        return 0, None
    return row[0] * reseller.commission_bp // 10000, row[1]


def wholesale_invoice(reseller: Reseller, month: dt.date) -> WholesaleInvoice | None:
    with connection():
        row = app_db.execute_sql("SELECT id, number, month, currency, total, subtotal, tax_rate_bp, tax_name, "
                                 "reverse_charge, tax_amount FROM public.reseller_wholesale_invoice "
                                 "WHERE reseller_id = %s AND month = %s", (reseller.id, month)).fetchone()
        if row is None:
            return None
        lines = app_db.execute_sql("SELECT tenant_id, tenant_slug, segments, amount, description FROM "
                                   "public.reseller_wholesale_line WHERE invoice_id = %s ORDER BY tenant_slug",
                                   (row[0],)).fetchall()
    keys = ("tenant_id", "tenant_slug", "segments", "amount", "description")
    return WholesaleInvoice(*row[:5], [dict(zip(keys, l)) for l in lines], *row[5:])


def wholesale_invoices(reseller: Reseller) -> list[WholesaleInvoice]:
    with connection():
        months = [r[0] for r in app_db.execute_sql("SELECT month FROM public.reseller_wholesale_invoice WHERE "
                                                   "reseller_id = %s ORDER BY month DESC", (reseller.id,)).fetchall()]
    return [wholesale_invoice(reseller, m) for m in months]


def invoice_last_month() -> None:
    """The monthly task: last month's customer invoices and wholesale invoice of every reseller, a
    suspended one's too (its workspaces kept working and sending: README, "Suspending a reseller")."""
    from core.clock import utcnow

    last_month = (utcnow().replace(day=1) - dt.timedelta(days=1)).date()
    for reseller in service.everyone():
        invoice_customers(reseller, last_month)
        invoice_wholesale(reseller, last_month)
