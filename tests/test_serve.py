"""`smsgw serve --with-worker --demo` (what `make run` runs) on a fresh data dir, twice."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from core.embedded_pg import EmbeddedPostgres
from tests.support.serve import wait_ready

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(env):
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", "--with-worker", "--demo"],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, wait_ready(proc, 90)


@pytest.mark.slow
def test_make_run_path_fresh_then_reused(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SMSGW_APP_DATABASE_URL")}
    env.update(SMSGW_DATA_DIR=str(tmp_path / "var"), SMSGW_PORT=str(free_port()),
               PYTHONPATH=str(ROOT), SMSGW_EMBEDDED_PG_FAST="1")
    proc, out = start(env)
    try:
        assert "Created the demo tenant 'demo'." in out
        assert "http://demo.localhost:" in out and "sign in as  owner@demo.example / " in out
        assert "admin@platform.example" in out
        base = f"http://127.0.0.1:{env['SMSGW_PORT']}"
        r = requests.get(base + "/health/ready", headers={"Host": "demo.localhost"}, timeout=10)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        r = requests.get(base + "/", headers={"Host": "demo.localhost"}, timeout=10)
        assert "Demo Company" in r.text
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert "Embedded PostgreSQL stopped." in rest and "Stopped." in rest
    assert not EmbeddedPostgres(tmp_path / "var").is_running()
    creds = (tmp_path / "var" / "secrets" / "demo-credentials.json")
    assert oct(creds.stat().st_mode & 0o777) == "0o600"

    # Second run: same data, same credentials, no new tenant; SIGTERM also stops cleanly.
    env["SMSGW_PORT"] = str(free_port())
    proc, out2 = start(env)
    try:
        assert "Created the demo tenant" not in out2
        password_line = [l for l in out.splitlines() if "owner@demo.example" in l][0]
        assert password_line in out2
        r = requests.get(f"http://127.0.0.1:{env['SMSGW_PORT']}/health/ready",
                         headers={"Host": "demo.localhost"}, timeout=10)
        assert r.status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, rest
    assert not EmbeddedPostgres(tmp_path / "var").is_running()
