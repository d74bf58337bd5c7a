"""Resellers for tests: made with the addon's own service functions, signed in through the console's
form on the live server (``partners.<base-domain>``)."""

from __future__ import annotations

import secrets

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
