"""A reseller's own host name (issue 18): added on its console's brand page, proved by the branding
addon's DNS TXT flow (the production resolver asking the local stand-in name server), then its
console and sign-up page answer at that host, routed by Host; the TLS ``ask`` endpoint allows it.
Unproved hosts, another reseller's pages at that host, and a host a workspace proved are refused."""

from __future__ import annotations

import re
import secrets

import pytest

from addons.resellers import hostnames, service, signup
from tests.support.identity import fetch_xsrf, post_form
from tests.support.resellers import PARTNER_PASSWORD, make_reseller, partner_email, partner_sign_in
from tests.test_custom_domains import ask, at_host, dns  # noqa: F401  (the stand-in name server fixture)


def add(console, reseller, host):
    fetch_xsrf(console, f"/{reseller.slug}/brand")
    return post_form(console, f"/{reseller.slug}/brand/hosts", {"action": "add", "host": host})


def check(console, reseller, host):
    return post_form(console, f"/{reseller.slug}/brand/hosts", {"action": "check", "host": host})


def record(console, reseller, host) -> tuple[str, str]:
    page = console.get(f"/{reseller.slug}/brand").text
    found = re.search(r'<code class="txt-record">(_smsgw-challenge\.' + re.escape(host) +
                      r')</code><br><code class="txt-value">(smsgw-verify=[A-Za-z0-9_-]+)</code>', page)
    assert found, page[-2000:]
    return found.group(1), found.group(2)


@pytest.fixture
def seller(platform, live_server, dns):  # noqa: F811
    reseller = make_reseller(platform, "rh")
    return reseller, partner_sign_in(live_server, reseller)


def test_a_proved_host_serves_the_reseller_s_console_and_sign_up_page(platform, live_server, dns, seller):  # noqa: F811
    reseller, console = seller
    host = f"partners.acme-{secrets.token_hex(3)}.test"
    assert add(console, reseller, host).status_code == 303
    # Not yet proved: nothing answers there, and the proxy gets no certificate.
    assert at_host(live_server, host).get(f"/{reseller.slug}/login").status_code == 400
    assert ask(live_server, host) == 404
    r = check(console, reseller, host)
    assert r.status_code == 422 and "does not hold" in r.text
    name, value = record(console, reseller, host)
    dns.publish(name, "smsgw-verify=someone-elses-token")
    assert check(console, reseller, host).status_code == 422
    dns.publish(name, value)
    assert check(console, reseller, host).status_code == 303
    assert ask(live_server, host) == 200
    # Its pages at its host: the sign-in form works there, the session is the console's.
    c = at_host(live_server, host)
    fetch_xsrf(c, f"/{reseller.slug}/login")
    r = post_form(c, f"/{reseller.slug}/login", {"email": partner_email(reseller), "password": PARTNER_PASSWORD})
    assert r.status_code == 302 and c.get(f"/{reseller.slug}").status_code == 200
    signup.save_settings(reseller, True, "")
    page = c.get(f"/{reseller.slug}/signup")
    assert page.status_code == 200 and f'action="/{reseller.slug}/signup"' in page.text
    # Another reseller's pages are not served at this host.
    other = make_reseller(platform, "ri")
    assert at_host(live_server, host).get(f"/{other.slug}/login").status_code == 400
    # A suspended reseller's host gets no certificate; removing the host ends its routing at once.
    service.set_status(reseller, True, "a reason long enough")
    assert ask(live_server, host) == 404
    service.set_status(reseller, False, "")
    console = partner_sign_in(live_server, reseller)  # a fresh session: the suspension ended the old one
    fetch_xsrf(console, f"/{reseller.slug}/brand")
    assert post_form(console, f"/{reseller.slug}/brand/hosts", {"action": "remove", "host": host}).status_code == 303
    assert at_host(live_server, host).get(f"/{reseller.slug}/login").status_code == 400 and ask(live_server, host) == 404


@pytest.mark.parametrize("host, says", [
    ("not a host", "Enter a host name"),
    ("partners.localhost", "platform's own addresses"),
    ("evil.test/<script>", "Enter a host name"),
    ("x" * 300 + ".test", "Enter a host name"),
])
def test_bad_host_names_are_refused(live_server, seller, host, says):
    reseller, console = seller
    r = add(console, reseller, host)
    assert r.status_code == 422 and says in r.text.replace("&#39;", "'") and hostnames.of_reseller(reseller) == []


def test_a_host_another_reseller_or_a_workspace_proved_is_not_taken(platform, live_server, dns, seller, make_tenant):  # noqa: F811
    reseller, console = seller
    other = make_reseller(platform, "rj")
    theirs = partner_sign_in(live_server, other)
    host = f"sms.shared-{secrets.token_hex(3)}.test"
    for c, r in ((console, reseller), (theirs, other)):
        assert add(c, r, host).status_code == 303
    dns.publish(*record(console, reseller, host))
    assert check(console, reseller, host).status_code == 303
    dns.publish(*record(theirs, other, host))
    r = check(theirs, other, host)
    assert r.status_code == 422 and "already in use" in r.text
    assert not hostnames.serves(host, other)
    # Another reseller cannot add, check or remove hosts through the first's console.
    fetch_xsrf(theirs, f"/{other.slug}/brand")
    r = post_form(theirs, f"/{reseller.slug}/brand/hosts", {"action": "remove", "host": host})
    assert r.status_code in (302, 401, 403, 404) and hostnames.serves(host, reseller)
    # A workspace's proved host is not a reseller's to take.
    from addons.branding import domains

    tenant = make_tenant("rhw")
    ws_host = f"sms.ws-{secrets.token_hex(3)}.test"
    added = domains.add(tenant.id, ws_host, platform.settings.base_domain)
    dns.publish(added.record_name, added.record_value)
    domains.verify(tenant.id, ws_host, domains.resolver_from(platform.settings))
    assert add(console, reseller, ws_host).status_code == 303
    dns.publish(*record(console, reseller, ws_host))
    r = check(console, reseller, ws_host)
    assert r.status_code == 422 and "already in use" in r.text and not hostnames.serves(ws_host, reseller)
    # The workspace keeps its host: its pages answer there, not the console's.
    assert at_host(live_server, ws_host).get("/login").status_code == 200
    page = at_host(live_server, ws_host).get(f"/{reseller.slug}/login")
    assert page.status_code == 404 and 'name="password"' not in page.text  # the workspace's 404, no console
