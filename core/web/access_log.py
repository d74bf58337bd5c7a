"""Access logging that never writes a secret: no query values for sensitive keys, no headers."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode

from .. import metrics

log = logging.getLogger("smsgw.access")

SENSITIVE = re.compile(r"(token|key|secret|password|passwd|code|signature|sig|auth|session|jwt)", re.I)


def redact_query(query: str, depth: int = 0) -> str:
    """Replace values of sensitive keys, also inside URLs nested in values (``next=/x?token=...``)."""
    if not query:
        return ""
    if "%" not in query and "+" not in query and not SENSITIVE.search(query):
        return query  # no sensitive name anywhere, and nothing to decode that could hide one
    pairs = parse_qsl(query, keep_blank_values=True)
    out = []
    for k, v in pairs:
        if SENSITIVE.search(k):
            v = "[redacted]"
        elif "=" in v and depth < 3:
            path, sep, inner = v.partition("?")
            v = path + sep + redact_query(inner, depth + 1) if sep else redact_query(v, depth + 1)
        out.append((k, v))
    return urlencode(out)


def log_request(handler) -> None:
    req = handler.request
    elapsed_ms = 1000.0 * req.request_time()
    log_line(handler.get_status(), req.method, req.host_name, req.path, req.query, elapsed_ms)
    if metrics.ON:
        metrics.observe_request(metrics.route_of(handler.__class__), req.method, handler.get_status(),
                                elapsed_ms / 1000.0)
    tenant = getattr(handler, "tenant", None)
    if tenant is not None:  # metering and latency per workspace (smsgw_request_finished)
        handler.platform.registry.hook.smsgw_request_finished(tenant=tenant, handler=handler, elapsed_ms=elapsed_ms)


def log_line(status: int, method: str, host: str, path: str, query: str, elapsed_ms: float,
             rid: str | None = None) -> None:
    # 499: the client hung up (a phone's long poll dropped by its network): routine, not a warning.
    level = logging.INFO if status < 400 or status == 499 else logging.WARNING if status < 500 else logging.ERROR
    if not log.isEnabledFor(level):
        return
    query = redact_query(query)
    log.log(level, "%d %s %s %s %.1fms", status, method, host, path + ("?" + query if query else ""), elapsed_ms,
            extra={"request_id": rid} if rid else None)
