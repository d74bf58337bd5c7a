"""The SSRF guard: webhook URLs may not reach loopback, link-local, private or metadata addresses.

Names are resolved once and the connection is made to the address that was
checked (no second lookup an attacker's DNS could answer differently).
IPv6 forms that carry an IPv4 address (IPv4-mapped, NAT64, 6to4, Teredo,
IPv4-compatible, ISATAP) are judged by the IPv4 address they lead to as well.
Self-hosters on a LAN set ``SMSGW_WEBHOOK_ALLOW_PRIVATE=1``.

Lookups never run inside a database transaction (a slow resolver would hold a
pooled connection and a tenant's locks): callers resolve first, then open the
transaction; :func:`resolve` refuses to run inside one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from urllib.parse import urlsplit

METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
            ipaddress.ip_address("100.100.100.200")}
CGNAT = ipaddress.ip_network("100.64.0.0/10")
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix: the last 32 bits are the IPv4 target
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215 local use: the operator decides the layout
COMPATIBLE = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible addresses (RFC 4291)
ISATAP_IDS = (0x00005EFE, 0x02005EFE)  # interface ids ::0:5efe:a.b.c.d and ::200:5efe:a.b.c.d (RFC 5214)
LOOKUP_TIMEOUT = 10.0

# getaddrinfo cannot be interrupted: it runs here, and callers wait at most their own deadline,
# so a slow resolver holds a thread of this pool (for the system resolver's own timeout), never a
# delivery worker or the DB pool. Threads are made as needed; many, so slow names of a few
# workspaces do not make everyone's lookups queue.
_lookups = ThreadPoolExecutor(max_workers=32, thread_name_prefix="webhook-dns")


class UnsafeURL(ValueError):
    """The URL is not acceptable as a webhook target; the message says why."""


class LookupInTransaction(RuntimeError):
    """A DNS lookup was started inside a database transaction (a bug in the caller)."""


def allow_private() -> bool:
    return os.environ.get("SMSGW_WEBHOOK_ALLOW_PRIVATE", "").lower() in ("1", "true", "yes")


def embedded_ipv4(addr: ipaddress.IPv6Address) -> tuple[str | None, list[tuple[str, ipaddress.IPv4Address]]]:
    """``(form, [(what, ipv4), ...])``: the IPv4 addresses an IPv6 address leads to, and its form."""
    low32 = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr.ipv4_mapped:
        return "IPv4-mapped", [("IPv4-mapped", addr.ipv4_mapped)]
    if addr in NAT64:
        return "NAT64", [("NAT64", low32)]
    if addr in NAT64_LOCAL:
        return "local-use NAT64", []  # where it leads depends on the local translator: refused as a form
    if addr.sixtofour:
        return "6to4", [("6to4", addr.sixtofour)]
    if addr.teredo:
        server, client = addr.teredo
        return "Teredo", [("Teredo server", server), ("Teredo client", client)]
    if addr in COMPATIBLE and int(addr) > 1:  # not :: or ::1, which are judged as themselves
        return "IPv4-compatible", [("IPv4-compatible", low32)]
    if (int(addr) >> 32) & 0xFFFFFFFF in ISATAP_IDS:
        return "ISATAP", [("ISATAP", low32)]
    return None, []


# Forms that are only a way to reach their IPv4 address: judged by it alone.
TRANSPARENT = {"IPv4-mapped", "NAT64", "6to4"}
# Forms no public receiver uses (deprecated, or translated by someone else's rules): refused as such.
SPECIAL = {"IPv4-compatible", "Teredo", "local-use NAT64"}


def _refusal(addr, allow_private_targets: bool) -> str | None:
    """Why ``addr`` may not receive webhooks ("a loopback address"), or None."""
    if addr in METADATA:
        return "a cloud metadata address"
    if addr.is_multicast or addr.is_unspecified:
        return "an address that cannot receive webhooks"
    if allow_private_targets:
        return None
    if addr.is_loopback:
        return "a loopback address"
    if addr.is_link_local:
        return "a link-local address"
    if addr.is_private or addr in CGNAT:
        return "a private address"
    if addr.is_reserved or not addr.is_global:
        return "not a public address"
    return None


def check_address(ip: str, allow_private_targets: bool) -> None:
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address):
        form, carried = embedded_ipv4(addr)
        for what, v4 in carried:
            why = _refusal(v4, allow_private_targets)
            if why:
                raise UnsafeURL(f"{addr} leads to {v4} ({what}), {why}")
        if form in TRANSPARENT:
            return
        if form in SPECIAL and not allow_private_targets:
            raise UnsafeURL(f"{addr} is a {form} address, not a public address that can receive webhooks")
    why = _refusal(addr, allow_private_targets)
    if why:
        raise UnsafeURL(f"{addr} is {why}")


def validate_url(url: str) -> None:
    """Syntax only (no DNS): scheme, host, no credentials."""
    if not isinstance(url, str) or not 8 <= len(url) <= 2000:
        raise UnsafeURL("the URL must be 8 to 2,000 characters")
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [IPv6 literal
        raise UnsafeURL("the URL is not valid") from None
    if parts.scheme not in ("https", "http"):
        raise UnsafeURL("the URL must start with https:// (or http://)")
    if not parts.hostname:
        raise UnsafeURL("the URL has no host name")
    if parts.username or parts.password:
        raise UnsafeURL("put no credentials in the URL; verify our signature instead")
    try:
        parts.port
    except ValueError:
        raise UnsafeURL("the URL's port is not valid") from None


def _target(url: str) -> tuple[str, int]:
    validate_url(url)
    parts = urlsplit(url)
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _lookup(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeURL(f"the host name {host} does not resolve") from None
    return sorted({info[4][0] for info in infos})


def _pick(host: str, port: int, ips: list[str], allow: bool | None) -> tuple[str, str, int]:
    allow = allow_private() if allow is None else allow
    for ip in ips:  # every address must be safe: the attacker may control which one we'd pick
        check_address(ip, allow)
    return host, ips[0], port


def _in_transaction() -> bool:
    from core.db import app_db

    return app_db.in_transaction()


def resolve(url: str, allow_private_targets: bool | None = None,
            timeout: float = LOOKUP_TIMEOUT) -> tuple[str, str, int]:
    """``(host, ip, port)`` for a safe URL, or :class:`UnsafeURL`; waits at most ``timeout`` s for DNS."""
    host, port = _target(url)
    if _in_transaction():
        raise LookupInTransaction("resolve webhook URLs before opening a transaction, never inside one")
    future = _lookups.submit(_lookup, host, port)
    try:
        ips = future.result(max(timeout, 0.0))
    except FutureTimeout:
        raise UnsafeURL(f"the host name {host} did not resolve within {timeout:.0f} s") from None
    return _pick(host, port, ips, allow_private_targets)


async def resolve_async(url: str, allow_private_targets: bool | None = None,
                        timeout: float = LOOKUP_TIMEOUT) -> tuple[str, str, int]:
    """:func:`resolve` for the IOLoop: the lookup runs on the resolver threads, the loop waits."""
    host, port = _target(url)
    try:
        ips = await asyncio.wait_for(asyncio.wrap_future(_lookups.submit(_lookup, host, port)), timeout)
    except asyncio.TimeoutError:
        raise UnsafeURL(f"the host name {host} did not resolve within {timeout:.0f} s") from None
    return _pick(host, port, ips, allow_private_targets)
