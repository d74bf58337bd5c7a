"""``smsgw serve`` as a subprocess for tests that need a real second process (bind address, a
second web process on the session's database)."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(env: dict, *args, timeout: float = 120) -> tuple[subprocess.Popen, int, str]:
    """``smsgw serve ARGS`` on a free port; waits for it to say it is ready: (process, port, output).
    Fails the test (and kills the process) if it does not start."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "core.cli", "serve", *args], env=dict(env, SMSGW_PORT=str(port)),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, port, wait_ready(proc, timeout)


def wait_ready(proc: subprocess.Popen, timeout: float = 120) -> str:
    """Read a started ``smsgw serve``'s output until it says it is ready; that output. Fails the
    test (and kills the process) if it exits or stays silent about it for ``timeout`` seconds."""
    lines = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C to stop." in line:
            return "".join(lines)
    proc.kill()
    pytest.fail("smsgw serve did not start:\n" + "".join(lines))


def stop_serve(proc: subprocess.Popen) -> str:
    """Ctrl-C, as a person would; the rest of its output."""
    proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=60)[0]
