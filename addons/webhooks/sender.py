"""One HTTP POST to a webhook endpoint, connected to the address the SSRF guard checked."""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import ssrf

TIMEOUT = 15.0
USER_AGENT = "smsgw-webhooks/1.0"


@dataclass
class Outcome:
    status: int | None
    duration_ms: int
    error: str | None = None
    retry_after: float | None = None
    excerpt: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def _connection(scheme: str, host: str, ip: str, port: int, timeout: float):
    cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    kwargs = {"context": ssl.create_default_context()} if scheme == "https" else {}
    conn = cls(host, port, timeout=timeout, **kwargs)
    # Keep the host name for the Host header, SNI and certificate checks; connect to the checked IP.
    conn._create_connection = lambda address, timeout=timeout, source_address=None: socket.create_connection(
        (ip, port), timeout, source_address)
    return conn


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if (value.isascii() and value.isdigit()):
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def post(url: str, body: bytes, headers: dict, timeout: float = TIMEOUT, allow_private=None) -> Outcome:
    start = time.monotonic()
    try:
        host, ip, port = ssrf.resolve(url, allow_private)
    except ssrf.UnsafeURL as exc:
        return Outcome(None, 0, f"refused: {exc}")
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = _connection(parts.scheme, host, ip, port, timeout)
    try:
        conn.request("POST", path, body=body, headers={
            **headers, "Content-Type": "application/json", "User-Agent": USER_AGENT,
            "Host": parts.netloc.rsplit("@", 1)[-1]})
        resp = conn.getresponse()
        excerpt = resp.read(512).decode("utf-8", "replace")
        return Outcome(resp.status, int((time.monotonic() - start) * 1000), None,
                       parse_retry_after(resp.getheader("Retry-After")), excerpt)
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        return Outcome(None, int((time.monotonic() - start) * 1000), f"{exc.__class__.__name__}: {exc}"[:300])
    finally:
        conn.close()
