"""A dead phone must not go unnoticed (issue 22, item 4), timed with the real companion.

A separate ``smsgw serve --with-worker`` runs with a short offline timeout
(``SMSGW_DEVICE_OFFLINE_SECONDS=6``: long polls then wait at most 3 s). The simulated phone polls
for longer than the timeout and is never taken for offline; once it stops, it shows offline within
the timeout of its last contact (plus a little for the due job), the workspace gets its alert by
e-mail (a message waits for that phone), and the recovery notice when it comes back.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

from android_companion.backends.simulator import SimulatorBackend
from android_companion.runner import Companion, pair

from tests.support.identity import mails_to, owner_email
from tests.support.messaging import sql, wait_until
from tests.support.phones import api_token
from tests.support.serve import start_serve, stop_serve
from tests.support.server import HostClient

OFFLINE = 6


def test_a_stopped_phone_is_offline_within_the_timeout_and_the_workspace_is_told(platform, make_tenant, cli_env,
                                                                                   tmp_path):
    t = make_tenant("dead")
    proc, port, _ = start_serve(dict(cli_env, SMSGW_DEVICE_OFFLINE_SECONDS=str(OFFLINE)), "--with-worker")
    try:
        server = SimpleNamespace(platform=platform, port=port, url=f"http://127.0.0.1:{port}")
        api = HostClient(server, t.slug)
        api.headers["Authorization"] = f"Bearer {api_token(t.slug)}"
        code = api.post("/api/v1/devices/pairing-codes", json={}).json()["code"]
        url = f"http://{t.slug}.{platform.settings.base_domain}:{port}"
        state_dir = Path(tmp_path / "phone")
        state = pair(state_dir, url, code, SimulatorBackend(), name="Counter", connect_to=f"127.0.0.1:{port}")
        options = dict(heartbeat_interval=60.0, inbound_interval=0.5, flush_interval=0.2, backoff_cap=2.0)
        companion = Companion(state_dir, SimulatorBackend(), wait=30, **options).start()

        def online() -> bool:
            r = api.get(f"/api/v1/devices/{state.device_id}")
            assert r.status_code == 200, r.text
            return r.json()["online"]

        wait_until(online, 10, what="the phone to come online")
        # Polling for twice the timeout, it never reads as offline (its polls wait 3 s, not 30).
        until = time.monotonic() + 2 * OFFLINE
        while time.monotonic() < until:
            assert online()
            time.sleep(0.5)

        companion.stop()
        stopped = time.monotonic()
        # Work only this phone may take now waits for it.
        r = api.post("/api/v1/messages", json={"to": ["+14155550100"], "text": "for the counter",
                                              "device_id": state.device_id})
        assert r.status_code == 202, r.text
        wait_until(lambda: not online(), OFFLINE + 6, interval=0.2, what="the phone to go offline")
        took = time.monotonic() - stopped
        (last_seen_ago,), = sql(t, "SELECT extract(epoch FROM now() - last_seen_at) FROM devices")
        # Offline at most the timeout after its last contact (the stop, or the end of its last poll),
        # plus what the due job and this test's polling add.
        assert took <= OFFLINE + 3.5, took
        assert last_seen_ago >= OFFLINE - 0.5, last_seen_ago

        mail = wait_until(lambda: mails_to(platform, owner_email(t), "is offline"), 10, what="the alert mail")
        assert "and 1 message waits for it" in mail[0].get_body(preferencelist=("plain",)).get_content()
        page_alert = sql(t, "SELECT kind, waiting FROM device_alerts WHERE ended_at IS NULL")
        assert page_alert == [("offline", 1)]

        again = Companion(state_dir, SimulatorBackend(), wait=30, **options).start()
        try:
            wait_until(lambda: mails_to(platform, owner_email(t), "is back online"), 15, what="the recovery mail")
            assert sql(t, "SELECT count(*) FROM device_alerts WHERE ended_at IS NULL") == [(0,)]
        finally:
            again.stop()
    finally:
        stop_serve(proc)


def test_a_phone_holding_the_apps_event_stream_stays_online(platform, make_tenant, cli_env):
    """The app's phones do not poll: an open event stream records their contact often enough
    that a short offline timeout never takes them for offline; once the stream ends they are."""
    from core.db import tenant_transaction

    from addons.mobile import service as mobile
    from tests.support.mobile_app import AppPhone

    t = make_tenant("streaming")
    with tenant_transaction(t.ref):
        token, _row = mobile.create_enrollment(t.slug, "user:test", "desk", 1, 7)
    proc, port, _ = start_serve(dict(cli_env, SMSGW_DEVICE_OFFLINE_SECONDS=str(OFFLINE)), "--with-worker")
    try:
        server = SimpleNamespace(platform=platform, port=port, url=f"http://127.0.0.1:{port}")
        api = HostClient(server, t.slug)
        api.headers["Authorization"] = f"Bearer {api_token(t.slug)}"
        app = AppPhone(f"{t.slug}.{platform.settings.base_domain}", port)
        status, _headers, body = app.register(token)
        assert status == 201, body

        def online() -> bool:
            r = api.get(f"/api/v1/devices/{app.device_id}")
            assert r.status_code == 200, r.text
            return r.json()["online"]

        stream = app.open_events()
        assert stream.status == 200
        try:
            until = time.monotonic() + 2 * OFFLINE
            while time.monotonic() < until:
                assert online()
                time.sleep(0.5)
        finally:
            stream.close()
        wait_until(lambda: not online(), OFFLINE + 6, interval=0.2, what="the phone to go offline")
    finally:
        stop_serve(proc)
