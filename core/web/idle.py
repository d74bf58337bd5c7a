"""Closing connections that send no request (or no body) in time, with one sweep for all of them.

Tornado guards the wait for each request head, and the read of each body, with its own timer
(``gen.with_timeout``: a timer handle, futures and closures; an idle connection
went from 8.7 to 6.6 KB without it, measured with ``bench/bench_devices.py``). A phone between two long polls, and every connection
opened after a restart before its first request arrives, holds one. Here the
server's delegate notes when a connection starts waiting for a head and when
the head arrives; a sweep once a second (only while some connection is
waiting) closes those that waited longer than ``timeout``. A slow sender that
never finishes its head (slowloris) is closed the same way, and so is one whose
body takes longer than ``body_timeout`` (the body's timer cost every POST about 3 %
of the server's CPU in ``bench/bench_messaging.py``).
"""

from __future__ import annotations

import time

import tornado.ioloop


class IdleConnections:
    SWEEP_MS = 1000

    def __init__(self, timeout: float = 75.0, body_timeout: float = 60.0):
        self.timeout = timeout
        self.body_timeout = body_timeout
        self.closed = 0  # counter, for tests
        # server connection -> when its wait (for a head, or for the rest of a body) ends
        self._waiting: dict = {}
        self._sweeper: tornado.ioloop.PeriodicCallback | None = None

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def expect_head(self, conn) -> None:
        """``conn`` waits for its next request head (a new connection, or one between requests)."""
        self._expect(conn, self.timeout)

    def expect_body(self, conn) -> None:
        """``conn``'s head arrived and its body is being read."""
        self._expect(conn, self.body_timeout)

    def _expect(self, conn, timeout: float) -> None:
        self._waiting[conn] = time.monotonic() + timeout
        if self._sweeper is None:
            self._sweeper = tornado.ioloop.PeriodicCallback(self.sweep, self.SWEEP_MS)
            self._sweeper.start()

    def forget(self, conn) -> None:
        """Its head (or body) arrived, or it closed."""
        self._waiting.pop(conn, None)

    def sweep(self) -> None:
        now = time.monotonic()
        for conn in [c for c, deadline in self._waiting.items() if deadline <= now]:
            del self._waiting[conn]
            self.closed += 1
            stream = getattr(conn, "stream", None)
            if stream is not None and not stream.closed():
                stream.close()  # Tornado ends the connection's request loop (and calls on_close)
        if not self._waiting:
            self.stop()

    def stop(self) -> None:
        self._waiting = dict(self._waiting)  # a dict keeps its largest table: after a burst, shrink it
        if self._sweeper is not None:
            self._sweeper.stop()
            self._sweeper = None
