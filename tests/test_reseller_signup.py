"""A reseller's own sign-up page (issue 18): ``partners.<base-domain>/<reseller>/signup`` under the
reseller's brand (never the platform's name), closed until the reseller opens it; the new workspace
is the reseller's, shows its brand, starts on its chosen retail plan with that plan's addons. The
platform's sign-up flow does the work: the same field checks, privacy policy, rate limits."""

from __future__ import annotations

import re
import secrets

import pytest

from addons.resellers import brand, invoicing, service, signup
from core.tenancy import load_tenant
from tests.support.identity import (OWNER_PASSWORD, admin_sql, client, fetch_xsrf, fresh_ip, post_form,
                                    signup_acceptance)
from tests.support.resellers import make_reseller, partner_sign_in

PLATFORM_NAME = re.compile(r"SMS Gateway(?! for Android)")


@pytest.fixture
def seller(platform, live_server):
    reseller = make_reseller(platform, "su", max_workspaces=3)
    assert brand.save(reseller.id, {"product_name": "Acme Texts", "colour_brand": "#202060",
                                    "colour_text": "#ffffff"}, True) == {}
    service.set_available(platform, reseller, "contacts", True)
    invoicing.create_plan(reseller, {"code": "starter", "name": "Starter", "currency": "EUR", "monthly_price": 900,
                                     "included_segments": 100, "overage_per_1000": 50})
    made = []
    yield reseller, made
    for slug in made:
        try:
            platform.tenants.delete(slug)
        except Exception:
            pass


def open_page(platform, live_server, reseller, plan="starter"):
    console = partner_sign_in(live_server, reseller)
    fetch_xsrf(console, f"/{reseller.slug}/invoices")
    r = post_form(console, f"/{reseller.slug}/invoices", {"action": "signup_settings", "signup_enabled": "1", "plan": plan})
    assert r.status_code == 302, r.text[:400]
    return console


def sign_up(live_server, reseller, slug, company="Customer <b>Co</b>", email=None, password=OWNER_PASSWORD, ip=None):
    c = client(live_server, "partners", ip or fresh_ip())
    path = f"/{reseller.slug}/signup"
    page = c.get(path)
    form = {"company": company, "slug": slug, "email": email or f"owner@{slug}.example", "password": password}
    if page.status_code == 200:
        form.update(signup_acceptance(c, path))
    fetch_xsrf(c, f"/{reseller.slug}/login")
    return c, post_form(c, path, form)


def test_a_customer_signs_up_under_the_reseller_s_brand_and_plan(platform, live_server, seller):
    reseller, made = seller
    # Closed until the reseller opens it.
    closed = client(live_server, "partners").get(f"/{reseller.slug}/signup")
    assert closed.status_code == 200 and "signup-closed" in closed.text
    open_page(platform, live_server, reseller)
    c = client(live_server, "partners")
    page = c.get(f"/{reseller.slug}/signup")
    assert page.status_code == 200 and f'action="/{reseller.slug}/signup"' in page.text
    assert "Acme Texts" in re.search(r"<title>([^<]*)</title>", page.text).group(1)
    assert not PLATFORM_NAME.search(page.text), PLATFORM_NAME.search(page.text)
    sheet = re.search(r'href="(/' + reseller.slug + r'/brand/style\.css\?v=[0-9a-f]+)"', page.text).group(1)
    assert "--brand: #202060;" in c.get(sheet).text
    assert 'name="accept_privacy"' in page.text  # the platform's checks and parts come along
    slug = f"su-ws-{secrets.token_hex(3)}"
    made.append(slug)
    _c, r = sign_up(live_server, reseller, slug)
    assert r.status_code == 302, r.text[-800:]
    assert r.headers["Location"].startswith(f"{platform.settings.public_url(slug)}/welcome?token=")
    tenant = load_tenant(slug)
    assert tenant is not None and service.workspace(reseller.id, slug) is not None
    plan = admin_sql(platform, "SELECT p.code FROM public.reseller_tenant rt JOIN public.reseller_plan p "
                     "ON p.id = rt.retail_plan_id WHERE rt.tenant_id = %s", (tenant.id,), fetch=True)
    assert plan == [("starter",)]
    assert admin_sql(platform, "SELECT count(*) FROM public.audit_event WHERE tenant_id = %s AND action = "
                     "'tenant.signup'", (tenant.id,), fetch=True)[0][0] == 1
    # The workspace shows the reseller's brand (its sign-in page: nobody signed in yet).
    login = client(live_server, slug).get("/login")
    assert "Acme Texts" in login.text and not PLATFORM_NAME.search(login.text)


def test_the_plan_s_addons_come_with_a_signed_up_workspace(platform, live_server, seller):
    reseller, made = seller
    plan = invoicing.plan_by_code(reseller, "starter")
    from addons.resellers import plan_addons

    assert plan_addons.attach(platform, reseller, plan, "contacts", True) == []
    open_page(platform, live_server, reseller)
    slug = f"su-pa-{secrets.token_hex(3)}"
    made.append(slug)
    assert sign_up(live_server, reseller, slug)[1].status_code == 302
    assert "contacts" in load_tenant(slug).enabled_addons


@pytest.mark.parametrize("field, value, says", [
    ("slug", "UPPER case!", "lowercase"),
    ("slug", "admin", "reserved"),
    ("slug", "x" * 300, "3 to 40"),
    ("email", "not-an-address", "email"),
    ("email", "o@x.example\r\nBcc: victim@example.com", "email"),
    ("password", "short", "10"),
    ("company", "", "company"),
])
def test_hostile_or_bad_fields_are_refused_and_nothing_is_made(platform, live_server, seller, field, value, says):
    reseller, made = seller
    open_page(platform, live_server, reseller)
    slug = f"su-bad-{secrets.token_hex(3)}"
    made.append(slug)
    values = {"slug": slug, "company": "Co", "email": f"o@{slug}.example", "password": OWNER_PASSWORD, field: value}
    _c, r = sign_up(live_server, reseller, values["slug"], values["company"], values["email"], values["password"])
    assert r.status_code == 422, r.status_code
    assert says.lower() in r.text.lower() and 'field-error' in r.text, r.text[-1500:]
    assert service.workspaces(reseller.id) == [] and load_tenant(slug) is None


def test_the_company_name_is_shown_as_text_and_the_limit_holds(platform, live_server, seller):
    reseller, made = seller
    open_page(platform, live_server, reseller)
    for _ in range(3):
        slug = f"su-l-{secrets.token_hex(3)}"
        made.append(slug)
        assert sign_up(live_server, reseller, slug, company="<script>alert(1)</script>")[1].status_code == 302
    assert load_tenant(made[0]).name == "<script>alert(1)</script>"
    over = f"su-l-{secrets.token_hex(3)}"
    made.append(over)
    _c, r = sign_up(live_server, reseller, over)
    assert r.status_code == 422 and "at most 3 workspaces" in r.text and load_tenant(over) is None


def test_sign_ups_share_the_platform_s_rate_limit(platform, live_server, seller):
    reseller, made = seller
    open_page(platform, live_server, reseller)
    ip = fresh_ip()
    statuses = []
    for _ in range(4):
        slug = f"su-rl-{secrets.token_hex(3)}"
        made.append(slug)
        statuses.append(sign_up(live_server, reseller, slug, ip=ip)[1].status_code)
    # SMSGW_SIGNUP_PER_IP_HOUR (3 in tests, as the platform's page): the fourth is refused.
    assert statuses[-1] == 429 and statuses.count(302) == 3, statuses


def test_another_reseller_s_page_is_its_own_and_closed_pages_make_nothing(platform, live_server, seller):
    reseller, made = seller
    other = make_reseller(platform, "sv")
    open_page(platform, live_server, reseller)
    # The other's page is closed (it never opened it), and shows nothing of the first's brand.
    page = client(live_server, "partners").get(f"/{other.slug}/signup")
    assert "Acme Texts" not in page.text and "signup-closed" in page.text
    slug = f"su-o-{secrets.token_hex(3)}"
    made.append(slug)
    _c, r = sign_up(live_server, other, slug)
    assert r.status_code == 403 and load_tenant(slug) is None
    # Its console cannot pick the first's plan for its page.
    console = partner_sign_in(live_server, other)
    fetch_xsrf(console, f"/{other.slug}/invoices")
    r = post_form(console, f"/{other.slug}/invoices", {"action": "signup_settings", "signup_enabled": "1",
                                                       "plan": "starter"})
    assert r.status_code == 404 and signup.settings_of(other) == (False, "")
    # A suspended reseller's page refuses.
    service.set_status(reseller, True, "a reason long enough")
    assert client(live_server, "partners").get(f"/{reseller.slug}/signup").status_code == 403
