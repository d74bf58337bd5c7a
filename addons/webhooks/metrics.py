"""The webhooks addon's Prometheus metrics (see core/metrics.py): attempts by outcome, counted as
they end, and the retry backlog read from the due-work index when Prometheus scrapes."""

from __future__ import annotations

import logging

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily

from core import metrics

log = logging.getLogger(__name__)

ATTEMPTS = Counter("smsgw_webhook_attempts_total",
                   "Webhook delivery attempts, by what followed: succeeded, retry (another attempt is scheduled) "
                   "or failed (given up).", ["outcome"])


def count_attempt(state: str | None) -> None:
    if metrics.ON and state:
        metrics.child(ATTEMPTS, "retry" if state == "pending" else state).inc()


class BacklogCollector:
    """Workspaces with deliveries waiting for an attempt, and how late the latest-overdue one is:
    one catalogue query (``public.due_work``), whatever the number of workspaces."""

    def __init__(self, job: str):
        self.job = job

    def collect(self):
        from core.db import app_db, connection

        try:
            with connection():
                waiting, overdue, oldest = app_db.execute_sql(
                    "SELECT count(*), count(*) FILTER (WHERE due_at <= now()), "
                    "coalesce(extract(epoch FROM now() - min(due_at) FILTER (WHERE due_at <= now())), 0) "
                    "FROM public.due_work WHERE job = %s", (self.job,)).fetchone()
        except Exception as exc:  # a scrape during an outage shows what it can
            log.warning("metrics: the backlog could not be read (%s)", exc.__class__.__name__)
            return
        family = GaugeMetricFamily("smsgw_webhook_backlog_workspaces",
                                   "Workspaces with webhook deliveries waiting (retries included), by whether "
                                   "their time has come.", labels=["due"])
        family.add_metric(["now"], overdue)
        family.add_metric(["later"], waiting - overdue)
        age = GaugeMetricFamily("smsgw_webhook_backlog_oldest_seconds",
                                "How long the longest-waiting workspace's due deliveries have waited.")
        age.add_metric([], float(oldest))
        yield family
        yield age
