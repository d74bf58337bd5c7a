"""Prefixed secret tokens: recognisable when leaked, typo-checked before any database lookup.

Format: ``<kind>_<tenant-slug>_<32 random base62><6 base62 checksum>``. The
checksum (CRC-32 of everything before it) rejects a mistyped token without a
query; the tenant slug lets a token work on the base domain; only a SHA-256
digest of the whole token is stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
RANDOM_LEN = 32
CHECK_LEN = 6
KINDS = {"sgw": "API token", "sgd": "device token", "sgr": "refresh token", "sge": "enrollment token"}
TOKEN_RE = re.compile(r"^(sgw|sgd|sgr|sge)_([a-z0-9][a-z0-9-]{1,38}[a-z0-9])_([0-9A-Za-z]{%d})([0-9A-Za-z]{%d})$"
                      % (RANDOM_LEN, CHECK_LEN))


def _base62(n: int, width: int) -> str:
    out = []
    for _ in range(width):
        n, r = divmod(n, 62)
        out.append(ALPHABET[r])
    return "".join(reversed(out))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), CHECK_LEN)


def generate(kind: str, tenant_slug: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown token kind {kind!r}")
    body = f"{kind}_{tenant_slug}_" + "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LEN))
    return body + _checksum(body)


def parse(token: str, kind: str | None = None) -> tuple[str, str] | None:
    """``(kind, tenant_slug)`` for a well-formed token whose checksum matches, else ``None``."""
    if not isinstance(token, str) or len(token) > 120:
        return None
    m = TOKEN_RE.match(token)
    if not m or (kind and m.group(1) != kind):
        return None
    if _checksum(token[:-CHECK_LEN]) != m.group(4):
        return None
    return m.group(1), m.group(2)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def hint(token: str) -> str:
    """What may be shown later: the kind, the tenant and the last 4 characters."""
    kind, slug = token.split("_", 2)[:2]
    return f"{kind}_{slug}_…{token[-4:]}"
