"""Answering a request after its handler has gone: long polls that cost a connection, not a handler.

A long poll spends nearly all its life waiting. Held by a ``RequestHandler``
(its request, headers, coroutine frames and timers) a waiting poll costs about
three times what the bare connection does. :class:`DetachingDelegate` sits
between Tornado's ``HTTPServer`` and the application; a handler that has done
its checks (tenant, authentication, permission) and has nothing to say yet
calls :func:`detach`, which drops every reference to the handler and returns a
small :class:`Detached` through which the answer is written later, with the
same security headers and the same access-log line as any other response.
The delegate can also run a *prefetch* when a request's head arrives, before
the application builds a handler for it (see :class:`DetachingDelegate`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref

from tornado import httputil
from tornado.iostream import StreamClosedError

from .access_log import log_line
from .security_headers import security_headers

log = logging.getLogger(__name__)
_RUNNING: set = set()


class DetachingDelegate(httputil.HTTPServerConnectionDelegate):
    """Give this to ``HTTPServer`` instead of the application itself.

    ``prefetch(headers)``, if given, runs when a request's head has arrived, before the
    application builds anything for it; it returns ``None`` or an awaitable that is awaited
    first (to warm a cache: failures are ignored, the handler makes the real checks).
    """

    def __init__(self, app, prefetch=None):
        self.app = app
        self.prefetch = prefetch

    def start_request(self, server_conn, request_conn):
        return _Message(self.app.start_request(server_conn, request_conn), request_conn, self.prefetch)

    def on_close(self, server_conn):
        self.app.on_close(server_conn)


class _Message(httputil.HTTPMessageDelegate):
    """Forwards to the application's delegate until a handler detaches, then forgets it."""

    __slots__ = ("inner", "prefetch")

    def __init__(self, inner, conn, prefetch=None):
        self.inner = inner
        self.prefetch = prefetch
        # Weak: a strong link would make every request a reference cycle (connection -> message ->
        # handler -> request -> connection), freed only by the cycle collector.
        conn.smsgw_message = weakref.ref(self)

    def headers_received(self, start_line, headers):
        pending = None
        if self.prefetch is not None:
            try:
                pending = self.prefetch(headers)
            except Exception:
                log.debug("request prefetch failed", exc_info=True)
        if pending is None:
            return self.inner.headers_received(start_line, headers)
        # Tornado keeps what this returns until the request ends (a parked poll: for minutes), so
        # it gets a bare Future, not the coroutine that does the work.
        done = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(self._after(pending, start_line, headers, done))
        _RUNNING.add(task)  # the loop holds tasks weakly
        task.add_done_callback(_RUNNING.discard)
        return done

    async def _after(self, pending, start_line, headers, done):
        try:
            await pending
        except Exception:  # only a cache warm-up: the handler checks (and reports) for itself
            log.debug("request prefetch failed", exc_info=True)
        try:
            result = self.inner.headers_received(start_line, headers)
            if result is not None:
                await result
        except BaseException as exc:
            if not done.done():
                done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            if not done.done():
                done.set_result(None)

    def data_received(self, chunk):
        return self.inner.data_received(chunk)

    def finish(self):
        return self.inner.finish()

    def on_connection_close(self):
        if self.inner is not None:
            self.inner.on_connection_close()


class Detached:
    """A request whose handler has gone; :meth:`respond` answers it once."""

    __slots__ = ("conn", "method", "host", "path", "query", "started", "https", "on_close", "done")

    def __init__(self, handler):
        req = handler.request
        self.conn = req.connection
        self.method, self.host, self.path, self.query = req.method, req.host_name, req.path, req.query
        self.started = req._start_time
        self.https = req.protocol == "https"
        self.on_close = None  # called (once) if the client hangs up before the answer
        self.done = False
        self.conn.set_close_callback(self._closed)

    def _closed(self):
        if not self.done:
            self.done = True
            # 499 (nginx's "client closed request"): the access log shows phones dropping their polls.
            log_line(499, self.method, self.host, self.path, self.query, 1000.0 * (time.time() - self.started))
            callback, self.on_close = self.on_close, None
            if callback is not None:
                callback()

    def respond_json(self, data, status: int = 200, content_type: str = "application/json; charset=UTF-8"):
        self.respond(status, json.dumps(data, default=str).encode(), content_type)

    def respond(self, status: int, body: bytes, content_type: str) -> None:
        if self.done:
            return
        self.done = True
        self.on_close = None
        conn, self.conn = self.conn, None
        headers = httputil.HTTPHeaders()
        for name, value in security_headers(self.https):
            headers[name] = value
        headers["Content-Type"] = content_type
        headers["Content-Length"] = str(len(body))
        headers["Date"] = httputil.format_timestamp(time.time())
        conn.set_close_callback(None)
        try:
            conn.write_headers(httputil.ResponseStartLine("", status, httputil.responses.get(status, "Unknown")),
                               headers, body)
            conn.finish()
        except StreamClosedError:
            pass  # the client went away just now; nothing more to do
        log_line(status, self.method, self.host, self.path, self.query, 1000.0 * (time.time() - self.started))


def detach(handler) -> Detached | None:
    """Take the request away from ``handler`` (which must not write anything after this).

    Returns ``None`` when the server was not started with :class:`DetachingDelegate`; the
    handler then answers in the usual way.
    """
    conn = handler.request.connection
    ref = getattr(conn, "smsgw_message", None)
    message = ref() if ref is not None else None
    if message is None or message.inner is None or handler._headers_written or handler._finished:
        return None
    if conn.stream is None or conn.stream.closed():
        return None  # the client already hung up: nothing to wait for (the handler sees it too)
    detached = Detached(handler)
    _drop_headers(handler.request.headers)
    handler._auto_finish = False  # Tornado must not finish the request when the handler returns
    message.inner = None          # the last reference to the handler and its request
    conn.smsgw_message = None
    # Tornado's handler refers to itself through its template namespace (``ui``): without breaking
    # that cycle the handler waits for a full garbage collection, and a burst of polls piles up.
    handler.ui = None
    return detached


def _drop_headers(headers) -> None:
    """A detached request's headers are read by nobody any more but Tornado's connection, which
    (answering an HTTP/1.0 request) asks for ``Connection`` only; Tornado keeps the object until
    the request ends, so its other lines (an ``Authorization`` among them) go now."""
    connection = headers.get_list("Connection")
    headers.clear()
    for value in connection:
        headers.add("Connection", value)
