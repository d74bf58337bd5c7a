"""What the platform exposes by default: the address it listens on, the hosts it answers,
HTTPS-only cookies and HSTS under ``SMSGW_HTTPS=1``, and its files under the data dir.

* ``smsgw serve`` listens on 127.0.0.1 unless ``--host`` or ``SMSGW_BIND`` says otherwise.
* A request whose Host is neither the base domain nor ``<slug>.<base domain>`` gets a 400
  ``unknown-host`` problem, not the main site; ``/health/*`` answer on any host (load balancers
  probe by address).
* With ``SMSGW_HTTPS=1`` every cookie is ``Secure`` and every answer carries HSTS, whatever the
  proxy's ``X-Forwarded-Proto`` says or leaves out.
* The embedded PostgreSQL's log (``pg.log``) is readable by this account only, like the secrets.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path

import pytest
import requests

from core.config import Settings
from core.embedded_pg import EmbeddedPostgres
from tests.support.devices import device_client, fetch, raw_device
from tests.support.identity import OWNER_PASSWORD, owner_email
from tests.support.phones import api_client
from tests.support.problems import problem
from tests.support.serve import start_serve, stop_serve



def set_cookies(r) -> dict[str, str]:
    return {raw.split("=", 1)[0].strip(): raw for raw in r.raw.headers.getlist("Set-Cookie")}


# -- the listening address --------------------------------------------------------------------


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket listening on ``port`` (read from /proc/net/tcp and tcp6)."""
    found = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, state = fields[1], fields[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                if len(address) == 8:
                    found.add(socket.inet_ntop(socket.AF_INET, bytes.fromhex(address)[::-1]))
                else:  # IPv6: four 32-bit words, each in host (little-endian) order
                    raw = b"".join(bytes.fromhex(address[i:i + 8])[::-1] for i in range(0, 32, 8))
                    found.add(socket.inet_ntop(socket.AF_INET6, raw))
    return found


def serve(cli_env, *args, **env):
    """``smsgw serve`` on a free port against this session's database; (process, port, output)."""
    return start_serve(dict(cli_env, **env), *args, timeout=90)


def stop(proc):
    stop_serve(proc)


def test_serve_listens_on_loopback_unless_told_otherwise(cli_env):
    cli_env = {k: v for k, v in cli_env.items() if k != "SMSGW_BIND"}
    proc, port, out = serve(cli_env)
    try:
        assert listening_addresses(port) == {"127.0.0.1"}
        assert f"Listening on: 127.0.0.1:{port} (this machine only; --host or SMSGW_BIND to change)" in out
        r = requests.get(f"http://127.0.0.1:{port}/health/live", timeout=10)
        assert r.status_code == 200
    finally:
        stop(proc)

    proc, port, out = serve(cli_env, "--host", "0.0.0.0")
    try:
        assert listening_addresses(port) == {"0.0.0.0"}
        assert f"Listening on: 0.0.0.0:{port}\n" in out
    finally:
        stop(proc)


def test_the_bind_address_comes_from_smsgw_bind_and_https_from_smsgw_https():
    assert Settings.from_env({}).bind == "127.0.0.1"
    assert Settings.from_env({"SMSGW_BIND": "::"}).bind == "::"
    assert Settings.from_env({"SMSGW_BIND": " "}).bind == "127.0.0.1"
    assert Settings.from_env({"SMSGW_HTTPS": "1"}).public_scheme == "https"
    assert Settings.from_env({"SMSGW_HTTPS": "1"}).https and not Settings.from_env({}).https


# -- hosts --------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "192.0.2.7", "[::1]", "evil.example", "localhost.evil.example",
                                  "notlocalhost", "localhost-evil"])
def test_a_host_that_is_neither_the_platform_nor_a_workspace_is_refused(live_server, make_tenant, host):
    t = make_tenant("hosts")
    token = api_client(live_server, t.slug).headers["Authorization"]
    for path, headers in (("/api/v1/messages", {"Authorization": token}), ("/api/v1/messages", {}),
                          ("/.well-known/jwks.json", {}), ("/api/openapi.json", {}),
                          (f"/api/device/v1/messages?wait=30", {"Authorization": token})):
        r = requests.get(live_server.url + path, headers={"Host": f"{host}:{live_server.port}", **headers},
                         timeout=10, allow_redirects=False)
        body = problem(r, 400, "unknown-host")
        assert "answers only at localhost" in body["detail"], body
    # A browser gets a readable page, not the platform's pages.
    for path in ("/", "/login", "/signup", "/admin/login", "/no-such-page"):
        r = requests.get(live_server.url + path, headers={"Host": host, "Accept": "text/html"}, timeout=10,
                         allow_redirects=False)
        assert r.status_code == 400, (path, r.status_code)
        assert r.headers["Content-Type"].startswith("text/html")
        assert "answers only at localhost" in r.text and 'name="password"' not in r.text, r.text[:500]


def test_the_platform_its_workspaces_and_health_checks_still_answer(live_server, make_tenant):
    t = make_tenant("hostok")
    for host in ("localhost", "LOCALHOST.", f"{t.slug}.localhost"):
        r = requests.get(live_server.url + "/login", headers={"Host": f"{host}:{live_server.port}"}, timeout=10,
                         allow_redirects=False)
        assert r.status_code in (200, 404), (host, r.status_code)  # the base domain has no /login of its own
        assert "unknown-host" not in r.text
    assert requests.get(live_server.url + "/", headers={"Host": "localhost"}, timeout=10).status_code == 200
    assert requests.get(live_server.url + "/", headers={"Host": f"{t.slug}.localhost"}, timeout=10).status_code == 200
    for host in ("127.0.0.1", "10.0.0.9:8888", "lb.internal"):
        for path in ("/health/live", "/health/ready"):
            r = requests.get(live_server.url + path, headers={"Host": host}, timeout=10)
            assert r.status_code == 200, (host, path, r.text[:200])


# -- SMSGW_HTTPS -------------------------------------------------------------------------------


@pytest.fixture
def https_server(platform):
    """A server whose platform says SMSGW_HTTPS=1 (TLS ends at a proxy in front)."""
    from tests.support.server import LiveServer

    configured = platform.settings
    platform.settings = dataclasses.replace(configured, public_scheme="https")  # what SMSGW_HTTPS=1 sets
    server = LiveServer(platform).start()
    try:
        yield server
    finally:
        server.stop()
        platform.settings = configured


@pytest.mark.parametrize("proto", [None, "http", "https"])
def test_with_smsgw_https_cookies_are_secure_and_hsts_is_sent_whatever_the_proxy_says(https_server, make_tenant,
                                                                                      proto):
    t = make_tenant("https")
    c = https_server.client(t.slug)
    if proto:
        c.headers["X-Forwarded-Proto"] = proto

    r = c.get("/login")
    assert r.status_code == 200
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    xsrf = set_cookies(r)["_xsrf"]
    assert "Secure" in xsrf
    token = xsrf.split("=", 1)[1].split(";", 1)[0]
    # A Secure cookie is not sent back over plain HTTP by requests: hand it over as a browser behind TLS would.
    r = c.post("/login", data={"email": owner_email(t), "password": OWNER_PASSWORD, "_xsrf": token},
               headers={"Cookie": f"_xsrf={token}"})
    assert r.status_code == 302, r.text[:300]
    cookies = set_cookies(r)
    assert cookies and "smsgw_session" in cookies
    for name, raw in cookies.items():
        assert "Secure" in raw, raw
    assert "Strict-Transport-Security" in r.headers

    # APIs, errors and a detached long poll's answer too.
    api = api_client(https_server, t.slug)
    if proto:
        api.headers["X-Forwarded-Proto"] = proto
    assert "Strict-Transport-Security" in api.get("/api/v1/messages").headers
    assert "Strict-Transport-Security" in api.get("/api/v1/nothing-here").headers
    _, device_token = raw_device(https_server, t.slug, api)
    dev = device_client(https_server, t.slug, device_token)
    if proto:
        dev.headers["X-Forwarded-Proto"] = proto
    r = fetch(dev, wait=1)
    assert r.status_code == 200 and "Strict-Transport-Security" in r.headers


def test_without_smsgw_https_plain_http_gets_no_hsts_nor_secure_cookies(live_server, make_tenant):
    """The counterpart: the flag, not chance, makes the difference above."""
    t = make_tenant("plain")
    c = live_server.client(t.slug)
    c.headers["X-Forwarded-Proto"] = "http"
    r = c.get("/login")
    assert "Strict-Transport-Security" not in r.headers
    assert "Secure" not in set_cookies(r)["_xsrf"]


# -- files under the data dir ---------------------------------------------------------------------


def test_the_embedded_postgresql_log_is_for_this_account_only(tmp_path):
    var = tmp_path / "var"
    var.mkdir()
    (var / "pg.log").write_text("an older install's log\n")
    os.chmod(var / "pg.log", 0o644)
    pg = EmbeddedPostgres(var, fast=True)
    try:
        pg.start()
        assert oct((var / "pg.log").stat().st_mode & 0o777) == "0o600"
        assert "an older install's log" in (var / "pg.log").read_text()  # appended to, not replaced
        secrets = var / "secrets"
        assert oct(secrets.stat().st_mode & 0o777) == "0o700"
        files = list(secrets.iterdir())
        assert files and all(oct(f.stat().st_mode & 0o777) == "0o600" for f in files), files
    finally:
        pg.destroy()

    fresh = tmp_path / "fresh"
    pg = EmbeddedPostgres(fresh, fast=True)
    try:
        pg.start()
        assert oct((fresh / "pg.log").stat().st_mode & 0o777) == "0o600"
    finally:
        pg.destroy()
