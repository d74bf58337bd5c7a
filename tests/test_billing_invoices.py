"""Invoices (issue 17 item 5) on a real PostgreSQL: gapless numbers per issuer under concurrency
and rollbacks, immutability enforced by the database, tax and reverse charge, credit notes,
the customer's and the admin's pages, PDF, another workspace's invoice -> 404, and dunning."""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest

from addons.billing import accounts, dunning, invoicing, payments, tax
from addons.billing.invoicing import InvoiceError, Line
from core.admins import create_admin
from core.db import app_db, connection
from tests.support.identity import admin_sign_in, admin_sql, audit_rows, mails_to, owner_email, post_form, sign_in

ADMIN_PASSWORD = "admin password long enough"


@pytest.fixture
def seller(platform):
    """The platform's settings with a seller of its own and an issuer (numbering series) of this test's."""
    configured = platform.settings
    platform.settings = dataclasses.replace(
        configured, billing_issuer=f"test-{secrets.token_hex(4)}", billing_seller_name="Gateway GmbH",
        billing_seller_address="Hauptstr. 1\n10115 Berlin", billing_seller_country="DE",
        billing_seller_vat_id="DE999999999", billing_bank_details="IBAN DE89 3704 0044 0532 0130 00\nBIC COBADEFFXXX")
    yield platform.settings
    platform.settings = configured


def set_account(tenant, **values):
    with connection():
        accounts.save(tenant.id, values)


def set_rate(country, bp, name="VAT"):
    with connection():
        tax.set_rate(country, bp, name)


def counter(settings) -> int:
    with connection():
        row = app_db.execute_sql("SELECT last_number FROM public.billing_invoice_counters WHERE issuer = %s "
                                 "AND kind = 'invoice'", (settings.billing_issuer,)).fetchone()
    return row[0] if row else 0


def test_numbers_have_no_gaps_with_concurrent_issuers_and_rolled_back_transactions(platform, make_tenant, seller):
    tenants = [make_tenant("inv"), make_tenant("inv")]

    def work(i):
        if i % 4 == 3:  # the caller's transaction fails after issuing: its number must come back
            with pytest.raises(RuntimeError):
                with connection(), app_db.atomic():
                    invoicing.issue(tenants[i % 2].id, [Line("Pro plan", 1, 1900)], reason="renewal",
                                    currency="EUR", settings=seller)
                    raise RuntimeError("the renewal failed after the invoice")
            return None
        return invoicing.issue(tenants[i % 2].id, [Line("Pro plan", 1, 1900)], reason="renewal", currency="EUR",
                               settings=seller).number

    with ThreadPoolExecutor(16) as pool:
        numbers = [n for n in pool.map(work, range(32)) if n]
    assert len(numbers) == 24
    assert sorted(numbers) == [f"INV-{n:06d}" for n in range(1, 25)]
    assert counter(seller) == 24


def test_an_issued_invoice_cannot_be_changed_or_deleted_even_by_the_tables_owner(platform, make_tenant, seller):
    t = make_tenant("inv")
    inv = invoicing.issue(t.id, [Line("Pro plan", 1, 1900)], reason="renewal", currency="EUR", settings=seller)
    for statement in ("UPDATE public.billing_invoices SET total = 1 WHERE id = %s",
                      "UPDATE public.billing_invoices SET lines = '[]' WHERE id = %s",
                      "UPDATE public.billing_invoices SET buyer = '{}' WHERE id = %s",
                      "DELETE FROM public.billing_invoices WHERE id = %s"):
        with pytest.raises(psycopg2.Error):
            admin_sql(platform, statement, (inv.id,))  # the owner of the table: the trigger still refuses
        with pytest.raises(Exception):
            with connection(), app_db.atomic():
                app_db.execute_sql(statement, (inv.id,))  # the serving role
    with pytest.raises(psycopg2.Error):
        admin_sql(platform, "TRUNCATE public.billing_invoices CASCADE")
    # Lines that do not add up are refused by the database too, not only by the code.
    with pytest.raises(psycopg2.Error):
        admin_sql(platform, "INSERT INTO public.billing_invoices (tenant_id, issuer, kind, seq, number, reason, currency, "
                            "due_at, language, seller, buyer, lines, subtotal, tax_rate_bp, tax_amount, total, status) "
                            "VALUES (1, 'x', 'invoice', 1, 'X1', 'r', 'EUR', now(), 'en', '{}', '{}', "
                            "'[{\"description\": \"a\", \"quantity\": 1, \"unit_amount\": 5, \"amount\": 5}]', 6, 0, 0, 6, 'open')")
    with connection():
        again = invoicing.get(inv.id)
    assert again == inv
    # What happens to it afterwards may change: it is paid.
    assert payments.mark_paid(inv.id, type("A", (), {"actor": "admin:0", "email": "ops@x"})()).recorded
    with connection():
        assert invoicing.get(inv.id).status == "paid"


def test_tax_follows_the_buyer_and_reverse_charge_needs_a_valid_eu_vat_id(platform, make_tenant, seller):
    set_rate("DE", 1900, "USt.")
    set_rate("FR", 2000, "TVA")
    home, eu_b2b, eu_bad_id, abroad = (make_tenant("tax") for _ in range(4))
    set_account(home, company="Heim GmbH", country="DE", vat_id="DE123456789")
    set_account(eu_b2b, company="Société SA", country="FR", vat_id="FR12345678901", language="fr")
    set_account(eu_bad_id, company="Mauvais SA", country="FR", vat_id="FR123")
    set_account(abroad, company="Far Inc", country="US")
    lines = [Line("Pro plan", 1, 1999), Line("Overage, 1,000 segments", 3, 333)]
    got = {t.slug: invoicing.issue(t.id, lines, reason="renewal", currency="EUR", settings=seller)
           for t in (home, eu_b2b, eu_bad_id, abroad)}
    a, b, c, d = (got[t.slug] for t in (home, eu_b2b, eu_bad_id, abroad))
    assert a.subtotal == 2998 and a.tax_rate_bp == 1900 and a.tax_amount == 570 and a.total == 3568  # 569.62 -> 570
    assert a.tax_name == "USt." and not a.reverse_charge
    assert b.reverse_charge and b.tax_amount == 0 and b.total == 2998 and b.language == "fr"
    assert c.tax_rate_bp == 2000 and c.tax_amount == 600 and not c.reverse_charge  # 599.6 -> 600
    assert d.tax_rate_bp == 0 and d.total == 2998
    assert b.buyer == {"company": "Société SA", "address": "", "country": "FR", "vat_id": "FR12345678901", "email": ""}
    assert a.seller["vat_id"] == "DE999999999" and a.seller["name"] == "Gateway GmbH"
    assert sum(l["amount"] for l in a.lines) == a.subtotal
    # Later changes to the rate or the buyer never reach an issued invoice.
    set_rate("DE", 700)
    set_account(home, company="Renamed GmbH")
    with connection():
        assert invoicing.get(a.id) == a


def test_hostile_lines_are_refused_and_write_nothing(platform, make_tenant, seller):
    t = make_tenant("inv")
    before = counter(seller)
    for lines, currency in (([Line("negative", 1, -100)], "EUR"), ([Line("dollars", 1, 100, "USD")], "EUR"),
                            ([Line("zero quantity", 0, 100)], "EUR"), ([], "EUR"), ([Line("x", 1, 100)], "EURO"),
                            ([Line("", 1, 100)], "EUR")):
        with pytest.raises(InvoiceError):
            invoicing.issue(t.id, lines, reason="renewal", currency=currency, settings=seller)
    with pytest.raises(InvoiceError):
        invoicing.issue(t.id, [Line("x", 1, 100)], reason="", currency="EUR", settings=seller)
    assert counter(seller) == before
    with connection():
        assert invoicing.for_tenant(t.id) == []


def test_a_credit_note_negates_the_invoice_and_names_it(platform, make_tenant, seller):
    set_rate("DE", 1900)
    t = make_tenant("inv")
    set_account(t, company="Heim GmbH", country="DE")
    inv = invoicing.issue(t.id, [Line("Pro plan", 2, 1000)], reason="upgrade", currency="EUR", settings=seller)
    note = invoicing.credit_note(inv.id, "charged twice", settings=seller)
    assert note.kind == "credit_note" and note.number == "CN-000001" and note.corrects_invoice_id == inv.id
    assert (note.subtotal, note.tax_amount, note.total) == (-inv.subtotal, -inv.tax_amount, -inv.total)
    with connection():
        assert invoicing.get(inv.id).status == "credited"
    with pytest.raises(InvoiceError):
        invoicing.credit_note(inv.id, "again", settings=seller)


def issue_for(t, seller, amount=1900, **kw):
    return invoicing.issue(t.id, [Line("Pro plan", 1, amount)], reason="renewal", currency="EUR",
                           period_start=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc),
                           period_end=dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc), settings=seller, **kw)


def test_customers_see_their_invoices_and_never_another_workspaces(live_server, platform, make_tenant, seller):
    set_rate("DE", 1900)
    a, b = make_tenant("inv"), make_tenant("inv")
    set_account(a, company="Alpha GmbH", country="DE", language="de")
    mine, theirs = issue_for(a, seller), issue_for(b, seller)
    c = sign_in(live_server, a.slug, owner_email(a))
    listing = c.get("/billing/invoices")
    assert listing.status_code == 200 and mine.number in listing.text and theirs.number not in listing.text
    page = c.get(f"/billing/invoices/{mine.id}")
    assert page.status_code == 200
    assert "Rechnung" in page.text and "Alpha GmbH" in page.text and "22,61" in page.text  # German, 19 % of 19.00
    assert "DE89 3704 0044 0532 0130 00" in page.text  # the manual provider: bank details
    pdf = c.get(f"/billing/invoices/{mine.id}.pdf")
    assert pdf.status_code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-") and mine.number in pdf.headers["Content-Disposition"]
    for path in (f"/billing/invoices/{theirs.id}", f"/billing/invoices/{theirs.id}.pdf", "/billing/invoices/99999999999",
                 "/billing/invoices/abc", f"/billing/invoices/{theirs.id}/pay"):
        r = c.get(path) if not path.endswith("/pay") else post_form(c, path, {})
        assert r.status_code == 404, (path, r.status_code)


def test_billing_details_are_validated_and_copied_into_the_next_invoice(live_server, platform, make_tenant, seller):
    set_rate("DE", 1900)
    t = make_tenant("inv")
    c = sign_in(live_server, t.slug, owner_email(t))
    assert c.get("/billing/details").status_code == 200
    bad = post_form(c, "/billing/details", {"company": "X", "country": "FR", "vat_id": "FR1", "email": "nope"})
    assert bad.status_code == 422
    with connection():
        assert accounts.get(t.id).company == ""  # bad input changes nothing
    ok = post_form(c, "/billing/details", {"company": "Société SA", "address": "1 rue X\n75001 Paris", "country": "fr",
                                           "vat_id": "FR 12 345678901", "email": "compta@example.fr", "language": "fr"})
    assert ok.status_code == 302
    changed = audit_rows(platform, t.id, "billing.details_changed")
    assert len(changed) == 1 and changed[0]["actor"].startswith("user:")  # the refused form recorded nothing
    inv = issue_for(t, seller)
    assert inv.reverse_charge and inv.buyer["vat_id"] == "FR12345678901" and inv.language == "fr"
    assert "Facture" in c.get(f"/billing/invoices/{inv.id}").text


def test_the_admin_lists_all_invoices_marks_one_paid_and_sees_revenue(live_server, platform, make_tenant, seller):
    a, b = make_tenant("inv"), make_tenant("inv")
    ia, ib = issue_for(a, seller, 5000), issue_for(b, seller, 7000)
    admin = create_admin(platform, f"ops-{a.slug}@platform.example", ADMIN_PASSWORD, "Ops")
    console = admin_sign_in(live_server, admin.email, ADMIN_PASSWORD)
    page = console.get("/admin/billing/invoices")
    assert page.status_code == 200 and ia.number in page.text and ib.number in page.text
    r = post_form(console, "/admin/billing/invoices", {"action": "paid", "invoice_id": str(ia.id)})
    assert r.status_code == 302
    with connection():
        assert invoicing.get(ia.id).status == "paid"
        assert [p["recorded_by"] for p in payments.payments_of(ia.id)] == [f"admin:{admin.id}"]
    assert post_form(console, "/admin/billing/invoices", {"action": "paid", "invoice_id": str(ia.id)}).status_code == 302
    with connection():
        assert len(payments.payments_of(ia.id)) == 1  # a second click records nothing
    assert [e["target"] for e in audit_rows(platform, a.id, "billing.invoice_paid")] == [f"invoice:{ia.number}"]
    revenue = console.get("/admin/billing/revenue")
    assert revenue.status_code == 200 and "<svg" in revenue.text and "Monthly recurring revenue" in revenue.text
    assert console.get("/admin/billing/past-due").status_code == 200
    # Tenants cannot reach the admin pages, and tax rates are the admin's.
    c = sign_in(live_server, a.slug, owner_email(a))
    assert c.get("/admin/billing/invoices").status_code == 404
    assert post_form(console, "/admin/billing/tax", {"country": "AT", "rate": "20", "name": "USt"}).status_code == 302
    assert post_form(console, "/admin/billing/tax", {"country": "AT", "rate": "-3"}).status_code == 422
    with connection():
        assert {r["country"]: r["rate_bp"] for r in tax.rates()}["AT"] == 2000
    assert audit_rows(platform, None, "billing.tax_rate_set")[-1]["target"] == "tax:AT"
    # A correction is a credit note, issued from the console and audited.
    assert post_form(console, "/admin/billing/invoices", {"action": "credit", "invoice_id": str(ib.id),
                                                          "reason": "wrong plan"}).status_code == 302
    with connection():
        assert invoicing.get(ib.id).status == "credited"
        note = [i for i in invoicing.for_tenant(b.id) if i.kind == "credit_note"]
    assert len(note) == 1 and note[0].total == -ib.total
    assert [e["reason"] for e in audit_rows(platform, b.id, "billing.credit_note")] == ["wrong plan"]
    again = post_form(console, "/admin/billing/invoices", {"action": "credit", "invoice_id": str(ib.id), "reason": "x"})
    assert again.status_code == 409


def test_dunning_reminds_at_1_3_7_days_once_each_then_suspends_never_deletes(platform, make_tenant, seller):
    t = make_tenant("dun")
    set_account(t, email=f"accounts@{t.slug}.example")
    inv = issue_for(t, seller)
    start = inv.issued_at
    payments.record_outcome(inv.id, provider="stripe", outcome="failed", amount=inv.total, currency="EUR",
                            provider_ref="pi_failed_1")
    with connection():
        since = invoicing.get(inv.id).dunning_since
    to = f"accounts@{t.slug}.example"

    def steps():
        with connection():
            return {r[0] for r in app_db.execute_sql("SELECT step FROM public.billing_dunning_steps WHERE invoice_id = %s",
                                                     (inv.id,))}

    dunning.run(since + dt.timedelta(hours=1))
    assert steps() == {"past_due"} and mails_to(platform, to, "Reminder") == []
    dunning.run(since + dt.timedelta(days=1, minutes=1))
    dunning.run(since + dt.timedelta(days=1, minutes=2))
    assert len(mails_to(platform, to, "Reminder")) == 1
    dunning.run(since + dt.timedelta(days=3, minutes=1))
    dunning.run(since + dt.timedelta(days=7, minutes=1))
    dunning.run(since + dt.timedelta(days=7, minutes=2))
    assert len(mails_to(platform, to, "Reminder")) == 3
    assert steps() == {"past_due", "reminder_1", "reminder_3", "reminder_7"}
    dunning.run(since + dt.timedelta(days=seller.billing_dunning_grace_days, minutes=1))
    dunning.run(since + dt.timedelta(days=seller.billing_dunning_grace_days, minutes=2))
    assert "suspended" in steps() and len(mails_to(platform, to, "Sending suspended")) == 1
    assert [e["target"] for e in audit_rows(platform, t.id, "billing.suspended")] == [f"invoice:{inv.number}"]
    with connection():
        assert invoicing.get(inv.id).status == "open"  # nothing deleted, still payable
    assert start <= since


def test_an_unpaid_bank_transfer_enters_dunning_at_its_due_date_and_payment_ends_it(platform, make_tenant, seller):
    t = make_tenant("dun")
    inv = issue_for(t, seller)
    dunning.run(inv.due_at - dt.timedelta(minutes=1))
    with connection():
        assert invoicing.get(inv.id).dunning_since is None
    dunning.run(inv.due_at + dt.timedelta(minutes=1))
    with connection():
        assert invoicing.get(inv.id).dunning_since == inv.due_at
    payments.record_outcome(inv.id, provider="manual", outcome="succeeded", amount=inv.total, currency="EUR",
                            provider_ref=f"manual:{inv.id}")
    dunning.run(inv.due_at + dt.timedelta(days=30))
    with connection():
        done = app_db.execute_sql("SELECT step FROM public.billing_dunning_steps WHERE invoice_id = %s",
                                  (inv.id,)).fetchall()
    assert [r[0] for r in done] == ["past_due"]
    assert mails_to(platform, owner_email(t), "Reminder") == []


def test_mrr_counts_paying_subscriptions_and_revenue_per_month_nets_credit_notes(live_server, platform, make_tenant,
                                                                                  seller):
    from addons.billing import revenue

    code = f"chf-{secrets.token_hex(3)}"
    (plan_id,), = admin_sql(platform, "INSERT INTO public.billing_plan_versions (plan_code, version, name, currency, "
                                      "monthly_price, yearly_price, included_segments) VALUES (%s, 1, 'Swiss', 'CHF', "
                                      "1900, 19000, 1000) RETURNING id", (code,), fetch=True)
    monthly, yearly, trial, suspended = (make_tenant("mrr") for _ in range(4))
    for t, interval, status in ((monthly, "month", "active"), (yearly, "year", "past_due"), (trial, "month", "trial"),
                                (suspended, "month", "suspended")):
        # Every workspace is subscribed (to the free plan) when it is made: put it on the test's plan.
        admin_sql(platform, "INSERT INTO public.billing_subscriptions (tenant_id, plan_version_id, billing_interval, "
                            "status, period_start, period_end) VALUES (%s, %s, %s, %s, now(), now() + interval '1 month') "
                            "ON CONFLICT (tenant_id) DO UPDATE SET plan_version_id = excluded.plan_version_id, "
                            "billing_interval = excluded.billing_interval, status = excluded.status",
                  (t.id, plan_id, interval, status))
    with connection():
        assert revenue.mrr()["CHF"] == 1900 + 1583  # 19000 / 12 = 1583.33

    paid = invoicing.issue(monthly.id, [Line("Swiss plan", 1, 1000)], reason="renewal", currency="CHF", settings=seller)
    wrong = invoicing.issue(yearly.id, [Line("Swiss plan", 1, 2000)], reason="renewal", currency="CHF", settings=seller)
    payments.record_outcome(paid.id, provider="manual", outcome="succeeded", amount=1000, currency="CHF",
                            provider_ref=f"manual:{paid.id}")
    invoicing.credit_note(wrong.id, "wrong plan", settings=seller)
    month = paid.issued_at.strftime("%Y-%m")
    with connection():
        figures = revenue.per_month()["CHF"]
    assert figures[month] == {"invoiced": 1000, "paid": 1000}
    assert len(figures) == 12 and list(figures)[-1] == month

    admin = create_admin(platform, f"ops-{monthly.slug}@platform.example", ADMIN_PASSWORD, "Ops")
    console = admin_sign_in(live_server, admin.email, ADMIN_PASSWORD)
    page = console.get("/admin/billing/revenue")
    assert '<dd data-currency="CHF">CHF34.83</dd>' in page.text  # MRR, as English writes francs
    assert f'<tr data-month="{month}"><th scope="row">{month}</th><td class="num">CHF' in page.text
    assert {"billing.dunning", "billing.collect"} <= set(platform.setup_tasks().periodic_tasks)
