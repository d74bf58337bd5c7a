"""One HTTP POST to a webhook endpoint, connected to the address the SSRF guard checked.

Every attempt has one deadline for all of it (DNS, connect, TLS, request, the whole answer):
a socket timeout alone bounds each read, so a receiver that drips its answer a byte at a
time would hold the sending thread for ever. At the deadline the socket is shut down, which
ends whatever read or write is blocked on it.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.web.params import is_digits

from . import ssrf

TIMEOUT = 30.0  # seconds for the whole attempt; SMSGW_WEBHOOK_TIMEOUT sets it lower
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


class PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to ``ip``, the address the SSRF guard checked, whatever ``host`` (kept
    for the Host header, SNI and the certificate check) resolves to by now: no second lookup an
    attacker's DNS could answer differently (DNS rebinding). Made by :func:`_connection`."""

    ip: str

    def connect(self):
        self.sock = socket.create_connection((self.ip, self.port), self.timeout, self.source_address)
        try:  # as http.client does: a request goes out without waiting for the previous segment's ACK
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass


class PinnedHTTPSConnection(http.client.HTTPSConnection, PinnedHTTPConnection):
    """:class:`PinnedHTTPConnection` with TLS: ``HTTPSConnection.connect`` takes its socket from
    :meth:`PinnedHTTPConnection.connect` (next in line) and wraps it for ``host``."""


def _connection(scheme: str, host: str, ip: str, port: int, timeout: float) -> PinnedHTTPConnection:
    if scheme == "https":
        conn = PinnedHTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    else:
        conn = PinnedHTTPConnection(host, port, timeout=timeout)
    conn.ip = ip
    return conn


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if is_digits(value):
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _cut(conn, expired: threading.Event) -> None:
    """At the deadline (on the timer's thread): end the blocked read or write of the attempt."""
    expired.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def post(url: str, body: bytes, headers: dict, timeout: float = TIMEOUT, allow_private=None) -> Outcome:
    start = time.monotonic()
    deadline = start + timeout

    def elapsed_ms() -> int:
        return int((time.monotonic() - start) * 1000)

    try:
        host, ip, port = ssrf.resolve(url, allow_private, timeout=timeout)
    except ssrf.UnsafeURL as exc:
        return Outcome(None, elapsed_ms(), f"refused: {exc}")
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return Outcome(None, elapsed_ms(), f"timeout: no answer within {timeout:g} s")
    conn = _connection(parts.scheme, host, ip, port, remaining)
    expired = threading.Event()
    timer = threading.Timer(remaining, _cut, (conn, expired))
    timer.daemon = True
    timer.start()
    try:
        conn.request("POST", path, body=body, headers={
            **headers, "Content-Type": "application/json", "User-Agent": USER_AGENT,
            "Host": parts.netloc.rsplit("@", 1)[-1]})
        resp = conn.getresponse()
        excerpt = resp.read(512).decode("utf-8", "replace")
        if expired.is_set():  # cut short: what was read may be a fragment
            raise TimeoutError
        return Outcome(resp.status, elapsed_ms(), None, parse_retry_after(resp.getheader("Retry-After")), excerpt)
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        if expired.is_set() or isinstance(exc, TimeoutError):
            return Outcome(None, elapsed_ms(), f"timeout: no complete answer within {timeout:g} s")
        return Outcome(None, elapsed_ms(), f"{exc.__class__.__name__}: {exc}"[:300])
    finally:
        timer.cancel()
        conn.close()
