"""Host to workspace: which tenant a request's ``Host`` names, and that tenant's cached info.

Both the handler base (:mod:`core.web.base`) and the token prefetch that runs before any
handler exists (:mod:`core.web.principals`) route by these.
"""

from __future__ import annotations

from ..db import run_sync

# NOTIFY payload: a custom host name whose owner changed (Platform.hosts_changed); "" for all.
HOST_CHANNEL = "smsgw_host_changed"


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


async def slug_for_custom_host(platform, host_name: str) -> str | None:
    """The slug of the workspace whose own host name this is (``smsgw_tenant_for_host``), or ``None``;
    cached in ``platform.host_cache``, the database thread only on a miss."""
    host = host_name.lower().rstrip(".")
    if not host or len(host) > 253:
        return None
    hit, slug = platform.host_cache.peek(host)
    if not hit:
        slug = await run_sync(platform.host_cache.get, host)
    return slug
