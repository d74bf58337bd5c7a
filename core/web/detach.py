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
import contextvars
import logging
import time
import weakref

import tornado
from tornado import httputil
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.iostream import StreamClosedError

from .. import logformat, metrics
from ..config import ConfigError
from .access_log import log_line
from .jsonout import json_bytes
from .problem import PROBLEM_CONTENT_TYPE
from .security_headers import security_headers

log = logging.getLogger(__name__)
_RUNNING: set = set()


class DetachingDelegate(httputil.HTTPServerConnectionDelegate):
    """Give this to ``HTTPServer`` instead of the application itself.

    ``prefetch(headers)``, if given, runs when a request's head has arrived, before the
    application builds anything for it; it returns ``None`` or a job: a function whose awaitable
    result is awaited first (to warm a cache: failures are ignored, the handler makes the real
    checks). A request with such a job waits for a place in ``admission`` (see
    :mod:`core.web.admission`), which it keeps until it is answered, or, detached, until
    :meth:`Detached.settled`. Built with an admission, it first checks that Tornado still
    gives what admission relies on (:func:`check_finish_future`): a start-up error, not a
    silent switch-off.
    """

    #: The class of the connections Tornado's ``HTTPServer`` gives ``start_request``.
    connection_class = HTTP1Connection

    def __init__(self, app, prefetch=None, admission=None, idle=None):
        if admission is not None:
            check_finish_future(self.connection_class)
        self.app = app
        self.prefetch = prefetch
        self.admission = admission
        self.idle = idle

    def start_request(self, server_conn, request_conn):
        if self.idle is not None:
            self.idle.expect_head(server_conn)
        return _Message(self.app.start_request(server_conn, request_conn), request_conn, self.prefetch,
                        self.admission, self.idle, server_conn)

    def on_close(self, server_conn):
        if self.idle is not None:
            self.idle.forget(server_conn)
        self.app.on_close(server_conn)


class IncompatibleTornado(ConfigError):
    """The installed Tornado lacks an internal this module relies on."""


def check_finish_future(connection_class=HTTP1Connection) -> None:
    """At start-up, before any request: admission gives a request's place back when Tornado
    resolves its connection's private ``_finish_future`` (the answer written, or the client gone).
    A Tornado without it would leave every place taken for good; refuse to start instead.
    Call on the loop that will serve (the connection makes its Future on it)."""
    try:
        conn = connection_class(None, False, HTTP1ConnectionParameters(max_body_size=1))
        over = getattr(conn, "_finish_future", None)
        if over is None:
            problem = "its connections have no _finish_future"
        elif not isinstance(over, asyncio.Future) or over.done():
            problem = "the _finish_future of a new connection is not a pending Future"
        else:
            conn.close()
            problem = None if over.done() else "closing a connection does not resolve its _finish_future"
    except Exception as exc:  # e.g. the constructor changed
        problem = f"a connection cannot be made as this check expects ({exc.__class__.__name__}: {exc})"
    if problem is not None:
        raise IncompatibleTornado(
            f"Tornado {tornado.version} cannot be used: {problem}. Admission (core/web/admission.py) gives a "
            f"request's place back through it. Install the Tornado release setup.py names (tornado>=6.4,<7); "
            f"tests/test_private_api_canary.py shows which internals changed.")


class _Message(httputil.HTTPMessageDelegate):
    """Forwards to the application's delegate until a handler detaches, then forgets it."""

    __slots__ = ("inner", "prefetch", "admission", "over", "ticket", "idle", "server_conn", "start_line", "headers",
                 "done", "job")

    def __init__(self, inner, conn, prefetch=None, admission=None, idle=None, server_conn=None):
        self.inner = inner
        self.idle, self.server_conn = idle, server_conn  # the head's arrival ends the idle wait
        self.prefetch = prefetch
        # Resolved by Tornado when the answer is written or the client hangs up (private: checked
        # when the delegate is built, see check_finish_future).
        self.over = conn._finish_future
        self.admission = admission
        self.ticket = self.start_line = self.headers = self.done = self.job = None
        # Weak: a strong link would make every request a reference cycle (connection -> message ->
        # handler -> request -> connection), freed only by the cycle collector.
        conn.smsgw_message = weakref.ref(self)

    def headers_received(self, start_line, headers):
        if logformat.REQUEST_IDS:  # in the connection's context, which the handler's task copies
            logformat.request_id.set(logformat.new_request_id(headers.get("X-Request-ID")))
        if self.idle is not None:
            self.idle.forget(self.server_conn)
            if headers.get("Content-Length", "0") == "0" and "Transfer-Encoding" not in headers:
                self.idle = self.server_conn = None  # no body to time
        job = self._job(headers)
        if job is None:
            self._read_body()
            return self.inner.headers_received(start_line, headers)
        # Tornado keeps what this returns until the request ends (a parked poll: for minutes), so
        # it gets a bare Future, not the coroutine that does the work.
        self.done = asyncio.get_running_loop().create_future()
        self.start_line, self.headers, self.job = start_line, headers, job
        if self.admission is None:
            self.admitted(None)
        else:
            self.admission.admit(self)  # calls admitted() now if there is a place
            # Queued: as this object alone, so that a fleet reconnecting at once leaves no pile of
            # half-started work behind (the job is made again once admitted).
            self.job = None
        return self.done

    def _job(self, headers):
        if self.prefetch is None:
            return None
        try:
            return self.prefetch(headers)
        except Exception:
            log.debug("request prefetch failed", exc_info=True)
            return None

    def admitted(self, ticket) -> None:
        """Called by the admission (or at once without one): make the prefetch, then go on.

        The place is given back when the answer is written or the client hangs up, when a
        detached request says its work is done (:meth:`Detached.settled`), as soon as the head
        is passed on for a request with a body (a slow upload must not hold it), and after
        ``admission.hold`` seconds whatever happens (see :class:`core.web.admission.Ticket`).
        """
        if ticket is not None:
            self.ticket = ticket
            self.over.add_done_callback(ticket.release)
        job, self.job = self.job, None
        if job is None:  # it waited in the queue
            job = self._job(self.headers)
        # A context of its own: not that of whoever gave the place back (another tenant's work).
        task = asyncio.get_running_loop().create_task(self._after(job), context=contextvars.Context())
        _RUNNING.add(task)  # the loop holds tasks weakly
        task.add_done_callback(_RUNNING.discard)

    async def _after(self, job):
        done, start_line, headers = self.done, self.start_line, self.headers
        self.done = self.start_line = self.headers = None
        try:
            if job is not None:
                try:
                    await job()
                except Exception:  # only a cache warm-up: the handler checks (and reports) for itself
                    log.debug("request prefetch failed", exc_info=True)
            if "Content-Length" in headers or "Transfer-Encoding" in headers:
                self._release()
            self._read_body()
            result = self.inner.headers_received(start_line, headers)
            if result is not None:
                await result
        except BaseException as exc:
            if not done.done():
                done.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        finally:  # Tornado waits on ``done``: it must be resolved whatever happened
            if not done.done():
                done.set_result(None)

    def _read_body(self) -> None:
        """Tornado reads the body once the head is passed on: its time starts now (not while the
        request waited for admission)."""
        if self.idle is not None:
            self.idle.expect_body(self.server_conn)  # until finish()

    def _release(self) -> None:
        ticket, self.ticket = self.ticket, None
        if ticket is not None:
            self.over.remove_done_callback(ticket.release)
            ticket.release()

    def data_received(self, chunk):
        if self.inner is not None:  # a detached request's body has nobody to go to
            return self.inner.data_received(chunk)
        return None

    def finish(self):
        if self.idle is not None:  # the body is in
            self.idle.forget(self.server_conn)
            self.idle = self.server_conn = None
        if self.inner is not None:
            return self.inner.finish()
        return None

    def on_connection_close(self):
        # Tornado does not resolve its finish future when a connection dies while the body is
        # read (a reset, a body timeout): the place is given back here.
        self._release()
        if self.inner is not None:
            self.inner.on_connection_close()


class Detached:
    """A request whose handler has gone; :meth:`respond` answers it once."""

    __slots__ = ("conn", "method", "host", "path", "query", "started", "https", "on_close", "done", "ticket",
                 "route", "rid")

    def __init__(self, handler):
        req = handler.request
        self.conn = req.connection
        self.method, self.host, self.path, self.query = req.method, req.host_name, req.path, req.query
        self.started = req._start_time
        self.https = req.protocol == "https"
        self.on_close = None  # called (once) if the client hangs up before the answer
        self.done = False
        self.ticket = None  # its place in the admission, if it took one
        self.route = handler.__class__  # for the metrics
        self.rid = logformat.request_id.get()
        self.conn.set_close_callback(self)  # see __call__ (a bound method would cost more per request)

    def settled(self) -> None:
        """The request's own work is done (e.g. a parked poll made its first look): give its place
        in the admission to the next request; its connection waits on outside."""
        ticket, self.ticket = self.ticket, None
        if ticket is not None:
            ticket.release()

    def __call__(self):
        """Tornado's close callback: the client hung up."""
        self.settled()
        if not self.done:
            self.done = True
            # 499 (nginx's "client closed request"): the access log shows phones dropping their polls.
            self._log(499)
            callback, self.on_close = self.on_close, None
            if callback is not None:
                callback()

    def respond_json(self, data, status: int = 200, content_type: str = "application/json; charset=UTF-8",
                     extra_headers: dict | None = None):
        self.respond(status, json_bytes(data), content_type, extra_headers)

    def respond_problem(self, problem) -> None:
        """Answer with a :class:`core.web.problem.Problem` (its headers too, e.g. ``Retry-After``)."""
        self.respond_json(problem.to_dict(), problem.status, PROBLEM_CONTENT_TYPE, problem.headers)

    def _headers(self, content_type: str, extra_headers: dict | None) -> httputil.HTTPHeaders:
        headers = httputil.HTTPHeaders()
        for name, value in security_headers(self.https):
            headers[name] = value
        for name, value in (extra_headers or {}).items():
            headers[name] = value
        headers["Content-Type"] = content_type
        headers["Date"] = httputil.format_timestamp(time.time())
        return headers

    def respond(self, status: int, body: bytes, content_type: str, extra_headers: dict | None = None) -> None:
        self.settled()
        if self.done:
            return
        self.done = True
        self.on_close = None
        conn, self.conn = self.conn, None
        headers = self._headers(content_type, extra_headers)
        headers["Content-Length"] = str(len(body))
        conn.set_close_callback(None)
        try:
            conn.write_headers(httputil.ResponseStartLine("", status, httputil.responses.get(status, "Unknown")),
                               headers, body)
            conn.finish()
        except StreamClosedError:
            pass  # the client went away just now; nothing more to do
        self._log(status)

    def _log(self, status: int) -> None:
        """The access-log line (and the metrics) of the answer."""
        elapsed = time.time() - self.started
        log_line(status, self.method, self.host, self.path, self.query, 1000.0 * elapsed, self.rid)
        if metrics.ON:
            metrics.observe_request(metrics.route_of(self.route), self.method, status, elapsed)

    # -- a streamed answer (server-sent events): headers now, the body in pieces, until end() ---------

    def open_stream(self, content_type: str, extra_headers: dict | None = None) -> bool:
        """Answer 200 with the headers only (chunked); the body follows in :meth:`write` calls until
        :meth:`end`, or until the client hangs up (``on_close``, as for any detached request).
        False when the client is gone already."""
        self.settled()
        if self.done:
            return False
        try:
            self.conn.write_headers(httputil.ResponseStartLine("", 200, "OK"),
                                    self._headers(content_type, extra_headers))
        except StreamClosedError:
            return False
        return True

    def write(self, chunk: bytes) -> None:
        """A piece of a streamed body (after :meth:`open_stream`); nothing once the client is gone."""
        if not self.done:
            self.conn.write(chunk)  # a closed stream fails the returned future, which Tornado retrieves

    @staticmethod
    def framed(chunk: bytes) -> bytes:
        """``chunk`` as one piece of a chunked body, for :meth:`write_framed` (make it once, write it often)."""
        return b"%x\r\n" % len(chunk) + chunk + b"\r\n"

    def write_framed(self, framed: bytes) -> None:
        """Like :meth:`write`, for a piece framed by :meth:`framed`: straight to the connection's stream,
        without the HTTP layer's framing and its second future (the keepalives of thousands of
        streams are most of what an idle server does)."""
        if not self.done and not self.conn.stream.closed():
            self.conn.stream.write(framed)  # a closed stream fails the returned future, which Tornado retrieves

    def end(self) -> None:
        """Finish a streamed body (the server ends the stream: stopping, or the device is gone)."""
        if self.done:
            return
        self.done = True
        self.on_close = None
        conn, self.conn = self.conn, None
        conn.set_close_callback(None)
        try:
            conn.finish()
        except StreamClosedError:
            pass
        self._log(200)


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
    detached.ticket, message.ticket = message.ticket, None
    if detached.ticket is not None:  # from here the Detached gives it back (see Detached.settled)
        message.over.remove_done_callback(detached.ticket.release)
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
