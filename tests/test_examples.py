"""The scripts in examples/ run as subprocesses against the live server, as a customer would run them.

They reach the server on the base domain (``http://localhost:<port>``): an API token
names its workspace, so no tenant host name has to resolve.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import requests

from android_companion.backends.simulator import SimulatorBackend
from core.db import current_tenant
from addons.webhooks import delivery
from tests.support.phones import api_client, api_token, start_phone

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
TO = "+14155550123"


def env_with(**values) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGW_") or k == "SMSGW_WEBHOOK_ALLOW_PRIVATE"}
    env.update({k: str(v) for k, v in values.items()})
    return env


def run(args, env, timeout=60) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def base_url(live_server) -> str:
    return f"http://{live_server.platform.settings.base_domain}:{live_server.port}"


@pytest.fixture
def tenant(make_tenant):
    return make_tenant("ex")


@pytest.fixture
def phone(live_server, tenant, tmp_path):
    backend = SimulatorBackend(delivery_delay=0.05)
    companion = start_phone(live_server, tenant.slug, tmp_path / "phone", backend=backend, wait=2)
    yield backend
    companion.stop()


def test_send_curl(live_server, tenant):
    curl = shutil.which("curl")
    assert curl, ("curl is not installed, so examples/send_curl.sh cannot be tested: install it "
                  "(apt-get install curl; .ci/run does) and run again")
    script = str(EXAMPLES / "send_curl.sh")
    missing = run(["bash", script], env_with(SMSGW_URL=base_url(live_server)))
    assert missing.returncode == 2
    assert "SMSGW_TOKEN" in missing.stderr and "SMSGW_TO" in missing.stderr

    done = run(["bash", script], env_with(SMSGW_URL=base_url(live_server), SMSGW_TOKEN=api_token(tenant.slug),
                                          SMSGW_TO=TO, SMSGW_TEXT='Say "hi" \\ from curl'))
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["state"] == "pending" and answer["recipients"][0]["phone"] == TO
    stored = api_client(live_server, tenant.slug).get(f"/api/v1/messages/{answer['id']}").json()
    assert stored["text"] == 'Say "hi" \\ from curl'

    refused = run(["bash", script], env_with(SMSGW_URL=base_url(live_server), SMSGW_TOKEN=api_token(tenant.slug),
                                             SMSGW_TO="not a number"))
    assert refused.returncode != 0 and "validation-failed" in refused.stdout + refused.stderr


def test_send_requests_follows_the_message_to_delivered(live_server, tenant, phone):
    script = str(EXAMPLES / "send_requests.py")
    missing = run([sys.executable, script], env_with())
    assert missing.returncode == 2 and "SMSGW_URL" in missing.stderr
    done = run([sys.executable, script], env_with(SMSGW_URL=base_url(live_server), SMSGW_TOKEN=api_token(tenant.slug),
                                                  SMSGW_TO=TO, SMSGW_TEXT="from requests", SMSGW_WAIT=20))
    assert done.returncode == 0, done.stderr
    assert "accepted: message" in done.stdout and f"{TO}: delivered" in done.stdout, done.stdout
    assert [s["text"] for s in phone.sent] == ["from requests"]


def test_send_through_the_android_sms_gateway_client(live_server, tenant, phone):
    script = str(EXAMPLES / "send_android_sms_gateway.py")
    missing = run([sys.executable, script], env_with(SMSGW_URL=base_url(live_server)))
    assert missing.returncode == 2 and "SMSGW_TOKEN" in missing.stderr and "SMSGW_LOGIN" in missing.stderr
    done = run([sys.executable, script], env_with(SMSGW_URL=base_url(live_server), SMSGW_TOKEN=api_token(tenant.slug),
                                                  SMSGW_TO=TO, SMSGW_TEXT="from their client", SMSGW_WAIT=20))
    assert done.returncode == 0, done.stderr
    assert "accepted: message" in done.stdout and f"{TO}: Delivered" in done.stdout, done.stdout
    assert [s["text"] for s in phone.sent] == ["from their client"]


class Lines:
    """The stdout lines of a running process, readable with a timeout."""

    def __init__(self, proc):
        self.q: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [self.q.put(line) for line in proc.stdout], daemon=True).start()

    def next(self, timeout=15.0) -> str:
        return self.q.get(timeout=timeout).rstrip("\n")


def test_webhook_receiver_verifies_and_prints_events(live_server, tenant, monkeypatch):
    monkeypatch.setenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", "1")  # the receiver listens on 127.0.0.1
    # Deliveries are attempted below with the addon's own attempt(), as the per-minute sweeper
    # does; the task the recording enqueued waits for a consumer that tests do not run.
    script = str(EXAMPLES / "webhook_receiver.py")
    missing = run([sys.executable, script], env_with())
    assert missing.returncode == 2 and "SMSGW_WEBHOOK_SECRET" in missing.stderr

    api = api_client(live_server, tenant.slug)
    ep = api.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/placeholder", "events": ["system:ping"]}).json()
    proc = subprocess.Popen([sys.executable, "-u", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env_with(SMSGW_WEBHOOK_SECRET=ep["secret"], PORT=0))
    try:
        lines = Lines(proc)
        listening = lines.next()
        assert listening.startswith("LISTENING http://127.0.0.1:"), listening
        url = listening.split(" ", 1)[1] + "hooks"
        assert api.patch(f"/api/v1/webhooks/{ep['id']}", json={"url": url}).status_code == 200

        delivery_id = api.post(f"/api/v1/webhooks/{ep['id']}/ping", json={}).json()["delivery_id"]
        token = current_tenant.set(tenant.ref)
        try:
            assert delivery.attempt(delivery_id) == "succeeded"  # the receiver answered 2xx after verifying
        finally:
            current_tenant.reset(token)
        kind, webhook_id, rest = lines.next().split(" ", 3)[1:]
        assert kind == "system:ping" and webhook_id.startswith("msg_")
        assert json.loads(rest)["webhook"] == ep["id"]

        # A forged request (no valid signature) is refused and reported, not printed as an event.
        forged = requests.post(url, data=b'{"type":"sms:received"}', timeout=10,
                               headers={"webhook-id": "msg_forged", "webhook-timestamp": "1700000000",
                                        "webhook-signature": "v1,AAAA"})
        assert forged.status_code == 401
        assert lines.next().startswith("REJECTED msg_forged:")

        # A redelivery keeps the webhook-id: the receiver acknowledges it without handling it again.
        api.post(f"/api/v1/webhooks/{ep['id']}/deliveries/{delivery_id}/redeliver", json={})
        token = current_tenant.set(tenant.ref)
        try:
            assert delivery.attempt(delivery_id, "redeliver") == "succeeded"
        finally:
            current_tenant.reset(token)
        assert lines.next() == f"DUPLICATE system:ping {webhook_id}: already handled"
    finally:
        proc.terminate()
        proc.wait(10)
