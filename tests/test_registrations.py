"""What addons register with the kernel (permissions, API token scopes, security schemes): the shipped
matrix, the start-up validation of every registration, and the kernel's API-token hooks."""

from __future__ import annotations

import itertools
import sys
import textwrap

import pytest

import core.hookspecs
from core.addons import AddonRegistry, discover, read_manifest
from core.openapi import build_document
from core.permissions import RegistrationError, catalogue, role_permissions
from core.web.app import check_route_permissions
from core.web.base import ApiHandler

C, U, A = "customer", "user", "admin"

# The effective matrix with the shipped addons: what core/permissions.py held before addons registered
# their own. The first test passes on that code too; keep it that way.
SHIPPED_MATRIX = {
    "dashboard:view": {C, U, A},
    "profile:edit": {C, U},
    "messages:send": {C, U},
    "messages:read": {C, U, A},
    "devices:read": {C, U, A},
    "devices:write": {C},
    "webhooks:read": {C, U, A},
    "webhooks:write": {C},
    "settings:write": {C},
    "users:read": {C, A},
    "users:manage": {C},
    "tokens:manage": {C},
    "audit:read": {C, A},
    "abuse:read": {C, A}, "abuse:review": {C}, "abuse:sandbox": {C},
    "platform:admin": {A},
    "privacy:self": {C, U},  # the privacy addon (issue 15)
    "privacy:manage": {C},
    "usage:read": {C, A},  # the usage addon (issue 16)
    "billing:read": {C, A},  # the billing addon (issue 17)
    "billing:manage": {C},
    "branding:manage": {C},
    "invoices:read": {C, A},
    "billing:payment": {C},
    "contacts:read": {C, U, A},  # the contacts addon (issue 22)
    "contacts:write": {C, U},
}
SHIPPED_SCOPES = {"messages:send", "messages:read", "devices:read", "devices:write", "webhooks:read",
                  "webhooks:write", "settings:write", "privacy:manage", "usage:read", "contacts:read",
                  "contacts:write", "abuse:sandbox"}
SHIPPED_VERIFIED_ONLY = {"messages:send", "users:manage", "tokens:manage"}


def test_the_shipped_matrix_is_what_it_was():
    from core.permissions import API_SCOPES, MATRIX, VERIFIED_ONLY

    # Held by some role (device:protocol, registered now, is held only by paired phones).
    assert {name: set(roles) for name, roles in MATRIX.items() if roles} == SHIPPED_MATRIX
    assert set(API_SCOPES) == SHIPPED_SCOPES
    assert VERIFIED_ONLY == SHIPPED_VERIFIED_ONLY
    for role in (C, U, A):
        assert role_permissions(role) == {p for p, roles in SHIPPED_MATRIX.items() if role in roles}, role
    assert role_permissions("token") == role_permissions("device") == frozenset()


def test_each_addon_registers_its_own_permissions():
    access = catalogue()
    assert {p.name: p.addon for p in access.permissions.values() if p.addon != "core"} == {
        "audit:read": "audit", "devices:read": "devices", "devices:write": "devices",
        "device:protocol": "devices", "messages:send": "messaging", "messages:read": "messaging",
        "webhooks:read": "webhooks", "webhooks:write": "webhooks", "privacy:self": "privacy",
        "privacy:manage": "privacy", "usage:read": "usage", "billing:read": "billing", "billing:manage": "billing", "branding:manage": "branding",
        "invoices:read": "billing", "billing:payment": "billing", "contacts:read": "contacts",
        "contacts:write": "contacts", "reseller:manage": "resellers", "reseller:support": "resellers",
        "abuse:read": "abuse", "abuse:review": "abuse", "abuse:sandbox": "abuse"}
    assert access.matrix["device:protocol"] == frozenset()
    assert set(access.default_scopes) == {"messages:send", "messages:read"}  # ticked for a new token
    assert all(p.label for p in access.permissions.values())


def test_security_schemes_come_from_their_addons(platform):
    settings = platform.settings
    shipped = build_document(AddonRegistry(), settings)
    assert list(shipped["components"]["securitySchemes"]) == ["bearer", "deviceToken", "basic", "enrollmentToken",
                                                                    "appLogin"]
    assert shipped["paths"]["/api/v1/me"]["get"]["security"] == [{"bearer": []}, {"deviceToken": []}]
    # Without the addons, the kernel describes only its own credential.
    bare = build_document(AddonRegistry(addons=[]), settings)
    assert list(bare["components"]["securitySchemes"]) == ["bearer"]
    assert bare["paths"]["/api/v1/me"]["get"]["security"] == [{"bearer": []}]
    assert bare["paths"]["/api/v1/auth/logout"]["post"]["security"] == [{"bearer": []}]


def test_access_token_revocation_is_a_kernel_hook_that_compat_implements():
    bare = AddonRegistry(addons=[])
    assert bare.hook.smsgw_access_token_revoked(tenant=None, claims={"jti": "x"}) == []
    shipped = AddonRegistry()
    caller = shipped.hook.smsgw_access_token_revoked
    assert caller.spec.namespace is core.hookspecs
    assert [impl.plugin_name for impl in caller.get_hookimpls()] == ["compat"]


# -- validation: every error names the addon ------------------------------------------------

_packages = itertools.count()


def make_addon(tmp_path, hooks: str, name: str = "acme", depends=()):
    """A real addon package on disk (manifest + hooks.py), found by its manifest like an installed one."""
    package = f"reg_addon_{next(_packages)}_{name}"
    pkg = tmp_path / package
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__manifest__.py").write_text(repr({"name": name, "version": "1", "summary": "test", "depends": list(depends),
                                               "license": "MIT", "author": "x"}))
    (pkg / "hooks.py").write_text("from core.addons import hookimpl\n\n" + textwrap.dedent(hooks))
    if str(tmp_path) not in sys.path:
        sys.path.insert(0, str(tmp_path))
    return read_manifest(package)


@pytest.fixture
def addon_dir(tmp_path):
    yield tmp_path
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))


def permissions(*calls: str) -> str:
    body = "\n".join(f"    register({c})" for c in calls)
    return f"@hookimpl\ndef smsgw_permissions(register):\n{body}\n"


def schemes(*calls: str) -> str:
    body = "\n".join(f"    register({c})" for c in calls)
    return f"@hookimpl\ndef smsgw_security_schemes(register):\n{body}\n"


BASIC = '{"type": "http", "scheme": "basic", "description": "Basic credentials for the acme API."}'


@pytest.mark.parametrize("hooks, message", [
    (permissions('"Acme Read", "Read acme", ["customer"]'),
     "addon 'acme': permission name 'Acme Read' is malformed; use 'area:action'"),
    (permissions('"acme", "Read acme", ["customer"]'), "addon 'acme': permission name 'acme' is malformed"),
    (permissions('"acme:read", "", ["customer"]'), "addon 'acme': permission 'acme:read' has no label"),
    (permissions('"acme:read", None, ["customer"]'), "addon 'acme': permission 'acme:read' has no label"),
    (permissions('"acme:read", "Read acme", ["owner", "customer"]'),
     "addon 'acme': permission 'acme:read' names unknown role(s) owner; the roles are customer, user, admin"),
    (permissions('"acme:read", "Read acme", "customer"'),
     "addon 'acme': permission 'acme:read': roles must be a list of role names"),
    (permissions('"acme:read", "Read acme", ["customer"], default_scope=True'),
     "addon 'acme': permission 'acme:read' is a default scope but not a scope: register it with scope=True"),
    (permissions('"acme:read", "Read acme", ["customer"], scopes=True'),
     "addon 'acme': permission 'acme:read': unknown option(s) scopes; the options are scope, default_scope, "
     "verified_only"),
    (permissions('"acme:read", "Read acme", ["customer"], scope="yes"'),
     "addon 'acme': permission 'acme:read': scope must be True or False"),
    (permissions('"users:read", "See the team", ["customer", "user"]'),
     "addon 'acme': permission 'users:read' clashes with the one registered by the kernel"),
    (schemes(f'"acme basic", {BASIC}'), "addon 'acme': security scheme name 'acme basic' is malformed"),
    (schemes('"acmeBasic", {"type": "http", "scheme": "basic"}'),
     "addon 'acme': security scheme 'acmeBasic' has no description"),
    (schemes('"acmeBasic", {"type": "password", "description": "x"}'),
     "addon 'acme': security scheme 'acmeBasic' must be an OpenAPI Security Scheme Object"),
    (schemes('"acmeBasic", "basic"'),
     "addon 'acme': security scheme 'acmeBasic' must be an OpenAPI Security Scheme Object"),
    (schemes(f'"acmeBasic", {BASIC}, kernel=True'),
     "addon 'acme': security scheme 'acmeBasic': unknown option(s) kernel; the options are accepted_by_kernel"),
    (schemes(f'"bearer", {BASIC}'), "addon 'acme': security scheme 'bearer' clashes with the one registered "
                                    "by the kernel"),
], ids=lambda v: v if len(v) < 40 else None)
def test_a_bad_registration_stops_the_start_naming_the_addon(addon_dir, hooks, message):
    acme = make_addon(addon_dir, hooks)
    with pytest.raises(RegistrationError) as caught:
        AddonRegistry(addons=[acme])
    assert message in str(caught.value)


def test_two_addons_registering_one_permission_differently_are_both_named(addon_dir):
    first = make_addon(addon_dir, permissions('"acme:read", "Read acme", ["customer"]'), "acme")
    second = make_addon(addon_dir, permissions('"acme:read", "Read acme", ["customer", "user"]'), "zeta")
    with pytest.raises(RegistrationError, match="addon 'zeta': permission 'acme:read' clashes with the one "
                                                 "registered by addon 'acme'"):
        AddonRegistry(addons=[first, second])


def test_an_addon_cannot_redefine_a_shipped_addons_permission_or_scheme(addon_dir):
    # Loaded after the addons it depends on: theirs stand, its own different one is refused.
    sneaky = make_addon(addon_dir, permissions('"messages:send", "Send SMS", ["customer", "user"], scope=True'),
                        depends=["messaging"])
    with pytest.raises(RegistrationError, match="addon 'acme': permission 'messages:send' clashes with the one "
                                                 "registered by addon 'messaging'"):
        AddonRegistry(addons=[*discover(), sneaky])
    sneaky = make_addon(addon_dir, schemes('"basic", {"type": "http", "scheme": "basic", "description": "Mine."}'),
                        depends=["compat"])
    with pytest.raises(RegistrationError, match="addon 'acme': security scheme 'basic' clashes with the one "
                                                 "registered by addon 'compat'"):
        AddonRegistry(addons=[*discover(), sneaky])


def test_the_same_registration_twice_is_one_permission(addon_dir):
    same = permissions('"acme:read", "Read acme", ["customer"], scope=True')
    registry = AddonRegistry(addons=[make_addon(addon_dir, same, "acme"), make_addon(addon_dir, same, "zeta")])
    access = registry.access
    assert access.permissions["acme:read"].addon == "acme"
    assert access.api_scopes == ("acme:read", "settings:write")
    assert access.by_role["customer"] >= {"acme:read"} and "acme:read" not in access.by_role["user"]
    # Collecting changed nothing this process grants: only a Platform installs a catalogue.
    assert "acme:read" not in catalogue().permissions


def test_a_route_requiring_an_unregistered_permission_stops_the_start():
    class Greetings(ApiHandler):
        permissions = {"GET": "messages:read", "POST": "hello:write"}

        async def get(self):
            pass

    access = catalogue()
    with pytest.raises(RegistrationError, match=r"addon 'hello': Greetings at /api/greetings requires "
                                                r"'hello:write', which neither the kernel nor an addon "
                                                r"registered \(smsgw_permissions\)"):
        check_route_permissions([("/api/greetings", Greetings, {}, "hello")], access)
    Greetings.permissions = {"GET": "messages:read", "POST": "settings:write"}
    check_route_permissions([("/api/greetings", Greetings, {}, "hello")], access)  # all registered: fine
