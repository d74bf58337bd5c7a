"""The threads that make webhook deliveries: a pool of their own, a few at a time per tenant.

The task queue's worker threads also release scheduled sends and hand back offline
phones' work, so they only hand attempts over to this pool and return. Here each
tenant has at most ``per_tenant`` attempts in flight and tenants take turns, so a
tenant whose endpoints are slow (each attempt bounded by the sender's deadline)
delays its own webhooks, not another tenant's. The pool holds only triggers:
PostgreSQL keeps every delivery, and the due job (core/due.py) finds whatever a stopped
process dropped.

While an attempt runs, a lease keeper thread renews its claim every third of the lease
(SMSGW_WEBHOOK_LEASE), however long the attempt takes: the sweeper offers a claimed delivery
again only once its lease lapsed, i.e. when the process that claimed it died.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from dataclasses import dataclass

from core.db import TenantRef, current_tenant

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    tenant: TenantRef
    delivery_id: int
    trigger: str = "schedule"
    tries: int = 0


class DeliveryPool:
    def __init__(self, workers: int = 8, per_tenant: int = 2, timeout: float = 30.0, lease: float | None = None):
        if workers < 2 or not 1 <= per_tenant < workers:
            raise ValueError("a delivery pool needs 2 or more workers and a per-tenant cap below that number, "
                             "or one tenant could take every worker")
        self.workers, self.per_tenant, self.timeout = workers, per_tenant, timeout
        self.lease = float(lease or timeout + 30)
        if self.lease < 1:
            raise ValueError("a claim lease shorter than a second could lapse between two renewals")
        self._cond = threading.Condition()
        self._waiting: dict[str, deque[Job]] = {}  # per tenant slug, in arrival order
        self._queued: set[tuple[str, int]] = set()  # (slug, delivery id) waiting: a second trigger adds nothing
        self._running: dict[str, int] = {}
        self._turns: deque[str] = deque()  # tenants with waiting work and room under their cap, in turn
        self._threads: list[threading.Thread] = []
        self._in_flight: dict[str, tuple[TenantRef, set[int]]] = {}  # per slug: the attempts running here
        self._keeper: threading.Thread | None = None
        self._stopped = threading.Event()
        self._stopping = False

    def submit(self, tenant: TenantRef, delivery_id: int, trigger: str = "schedule", tries: int = 0) -> bool:
        """Queue one attempt; False when that delivery is already waiting here (or the pool stopped)."""
        with self._cond:
            key = (tenant.slug, delivery_id)
            if self._stopping or key in self._queued:
                return False
            self._queued.add(key)
            self._waiting.setdefault(tenant.slug, deque()).append(Job(tenant, delivery_id, trigger, tries))
            self._offer_turn(tenant.slug)
            if self._keeper is None:
                self._keeper = threading.Thread(target=self._keep_leases, name="webhook-leases", daemon=True)
                self._keeper.start()
            if len(self._threads) < self.workers:
                thread = threading.Thread(target=self._work, name=f"webhook-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        return True

    def running(self, slug: str) -> int:
        with self._cond:
            return self._running.get(slug, 0)

    def stop(self, timeout: float | None = None) -> None:
        """Take no more work; wait up to ``timeout`` for the attempts in flight."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._stopped.set()
        for thread in self._threads:
            thread.join(timeout)

    # -- inside ----------------------------------------------------------------------------

    def _offer_turn(self, slug: str) -> None:
        """Under the lock: put the tenant in line if it has waiting work and room under its cap."""
        if (self._waiting.get(slug) and self._running.get(slug, 0) < self.per_tenant
                and slug not in self._turns):
            self._turns.append(slug)
            self._cond.notify()

    def _take(self) -> Job | None:
        with self._cond:
            while not self._turns and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            slug = self._turns.popleft()
            job = self._waiting[slug].popleft()
            if not self._waiting[slug]:
                del self._waiting[slug]
            self._queued.discard((slug, job.delivery_id))
            self._running[slug] = self._running.get(slug, 0) + 1
            self._in_flight.setdefault(slug, (job.tenant, set()))[1].add(job.delivery_id)
            self._offer_turn(slug)  # more of this tenant: to the back of the line
            return job

    def _done(self, job: Job) -> None:
        slug = job.tenant.slug
        with self._cond:
            ids = self._in_flight[slug][1]
            ids.discard(job.delivery_id)
            if not ids:
                del self._in_flight[slug]
            self._running[slug] -= 1
            if not self._running[slug]:
                del self._running[slug]
            self._offer_turn(slug)

    def _work(self) -> None:
        from . import delivery

        while (job := self._take()) is not None:
            token = current_tenant.set(job.tenant)
            try:
                delivery.run(job, self.timeout, self.lease)
            except Exception:  # one failed attempt must not stop the pool; the sweeper retries it
                log.exception("webhook delivery %s of %s failed", job.delivery_id, job.tenant.slug)
            finally:
                current_tenant.reset(token)
                self._done(job)

    def _keep_leases(self) -> None:
        """Renew the claims of the attempts running here, a third of the lease apart, so a claim
        lapses only when this process is gone (then nobody renews it)."""
        from . import delivery

        failing = False
        while not self._stopped.wait(self.lease / 3):
            with self._cond:
                in_flight = [(tenant, set(ids)) for tenant, ids in self._in_flight.values()]
            for tenant, ids in in_flight:
                try:
                    delivery.renew(tenant, ids, self.lease)
                    failing = False
                except Exception as exc:  # the database is away: the claim may lapse; at-least-once holds
                    if not failing:
                        log.warning("could not renew webhook delivery claims (%s); if this lasts longer than "
                                    "the lease, their deliveries may be attempted twice", exc.__class__.__name__)
                    failing = True
