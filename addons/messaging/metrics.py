"""The messaging addon's Prometheus counters (see core/metrics.py): recipients moved to each state.

Counted only while the process's metrics are on; labels are states, never workspaces.
"""

from __future__ import annotations

from prometheus_client import Counter

from core import metrics

TRANSITIONS = Counter("smsgw_message_transitions_total",
                      "Recipients moved into a state (processed: handed to a phone; sent, delivered, failed, ...).",
                      ["state"])


def count(state: str, n: int = 1) -> None:
    if metrics.ON and n:
        metrics.child(TRANSITIONS, state).inc(n)


def count_history(history) -> None:
    """Rows of ``recipient_events`` about to be written: ``(id, from, to, ...)`` tuples."""
    if metrics.ON:
        by_state: dict[str, int] = {}
        for row in history:
            by_state[row[2]] = by_state.get(row[2], 0) + 1
        for state, n in by_state.items():
            metrics.child(TRANSITIONS, state).inc(n)
