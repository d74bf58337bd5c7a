"""Group commit: requests for the same work in the same tenant that arrive together share one transaction.

A phone's status report or a single-recipient send is a little work wrapped in a lot of
fixed cost: a trip to the database thread, ``BEGIN`` with the tenant's role and search
path, a few statements each parsed and planned, and a ``COMMIT`` that waits for the WAL
flush. When many arrive at once (a fleet of phones reporting, a customer sending from
many workers), the fixed cost dominates. :class:`GroupCommit` lets at most
``concurrency`` transactions of one kind run per tenant; requests that arrive meanwhile
wait, and the next transaction takes all of them, up to ``max_size`` (each item counts
``size(item)``, 1 by default; an item larger than that goes alone). A request that
arrives when nothing is running starts at once, so a lone request waits for nothing.
With ``stagger`` (seconds), a further transaction starts beside a running one only once
the latest has run that long: fewer, larger groups while transactions are quick, and a
spare one when one is slow (so a slow transaction does not hold up everything behind it).
With ``overlap_commit`` as well, the further transaction may also start as soon as the latest
one's work is done and it only waits for its ``COMMIT`` (the WAL flush, with the GIL released):
the next group's Python work overlaps the last one's flush instead of queueing behind it.

The work function is written for a list: ``work(items)`` runs inside the tenant's
transaction and returns one outcome per item, in order: a value, or an exception
instance for that item alone (a :class:`~core.web.problem.Problem`, say). It must decide
such per-item refusals before writing anything for that item. If it raises instead, the
transaction is rolled back and every item of the group runs again alone, one after the
other, each in a transaction of its own, so one bad request cannot fail the others. A
failure outside the work (``BEGIN``, ``COMMIT``, a lost connection) is not retried: a commit
whose answer was lost may have happened, so every caller gets the error, as it would
without grouping. Every caller's answer still comes after the commit that made its work
durable.

Groups never mix tenants: the key is the tenant's schema, and the transaction runs
with that tenant's role.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque

from . import metrics
from .db import TenantRef, run_sync, tenant_transaction
from .web.problem import Problem


def with_refusals(items: list, check, rest) -> list:
    """For work functions: one outcome per item, where ``check(item)`` either gives what goes on
    or raises the :class:`Problem` that refuses that item alone, and ``rest(checked)`` gives the
    outcomes of the items that went on (in their order)."""
    outcomes, checked, places = [], [], []
    for item in items:
        try:
            value = check(item)
        except Problem as refusal:
            outcomes.append(refusal)
            continue
        places.append(len(outcomes))
        outcomes.append(None)
        checked.append(value)
    if checked:
        for place, outcome in zip(places, rest(checked)):
            outcomes[place] = outcome
    return outcomes


class GroupCommit:
    def __init__(self, work, *, concurrency: int = 2, max_size: int = 100, size=None, stagger: float = 0.0,
                 overlap_commit: bool = False):
        self.work = work
        self.concurrency = concurrency
        self.max_size = max_size
        self.size = size or (lambda item: 1)
        self.stagger = stagger
        self.overlap_commit = overlap_commit
        self._loop = None
        self._waiting: dict[str, deque] = {}
        self._running: dict[str, int] = {}
        self._started: dict[str, float] = {}  # when the latest group of a tenant started
        self._latest: dict[str, object] = {}  # the latest group's mark, while its work runs
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task] = set()

    async def __call__(self, tenant: TenantRef, item):
        """The outcome of ``item``, done in a transaction of ``tenant`` (perhaps with others)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (a server restarted in this process)
            self._loop, self._waiting, self._running, self._tasks = loop, {}, {}, set()
            self._started, self._timers, self._latest = {}, {}, {}
        future = loop.create_future()
        self._waiting.setdefault(tenant.schema_name, deque()).append((item, future))
        self._maybe_start(tenant)
        return await future

    def _maybe_start(self, tenant: TenantRef) -> None:
        """Start a group for what waits, if the limits allow it now; with ``stagger``, else when
        they will (a timer)."""
        key = tenant.schema_name
        running = self._running.get(key, 0)
        if not running and key in self._timers:  # the group it waited beside is done: go now
            self._timers.pop(key).cancel()
        if key not in self._waiting or running >= self.concurrency or key in self._timers:
            return
        if running and self.stagger and (key in self._latest or not self.overlap_commit):  # still at its work
            due = self._started[key] + self.stagger
            if self._loop.time() < due:
                self._timers[key] = self._loop.call_at(due, self._timer_due, tenant)
                return
        self._start(tenant)

    def _timer_due(self, tenant: TenantRef) -> None:
        self._timers.pop(tenant.schema_name, None)
        self._maybe_start(tenant)

    def _work_done(self, tenant: TenantRef, mark: object) -> None:
        """In the loop: the group marked ``mark`` did its work and is committing."""
        key = tenant.schema_name
        if self._latest.get(key) is mark:
            del self._latest[key]
            if key in self._timers:
                self._timers.pop(key).cancel()
            self._maybe_start(tenant)

    def _start(self, tenant: TenantRef) -> None:
        key = tenant.schema_name
        self._started[key] = self._loop.time()
        mark = self._latest[key] = object()
        queue = self._waiting[key]
        group, total = [], 0
        while queue:
            n = self.size(queue[0][0])
            if group and total + n > self.max_size:
                break
            group.append(queue.popleft())
            total += n
        if not queue:
            del self._waiting[key]
        if metrics.ON:
            metrics.child(metrics.GROUP_SIZE, getattr(self.work, "__name__", "work")).observe(len(group))
        self._running[key] = self._running.get(key, 0) + 1
        # A fresh context: the group's work is not any one request's.
        task = self._loop.create_task(self._run(tenant, group, mark), context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, tenant: TenantRef, group: list, mark: object) -> None:
        try:
            items = [item for item, _ in group]
            done = None
            if self.overlap_commit and self.stagger:
                loop = self._loop
                done = lambda: loop.call_soon_threadsafe(self._work_done, tenant, mark)  # noqa: E731
            try:
                outcomes = await run_sync(_transaction, tenant, self.work, items, done)
            except _WorkFailed as failed:
                if len(group) == 1:
                    outcomes = [failed.__cause__]
                else:  # rolled back: one item's failure must not fail the others, so each again alone
                    outcomes = [await self._alone(tenant, item) for item in items]
            # Anything else (BEGIN, COMMIT, the connection) goes to every caller as it is: a commit
            # whose answer was lost may have happened, and doing the work again could do it twice.
            for (_, future), outcome in zip(group, outcomes):
                if future.done():  # its caller is gone (cancelled)
                    continue
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
        except BaseException as exc:  # never leave a caller waiting
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            key = tenant.schema_name
            if self._latest.get(key) is mark:
                del self._latest[key]
            self._running[key] -= 1
            if not self._running[key]:
                del self._running[key]
                self._started.pop(key, None)
            self._maybe_start(tenant)

    async def _alone(self, tenant: TenantRef, item):
        """``item`` in a transaction of its own (one after the other: the retries of a failed group
        stay within the concurrency limit)."""
        try:
            return (await run_sync(_transaction, tenant, self.work, [item]))[0]
        except _WorkFailed as failed:
            return failed.__cause__
        except Exception as exc:
            return exc


class _WorkFailed(Exception):
    """The work itself raised (its ``__cause__``), so its transaction was rolled back."""


def _transaction(tenant: TenantRef, work, items: list, done=None) -> list:
    with tenant_transaction(tenant):
        try:
            outcomes = work(items)
        except Exception as exc:
            raise _WorkFailed() from exc
        if len(outcomes) != len(items):  # a bug in the work: roll back rather than answer at random
            raise _WorkFailed() from RuntimeError(
                f"group commit work returned {len(outcomes)} outcomes for {len(items)} items")
        if done is not None:  # on to COMMIT: the next group may start its work beside it
            done()
        return outcomes
