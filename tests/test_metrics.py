"""Operations (issue 21, item 1): Prometheus metrics on a listener of their own, across several web
processes (multiprocess mode), and JSON logs whose request ids reach the worker's lines."""

from __future__ import annotations

import contextvars
import os
import json
import logging
import subprocess
import sys
import time

import pytest
import requests

from core import logformat
from tests.support.serve import ROOT, free_port, stop_serve, wait_ready
from tests.support.worker import run_worker_until


def scrape(port: int, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"http://127.0.0.1:{port}/metrics", headers=headers, timeout=10)


def value(text: str, sample: str) -> float | None:
    """The value of the exposition line that starts with ``sample`` (name and labels, exactly)."""
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.fixture(scope="module")
def two_processes(test_env, platform, tmp_path_factory):
    """Two ``smsgw serve`` processes sharing one port and one metrics port (SO_REUSEPORT), with a
    shared PROMETHEUS_MULTIPROC_DIR: the production shape on one machine."""
    metrics_port, port = free_port(), free_port()
    env = dict(os.environ, **test_env)
    env.update(PYTHONPATH=str(ROOT), SMSGW_PORT=str(port), SMSGW_METRICS_ADDRESS=f"127.0.0.1:{metrics_port}",
               SMSGW_METRICS_TOKEN="scrape-token-123", PROMETHEUS_MULTIPROC_DIR=str(tmp_path_factory.mktemp("prom")),
               SMSGW_LOG_FORMAT="json", SMSGW_TRUST_PROXY="1")
    procs = []
    for _ in range(2):
        proc = subprocess.Popen([sys.executable, "-m", "core.cli", "serve"], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append((proc, wait_ready(proc)))
    yield port, metrics_port, procs
    for proc, _ in procs:
        if proc.poll() is None:
            stop_serve(proc)


def test_metrics_need_the_token_and_count_requests_of_every_process(two_processes):
    port, metrics_port, procs = two_processes
    assert scrape(metrics_port, None).status_code == 401
    assert scrape(metrics_port, "wrong").status_code == 401
    before = value(scrape(metrics_port, "scrape-token-123").text,
                   'smsgw_http_requests_total{method="GET",route="/health/live",status="200"}') or 0
    for _ in range(40):  # new connections: the kernel spreads them over both processes
        r = requests.get(f"http://127.0.0.1:{port}/health/live", headers={"Connection": "close"}, timeout=10)
        assert r.status_code == 200
    requests.get(f"http://127.0.0.1:{port}/no/such/page", timeout=10)
    time.sleep(0.2)
    answer = scrape(metrics_port, "scrape-token-123")
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    text = answer.text
    assert value(text, 'smsgw_http_requests_total{method="GET",route="/health/live",status="200"}') == before + 40
    # A path no route matches is counted under its handler's name: a client cannot add series.
    assert value(text, 'smsgw_http_requests_total{method="GET",route="NotFoundHandler",status="400"}') >= 1
    assert value(text, 'smsgw_http_request_duration_seconds_count{route="/health/live"}') >= before + 40
    # What the processes hold (sampled), what the database holds (read at the scrape), and what an
    # addon registered through smsgw_metrics (webhooks' backlog).
    for name in ("smsgw_db_pool_connections_max", "smsgw_task_queue_depth", "smsgw_webhook_backlog_oldest_seconds",
                 'smsgw_webhook_backlog_workspaces{due="now"}'):
        assert value(text, name) is not None, name
    # Both processes' pool limits are summed (livesum): each wrote its own (as this process's pool).
    from core.db import app_db

    assert value(text, "smsgw_db_pool_connections_max") == 2 * app_db._max_connections


def test_a_queued_tasks_log_lines_carry_the_request_id(platform):
    """The worker's lines for work a request queued name that request."""
    platform.setup_tasks()
    seen = []

    class Capture(logging.Handler):
        def emit(self, record):
            seen.append(json.loads(logformat.JsonFormatter().format(record)))

    handler = Capture(level=logging.WARNING)
    logging.getLogger("core.tasks").addHandler(handler)
    try:
        from core.web.auth_pages import RESET_MAIL_TASK

        task = platform.queue.tasks[RESET_MAIL_TASK]

        def queue_in_request():
            logformat.request_id.set("req-in-the-worker-7")
            task("no-such-workspace-x", "someone@example.com")

        contextvars.Context().run(queue_in_request)
        assert run_worker_until(platform, lambda: any("no-such-workspace-x" in r["message"] for r in seen))
    finally:
        logging.getLogger("core.tasks").removeHandler(handler)
    line = next(r for r in seen if "no-such-workspace-x" in r["message"])
    assert line["request_id"] == "req-in-the-worker-7"


class Served:
    """The two processes as the tests' helpers see a server (``client(slug)``, ``url``)."""

    def __init__(self, platform, port: int):
        self.platform, self.port, self.url = platform, port, f"http://127.0.0.1:{port}"

    def client(self, slug):
        from tests.support.server import HostClient

        return HostClient(self, slug)


def test_a_send_its_wake_and_its_report_are_counted(two_processes, platform):
    from tests.support.devices import LongPoll, device_client, raw_device, submit
    from tests.support.phones import api_token

    port, metrics_port, _procs = two_processes
    server = Served(platform, port)
    slug = f"mx-{os.urandom(3).hex()}"
    platform.tenants.create(slug, "Metrics Ltd", f"owner@{slug}.example", "a long enough password")
    try:
        api = server.client(slug)
        api.headers["Authorization"] = f"Bearer {api_token(slug)}"
        _device_id, token = raw_device(server, slug, api=api)
        dev = device_client(server, slug, token)
        samples = ('smsgw_message_transitions_total{state="processed"}', 'smsgw_message_transitions_total{state="sent"}',
                   "smsgw_wakeups_total", "smsgw_wakeup_latency_seconds_count",
                   'smsgw_http_requests_total{method="POST",route="/api/device/v1/reports",status="200"}')
        text = scrape(metrics_port, "scrape-token-123").text
        before = {s: value(text, s) or 0 for s in samples}
        poll = LongPoll(dev, wait=20).start()
        time.sleep(0.5)  # parked
        submit(api, "+14155550101", text="counted")
        (item,) = poll.join(25).response.json()["messages"]
        r = dev.post("/api/device/v1/reports", json={"reports": [{"message_id": item["id"], "state": "sent"}]})
        assert r.status_code == 200, r.text
        time.sleep(0.2)
        text = scrape(metrics_port, "scrape-token-123").text
        after = {s: value(text, s) or 0 for s in samples}
        assert after[samples[0]] == before[samples[0]] + 1  # handed to the phone
        assert after[samples[1]] == before[samples[1]] + 1  # reported sent
        assert after["smsgw_wakeups_total"] >= before["smsgw_wakeups_total"] + 1  # the parked poll woke
        assert after["smsgw_wakeup_latency_seconds_count"] >= before["smsgw_wakeup_latency_seconds_count"] + 1
        assert after[samples[4]] == before[samples[4]] + 1
        # The send, the report and the poll's look went through group commits, each named by its work.
        for work in ("accept_api_sends", "_apply_reports", "look_many"):
            assert value(text, f'smsgw_group_commit_size_count{{work="{work}"}}') >= 1, work
    finally:
        platform.tenants.delete(slug)


def test_json_logs_carry_the_proxys_request_id(two_processes):
    """(Last in the module: it stops the two processes to read their whole output.)"""
    port, _metrics_port, procs = two_processes
    for _ in range(6):  # either process may take it; every process gets some
        requests.get(f"http://127.0.0.1:{port}/health/live", headers={"X-Request-ID": "req-from-nginx-42"},
                     timeout=10)
    lines = []
    for proc, _ in procs:
        proc.send_signal(2)
        lines += proc.communicate(timeout=60)[0].splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    access = [r for r in records if r["logger"] == "smsgw.access" and "/health/live" in r["message"]]
    tagged = [r for r in access if r.get("request_id") == "req-from-nginx-42"]
    assert len(tagged) == 6
    assert all(r["level"] == "INFO" and r["time"].endswith("+00:00") for r in tagged)
    others = [r for r in access if r.get("request_id") != "req-from-nginx-42"]
    assert others and all(len(r["request_id"]) == 16 for r in others)  # the rest got ids of their own
