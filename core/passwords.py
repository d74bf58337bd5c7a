"""Password hashing: bcrypt over a keyed pre-hash, so length never truncates.

bcrypt reads at most 72 bytes. We first take HMAC-SHA256 of the whole
password under a server-side key (the *pepper*, from the secret store) and
bcrypt its base64 form (44 bytes). Two passwords that differ anywhere, even
after byte 72, hash differently; a stolen database alone cannot be attacked
without the pepper.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac

import bcrypt

from .i18n import N_
from .web.problem import Refusal

MIN_LENGTH = 10
MAX_LENGTH = 1024
DEFAULT_COST = 12


class PasswordPolicyError(Refusal):
    """The password breaks the policy; the message says how to fix it."""


def check_policy(password: str) -> None:
    if not isinstance(password, str):
        raise PasswordPolicyError(N_("Password must be text."))
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(N_("Password must be at least %(min)s characters long."), {"min": MIN_LENGTH})
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(N_("Password must be at most %(max)s characters long."), {"max": MAX_LENGTH})


def _prehash(password: str, pepper: bytes) -> bytes:
    return base64.b64encode(hmac.new(pepper, password.encode("utf-8"), hashlib.sha256).digest())


def hash_password(password: str, pepper: bytes, cost: int = DEFAULT_COST) -> str:
    check_policy(password)
    return bcrypt.hashpw(_prehash(password, pepper), bcrypt.gensalt(rounds=cost)).decode("ascii")


def verify_password(password: str, stored: str | None, pepper: bytes, cost: int = DEFAULT_COST) -> bool:
    """Constant-shape check; a missing hash still costs one bcrypt run at the configured cost."""
    if not isinstance(password, str) or len(password) > MAX_LENGTH:
        return False
    candidate = _prehash(password, pepper)
    if not stored:
        bcrypt.checkpw(candidate, _dummy_hash(cost))
        return False
    try:
        return bcrypt.checkpw(candidate, stored.encode("ascii"))
    except ValueError:
        return False


def hash_cost(stored: str) -> int:
    """The cost factor recorded in a bcrypt hash (``$2b$12$...`` → 12)."""
    return int(stored.split("$")[2])


@functools.lru_cache(maxsize=8)
def _dummy_hash(cost: int) -> bytes:
    return bcrypt.hashpw(b"smsgw-dummy-password-for-timing", bcrypt.gensalt(rounds=cost))
