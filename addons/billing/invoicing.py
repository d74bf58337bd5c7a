"""Invoices and credit notes: issued once, numbered without gaps, never changed afterwards.

:func:`issue` is the one way an invoice comes to exist (A's renewal and upgrade call it). In one
transaction it locks the issuer's counter row, takes the next number, copies the seller (settings)
and the buyer (``billing_accounts``) into the invoice, decides the tax (:mod:`.tax`) and writes
the lines and totals in integer minor units. A rolled-back issue leaves no gap: the counter moves
only with the invoice it numbered. The database refuses any change to an issued field and any
delete (``0020_invoices_payments.sql``); a correction is a credit note (:func:`credit_note`),
a document of its own series that names the invoice it corrects.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, fields

from core.clock import utcnow
from core.datamap import NO_PERSONAL_DATA, PersonalData, Table
from core.db import app_db, connection

from . import tax
from .money import MoneyError, check_amount, check_currency, tax_of
from core.i18n import N_
from core.web.problem import Refusal

MODELS = [
    Table("billing_invoices", "public", PersonalData(
        personal=("buyer",), subjects={"tenant": "tenant_id"},
        export=("number", "kind", "reason", "currency", "issued_at", "period_start", "period_end", "buyer", "lines",
                "subtotal", "tax_amount", "total", "status", "paid_at"),
        erase="keep", why="invoices are accounting records that tax law requires the operator to keep for years")),
    Table("billing_invoice_counters", "public", NO_PERSONAL_DATA),
]
KINDS = ("invoice", "credit_note")


class InvoiceError(Refusal):
    """An invoice that cannot be issued as asked; the message says why."""


@dataclass(frozen=True)
class Line:
    description: str
    quantity: int
    unit_amount: int  # minor units of the invoice's currency
    currency: str | None = None  # when given, must be the invoice's

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_amount


@dataclass(frozen=True)
class Invoice:
    id: int
    tenant_id: int
    issuer: str
    kind: str
    seq: int
    number: str
    corrects_invoice_id: int | None
    reason: str
    currency: str
    period_start: dt.datetime | None
    period_end: dt.datetime | None
    issued_at: dt.datetime
    due_at: dt.datetime
    language: str
    seller: dict
    buyer: dict
    lines: list
    subtotal: int
    tax_rate_bp: int
    tax_name: str
    reverse_charge: bool
    tax_amount: int
    total: int
    status: str
    paid_at: dt.datetime | None
    payment_failed_at: dt.datetime | None
    dunning_since: dt.datetime | None
    collect_attempted_at: dt.datetime | None

    @property
    def payable(self) -> bool:
        return self.kind == "invoice" and self.status == "open" and self.total > 0


COLUMNS = tuple(f.name for f in fields(Invoice))
SELECT = f"SELECT {', '.join(COLUMNS)} FROM public.billing_invoices"


def from_row(row) -> Invoice:
    return Invoice(**dict(zip(COLUMNS, row)))


def check_lines(lines, currency: str, *, negative: bool = False) -> list[Line]:
    """The lines, checked: at least one; a description; a whole quantity of at least 1; a whole
    unit amount in minor units, not negative (a credit note's are all negative); one currency."""
    if not lines:
        raise InvoiceError(N_("An invoice needs at least one line."))
    checked = []
    for line in lines:
        if not isinstance(line, Line):
            raise InvoiceError(N_("Invoice lines are invoicing.Line values."))
        if line.currency is not None and line.currency != currency:
            raise InvoiceError(N_("A line in %(line_currency)s cannot go on an invoice in %(currency)s."),
                               {"line_currency": str(line.currency)[:10], "currency": currency})
        description = (line.description or "").strip()
        if not description or len(description) > 200:
            raise InvoiceError(N_("Each line needs a description of 1 to 200 characters."))
        if not isinstance(line.quantity, int) or isinstance(line.quantity, bool) or not 1 <= line.quantity <= 10**9:
            raise InvoiceError(N_("A line's quantity is a whole number from 1 to 1,000,000,000."))
        try:
            check_amount(line.unit_amount, allow_negative=negative)
        except MoneyError as exc:
            raise InvoiceError(exc.msgid, exc.msg_args) from None
        if negative and line.unit_amount > 0:
            raise InvoiceError(N_("A credit note's lines refund: their amounts are not positive."))
        if abs(line.unit_amount) > 10**12:
            raise InvoiceError(N_("A line's unit amount is too large."))
        checked.append(Line(description, line.quantity, line.unit_amount, currency))
    return checked


def seller_details(settings) -> dict:
    return {"name": settings.billing_seller_name, "address": settings.billing_seller_address,
            "country": settings.billing_seller_country, "vat_id": settings.billing_seller_vat_id,
            "email": settings.billing_seller_email, "bank_details": settings.billing_bank_details}


def buyer_details(tenant_id: int, db=app_db) -> tuple[dict, str]:
    """The buyer as the workspace entered it (its name from the catalogue if no company is given),
    and the language its invoices are written in ('' for the platform's default)."""
    from . import accounts

    account = accounts.get(tenant_id, db)
    found = db.execute_sql("SELECT name FROM public.tenant WHERE id = %s", (tenant_id,)).fetchone()
    if found is None:
        raise InvoiceError(N_("There is no workspace %(id)s."), {"id": tenant_id})
    (name,) = found
    return ({"company": account.company or name, "address": account.address, "country": account.country,
             "vat_id": account.vat_id, "email": account.email}, account.language)


def _next_number(issuer: str, kind: str, prefix: str, db) -> tuple[int, str]:
    db.execute_sql("INSERT INTO public.billing_invoice_counters (issuer, kind) VALUES (%s, %s) "
                   "ON CONFLICT DO NOTHING", (issuer, kind))
    (last,) = db.execute_sql("SELECT last_number FROM public.billing_invoice_counters "
                             "WHERE issuer = %s AND kind = %s FOR UPDATE", (issuer, kind)).fetchone()
    seq = last + 1
    db.execute_sql("UPDATE public.billing_invoice_counters SET last_number = %s WHERE issuer = %s AND kind = %s",
                   (seq, issuer, kind))
    return seq, f"{prefix}{seq:06d}"


def _settings(settings):
    if settings is not None:
        return settings
    from .payments import platform

    return platform().settings


def issue(tenant_id: int, lines: list[Line], *, reason: str, currency: str, period_start=None, period_end=None,
          settings=None, db=app_db) -> Invoice:
    """Issue an invoice to workspace ``tenant_id`` (opens a connection if none is open; joins the
    caller's transaction if one is). Tax is the buyer's (:func:`tax.decide`), computed once on the
    subtotal. Raises :class:`InvoiceError` for lines it refuses, before anything is written."""
    settings = _settings(settings)
    try:
        currency = check_currency(currency)
    except MoneyError as exc:
        raise InvoiceError(exc.msgid, exc.msg_args) from None
    checked = check_lines(lines, currency)
    reason = (reason or "").strip()
    if not 1 <= len(reason) <= 200:
        raise InvoiceError(N_("Say why the invoice is issued (1 to 200 characters), e.g. renewal or upgrade."))
    if period_start and period_end and period_end < period_start:
        raise InvoiceError(N_("The period ends before it starts."))
    with connection(db), db.atomic():
        buyer, language = buyer_details(tenant_id, db)
        decision = tax.decide(settings.billing_seller_country, buyer["country"], buyer["vat_id"], db)
        subtotal = sum(line.amount for line in checked)
        tax_amount = tax_of(subtotal, decision.rate_bp)
        seq, number = _next_number(settings.billing_issuer, "invoice", settings.billing_invoice_prefix, db)
        now = utcnow()
        return _insert(db, tenant_id=tenant_id, issuer=settings.billing_issuer, kind="invoice", seq=seq,
                       number=number, corrects_invoice_id=None, reason=reason, currency=currency,
                       period_start=period_start, period_end=period_end, issued_at=now,
                       due_at=now + dt.timedelta(days=settings.billing_payment_terms_days),
                       language=language or settings.default_language, seller=seller_details(settings),
                       buyer=buyer, lines=checked, subtotal=subtotal, tax_rate_bp=decision.rate_bp,
                       tax_name=decision.name, reverse_charge=decision.reverse_charge, tax_amount=tax_amount,
                       total=subtotal + tax_amount, status="paid" if subtotal + tax_amount == 0 else "open",
                       paid_at=now if subtotal + tax_amount == 0 else None)


def credit_note(invoice_id: int, reason: str, *, settings=None, db=app_db) -> Invoice:
    """Correct an invoice in full: a credit note of the credit-note series with the invoice's lines,
    tax and parties negated, naming the invoice. The invoice becomes ``credited`` (an unpaid one
    then needs no payment; a paid one is refunded by the operator outside this system)."""
    settings = _settings(settings)
    reason = (reason or "").strip()
    if not 1 <= len(reason) <= 200:
        raise InvoiceError(N_("Say why the invoice is corrected (1 to 200 characters)."))
    with connection(db), db.atomic():
        original = get(invoice_id, db=db, lock=True)
        if original is None:
            raise InvoiceError(N_("There is no such invoice."))
        if original.kind != "invoice" or original.status == "credited":
            raise InvoiceError(N_("%(number)s is already corrected, or is itself a credit note."),
                               {"number": original.number})
        lines = [Line(f"{line['description']} ({original.number})", line["quantity"], -line["unit_amount"],
                      original.currency) for line in original.lines]
        seq, number = _next_number(original.issuer, "credit_note", settings.billing_credit_note_prefix, db)
        now = utcnow()
        note = _insert(db, tenant_id=original.tenant_id, issuer=original.issuer, kind="credit_note", seq=seq,
                       number=number, corrects_invoice_id=original.id, reason=reason, currency=original.currency,
                       period_start=original.period_start, period_end=original.period_end, issued_at=now,
                       due_at=now, language=original.language, seller=original.seller, buyer=original.buyer,
                       lines=lines, subtotal=-original.subtotal, tax_rate_bp=original.tax_rate_bp,
                       tax_name=original.tax_name, reverse_charge=original.reverse_charge,
                       tax_amount=-original.tax_amount, total=-original.total, status="issued", paid_at=None)
        db.execute_sql("UPDATE public.billing_invoices SET status = 'credited', updated_at = now() WHERE id = %s",
                       (original.id,))
        return note


def _insert(db, **values) -> Invoice:
    lines = [{"description": l.description, "quantity": l.quantity, "unit_amount": l.unit_amount,
              "amount": l.amount} for l in values["lines"]]
    values = {**values, "lines": json.dumps(lines), "seller": json.dumps(values["seller"]),
              "buyer": json.dumps(values["buyer"])}
    names = list(values)
    row = db.execute_sql(f"INSERT INTO public.billing_invoices ({', '.join(names)}) "
                         f"VALUES ({', '.join(['%s'] * len(names))}) RETURNING {', '.join(COLUMNS)}",
                         [values[n] for n in names]).fetchone()
    return from_row(row)


def get(invoice_id: int, tenant_id: int | None = None, db=app_db, *, lock: bool = False) -> Invoice | None:
    """An invoice by id; with ``tenant_id``, only if it is that workspace's (inside a connection;
    ``lock``: inside a transaction, locked until it ends)."""
    lock_sql = " FOR UPDATE" if lock else ""
    if tenant_id is None:
        row = db.execute_sql(SELECT + " WHERE id = %s" + lock_sql, (invoice_id,)).fetchone()
    else:
        row = db.execute_sql(SELECT + " WHERE id = %s AND tenant_id = %s" + lock_sql, (invoice_id, tenant_id)).fetchone()
    return from_row(row) if row else None


def for_tenant(tenant_id: int, db=app_db) -> list[Invoice]:
    """The workspace's invoices and credit notes, newest first (inside a connection)."""
    return [from_row(r) for r in db.execute_sql(SELECT + " WHERE tenant_id = %s ORDER BY issued_at DESC, id DESC",
                                            (tenant_id,))]


def everyone(status: str | None = None, limit: int = 500, db=app_db) -> list[dict]:
    """Every workspace's invoices for the Admin console, newest first, with the workspace's slug."""
    where = "WHERE i.status = %s" if status else ""
    params = ([status] if status else []) + [limit]
    cols = ", ".join(f"i.{c}" for c in COLUMNS)
    out = []
    for row in db.execute_sql(f"SELECT {cols}, t.slug FROM public.billing_invoices i "
                              f"LEFT JOIN public.tenant t ON t.id = i.tenant_id {where} "
                              "ORDER BY i.issued_at DESC, i.id DESC LIMIT %s", params):
        out.append({"invoice": from_row(row[:-1]), "slug": row[-1] or f"#{row[1]}"})
    return out
