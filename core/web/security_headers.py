"""The security headers every response carries, pages and APIs alike."""

from __future__ import annotations

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; form-action 'self'; object-src 'none'; "
       "base-uri 'none'; frame-ancestors 'none'")

_COMMON = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "DENY"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
_HTTPS = _COMMON + (("Strict-Transport-Security", "max-age=63072000; includeSubDomains"),)


def security_headers(https: bool) -> tuple[tuple[str, str], ...]:
    """``(name, value)`` pairs; HSTS only over HTTPS (browsers ignore it on plain HTTP)."""
    return _HTTPS if https else _COMMON
