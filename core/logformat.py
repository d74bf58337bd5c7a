"""How the platform's log lines look, made cheaply: the web process writes one per request.

``LineFormatter`` gives ``2026-12-07 12:00:00,123 INFO smsgw.access: ...`` like the standard
formatter, but formats a second's date and time once, not once per line. :func:`configure` also
tells :mod:`logging` not to look up each call's source file and line (the lines do not show them;
the Logging HOWTO's "Optimization" section names this switch).

``SMSGW_LOG_FORMAT=json``: one JSON object per line (``time``, ``level``, ``logger``, ``message``,
``request_id``, ``exception``) for a log collector. Each HTTP request then gets a request id (the
proxy's ``X-Request-ID`` when ``SMSGW_TRUST_PROXY`` is set and it looks like one, else a new one),
carried by :data:`request_id` into the request's database threads and into the tasks it queues
(:class:`core.tasks.TenantTask`), so the worker's lines for that work carry it too.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import os
import re
import time

import orjson

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: The id of the HTTP request whose work is running (None outside requests, or with text logs).
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("smsgw_request_id", default=None)
#: True with JSON logs: requests get ids (nothing per request otherwise).
REQUEST_IDS = False
TRUST_INCOMING = False
_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")


class LineFormatter(logging.Formatter):
    def __init__(self):
        super().__init__(FORMAT)
        self._second = None
        self._text = ""

    def formatTime(self, record, datefmt=None):
        second = int(record.created)
        if second != self._second:  # a race between threads writes the same text: harmless
            self._text, self._second = time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second)), second
        return f"{self._text},{int(record.msecs):03d}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record; ``request_id`` from the record (``extra``) or the context."""

    def format(self, record):
        out = {"time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            out["request_id"] = rid
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


def new_request_id(incoming: str | None = None) -> str:
    """The id of a request that just arrived (see the module's docstring)."""
    if incoming and TRUST_INCOMING and _ID.fullmatch(incoming):
        return incoming
    return os.urandom(8).hex()


def configure(verbose: bool = False, fmt: str = "text", trust_incoming: bool = False) -> None:
    """What ``logging.basicConfig`` does (a stderr handler on the root logger, unless it has one
    already), with :class:`LineFormatter`, or :class:`JsonFormatter` for ``fmt="json"``."""
    global REQUEST_IDS, TRUST_INCOMING
    logging._srcfile = None
    REQUEST_IDS, TRUST_INCOMING = fmt == "json", trust_incoming
    root = logging.getLogger()
    if root.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else LineFormatter())
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
