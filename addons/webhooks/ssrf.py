"""The SSRF guard: webhook URLs may not reach loopback, link-local, private or metadata addresses.

Names are resolved once and the connection is made to the address that was
checked (no second lookup an attacker's DNS could answer differently).
Self-hosters on a LAN set ``SMSGW_WEBHOOK_ALLOW_PRIVATE=1``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from urllib.parse import urlsplit

METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
            ipaddress.ip_address("100.100.100.200")}


class UnsafeURL(ValueError):
    """The URL is not acceptable as a webhook target; the message says why."""


def allow_private() -> bool:
    return os.environ.get("SMSGW_WEBHOOK_ALLOW_PRIVATE", "").lower() in ("1", "true", "yes")


def check_address(ip: str, allow_private_targets: bool) -> None:
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    if addr in METADATA:
        raise UnsafeURL(f"{addr} is a cloud metadata address")
    if allow_private_targets:
        if addr.is_multicast or addr.is_unspecified:
            raise UnsafeURL(f"{addr} cannot receive webhooks")
        return
    if addr.is_loopback:
        raise UnsafeURL(f"{addr} is a loopback address")
    if addr.is_link_local:
        raise UnsafeURL(f"{addr} is a link-local address")
    if addr.is_private or addr in ipaddress.ip_network("100.64.0.0/10"):
        raise UnsafeURL(f"{addr} is a private address")
    if addr.is_multicast or addr.is_reserved or addr.is_unspecified or not addr.is_global:
        raise UnsafeURL(f"{addr} is not a public address")


def validate_url(url: str) -> None:
    """Syntax only (no DNS): scheme, host, no credentials."""
    if not isinstance(url, str) or not 8 <= len(url) <= 2000:
        raise UnsafeURL("the URL must be 8 to 2,000 characters")
    parts = urlsplit(url)
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


def resolve(url: str, allow_private_targets: bool | None = None) -> tuple[str, str, int]:
    """``(host, ip, port)`` for a safe URL, or :class:`UnsafeURL`."""
    validate_url(url)
    allow = allow_private() if allow_private_targets is None else allow_private_targets
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeURL(f"the host name {parts.hostname} does not resolve") from None
    ips = sorted({info[4][0] for info in infos})
    for ip in ips:  # every address must be safe: the attacker may control which one we'd pick
        check_address(ip, allow)
    return parts.hostname, ips[0], port
