"""Tax on reseller invoices (issue 18), decided by the billing addon's own rule
(``addons.billing.tax.decide``: the operator's rate for the buyer's country; EU business buyers in
another EU country with a VAT id of valid format reverse charged): the platform's wholesale invoice
to a reseller is taxed by the reseller's billing details, and the reseller's invoices to its
customers name it as seller, so its country decides reverse charge there."""

from __future__ import annotations

import dataclasses
import secrets

import pytest

from addons.billing import accounts, tax
from addons.billing.money import tax_of
from addons.resellers import invoicing, service
from core.admins import create_admin
from core.db import connection
from core.tenancy import load_tenant
from tests.support.identity import admin_sign_in, admin_sql, fetch_xsrf, post_form
from tests.support.quotas import make_plan
from tests.support.resellers import partner_sign_in
from tests.test_reseller_invoicing import MONTH, reseller_with, workspaces  # noqa: F401  (the fixture)

ADMIN_PASSWORD = "an operator's long password"


@pytest.fixture
def rates(platform):
    """The operator in Germany; Austria's rate 20 % "USt.", the Netherlands' 21 % "BTW"."""
    configured = platform.settings
    platform.settings = dataclasses.replace(configured, billing_seller_country="DE")
    with connection():
        before = {r["country"]: r for r in tax.rates()}
        tax.set_rate("AT", 2000, "USt.")
        tax.set_rate("NL", 2100, "BTW")
    yield
    platform.settings = configured
    with connection():
        for country in ("AT", "NL"):
            if country in before:
                tax.set_rate(country, before[country]["rate_bp"], before[country]["name"])
            else:
                tax.remove_rate(country)


def wholesale_reseller(platform, country="", vat_id=""):
    plan_id = make_plan(platform, included=2, overage=500)
    code = admin_sql(platform, "SELECT plan_code FROM public.billing_plan_versions WHERE id = %s", (plan_id,),
                     fetch=True)[0][0]
    reseller = reseller_with(platform, pricing="wholesale", wholesale_plan=code)
    assert service.save_billing_details(reseller, {"address": "Ring 1\nWien", "country": country, "vat_id": vat_id}) == {}
    return service.get(reseller.slug)


def test_the_wholesale_invoice_is_taxed_at_the_reseller_s_country_rate(platform, live_server, rates, workspaces):  # noqa: F811
    reseller = wholesale_reseller(platform, "AT")
    workspaces(reseller, 3)
    invoice = invoicing.invoice_wholesale(reseller, MONTH)
    assert invoice.subtotal == sum(line["amount"] for line in invoice.lines) == 3000
    assert (invoice.tax_rate_bp, invoice.tax_name, invoice.reverse_charge) == (2000, "USt.", False)
    assert invoice.tax_amount == tax_of(3000, 2000) == 600 and invoice.total == 3600
    page = partner_sign_in(live_server, reseller).get(f"/{reseller.slug}/invoices").text
    assert "USt. 20 %" in page and "€36.00" in page and "€30.00" in page


def test_an_eu_business_reseller_elsewhere_is_reverse_charged(platform, live_server, rates, workspaces):  # noqa: F811
    reseller = wholesale_reseller(platform, "NL", "nl 123456789 b01")
    assert reseller.vat_id == "NL123456789B01"
    workspaces(reseller, 2)
    invoice = invoicing.invoice_wholesale(reseller, MONTH)
    assert invoice.reverse_charge and invoice.tax_amount == 0 and invoice.total == invoice.subtotal == 2000
    assert "reverse charge" in partner_sign_in(live_server, reseller).get(f"/{reseller.slug}/invoices").text


def test_the_reseller_s_customer_invoices_are_taxed_with_the_reseller_as_seller(platform, rates, workspaces):  # noqa: F811
    reseller = reseller_with(platform, pricing="commission", commission_percent="10")
    assert service.save_billing_details(reseller, {"country": "AT", "vat_id": "ATU12345678"}) == {}
    reseller = service.get(reseller.slug)
    home, business = workspaces(reseller, 2)
    with connection():
        accounts.save(load_tenant(home).id, {"company": "Home Co", "country": "AT"})
        accounts.save(load_tenant(business).id, {"company": "NL BV", "country": "NL", "vat_id": "NL123456789B01"})
    invoicing.create_plan(reseller, {"code": "basic", "name": "Basic", "currency": "EUR", "monthly_price": 2000,
                                     "included_segments": 10, "overage_per_1000": 0})
    for slug in (home, business):
        invoicing.assign_plan(platform, reseller, slug, "basic")
    issued = {i.tenant_id: i for i in invoicing.invoice_customers(reseller, MONTH)}
    at, nl = issued[load_tenant(home).id], issued[load_tenant(business).id]
    assert (at.tax_rate_bp, at.tax_amount, at.total) == (2000, 400, 2400) and not at.reverse_charge
    assert nl.reverse_charge and nl.tax_amount == 0 and nl.total == 2000
    assert at.seller["country"] == "AT" and at.seller["vat_id"] == "ATU12345678"


@pytest.mark.parametrize("form, says", [
    ({"country": "Austria"}, "two letters"),
    ({"country": "AT", "vat_id": "ATU1"}, "format of a VAT id"),
    ({"country": "AT", "vat_id": "<script>"}, "letters and digits"),
])
def test_bad_billing_details_are_refused_in_the_admin_console_and_nothing_is_saved(platform, live_server, form, says):
    reseller = reseller_with(platform, pricing="commission", commission_percent="10")
    admin = create_admin(platform, f"ops-{secrets.token_hex(4)}@platform.example", ADMIN_PASSWORD, "Ops")
    ops = admin_sign_in(live_server, admin.email, ADMIN_PASSWORD)
    fetch_xsrf(ops, f"/admin/resellers/{reseller.slug}")
    r = post_form(ops, f"/admin/resellers/{reseller.slug}", {"action": "billing_details", "address": "x", **form})
    assert r.status_code == 422 and says in r.text
    assert (service.get(reseller.slug).country, service.get(reseller.slug).address) == ("", "")
    good = post_form(ops, f"/admin/resellers/{reseller.slug}", {"action": "billing_details", "address": "Ring 1",
                                                                 "country": "at", "vat_id": "ATU12345678"})
    assert good.status_code == 302 and service.get(reseller.slug).country == "AT"
