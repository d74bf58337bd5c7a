"""Due work: per-workspace jobs that run when something of the workspace comes due, not by fan-out.

An addon declares a job in ``smsgw_tasks`` with ``queue.due_job(name, run, next_due)``. Its tenant
transactions that create work with a time (a scheduled send, a webhook retry, a claim that can
lapse, a phone that may go silent) call :func:`arm` with that time. The time goes into
``public.due_work`` (one row per workspace and job, the earliest time wins) through a SECURITY
DEFINER function that takes the workspace from the transaction's role (see
``core/migrations/public/0006_due_work.sql``; the functions are in schema ``<prefix>_due``).

The worker's :class:`DueScheduler` sleeps until the earliest row is due (or a ``NOTIFY smsgw_due``
says an earlier one was written) and runs the job for the due workspaces only: an idle workspace
costs no task, no transaction and no lookup. One run is one transaction that

* locks the row (``FOR UPDATE SKIP LOCKED``) and takes the job's advisory lock for the workspace
  exclusively (every :func:`arm` holds it shared until its transaction ends, so the run never
  reads the workspace's work before an arming transaction committed it);
* enters the tenant, calls ``run(tenant)``, then ``next_due(tenant)``;
* sets the row to that time, or deletes it when nothing is left; and commits.

So two workers never run one workspace's job at once, and a worker that dies mid-run leaves the
row as it was: the work runs again (jobs are idempotent, as the sweeps always were). A run that
fails is tried again a minute later.

Safety net: every ``due_repair_seconds`` (an hour by default) the scheduler checks every active
workspace once, a slice each minute, ``REPAIR_CHUNK`` workspaces per transaction: for each job it
asks ``next_due`` and arms what is missing or too late. A workspace is entered only if something
changed since its last check: its fingerprint (the rows written in its schema, from the statistics
PostgreSQL keeps anyway; its armed rows; the jobs its addons declare) is compared with the one
stored then (``public.due_repair_seen``). So an idle workspace costs the pass no transaction and
no catalogue cache; a lost entry (its row deleted, a write that failed to arm) changes the
fingerprint and is found. Jobs that need no precision better than that (purging expired keys and
tokens) can rely on the repair pass alone and arm nothing themselves.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from .db import DEFAULT, app_db, connection, current_alias, current_tenant, enter_tenant, routed

log = logging.getLogger(__name__)

DUE_CHANNEL = "smsgw_due"
RETRY_FAILED = 60.0  # seconds before a run that raised is tried again
SKIPPED_FOR = 300.0  # a suspended workspace's (or disabled addon's) rows are looked at again after this
REPAIR_STEP = 60.0  # seconds between two slices of the repair pass
MAX_SLEEP = 60.0  # the scheduler looks at the index at least this often (NOTIFY wakes it sooner)

_prefix = "smsgw"


def configure(role_prefix: str) -> None:
    global _prefix
    _prefix = role_prefix


@dataclass(frozen=True)
class DueJob:
    """A job that runs for one workspace when its due time comes (``queue.due_job``)."""

    name: str
    # run(tenant: TenantInfo): inside the tenant's transaction, does what is due; may return a
    # callable to call once that transaction committed (audit events, mails: catalogue work).
    run: Callable
    next_due: Callable  # next_due(tenant) -> datetime | None: inside it, the earliest time still ahead
    addon: str | None = None


def arm(job: str, when: dt.datetime) -> None:
    """Inside a tenant transaction: the workspace has work for ``job`` at ``when``.

    Keeps the earlier of ``when`` and the time already armed; costs one statement and writes
    nothing when an earlier time is armed already. Takes effect when the transaction commits.
    """
    app_db.execute_sql(f"SELECT {_prefix}_due.arm(%s, %s)", (job, when))


def arm_at(job: str, when_sql: str) -> None:
    """:func:`arm` with the time given as an SQL expression of the code's own (never of input),
    evaluated in the transaction, e.g. ``clock_timestamp() + interval '10 minutes'``."""
    app_db.execute_sql(f"SELECT {_prefix}_due.arm(%s, {when_sql})", (job,))


def arm_call(job_param: str, when_sql: str) -> str:
    """The SQL call of :func:`arm`, for a statement that arms as part of its own work (no round
    trip of its own): ``<prefix>_due.arm(%(<job_param>)s, <when_sql>)``; the statement passes the
    job's name as that parameter. ``when_sql`` is the code's own SQL, never input."""
    return f"{_prefix}_due.arm(%({job_param})s, {when_sql})"


def hold_sql(job_param: str, tenant_param: str) -> str:
    """A statement to run before one that arms with :func:`arm_unless_armed_sql` (in the same query
    string: no round trip of its own): takes ``job``'s advisory lock for the workspace shared, as
    :func:`arm` does, *before* the arming statement's snapshot. A run of the job then either
    committed before that snapshot (the statement sees what it armed) or waits for this
    transaction (and sees its work). Parameters: the job's name and ``tenant_lock_key(tenant)``."""
    return f"SELECT pg_advisory_xact_lock_shared(hashtext(%({job_param})s), %({tenant_param})s);"


def tenant_lock_key(tenant) -> int:
    """The workspace's half of a due job's advisory lock key (as the SQL functions compute it)."""
    return int(tenant.id) % 2147483647


def arm_unless_armed_sql(job_param: str, when_sql: str, source: str) -> str:
    """A query (for a CTE) that arms ``job`` at ``when_sql`` for each row of ``source`` (use one
    row: ``(SELECT 1 FROM claimed LIMIT 1) AS s`` arms when something was claimed), unless a time
    at least as early is armed already, which the workspace reads from its own view
    ``<prefix>_due.armed`` (an index lookup; the arming function is a SECURITY DEFINER call that
    costs ten times that). Run it after :func:`hold_sql` in the same transaction. ``when_sql`` and
    ``source`` are the code's own SQL, never input."""
    return (f"SELECT {_prefix}_due.arm(%({job_param})s, {when_sql}) FROM {source} "
            f"WHERE NOT EXISTS (SELECT 1 FROM {_prefix}_due.armed a "
            f"WHERE a.job = %({job_param})s AND a.due_at <= {when_sql})")


def disarm(job: str) -> None:
    """Inside a tenant transaction: the workspace has nothing left for ``job`` (work withdrawn
    before its time). Never needed for correctness: a run that finds nothing due clears the row."""
    app_db.execute_sql(f"SELECT {_prefix}_due.disarm(%s)", (job,))


def _lock_key_sql() -> str:
    return "hashtext(%(job)s), (%(tenant)s %% 2147483647)::int"


def run_due(platform, job: DueJob, tenant_id: int, slug: str) -> str:
    """One run of ``job`` for one workspace if it is due. Returns what happened: ``ran``, ``busy``
    (another run holds it, or an arming transaction is in flight), ``not-due``, ``skipped``."""
    tenant = platform.tenant_cache.get(slug)
    key = {"job": job.name, "tenant": tenant_id}
    with connection():
        with app_db.atomic():
            row = app_db.execute_sql(
                "SELECT due_at <= clock_timestamp() FROM public.due_work WHERE tenant_id = %(tenant)s "
                "AND job = %(job)s FOR UPDATE SKIP LOCKED", key).fetchone()
            if row is None:
                return "busy"  # locked by another run, or gone
            if not row[0]:
                return "not-due"
            if not app_db.execute_sql(f"SELECT pg_try_advisory_xact_lock({_lock_key_sql()})", key).fetchone()[0]:
                return "busy"
            if (tenant is None or tenant.id != tenant_id or not tenant.is_active
                    or (job.addon and job.addon not in tenant.enabled_addons)):
                app_db.execute_sql("UPDATE public.due_work SET due_at = clock_timestamp() + make_interval(secs => "
                                   "%(later)s) WHERE tenant_id = %(tenant)s AND job = %(job)s",
                                   dict(key, later=SKIPPED_FOR))
                return "skipped"
            token = current_tenant.set(tenant.ref)
            try:
                enter_tenant(app_db, tenant.ref)
                then = job.run(tenant)
                following = job.next_due(tenant)
            finally:
                current_tenant.reset(token)
            app_db.execute_sql("RESET ROLE; SET LOCAL search_path TO ''")
            if following is None:
                app_db.execute_sql("DELETE FROM public.due_work WHERE tenant_id = %(tenant)s AND job = %(job)s", key)
            else:
                # Work already due that this run left (a batch limit; attempts handed to a pool that
                # has not claimed them yet) is looked at again a second later, not in a tight loop.
                app_db.execute_sql("UPDATE public.due_work SET due_at = greatest(%(at)s, clock_timestamp() "
                                   "+ interval '1 second') WHERE tenant_id = %(tenant)s AND job = %(job)s",
                                   dict(key, at=following))
    if callable(then):
        then()
    return "ran"


def postpone_failed(tenant_id: int, job: str) -> None:
    with connection():
        app_db.execute_sql("UPDATE public.due_work SET due_at = clock_timestamp() + make_interval(secs => %s) "
                           "WHERE tenant_id = %s AND job = %s AND due_at <= clock_timestamp()",
                           (RETRY_FAILED, tenant_id, job))


_SLICE_SQL = """
SELECT t.id, t.slug, t.name, t.status, t.plan, t.schema_name, t.role_name, t.theme, t.default_region,
       coalesce(array_agg(a.addon) FILTER (WHERE a.enabled), '{}'), t.verified_at IS NOT NULL,
       seen.fingerprint, (%s), t.language
  FROM public.tenant t LEFT JOIN public.tenant_addon a ON a.tenant_id = t.id
       LEFT JOIN public.due_repair_seen seen ON seen.tenant_id = t.id
 WHERE t.id > %%s AND t.status = 'active'
 GROUP BY t.id, seen.fingerprint ORDER BY t.id LIMIT %%s
"""
# A workspace's armed rows, as text: part of what the repair pass compares (a row run, re-armed,
# cleared or deleted by hand since the last check makes the workspace checked again).
_ARMED_SQL = ("SELECT coalesce(string_agg(w.job || '@' || extract(epoch FROM w.due_at)::text, ',' "
              "ORDER BY w.job), '') FROM public.due_work w WHERE w.tenant_id = t.id")
_SLICE_SQL = _SLICE_SQL % _ARMED_SQL

# Rows inserted, updated and deleted in each active workspace's schema since the statistics began
# (one read of the statistics views for a whole pass: it scans pg_class once, whatever the slice).
# One sum of inserted, updated and deleted rows per active workspace, from the statistics
# functions themselves rather than pg_stat_user_tables (which computes some twenty figures for
# each relation). Read with stats_fetch_consistency = none, so the backend fetches each counter
# from shared memory instead of caching an entry per relation (150,000 relations at 3,000
# workspaces left 26 MB in the backend); and that connection is closed after, not pooled.
_COUNTERS_SQL = """
SELECT t.schema_name, sum(pg_stat_get_tuples_inserted(c.oid) + pg_stat_get_tuples_updated(c.oid)
                          + pg_stat_get_tuples_deleted(c.oid))::bigint
  FROM public.tenant t
  JOIN pg_namespace n ON n.nspname = t.schema_name
  JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p')
 WHERE t.status = 'active'
 GROUP BY 1
"""

READ = object()  # repair(counters=READ): read the write counters first


def write_counters() -> dict[str, int] | None:
    """Each active workspace's write counter (by schema), or None when the server keeps no counts
    (``track_counts`` off): then the repair pass checks every workspace every time."""
    with connection(), app_db.atomic():
        app_db.retire_connection()
        if app_db.execute_sql("SELECT current_setting('track_counts')::bool").fetchone()[0] is not True:
            return None
        app_db.execute_sql("SET LOCAL stats_fetch_consistency = none")
        return dict(app_db.execute_sql(_COUNTERS_SQL).fetchall())


# Workspaces per repair transaction. A transaction keeps a lock on every relation it read until it
# ends (~20 per workspace), and PostgreSQL's lock table holds max_locks_per_transaction (64) per
# connection: one transaction over 1,400 workspaces ran out of shared memory in bench_idle.
REPAIR_CHUNK = 25


def repair(jobs, after_id: int = 0, limit: int | None = None, chunk: int = REPAIR_CHUNK,
           counters=READ) -> tuple[int, int, int]:
    """Arm what ``next_due`` says for the active workspaces with ids above ``after_id`` (up to
    ``limit`` of them; all with ``limit=None``), ``chunk`` workspaces per transaction. A workspace
    whose fingerprint (write counter from ``counters``, armed rows, jobs) is what it was at its last
    check is skipped without being entered. Returns ``(last id looked at or 0 at the end, workspaces
    entered, entries armed)``. A workspace that fails is logged, skipped and checked next time."""
    if counters is READ:
        counters = write_counters()
    entered = armed = 0
    last = after_id
    left = limit if limit is not None else 2**62
    while left > 0:
        size = min(left, chunk)
        last, n, e, a = _repair_chunk(jobs, last, size, counters)
        entered, armed, left = entered + e, armed + a, left - n
        if n < size:  # the end of the workspaces: the next slice starts again from the first
            return 0, entered, armed
    return last, entered, armed


def _repair_chunk(jobs, after_id: int, limit: int, counters) -> tuple[int, int, int, int]:
    from .tenancy import TenantInfo

    entered = armed = 0
    last = after_id
    checked: dict[int, str] = {}  # tenant id -> the fingerprint's counter and jobs part
    with connection():
        with app_db.atomic():
            rows = app_db.execute_sql(_SLICE_SQL, (after_id, limit)).fetchall()
            for row in rows:
                tenant = TenantInfo(id=row[0], slug=row[1], name=row[2], status=row[3], plan=row[4],
                                    schema_name=row[5], role_name=row[6], theme=row[7], default_region=row[8],
                                    enabled_addons=frozenset(row[9]), verified=row[10], language=row[13],
                                    database_alias=current_alias())
                last = tenant.id
                wanted = [j for j in jobs if j.addon is None or j.addon in tenant.enabled_addons]
                written = None if counters is None else counters.get(tenant.schema_name)
                seen = f"{written}|{','.join(sorted(j.name for j in wanted))}"
                if written is not None and row[11] == f"{seen}|{row[12]}":
                    continue  # nothing written, run or armed since its last check
                if wanted:
                    entered += 1
                    token = current_tenant.set(tenant.ref)
                    try:
                        with app_db.atomic():  # a savepoint: one workspace's failure costs the others nothing
                            enter_tenant(app_db, tenant.ref)
                            for job in wanted:
                                when = job.next_due(tenant)
                                if when is not None:
                                    arm(job.name, when)
                                    armed += 1
                    except Exception:
                        log.exception("the due-work repair pass could not check %s", tenant.slug)
                        continue
                    finally:
                        current_tenant.reset(token)
                checked[tenant.id] = seen
            app_db.execute_sql("RESET ROLE; SET LOCAL search_path TO ''")
            if checked:
                app_db.execute_sql(
                    f"INSERT INTO public.due_repair_seen (tenant_id, fingerprint) "
                    f"SELECT t.id, c.seen || '|' || ({_ARMED_SQL}) "
                    f"FROM unnest(%s::bigint[], %s::text[]) AS c(id, seen) JOIN public.tenant t ON t.id = c.id "
                    f"ON CONFLICT (tenant_id) DO UPDATE SET fingerprint = excluded.fingerprint, checked_at = now()",
                    (list(checked), list(checked.values())))
    return last, len(rows), entered, armed


def active_count() -> int:
    with connection():
        return app_db.execute_sql("SELECT count(*) FROM public.tenant WHERE status = 'active'").fetchone()[0]


class DueScheduler(threading.Thread):
    """In the worker: runs due jobs for due workspaces, and the slow repair pass."""

    def __init__(self, platform, jobs, threads: int = 4, repair_seconds: float | None = None,
                 alias: str = DEFAULT):
        super().__init__(name="due-scheduler" if alias == DEFAULT else f"due-scheduler-{alias}", daemon=True)
        # The database server whose due work this scheduler runs (core/placement.py): each server
        # holds the rows of the workspaces that live on it.
        self.alias = alias
        self.others: list[DueScheduler] = []
        self.platform = platform
        self.jobs = {job.name: job for job in jobs}
        self.repair_seconds = repair_seconds or platform.settings.due_repair_seconds
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="due")
        self._inflight: set[tuple[int, str]] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._halt = threading.Event()
        self._failing = False
        self._next_repair = time.monotonic() + random.uniform(0, REPAIR_STEP)  # spread across workers
        self._repair_after = 0
        self._counters: dict[str, int] | None = None
        self.runs = 0

    def notify(self, _payload=None) -> None:
        """An earlier due time was written (NOTIFY), or the listener reconnected: look again."""
        self._wake.set()

    def run(self):
        while not self._halt.is_set():
            try:
                with routed(self.alias):
                    wait = self.step()
                if self._failing:
                    log.info("the due-work scheduler works again")
                self._failing = False
            except Exception as exc:  # the database is away: try again soon, say so once
                if not self._failing:
                    log.warning("the due-work scheduler failed (%s: %s); retrying", exc.__class__.__name__,
                                str(exc)[:200])
                self._failing = True
                wait = 2.0
            self._wake.wait(wait)
            self._wake.clear()

    listener = None

    def stop(self):
        for other in self.others:
            other.stop()
        if self.listener is not None:
            self.listener.stop()
        self._halt.set()
        self._wake.set()
        self.join(5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def step(self) -> float:
        """Start the due runs; return the seconds until there may be more to do."""
        wait = MAX_SLEEP
        if self.jobs:
            with connection():
                rows = app_db.execute_sql(
                    "SELECT d.tenant_id, d.job, t.slug, extract(epoch FROM d.due_at - clock_timestamp()) "
                    "FROM public.due_work d JOIN public.tenant t ON t.id = d.tenant_id "
                    "WHERE d.job = ANY (%s) ORDER BY d.due_at LIMIT 200", (list(self.jobs),)).fetchall()
            for tenant_id, job, slug, ahead in rows:
                if ahead > 0:
                    wait = min(wait, float(ahead))
                    break
                with self._lock:
                    if (tenant_id, job) in self._inflight:
                        wait = min(wait, 0.25)  # still running here: look again shortly
                        continue
                    self._inflight.add((tenant_id, job))
                self._pool.submit(self._run, self.jobs[job], tenant_id, slug)
        now = time.monotonic()
        if now >= self._next_repair:
            self._next_repair = now + REPAIR_STEP
            self.repair_slice()
        return max(0.0, min(wait, self._next_repair - time.monotonic()))

    def _run(self, job: DueJob, tenant_id: int, slug: str) -> None:
        outcome = "failed"
        try:
            with routed(self.alias):
                outcome = run_due(self.platform, job, tenant_id, slug)
        except Exception:
            log.exception("due job %s failed for %s; trying again in %g s", job.name, slug, RETRY_FAILED)
            try:
                with routed(self.alias):
                    postpone_failed(tenant_id, job.name)
            except Exception:
                log.warning("could not postpone due job %s of %s", job.name, slug)
        finally:
            with self._lock:
                self._inflight.discard((tenant_id, job.name))
            if outcome == "ran":
                self.runs += 1
            if outcome == "busy":  # another run or an arming transaction holds it: again shortly
                threading.Timer(0.25, self._wake.set).start()
            else:
                self._wake.set()

    def repair_slice(self) -> int:
        """One step of the repair pass: the next ``1/(repair_seconds/REPAIR_STEP)`` of the workspaces.
        The write counters are read once, when a pass begins; a counter read before a workspace's
        check can only be older than its state, so a write it missed makes a later pass look."""
        if self._repair_after == 0:
            self._counters = write_counters()
        size = max(1, math.ceil(active_count() * REPAIR_STEP / self.repair_seconds))
        self._repair_after, entered, armed = repair(list(self.jobs.values()), self._repair_after, size,
                                                    counters=self._counters)
        if armed:
            self._wake.set()
        return entered


def start_scheduler(platform) -> DueScheduler:
    """Start the scheduler for the jobs addons declared, with a listener of its own: NOTIFY
    ``smsgw_due`` wakes it for an earlier time, ``smsgw_tenant_changed`` keeps the tenant
    cache it shares with the process's tasks fresh."""
    from .notify import Listener, listener_for
    from .tenancy import TENANT_CHANNEL

    queue = platform.setup_tasks()
    scheduler = DueScheduler(platform, queue.due_jobs.values())
    listener = listener_for([platform.app_url, *platform.server_app_urls.values()])
    listener.subscribe(TENANT_CHANNEL, lambda slug: platform.tenant_cache.invalidate(slug or None))
    listener.start()
    scheduler.listener = listener
    # One scheduler per database server (SMSGW_DATABASES), each woken by its server's NOTIFY.
    for alias, url in [(DEFAULT, platform.app_url), *platform.server_app_urls.items()]:
        runner = scheduler if alias == DEFAULT else DueScheduler(platform, queue.due_jobs.values(), alias=alias)
        due_listener = Listener(url)
        due_listener.subscribe(DUE_CHANNEL, runner.notify)
        due_listener.start()
        if runner is scheduler:
            scheduler.others.append(_ListenerOnly(due_listener))
        else:
            runner.listener = due_listener
            scheduler.others.append(runner)
            runner.start()
    scheduler.start()
    return scheduler


class _ListenerOnly:
    """Stops the default scheduler's NOTIFY listener for smsgw_due with it."""

    def __init__(self, listener):
        self.listener = listener

    def stop(self):
        self.listener.stop()
