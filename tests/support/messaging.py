"""Helpers for the messaging tests: waiting, counting rows, and a phone speaking the device protocol raw.

Nothing here stands in for our code: the raw device sends real HTTP requests to
the real server with a real device token (obtained by pairing through the API),
for the cases where a test must choose exactly which reports arrive, and in
which order, which the companion app would not do on its own.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from core.db import tenant_transaction

from .phones import pair_phone


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last value: {last!r}")


def sql(tenant, query: str, params=()) -> list[tuple]:
    """Run ``query`` in the tenant's own transaction (its role, its schema) and return the rows."""
    with tenant_transaction(tenant.ref) as db:
        cur = db.execute_sql(query, params)
        return cur.fetchall() if cur.description else []


def row_counts(tenant) -> dict:
    (m, r, e, k), = sql(tenant, "SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM recipients), "
                                "(SELECT count(*) FROM recipient_events), (SELECT count(*) FROM idempotency_keys)")
    return {"messages": m, "recipients": r, "events": e, "idempotency_keys": k}


def wait_for_states(client, message_id: int, states: set[str], timeout: float = 10.0) -> dict:
    """GET the message until every recipient is in one of ``states``; return the last answer."""

    def settled():
        m = client.get(f"/api/v1/messages/{message_id}").json()
        return m if all(r["state"] in states for r in m["recipients"]) else None

    return wait_until(settled, timeout, what=f"message {message_id} to reach {sorted(states)}")


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


class RawDevice:
    """A paired phone whose requests the test writes itself (``/api/device/v1/...``)."""

    def __init__(self, live_server, slug: str, token: str, device_id: int):
        self.device_id = device_id
        self.token = token
        self.http = live_server.client(slug)
        self.http.headers["Authorization"] = f"Bearer {token}"

    def fetch(self, limit: int = 10, wait: int = 0) -> list[dict]:
        r = self.http.get("/api/device/v1/messages", params={"wait": wait, "limit": limit})
        assert r.status_code == 200, r.text
        return r.json()["messages"]

    def report(self, *reports: dict):
        return self.http.post("/api/device/v1/reports", json={"reports": list(reports)})

    def inbound(self, *messages: dict):
        return self.http.post("/api/device/v1/inbound", json={"messages": list(messages)})


def raw_device(live_server, slug: str, state_dir: Path, client=None, name=None) -> RawDevice:
    """Pair a phone through the API (pairing code + the companion's own ``pair``) and keep its token."""
    state, _ = pair_phone(live_server, slug, Path(state_dir), client=client, name=name)
    return RawDevice(live_server, slug, state.token, state.device_id)
