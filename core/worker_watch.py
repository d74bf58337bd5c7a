"""The worker's heartbeat, and what web processes do in its place while it is away.

The worker (``smsgw worker``, or the consumer of ``smsgw serve --with-worker``) writes a heartbeat
to ``public.periodic_mark`` every second. Readiness reports how old it is (``worker``: ``ok`` or
``late``; never a 503, the web still serves). A web process without a worker of its own runs a
:class:`StandIn`: once the heartbeat is older than :data:`WORKER_LATE`, it does each second the
time-critical part of the worker's job that addons declare (``smsgw_worker_standin``, e.g. waking
phones when scheduled messages become due) for the window since the last stand-in run. Taking a
window is one atomic UPDATE of the ``standin`` mark (row lock, SKIP LOCKED), so several web
processes never do the same window twice and never leave a gap between windows. It visits only
the workspaces whose due work (:mod:`core.due`) came due by the window's end.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from .db import app_db, connection, tenant_transaction

log = logging.getLogger(__name__)

BEAT_EVERY = 1.0  # seconds between the worker's heartbeats
WORKER_LATE = 5.0  # seconds without a heartbeat before web processes stand in for the worker
STANDIN_EVERY = 1.0

_BEAT_SQL = ("INSERT INTO public.periodic_mark (name, at, by) VALUES ('worker', clock_timestamp(), %s) "
             "ON CONFLICT (name) DO UPDATE SET at = excluded.at, by = excluded.by")
# The window (since, until] of work that came due and nobody released: it starts where the last
# stand-in stopped, or a little before the worker's last heartbeat (it released up to then).
_TAKE_WINDOW_SQL = """
WITH beat AS (SELECT max(at) AS at FROM public.periodic_mark WHERE name = 'worker'),
     last AS (SELECT at FROM public.periodic_mark WHERE name = 'standin' FOR UPDATE SKIP LOCKED)
UPDATE public.periodic_mark m SET at = clock_timestamp(), by = %(by)s
FROM last, beat
WHERE m.name = 'standin'
  AND (beat.at IS NULL OR beat.at < clock_timestamp() - make_interval(secs => %(late)s))
  AND last.at < clock_timestamp() - interval '0.5 seconds'
RETURNING greatest(last.at, beat.at - make_interval(secs => %(late)s)), m.at
"""


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_age() -> float | None:
    """Seconds since the worker's last heartbeat (None: no worker ever beat here)."""
    with connection():
        row = app_db.execute_sql("SELECT extract(epoch FROM clock_timestamp() - at) FROM public.periodic_mark "
                                 "WHERE name = 'worker'").fetchone()
    return float(row[0]) if row else None


def worker_status() -> dict:
    """For readiness: ``worker`` is ``ok`` or ``late``, with the heartbeat's age in seconds."""
    age = worker_age()
    return {"worker": "ok" if age is not None and age < WORKER_LATE else "late",
            "worker_last_seen_s": round(age, 1) if age is not None else None}


class _Loop(threading.Thread):
    """A daemon thread that runs ``step`` every ``every`` s and logs a failing run once per outage."""

    every = 1.0
    what = "background step"

    def __init__(self, platform):
        super().__init__(name=self.__class__.__name__, daemon=True)
        self.platform = platform
        self._halt = threading.Event()
        self._failing = False

    def run(self):
        while not self._halt.wait(self.every):
            try:
                self.step()
                if self._failing:
                    log.info("%s works again", self.what)
                self._failing = False
            except Exception as exc:  # the database is away: try again next time, say so once
                if not self._failing:
                    log.warning("%s failed (%s: %s); retrying every %g s", self.what, exc.__class__.__name__,
                                str(exc)[:200], self.every)
                self._failing = True

    def stop(self):
        self._halt.set()
        self.join(5)


class WorkerHeartbeat(_Loop):
    """In worker processes: tells web processes (and readiness) that a worker is alive."""

    every = BEAT_EVERY
    what = "the worker's heartbeat"

    def step(self):
        with connection():
            app_db.execute_sql(_BEAT_SQL, (process_name(),))


class StandIn(_Loop):
    """In web processes without a worker: while the worker is late, do its time-critical part."""

    every = STANDIN_EVERY
    what = "the stand-in for a late worker"

    def __init__(self, platform):
        super().__init__(platform)
        self.windows = 0

    def step(self) -> int:
        with connection():
            with app_db.atomic():
                app_db.execute_sql("INSERT INTO public.periodic_mark (name, at, by) VALUES "
                                   "('standin', clock_timestamp() - interval '1 hour', '') ON CONFLICT DO NOTHING")
            with app_db.atomic():
                window = app_db.execute_sql(_TAKE_WINDOW_SQL, {"by": process_name(), "late": WORKER_LATE}).fetchone()
        if window is None:  # the worker is alive, or another web process just took the window
            return 0
        since, until = window
        if self.windows == 0:
            log.warning("no worker heartbeat for %g s or more: this web process releases scheduled work "
                        "in its place (start `smsgw worker`)", WORKER_LATE)
        self.windows += 1
        registry = self.platform.registry
        done = 0
        for tenant in self._due_tenants(until):
            if not tenant.is_active:
                continue
            keys = []
            try:
                with tenant_transaction(tenant.ref):
                    for found in registry.hook.smsgw_worker_standin(tenant=tenant, since=since, until=until):
                        keys += found
            except Exception:  # one tenant's failure must not cost the others their window
                log.exception("the stand-in could not release due work of %s", tenant.slug)
                continue
            if keys:
                self.platform.wake_now(*keys)
                done += 1
        return done

    def _due_tenants(self, until):
        """Workspaces with due work (``public.due_work``, see :mod:`core.due`) by ``until``: the
        worker left their entries in place, so only these can have something to release."""
        with connection():
            slugs = [r[0] for r in app_db.execute_sql(
                "SELECT DISTINCT t.slug FROM public.due_work d JOIN public.tenant t ON t.id = d.tenant_id "
                "WHERE d.due_at <= %s", (until,)).fetchall()]
        cache = self.platform.tenant_cache
        return [tenant for tenant in map(cache.get, slugs) if tenant is not None]
