"""Tasks: tenant-scoped tasks carry their tenant and fail closed; periodic work is platform-wide."""

import json
import secrets
import time

import pytest

from core.db import TenantContextMissing, tenant_transaction
from core.tasks import TaskQueue, make_huey
from tests.support.worker import run_huey_until


def mark(key, value):
    """A tenant task body: writes into whatever tenant is current (and only there)."""
    with tenant_transaction() as db:
        db.execute_sql("INSERT INTO settings (key, value) VALUES (%s, %s) "
                       "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (key, json.dumps(value)))


def read_mark(tenant, key):
    with tenant_transaction(tenant.ref) as db:
        row = db.execute_sql("SELECT value FROM settings WHERE key = %s", (key,)).fetchone()
    return row[0] if row else None


@pytest.fixture
def queue(platform):
    huey = make_huey(platform.settings, platform.app_url, name=f"test-{secrets.token_hex(3)}")
    q = TaskQueue(huey, platform)
    yield q
    huey.flush()


def test_tenant_task_without_tenant_is_refused(queue):
    task = queue.tenant_task(mark, name="mark-refuse")
    with pytest.raises(TenantContextMissing):
        task(None, "k", 1)
    with pytest.raises(TenantContextMissing):
        task("", "k", 1)


def test_tenant_task_runs_in_its_tenant_only(queue, make_tenant):
    a, b = make_tenant("ta"), make_tenant("tb")
    task = queue.tenant_task(mark, name="mark-one")
    task(a.slug, "hello", "from-task")
    assert run_huey_until(queue.huey, lambda: read_mark(a, "hello") == "from-task")
    assert read_mark(b, "hello") is None


def test_task_for_suspended_tenant_does_not_run(platform, queue, make_tenant):
    a = make_tenant("tsusp")
    task = queue.tenant_task(mark, name="mark-susp")
    platform.tenants.suspend(a.slug)
    task(a.slug, "ran", True)
    assert run_huey_until(queue.huey, lambda: queue.huey.pending_count() == 0)
    time.sleep(0.3)  # let the worker finish the task it dequeued
    platform.tenants.resume(a.slug)
    assert read_mark(a, "ran") is None


def test_task_body_without_context_fails_closed(queue):
    """Platform tasks that try tenant work without a tenant get an error, not someone's data."""
    with pytest.raises(TenantContextMissing):
        mark("x", 1)


def test_periodic_work_per_workspace_is_refused(queue):
    """Per-workspace work is a due job (core.due): a per-tenant fan-out each minute cost every idle
    workspace a task and several transactions, so the queue no longer offers one."""
    from huey import crontab

    with pytest.raises(ValueError, match="due job"):
        queue.periodic(crontab(minute="*"), lambda: None, name="tick", per_tenant=True)
    with pytest.raises(ValueError, match="due job"):  # the old default: an addon written for it fails loudly
        queue.periodic(crontab(minute="*"), lambda: None, name="tick")
    assert queue.periodic(crontab(minute="*"), lambda: None, name="platform-tick", per_tenant=False)


def test_urgent_tasks_run_before_a_backlog_of_housekeeping(platform, make_tenant):
    """A scheduled send's release must not wait behind the per-tenant fan-out of every sweep (the
    queue of a platform with many workspaces holds hundreds of those each minute)."""
    from core.tasks import URGENT

    huey = make_huey(platform.settings, platform.app_url, name=f"prio-{secrets.token_hex(3)}")
    queue = TaskQueue(huey, platform)
    t = make_tenant("prio")
    order = []
    chores = queue.tenant_task(lambda n: order.append(("chore", n)), name="test.chore")
    urgent = queue.tenant_task(lambda: order.append(("urgent", 0)), name="test.urgent", priority=URGENT)
    for n in range(30):
        chores(t.slug, n)
    urgent(t.slug)
    assert run_huey_until(huey, lambda: len(order) == 31)
    assert order.index(("urgent", 0)) < 3, order[:5]  # at most the chores already taken ran first


def test_consumers_stopped_and_started_again_leave_the_queue_reachable(queue, make_tenant):
    """An in-process consumer's threads give their queue connections back when it stops: started
    and stopped more times than the queue's pool holds connections, the queue still works (before,
    each stop left one connection per thread checked out, and the pool ran dry)."""
    t = make_tenant("tqpool")
    task = queue.tenant_task(mark, name="test.pool_mark")
    pool_size = queue.huey.storage.database._max_connections
    for _ in range(pool_size // 2 + 2):  # a worker and a scheduler thread each time
        run_huey_until(queue.huey, lambda: False, timeout=0.05)
    task(t.slug, "after", 1)
    assert run_huey_until(queue.huey, lambda: read_mark(t, "after") == 1, timeout=20)
