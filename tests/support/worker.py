"""The platform's own task queue, worked for a while by an in-process consumer, as
``smsgw serve --with-worker`` does (tasks of earlier tests that are still queued run too)."""

from __future__ import annotations

import time

from core.tasks import EmbeddedConsumer


def run_worker_until(platform, predicate, timeout: float = 30.0, workers: int = 1) -> bool:
    """Work the queue until ``predicate()`` holds (True) or ``timeout`` passes (False)."""
    platform.setup_tasks()
    consumer = EmbeddedConsumer(platform.huey, workers=workers, worker_type="thread", periodic=False,
                                check_worker_health=False, max_delay=0.1, initial_delay=0.05)
    consumer.start()
    try:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()
    finally:
        consumer.stop(graceful=True)


def queued(platform, task_name: str) -> list[tuple]:
    """Arguments of the queued (not yet worked) tasks named ``task_name``."""
    platform.setup_tasks()
    return [tuple(t.args) for t in platform.huey.pending() if t.name == task_name]
