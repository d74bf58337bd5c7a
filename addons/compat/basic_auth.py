"""HTTP Basic authentication (``email:password``) for the compat API, with a short success cache.

SMS Gateway for Android clients often send the account's login and password with
every request. Checking a password costs a bcrypt hash, so a *successful* check is
remembered for :data:`TTL` seconds under a keyed SHA-256 of tenant, email and
password (HMAC with a per-process random key: the cache never holds anything from
which the password could be recovered offline). Failures are never cached: they
go through the login throttle every time.

A cache hit still reads the user row (one indexed lookup): a disabled account or a
changed password stops working at once, not after the TTL.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from core.i18n import N_
from core.web.problem import Refusal

TTL = 60.0
MAX_ENTRIES = 10_000

_key = secrets.token_bytes(32)
_lock = threading.Lock()
_cache: dict[str, tuple[float, int, str]] = {}  # digest -> (expires, user id, password hash at check time)


class BadCredentials(Refusal):
    """The Authorization header is not valid Basic credentials."""


def parse(credential: str) -> tuple[str, str]:
    """``(email, password)`` from the base64 part of a Basic Authorization header."""
    try:
        raw = base64.b64decode(credential.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCredentials(N_("The Basic credentials are not valid base64 of 'email:password'.")) from None
    email, sep, password = raw.partition(":")
    if not sep or not email or not password:
        raise BadCredentials(N_("Send Basic credentials as 'email:password'."))
    if "\x00" in raw or any(ord(c) < 32 for c in email):
        raise BadCredentials(N_("The Basic credentials hold control characters; send 'email:password' as typed."))
    return email.strip()[:254], password[:2048]


def cache_key(tenant_slug: str, email: str, password: str) -> str:
    msg = "\0".join((tenant_slug, email.strip().lower(), password)).encode()
    return hmac.new(_key, msg, hashlib.sha256).hexdigest()


def lookup(key: str) -> tuple[int, str] | None:
    entry = _cache.get(key)
    if entry is None:
        return None
    if entry[0] < time.monotonic():
        with _lock:
            _cache.pop(key, None)
        return None
    return entry[1], entry[2]


def remember(key: str, user_id: int, password_hash: str | None) -> None:
    now = time.monotonic()
    with _lock:
        if len(_cache) >= MAX_ENTRIES:
            for k in [k for k, v in _cache.items() if v[0] < now]:
                del _cache[k]
            if len(_cache) >= MAX_ENTRIES:  # still full of live entries: drop the oldest
                for k in sorted(_cache, key=lambda k: _cache[k][0])[: MAX_ENTRIES // 10]:
                    del _cache[k]
        _cache[key] = (now + TTL, user_id, password_hash or "")


def forget(key: str) -> None:
    with _lock:
        _cache.pop(key, None)


def clear() -> None:
    with _lock:
        _cache.clear()
