"""Plans (issue 17, item 1): defined by the operator in the Admin console and with ``smsgw plans``,
versioned (a changed term is a new version; subscriptions keep theirs until renewal), hostile input
refused with a clear answer and nothing changed; and the public Pricing page made from them (item 7)."""

from __future__ import annotations

import secrets

import pytest

from addons.billing import plans, subscriptions
from core.admins import create_admin
from core.db import connection
from tests.support.identity import admin_sign_in, audit_rows, client, fetch_xsrf, post_form, smsgw

ADMIN_PASSWORD = "admin password 123"


def code() -> str:
    return f"p-{secrets.token_hex(4)}"


def versions(plan_code: str) -> list[plans.PlanVersion]:
    with connection():
        return plans.versions(plan_code)


def plan_audit(platform, action: str, plan_code: str) -> list[dict]:
    return [r for r in audit_rows(platform, None, action) if r["target"] == f"plan:{plan_code}"]


@pytest.fixture
def console(platform, live_server):
    admin = create_admin(platform, f"ops-{secrets.token_hex(4)}@platform.example", ADMIN_PASSWORD, "Ops")
    return admin_sign_in(live_server, admin.email, ADMIN_PASSWORD)


def test_the_free_plan_ships(platform):
    with connection():
        free = plans.current("free")
    assert free.monthly_price == 0 and free.hard_stop and free.public


def test_a_changed_term_is_a_new_version_and_a_changed_name_is_not(platform, make_tenant):
    c = code()
    v1 = plans.create(platform, {"plan_code": c, "name": "Team", "currency": "usd", "monthly_price": "4900",
                                 "yearly_price": "49000", "included_segments": "10000", "overage_per_1000": "800",
                                 "max_devices": "5", "trial_days": "14"}, actor="test")
    assert (v1.version, v1.currency, v1.max_members, v1.api_per_minute) == (1, "USD", None, None)
    t = make_tenant("bplan")
    subscriptions.start(t.id, c, actor="test")
    renamed = plans.update(platform, c, {"name": "Team plan"}, actor="test")
    assert renamed.id == v1.id and renamed.name == "Team plan"  # presentation: in place
    v2 = plans.update(platform, c, {"monthly_price": "5900", "max_devices": ""}, actor="test")
    assert v2.version == 2 and v2.monthly_price == 5900 and v2.max_devices is None and v2.name == "Team plan"
    assert v2.yearly_price == 49000 and v2.trial_days == 14  # the rest carried over
    old, new = {v.version: v for v in versions(c)}[1], {v.version: v for v in versions(c)}[2]
    assert old.retired_at is not None and new.retired_at is None
    assert subscriptions.get_now(t.id).plan_version_id == v1.id  # kept until renewal
    assert plans.update(platform, c, {"monthly_price": 5900}, actor="test").id == v2.id  # no change: no version
    (changed,) = [e for e in plan_audit(platform, "billing.plan_changed", c) if e["details"]["new_version"]]
    assert changed["details"]["changed"] == {"monthly_price": 5900, "max_devices": None}


@pytest.mark.parametrize("values,field", [
    ({"monthly_price": "-1"}, "monthly_price"),
    ({"yearly_price": "99999999999999"}, "yearly_price"),
    ({"currency": "EURO"}, "currency"),
    ({"currency": "ABC"}, "currency"),
    ({"included_segments": "1e6"}, "included_segments"),
    ({"api_per_minute": "0"}, "api_per_minute"),
    ({"trial_days": "10000"}, "trial_days"),
    ({"addons": "billing,no_such_addon"}, "addons"),
    ({"name": "x" * 81}, "name"),
    ({"overage_per_1000": "12.5"}, "overage_per_1000"),
])
def test_hostile_plan_input_is_refused_with_the_field_named_and_nothing_changes(platform, values, field):
    c = code()
    base = {"plan_code": c, "name": "Base", "currency": "EUR", "monthly_price": "100", "yearly_price": "1000",
            "included_segments": "10"}
    with pytest.raises(plans.PlanError) as refused:
        plans.create(platform, {**base, **values}, actor="test")
    assert list(refused.value.errors) == [field]
    assert versions(c) == []
    plans.create(platform, base, actor="test")
    with pytest.raises(plans.PlanError) as refused:
        plans.update(platform, c, values, actor="test")
    assert field in refused.value.errors
    assert [(v.version, v.monthly_price, v.currency) for v in versions(c)] == [(1, 100, "EUR")]


def test_plan_codes_are_checked_and_the_default_plan_cannot_be_retired(platform):
    for bad in ("Pro", "pro plan", "", "-x", "x" * 41):
        with pytest.raises(plans.PlanError, match="plan_code"):
            plans.create(platform, {"plan_code": bad, "name": "X", "currency": "EUR", "monthly_price": 0,
                                    "yearly_price": 0, "included_segments": 0}, actor="test")
    with pytest.raises(plans.PlanError, match="exists already"):
        plans.create(platform, {"plan_code": "free", "name": "X", "currency": "EUR", "monthly_price": 0,
                                "yearly_price": 0, "included_segments": 0}, actor="test")
    with pytest.raises(plans.PlanError, match="what new workspaces get"):
        plans.retire(platform, "free", actor="test")
    with pytest.raises(plans.PlanError, match="no current plan"):
        plans.update(platform, "no-such-plan", {"name": "Y"}, actor="test")


def test_the_plans_command_lists_creates_changes_and_retires(platform, cli_env):
    c = code()
    r = smsgw(cli_env, "plans", "create", c, "--name", "Business", "--currency", "EUR", "--monthly-price", "9900",
              "--yearly-price", "99000", "--included-segments", "50000", "--overage-per-1000", "500",
              "--max-devices", "none", "--hidden")
    assert r.returncode == 0, r.stderr
    assert f"created {c}" in r.stdout and "hidden" in r.stdout and "devices unlimited" in r.stdout
    r = smsgw(cli_env, "plans", "update", c, "--monthly-price", "-5", "--currency", "euros")
    assert r.returncode == 2 and "nothing changed" in r.stderr
    assert "--monthly-price: Must not be negative" in r.stderr and "--currency: Enter an ISO 4217" in r.stderr
    r = smsgw(cli_env, "plans", "update", c, "--monthly-price", "10900", "--public")
    assert r.returncode == 0, r.stderr
    assert "v2" in r.stdout and "10900/month" in r.stdout
    r = smsgw(cli_env, "plans", "list")
    assert r.returncode == 0 and f"{c}" in r.stdout and "free" in r.stdout
    assert len([x for x in r.stdout.splitlines() if x.startswith(c)]) == 1
    assert len([x for x in smsgw(cli_env, "plans", "list", "--all").stdout.splitlines() if x.startswith(c)]) == 2
    r = smsgw(cli_env, "plans", "retire", c)
    assert r.returncode == 0 and "its subscribers keep it" in r.stdout
    assert f"{c} " not in smsgw(cli_env, "plans", "list").stdout
    assert smsgw(cli_env, "plans", "retire", c).returncode == 2
    (created,) = plan_audit(platform, "billing.plan_created", c)
    assert created["actor"] == "system:cli"


def test_the_admin_creates_changes_and_retires_plans_on_the_console(platform, live_server, console):
    c = code()
    stranger = client(live_server, None)
    r = stranger.get("/admin/billing/plans")
    assert r.status_code == 302 and r.headers["Location"].startswith("/admin/login")
    page = console.get("/admin/billing/plans")
    assert page.status_code == 200 and 'data-plan="free"' in page.text
    form = {"action": "create", "plan_code": c, "name": "Console", "currency": "EUR", "monthly_price": "1900",
            "yearly_price": "19000", "included_segments": "2000", "overage_per_1000": "", "max_devices": "2",
            "max_members": "", "api_per_minute": "120", "trial_days": "0", "sort_order": "5", "public": "yes"}
    r = post_form(console, "/admin/billing/plans", {**form, "monthly_price": "-100", "currency": "XYZ1"})
    assert r.status_code == 422 and "Nothing was changed" in r.text and "Must not be negative" in r.text
    assert versions(c) == []
    r = post_form(console, "/admin/billing/plans", form)
    assert r.status_code == 303
    (v1,) = versions(c)
    assert v1.hard_stop and v1.max_devices == 2 and v1.max_members is None and v1.api_per_minute == 120
    r = post_form(console, "/admin/billing/plans", {**form, "action": "update", "included_segments": "3000"})
    assert r.status_code == 303
    assert [(v.version, v.included_segments) for v in versions(c)] == [(2, 3000), (1, 2000)]
    assert f'data-plan="{c}" data-version="2"' in console.get("/admin/billing/plans").text
    r = post_form(console, "/admin/billing/plans", {"action": "retire", "plan_code": c})
    assert r.status_code == 303 and all(v.retired_at for v in versions(c))
    (event,) = plan_audit(platform, "billing.plan_retired", c)
    assert event["actor"].startswith("admin:")
    # Without an admin session the form changes nothing.
    fetch_xsrf(stranger, "/admin/login")
    r = post_form(stranger, "/admin/billing/plans", {**form, "plan_code": code()}, allow_redirects=False)
    assert r.status_code in (401, 403) or r.headers.get("Location", "").startswith("/admin/login")
    assert len(versions(c)) == 2


def test_the_admin_lists_subscriptions_by_status(platform, console, make_tenant):
    t, other = make_tenant("bplan"), make_tenant("bplan")
    for tenant in (t, other):  # the tests' platform subscribes nobody by itself (no default plan)
        subscriptions.create_for(tenant, "free")
    subscriptions.payment_failed(t.id, "inv-9")
    r = console.get("/admin/billing/subscriptions?status=past_due")
    assert r.status_code == 200
    assert f'data-tenant="{t.slug}" data-status="past_due"' in r.text and other.slug not in r.text
    assert other.slug in console.get("/admin/billing/subscriptions").text
    assert console.get("/admin/billing/subscriptions?status=bogus").status_code == 400


def test_the_pricing_page_lists_the_public_plans_and_is_linked(platform, live_server):
    shown, hidden = code(), code()
    plans.create(platform, {"plan_code": shown, "name": "Shown Plan", "currency": "EUR", "monthly_price": 2500,
                            "yearly_price": 25000, "included_segments": 5000, "overage_per_1000": 700}, actor="t")
    plans.create(platform, {"plan_code": hidden, "name": "Hidden Plan", "currency": "EUR", "monthly_price": 1,
                            "yearly_price": 1, "included_segments": 1, "public": "false"}, actor="t")
    c = client(live_server, None)
    r = c.get("/pricing")
    assert r.status_code == 200
    assert f'data-plan="{shown}"' in r.text and "€25.00" in r.text and "€7.00 per 1,000 segments" in r.text
    assert hidden not in r.text and f'href="/signup?plan={shown}"' in r.text
    assert 'href="/pricing"' in c.get("/").text and 'href="/pricing"' in c.get("/signup").text
    de = c.get("/pricing", headers={"Accept-Language": "de"})
    assert "25,00" in de.text
