"""Wake-ups for long-polling clients, with no database work while they wait.

A listener is a plain callback (a parked long poll, an event stream) keyed by a
string (e.g. ``acme:device:7``). ``wake(key)`` calls it: directly when the change
happened in this process,
and through PostgreSQL ``NOTIFY smsgw_wakeup`` (delivered at commit by the
process's one listener connection) when it happened in another process. Redis
pub/sub replaces NOTIFY when ``REDIS_URL`` is set.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import threading
import time

from . import metrics

log = logging.getLogger(__name__)

CHANNEL = "smsgw_wakeup"


class WakeupHub:
    def __init__(self):
        # key -> one listener, or a set of them when there are several: one phone has one poll,
        # and 10,000 waiting phones need not cost 10,000 one-element sets.
        self._waiters: dict[str, object] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.deadlines = Deadlines()
        self.wakes = 0  # a counter for tests and benchmarks

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    @property
    def waiting(self) -> int:
        return sum(len(w) if isinstance(w, set) else 1 for w in self._waiters.values())

    def listen(self, key: str, callback) -> None:
        """Call ``callback()`` on the IOLoop at every wake of ``key`` until :meth:`discard`. Listen
        *before* looking for work, so a wake in between is not lost."""
        if self.loop is None:
            self.loop = asyncio.get_running_loop()
        self._add(key, callback)

    def discard(self, key: str, callback) -> None:
        self._discard(key, callback)

    def waiters_of(self, key: str) -> tuple:
        """The listeners of ``key`` now."""
        current = self._waiters.get(key)
        if current is None:
            return ()
        return tuple(current) if isinstance(current, set) else (current,)

    def _add(self, key: str, item) -> None:
        current = self._waiters.get(key)
        if current is None:
            self._waiters[key] = item
        elif isinstance(current, set):
            current.add(item)
        elif current != item:
            self._waiters[key] = {current, item}

    def _discard(self, key: str, item) -> None:
        current = self._waiters.get(key)
        if current is None:
            return
        if isinstance(current, set):
            current.discard(item)
            if len(current) == 1:
                self._waiters[key] = next(iter(current))
            elif not current:
                del self._waiters[key]
        elif current == item:
            del self._waiters[key]

    def wake(self, key: str) -> int:
        """Wake every waiter on ``key``; call on the IOLoop thread. Returns how many woke."""
        if key not in self._waiters:
            return 0
        n = 0
        for item in self.waiters_of(key):
            n += 1
            try:
                item()
            except Exception:  # one listener's bug must not keep the others asleep
                log.exception("wake-up listener failed for %s", key)
        self.wakes += n
        if n and metrics.ON:
            metrics.WAKES.inc(n)
        return n

    def _timed_wake(self, key: str, since: float) -> None:
        if self.wake(key):
            metrics.WAKE_LATENCY.observe(time.monotonic() - since)

    def wake_all(self) -> int:
        """Wake every waiter of this process (on the IOLoop thread): a wake-up channel was down and
        may have dropped some, so each looks for work once."""
        return sum(self.wake(key) for key in list(self._waiters))

    def drain(self) -> int:
        """The process is stopping: every waiter that can be told (a listener with a ``drain()``
        method, e.g. a parked poll answering 503 with Retry-After) is, so that its client comes
        back to the restarted process or another one instead of waiting out its poll."""
        n = 0
        for key in list(self._waiters):
            for item in self.waiters_of(key):
                drain = getattr(item, "drain", None)
                if drain is None:
                    continue
                try:
                    drain()
                    n += 1
                except Exception:  # one waiter's bug must not keep the others waiting
                    log.exception("draining a waiter of %s failed", key)
        return n

    def wake_all_threadsafe(self) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.wake_all)

    def wake_threadsafe(self, key: str) -> None:
        """Wake from any thread (e.g. the executor or the NOTIFY listener)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:
            on_loop = False
        # From the loop's own thread (a handler after its commit) no need to wake the loop up.
        schedule = loop.call_soon if on_loop else loop.call_soon_threadsafe
        if metrics.ON:
            schedule(self._timed_wake, key, time.monotonic())
        else:
            schedule(self.wake, key)


class Deadlines:
    """When thousands of waits end: one event-loop timer for all of them.

    A waiting poll needs to be told when its wait is over. An asyncio timer each costs about
    170 bytes (handle, bound method, heap slot); here waits are kept in sets by the quarter
    second they end in, and one timer fires for the earliest set. ``add`` returns the set
    (the caller keeps it to :meth:`cancel`); an ended wait is told (``waiter.expire()``) at
    most a quarter second late.
    """

    STEP = 0.25

    def __init__(self):
        self._sets: dict[int, set] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_slot: int | None = None
        self._loop = None

    def __len__(self) -> int:
        return sum(len(s) for s in self._sets.values())

    def add(self, waiter, when: float) -> set:
        """Call ``waiter.expire()`` at ``when`` (the event loop's clock); call on the loop."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (a restarted server): the old timer died with its loop
            self._loop, self._timer, self._timer_slot = loop, None, None
            self._sets.clear()
        slot = math.ceil(when / self.STEP)
        group = self._sets.get(slot)
        if group is None:
            group = self._sets[slot] = set()
            if self._timer_slot is None or slot < self._timer_slot:
                self._arm(slot)
        group.add(waiter)
        return group

    @staticmethod
    def cancel(group: set, waiter) -> None:
        group.discard(waiter)  # an empty set is dropped when its time comes

    def _arm(self, slot: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        loop = asyncio.get_running_loop()
        self._timer_slot = slot
        # A fresh, empty context: the timer must keep no request's context alive.
        self._timer = loop.call_at(slot * self.STEP, self._fire, context=contextvars.Context())

    def _fire(self) -> None:
        self._timer = self._timer_slot = None
        now = asyncio.get_running_loop().time()
        due = [slot for slot in self._sets if slot * self.STEP <= now]
        for slot in sorted(due):
            group = self._sets.pop(slot)
            for waiter in list(group):
                try:
                    waiter.expire()
                except Exception:  # one waiter's bug must not keep the others waiting
                    log.exception("a deadline callback failed")
            group.clear()  # the waiters still point at it until they finish
        if self._sets:
            self._arm(min(self._sets))


def notify_sql(db, key: str) -> None:
    """Inside a transaction: wake ``key`` in every process once this transaction commits."""
    db.execute_sql("SELECT pg_notify(%s, %s)", (CHANNEL, key))


class RedisWakeups:
    """Cross-process wake-ups over Redis pub/sub (when ``REDIS_URL`` is set).

    A wake-up is best effort *after* a commit, so nothing here may fail the request that
    committed: a publish that fails returns ``False`` (the caller falls back to PostgreSQL
    ``NOTIFY``) and marks Redis down, logged once per outage. The listener thread reconnects
    with backoff and resubscribes; while Redis is down (``healthy`` false) the platform sends
    wake-ups through ``NOTIFY``, which every process also listens to; and at every
    (re)connection ``on_connect`` runs, so the process's waiting phones look for work they may
    have missed meanwhile.
    """

    RETRY_FIRST, RETRY_MAX = 0.2, 5.0

    def __init__(self, url: str, hub: WakeupHub, on_connect=None):
        import redis  # optional dependency: pip install .[redis]

        self.errors = (redis.RedisError, OSError)
        # Short timeouts: a publish runs on the IOLoop thread, and a Redis that hangs must not hang it.
        self.client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0,
                                           health_check_interval=5)
        self.hub = hub
        self.on_connect = on_connect
        self.healthy = False
        self.outages = 0
        self.failed_publishes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self, key: str) -> bool:
        """Publish a wake-up; ``False`` when Redis is down (never raises)."""
        if not self.healthy:
            return False
        try:
            self.client.publish(CHANNEL, key)
            return True
        except self.errors as exc:
            self.failed_publishes += 1
            self._lost(exc)
            return False

    def _lost(self, exc) -> None:
        if self.healthy or self.outages == 0:
            self.outages += 1
            log.warning("Redis wake-ups unavailable (%s); using PostgreSQL NOTIFY until Redis is back",
                        exc.__class__.__name__)
        self.healthy = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="redis-wakeups", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        backoff = self.RETRY_FIRST
        while not self._stop.is_set():
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(CHANNEL)
                if not self.healthy and self.outages:
                    log.warning("Redis wake-ups are back")
                self.healthy = True
                backoff = self.RETRY_FIRST
                if self.on_connect is not None:
                    self.on_connect()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        self.hub.wake_threadsafe(message["data"].decode())
            except self.errors as exc:
                self._lost(exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.RETRY_MAX)
            finally:
                try:
                    pubsub.close()
                except self.errors:
                    pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
