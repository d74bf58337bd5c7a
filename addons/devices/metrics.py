"""The devices addon's Prometheus counters (see core/metrics.py): phones going offline and coming
back, and offline alerts opened (a phone gone while work waits for it)."""

from __future__ import annotations

from prometheus_client import Counter

from core import metrics

OFFLINE = Counter("smsgw_devices_offline_total", "Phones the offline sweep marked offline.")
ALERTS = Counter("smsgw_device_offline_alerts_total", "Offline alerts opened: a phone went offline while work waited for it.")


def count_offline(gone: int, alerts: int) -> None:
    if metrics.ON:
        OFFLINE.inc(gone)
        ALERTS.inc(alerts)
