"""The hook the compat addon offers to the kernel: revoked access tokens.

``core.web.base.BaseHandler._principal_from_jwt`` calls it (when some installed
addon declares it) inside the tenant's transaction, for every access token it
accepts. Ideally the spec would live in ``core/hookspecs.py``; it is declared
here because the compat addon is the one that introduces revocation by ``jti``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

from core.hookspecs import every_addon

if TYPE_CHECKING:
    from core.tenancy import TenantInfo

hookspec = pluggy.HookspecMarker("smsgw")


@hookspec
@every_addon
def smsgw_access_token_revoked(tenant: TenantInfo, claims: dict) -> bool | None:
    """Return ``True`` when the access token with these (verified) ``claims`` was revoked.

    Called inside the tenant's transaction; ``None``/``False`` results mean "not revoked by me".

    :param tenant: the :class:`core.tenancy.TenantInfo` the token names.
    :param claims: the verified JWT claims (``jti``, ``sub``, ``exp``, ...).

    Result: collected: the token is revoked when any result is true.
    Order: dependencies first.
    Reaches: every installed addon (a tenant that disables compat must not bring its revoked tokens back).
    """
