"""Usage metering under faults (issue 16, item 3): a real ``smsgw serve`` process, SIGKILLed.

* 16 clients send (and a phone reports) while the server is killed outright: the usage figures
  equal the rows in the database, to the segment: counted in the work's own transaction, a send
  that committed is counted and one that was cut off is neither stored nor counted.
* API calls are counted in the process and written in batches (addons/usage/recorder.py): after a
  clean stop every call is counted; after SIGKILL never more than were made.
"""

from __future__ import annotations

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from addons.usage import service
from core.clock import utcnow
from core.db import tenant_transaction
from tests.support.messaging import raw_device
from tests.support.phones import api_token
from tests.support.serve import start_serve
from tests.test_usage import USAGE_SCOPES, truth

pytestmark = [pytest.mark.fault, pytest.mark.slow]


class Served:
    """A started ``smsgw serve`` whose output is drained (a full pipe would stall it)."""

    def __init__(self, env, **extra):
        self.proc, self.port, _ = start_serve(dict(env, **extra))
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def session(self, slug: str, token: str) -> requests.Session:
        s = requests.Session()
        s.headers.update({"Host": f"{slug}.localhost:{self.port}", "Authorization": f"Bearer {token}"})
        return s

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def counted(t) -> dict:
    today = utcnow().date()
    with tenant_transaction(t.ref):
        return service.report(today.replace(day=1) if today.day > 1 else today, today)["totals"]


def test_a_server_killed_mid_run_leaves_usage_equal_to_the_rows(cli_env, live_server, make_tenant, tmp_path):
    t = make_tenant("kil")
    token = api_token(t.slug, USAGE_SCOPES)
    phone = raw_device(live_server, t.slug, tmp_path / "p")
    server = Served(cli_env)
    stop = threading.Event()
    accepted = []

    def sender(i):
        s = server.session(t.slug, token)
        k = 0
        while not stop.is_set():
            to = [f"+14155{i:02d}{k:04d}"] + ([f"+14156{i:02d}{k:04d}"] if k % 3 == 0 else [])
            try:
                r = s.post(server.url("/api/v1/messages"), json={"to": to, "text": "y" * (150 if k % 2 else 20)},
                           timeout=10)
            except requests.RequestException:
                return
            if r.status_code == 202:
                accepted.append(r.json()["id"])
            k += 1

    def reporter():
        s = server.session(t.slug, phone.token)
        while not stop.is_set():
            try:
                got = s.get(server.url("/api/device/v1/messages"), params={"wait": 0, "limit": 20}, timeout=10)
                items = got.json().get("messages", [])
                if items:
                    s.post(server.url("/api/device/v1/reports"), timeout=10, json={"reports": [
                        {"message_id": x["id"], "state": "delivered" if n % 2 else "sent"}
                        for n, x in enumerate(items)]})
                else:
                    time.sleep(0.05)
            except (requests.RequestException, ValueError):
                return

    with ThreadPoolExecutor(17) as pool:
        futures = [pool.submit(sender, i) for i in range(16)] + [pool.submit(reporter)]
        deadline = time.monotonic() + 30
        while len(accepted) < 150 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.proc.send_signal(signal.SIGKILL)  # mid-run: requests and transactions in flight
        server.proc.wait(10)
        stop.set()
        for f in futures:
            f.result(30)
    assert len(accepted) >= 150, "the server accepted too little before it was killed"

    # PostgreSQL aborts the dead process's open transactions once it sees its connections close.
    def settled():
        a = truth(t)
        time.sleep(0.5)
        return a == truth(t)

    deadline = time.monotonic() + 30
    while not settled() and time.monotonic() < deadline:
        pass
    rows = truth(t)
    assert rows["messages"] >= len(accepted)  # a send that committed but whose answer was cut off is stored
    figures = counted(t)
    for key in ("messages", "recipients_submitted", "segments_submitted", "recipients_sent", "segments_sent",
                "recipients_delivered", "recipients_failed"):
        assert figures[key] == rows[key], (key, figures[key], rows[key])
    assert rows["recipients_sent"] > 0


def test_api_calls_are_all_counted_after_a_clean_stop_and_never_overcounted_after_sigkill(cli_env, make_tenant):
    t = make_tenant("cal")
    token = api_token(t.slug, USAGE_SCOPES)
    # A clean stop (Ctrl-C): every finished call is written on the way out.
    server = Served(cli_env, SMSGW_USAGE_FLUSH_SECONDS="3600")
    s = server.session(t.slug, token)
    for _ in range(25):
        assert s.get(server.url("/api/v1/messages"), timeout=10).status_code == 200
    server.proc.send_signal(signal.SIGINT)
    server.proc.wait(60)
    assert counted(t)["api_calls"] == 25

    # SIGKILL: what was written stays, what was only in memory is lost; never more than made.
    server = Served(cli_env, SMSGW_USAGE_FLUSH_SECONDS="1")
    s = server.session(t.slug, token)
    for _ in range(20):
        assert s.get(server.url("/api/v1/messages"), timeout=10).status_code == 200
    time.sleep(2.5)  # at least one flush
    for _ in range(10):
        assert s.get(server.url("/api/v1/messages"), timeout=10).status_code == 200
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    made = 25 + 30
    assert 25 + 20 <= counted(t)["api_calls"] <= made
