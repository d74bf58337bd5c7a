"""Resellers: the operator creates them, their people sign in to their own console on
``partners.<base-domain>/<reseller>``, create and run their customers' workspaces, and open one for
support only with a written reason the customer sees. A reseller never reaches another's workspace:
every console route is tried with another reseller's ids."""

from __future__ import annotations

import re
import secrets

import pytest
import tornado.web

from addons.resellers import service
from core.admins import create_admin
from core.tenancy import load_tenant
from core.throttle import ThrottlePolicy
from tests.support.identity import (OWNER_PASSWORD, admin_sign_in, admin_sql, audit_rows, client, fetch_xsrf,
                                    fresh_ip, post_form, sign_in)
from tests.support.resellers import PARTNER_PASSWORD, make_reseller, partner_email, partner_sign_in

ADMIN_PASSWORD = "an operator's long password"


@pytest.fixture
def console(platform, live_server):
    admin = create_admin(platform, f"ops-{secrets.token_hex(4)}@platform.example", ADMIN_PASSWORD, "Ops")
    return admin_sign_in(live_server, admin.email, ADMIN_PASSWORD)


def reseller_rows(platform, slug) -> int:
    return admin_sql(platform, "SELECT count(*) FROM public.reseller WHERE slug = %s", (slug,), fetch=True)[0][0]


def owned_by(platform, tenant_id):
    rows = admin_sql(platform, "SELECT r.slug FROM public.reseller_tenant rt JOIN public.reseller r ON r.id = rt.reseller_id "
                     "WHERE rt.tenant_id = %s", (tenant_id,), fetch=True)
    return rows[0][0] if rows else None


def forget(platform, *slugs):
    for slug in slugs:
        platform.tenant_cache.invalidate(slug)


@pytest.fixture
def cleanup(platform):
    slugs = []
    yield slugs
    for slug in slugs:
        try:
            platform.tenants.delete(slug)
        except Exception:
            pass


def create_workspace(c, reseller, slug, name="Customer Co", owner=None):
    return post_form(c, f"/{reseller.slug}", {"slug": slug, "name": name,
                                             "owner_email": owner or f"owner@{slug}.example",
                                             "owner_password": OWNER_PASSWORD})


# -- the operator ------------------------------------------------------------------------------------

def test_admin_creates_a_reseller_from_the_console_and_its_person_signs_in(platform, live_server, console):
    slug = f"acme-{secrets.token_hex(3)}"
    page = console.get("/admin/resellers")
    assert page.status_code == 200 and 'action="/admin/resellers"' in page.text
    r = post_form(console, "/admin/resellers", {"slug": slug, "company": "Acme <b>Telecom</b>",
                                                "contact_email": "ops@acme.example", "pricing": "commission",
                                                "commission_percent": "15", "max_workspaces": "2"})
    assert r.status_code == 302 and r.headers["Location"] == f"/admin/resellers/{slug}"
    detail = console.get(f"/admin/resellers/{slug}")
    assert "Acme &lt;b&gt;Telecom&lt;/b&gt;" in detail.text and "<b>Telecom" not in detail.text
    r = post_form(console, f"/admin/resellers/{slug}", {"action": "add_user", "email": f"boss@{slug}.example",
                                                         "password": PARTNER_PASSWORD, "role": "reseller_admin"})
    assert r.status_code == 302, r.text[:300]
    reseller = service.get(slug)
    assert (reseller.commission_bp, reseller.max_workspaces) == (1500, 2)
    c = partner_sign_in(live_server, reseller, f"boss@{slug}.example")
    home = c.get(f"/{slug}")
    assert home.status_code == 200 and "Create a workspace for a customer" in home.text
    assert [row["action"] for row in audit_rows(platform, action="reseller.login.success")
            if row["details"].get("reseller") == slug] == ["reseller.login.success"]
    assert audit_rows(platform, action="admin.reseller_created")[-1]["target"] == f"reseller:{slug}"


@pytest.mark.parametrize("field,value", [
    ("slug", "../etc"), ("slug", "Acme"), ("slug", "x" * 60), ("slug", "admin'--"), ("company", ""),
    ("company", "c" * 201), ("contact_email", "not-an-address"), ("pricing", "free"), ("commission_percent", "1e3"),
    ("commission_percent", "-5"), ("max_workspaces", "-1"), ("max_workspaces", "ten"), ("max_workspaces", "9" * 40),
])
def test_admin_console_refuses_a_bad_reseller_and_writes_nothing(platform, console, field, value):
    slug = f"bad-{secrets.token_hex(3)}"
    form = {"slug": slug, "company": "Bad Co", "contact_email": "x@bad.example", "pricing": "commission",
            "commission_percent": "10", "max_workspaces": "3", field: value}
    r = post_form(console, "/admin/resellers", form)
    assert r.status_code == 422, (field, value, r.status_code)
    assert 'role="alert"' in r.text
    assert reseller_rows(platform, form["slug"]) == 0


def test_wholesale_reseller_needs_an_existing_plan(platform, console):
    slug = f"whole-{secrets.token_hex(3)}"
    form = {"slug": slug, "company": "Wholesale Co", "contact_email": "x@w.example", "pricing": "wholesale",
            "wholesale_plan": "no-such-plan", "max_workspaces": "3"}
    assert post_form(console, "/admin/resellers", form).status_code == 422
    assert post_form(console, "/admin/resellers", dict(form, wholesale_plan="free")).status_code == 302
    assert service.get(slug).wholesale_plan == "free"


def test_console_routes_need_the_admin_session(live_server):
    c = client(live_server)
    assert c.get("/admin/resellers").status_code == 302


def test_cli_creates_a_reseller_a_person_and_makes_an_addon_available(platform, cli_env):
    from tests.support.identity import smsgw

    slug = f"cli-{secrets.token_hex(3)}"
    made = smsgw(cli_env, "reseller", "create", slug, "--company", "CLI Partner", "--contact-email", "c@cli.example",
                 "--commission", "12", "--max-workspaces", "4")
    assert made.returncode == 0, made.stderr
    refused = smsgw(cli_env, "reseller", "create", "Bad Slug", "--company", "x", "--contact-email", "c@cli.example",
                    "--max-workspaces", "4")
    assert refused.returncode == 2 and "lowercase" in refused.stderr
    no_password = smsgw(cli_env, "reseller", "user-add", slug, "p@cli.example")
    assert no_password.returncode == 2 and "SMSGW_RESELLER_PASSWORD" in no_password.stderr
    added = smsgw(dict(cli_env, SMSGW_RESELLER_PASSWORD=PARTNER_PASSWORD), "reseller", "user-add", slug, "p@cli.example",
                  "--role", "reseller_support")
    assert added.returncode == 0, added.stderr
    allowed = smsgw(cli_env, "reseller", "addon-allow", slug, "contacts")
    assert allowed.returncode == 0, allowed.stderr
    unknown = smsgw(cli_env, "reseller", "addon-allow", slug, "no_such_addon")
    assert unknown.returncode == 2 and "installed" in unknown.stderr
    listed = smsgw(cli_env, "reseller", "list")
    assert re.search(rf"^{slug} +active +commission 12% +max 4", listed.stdout, re.M), listed.stdout
    reseller = service.get(slug)
    assert service.available_addons(reseller) == ["contacts"]
    assert [(u["email"], u["role"]) for u in service.users(reseller)] == [("p@cli.example", "reseller_support")]


# -- the console's sign-in -----------------------------------------------------------------------------

def test_console_sign_in_refuses_wrong_passwords_alike_and_throttles(platform, live_server):
    reseller = make_reseller(platform)
    other = make_reseller(platform)
    ip = fresh_ip()
    c = client(live_server, "partners", ip)
    fetch_xsrf(c, f"/{reseller.slug}/login")
    wrong = post_form(c, f"/{reseller.slug}/login", {"email": partner_email(reseller), "password": "wrong password!"})
    nobody = post_form(c, f"/{reseller.slug}/login", {"email": "nobody@x.example", "password": "wrong password!"})
    # The other reseller's person is nobody here.
    foreign = post_form(c, f"/{reseller.slug}/login", {"email": partner_email(other), "password": PARTNER_PASSWORD})
    assert wrong.status_code == nobody.status_code == foreign.status_code == 401
    assert "The email or password is not right." in wrong.text and not c.cookies.get("smsgw_partner")
    # No form token, no sign-in (CSRF).
    bare = client(live_server, "partners", fresh_ip())
    assert bare.post(f"/{reseller.slug}/login", data={"email": partner_email(reseller),
                                                      "password": PARTNER_PASSWORD}).status_code == 403
    original = platform.throttle.policy
    platform.throttle.policy = ThrottlePolicy(base_delay=0)
    try:
        statuses = [post_form(c, f"/{reseller.slug}/login", {"email": partner_email(reseller),
                                                             "password": f"nope {i}"}).status_code for i in range(101)]
        right = post_form(c, f"/{reseller.slug}/login", {"email": partner_email(reseller), "password": PARTNER_PASSWORD})
    finally:
        platform.throttle.policy = original
    assert statuses[-1] == 429 and right.status_code == 429, statuses[-3:]
    assert not c.cookies.get("smsgw_partner")
    assert audit_rows(platform, action="reseller.login.failure")[-1]["actor_name"] == partner_email(reseller)


def test_console_session_is_its_resellers_only_and_dies_at_sign_out(platform, live_server):
    a, b = make_reseller(platform), make_reseller(platform)
    c = partner_sign_in(live_server, a)
    assert c.get(f"/{a.slug}").status_code == 200
    # The cookie is sent to A's paths only; sent by hand to B's console it is nobody there.
    token = c.cookies.get("smsgw_partner")
    other = client(live_server, "partners")
    other.cookies.set("smsgw_partner", token, path=f"/{b.slug}")
    assert other.get(f"/{b.slug}").status_code == 302
    assert post_form(c, f"/{a.slug}/logout", {}).status_code == 302
    reused = client(live_server, "partners")
    reused.cookies.set("smsgw_partner", token, path=f"/{a.slug}")
    assert reused.get(f"/{a.slug}").headers["Location"].startswith(f"/{a.slug}/login")


def test_console_host_is_no_workspace_and_unknown_resellers_are_404(platform, live_server):
    c = client(live_server, "partners")
    assert c.get("/no-such-reseller/login").status_code == 404
    assert c.get("/%00x/login").status_code == 404
    with pytest.raises(Exception, match="reserved"):
        platform.tenants.create("partners", "Squatter", "s@q.example", OWNER_PASSWORD)


# -- workspaces ------------------------------------------------------------------------------------------

def test_reseller_creates_workspaces_up_to_its_limit_and_suspends_and_resumes_them(platform, live_server, cleanup):
    reseller = make_reseller(platform, max_workspaces=1)
    c = partner_sign_in(live_server, reseller)
    slug = f"cust-{secrets.token_hex(3)}"
    r = create_workspace(c, reseller, slug)
    cleanup.append(slug)
    assert r.status_code == 302 and r.headers["Location"] == f"/{reseller.slug}/workspaces/{slug}"
    tenant = load_tenant(slug)
    assert owned_by(platform, tenant.id) == reseller.slug
    page = c.get(f"/{reseller.slug}/workspaces/{slug}")
    assert page.status_code == 200
    assert re.search(r'id="usage">0<', page.text) and 'id="subscription"' in page.text
    # The limit: a second one is refused, and nothing is left of it.
    second = f"cust-{secrets.token_hex(3)}"
    refused = create_workspace(c, reseller, second)
    cleanup.append(second)
    assert refused.status_code == 422 and "at most 1 workspaces" in refused.text
    assert load_tenant(second) is None
    # Suspend asks first, then suspends; resume.
    ask = post_form(c, f"/{reseller.slug}/workspaces/{slug}", {"action": "suspend"})
    assert ask.status_code == 200 and load_tenant(slug).status == "active"
    done = post_form(c, f"/{reseller.slug}/workspaces/{slug}", {"action": "suspend", "confirmed": "1"})
    assert done.status_code == 302 and load_tenant(slug).status == "suspended"
    assert post_form(c, f"/{reseller.slug}/workspaces/{slug}", {"action": "resume"}).status_code == 302
    assert load_tenant(slug).status == "active"
    actions = [row["action"] for row in audit_rows(platform, tenant_id=tenant.id) if row["action"].startswith("reseller.")]
    assert actions == ["reseller.tenant_created", "reseller.tenant_suspended", "reseller.tenant_resumed"]


@pytest.mark.parametrize("slug,name,owner", [
    ("UPPER", "Co", None), ("a", "Co", None), ("admin", "Co", None), ("partners", "Co", None), ("x--y", "Co", None),
    ("ok-{}", "", None), ("ok-{}", "Co", "not-an-address"), ("ok-{}", "n" * 300, None), ("ok-\x00{}", "Co", None), ("ok-{}", "Co\x00", "o\x00@x.example"),
])
def test_bad_workspace_input_is_refused_with_a_message_and_nothing_made(platform, live_server, slug, name, owner):
    reseller = make_reseller(platform)
    c = partner_sign_in(live_server, reseller)
    slug = slug.format(secrets.token_hex(2))
    r = create_workspace(c, reseller, slug, name=name, owner=owner or "o@x.example")
    assert r.status_code == 422, r.status_code
    assert 'role="alert"' in r.text
    assert service.workspaces(reseller.id) == []


def test_support_role_sees_but_cannot_create_or_suspend(platform, live_server, cleanup):
    reseller = make_reseller(platform, role="reseller_support")
    admin = make_reseller(platform)
    c = partner_sign_in(live_server, reseller)
    assert c.get(f"/{reseller.slug}").status_code == 200
    r = create_workspace(c, reseller, f"sup-{secrets.token_hex(3)}")
    assert r.status_code == 403
    assert c.get(f"/{reseller.slug}/team").status_code == 403
    assert service.workspaces(reseller.id) == [] and admin  # nothing made


def test_support_access_needs_a_reason_and_the_customer_sees_it(platform, live_server, cleanup):
    reseller = make_reseller(platform)
    c = partner_sign_in(live_server, reseller)
    slug = f"sup-{secrets.token_hex(3)}"
    create_workspace(c, reseller, slug)
    cleanup.append(slug)
    tenant = load_tenant(slug)
    # Without a grant the data pages send back to the form.
    assert c.get(f"/{reseller.slug}/workspaces/{slug}/data/users").status_code == 302
    short = post_form(c, f"/{reseller.slug}/workspaces/{slug}", {"action": "access", "reason": "because"})
    assert short.status_code == 422 and "at least 10 characters" in short.text
    reason = "Ticket #42: <script>alert(1)</script> cannot send"
    r = post_form(c, f"/{reseller.slug}/workspaces/{slug}", {"action": "access", "reason": reason})
    assert r.status_code == 302 and r.headers["Location"].endswith("/data/users")
    data = c.get(f"/{reseller.slug}/workspaces/{slug}/data/users")
    assert data.status_code == 200 and f"owner@{slug}.example" in data.text
    assert "<script>alert(1)" not in data.text
    # A section that does not exist is a 404, not a 500.
    assert c.get(f"/{reseller.slug}/workspaces/{slug}/data/nothing").status_code == 404
    rows = [row for row in audit_rows(platform, tenant_id=tenant.id) if row["action"].startswith("reseller.access")]
    assert [row["action"] for row in rows] == ["reseller.access_granted", "reseller.access"]
    assert {row["reason"] for row in rows} == {reason}
    # The customer reads it in its own audit trail.
    owner = sign_in(live_server, slug, f"owner@{slug}.example")
    trail = owner.get("/audit")
    assert trail.status_code == 200
    assert "reseller.access" in trail.text and "Ticket #42: &lt;script&gt;" in trail.text


# -- isolation: every console route, with another reseller's ids ---------------------------------------

def console_routes(live_server):
    return [(pattern, handler) for pattern, handler, _kwargs, addon in live_server.app.route_table
            if addon == "resellers" and handler.scope == "host"]


def fill(pattern: str, reseller: str, workspace: str) -> str:
    values = iter([reseller, workspace, "users"])
    # A number's place (a job's id) takes a number: the ids tried are the workspace's.
    path = re.sub(r"\([^)]*\)", lambda m: "1" if m.group(0).startswith("([0-9]") else next(values), pattern)
    return path.replace("/?", "").replace("\\", "")


def state(platform, tenant_id):
    return admin_sql(platform, "SELECT t.status, (SELECT array_agg(addon ORDER BY addon) FROM public.tenant_addon "
                     "WHERE tenant_id = t.id AND enabled), (SELECT count(*) FROM public.reseller_access_grant "
                     "WHERE tenant_id = t.id), (SELECT retail_plan_id FROM public.reseller_tenant WHERE tenant_id = t.id) "
                     "FROM public.tenant t WHERE t.id = %s", (tenant_id,), fetch=True)[0]


def test_every_console_route_refuses_another_resellers_workspace(platform, live_server, cleanup):
    a, b = make_reseller(platform), make_reseller(platform)
    a_client, b_client = partner_sign_in(live_server, a), partner_sign_in(live_server, b)
    theirs = f"iso-{secrets.token_hex(3)}"
    assert create_workspace(b_client, b, theirs, name="B's Secret Customer").status_code == 302
    cleanup.append(theirs)
    service.set_available(platform, a, "contacts", True)
    service.set_available(platform, b, "contacts", True)
    from addons.resellers import invoicing

    for reseller in (a, b):
        invoicing.create_plan(reseller, {"code": "basic", "name": "Basic", "currency": "EUR", "monthly_price": 100,
                                         "included_segments": 10, "overage_per_1000": 0})
    platform_owned = f"own-{secrets.token_hex(3)}"
    platform.tenants.create(platform_owned, "Nobody's reseller", f"o@{platform_owned}.example", OWNER_PASSWORD)
    cleanup.append(platform_owned)
    targets = [load_tenant(theirs), load_tenant(platform_owned)]
    before = [state(platform, t.id) for t in targets]
    routes = console_routes(live_server)
    assert len(routes) >= 8, routes
    tried = 0
    for pattern, handler in routes:
        for target in targets:
            path = fill(pattern, a.slug, target.slug)
            posts = [{"action": "suspend", "confirmed": "1"}, {"action": "resume"},
                     {"action": "access", "reason": "a long enough reason"},
                     {"action": "enable", "addon": "contacts", "workspace": target.slug},
                     {"action": "enable", "addon": "contacts", "all": "", "workspace": [target.slug]},
                     {"action": "assign_plan", "workspace": target.slug, "plan": "basic"}]
            if "(" in pattern.split("/workspaces/")[-1] and "/workspaces/" in pattern:
                # A route that names a workspace: 404 for every method, like a missing one.
                assert a_client.get(path).status_code == 404, path
                posting = handler.post is not tornado.web.RequestHandler.post  # else every POST is a 405
                for form in posts:
                    r = post_form(a_client, path, form)
                    assert r.status_code == (404 if posting else 405), (path, form, r.status_code)
                    assert "B&#39;s Secret" not in r.text and "B's Secret" not in r.text
                    tried += 1
            else:
                page = a_client.get(path)
                assert "B's Secret" not in page.text and target.slug not in page.text, path
                for form in posts[3:] if not path.endswith("/logout") else []:  # (it would end A's session)
                    r = post_form(a_client, path, form)
                    # The addons page names workspaces in its form: another's is a 404; the other
                    # pages take no workspace (their refusals vary: a form without its fields is a 422).
                    names_workspace = ((path.endswith("/addons") and form["action"] == "enable")
                                       or (path.endswith("/invoices") and form["action"] == "assign_plan"))
                    expected = (404,) if names_workspace else (302, 400, 401, 403, 404, 405, 422)
                    assert r.status_code in expected, (path, form, r.status_code)
                    assert target.slug not in r.text, path
                    tried += 1
            # And B's console with A's session: nobody there.
            foreign = fill(pattern, b.slug, target.slug)
            if foreign != "/lang":
                r = a_client.get(foreign)
                # B's public pages (sign-in, sign-up, its colours; its logo a 404 while it has none) answer
                # anyone; everything else sends A to B's sign-in.
                public = foreign.endswith(("/login", "/signup", "/style.css"))
                assert r.status_code in ((200,) if public else (302, 404, 405)), foreign
                assert "B's Secret" not in r.text and target.slug not in r.text, foreign
    assert tried > 20
    forget(platform, *(t.slug for t in targets))
    assert [state(platform, t.id) for t in targets] == before
    assert service.workspaces(a.id) == []
