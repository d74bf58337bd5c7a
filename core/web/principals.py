"""Who a bearer token speaks for: API (``sgw``) and device (``sgd``) tokens looked up in their
tenant, and the principal kept for :data:`PRINCIPAL_TTL` seconds.

A phone's long poll and an API client's calls come again and again with the same token:
the lookup (a tenant transaction) is made once, then the principal is read from
``platform.principal_cache``. When many phones reconnect at once, :func:`prefetch_principal`
makes the lookup as soon as a request's head has arrived, before its handler exists (see
:mod:`core.web.detach`), so that what waits for the database is a parsed head, not a handler.
The handler (:class:`core.web.base.BaseHandler`) still makes every check itself.
"""

from __future__ import annotations

import functools
import itertools
import time

import tornado.httputil

from .. import tokenformat
from ..groupcommit import GroupCommit
from ..permissions import Principal
from .hosts import is_base_host, slug_for_host, tenant_by_slug

PRINCIPAL_TTL = 10.0  # seconds a bearer token's principal is reused without a lookup

# Token lookups of one tenant that arrive together (a fleet of phones coming back after a restart)
# share one transaction: BEGIN, role, search path and COMMIT once for the group, not once per phone.
token_lookups = GroupCommit(lambda lookups: [lookup() for lookup in lookups], concurrency=2, max_size=32)


def cached_token_principal(platform, tenant, credential: str) -> Principal | None:
    cached = platform.principal_cache.get((tenant.slug, tokenformat.digest(credential)))
    return cached[1] if cached and cached[0] > time.monotonic() else None


async def load_token_principal(platform, tenant, kind: str, credential: str) -> Principal | None:
    """Look an API (``sgw``) or device (``sgd``) token up in its tenant and cache the principal."""
    if kind == "sgw":
        from ..identity import api_token_principal

        lookup = functools.partial(api_token_principal, credential, tenant.slug)
    else:
        def lookup():
            return platform.registry.hook.smsgw_principal_from_token(token=credential, tenant=tenant)
    principal = await token_lookups(tenant.ref, lookup)
    if principal is not None:
        remember_principal(platform.principal_cache, (tenant.slug, tokenformat.digest(credential)), principal)
    return principal


def prefetch_principal(platform, authorization: str | None, host: str | None = None):
    """Before a handler exists: a job (call it, await the result) that puts a bearer token's
    principal in the cache, or ``None`` when there is nothing to do (no token, a JWT, a malformed token, already cached,
    or a token of another workspace than the one ``host`` names: the handler refuses that
    before any lookup, and so does the prefetch).

    When thousands of phones reconnect at once, each request then waits for its token lookup
    as a parsed request head, not as a whole handler. It only warms the cache: the handler
    still makes every check (and answers every error) itself.
    """
    if not authorization:
        return None
    scheme, _, credential = authorization.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or credential.count(".") == 2:
        return None
    if _cached(platform, credential):  # what nearly every request of a busy phone or client finds
        return None
    parsed = tokenformat.parse(credential)
    if parsed is None:
        return None
    kind, slug = parsed
    if host is not None:
        host_name = tornado.httputil.split_host_and_port(host)[0]
        host_slug = slug_for_host(host_name, platform.settings.base_domain)
        if host_slug is not None and host_slug != slug:
            return None
        if host_slug is None and not is_base_host(host_name, platform.settings.base_domain):
            return None  # a host we do not serve: the handler refuses it before any lookup
    hit, tenant = platform.tenant_cache.peek(slug)
    if hit and (tenant is None or not tenant.is_active or cached_token_principal(platform, tenant, credential)):
        return None

    return functools.partial(_warm_principal, platform, slug, tenant if hit else None, kind, credential)


def _cached(platform, credential: str) -> bool:
    """Whether a principal for this token is cached and fresh: nothing to warm. Only the token's
    shape is read to find its workspace (the checksum and the host are the handler's to check)."""
    shape = tokenformat.TOKEN_RE.match(credential) if len(credential) <= 120 else None
    if shape is None:
        return False
    entry = platform.principal_cache.get((shape.group(2), tokenformat.digest(credential)))
    return entry is not None and entry[0] > time.monotonic()


async def _warm_principal(platform, slug: str, tenant, kind: str, credential: str) -> None:
    info = tenant if tenant is not None else await tenant_by_slug(platform, slug)
    if info is not None and info.is_active:
        await load_token_principal(platform, info, kind, credential)


def remember_principal(cache: dict, key, principal) -> None:
    """Cache a principal for ``PRINCIPAL_TTL``. Entries stay in expiry order (a renewed key moves
    to the end), so expired ones are dropped from the front as new ones come: a fleet of phones
    that each poll once a minute leaves no pile of stale entries."""
    now = time.monotonic()
    for old in list(itertools.islice(cache, 32)):
        entry = cache.get(old)
        if entry is not None and entry[0] > now:
            break
        cache.pop(old, None)
    if len(cache) > 100_000:  # a flood of distinct credentials within one TTL
        cache.clear()
    cache.pop(key, None)
    cache[key] = (now + PRINCIPAL_TTL, principal)
