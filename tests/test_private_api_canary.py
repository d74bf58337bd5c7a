"""Canaries for the private parts of Tornado, peewee and huey that our code relies on.

A few hot paths use internals these libraries do not promise to keep (setup.py bounds each
library to the major release tested). Each test below checks one of them: that it still exists
and still behaves the way the code named in its docstring relies on, on the installed release,
through the library's own machinery (a real HTTP server on loopback, a real PostgreSQL pool, a
real Huey consumer). When one fails after an upgrade, the code it names needs a look before the
version range in setup.py moves.

psycopg2: nothing private is used (``FastPool._is_closed`` reads the public ``closed`` and
``get_transaction_status()``). The stdlib's ``http.client`` was patched per connection before;
``addons/webhooks/sender.py`` now overrides the public ``connect()`` in a subclass.

``test_every_cited_place_still_uses_its_private_attribute`` keeps the citations true: each place
named here must still use the attribute, or the entry (and its canary) must go.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import signal
import textwrap
import time
from pathlib import Path

import peewee
import psycopg2
import pytest
import tornado.web
from huey import MemoryHuey
from huey.consumer import Consumer
from playhouse.pool import PooledPostgresqlDatabase
from tornado import httputil
from tornado.http1connection import HTTP1Connection
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from core.server import run_loop
from core.tasks import EmbeddedConsumer
from core.web.detach import check_finish_future

ROOT = Path(__file__).resolve().parent.parent

# (private attribute, file, function or class that relies on it)
RELIES_ON = [
    ("_finish_future", "core/web/detach.py", "_Message.__init__"),
    ("_finish_future", "core/web/detach.py", "check_finish_future"),
    ("_start_time", "core/web/detach.py", "Detached.__init__"),
    ("_headers_written", "core/web/detach.py", "detach"),
    ("_finished", "core/web/detach.py", "detach"),
    ("_auto_finish", "core/web/detach.py", "detach"),
    ("_reason", "core/web/base.py", "BaseHandler.problem_for_error"),
    ("_is_closed", "core/db.py", "FastPool._is_closed"),
    ("_close", "core/db.py", "FastPool._close"),
    ("__exception_wrapper__", "core/db.py", "FastPool.cursor"),
    ("_max_connections", "core/db.py", "executor"),
    ("_dirty", "addons/devices/service.py", "_from_row"),
    ("_meta", "addons/devices/service.py", "<module>"),
    ("_meta", "core/users.py", "<module>"),
    ("_set_signal_handlers", "core/tasks.py", "EmbeddedConsumer"),
]


def _source_of(path: str, qualname: str) -> str:
    source = (ROOT / path).read_text()
    if qualname == "<module>":
        return source
    node = ast.parse(source)
    for part in qualname.split("."):
        node = next(n for n in ast.iter_child_nodes(node)
                    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n.name == part)
    return ast.get_source_segment(source, node)


@pytest.mark.parametrize("attribute, path, qualname", RELIES_ON)
def test_every_cited_place_still_uses_its_private_attribute(attribute, path, qualname):
    assert attribute in _source_of(path, qualname), f"{path} {qualname} no longer uses {attribute}: update RELIES_ON"


# -- Tornado: a real server on loopback, on uvloop as in production ---------------------------------

class Recorder(httputil.HTTPServerConnectionDelegate):
    """Between ``HTTPServer`` and the application (as core/web/detach.py's delegate is): notes
    for each request's connection whether its finish future was done when the request began."""

    def __init__(self, app):
        self.app, self.done_at_start = app, {}

    def start_request(self, server_conn, request_conn):
        self.done_at_start[request_conn] = request_conn._finish_future.done()
        return self.app.start_request(server_conn, request_conn)

    def on_close(self, server_conn):
        self.app.on_close(server_conn)


@contextlib.asynccontextmanager
async def serving(handlers):
    """An ``HTTPServer`` on 127.0.0.1 for ``handlers``; yields (port, recorder)."""
    recorder = Recorder(tornado.web.Application(handlers))
    server = HTTPServer(recorder)
    sockets = bind_sockets(0, "127.0.0.1")
    server.add_sockets(sockets)
    try:
        yield sockets[0].getsockname()[1], recorder
    finally:
        server.stop()
        await server.close_all_connections()


async def send(port: int, path: str):
    """Send a GET; returns the open (reader, writer)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: canary\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    return reader, writer


async def get(port: int, path: str) -> bytes:
    reader, writer = await send(port, path)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


async def until(condition, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_finish_future_is_pending_until_the_answer_is_written_or_the_client_hangs_up():
    """core/web/detach.py:114 (``_Message.__init__``) keeps ``conn._finish_future`` and gives the
    request's admission place back when it resolves (core/web/admission.py); :func:`check_finish_future`
    checks it at start-up. It must be pending when a request begins, and resolve once the answer
    is written, and once the client hangs up while its request waits."""
    answered, waiting = [], []

    class Answer(tornado.web.RequestHandler):
        def get(self):
            answered.append(self.request.connection)
            self.write("ok")

    class Wait(tornado.web.RequestHandler):
        async def get(self):
            waiting.append(self.request.connection)
            await asyncio.get_running_loop().create_future()  # never answers by itself

    async def scenario():
        check_finish_future(HTTP1Connection)  # the start-up check passes on this Tornado
        async with serving([("/answer", Answer), ("/wait", Wait)]) as (port, recorder):
            assert (await get(port, "/answer")).endswith(b"ok")
            conn, = answered
            assert recorder.done_at_start[conn] is False and conn._finish_future.done()

            reader, writer = await send(port, "/wait")
            await until(lambda: waiting)
            conn, = waiting
            assert recorder.done_at_start[conn] is False
            await asyncio.sleep(0.05)
            assert not conn._finish_future.done()  # the request waits: so does the future
            writer.close()  # the client hangs up
            await until(conn._finish_future.done)

    run_loop(scenario())


def test_request_start_time_is_the_wall_clock_when_the_request_began():
    """core/web/detach.py:237 (``Detached.__init__``) takes ``request._start_time`` as the request's
    start for the access log's duration, computed later as ``time.time() - started``."""
    seen = []

    class Handler(tornado.web.RequestHandler):
        def get(self):
            seen.append((self.request._start_time, self.request.request_time()))

    async def scenario():
        async with serving([("/", Handler)]) as (port, _):
            before = time.time()
            await get(port, "/")
            after = time.time()
        (started, elapsed), = seen
        assert isinstance(started, float) and before <= started <= after
        assert 0 <= elapsed <= after - started  # Tornado's own request_time() counts from it too

    run_loop(scenario())


def test_headers_written_and_finished_tell_what_a_handler_has_sent():
    """core/web/detach.py:304 (``detach``) refuses to detach a request whose handler has written
    its headers or finished, reading ``handler._headers_written`` and ``handler._finished``."""
    states = []

    class Handler(tornado.web.RequestHandler):
        async def get(self):
            states.append((self._headers_written, self._finished))
            self.write("a")
            await self.flush()
            states.append((self._headers_written, self._finished))
            self.finish("b")
            states.append((self._headers_written, self._finished))

    async def scenario():
        async with serving([("/", Handler)]) as (port, _):
            assert b"\r\na\r\n" in await get(port, "/")  # chunked: "a", then "b"

    run_loop(scenario())
    assert states == [(False, False), (True, False), (True, True)]


def test_auto_finish_false_leaves_the_request_open_after_the_handler_returns():
    """core/web/detach.py:313 (``detach``) sets ``handler._auto_finish = False`` so that Tornado does
    not finish the request when the handler's method returns: the answer is written later."""
    handlers = []

    class Handler(tornado.web.RequestHandler):
        def get(self):
            self._auto_finish = False
            handlers.append(self)

    async def scenario():
        async with serving([("/", Handler)]) as (port, _):
            reader, writer = await send(port, "/")
            await until(lambda: handlers)
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(reader.read(1), 0.3)  # returned, and nothing was sent
            handler, = handlers
            assert not handler._finished and not handler._headers_written
            handler.finish("late")
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"late")

    run_loop(scenario())


def test_reason_is_the_status_lines_phrase_when_write_error_runs():
    """core/web/base.py:362 (``BaseHandler.problem_for_error``) uses ``self._reason`` as the problem's
    detail for a Tornado ``HTTPError`` without a message: the reason phrase of the status."""
    reasons = []

    class Handler(tornado.web.RequestHandler):
        def get(self, which):
            raise tornado.web.HTTPError(404) if which == "plain" else tornado.web.HTTPError(418, reason="Short, stout")

        def write_error(self, status_code, **kwargs):
            reasons.append(self._reason)
            self.finish("error")

    async def scenario():
        async with serving([("/(plain|custom)", Handler)]) as (port, _):
            assert (await get(port, "/plain")).startswith(b"HTTP/1.1 404 Not Found\r\n")
            assert (await get(port, "/custom")).startswith(b"HTTP/1.1 418 Short, stout\r\n")

    run_loop(scenario())
    assert reasons == ["Not Found", "Short, stout"]


# -- peewee: its connection pool on the session's PostgreSQL -----------------------------------------

class RecordingPool(PooledPostgresqlDatabase):
    """peewee's Postgres pool, recording the calls of the two methods FastPool overrides."""

    def __init__(self, *args, closed_says=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls, self.closed_says = [], closed_says

    def _is_closed(self, conn):
        answer = super()._is_closed(conn) if self.closed_says is None else self.closed_says
        self.calls.append(("is_closed", conn, answer))
        return answer

    def _close(self, conn, close_conn=False):
        self.calls.append(("close", conn, close_conn))
        return super()._close(conn, close_conn)


@pytest.fixture
def pool_url(test_env):
    return test_env["DATABASE_URL"]


def checkout(db):
    db.connect()
    return db.connection()


def test_the_pool_returns_connections_through_close_and_vets_them_through_is_closed(pool_url):
    """core/db.py:44 and :68 (``FastPool._is_closed`` / ``_close``): at check-in the pool calls
    ``_close(conn, False)``, where FastPool notes when the connection came back; at check-out it
    calls ``_is_closed(conn)`` on the pooled connection, and a True answer makes it hand out a new
    connection, which FastPool uses to skip the probe for connections back from recent work."""
    db = RecordingPool(pool_url, max_connections=4)
    try:
        first = checkout(db)
        db.close()
        assert db.calls == [("close", first, False)]
        again = checkout(db)
        db.close()
        assert again is first and db.calls[1] == ("is_closed", first, False)

        db.calls.clear()
        db.closed_says = True
        fresh = checkout(db)
        db.close()
        assert fresh is not first and db.calls[0] == ("is_closed", first, True)
        assert db.execute_sql("SELECT 1").fetchone() == (1,)
    finally:
        db.close_all()


def test_the_pools_own_is_closed_asks_the_server(pool_url):
    """core/db.py:52: once a connection has sat idle long enough, ``FastPool._is_closed`` asks
    peewee's own ``_is_closed``, which must notice a connection the server has ended (it probes:
    the client side cannot know without a round trip)."""
    db = RecordingPool(pool_url, max_connections=4)
    try:
        first = checkout(db)
        pid = db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
        db.close()
        with contextlib.closing(psycopg2.connect(pool_url)) as admin:
            admin.autocommit = True
            admin.cursor().execute("SELECT pg_terminate_backend(%s)", (pid,))
        deadline = time.monotonic() + 5
        while first.closed == 0 and time.monotonic() < deadline:
            replacement = checkout(db)  # peewee probes the pooled connection and discards it
            db.close()
            if replacement is not first:
                break
            time.sleep(0.05)
        assert ("is_closed", first, True) in db.calls
        assert db.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid
    finally:
        db.close_all()


def test_max_connections_is_what_init_was_given(pool_url):
    """core/db.py:198 (``executor``) sizes the database threads from ``app_db._max_connections``."""
    db = PooledPostgresqlDatabase(None)
    db.init(pool_url, max_connections=13, stale_timeout=300, timeout=30)
    assert db._max_connections == 13


def test_exception_wrapper_turns_driver_errors_into_peewees(pool_url):
    """core/db.py (``FastPool.cursor``) runs a transaction's pending ``BEGIN; <setup>`` on a raw
    cursor inside ``peewee.__exception_wrapper__``, so that a failure reaches callers as the peewee
    error they catch, as for any query peewee runs itself."""
    db = PooledPostgresqlDatabase(pool_url, max_connections=2)
    try:
        db.connect()
        cursor = db.cursor()
        with pytest.raises(peewee.ProgrammingError) as syntax:
            with peewee.__exception_wrapper__:
                cursor.execute("SELEC 1")
        assert isinstance(syntax.value.orig, psycopg2.errors.SyntaxError)  # the driver's, carried along
        db.rollback()
        cursor.execute("CREATE TEMP TABLE canary (id int PRIMARY KEY); INSERT INTO canary VALUES (1)")
        with pytest.raises(peewee.IntegrityError):
            with peewee.__exception_wrapper__:
                cursor.execute("INSERT INTO canary VALUES (1)")
    finally:
        db.close_all()


class Gadget(peewee.Model):
    name = peewee.TextField()
    size = peewee.IntegerField(null=True)

    class Meta:
        database = peewee.Proxy()  # never queried


def test_a_model_built_from_a_row_is_clean_once_dirty_is_cleared():
    """addons/devices/service.py:159 (``_from_row``) builds a Device from a raw row with
    ``Device(**columns)``, which marks every field changed, and clears ``_dirty`` so that it is
    what peewee's own select gives: a row with no pending changes."""
    gadget = Gadget(id=1, name="phone", size=3)
    assert isinstance(gadget._dirty, set) and set(gadget.dirty_fields) == {Gadget.id, Gadget.name, Gadget.size}
    gadget._dirty.clear()
    assert not gadget.is_dirty() and gadget.dirty_fields == []
    gadget.size = 4  # a change made afterwards is tracked again
    assert gadget.dirty_fields == [Gadget.size]


def test_model_meta_lists_fields_in_column_order_and_takes_added_fields():
    """addons/devices/service.py:134 reads rows in the order of ``Device._meta.sorted_field_names``
    (the order ``Model.select()`` reads columns in); core/users.py:42 adds the User's own columns
    to the shared model with ``_meta.add_field``."""

    class Widget(peewee.Model):
        name = peewee.TextField()

        class Meta:
            database = peewee.PostgresqlDatabase(None)

    Widget._meta.add_field("colour", peewee.TextField(default=""))
    assert Widget._meta.sorted_field_names == ["id", "name", "colour"]
    sql, _ = Widget.select().sql()
    assert sql.startswith('SELECT "t1"."id", "t1"."name", "t1"."colour" FROM "widget"'), sql
    assert Widget(name="w").colour == ""


# -- huey: the consumer -------------------------------------------------------------------------------

def test_the_consumer_sets_its_signal_handlers_through_the_method_embedded_consumer_overrides():
    """core/tasks.py:184 (``EmbeddedConsumer._set_signal_handlers``): a consumer started inside the
    web process must leave its host's signal handlers alone (``smsgw serve`` stops it itself). The
    plain consumer installs its own through that method when it starts."""
    watched = (signal.SIGTERM, signal.SIGINT)
    before = {s: signal.getsignal(s) for s in watched}

    def run(consumer_class):
        consumer = consumer_class(MemoryHuey("canary"), workers=1, worker_type="thread", periodic=False,
                                  check_worker_health=False)
        consumer.start()
        try:
            return {s: signal.getsignal(s) for s in watched}
        finally:
            consumer.stop(graceful=True)

    try:
        assert run(EmbeddedConsumer) == before
        installed = run(Consumer)
        assert all(installed[s] != before[s] for s in watched), textwrap.shorten(repr(installed), 200)
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
