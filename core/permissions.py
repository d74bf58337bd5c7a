"""Who may do what: the permission catalogue, and the principal every handler checks.

The kernel knows only its own permissions, below. Every addon registers its own through the
``smsgw_permissions`` hook, and the security schemes of the credentials it adds through
``smsgw_security_schemes`` (both in :mod:`core.hookspecs`). :func:`collect` validates all
registrations when the addons are loaded and precomputes what the hot path needs;
``smsgw permissions`` prints the effective matrix of an installation.

| permission       | Customer | User | Admin (with a reasoned grant) | API token scope |
|------------------|----------|------|-------------------------------|-----------------|
| dashboard:view   | yes      | yes  | yes                           | -               |
| profile:edit     | yes      | yes  | -                             | -               |
| settings:write   | yes      | -    | -                             | settings:write  |
| users:read       | yes      | -    | yes                           | -               |
| users:manage     | yes      | -    | -                             | -               |
| tokens:manage    | yes      | -    | -                             | -               |
| platform:admin   | -        | -    | yes (base domain only)        | -               |
| (registered by addons)                                                            |

``settings:write`` is the kernel's because workspace settings are (``smsgw_settings_schema``):
any addon whose settings a Customer changes guards them with it, rather than each inventing its
own. An API token holds exactly the scopes it was created with (a subset of the creating
Customer's permissions). Admins see a tenant's data only read-only and only under an access grant
that carries a written reason. A permission registered ``verified_only`` (sending to third
parties, inviting people, minting tokens) waits until a self-service workspace's owner confirmed
their address (checked in ``BaseHandler.check_permission``).

One process serves one set of installed addons: :class:`core.platform.Platform` installs its
catalogue process-wide (:func:`install`), and code without a platform at hand (token creation,
:func:`role_permissions`) reads it through :func:`catalogue`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .addons import AddonError
from .i18n import N_
from .openapi import SECURITY_SCHEMES

CUSTOMER, USER, ADMIN = "customer", "user", "admin"
ROLES = (CUSTOMER, USER, ADMIN)
KERNEL = "core"  # who registered the kernel's own permissions and schemes
# Shown as _(status|capitalize) in templates.
LABELS = (N_("Active"), N_("Suspended"))
# What people read for a role (``role_label`` in templates): the role called "customer" in code is the
# workspace's *Owner* on every page and in every language.
ROLE_LABELS = {CUSTOMER: N_("Owner"), USER: N_("User"), ADMIN: N_("Admin"), "token": N_("Token")}

PUBLIC = "public"  # a handler method anyone may call (sign-in pages, health, JWKS)
# Any principal of this tenant, whatever its scope: only for what every credential may do (say who it
# is, manage the tokens it minted itself). Acting on a person's account needs ``profile:edit``.
AUTHENTICATED = "authenticated"

PERMISSION_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}:[a-z][a-z0-9_-]{0,31}\Z")  # "area:action"
SCHEME_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}\Z")  # an OpenAPI components key
SCHEME_TYPES = ("apiKey", "http", "mutualTLS", "oauth2", "openIdConnect")


class RegistrationError(AddonError):
    """A registration is malformed or clashes with another; the message names the addon(s)."""


@dataclass(frozen=True)
class Permission:
    name: str
    label: str  # one line for the permission matrix: what it allows
    roles: frozenset  # of CUSTOMER / USER / ADMIN (an Admin's is read-only, under a reasoned grant)
    scope: bool = False  # an API token may be created with it
    default_scope: bool = False  # preselected for a new API token (dashboard and ``smsgw token create``)
    verified_only: bool = False  # refused until a self-service workspace's owner confirmed their address
    addon: str = KERNEL

    def same_as(self, other: Permission) -> bool:
        return (self.label, self.roles, self.scope, self.default_scope, self.verified_only) == (
            other.label, other.roles, other.scope, other.default_scope, other.verified_only)


@dataclass(frozen=True)
class SecurityScheme:
    name: str
    scheme: dict  # the OpenAPI 3.1 Security Scheme Object
    accepted_by_kernel: bool = False  # also works on the kernel's endpoints any credential may call
    addon: str = KERNEL


KERNEL_PERMISSIONS = (
    Permission("dashboard:view", "See the workspace's dashboard", frozenset({CUSTOMER, USER, ADMIN})),
    Permission("profile:edit", "Change one's own name, address, password and sign-ins", frozenset({CUSTOMER, USER})),
    Permission("settings:write", "Change the workspace's settings", frozenset({CUSTOMER}), scope=True),
    Permission("users:read", "See the team", frozenset({CUSTOMER, ADMIN})),
    Permission("users:manage", "Invite, change and remove team members", frozenset({CUSTOMER}),
               verified_only=True),
    Permission("tokens:manage", "Create and revoke API tokens", frozenset({CUSTOMER}), verified_only=True),
    Permission("platform:admin", "Operate the platform (the Admin console on the base domain)",
               frozenset({ADMIN})),
)



@dataclass(frozen=True)
class AccessCatalogue:
    """Every registered permission and security scheme, validated, with the hot path's answers precomputed."""

    permissions: dict  # name -> Permission, sorted by name
    security_schemes: dict  # name -> SecurityScheme, the kernel's first, then in addon order
    by_role: dict = field(init=False)  # role -> frozenset of permission names
    matrix: dict = field(init=False)  # permission -> frozenset of roles
    api_scopes: tuple = field(init=False)
    default_scopes: tuple = field(init=False)
    verified_only: frozenset = field(init=False)

    def __post_init__(self):
        perms = self.permissions.values()
        set_ = object.__setattr__
        set_(self, "matrix", {p.name: p.roles for p in perms})
        set_(self, "by_role", {r: frozenset(p.name for p in perms if r in p.roles) for r in ROLES})
        set_(self, "api_scopes", tuple(p.name for p in perms if p.scope))
        set_(self, "default_scopes", tuple(p.name for p in perms if p.default_scope))
        set_(self, "verified_only", frozenset(p.name for p in perms if p.verified_only))

    def openapi_schemes(self) -> dict:
        return {s.name: s.scheme for s in self.security_schemes.values()}

    def kernel_endpoint_schemes(self) -> list[str]:
        """The schemes, beyond ``bearer``, that also reach the kernel's endpoints open to any credential."""
        return [s.name for s in self.security_schemes.values() if s.accepted_by_kernel]


class _Collector:
    """The ``register`` callables one addon's hook implementations receive; they check each call."""

    def __init__(self, permissions: dict, schemes: dict):
        self.permissions = permissions
        self.schemes = schemes

    def permission_register(self, addon: str):
        def register(name, label, roles=(), **flags):
            _known_flags(addon, f"permission {name!r}", flags, ("scope", "default_scope", "verified_only"))
            self.add_permission(Permission(name, label, _roles(addon, name, roles), addon=addon, **flags))
        return register

    def scheme_register(self, addon: str):
        def register(name, scheme, **flags):
            _known_flags(addon, f"security scheme {name!r}", flags, ("accepted_by_kernel",))
            self.add_scheme(SecurityScheme(name, scheme, addon=addon, **flags))
        return register

    def add_permission(self, p: Permission) -> None:
        where = f"addon {p.addon!r}: permission {p.name!r}"
        if not isinstance(p.name, str) or not PERMISSION_NAME.match(p.name):
            raise RegistrationError(f"addon {p.addon!r}: permission name {p.name!r} is malformed; use "
                                    "'area:action' in lower case (letters, digits, - and _), e.g. 'hello:read'")
        if not isinstance(p.label, str) or not p.label.strip():
            raise RegistrationError(f"{where} has no label: say in one line what it allows (the permission "
                                    "matrix shows it)")
        for flag in ("scope", "default_scope", "verified_only"):
            if not isinstance(getattr(p, flag), bool):
                raise RegistrationError(f"{where}: {flag} must be True or False")
        if p.default_scope and not p.scope:
            raise RegistrationError(f"{where} is a default scope but not a scope: register it with scope=True")
        known = self.permissions.get(p.name)
        if known is not None and not known.same_as(p):
            raise RegistrationError(f"{where} clashes with the one registered by "
                                    f"{_who(known.addon)}: they differ in label, roles or flags")
        if known is None:
            self.permissions[p.name] = p

    def add_scheme(self, s: SecurityScheme) -> None:
        where = f"addon {s.addon!r}: security scheme {s.name!r}"
        if not isinstance(s.name, str) or not SCHEME_NAME.match(s.name):
            raise RegistrationError(f"addon {s.addon!r}: security scheme name {s.name!r} is malformed; use "
                                    "letters, digits, '.', '-' and '_', starting with a letter")
        if not isinstance(s.scheme, dict) or s.scheme.get("type") not in SCHEME_TYPES:
            raise RegistrationError(f"{where} must be an OpenAPI Security Scheme Object, a dict whose type is "
                                    f"one of {', '.join(SCHEME_TYPES)}")
        if not isinstance(s.scheme.get("description"), str) or not s.scheme["description"].strip():
            raise RegistrationError(f"{where} has no description: say who sends it and where it works")
        if not isinstance(s.accepted_by_kernel, bool):
            raise RegistrationError(f"{where}: accepted_by_kernel must be True or False")
        known = self.schemes.get(s.name)
        if known is not None and (known.scheme, known.accepted_by_kernel) != (s.scheme, s.accepted_by_kernel):
            raise RegistrationError(f"{where} clashes with the one registered by {_who(known.addon)}")
        if known is None:
            self.schemes[s.name] = s


def _known_flags(addon: str, what: str, flags: dict, known: tuple) -> None:
    unknown = sorted(set(flags) - set(known))
    if unknown:
        raise RegistrationError(f"addon {addon!r}: {what}: unknown option(s) {', '.join(unknown)}; "
                                f"the options are {', '.join(known)}")


def _roles(addon: str, name, roles) -> frozenset:
    if not isinstance(roles, (list, tuple, set, frozenset)) or not all(isinstance(r, str) for r in roles):
        raise RegistrationError(f"addon {addon!r}: permission {name!r}: roles must be a list of role names "
                                f"({', '.join(ROLES)})")
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise RegistrationError(f"addon {addon!r}: permission {name!r} names unknown role(s) "
                                f"{', '.join(unknown)}; the roles are {', '.join(ROLES)}")
    return frozenset(roles)


def _who(addon: str) -> str:
    return "the kernel" if addon == KERNEL else f"addon {addon!r}"


def collect(registry) -> AccessCatalogue:
    """The kernel's permissions and schemes, then each addon's, in load order, validated.

    Calls ``smsgw_permissions`` and ``smsgw_security_schemes`` once per addon, with a ``register``
    that knows which addon is calling, so every error names it.
    """
    permissions: dict = {}
    schemes: dict = {}
    collector = _Collector(permissions, schemes)
    for p in KERNEL_PERMISSIONS:
        collector.add_permission(p)
    for name, scheme in SECURITY_SCHEMES.items():
        collector.add_scheme(SecurityScheme(name, scheme))
    for addon in registry.names():
        registry.call_one(addon, "smsgw_permissions", register=collector.permission_register(addon))
        registry.call_one(addon, "smsgw_security_schemes", register=collector.scheme_register(addon))
    return AccessCatalogue(dict(sorted(permissions.items())), schemes)


_installed: AccessCatalogue | None = None


def install(access: AccessCatalogue) -> None:
    """Make ``access`` the catalogue of this process (done by :class:`core.platform.Platform`)."""
    global _installed
    _installed = access


def catalogue() -> AccessCatalogue:
    """The catalogue of this process; before a platform was built, that of the installed addons."""
    if _installed is None:
        from .addons import AddonRegistry

        install(AddonRegistry().access)
    return _installed


def __getattr__(name: str):
    # Read-only views kept for callers of the former constants (tests, tools).
    views = {"MATRIX": "matrix", "API_SCOPES": "api_scopes", "VERIFIED_ONLY": "verified_only"}
    if name in views:
        return getattr(catalogue(), views[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_NOTHING = frozenset()


def role_permissions(role: str) -> frozenset:
    return catalogue().by_role.get(role, _NOTHING)


@dataclass(frozen=True, slots=True)  # one per cached credential (each waiting phone has one): keep it small
class Principal:
    """Who is making this request, and with what rights."""

    kind: str  # "user" | "token" | "admin" | "device"
    id: int
    role: str
    tenant: str | None
    permissions: frozenset = field(default_factory=frozenset)
    name: str = ""
    email: str = ""
    via: str = ""  # "session" | "jwt" | "api_token" | "admin_grant" | "device_token"
    reason: str | None = None  # the written reason of an admin access grant
    session_id: int | None = None
    family: str | None = None  # the refresh family a JWT was minted with (credentials derived from it die with it)
    time_zone: str = ""  # a member's time zone for the times on pages (core.localtime); empty: UTC
    language: str = ""  # a person's own language setting ("": their workspace's, or the browser's)
    # An API token's use before this request (its ``last_used_at`` as read, or its creation when never
    # used): lets monitoring see a token used again after a long idle time without a lookup of its own.
    previous_use: object = None

    def can(self, permission: str) -> bool:
        if permission == PUBLIC:
            return True
        if permission == AUTHENTICATED:
            return True
        return permission in self.permissions

    @property
    def is_customer(self) -> bool:
        return self.role == CUSTOMER

    @property
    def actor(self) -> str:
        """How the audit trail names this principal."""
        return f"{self.kind}:{self.id}"
