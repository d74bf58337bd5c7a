"""Reseller plans and invoicing: retail plans on top of the platform's wholesale plans; the reseller's
customers are invoiced by the reseller (its own gapless series through billing); the platform
invoices the reseller each month for the wholesale usage of all its workspaces, and the numbers
reconcile with the usage the workspaces recorded."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest

from addons.resellers import invoicing, service
from core.tenancy import load_tenant
from tests.support.devices import submit
from tests.support.identity import OWNER_PASSWORD, admin_sql, post_form, smsgw
from tests.support.phones import api_client
from tests.support.quotas import make_plan
from tests.support.resellers import PARTNER_PASSWORD, partner_sign_in

MONTH = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m")


def reseller_with(platform, **terms):
    slug = f"inv-{secrets.token_hex(3)}"
    reseller = service.create({"slug": slug, "company": f"Reseller {slug} <GmbH>", "contact_email": f"billing@{slug}.example",
                               "max_workspaces": 10, **terms})
    service.add_user(platform, reseller, f"admin@{slug}.example", PARTNER_PASSWORD, "reseller_admin")
    return reseller


@pytest.fixture
def workspaces(platform):
    made = []

    def make(reseller, count):
        slugs = []
        for _ in range(count):
            slug = f"iw-{secrets.token_hex(3)}"
            service.create_workspace(platform, reseller, slug, f"Customer {slug}", f"owner@{slug}.example", OWNER_PASSWORD)
            made.append(slug)
            slugs.append(slug)
        return slugs

    yield make
    for slug in made:
        platform.tenants.delete(slug)


def send(live_server, slug, messages, recipients=1):
    api = api_client(live_server, slug)
    for i in range(messages):
        submit(api, [f"+1202555{i:02d}{r:02d}" for r in range(recipients)], text=f"message {i}")


def recorded_usage(platform, slug) -> int:
    """The workspace's billable segments this month, read with the administrative connection."""
    schema = load_tenant(slug).schema_name
    return admin_sql(platform, f'SELECT coalesce(sum(segments), 0) FROM "{schema}".usage_counts WHERE metric = '
                     "'submitted' AND day >= date_trunc('month', now())::date", fetch=True)[0][0]


def test_the_months_wholesale_lines_sum_to_the_usage_of_the_resellers_workspaces(platform, live_server, workspaces,
                                                                                  make_tenant):
    plan_id = make_plan(platform, included=2, overage=500)  # 10.00 a month, 2 segments, 5.00 per 1,000 more
    code = admin_sql(platform, "SELECT plan_code FROM public.billing_plan_versions WHERE id = %s", (plan_id,), fetch=True)[0][0]
    reseller = reseller_with(platform, pricing="wholesale", wholesale_plan=code)
    first, second, idle = workspaces(reseller, 3)
    outsider = make_tenant("notmine")
    send(live_server, first, 3)
    send(live_server, second, 2, recipients=3)
    send(live_server, outsider.slug, 4)  # another customer's usage is on nobody's wholesale invoice
    invoice = invoicing.invoice_wholesale(reseller, MONTH)
    by_slug = {line["tenant_slug"]: line for line in invoice.lines}
    assert set(by_slug) == {first, second, idle}
    usage = {slug: recorded_usage(platform, slug) for slug in (first, second, idle)}
    assert usage == {first: 3, second: 6, idle: 0}
    assert sum(line["segments"] for line in invoice.lines) == sum(usage.values()) == 9
    assert {slug: line["segments"] for slug, line in by_slug.items()} == usage
    # Priced by the wholesale plan: its monthly price, plus what is beyond the included segments.
    assert {slug: line["amount"] for slug, line in by_slug.items()} == {first: 1000 + 1, second: 1000 + 2, idle: 1000}
    assert invoice.total == 3003 and invoice.currency == "EUR" and invoice.number.startswith("W-")
    # Issued once: asking again gives the same invoice, whatever happened since.
    send(live_server, first, 1)
    again = invoicing.invoice_wholesale(reseller, MONTH)
    assert (again.id, again.total) == (invoice.id, invoice.total)


def test_customers_are_invoiced_by_the_reseller_with_its_own_gapless_numbers(platform, live_server, workspaces):
    a = reseller_with(platform, pricing="commission", commission_percent="25")
    b = reseller_with(platform, pricing="commission", commission_percent="10")
    a1, a2 = workspaces(a, 2)
    (b1,) = workspaces(b, 1)
    send(live_server, a2, 5)
    console = partner_sign_in(live_server, a)
    r = post_form(console, f"/{a.slug}/invoices", {"action": "create_plan", "code": "basic", "name": "Basic <SMS>",
                                                   "currency": "EUR", "monthly_price": "2000", "included_segments": "3",
                                                   "overage_per_1000": "100000"})
    assert r.status_code == 302, r.text[:300]
    for bad in ({"currency": "EURO"}, {"currency": "ZZZ"}, {"monthly_price": "-1"}, {"code": "Basic!"}, {"code": "basic"},
                {"included_segments": "1.5"}, {"name": ""}):
        form = {"action": "create_plan", "code": "other", "name": "Other", "currency": "EUR", "monthly_price": "1",
                "included_segments": "0", "overage_per_1000": "0", **bad}
        refused = post_form(console, f"/{a.slug}/invoices", form)
        assert refused.status_code == 422 and 'role="alert"' in refused.text, bad
    assert [p.code for p in invoicing.plans(a)] == ["basic"]
    for slug in (a1, a2):
        assert post_form(console, f"/{a.slug}/invoices", {"action": "assign_plan", "workspace": slug,
                                                           "plan": "basic"}).status_code == 302
    # Another reseller's workspace cannot be put on A's plan (404, nothing changed).
    assert post_form(console, f"/{a.slug}/invoices", {"action": "assign_plan", "workspace": b1,
                                                       "plan": "basic"}).status_code == 404
    r = post_form(console, f"/{a.slug}/invoices", {"action": "invoice_customers", "month": MONTH})
    assert r.status_code == 302
    rows = admin_sql(platform, "SELECT i.tenant_id, i.issuer, i.number, i.seq, i.total, i.seller->>'name' FROM "
                     "public.billing_invoices i JOIN public.reseller_customer_invoice c ON c.invoice_id = i.id "
                     "WHERE i.issuer = %s ORDER BY i.seq", (f"reseller:{a.slug}",), fetch=True)
    ids = {load_tenant(a1).id: a1, load_tenant(a2).id: a2}
    # Numbered 1, 2 in the order the workspaces were invoiced (by address), with no gap.
    assert [(ids[r[0]], r[2], r[3]) for r in rows] == [(slug, f"{a.slug.upper()}-{n:06d}", n)
                                                      for n, slug in enumerate(sorted((a1, a2)), 1)]
    assert {r[5] for r in rows} == {a.company}
    totals = {ids[r[0]]: r[4] for r in rows}
    assert totals[a1] == 2000 and totals[a2] == 2000 + 200  # 2 segments beyond 3, at 1,000.00 per 1,000
    # Again for the same month: nothing more is issued, the series has no gap.
    assert invoicing.invoice_customers(a, MONTH) == []
    # The commission reseller's wholesale invoice: its share of each workspace's retail invoice.
    wholesale = invoicing.invoice_wholesale(a, MONTH)
    assert {l["tenant_slug"]: l["amount"] for l in wholesale.lines} == {a1: 500, a2: 550}
    assert sum(l["segments"] for l in wholesale.lines) == recorded_usage(platform, a1) + recorded_usage(platform, a2) == 5
    shown = console.get(f"/{a.slug}/invoices").text
    assert wholesale.number in shown and "€10.50" in shown and "€5.50" in shown  # amounts for people
    assert "Basic &lt;SMS&gt;" in shown
    # B's series is its own, and B's page shows nothing of A's.
    assert invoicing.invoice_customers(b, MONTH) == []
    page = partner_sign_in(live_server, b).get(f"/{b.slug}/invoices")
    assert page.status_code == 200 and a1 not in page.text and "Basic" not in page.text


def test_the_cli_issues_the_months_invoices(platform, cli_env, workspaces):
    reseller = reseller_with(platform, pricing="commission", commission_percent="20")
    workspaces(reseller, 1)
    bad = smsgw(cli_env, "reseller", "invoice", reseller.slug, "last month")
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr
    ran = smsgw(cli_env, "reseller", "invoice", reseller.slug, MONTH)
    assert ran.returncode == 0, ran.stderr
    assert "W-" in ran.stdout and "(1 workspaces, 0 segments)" in ran.stdout
