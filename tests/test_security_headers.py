"""Security headers on every kind of response, cookie flags (over HTTP and real TLS), and XSRF."""

from __future__ import annotations

import datetime as dt
import email.utils
import signal
import socket
import subprocess
import sys
import warnings

import pytest
import requests
import urllib3

from core.admins import create_admin
from tests.support.identity import (ROOT, OWNER_PASSWORD, api_sign_in, audit_rows, bearer, cli_env_from, client,
                                    fetch_xsrf, owner_email, post_form, sign_in)
from tests.support.serve import wait_ready
from tests.support.tls import self_signed_certificate

REQUIRED_CSP = ("object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'")


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("hdr")


def set_cookies(r) -> dict[str, str]:
    """Raw ``Set-Cookie`` headers by cookie name."""
    out = {}
    for raw in r.raw.headers.getlist("Set-Cookie"):
        out[raw.split("=", 1)[0].strip()] = raw
    return out


def attributes(raw: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in raw.split(";")[1:]}


def samesite(raw: str) -> str | None:
    for part in raw.split(";")[1:]:
        k, _, v = part.strip().partition("=")
        if k.lower() == "samesite":
            return v.lower()
    return None


def assert_security_headers(r, what):
    h = r.headers
    csp = h.get("Content-Security-Policy", "")
    for directive in REQUIRED_CSP:
        assert directive in csp, (what, r.status_code, csp)
    assert h.get("X-Content-Type-Options") == "nosniff", (what, r.status_code)
    assert h.get("Referrer-Policy") in ("no-referrer", "strict-origin-when-cross-origin", "same-origin",
                                        "strict-origin"), (what, r.status_code, h.get("Referrer-Policy"))
    assert h.get("X-Frame-Options") == "DENY", (what, r.status_code)
    assert "Server" not in h, (what, h.get("Server"))
    # A current Date (written once a second by core.web.base.http_date, not per response).
    sent = email.utils.parsedate_to_datetime(h["Date"])
    assert abs((sent - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 5, (what, h["Date"])


# -- headers -------------------------------------------------------------------------------

def test_security_headers_on_pages_apis_errors_and_static(live_server, tenant):
    owner = sign_in(live_server, tenant.slug, owner_email(tenant))
    token = api_sign_in(live_server, tenant.slug, owner_email(tenant))["access_token"]
    t = client(live_server, tenant.slug)
    base = client(live_server, None)
    responses = {
        "tenant sign-in page": t.get("/login"),
        "redirect to sign-in": t.get("/team"),
        "signed-in page": owner.get("/team"),
        "audit page (addon)": owner.get("/audit"),
        "audit export (addon)": owner.get("/audit/export.json"),
        "platform home": base.get("/"),
        "signup page": base.get("/signup"),
        "admin sign-in": base.get("/admin/login"),
        "API 200": t.get("/api/v1/me", headers=bearer(token)),
        "API 401": t.get("/api/v1/me"),
        "page with a malformed bearer token": t.get("/tokens", headers=bearer("sgw_x")),
        "API 404": t.get("/api/v1/no-such-thing"),
        "API 415": t.post("/api/v1/auth/token", data="x"),
        "API 422": t.post("/api/v1/auth/token", json={}),
        "page 404": t.get("/no-such-page"),
        "unknown tenant 404": client(live_server, "no-such-tenant-zz").get("/"),
        "XSRF 403": t.post("/login", data={"email": "a@b.c", "password": "x"}),
        "405": t.request("PROPFIND", "/login"),
        "JWKS": base.get("/.well-known/jwks.json"),
        "health": t.get("/health/live"),
        "static": t.get("/static/core/app.css"),
        "static 404": t.get("/static/core/nope.css"),
        "static on base domain": base.get("/static/core/app.css"),
    }
    assert responses["static"].status_code == 200 and responses["API 200"].status_code == 200
    assert responses["page 404"].status_code == 404 and responses["XSRF 403"].status_code == 403
    for what, r in responses.items():
        assert_security_headers(r, what)
    # Over plain HTTP there is no HSTS (it would be ignored, and would break local development).
    assert all("Strict-Transport-Security" not in r.headers for r in responses.values())


def test_pages_are_not_cached_with_secrets(live_server, tenant):
    owner = sign_in(live_server, tenant.slug, owner_email(tenant))
    r = post_form(owner, "/tokens", {"action": "create", "name": "cache test", "scope": ["messages:read"]})
    assert r.status_code == 303  # the token is shown on the page the redirect leads to
    r = owner.get("/tokens")
    assert r.status_code == 200 and "sgw_" in r.text and "no-store" in r.headers.get("Cache-Control", "")
    r = client(live_server, tenant.slug).post("/api/v1/auth/token",
                                              json={"email": owner_email(tenant), "password": OWNER_PASSWORD})
    assert "no-store" in r.headers.get("Cache-Control", "")


# -- cookies over HTTP ------------------------------------------------------------------------

def test_session_cookies_are_httponly_and_samesite_over_http(platform, live_server, tenant):
    c = client(live_server, tenant.slug)
    r = c.get("/login")
    xsrf = set_cookies(r)["_xsrf"]
    assert "httponly" in attributes(xsrf) and samesite(xsrf) == "strict"
    r = post_form(c, "/login", {"email": owner_email(tenant), "password": OWNER_PASSWORD})
    assert r.status_code == 302
    cookies = set_cookies(r)
    for name in ("smsgw_session", "smsgw_known"):
        raw = cookies[name]
        assert "httponly" in attributes(raw), raw
        assert samesite(raw) == "lax", raw
        assert "secure" not in attributes(raw), raw  # plain HTTP: a Secure cookie would never come back
    assert "Strict-Transport-Security" not in r.headers

    email_address = f"hdr-admin-{tenant.slug}@platform.example"
    create_admin(platform, email_address, "admin password 123")
    a = client(live_server, None)
    fetch_xsrf(a, "/admin/login")
    r = post_form(a, "/admin/login", {"email": email_address, "password": "admin password 123"})
    raw = set_cookies(r)["smsgw_admin"]
    assert "httponly" in attributes(raw) and samesite(raw) == "strict", raw


# -- XSRF ---------------------------------------------------------------------------------------

def test_forms_without_xsrf_are_refused(platform, live_server, tenant):
    c = client(live_server, tenant.slug)
    r = c.post("/login", data={"email": owner_email(tenant), "password": OWNER_PASSWORD})
    assert r.status_code == 403 and "smsgw_session" not in set_cookies(r)
    fetch_xsrf(c)
    r = c.post("/login", data={"email": owner_email(tenant), "password": OWNER_PASSWORD, "_xsrf": "forged"})
    assert r.status_code == 403 and "smsgw_session" not in set_cookies(r)

    owner = sign_in(live_server, tenant.slug, owner_email(tenant))
    before = owner.get("/team").text.count("data-email=")
    r = owner.post("/team", data={"action": "invite", "email": f"csrf@{tenant.slug}.example", "role": "customer"})
    assert r.status_code == 403
    # A token from another browser does not fit this browser's cookie.
    stranger = client(live_server, tenant.slug)
    other_token = fetch_xsrf(stranger)
    r = owner.post("/team", data={"action": "invite", "email": f"csrf@{tenant.slug}.example", "role": "customer",
                                  "_xsrf": other_token})
    assert r.status_code == 403
    assert owner.get("/team").text.count("data-email=") == before
    r = owner.post("/tokens", data={"action": "create", "name": "csrf", "scope": "messages:read"})
    assert r.status_code == 403 and "sgw_" not in r.text


def test_cookie_authenticated_api_posts_need_the_xsrf_header(live_server, tenant):
    tokens = api_sign_in(live_server, tenant.slug, owner_email(tenant))
    owner = sign_in(live_server, tenant.slug, owner_email(tenant))
    # Riding on the session cookie without X-XSRFToken: refused, and nothing was revoked.
    r = owner.post("/api/v1/auth/logout")
    assert r.status_code == 403 and r.json()["code"] == "xsrf-failed"
    r = client(live_server, tenant.slug).post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 200
    tokens = r.json()
    # GET needs no token; with the header the POST goes through.
    assert owner.get("/api/v1/me").status_code == 200
    r = owner.post("/api/v1/auth/logout", headers={"X-XSRFToken": owner.cookies.get("_xsrf")})
    assert r.status_code == 204
    r = client(live_server, tenant.slug).post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401
    # A bearer token is no ambient credential: no XSRF header needed.
    fresh = api_sign_in(live_server, tenant.slug, owner_email(tenant))
    r = client(live_server, tenant.slug).post("/api/v1/auth/logout", headers=bearer(fresh["access_token"]))
    assert r.status_code == 204


# -- TLS ------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def self_signed(tmp_path):
    return self_signed_certificate(tmp_path, names=("localhost", "*.localhost"), addresses=("127.0.0.1",))


@pytest.fixture(scope="module")
def tls_server(platform, test_env, tmp_path_factory):
    """``smsgw serve --certfile --keyfile`` as a real subprocess on this session's database."""
    certfile, keyfile = self_signed(tmp_path_factory.mktemp("tls"))
    port = free_port()
    env = cli_env_from(test_env)
    env["SMSGW_PORT"] = str(port)
    env["SMSGW_BIND"] = "127.0.0.1"
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--port", str(port), "--certfile",
                             str(certfile), "--keyfile", str(keyfile)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = wait_ready(proc, 60)
    assert "https://" in output, output
    yield f"https://127.0.0.1:{port}", port
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


class TlsClient(requests.Session):
    def __init__(self, url, port, host):
        super().__init__()
        self.base = url
        self.headers["Host"] = f"{host}:{port}"

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 30)
        kwargs["verify"] = False  # a session-level False loses to REQUESTS_CA_BUNDLE; say it per request
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            return super().request(method, self.base + url, *args, **kwargs)


def test_over_tls_cookies_are_secure_and_hsts_is_sent(platform, tls_server, tenant):
    url, port = tls_server
    c = TlsClient(url, port, f"{tenant.slug}.localhost")
    r = c.get("/login")
    assert r.status_code == 200, r.text[:300]
    hsts = r.headers.get("Strict-Transport-Security", "")
    assert hsts.startswith("max-age="), dict(r.headers)
    assert int(hsts.split("=")[1].split(";")[0]) >= 31536000 and "includeSubDomains" in hsts
    assert_security_headers(r, "tls login page")
    r = c.post("/login", data={"email": owner_email(tenant), "password": OWNER_PASSWORD,
                               "_xsrf": c.cookies.get("_xsrf")})
    assert r.status_code == 302, r.text[:300]
    cookies = set_cookies(r)
    for name in ("smsgw_session", "smsgw_known"):
        flags = attributes(cookies[name])
        assert {"secure", "httponly"} <= flags, cookies[name]
        assert samesite(cookies[name]) == "lax"
    assert "Strict-Transport-Security" in r.headers
    # The secure session works over TLS.
    assert c.get("/account").status_code == 200
    # Errors and APIs carry HSTS too.
    for path in ("/no-such-page", "/api/v1/me", "/static/core/app.css"):
        r = c.get(path)
        assert "Strict-Transport-Security" in r.headers, path
        assert_security_headers(r, path)


def test_over_tls_the_admin_cookie_is_secure(platform, tls_server):
    url, port = tls_server
    email_address = f"tls-admin-{port}@platform.example"
    create_admin(platform, email_address, "admin password 123")
    c = TlsClient(url, port, "localhost")
    assert c.get("/admin/login").status_code == 200
    r = c.post("/admin/login", data={"email": email_address, "password": "admin password 123",
                                     "_xsrf": c.cookies.get("_xsrf")})
    assert r.status_code == 302, r.text[:300]
    raw = set_cookies(r)["smsgw_admin"]
    assert {"secure", "httponly"} <= attributes(raw) and samesite(raw) == "strict", raw


def test_a_directly_connected_client_cannot_choose_its_ip(platform, tls_server, tenant):
    """Without a proxy in front (TLS served by smsgw itself), X-Forwarded-For / X-Real-IP are the client's
    own words: trusting them would let anyone dodge the per-IP sign-in cap and forge the audit trail."""
    url, port = tls_server
    c = TlsClient(url, port, f"{tenant.slug}.localhost")
    spoofed = "203.0.113.77"
    r = c.post("/api/v1/auth/token", json={"email": owner_email(tenant), "password": "wrong password"},
               headers={"X-Forwarded-For": spoofed, "X-Real-IP": spoofed, "X-Forwarded-Proto": "http"})
    assert r.status_code == 401
    rows = audit_rows(platform, tenant.id, "login.failure")
    assert len(rows) == 1
    assert rows[0]["ip"] == "127.0.0.1", rows[0]["ip"]
