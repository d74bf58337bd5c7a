"""Admission: how many requests may be working their way to the database at once.

After a restart every phone reconnects at the same moment. Each request's
first step is a database lookup (its token, :func:`core.web.principals.prefetch_principal`),
and without a limit all of them start at once: thousands of lookups, handlers
and first looks queue in the database threads together, each holding its
coroutines, futures and work items. The work takes as long either way (the
database does one at a time per thread), but that pile costs memory, and what
CPython frees after the burst stays with the process as scattered free blocks.

:class:`Admission` lets ``limit`` such requests in at a time and queues the
others, in arrival order, as what they already are: a parsed request head and
one Future. A request leaves when its answer is written or its client hangs up,
when its head is passed on if it has a body (a slow upload keeps no place),
for a parked long poll once its first look is done (see :mod:`core.web.detach`),
and after ``hold`` seconds in any case. Requests that need no lookup (a cached token, a
cookie session) never queue.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Admission:
    def __init__(self, limit: int = 64, hold: float = 5.0):
        self.limit = limit
        self.hold = hold  # seconds a place is kept at most, whatever the request does
        self.inside = 0
        self.admitted = 0  # counters, for tests and benchmarks
        self.waited = 0
        self._queue: deque = deque()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def admit(self, entrant) -> None:
        """Call ``entrant.admitted(ticket)`` once there is a place: now, or when one is given back
        (in arrival order). The ticket gives the place back, once. Call on the event loop."""
        self.admitted += 1
        if self.inside < self.limit and not self._queue:
            self.inside += 1
            entrant.admitted(self._ticket())
        else:
            self.waited += 1
            self._queue.append(entrant)  # a queued request costs this entry and nothing else

    def _leave(self) -> None:
        if self._queue:
            self._queue.popleft().admitted(self._ticket())  # the place passes straight to the next in line
        else:
            self.inside -= 1

    def _ticket(self) -> "Ticket":
        ticket = Ticket(self)
        ticket.timer = asyncio.get_running_loop().call_later(self.hold, ticket.release)
        return ticket


class Ticket:
    """A place inside; :meth:`release` gives it back (again: nothing). A request that keeps it
    longer than ``hold`` seconds (a client that reads its answer slowly, say) loses it then:
    the limit smooths a burst, it must not let a few slow clients stall everyone."""

    __slots__ = ("admission", "timer")

    def __init__(self, admission: Admission):
        self.admission = admission
        self.timer = None

    def release(self, *_ignored) -> None:
        admission, self.admission = self.admission, None
        if admission is not None:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            admission._leave()
