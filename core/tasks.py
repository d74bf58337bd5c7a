"""The task queue: one Huey instance, tenant-scoped tasks, platform-wide periodic tasks and
per-workspace due jobs.

Huey only *triggers* work that is recorded in PostgreSQL; it does not
guarantee at-least-once delivery, so every addon keeps its own state in its
tables, and a due job (:mod:`core.due`) picks up whatever a dead worker dropped
when its time comes.

Storage: ``huey.contrib.sql_huey`` on the platform's PostgreSQL (schema
``<prefix>_queue``, owned by the serving role), or Redis when ``REDIS_URL``
is set.
"""

from __future__ import annotations

import functools
import logging

from huey import RedisHuey, crontab  # noqa: F401  (crontab re-exported for addons)
from huey.consumer import Consumer
from huey.contrib.sql_huey import SqlHuey
from playhouse.pool import PooledPostgresqlDatabase

from . import logformat
from .db import TenantContextMissing, connection, current_tenant
from .due import DueJob

log = logging.getLogger(__name__)


URGENT = 10  # the priority of tasks a customer waits for at a set time (see TaskQueue.tenant_task)
RID = "_smsgw_request_id"  # the keyword that carries the queuing request's id to the worker (JSON logs)


def _with_request_id(kwargs: dict) -> dict:
    rid = logformat.request_id.get()
    if rid is not None:
        kwargs[RID] = rid
    return kwargs


def make_huey(settings, app_url: str, name: str = "smsgw"):
    if settings.redis_url:
        return RedisHuey(name, url=settings.redis_url, results=False)
    # Every thread that enqueues keeps a connection of its own (peewee is per-thread): room for
    # all database threads of a web process plus the consumer's workers.
    db = PooledPostgresqlDatabase(
        app_url, max_connections=settings.db_pool_size + 16, stale_timeout=300, timeout=30,
        options=f"-c search_path={settings.role_prefix}_queue")
    return SqlHuey(name, database=db, results=False)


class TenantTask:
    """A handle on a tenant-scoped task: call it with the tenant's slug first."""

    def __init__(self, huey_task, name: str):
        self._task = huey_task
        self.name = name

    def __call__(self, tenant_slug: str, *args, **kwargs):
        if not tenant_slug:
            raise TenantContextMissing(f"task {self.name} must be given the tenant it works for")
        return self._task(tenant_slug, *args, **_with_request_id(kwargs))

    def schedule(self, tenant_slug: str, *args, delay=None, eta=None, **kwargs):
        if not tenant_slug:
            raise TenantContextMissing(f"task {self.name} must be given the tenant it works for")
        return self._task.schedule(args=(tenant_slug, *args), kwargs=_with_request_id(kwargs), delay=delay, eta=eta)

    def run_now(self, tenant_slug: str, *args, **kwargs):
        """Run in this process (the sweeper's and tests' entry point), with the same checks."""
        return self._task.call_local(tenant_slug, *args, **kwargs)


def returning_connection(fn):
    """``fn`` holding one pooled connection while it runs and giving it back after. Work that
    touches the database outside a transaction (``app_db`` connects by itself) would otherwise keep
    its worker thread's connection checked out for good: a consumer restarted in the process (the
    tests' in-process workers) then leaks one per thread until the pool is exhausted."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with connection():
            return fn(*args, **kwargs)
    return run


class TaskQueue:
    """What addons see in ``smsgw_tasks(queue)``: ways to register tasks."""

    def __init__(self, huey, platform):
        self.huey = huey
        self.platform = platform
        self.tasks: dict[str, object] = {}
        self.periodic_tasks: dict[str, object] = {}
        self.due_jobs: dict[str, DueJob] = {}
        # The kernel's own tasks (addons add theirs through ``smsgw_tasks``).
        from .web.auth_pages import RESET_MAIL_TASK, send_reset_mail

        def password_reset_mail(email):
            send_reset_mail(platform, email)

        self.tenant_task(password_reset_mail, name=RESET_MAIL_TASK, retries=2, retry_delay=60)

        # The kernel's own housekeeping; addons add theirs through smsgw_tasks.
        self.periodic(crontab(minute="23"), self._remove_unverified_tenants, name="core.remove_unverified_tenants",
                      per_tenant=False)
        if platform.settings.backup_dir:  # encrypted backups with retention (core/backup.py)
            from .backup import scheduled

            self.periodic(crontab(minute="7", hour=str(platform.settings.backup_hour)), lambda: scheduled(platform),
                          name="core.backup", per_tenant=False)

    def _remove_unverified_tenants(self):
        from .throttle import SignupThrottle

        self.platform.tenants.remove_unverified()
        SignupThrottle.purge()

    def for_addon(self, addon: str) -> "TaskQueue":
        """The same queue, with ``addon`` as the default gate for tenant and periodic tasks."""
        view = TaskQueue.__new__(TaskQueue)
        view.__dict__ = self.__dict__.copy()
        view.default_addon = addon
        return view

    default_addon: str | None = None

    def task(self, fn=None, *, name: str | None = None, retries: int = 0, retry_delay: int = 0):
        """A platform task (no tenant), e.g. catalogue housekeeping."""
        if fn is None:
            return functools.partial(self.task, name=name, retries=retries, retry_delay=retry_delay)
        name = name or f"{fn.__module__}.{fn.__qualname__}"
        t = self.huey.task(retries=retries, retry_delay=retry_delay, name=name)(returning_connection(fn))
        self.tasks[name] = t
        return t

    def tenant_task(self, fn=None, *, addon: str | None = None, name: str | None = None,
                    retries: int = 0, retry_delay: int = 0, priority: int = 0) -> TenantTask:
        """Register ``fn`` to run for one tenant.

        The worker looks the tenant up, refuses to run for an unknown,
        suspended or (with ``addon``) not-enabled tenant, and runs ``fn`` with
        the tenant as the current context, so ``tenant_transaction()`` inside
        it enters that tenant and no other.

        ``priority``: queued tasks run highest first (on the PostgreSQL queue; Redis runs them in
        order). Give :data:`URGENT` to work a customer waits for at a set time (a scheduled send's
        release), so it does not queue behind other work.
        """
        if fn is None:
            return functools.partial(self.tenant_task, addon=addon, name=name, retries=retries,
                                     retry_delay=retry_delay, priority=priority)
        name = name or f"{fn.__module__}.{fn.__qualname__}"
        addon = addon or self.default_addon
        platform = self.platform

        def run_for_tenant(tenant_slug, *args, **kwargs):
            # The worker's lines for this work name the request that queued it (None clears the
            # previous task's id from this thread).
            logformat.request_id.set(kwargs.pop(RID, None))
            if not tenant_slug:
                raise TenantContextMissing(f"task {name} ran without a tenant")
            # The request path's cache (invalidated by NOTIFY): no catalogue query per task.
            tenant = platform.tenant_cache.get(tenant_slug)
            if tenant is None or not tenant.is_active:
                log.warning("task %s skipped: tenant %s is gone or suspended", name, tenant_slug)
                return None
            if addon and addon not in tenant.enabled_addons:
                log.info("task %s skipped: addon %s is disabled for %s", name, addon, tenant_slug)
                return None
            token = current_tenant.set(tenant.ref)
            try:
                with connection():
                    return fn(*args, **kwargs)
            finally:
                current_tenant.reset(token)

        run_for_tenant.__name__ = fn.__name__
        # Redis storage has no priorities (it refuses one): there the queue runs in order.
        priority = (priority or None) if getattr(self.huey.storage, "priority", False) else None
        t = self.huey.task(retries=retries, retry_delay=retry_delay, name=name, priority=priority)(run_for_tenant)
        handle = TenantTask(t, name)
        self.tasks[name] = handle
        return handle

    def periodic(self, schedule, fn, *, addon: str | None = None, name: str | None = None,
                 per_tenant: bool = True):
        """Run ``fn`` on ``schedule`` (a ``crontab``) once for the platform: pass ``per_tenant=False``.

        Work per workspace is a due job (:meth:`due_job`): the fan-out to every workspace that
        ``per_tenant=True`` (the old default) made cost each idle workspace a task and several
        transactions every time, so it is refused, loudly at start-up, rather than turned into
        one platform-wide call of a function that expects a tenant.
        """
        if per_tenant:
            raise ValueError(f"periodic task {name or fn.__name__}: per-workspace work is a due job "
                             "(queue.due_job), run when the workspace has something due; platform-wide "
                             "work passes per_tenant=False")
        name = name or f"{fn.__module__}.{fn.__qualname__}"
        t = self.huey.periodic_task(schedule, name=name)(returning_connection(fn))
        self.periodic_tasks[name] = t
        return t

    def due_job(self, name: str, run, next_due, *, addon: str | None = None) -> DueJob:
        """Run ``run(tenant)`` for a workspace when its due time for job ``name`` comes.

        Tenant transactions that create work with a time call :func:`core.due.arm` (``name``,
        time); ``next_due(tenant)`` returns the earliest time of the workspace's work still
        ahead (or None). Both run inside the tenant's transaction, which also re-arms the job:
        see :mod:`core.due`. With ``addon``, only workspaces that enabled it are run.
        """
        if name in self.due_jobs:
            raise ValueError(f"two due jobs are called {name!r}")
        job = DueJob(name, run, next_due, addon or self.default_addon)
        self.due_jobs[name] = job
        return job


class EmbeddedConsumer(Consumer):
    """A Huey consumer run inside another process (``smsgw serve --with-worker``).

    It leaves signal handling to its host, which stops it on shutdown.
    """

    def _set_signal_handlers(self):
        pass

    def _create_process(self, process, name):
        """Each of the consumer's threads gives its queue connection back when it ends: huey's SQL
        storage connects once per thread and never closes, so a consumer stopped and started again
        in the same process (the tests' in-process workers) would leave the pool a connection short
        each time, until nothing could reach the queue."""
        shutdown = process.shutdown
        database = getattr(self.huey.storage, "database", None)

        def shutdown_and_close():
            try:
                shutdown()
            finally:
                if database is not None and not database.is_closed():
                    database.close()

        process.shutdown = shutdown_and_close
        return super()._create_process(process, name)
