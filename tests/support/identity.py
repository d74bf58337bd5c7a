"""Helpers for the identity tests: real sign-ins over HTTP, mail links, tenant users.

Nothing here fakes the platform: sign-ins go through the live server's pages and
APIs, users are written with the platform's own identity functions inside a
tenant transaction, and mail is read from the file backend's outbox.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg2

from core import passwords
from core.db import tenant_transaction
from core.users import User
from tests.support.server import HostClient

ROOT = Path(__file__).resolve().parent.parent.parent
OWNER_PASSWORD = "a long enough password"


def owner_email(tenant) -> str:
    return f"owner@{tenant.slug}.example"


def fresh_ip() -> str:
    """A documentation-range address of our own, so throttling counts never mix between tests."""
    return f"10.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


class Client(HostClient):
    """``HostClient`` that never follows redirects, for GET too (requests' ``get`` defaults to following)."""

    def get(self, url, **kwargs):
        kwargs.setdefault("allow_redirects", False)
        return self.request("GET", url, **kwargs)


def client(live_server, slug=None, ip=None) -> Client:
    c = Client(live_server, slug)
    if ip:
        c.headers["X-Real-IP"] = ip
    return c


def fetch_xsrf(c, path="/login") -> str:
    r = c.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[:300])
    token = c.cookies.get("_xsrf")
    assert token, "the form page set no _xsrf cookie"
    return token


def signup_acceptance(c, path: str = "/signup") -> dict:
    """The sign-up form's privacy-policy fields, ticked: the version the form shows (GET ``path``;
    none while sign-up is closed)."""
    found = re.search(r'name="privacy_version" value="([^"]+)"', c.get(path).text)
    return {"accept_privacy": "yes", "privacy_version": found.group(1) if found else ""}


def post_form(c, path, data, **kwargs):
    data = dict(data)
    if "_xsrf" not in data:
        token = c.cookies.get("_xsrf")
        if not token:
            token = fetch_xsrf(c)
        data["_xsrf"] = token
    return c.post(path, data=data, **kwargs)


def sign_in(live_server, slug, email_address, password=OWNER_PASSWORD, ip=None):
    """A client holding a tenant session, signed in through POST /login."""
    c = client(live_server, slug, ip)
    fetch_xsrf(c)
    r = post_form(c, "/login", {"email": email_address, "password": password})
    assert r.status_code == 302, (r.status_code, r.text[:500])
    assert c.cookies.get("smsgw_session"), "no session cookie after sign-in"
    return c


def api_sign_in(live_server, slug, email_address, password=OWNER_PASSWORD, ip=None) -> dict:
    c = client(live_server, slug, ip)
    r = c.post("/api/v1/auth/token", json={"email": email_address, "password": password})
    assert r.status_code == 200, (r.status_code, r.text[:500])
    return r.json()


def admin_sign_in(live_server, email_address, password, ip=None):
    c = client(live_server, None, ip)
    fetch_xsrf(c, "/admin/login")
    r = post_form(c, "/admin/login", {"email": email_address, "password": password})
    assert r.status_code == 302, (r.status_code, r.text[:500])
    assert c.cookies.get("smsgw_admin"), "no admin cookie after sign-in"
    return c


def add_user(platform, tenant, email_address, password=None, role="user", active=True) -> int:
    """A member of ``tenant`` written with the platform's own hashing; returns the user id."""
    hashed = passwords.hash_password(password, platform.pepper, platform.bcrypt_cost) if password else None
    with tenant_transaction(tenant.ref):
        return User.create(email=email_address, name=email_address.split("@")[0], password_hash=hashed,
                           role=role, is_active=active).id


def mails_to(platform, address: str, subject_contains: str = "") -> list:
    out = []
    for path in platform.mailer.outbox():
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if msg["To"] == address and subject_contains in msg["Subject"]:
            out.append(msg)
    return out


def link_token(msg, path: str) -> str:
    """The ``token`` query parameter of the first link to ``path`` in a mail."""
    body = msg.get_body(preferencelist=("plain",)).get_content()
    for url in re.findall(r"https?://\S+", body):
        parts = urlsplit(url)
        if parts.path == path:
            return parse_qs(parts.query)["token"][0]
    raise AssertionError(f"no link to {path} in:\n{body}")


def wait_for_mail(platform, address, subject_contains="", count=1, timeout=5.0):
    deadline = time.time() + timeout
    while True:
        found = mails_to(platform, address, subject_contains)
        if len(found) >= count or time.time() > deadline:
            return found
        time.sleep(0.05)


def smsgw(env, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "core.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


def cli_env_from(test_env) -> dict:
    """What the ``cli_env`` fixture builds, for module-scoped fixtures."""
    env = dict(os.environ)
    env.update(test_env)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def audit_rows(platform, tenant_id=None, action=None) -> list[dict]:
    """Audit rows read with the administrative connection (not through the code under test)."""
    clauses, params = [], []
    if tenant_id is not None:
        clauses.append("tenant_id = %s")
        params.append(tenant_id)
    if action is not None:
        clauses.append("action = %s")
        params.append(action)
    where = " AND ".join(clauses) or "true"
    conn = psycopg2.connect(platform.admin_url)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT id, at, tenant_id, tenant_slug, actor, actor_name, action, target, ip, "
                        f"user_agent, reason, details FROM public.audit_event WHERE {where} ORDER BY id", params)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row)) for row in cur.fetchall()]
    finally:
        conn.close()


def admin_sql(platform, statement, params=None, fetch=False):
    conn = psycopg2.connect(platform.admin_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall() if fetch else cur.rowcount
    finally:
        conn.close()
