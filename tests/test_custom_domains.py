"""Custom domains (issue 18, item 4): a workspace proves a host name of its own with a DNS TXT
record, then that host opens the workspace like its subdomain; the TLS ``ask`` endpoint answers
the proxy's on-demand certificates. DNS is a local stand-in name server on loopback
(tests/support/dns_standin.py) asked by the production resolver."""

from __future__ import annotations

import dataclasses
import re
import secrets
import time

import pytest

from core.db import app_db, connection
from core.web.hosts import HOST_CHANNEL
from tests.support.dns_standin import LocalDnsStandIn
from tests.support.identity import Client, fetch_xsrf, owner_email, post_form, sign_in


@pytest.fixture(scope="module")
def dns(live_server):
    standin = LocalDnsStandIn().start()
    platform = live_server.platform
    configured = platform.settings
    platform.settings = dataclasses.replace(configured, dns_nameservers=standin.address)
    try:
        yield standin
    finally:
        platform.settings = configured
        standin.stop()
    assert standin.bad_requests == []  # every question the platform asked had the shape it must


def at_host(live_server, host: str) -> Client:
    """A client whose requests carry ``Host: <host>`` (a workspace's own host name)."""
    c = Client(live_server, None)
    c.headers["Host"] = f"{host}:{live_server.port}"
    return c


def ask(live_server, host: str) -> int:
    c = Client(live_server, None)
    c.headers["Host"] = f"127.0.0.1:{live_server.port}"  # the proxy asks by address
    return c.get("/tls/ask", params={"domain": host}).status_code


def add(owner, host: str):
    return post_form(owner, "/brand/domains", {"action": "add", "host": host})


def check(owner, host: str):
    return post_form(owner, "/brand/domains", {"action": "check", "host": host})


def record_of(owner, host: str) -> tuple[str, str]:
    page = owner.get("/brand").text
    found = re.search(r'<code class="txt-record">(_smsgw-challenge\.' + re.escape(host) +
                      r')</code><br><code class="txt-value">(smsgw-verify=[A-Za-z0-9_-]+)</code>', page)
    assert found, page[-3000:]
    return found.group(1), found.group(2)


def claim(client, dns, label: str) -> tuple[str, str, str]:
    """Add a fresh host to the workspace of ``client`` and publish its record: ``(host, name, value)``."""
    host = f"sms.{label}-{secrets.token_hex(3)}.test"
    assert add(client, host).status_code == 303
    name, value = record_of(client, host)
    dns.publish(name, value)
    return host, name, value


@pytest.fixture
def owner(live_server, make_tenant, dns):
    tenant = make_tenant("dom")
    client = sign_in(live_server, tenant.slug, owner_email(tenant))
    fetch_xsrf(client, "/brand")
    return tenant, client


def test_a_proved_host_opens_the_workspace_with_sign_in_cookies_and_xsrf(live_server, owner, dns):
    tenant, client = owner
    host = f"sms.acme-{secrets.token_hex(3)}.test"
    assert add(client, host).status_code == 303
    name, value = record_of(client, host)
    visitor = at_host(live_server, host)
    assert visitor.get("/login").status_code == 400  # not proved yet: not ours to serve
    assert ask(live_server, host) == 404

    r = check(client, host)  # no record published yet
    assert r.status_code == 422 and "does not hold" in r.text and value in r.text
    dns.publish(name, "v=spf1 -all", "smsgw-verify=someone-elses-token")
    assert check(client, host).status_code == 422
    dns.publish(name, "v=spf1 -all", value)
    r = check(client, host)
    assert r.status_code == 303, r.text[-2000:]
    assert name + "." in dns.questions

    login = visitor.get("/login")
    assert login.status_code == 200 and tenant.name in login.text
    fetch_xsrf(visitor)
    r = post_form(visitor, "/login", {"email": owner_email(tenant), "password": "a long enough password"})
    assert r.status_code == 302 and visitor.cookies.get("smsgw_session")
    home = visitor.get("/")
    assert home.status_code == 200 and tenant.name in home.text
    r = visitor.post("/brand", data={"product_name": "No token"})  # the XSRF check holds on this host too
    assert r.status_code == 403
    r = post_form(visitor, "/brand", {"product_name": "Acme on its own host", "theme": ""})
    assert r.status_code == 303
    assert "Acme on its own host" in visitor.get("/").text
    assert ask(live_server, host) == 200

    r = post_form(client, "/brand/domains", {"action": "remove", "host": host})
    assert r.status_code == 303
    assert visitor.get("/login").status_code == 400 and ask(live_server, host) == 404


def test_a_host_another_workspace_proved_cannot_be_taken(live_server, make_tenant, owner, dns):
    tenant, client = owner
    host = f"sms.shared-{secrets.token_hex(3)}.test"
    assert add(client, host).status_code == 303
    name, value = record_of(client, host)
    other = make_tenant("dom2")
    rival = sign_in(live_server, other.slug, owner_email(other))
    fetch_xsrf(rival, "/brand")
    assert add(rival, host).status_code == 303  # a claim blocks nobody
    rival_name, rival_value = record_of(rival, host)
    assert rival_value != value
    dns.publish(name, value)
    assert check(client, host).status_code == 303
    dns.publish(name, value, rival_value)  # even with its own token published, the rival is too late
    r = check(rival, host)
    assert r.status_code == 422 and "already in use by another workspace" in r.text
    assert tenant.name in at_host(live_server, host).get("/login").text


@pytest.mark.parametrize("host, says", [
    ("localhost", "such as sms.example.com"), ("nodots", "such as sms.example.com"),
    ("1.2.3.4", "such as sms.example.com"), ("exa mple.com", "such as sms.example.com"),
    ("a" * 64 + ".example.com", "such as sms.example.com"), ("x.example.com/../admin", "such as sms.example.com"),
    ("evil.localhost", "already one of the platform"), ("sms.exa\x00mple.com", "such as sms.example.com"),
    ("<script>.example.com", "such as sms.example.com"),
])
def test_bad_host_names_are_refused_with_a_reason(owner, host, says):
    tenant, client = owner
    r = add(client, host)
    assert r.status_code == 422 and says in r.text
    with connection():
        assert app_db.execute_sql("SELECT count(*) FROM public.custom_domain WHERE tenant_id = %s",
                                  (tenant.id,)).fetchone()[0] == 0


def test_a_dns_outage_is_said_and_nothing_is_verified(live_server, owner, dns):
    tenant, client = owner
    host, _name, _value = claim(client, dns, "quiet")
    dns.silent = True
    try:
        r = check(client, host)
    finally:
        dns.silent = False
    assert r.status_code == 422 and "DNS did not answer" in r.text
    assert at_host(live_server, host).get("/login").status_code == 400


def test_the_ask_endpoint_answers_only_for_verified_hosts_of_active_workspaces(live_server, owner, dns):
    tenant, client = owner
    host, _name, _value = claim(client, dns, "ask")
    assert check(client, host).status_code == 303
    assert ask(live_server, host) == 200 and ask(live_server, host.upper() + ".") == 200
    for other in ("", "unknown.example.com", f"{tenant.slug}.localhost", "localhost", "x" * 300, "'; DROP TABLE x"):
        assert ask(live_server, other) == 404, other
    live_server.platform.tenants.suspend(tenant.slug)
    assert ask(live_server, host) == 404


def test_a_host_change_reaches_other_processes_through_notify(live_server):
    """Another process's host cache forgets a host when it is announced on the channel."""
    host = f"sms.stale-{secrets.token_hex(3)}.test"
    cache = live_server.platform.host_cache
    cache._entries[host] = (time.monotonic() + 3600, "someone")
    with connection():
        app_db.execute_sql("SELECT pg_notify(%s, %s)", (HOST_CHANNEL, host))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and host in cache._entries:
        time.sleep(0.05)
    assert cache.peek(host) == (False, None)
