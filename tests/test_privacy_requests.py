"""Restriction and objection, and privacy requests with a 30-day clock (issue 15, items 5 and 6).

Real PostgreSQL and HTTP: people object and restrict on *Account → Privacy*, the platform admin
works the queue at ``/admin/privacy``, mail is read from the file backend's outbox, and the clock
of the queue is moved by writing rows with past dates.
"""

from __future__ import annotations

import re
import secrets

import pytest

from addons.privacy import restriction
from core.admins import create_admin
from core.db import connection, tenant_transaction
from core.identity import create_api_token
from core.users import User
from tests.support.identity import (add_user, admin_sign_in, admin_sql, audit_rows, bearer, client, fetch_xsrf,
                                    fresh_ip, mails_to, owner_email, post_form, sign_in)

PASSWORD = "a long enough password"
ADMIN_PASSWORD = "admin password 123"


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("prq")


@pytest.fixture
def member(platform, tenant):
    address = f"member-{secrets.token_hex(3)}@{tenant.slug}.example"
    user_id = add_user(platform, tenant, address, PASSWORD)
    return {"id": user_id, "email": address, "actor": f"user:{user_id}"}


@pytest.fixture
def admin(platform):
    return create_admin(platform, f"ops-{secrets.token_hex(4)}@platform.example", ADMIN_PASSWORD, "Ops")


@pytest.fixture
def console(live_server, admin):
    return admin_sign_in(live_server, admin.email, ADMIN_PASSWORD, ip=fresh_ip())


def rows(platform, statement, params=()):
    return admin_sql(platform, statement, params, fetch=True)


def in_force(platform, tenant, actor):
    return rows(platform, "SELECT purpose, reason, request_id FROM public.privacy_restriction WHERE tenant_id = %s "
                          "AND subject = %s AND withdrawn_at IS NULL ORDER BY purpose", (tenant.id, actor))


def excluded(tenant, actor, purpose):
    with connection():
        return restriction.excluded(tenant.id, actor, purpose)


def object_to(c, purpose, action="object", reason=""):
    return post_form(c, "/account/privacy", {"section": "objection", "purpose": purpose, "action": action,
                                             "reason": reason})


def marketing_mail(platform, to):
    subject = f"Product news {secrets.token_hex(4)}"
    platform.mailer.send(to, subject, "What is new this month.", category="marketing")
    return mails_to(platform, to, subject)


def test_an_objection_to_marketing_is_recorded_honoured_at_once_and_withdrawable(platform, live_server, tenant, member):
    c = sign_in(live_server, tenant.slug, member["email"])
    page = c.get("/account/privacy")
    assert page.status_code == 200 and 'id="objection"' in page.text
    assert len(marketing_mail(platform, member["email"])) == 1  # before: product news reaches them

    r = object_to(c, "marketing")
    assert r.status_code == 303 and r.headers["Location"] == "/account/privacy#objection"
    [(purpose, _reason, request_id)] = in_force(platform, tenant, member["actor"])
    assert purpose == "marketing"
    [(kind, state, self_service, subject)] = rows(
        platform, "SELECT kind, state, self_service, subject FROM public.privacy_request WHERE id = %s", (request_id,))
    assert (kind, state, self_service, subject) == ("objection", "done", True, member["actor"])
    assert excluded(tenant, member["actor"], "marketing") and not excluded(tenant, member["actor"], "profiling")
    # Honoured at once: marketing mail is not sent; service mail (a password reset, ...) still is.
    assert marketing_mail(platform, member["email"]) == []
    assert marketing_mail(platform, member["email"].upper()) == []
    platform.mailer.send(member["email"], "Service notice", "Your account.")
    assert len(mails_to(platform, member["email"], "Service notice")) == 1
    assert "You object since" in c.get("/account/privacy").text
    assert [e["target"] for e in audit_rows(platform, tenant.id, "privacy.objection_recorded")] == [member["actor"]]
    # Twice is refused, nothing doubled.
    again = object_to(c, "marketing")
    assert again.status_code == 422 and "already in force" in again.text
    assert len(in_force(platform, tenant, member["actor"])) == 1

    r = object_to(c, "marketing", "withdraw")
    assert r.status_code == 303
    assert in_force(platform, tenant, member["actor"]) == []
    assert not excluded(tenant, member["actor"], "marketing")
    assert len(marketing_mail(platform, member["email"])) == 1
    assert len(audit_rows(platform, tenant.id, "privacy.restriction_withdrawn")) == 1


def test_an_objection_to_profiling_leaves_the_person_out_of_analytics(platform, live_server, tenant, member):
    c = sign_in(live_server, tenant.slug, member["email"])
    assert object_to(c, "profiling").status_code == 303
    assert excluded(tenant, member["actor"], "profiling") and not excluded(tenant, member["actor"], "marketing")
    with connection():
        assert restriction.excluded_subjects(tenant.id, "profiling") == {member["actor"]}
        assert restriction.excluded_subjects(tenant.id, "marketing") == set()
    # The owner's objection is theirs alone, not the member's.
    owner = sign_in(live_server, tenant.slug, owner_email(tenant))
    assert object_to(owner, "marketing").status_code == 303
    assert not excluded(tenant, member["actor"], "marketing") and excluded(tenant, "user:1", "marketing")
    assert len(marketing_mail(platform, member["email"])) == 1
    assert marketing_mail(platform, owner_email(tenant)) == []


def test_a_restriction_waits_in_the_admin_queue_and_ends_when_the_admin_closes_it(
        platform, live_server, tenant, member, console):
    c = sign_in(live_server, tenant.slug, member["email"])
    short = object_to(c, "restriction", reason="wrong")
    assert short.status_code == 422 and "at least 10 characters" in short.text
    assert in_force(platform, tenant, member["actor"]) == []

    r = object_to(c, "restriction", reason="My name is misspelt in the team list.")
    assert r.status_code == 303
    [(purpose, reason, request_id)] = in_force(platform, tenant, member["actor"])
    assert (purpose, reason) == ("restriction", "My name is misspelt in the team list.")
    # A restricted account is left out of marketing and analytics alike.
    assert excluded(tenant, member["actor"], "marketing") and excluded(tenant, member["actor"], "profiling")
    assert marketing_mail(platform, member["email"]) == []
    [(state, self_service, due_days)] = rows(
        platform, "SELECT state, self_service, round(extract(epoch FROM due_at - created_at) / 86400) "
                  "FROM public.privacy_request WHERE id = %s", (request_id,))
    assert (state, self_service, due_days) == ("open", False, 30)
    assert len(audit_rows(platform, tenant.id, "privacy.restriction_recorded")) == 1

    queue = console.get("/admin/privacy")
    assert queue.status_code == 200 and f'data-id="{request_id}"' in queue.text
    assert "My name is misspelt in the team list." in queue.text

    r = post_form(console, f"/admin/privacy/{request_id}", {"state": "in_progress", "outcome": ""})
    assert r.status_code == 303
    assert rows(platform, "SELECT state FROM public.privacy_request WHERE id = %s", (request_id,)) == [("in_progress",)]
    assert excluded(tenant, member["actor"], "marketing")  # still restricted while it is checked
    assert mails_to(platform, member["email"], f"#{request_id}") == []

    outcome = "We corrected the spelling of your name; the restriction ends."
    r = post_form(console, f"/admin/privacy/{request_id}", {"state": "done", "outcome": outcome})
    assert r.status_code == 303
    [(state, saved, completed)] = rows(
        platform, "SELECT state, outcome, completed_at IS NOT NULL FROM public.privacy_request WHERE id = %s",
        (request_id,))
    assert (state, saved, completed) == ("done", outcome, True)
    assert in_force(platform, tenant, member["actor"]) == [] and not excluded(tenant, member["actor"], "marketing")
    [told] = mails_to(platform, member["email"], f"Your privacy request #{request_id} is done")
    assert outcome in told.get_body(preferencelist=("plain",)).get_content()
    events = audit_rows(platform, tenant.id, "privacy.request_updated")
    assert [e["details"]["state"] for e in events] == ["in_progress", "done"]
    assert f'data-id="{request_id}"' not in console.get("/admin/privacy").text.split("Recently closed")[0]
    # Closed is closed.
    again = post_form(console, f"/admin/privacy/{request_id}", {"state": "refused", "outcome": "Changed my mind."})
    assert again.status_code == 409
    assert rows(platform, "SELECT state FROM public.privacy_request WHERE id = %s", (request_id,)) == [("done",)]


def test_the_person_can_withdraw_a_restriction_and_its_request_is_cancelled(platform, live_server, tenant, member):
    c = sign_in(live_server, tenant.slug, member["email"])
    assert object_to(c, "restriction", reason="The phone number on file is not mine.").status_code == 303
    [(_p, _r, request_id)] = in_force(platform, tenant, member["actor"])
    assert object_to(c, "restriction", "withdraw").status_code == 303
    assert in_force(platform, tenant, member["actor"]) == []
    assert rows(platform, "SELECT state FROM public.privacy_request WHERE id = %s", (request_id,)) == [("cancelled",)]


def queue_request(platform, tenant, kind, days_old, subject="tenant", state="open"):
    """A request made ``days_old`` days ago (its due date 30 days after), written as the clock would have."""
    return rows(platform,
                "INSERT INTO public.privacy_request (tenant_id, tenant_slug, kind, subject, state, created_at, due_at) "
                "VALUES (%s, %s, %s, %s, %s, now() - make_interval(days => %s), "
                "now() - make_interval(days => %s) + interval '30 days') RETURNING id",
                (tenant.id, tenant.slug, kind, subject, state, days_old, days_old))[0][0]


def test_the_admin_queue_is_sorted_by_due_date_and_flags_the_overdue(platform, tenant, console):
    fresh = queue_request(platform, tenant, "rectification", 1)
    overdue = queue_request(platform, tenant, "erasure", 35)
    nearly = queue_request(platform, tenant, "contact", 29)
    closed = queue_request(platform, tenant, "export", 40, state="done")
    page = console.get("/admin/privacy")
    assert page.status_code == 200
    open_part = page.text.split("Recently closed")[0]
    order = [int(i) for i in re.findall(r'<tr class="privacy-request[^"]*" data-id="(\d+)"', open_part)]
    mine = [i for i in order if i in (fresh, overdue, nearly, closed)]
    assert mine == [overdue, nearly, fresh]
    flagged = [int(i) for i in re.findall(r'<tr class="privacy-request overdue" data-id="(\d+)"', open_part)]
    assert overdue in flagged and nearly not in flagged and fresh not in flagged
    assert "Overdue" in open_part
    # The admin console links the queue; a workspace's people cannot open it.
    assert 'href="/admin/privacy"' in console.get("/admin").text


def test_closing_needs_an_outcome_and_hostile_input_changes_nothing(platform, live_server, tenant, console):
    request_id = queue_request(platform, tenant, "rectification", 3)

    def state():
        return rows(platform, "SELECT state, outcome FROM public.privacy_request WHERE id = %s", (request_id,))[0]

    r = post_form(console, f"/admin/privacy/{request_id}", {"state": "done", "outcome": "  "})
    assert r.status_code == 422 and "at least 10 characters" in r.text and state() == ("open", "")
    r = post_form(console, f"/admin/privacy/{request_id}", {"state": "done", "outcome": "x" * 4001})
    assert r.status_code == 422 and "under 4,000 characters" in r.text and state() == ("open", "")
    r = post_form(console, f"/admin/privacy/{request_id}", {"state": "cancelled", "outcome": "x" * 20})
    assert r.status_code == 422 and state() == ("open", "")
    r = console.post(f"/admin/privacy/{request_id}", data={"state": "done", "outcome": "Done without a token."})
    assert r.status_code == 403 and state() == ("open", "")
    r = post_form(console, "/admin/privacy/999999999999", {"state": "done", "outcome": "Nothing to close here."})
    assert r.status_code == 404
    # Not for a workspace's people, nor for strangers.
    owner = sign_in(live_server, tenant.slug, owner_email(tenant))
    assert owner.get("/admin/privacy").status_code == 404
    stranger = client(live_server, None)
    assert stranger.get("/admin/privacy").status_code == 302
    # The outcome is shown escaped.
    r = post_form(console, f"/admin/privacy/{request_id}",
                  {"state": "refused", "outcome": "<script>alert(1)</script> not ours to change"})
    assert r.status_code == 303 and state()[0] == "refused"
    page = console.get("/admin/privacy").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # Its requester (the workspace's owner, for a request about the workspace) was told.
    assert len(mails_to(platform, owner_email(tenant), f"Your privacy request #{request_id} is refused")) == 1


def contact_rows(platform, address):
    return rows(platform, "SELECT id, tenant_id, kind, subject, state, details->>'message' FROM public.privacy_request "
                          "WHERE subject = %s ORDER BY id", (address.lower(),))


@pytest.mark.parametrize("where", ["base domain", "workspace"])
def test_the_contact_form_records_a_request_and_mails_the_privacy_address(platform, live_server, tenant, where):
    slug = tenant.slug if where == "workspace" else None
    c = client(live_server, slug, fresh_ip())
    fetch_xsrf(c, "/privacy")
    address = f"Writer-{secrets.token_hex(3)}@example.org"
    message = "Which data do you hold about me? I used your service in 2025."
    r = post_form(c, "/privacy/contact", {"email": address, "message": message})
    assert r.status_code == 303 and r.headers["Location"] == "/privacy#contact"
    [(request_id, tenant_id, kind, subject, state, saved)] = contact_rows(platform, address)
    assert (kind, subject, state, saved) == ("contact", address.lower(), "open", message)
    assert tenant_id == (tenant.id if slug else None)
    [mail] = mails_to(platform, platform.settings.privacy_address, f"Privacy request #{request_id}")
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert message in body and address in body
    assert len(audit_rows(platform, action="privacy.contact_received")) >= 1
    thanks = c.get("/privacy")
    assert f"request #{request_id}" in thanks.text


def test_the_contact_form_refuses_hostile_input_and_floods(platform, live_server, console):
    ip = fresh_ip()
    c = client(live_server, None, ip)
    fetch_xsrf(c, "/privacy")
    address = f"hostile-{secrets.token_hex(3)}@example.org"
    r = c.post("/privacy/contact", data={"email": address, "message": "No XSRF token in this form."})
    assert r.status_code == 403 and contact_rows(platform, address) == []
    r = post_form(c, "/privacy/contact", {"email": "not an address", "message": "A long enough message."})
    assert r.status_code == 422 and "e-mail address" in r.text
    r = post_form(c, "/privacy/contact", {"email": address, "message": "x" * 5001})
    assert r.status_code == 422 and "under 5,000 characters" in r.text and contact_rows(platform, address) == []
    r = post_form(c, "/privacy/contact", {"email": address, "message": "short"})
    assert r.status_code == 422 and contact_rows(platform, address) == []
    r = post_form(c, "/privacy/contact", {"email": f"{address}\r\nBcc: victim@example.org", "message": "Header?" * 3})
    assert r.status_code == 422
    # HTML in a message is shown escaped, in the refused form and in the admin queue.
    script = "<script>alert('x')</script> please delete my data"
    r = post_form(c, "/privacy/contact", {"email": "nope", "message": script})
    assert r.status_code == 422 and "<script>alert" not in r.text and "&lt;script&gt;alert" in r.text
    assert post_form(c, "/privacy/contact", {"email": address, "message": script}).status_code == 303
    assert "<script>alert('x')" not in console.get("/admin/privacy").text
    # A few messages per client address and hour; then a clear refusal and nothing recorded.
    for i in range(4):
        assert post_form(c, "/privacy/contact", {"email": address, "message": f"Message number {i} of mine."}
                         ).status_code == 303
    r = post_form(c, "/privacy/contact", {"email": address, "message": "One message too many."})
    assert r.status_code == 429 and "Too many messages" in r.text
    assert len(contact_rows(platform, address)) == 5


def test_the_workspace_sees_its_requests_on_the_privacy_page_and_through_the_api(
        platform, live_server, tenant, member):
    other = add_user(platform, tenant, f"other-{secrets.token_hex(3)}@{tenant.slug}.example", PASSWORD)
    mine = sign_in(live_server, tenant.slug, member["email"])
    assert object_to(mine, "marketing").status_code == 303
    workspace_request = queue_request(platform, tenant, "erasure", 2)
    others_request = queue_request(platform, tenant, "rectification", 2, subject=f"user:{other}")

    own_page = mine.get("/account/privacy").text
    section = own_page.split('id="requests"')[1]
    assert 'data-kind="objection"' in section
    assert f'data-id="{others_request}"' not in section and f'data-id="{workspace_request}"' not in section

    owner_page = sign_in(live_server, tenant.slug, owner_email(tenant)).get("/account/privacy").text
    section = owner_page.split('id="requests"')[1]
    assert f'data-id="{others_request}"' in section and f'data-id="{workspace_request}"' in section

    with tenant_transaction(tenant.ref):
        _row, manage = create_api_token(tenant.slug, "privacy", ["privacy:manage"], 1)
        _row, other_scope = create_api_token(tenant.slug, "tokens", ["messages:read"], 1)
    api = client(live_server, tenant.slug)
    r = api.get("/api/v1/privacy/requests", headers=bearer(manage))
    assert r.status_code == 200
    found = {item["id"]: item for item in r.json()["requests"]}
    assert {workspace_request, others_request} <= set(found)
    assert found[workspace_request]["state"] == "open" and found[workspace_request]["kind"] == "erasure"
    assert set(found[workspace_request]) == {"id", "kind", "subject", "requested_by", "self_service", "state",
                                             "outcome", "created_at", "due_at", "completed_at"}
    refused = api.get("/api/v1/privacy/requests", headers=bearer(other_scope))
    assert refused.status_code == 403 and refused.headers["Content-Type"].startswith("application/problem+json")


def test_hostile_restriction_input_is_refused_or_escaped(platform, live_server, tenant, member):
    c = sign_in(live_server, tenant.slug, member["email"])
    r = object_to(c, "restriction", reason="x" * 2001)
    assert r.status_code == 422 and "under 2,000 characters" in r.text
    r = object_to(c, "everything")
    assert r.status_code == 422
    r = c.post("/account/privacy", data={"section": "objection", "purpose": "marketing", "action": "object"})
    assert r.status_code == 403
    assert in_force(platform, tenant, member["actor"]) == []
    reason = "<img src=x onerror=alert(1)> my address is wrong"
    assert object_to(c, "restriction", reason=reason).status_code == 303
    page = c.get("/account/privacy").text
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt; my address is wrong" in page


def test_marketing_mail_follows_the_objecting_persons_current_address(platform, live_server, tenant, member):
    c = sign_in(live_server, tenant.slug, member["email"])
    assert object_to(c, "marketing").status_code == 303
    new_address = f"renamed-{secrets.token_hex(3)}@{tenant.slug}.example"
    with tenant_transaction(tenant.ref):  # the address changed (as the confirmed e-mail change does)
        User.update(email=new_address).where(User.id == member["id"]).execute()
    assert c.get("/account/privacy").status_code == 200
    assert marketing_mail(platform, new_address) == []
    assert len(marketing_mail(platform, member["email"])) == 1


def test_every_member_finds_the_privacy_page_in_the_menu(platform, live_server, tenant, member):
    """The rights are self-service: the dashboard's menu leads each member to them."""
    c = sign_in(live_server, tenant.slug, member["email"], PASSWORD, ip=fresh_ip())
    page = c.get("/")
    assert page.status_code == 200
    assert re.search(r'<a[^>]+href="/account/privacy"', page.text), page.text[:2000]
    assert c.get("/account/privacy").status_code == 200
