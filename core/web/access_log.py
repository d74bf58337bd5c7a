"""Access logging that never writes a secret: no query values for sensitive keys, no headers."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlencode

log = logging.getLogger("smsgw.access")

SENSITIVE = re.compile(r"(token|key|secret|password|passwd|code|signature|sig|auth|session|jwt)", re.I)


def redact_query(query: str) -> str:
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    return urlencode([(k, "[redacted]" if SENSITIVE.search(k) else v) for k, v in pairs])


def log_request(handler) -> None:
    status = handler.get_status()
    req = handler.request
    query = redact_query(req.query)
    path = req.path + ("?" + query if query else "")
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    log.log(level, "%d %s %s %s %.1fms", status, req.method, req.host_name, path,
            1000.0 * req.request_time())
