"""Access logging that never writes a secret: no query values for sensitive keys, no headers."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode

log = logging.getLogger("smsgw.access")

SENSITIVE = re.compile(r"(token|key|secret|password|passwd|code|signature|sig|auth|session|jwt)", re.I)


def redact_query(query: str, depth: int = 0) -> str:
    """Replace values of sensitive keys, also inside URLs nested in values (``next=/x?token=...``)."""
    if not query:
        return ""
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
    status = handler.get_status()
    req = handler.request
    query = redact_query(req.query)
    path = req.path + ("?" + query if query else "")
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    log.log(level, "%d %s %s %s %.1fms", status, req.method, req.host_name, path,
            1000.0 * req.request_time())
