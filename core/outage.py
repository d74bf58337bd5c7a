"""The database cannot be reached: callers get 503 with ``Retry-After``, the log gets one line.

While PostgreSQL is down every request fails the same way, within milliseconds: logging a
traceback for each (32,000 lines in 26 s in a fault-injection run) buries the one fact that
matters. :func:`is_unavailable` tells such a failure from a bug or a bad query; the process's
:data:`database_outage` logs the first failure of an outage, counts the rest, and logs a summary
once work succeeds again (``core.db.run_sync`` tells it, at the cost of one attribute check).
"""

from __future__ import annotations

import logging
import threading
import time

import peewee
import psycopg2
from playhouse.pool import MaxConnectionsExceeded

log = logging.getLogger("smsgw.database")

RETRY_AFTER = 5  # seconds a client is asked to wait; PostgreSQL restarts in about that

# SQLSTATEs that mean "no server to talk to (now)", not "this statement is wrong": class 08
# (connection exception) and the shutdown/start-up codes of class 57.
_UNAVAILABLE_STATES = ("57P01", "57P02", "57P03")


class TenantMoving(RuntimeError):
    """The workspace is being moved to another database server (``smsgw tenant move``): its work
    waits for the short pause to end. Callers answer 503 with Retry-After, as for an outage."""


MOVE_RETRY_AFTER = 2  # seconds: a move's write pause is about that (docs/scaling.md)


def is_moving(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) is a workspace's move (:class:`TenantMoving`)."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, TenantMoving):
            return True
        seen += 1
        exc = exc.__cause__ or exc.__context__
    return False


def is_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what it wraps: peewee re-raises psycopg2's errors) says the database
    cannot be reached: refused, lost, shutting down or starting, or no pooled connection free."""
    if is_moving(exc):
        return True
    seen = 0
    while exc is not None and seen < 8:
        seen += 1
        if isinstance(exc, MaxConnectionsExceeded):
            return True
        if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
            code = getattr(exc, "pgcode", None)
            return code is None or code.startswith("08") or code in _UNAVAILABLE_STATES
        if type(exc) is psycopg2.DatabaseError:
            # The base class itself, with no SQLSTATE: libpq lost the server without an error
            # message from it. A pooled connection that sat idle through a crash says "server
            # closed the connection unexpectedly" this way on its first statement (errors the
            # server reports always carry a code and come as one of the subclasses).
            return getattr(exc, "pgcode", None) is None
        if isinstance(exc, (peewee.OperationalError, peewee.InterfaceError, peewee.DatabaseError)):
            inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
            if inner is not None:
                exc = inner
                continue
            if isinstance(exc, peewee.InterfaceError):
                return True  # peewee's own "connection already closed" and the like
        exc = exc.__cause__ or exc.__context__
    return False


class Outage:
    """One log line when an outage starts, one when it ends, a count in between."""

    def __init__(self, logger: logging.Logger = log):
        self.log = logger
        self.since: float | None = None  # monotonic time of the first failure, while down
        self.failures = 0
        self.outages = 0
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self.failures += 1
            if self.since is not None:
                return
            self.since = time.monotonic()
            self.outages += 1
        first_line = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        self.log.error("database unavailable (%s%s); answering 503 until it is back",
                       type(exc).__name__, f": {first_line}" if first_line else "")

    def recovered(self) -> None:
        if self.since is None:  # the common case: no lock, no work
            return
        with self._lock:
            if self.since is None:
                return
            lasted, failures = time.monotonic() - self.since, self.failures
            self.since, self.failures = None, 0
        self.log.warning("database is back after %.1f s; %d requests failed meanwhile", lasted, failures)


database_outage = Outage()
