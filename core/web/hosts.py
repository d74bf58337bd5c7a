"""Host to workspace: which tenant a request's ``Host`` names, and that tenant's cached info.

Both the handler base (:mod:`core.web.base`) and the token prefetch that runs before any
handler exists (:mod:`core.web.principals`) route by these.
"""

from __future__ import annotations

from ..db import run_sync


def slug_for_host(host_name: str, base_domain: str) -> str | None:
    """The tenant slug a host name (without port) names, or ``None`` for any other host (the base
    domain, or one we do not serve: :func:`is_base_host` tells them apart)."""
    host = host_name.lower().rstrip(".")
    if host.endswith("." + base_domain):
        return host[: -len(base_domain) - 1]
    return None


def is_base_host(host_name: str, base_domain: str) -> bool:
    return host_name.lower().rstrip(".") == base_domain


async def tenant_by_slug(platform, slug: str):
    """The tenant's cached info (``None``: no such workspace); the database thread only on a miss."""
    hit, tenant = platform.tenant_cache.peek(slug)
    if not hit:
        tenant = await run_sync(platform.tenant_cache.get, slug)
    return tenant
