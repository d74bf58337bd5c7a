"""The platform this process runs, as seen by the messaging addon (set at start-up by its hooks)."""

from __future__ import annotations

_platform = None


def set_platform(platform) -> None:
    global _platform
    _platform = platform


def platform():
    if _platform is None:
        raise RuntimeError("the messaging addon was used before the platform started")
    return _platform


_tasks: dict = {}


def set_task(name: str, handle) -> None:
    _tasks[name] = handle


def task(name: str):
    return _tasks.get(name)
