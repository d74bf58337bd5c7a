"""Live regions: parts of a page that update without a reload (``core/static/live.js``).

A page marks a region ``<div id="…" data-live="<seconds>" data-live-version="{{ live_version }}">``
and includes ``live.js``. The script asks the same address with ``?live=1`` every few seconds (not
while the tab is hidden); the handler answers that with the region's *version*, a cheap figure
that changes when the region would (:func:`answer_version`). Only when it changed does the script
fetch the page itself and swap the region's content, so an open tab costs one small, indexed
query per interval, and a page that changed costs one render. Without JavaScript the page is what
it always was.
"""

from __future__ import annotations

import hashlib
import json


def wants_version(handler) -> bool:
    """The request is a live region's check (``?live=1``)."""
    return handler.get_query_argument("live", "") == "1"


def version_of(*values) -> str:
    """A short version string for any figures (times, counts, tuples)."""
    return hashlib.sha256(repr(values).encode()).hexdigest()[:16]


def answer_version(handler, version: str) -> None:
    handler.set_header("Content-Type", "application/json")
    handler.set_header("Cache-Control", "no-store")
    handler.finish(json.dumps({"v": version}))
