"""Media types of request bodies, parsed rather than searched.

A JSON API must refuse bodies that a cross-site HTML form or ``fetch`` without a
CORS preflight can send (``text/plain``, ``application/x-www-form-urlencoded``,
``multipart/form-data``); a substring test like ``"json" in ctype`` lets
``text/plain; x=json`` through. Only ``application/json`` and the structured
``application/<name>+json`` types (RFC 6839) are JSON here, with any parameters.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9a-z-]+$")  # RFC 9110 token, lower-cased


def media_type(content_type: str | None) -> str:
    """The ``type/subtype`` of a Content-Type header, lower-cased ("" when there is none or it is malformed)."""
    essence = (content_type or "").split(";", 1)[0].strip().lower()
    main, sep, sub = essence.partition("/")
    if not sep or not _TOKEN.match(main) or not _TOKEN.match(sub):
        return ""
    return essence


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type header names JSON: ``application/json`` or ``application/<name>+json``."""
    main, _, sub = media_type(content_type).partition("/")
    return main == "application" and (sub == "json" or (sub.endswith("+json") and len(sub) > len("+json")))
