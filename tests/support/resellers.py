"""Resellers for tests: made with the addon's own service functions, signed in through the console's
form on the live server (``partners.<base-domain>``)."""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from dataclasses import dataclass

import pytest

from addons.resellers import service
from tests.support.identity import client, fetch_xsrf, post_form

PARTNER_PASSWORD = "a partner's long password"


def make_reseller(platform, prefix: str = "r", max_workspaces: int = 5, role: str = "reseller_admin"):
    """A reseller with one console person ``admin@<slug>.example`` (``role``); returns the reseller."""
    slug = f"{prefix}-{secrets.token_hex(3)}"
    reseller = service.create({"slug": slug, "company": f"Partner {slug}", "contact_email": f"contact@{slug}.example",
                               "pricing": "commission", "commission_percent": "20", "max_workspaces": max_workspaces})
    service.add_user(platform, reseller, f"admin@{slug}.example", PARTNER_PASSWORD, role)
    return reseller


def reseller_of(platform, tenant):
    """A reseller that owns ``tenant`` (a workspace made elsewhere, e.g. the page walks' populated
    one), with a retail plan and an addon made available: something on each of its console's pages (the
    support data page, without an access opened, leads back to the workspace's page, as the
    Admin's does in the walks), and its sign-up page open."""
    from addons.resellers import invoicing
    from tests.support.identity import admin_sql

    reseller = make_reseller(platform, "site")
    admin_sql(platform, "INSERT INTO public.reseller_tenant (tenant_id, reseller_id) VALUES (%s, %s)",
              (tenant.id, reseller.id))
    service.set_available(platform, reseller, "contacts", True)
    invoicing.create_plan(reseller, {"code": "basic", "name": "Basic", "currency": "EUR", "monthly_price": 1900,
                                     "included_segments": 1000, "overage_per_1000": 500})
    from addons.resellers import signup

    signup.save_settings(reseller, True, "basic")  # its sign-up page shows its form
    return reseller


def customers_without(platform, reseller, prefix: str, count: int, addon: str = "contacts") -> list[str]:
    """``count`` workspaces of ``reseller`` (made by the addon's own service) with ``addon`` switched
    off, the operator's ``addon`` made available to the reseller: something to enable. Their slugs."""
    from tests.support.identity import OWNER_PASSWORD

    service.set_available(platform, reseller, addon, True)
    made = []
    for i in range(count):
        slug = f"{prefix}{i}-{secrets.token_hex(3)}"
        service.create_workspace(platform, reseller, slug, "Customer Co", f"owner@{slug}.example", OWNER_PASSWORD)
        platform.tenants.set_addon(slug, addon, False)
        made.append(slug)
    return made


def partners_address(server, path: str) -> str:
    """The URL of ``path`` on the partner console's host of ``server``."""
    return f"http://partners.{server.platform.settings.base_domain}:{server.port}{path}"


def partner_email(reseller) -> str:
    return f"admin@{reseller.slug}.example"


def partner_sign_in(live_server, reseller, email: str | None = None, password: str = PARTNER_PASSWORD, ip=None):
    """A client of ``partners.<base-domain>`` holding a console session of ``reseller``."""
    c = client(live_server, "partners", ip)
    fetch_xsrf(c, f"/{reseller.slug}/login")
    r = post_form(c, f"/{reseller.slug}/login", {"email": email or partner_email(reseller), "password": password})
    assert r.status_code == 302, (r.status_code, r.text[:500])
    assert c.cookies.get("smsgw_partner"), "no console cookie after sign-in"
    return c


# -- a second process with the example reseller addon installed ------------------------------------

@dataclass
class RemoteServer:
    """An ``smsgw serve`` subprocess on the session's database, shaped like the ``live_server``
    fixture for :func:`tests.support.identity.client` and the browser helpers."""

    platform: object
    port: int
    env: dict

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def hello_server(platform, test_env, tmp_path_factory):
    """``smsgw serve`` with ``tests/fixtures/hello_addon`` pip-installed (on its ``PYTHONPATH``) on a
    free port (also its public one: mail links and redirects name it). Its output is drained so logging never blocks it."""
    from tests.support.addons import pip_install_hello
    from tests.support.identity import cli_env_from
    from tests.support.serve import start_serve

    env = cli_env_from(test_env)
    env["PYTHONPATH"] = f"{pip_install_hello(tmp_path_factory)}{os.pathsep}{env['PYTHONPATH']}"
    proc, port, _out = start_serve(env)
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    try:
        yield RemoteServer(platform, port, env)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)


def wait_for_status(c, path: str, status: int, timeout: float = 10.0):
    """GET ``path`` until it answers ``status`` (another process learns of a change by NOTIFY)."""
    deadline = time.time() + timeout
    while True:
        r = c.get(path)
        if r.status_code == status or time.time() > deadline:
            return r
        time.sleep(0.1)
