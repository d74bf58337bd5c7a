""""Find my workspace" on the landing page (issue 22, item 5): an email address gets the sign-in links
of the workspaces it belongs to; the page answers the same whether or not the address is known;
requests are throttled; an address that left a workspace is no longer mailed its link."""

from __future__ import annotations

import secrets
import time

from core.db import tenant_transaction
from core.users import User
from tests.support.identity import add_user, client, fetch_xsrf, fresh_ip, mails_to, post_form, sign_in, wait_for_mail

SENT = "If this address belongs to a workspace, we have sent it an email with the sign-in links."


def find(live_server, email_address, ip=None):
    c = client(live_server, None, ip or fresh_ip())
    fetch_xsrf(c, "/")
    return post_form(c, "/find-workspace", {"email": email_address})


def body(msg) -> str:
    return msg.get_body(preferencelist=("plain",)).get_content()


def test_a_known_address_gets_the_links_of_its_workspaces_and_an_unknown_one_the_same_page(
        platform, live_server, make_tenant):
    person = f"pat-{secrets.token_hex(4)}@example.com"
    one = make_tenant("fwa", owner_email=person, name="Alpha Shop")
    two = make_tenant("fwb", name="Beta Deliveries")
    add_user(platform, two, person, password="a long enough password")
    make_tenant("fwc", name="Gamma Not Mine")
    sign_in(live_server, one.slug, person)  # a sign-in (or sign-up, or an accepted invitation) is remembered
    sign_in(live_server, two.slug, person)

    known = find(live_server, person.upper())  # addresses match whatever their case
    stranger = f"nobody-{secrets.token_hex(4)}@example.com"
    unknown = find(live_server, stranger)
    assert known.status_code == unknown.status_code == 200
    assert SENT in known.text and SENT in unknown.text
    mails = wait_for_mail(platform, person.upper(), "Your workspaces")
    assert len(mails) == 1
    text = body(mails[0])
    assert f"Alpha Shop: {platform.settings.public_url(one.slug)}/login" in text
    assert f"Beta Deliveries: {platform.settings.public_url(two.slug)}/login" in text
    assert "Gamma" not in text
    time.sleep(0.3)
    assert mails_to(platform, stranger) == []


def test_an_address_that_left_a_workspace_is_not_sent_its_link(platform, live_server, make_tenant):
    person = f"lee-{secrets.token_hex(4)}@example.com"
    kept = make_tenant("fwk", owner_email=person, name="Kept Ltd")
    left = make_tenant("fwl", name="Left Ltd")
    member_id = add_user(platform, left, person, password="a long enough password")
    sign_in(live_server, kept.slug, person)
    sign_in(live_server, left.slug, person)
    with tenant_transaction(left.ref):
        User.update(is_active=False).where(User.id == member_id).execute()

    assert find(live_server, person).status_code == 200
    text = body(wait_for_mail(platform, person, "Your workspaces")[0])
    assert "Kept Ltd" in text and "Left Ltd" not in text


def test_requests_are_throttled_per_address(platform, live_server, make_tenant):
    person = f"max-{secrets.token_hex(4)}@example.com"
    tenant = make_tenant("fwt", owner_email=person)
    sign_in(live_server, tenant.slug, person)
    for _ in range(3):  # from three different networks: the address's own budget
        assert find(live_server, person).status_code == 200
    refused = find(live_server, person)
    assert refused.status_code == 429 and "Too many requests" in refused.text
    assert len(wait_for_mail(platform, person, "Your workspaces", count=3)) == 3
    time.sleep(0.3)
    assert len(mails_to(platform, person, "Your workspaces")) == 3


def test_a_malformed_address_is_a_message_on_the_page(live_server):
    r = find(live_server, "not an address")
    assert r.status_code == 422 and "Enter the email address you sign in with." in r.text
    assert 'aria-invalid="true"' in r.text
