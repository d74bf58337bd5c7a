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

The work function is written for a list: ``work(items)`` runs inside the tenant's
transaction and returns one outcome per item, in order: a value, or an exception
instance for that item alone (a :class:`~core.web.problem.Problem`, say). It must decide
such per-item refusals before writing anything for that item. If it raises instead, the
transaction is rolled back and every item of the group runs again alone, in a
transaction of its own, so one bad request cannot fail the others. Every caller's answer
still comes after the commit that made its work durable.

Groups never mix tenants: the key is the tenant's schema, and the transaction runs
with that tenant's role.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque

from .db import TenantRef, run_in_tenant


class GroupCommit:
    def __init__(self, work, *, concurrency: int = 2, max_size: int = 100, size=None):
        self.work = work
        self.concurrency = concurrency
        self.max_size = max_size
        self.size = size or (lambda item: 1)
        self._loop = None
        self._waiting: dict[str, deque] = {}
        self._running: dict[str, int] = {}
        self._tasks: set[asyncio.Task] = set()

    async def __call__(self, tenant: TenantRef, item):
        """The outcome of ``item``, done in a transaction of ``tenant`` (perhaps with others)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new event loop (a server restarted in this process)
            self._loop, self._waiting, self._running, self._tasks = loop, {}, {}, set()
        future = loop.create_future()
        self._waiting.setdefault(tenant.schema_name, deque()).append((item, future))
        if self._running.get(tenant.schema_name, 0) < self.concurrency:
            self._start(tenant)
        return await future

    def _start(self, tenant: TenantRef) -> None:
        key = tenant.schema_name
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
        self._running[key] = self._running.get(key, 0) + 1
        # A fresh context: the group's work is not any one request's.
        task = self._loop.create_task(self._run(tenant, group), context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, tenant: TenantRef, group: list) -> None:
        try:
            items = [item for item, _ in group]
            try:
                outcomes = await run_in_tenant(tenant, self.work, items)
            except Exception as exc:
                if len(group) == 1:
                    outcomes = [exc]
                else:  # one item's failure must not fail the others: each again, alone
                    outcomes = await asyncio.gather(*(self._alone(tenant, item) for item in items))
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
            raise
        finally:
            key = tenant.schema_name
            self._running[key] -= 1
            if not self._running[key]:
                del self._running[key]
            if key in self._waiting:
                self._start(tenant)

    async def _alone(self, tenant: TenantRef, item):
        try:
            return (await run_in_tenant(tenant, self.work, [item]))[0]
        except Exception as exc:
            return exc
