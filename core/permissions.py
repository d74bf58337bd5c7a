"""Who may do what: the one permission matrix, and the principal every handler checks.

| permission       | Customer | User | Admin (with a reasoned grant) | API token scope |
|------------------|----------|------|-------------------------------|-----------------|
| dashboard:view   | yes      | yes  | yes                           | -               |
| profile:edit     | yes      | yes  | -                             | -               |
| messages:send    | yes      | yes  | -                             | messages:send   |
| messages:read    | yes      | yes  | yes                           | messages:read   |
| devices:read     | yes      | yes  | yes                           | devices:read    |
| devices:write    | yes      | -    | -                             | devices:write   |
| webhooks:read    | yes      | yes  | yes                           | webhooks:read   |
| webhooks:write   | yes      | -    | -                             | webhooks:write  |
| settings:write   | yes      | -    | -                             | settings:write  |
| users:read       | yes      | -    | yes                           | -               |
| users:manage     | yes      | -    | -                             | -               |
| tokens:manage    | yes      | -    | -                             | -               |
| audit:read       | yes      | -    | yes                           | -               |
| platform:admin   | -        | -    | yes (base domain only)        | -               |

An API token holds exactly the scopes it was created with (a subset of the
creating Customer's permissions). Admins see a tenant's data only read-only and
only under an access grant that carries a written reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .i18n import N_

CUSTOMER, USER, ADMIN = "customer", "user", "admin"
# Shown as _(role|capitalize) and _(status|capitalize) in templates.
LABELS = (N_("Customer"), N_("User"), N_("Admin"), N_("Token"), N_("Active"), N_("Suspended"))

MATRIX: dict[str, frozenset] = {
    "dashboard:view": frozenset({CUSTOMER, USER, ADMIN}),
    "profile:edit": frozenset({CUSTOMER, USER}),
    "messages:send": frozenset({CUSTOMER, USER}),
    "messages:read": frozenset({CUSTOMER, USER, ADMIN}),
    "devices:read": frozenset({CUSTOMER, USER, ADMIN}),
    "devices:write": frozenset({CUSTOMER}),
    "webhooks:read": frozenset({CUSTOMER, USER, ADMIN}),
    "webhooks:write": frozenset({CUSTOMER}),
    "settings:write": frozenset({CUSTOMER}),
    "users:read": frozenset({CUSTOMER, ADMIN}),
    "users:manage": frozenset({CUSTOMER}),
    "tokens:manage": frozenset({CUSTOMER}),
    "audit:read": frozenset({CUSTOMER, ADMIN}),
    "platform:admin": frozenset({ADMIN}),
}

# What a self-service workspace may not do until its owner confirmed their address: nothing
# that reaches third parties (SMS, invitations) or mints credentials that could. Checked for
# every credential in BaseHandler.check_permission. (To move into the addons' register hook
# with the rest of this matrix.)
VERIFIED_ONLY = frozenset({"messages:send", "users:manage", "tokens:manage"})

API_SCOPES = ("messages:send", "messages:read", "devices:read", "devices:write", "webhooks:read",
              "webhooks:write", "settings:write")

PUBLIC = "public"  # a handler method anyone may call (sign-in pages, health, JWKS)
# Any principal of this tenant, whatever its scope: only for what every credential may do (say who it
# is, manage the tokens it minted itself). Acting on a person's account needs ``profile:edit``.
AUTHENTICATED = "authenticated"


def role_permissions(role: str) -> frozenset:
    return frozenset(p for p, roles in MATRIX.items() if role in roles)


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
