"""Changing the sign-in email: the current password is needed, the new address must confirm
itself by a link before it becomes the login, and the old address is told, with a way to undo.

Everything goes through the live server over HTTP; mail is read from the file backend's outbox and
the database with the platform's own models (users) or the administrative connection (audit).
"""

from __future__ import annotations

import secrets

import pytest

from core.db import tenant_transaction
from core.users import User
from tests.support.identity import (OWNER_PASSWORD, add_user, api_sign_in, audit_rows, client, fetch_xsrf, fresh_ip,
                                    link_token, mails_to, owner_email, post_form, sign_in)

CONFIRM_SUBJECT = "Confirm your new email address"
NOTICE_SUBJECT = "Your sign-in email is being changed"


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("mail")


def new_address(tenant) -> str:
    return f"new-{secrets.token_hex(3)}@{tenant.slug}.example"


def stored_user(tenant, user_id=1) -> User:
    with tenant_transaction(tenant.ref):
        return User.get_by_id(user_id)


def ask_change(c, email_address, password=OWNER_PASSWORD, name="Olga Owner"):
    data = {"action": "profile", "name": name, "email": email_address, "phone": "", "job_title": ""}
    if password is not None:
        data["current_password"] = password
    return post_form(c, "/account", data)


def can_sign_in(live_server, tenant, email_address, password=OWNER_PASSWORD) -> bool:
    c = client(live_server, tenant.slug, fresh_ip())
    r = c.post("/api/v1/auth/token", json={"email": email_address, "password": password})
    return r.status_code == 200


def confirm(live_server, tenant, token):
    """Open the confirmation link in a browser without a session, and press its button."""
    c = client(live_server, tenant.slug, fresh_ip())
    page = c.get(f"/confirm-email?token={token}")
    if page.status_code != 200:
        return page
    return post_form(c, "/confirm-email", {"token": token})


def undo(live_server, tenant, token):
    c = client(live_server, tenant.slug, fresh_ip())
    page = c.get(f"/undo-email-change?token={token}")
    if page.status_code != 200:
        return page
    return post_form(c, "/undo-email-change", {"token": token})


def requested(live_server, platform, tenant, new):
    """Sign in as the owner, ask for ``new``; the confirmation and undo links from the two mails."""
    c = sign_in(live_server, tenant.slug, owner_email(tenant), ip=fresh_ip())
    r = ask_change(c, new)
    assert r.status_code == 302, r.text[:500]
    [to_new] = mails_to(platform, new, CONFIRM_SUBJECT)
    [to_old] = mails_to(platform, owner_email(tenant), NOTICE_SUBJECT)
    return c, link_token(to_new, "/confirm-email"), link_token(to_old, "/undo-email-change")


@pytest.mark.parametrize("password", [None, "", "not the password"])
def test_the_email_does_not_change_without_the_current_password(platform, live_server, tenant, password):
    c = sign_in(live_server, tenant.slug, owner_email(tenant), ip=fresh_ip())
    new = new_address(tenant)
    r = ask_change(c, new, password, name="Changed Name")
    assert r.status_code == 422
    assert "Enter your current password to change your email." in r.text
    user = stored_user(tenant)
    assert user.email == owner_email(tenant)
    assert user.name != "Changed Name"  # nothing of the refused form was saved
    assert mails_to(platform, new) == [] and mails_to(platform, owner_email(tenant), NOTICE_SUBJECT) == []
    assert audit_rows(platform, tenant.id, "email.change_requested") == []


def test_other_details_save_without_a_password(live_server, tenant):
    c = sign_in(live_server, tenant.slug, owner_email(tenant), ip=fresh_ip())
    r = ask_change(c, owner_email(tenant).upper(), None, name="Olga Owner")
    assert r.status_code == 302
    assert stored_user(tenant).name == "Olga Owner"
    assert stored_user(tenant).email == owner_email(tenant)


def test_the_new_email_is_the_login_only_once_confirmed_and_the_old_one_is_told(platform, live_server, tenant):
    old, new = owner_email(tenant), new_address(tenant)
    c, confirm_token, undo_token = requested(live_server, platform, tenant, new)

    # Pending: the old address is still the login, and the account page says what is waiting.
    assert stored_user(tenant).email == old
    assert can_sign_in(live_server, tenant, old) and not can_sign_in(live_server, tenant, new)
    page = c.get("/account")
    assert "Waiting for confirmation: we sent a link to " + new in page.text
    # The notice names the new address, and nothing else the requester typed (here: the name), nor
    # the workspace's chosen name: the workspace is named by its address.
    notice = mails_to(platform, old, NOTICE_SUBJECT)[0].get_body(preferencelist=("plain",)).get_content()
    assert new in notice and "Olga" not in notice and tenant.name not in notice
    assert platform.settings.public_url(tenant.slug) in notice
    assert [r["details"]["to"] for r in audit_rows(platform, tenant.id, "email.change_requested")] == [new]

    # Opening the link shows a button; only pressing it changes anything (mail scanners open links).
    anonymous = client(live_server, tenant.slug, fresh_ip())
    assert anonymous.get(f"/confirm-email?token={confirm_token}").status_code == 200
    assert stored_user(tenant).email == old
    r = confirm(live_server, tenant, confirm_token)
    assert r.status_code == 200 and f"You now sign in with {new}." in r.text
    user = stored_user(tenant)
    assert user.email == new and user.email_verified_at is not None
    assert can_sign_in(live_server, tenant, new) and not can_sign_in(live_server, tenant, old)
    assert "Waiting for confirmation" not in c.get("/account").text
    [changed] = audit_rows(platform, tenant.id, "email.changed")
    assert changed["details"]["from"] == old and changed["details"]["to"] == new
    assert changed["actor"] == "user:1"

    # The link works once.
    assert confirm(live_server, tenant, confirm_token).status_code == 400


def test_undo_puts_the_old_email_back_and_signs_out_everywhere(platform, live_server, tenant):
    old, new = owner_email(tenant), new_address(tenant)
    c, confirm_token, undo_token = requested(live_server, platform, tenant, new)
    assert confirm(live_server, tenant, confirm_token).status_code == 200
    tokens = api_sign_in(live_server, tenant.slug, new, ip=fresh_ip())

    r = undo(live_server, tenant, undo_token)
    assert r.status_code == 200, r.text[:500]
    assert f"You sign in with {old} again" in r.text and 'href="/forgot-password"' in r.text
    assert stored_user(tenant).email == old
    assert can_sign_in(live_server, tenant, old) and not can_sign_in(live_server, tenant, new)
    # Every session and refresh token of the account is gone.
    assert c.get("/account").status_code == 302
    refreshed = client(live_server, tenant.slug, fresh_ip()).post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401
    [undone] = audit_rows(platform, tenant.id, "email.change_undone")
    assert undone["details"]["to"] == old and undone["details"]["undone"] == new
    assert undo(live_server, tenant, undo_token).status_code == 400  # once


def test_undo_before_confirmation_kills_the_confirmation_link(platform, live_server, tenant):
    new = new_address(tenant)
    _, confirm_token, undo_token = requested(live_server, platform, tenant, new)
    assert undo(live_server, tenant, undo_token).status_code == 200
    r = confirm(live_server, tenant, confirm_token)
    assert r.status_code == 400 and "cancelled or replaced" in r.text
    assert stored_user(tenant).email == owner_email(tenant)


def test_cancel_or_a_newer_request_kills_the_older_link(platform, live_server, tenant):
    first, second = new_address(tenant), new_address(tenant)
    c, first_token, _ = requested(live_server, platform, tenant, first)
    assert ask_change(c, second).status_code == 302
    second_token = link_token(mails_to(platform, second, CONFIRM_SUBJECT)[0], "/confirm-email")
    assert confirm(live_server, tenant, first_token).status_code == 400
    r = post_form(c, "/account", {"action": "cancel-email"})
    assert r.status_code == 302
    assert "Waiting for confirmation" not in c.get("/account").text
    assert confirm(live_server, tenant, second_token).status_code == 400
    assert stored_user(tenant).email == owner_email(tenant)
    assert [r["details"]["to"] for r in audit_rows(platform, tenant.id, "email.change_cancelled")] == [second]


def test_the_new_email_must_still_be_free_when_confirmed(platform, live_server, tenant):
    new = new_address(tenant)
    _, confirm_token, _ = requested(live_server, platform, tenant, new)
    add_user(platform, tenant, new.upper())  # someone else took it meanwhile (case does not matter)
    r = confirm(live_server, tenant, confirm_token)
    assert r.status_code == 400 and "now uses that email" in r.text
    assert stored_user(tenant).email == owner_email(tenant)


def test_an_email_in_use_is_refused_at_once(platform, live_server, tenant):
    taken = new_address(tenant)
    add_user(platform, tenant, taken)
    c = sign_in(live_server, tenant.slug, owner_email(tenant), ip=fresh_ip())
    r = ask_change(c, taken)
    assert r.status_code == 422 and "Another member of this workspace uses that email." in r.text
    assert mails_to(platform, taken) == []


def test_a_password_change_cancels_a_pending_change(platform, live_server, tenant):
    new = new_address(tenant)
    c, confirm_token, _ = requested(live_server, platform, tenant, new)
    r = post_form(c, "/account", {"action": "password", "current_password": OWNER_PASSWORD,
                                  "new_password": "another long password"})
    assert r.status_code == 302
    r = confirm(live_server, tenant, confirm_token)
    assert r.status_code == 400 and "password changed" in r.text
    assert stored_user(tenant).email == owner_email(tenant)


def test_links_of_another_workspace_do_not_work_here(platform, live_server, tenant, make_tenant):
    other = make_tenant("mailx")
    _, confirm_token, undo_token = requested(live_server, platform, tenant, new_address(tenant))
    c = client(live_server, other.slug, fresh_ip())
    assert c.get(f"/confirm-email?token={confirm_token}").status_code == 400
    fetch_xsrf(c)
    assert post_form(c, "/undo-email-change", {"token": undo_token}).status_code == 400
