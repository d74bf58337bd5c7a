"""Abuse review in Chromium, on a laptop and on a phone screen: the platform admin finds a burst in
the queue (severity, evidence, the chart of the burst), releases it with a reason (the messages go
to the queue), and the workspace's Customer sees the alert and its held messages on *Security*,
and releases what a low-severity rule held there; nothing reaches past the screen's edge."""

from __future__ import annotations

import secrets

import pytest

from addons.abuse import rules
from core.db import app_db, connection
from tests.support.browser import address, new_page, overflowing, page_problems, submit  # noqa: F401
from tests.support.browser import browser_page, chromium, server  # noqa: F401
from tests.support.identity import OWNER_PASSWORD, owner_email
from tests.support.abuse import shipped_defaults
from tests.support.messaging import sql
from tests.support.phones import api_client

pytestmark = pytest.mark.browser
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(autouse=True)
def shipped_rules(platform):
    """The rules as shipped for each test (the session's other tests record only)."""
    with shipped_defaults():
        yield

def burst(server, slug) -> dict:
    api = api_client(server, slug)
    r = api.post("/api/v1/messages", json={"text": "your code", "to": ["+1415777%04d" % i for i in range(2000, 2025)]})
    assert r.status_code == 202, r.text
    return r.json()


def admin_on_queue(page, server) -> str:
    """A new platform admin signed in on ``page``, on the abuse queue; the console's address."""
    from core.admins import create_admin

    admin = create_admin(server.platform, f"ops-{secrets.token_hex(3)}@platform.example", "admin password long enough")
    console = f"http://{server.platform.settings.base_domain}:{server.port}"
    page.goto(f"{console}/admin/login")
    page.fill("input[name=email]", admin.email)
    page.fill("input[name=password]", "admin password long enough")
    submit(page)
    page.goto(f"{console}/admin/abuse")
    return console


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_the_admin_reviews_a_burst_and_releases_it(browser_page, server, make_tenant, viewport):
    page = browser_page
    page.set_viewport_size(VIEWPORTS[viewport])
    t = make_tenant("babq")
    message = burst(server, t.slug)
    assert {r["state"] for r in message["recipients"]} == {"held"}
    console = admin_on_queue(page, server)
    card = page.locator(f"section.abuse-alert[data-workspace='{t.slug}']")
    assert card.count() == 1
    text = card.inner_text()
    assert "High" in text and "Burst to sequential numbers" in text and "+1415777200" in text
    assert card.locator("figure.chart svg[role=img]").count() == 1
    assert overflowing(page) == []
    # No reason: the browser asks for one; a blank one sent anyway is refused with a message.
    card.locator("textarea[name=reason]").fill("   ")
    response = submit(page, f"section.abuse-alert[data-workspace='{t.slug}'] button[value=release]")
    assert response.status == 422 and "Write the reason" in page.inner_text("main")
    card = page.locator(f"section.abuse-alert[data-workspace='{t.slug}']")
    card.locator("textarea[name=reason]").fill("customer confirmed a sign-up campaign")
    submit(page, f"section.abuse-alert[data-workspace='{t.slug}'] button[value=release]")
    assert "Messages moved: 25" in page.inner_text("main")
    assert page.locator(f"section.abuse-alert[data-workspace='{t.slug}']").count() == 0
    assert sql(t, "SELECT DISTINCT state FROM recipients WHERE message_id = %s", (message["id"],)) == [("pending",)]
    page.goto(f"{console}/admin/abuse?status=released")
    assert "customer confirmed a sign-up campaign" in page.locator(
        f"section.abuse-alert[data-workspace='{t.slug}']").inner_text()
    assert overflowing(page) == []
    assert page_problems(page, allow=["422"]) == []


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_the_customer_sees_alerts_and_releases_a_low_severity_hold(browser_page, server, make_tenant, viewport):
    page = browser_page
    page.set_viewport_size(VIEWPORTS[viewport])
    t = make_tenant("babs")
    with connection():
        with app_db.atomic():  # premium numbers: a low-severity rule for this test's operator
            app_db.execute_sql("INSERT INTO public.abuse_rules (rule, action, severity) VALUES ('premium', 'hold', 1)")
    rules.forget()
    held = burst(server, t.slug)  # high severity: not the Customer's
    api = api_client(server, t.slug)
    r = api.post("/api/v1/messages", json={"text": "vote now", "to": ["+19005550111"]})
    assert r.json()["recipients"][0]["state"] == "held"
    page.goto(address(server, t.slug, "/login"))
    page.fill("#f-email", owner_email(t))
    page.fill("#f-password", OWNER_PASSWORD)
    submit(page)
    assert "security alerts need attention" in page.inner_text("#abuse-notice")
    page.goto(address(server, t.slug, "/security"))
    alerts = page.locator("article.abuse-alert")
    assert alerts.count() == 2
    high = page.locator("article.abuse-alert.severity-3")
    assert "platform's reviewers decide" in high.inner_text() and high.locator("form").count() == 0
    assert page.locator("table.abuse-held tbody tr").count() == 26
    assert overflowing(page) == []
    low = page.locator("article.abuse-alert.severity-1")
    low.locator("input[name=reason]").fill("a known premium vote line")
    submit(page, "article.abuse-alert.severity-1 button[value=release]")
    assert "Messages moved: 1" in page.inner_text("main")
    assert page.locator("table.abuse-held tbody tr").count() == 25
    assert sql(t, "SELECT state FROM recipients WHERE phone = '+19005550111'") == [("pending",)]
    assert {s for (s,) in sql(t, "SELECT state FROM recipients WHERE message_id = %s", (held["id"],))} == {"held"}
    assert overflowing(page) == []
    assert page_problems(page) == []


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_the_customer_verifies_a_sandbox_number_by_sms_code(browser_page, server, make_tenant, viewport, tmp_path):
    import re

    from tests.support.messaging import raw_device

    page = browser_page
    page.set_viewport_size(VIEWPORTS[viewport])
    t = make_tenant("bavc")
    with connection():
        with app_db.atomic():
            app_db.execute_sql("INSERT INTO public.abuse_rules (rule, action, severity, params) VALUES "
                               "('sandbox', 'record', 1, '{\"days\": 14, \"daily_cap\": 5}')")
    rules.forget()
    phone = raw_device(server, t.slug, tmp_path / "phone")
    page.goto(address(server, t.slug, "/login"))
    page.fill("#f-email", owner_email(t))
    page.fill("#f-password", OWNER_PASSWORD)
    submit(page)
    page.goto(address(server, t.slug, "/security"))
    page.fill("#f-code-phone", "+1 415 555 0177")
    submit(page, "#sandbox-code button")
    assert "A code is on its way to +14155550177" in page.inner_text("main")
    assert page.input_value("#f-verify-phone") == "+14155550177"
    (sms,) = phone.fetch(limit=5)
    code = re.search(r"\b(\d{6})\b", sms["text"]).group(1)
    assert page_problems(page) == []
    page.fill("#f-verify-code", "000000" if code != "000000" else "111111")
    submit(page, "#sandbox-verify button")
    assert "(4 attempts left)" in page.inner_text("[role=alert]")
    assert overflowing(page) == []
    page.fill("#f-verify-code", code)
    submit(page, "#sandbox-verify button")
    assert "+14155550177 is verified" in page.inner_text("main")
    assert "verified" in page.inner_text("ul.abuse-sandbox-numbers")
    assert overflowing(page) == []
    # The wrong code's answer was a 422 page (as a form's refusal is); nothing else went wrong.
    assert [p for p in page_problems(page) if "422" not in p] == []


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_the_admin_sees_a_rule_set_that_failed_to_load(browser_page, server, viewport):
    page = browser_page
    page.set_viewport_size(VIEWPORTS[viewport])
    with connection():
        with app_db.atomic():
            app_db.execute_sql("INSERT INTO public.abuse_rules (rule, action, severity, params) VALUES "
                               "('volume_spike', 'hold', 2, '{\"factor\": \"lots\", \"surprise\": 1}')")
    rules.forget()
    assert rules.book().rules["volume_spike"].action == "notify"  # the rules in use stay
    admin_on_queue(page, server)
    page.click("a[href='/admin/abuse/rules']")
    failure = page.inner_text("#rules-failure")
    assert "volume_spike.factor: must be a number" in failure and "unknown parameter 'surprise'" in failure
    assert page.locator("tr[data-rule=volume_spike]").inner_text().count("notify") == 1
    assert overflowing(page) == []
    assert page_problems(page) == []
