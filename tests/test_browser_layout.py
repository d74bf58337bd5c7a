"""Every page of the dashboard, the public site and the admin console, in Chromium at phone size
(390x844) and desktop size (1280x800): nothing scrolls sideways, axe-core finds no serious or
critical violation (its colour-contrast rule holds all visible text to 4.5:1), no script error or
CSP violation. Screenshots go to build/screenshots/ (ignored by git) for anyone to look at.

axe-core is vendored (tests/vendor/axe.min.js, see tests/vendor/README.md) and injected through the
DevTools protocol, so the pages' strict CSP does not apply to it. One browser, one signed-in context
per visitor for the whole module: the pages are only read here.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.support.browser import address, chromium, forget_problems, open_page, page_problems, server  # noqa: F401
from tests.support.browser import keep_screenshot, submit
from tests.support.identity import OWNER_PASSWORD, owner_email
from tests.support.resellers import PARTNER_PASSWORD, partner_email, partners_address, reseller_of
from tests.support.site import populated_workspace

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "tests" / "vendor" / "axe.min.js"
SCREENSHOTS = ROOT / "build" / "screenshots"
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
ADMIN_PASSWORD = "admin password long enough"

# (visitor, path); {…} fields are filled from the data the module fixture creates.
PAGES = [
    ("anonymous", "platform", "/"), ("anonymous", "platform", "/signup"), ("anonymous", "platform", "/pricing"),
    ("anonymous", "platform", "/privacy"), ("anonymous", "platform", "/cookies"),
    ("anonymous", "platform", "/api/docs"), ("anonymous", "platform", "/admin/login"),
    ("anonymous", "tenant", "/login"), ("anonymous", "tenant", "/forgot-password"),
    ("anonymous", "tenant", "/reset-password"), ("anonymous", "tenant", "/verify-email"),
    ("anonymous", "tenant", "/accept-invite"), ("anonymous", "tenant", "/confirm-email"),
    ("anonymous", "tenant", "/undo-email-change"), ("anonymous", "tenant", "/no-such-page"),
    ("owner", "tenant", "/"), ("owner", "tenant", "/messages"), ("owner", "tenant", "/messages/{message}"),
    ("owner", "tenant", "/send"), ("owner", "tenant", "/send/csv"), ("owner", "tenant", "/inbox"),
    ("owner", "tenant", "/inbox/{sender}"), ("owner", "tenant", "/campaigns"),
    ("owner", "tenant", "/campaigns/{campaign}"), ("owner", "tenant", "/messages?q=order&state=pending"),
    ("owner", "tenant", "/messages?since=bad"), ("owner", "tenant", "/inbox?q=Sunday"), ("owner", "tenant", "/suppressions"), ("owner", "tenant", "/overview"),
    ("owner", "tenant", "/devices"), ("owner", "tenant", "/devices/pair"), ("owner", "tenant", "/devices/{device}"),
    ("owner", "tenant", "/devices/connect"),
    ("owner", "tenant", "/webhooks"), ("owner", "tenant", "/webhooks/{webhook}/deliveries"),
    ("owner", "tenant", "/team"), ("owner", "tenant", "/tokens"), ("owner", "tenant", "/account"),
    ("owner", "tenant", "/account/privacy"), ("owner", "tenant", "/account/security"),
    ("owner", "tenant", "/account/alerts"), ("owner", "tenant", "/workspace"),
    ("owner", "tenant", "/contacts"), ("owner", "tenant", "/contacts/{contact}"), ("owner", "tenant", "/contacts/import"),
    ("owner", "tenant", "/templates"), ("owner", "tenant", "/templates/{template}"),
    ("owner", "tenant", "/audit"), ("owner", "tenant", "/usage"), ("owner", "tenant", "/billing"),
    ("owner", "tenant", "/billing/invoices"), ("owner", "tenant", "/billing/invoices/{invoice}"),
    ("owner", "tenant", "/billing/details"), ("owner", "tenant", "/billing/payment"),
    ("owner", "tenant", "/privacy"), ("owner", "tenant", "/cookies"), ("owner", "tenant", "/brand"),
    ("owner", "tenant", "/security"),
    ("admin", "platform", "/admin"), ("admin", "platform", "/admin/abuse"), ("admin", "platform", "/admin/abuse/rules"), ("admin", "platform", "/admin/tenants/{slug}"),
    ("admin", "platform", "/admin/tenants/{slug}/data/users"), ("admin", "platform", "/admin/privacy"),
    ("admin", "platform", "/admin/privacy/{request}"), ("admin", "platform", "/admin/privacy/deletions"),
    ("admin", "platform", "/admin/usage"), ("admin", "platform", "/admin/analytics"),
    ("admin", "platform", "/admin/billing/invoices"), ("admin", "platform", "/admin/billing/past-due"),
    ("admin", "platform", "/admin/billing/plans"), ("admin", "platform", "/admin/billing/subscriptions"),
    ("admin", "platform", "/admin/billing/revenue"), ("admin", "platform", "/admin/billing/tax"),
    ("admin", "platform", "/admin/resellers"), ("admin", "platform", "/admin/resellers/{reseller}"),
    ("anonymous", "partners", "/{reseller}/login"), ("partner", "partners", "/{reseller}"),
    ("partner", "partners", "/{reseller}/workspaces/{slug}"),
    ("partner", "partners", "/{reseller}/workspaces/{slug}/data/users"), ("partner", "partners", "/{reseller}/addons"),
    ("partner", "partners", "/{reseller}/team"), ("partner", "partners", "/{reseller}/invoices"),
    ("partner", "partners", "/{reseller}/brand"), ("anonymous", "partners", "/{reseller}/signup"),
]

# Addresses that answer with something other than a page of their own: files, JSON, form targets
# and redirects. Every other GET route must be in PAGES (test_every_page_is_checked).
NOT_PAGES = {
    r"/brand/logo", r"/brand/domains",  # the logo file; the domains form's target (GET goes to /brand)
    r"/account/privacy/exports/([^/]+)/download", r"/account/security/signed-out", r"/admin/logout",
    r"/audit/export\.json", r"/billing/invoices/([^/]+)/pay", r"/billing/invoices/([^/]+)\.pdf",
    r"/billing/stripe/webhook", r"/cookies/consent", r"/health/live", r"/health/ready", r"/lang", r"/logout",
    r"/messages/status\.json", r"/messages\.csv", r"/inbox\.csv", r"/privacy/acknowledge", r"/privacy/contact", r"/usage\.csv", r"/overview\.csv",
    r"/verify-email/resend", r"/\.well-known/jwks\.json", r"/welcome", r"/find-workspace",
    r"/contacts/groups", r"/contacts/export\.csv",  # a form target (POST only) and a file
    r"/admin/abuse/([a-z0-9-]{1,63})/([0-9]{1,18})", r"/security/alerts/([0-9]{1,18})",  # form targets
    r"/security/sandbox", r"/security/sandbox/code", r"/security/sandbox/verify",  # form targets
    # a reseller's colours and logo files, its host names form's target (GET goes to its brand page), a job's JSON
    r"/([a-z0-9-]{1,40})/brand/style\.css", r"/([a-z0-9-]{1,40})/brand/logo", r"/([a-z0-9-]{1,40})/brand/hosts",
    r"/([a-z0-9-]{1,40})/addons/jobs/([0-9]{1,18})",
}


# Link pages opened without their link's token say so (a page of its own, not an error page).
EXPECTED_STATUS = {"/no-such-page": 404, "/messages?since=bad": 422, "/reset-password": 400, "/verify-email": 400, "/accept-invite": 400,
                   "/confirm-email": 400, "/undo-email-change": 400}


def run_axe(page) -> list[str]:
    """Serious and critical axe-core violations of the whole page, one line each."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())  # through the DevTools protocol: the page's CSP does not apply
    return page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => v.id + ': ' + v.help + ' @ ' + v.nodes.slice(0, 5).map(n => n.target.join(' ')
                 + (n.any[0] ? ' (' + n.any[0].message + ')' : '')).join(' | '));
    }""")


def horizontal_scroll(page) -> int:
    """How far the page scrolls sideways (0: not at all)."""
    return page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")


@pytest.fixture(scope="module")
def site(server, chromium):
    """A workspace with something on every page (a phone, messages sent and received, a webhook,
    a member, an invoice, a privacy request), its owner and a platform admin signed in, each in a
    browser context of their own."""
    platform = server.platform
    slug = f"look-{secrets.token_hex(4)}"
    made = populated_workspace(server, slug, "Layout & Co", ADMIN_PASSWORD, phone_name="Shop counter phone",
                               sent_text="Your order 4711 is ready for pick-up",
                               received_text="Is the shop open on Sunday?")
    tenant, admin, fields = made["tenant"], made["admin"], made["fields"]
    visitors = {name: open_page(chromium) for name in ("anonymous", "owner", "admin")}
    owner = visitors["owner"]
    owner.goto(address(server, slug, "/login"))
    owner.fill("#f-email", owner_email(tenant))
    owner.fill("#f-password", OWNER_PASSWORD)
    submit(owner)
    admin_page = visitors["admin"]
    admin_page.goto(f"http://{platform.settings.base_domain}:{server.port}/admin/login")
    admin_page.fill("#f-email", admin.email)
    admin_page.fill("#f-password", ADMIN_PASSWORD)
    submit(admin_page)
    reseller = reseller_of(platform, tenant)
    fields = {**fields, "reseller": reseller.slug}
    visitors["partner"] = partner = open_page(chromium)
    partner.goto(partners_address(server, f"/{reseller.slug}/login"))
    partner.fill("#f-email", partner_email(reseller))
    partner.fill("#f-password", PARTNER_PASSWORD)
    submit(partner)
    for page in (owner, admin_page, partner):  # the signed-in see their pages, not the cookie banner (anonymous does)
        if page.locator("#cookie-banner").count():
            page.click("#cookie-banner button[value=essential]")
            page.wait_for_selector("#cookie-banner", state="hidden")
    try:
        yield {"server": server, "slug": slug, "fields": fields, "visitors": visitors}
    finally:
        for page in visitors.values():
            page.context.close()
        try:
            platform.tenants.delete(slug)
        except Exception:
            pass


def url_of(site, host: str, path: str) -> str:
    server = site["server"]
    path = path.format(**site["fields"])
    if host == "platform":
        return f"http://{server.platform.settings.base_domain}:{server.port}{path}"
    if host == "partners":
        return partners_address(server, path)
    return address(server, site["slug"], path)


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
@pytest.mark.parametrize("visitor, host, path", PAGES, ids=[f"{v}:{h}:{p}" for v, h, p in PAGES])
def test_the_page_fits_the_screen_and_passes_axe(site, visitor, host, path, viewport):
    page = site["visitors"][visitor]
    page.set_viewport_size(VIEWPORTS[viewport])
    forget_problems(page)  # the page object serves the whole module: only this visit's problems count
    response = page.goto(url_of(site, host, path))
    assert response.status == EXPECTED_STATUS.get(path, 200), (response.status, page.url)
    if visitor != "anonymous":  # still signed in: not sent to a sign-in page
        assert "/login" not in page.url, page.url
    name = re.sub(r"[^a-z0-9]+", "-", f"{visitor}-{re.sub(r'[{}]', '', path)}".lower()).strip("-")
    keep_screenshot(page, SCREENSHOTS / f"{viewport}-{name}.png")
    assert horizontal_scroll(page) <= 0
    assert run_axe(page) == []
    assert page_problems(page, allow=["404", "400", "422"]) == []


def test_the_screenshots_folder_is_ignored_by_git():
    """The screenshots this module writes are for looking at, never for committing."""
    shot = SCREENSHOTS / "phone-owner-messages.png"
    found = subprocess.run(["git", "check-ignore", "--no-index", "-q", str(shot.relative_to(ROOT))], cwd=ROOT)
    assert found.returncode == 0, f"{shot.relative_to(ROOT)} is not ignored by .gitignore"


def test_every_page_is_checked(server):
    """Every address that answers GET with a page is in PAGES (or, with a reason, in NOT_PAGES)."""
    from core.web.base import BaseHandler, PageHandler

    covered = {re.sub(r"\{[a-z]+\}", "X", p) for _v, _h, p in PAGES}
    missing = []
    for pattern, handler, _kwargs, _addon in server.app.route_table:
        if "/api/" in pattern or pattern in NOT_PAGES or not issubclass(handler, PageHandler):
            continue
        if getattr(handler, "get", None) is getattr(BaseHandler, "get", None):
            continue  # answers no GET
        if not any(re.fullmatch(pattern.rstrip("$"), path.replace("X", "1")) for path in covered):
            missing.append(pattern)
    assert missing == []


def test_the_menu_is_a_sidebar_on_desktop_and_a_button_on_phones(site):
    """Desktop: the grouped menu is always there, main entries first. Phone: one menu button that
    opens it (a <details>: no JavaScript needed); the current page is marked."""
    page = site["visitors"]["owner"]
    page.set_viewport_size(VIEWPORTS["desktop"])
    page.goto(url_of(site, "tenant", "/messages"))
    assert not page.is_visible(".menu-button")
    assert page.is_visible(".sidenav a[href='/team']")
    first = page.locator(".sidenav ul").first.locator("a").all_inner_texts()
    assert first[:5] == ["Overview", "Messages", "Send", "Inbox", "Devices"]
    assert page.locator(".nav-heading").all_inner_texts() == ["INSIGHTS", "SETTINGS", "YOUR ACCOUNT"]
    assert page.get_attribute(".sidenav a[aria-current=page]", "href") == "/messages"
    box = page.locator("main").bounding_box()
    assert box["x"] >= page.locator(".sidebar").bounding_box()["width"] - 1  # beside the menu, not below

    page.set_viewport_size(VIEWPORTS["phone"])
    page.goto(url_of(site, "tenant", "/account/privacy"))
    assert page.is_visible(".menu-button") and not page.is_visible(".sidenav a[href='/team']")
    page.click(".menu-button")
    assert page.is_visible(".sidenav a[href='/team']")
    assert page.locator(".sidenav a[aria-current=page]").all_inner_texts() == ["Privacy"]
    # Keyboard: the button is reached by Tab and opens with Enter.
    page.reload()
    page.focus(".menu-button")
    page.keyboard.press("Enter")
    assert page.is_visible(".sidenav a[href='/team']")


def test_the_footer_links_stand_apart(site):
    """The footer's sentence and its links (privacy, cookies, pricing ...) do not run together."""
    page = site["visitors"]["owner"]
    page.set_viewport_size(VIEWPORTS["desktop"])
    page.goto(url_of(site, "tenant", "/messages"))
    links = page.locator("footer .footer-link")
    assert links.count() >= 2
    gaps = page.evaluate("""() => [...document.querySelectorAll('footer .footer-link')].map(a => {
        const before = a.previousSibling && a.previousSibling.nodeType === 1 ? a.previousSibling : null;
        const range = document.createRange();
        range.selectNodeContents(a.parentNode.firstChild);
        const left = (before || range).getBoundingClientRect().right;
        return a.getBoundingClientRect().left - left;
    })""")
    assert all(gap >= 8 for gap in gaps), gaps


def test_a_form_works_by_keyboard_with_visible_focus_and_its_errors_announced(site):
    """Item 2: the send form is reached, filled and submitted with the keyboard alone; the focused
    control shows a visible outline; a refusal is announced (role=alert) and what was typed stays."""
    page = site["visitors"]["owner"]
    page.set_viewport_size(VIEWPORTS["desktop"])
    page.goto(url_of(site, "tenant", "/send"))
    for _ in range(80):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "f-to":
            break
    else:
        pytest.fail("Tab never reached the recipients field")
    outline = page.evaluate("(() => { const s = getComputedStyle(document.activeElement); "
                            "return [s.outlineStyle, parseFloat(s.outlineWidth)]; })()")
    assert outline[0] != "none" and outline[1] >= 2, outline
    page.keyboard.type("not a number")
    while page.evaluate("document.activeElement.id") != "f-text":
        page.keyboard.press("Tab")
    page.keyboard.type("Typed by keyboard")
    while page.evaluate("document.activeElement.type") != "submit":
        page.keyboard.press("Tab")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    alert = page.locator("main [role=alert]")
    assert alert.count() == 1 and alert.inner_text().startswith("Recipient: "), alert.all_inner_texts()  # not "to"
    assert "“not a number” is not a phone number" in alert.inner_text()
    assert page.input_value("#f-to") == "not a number" and page.input_value("#f-text") == "Typed by keyboard"


def test_tables_are_cards_on_phones(site):
    """On a phone each row is a card whose cells carry their column's name; on a desktop a table."""
    page = site["visitors"]["owner"]
    page.set_viewport_size(VIEWPORTS["phone"])
    page.goto(url_of(site, "tenant", "/messages"))
    cell = page.locator("main table tbody tr").first.locator("td").first
    header = page.locator("main table thead th").first.inner_text().strip()
    assert cell.get_attribute("data-label") == header
    assert page.evaluate("getComputedStyle(document.querySelector('main table tbody tr')).display") == "block"
    assert page.evaluate("""getComputedStyle(document.querySelector('main table tbody td[data-label]'),
                            '::before').content""") == f'"{header}"'
    page.set_viewport_size(VIEWPORTS["desktop"])
    assert page.evaluate("getComputedStyle(document.querySelector('main table tbody tr')).display") == "table-row"
