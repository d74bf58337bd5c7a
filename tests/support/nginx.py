"""Debian's nginx in front of our ``smsgw serve`` processes, configured from ``deploy/nginx.conf``.

The shipped server block is used as it is, with what a loopback test cannot have swapped out:
the listen lines (a free loopback port, no TLS; :func:`check_deploy_config` checks the TLS lines
with ``nginx -t`` and a self-signed certificate), the upstream (one ``server`` line per web
process, on ports of their own, so that a test knows which process holds a phone; production
shares one port) and the domain. One directive is added: ``X-Upstream`` on answers names the
process that gave them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent.parent
DEPLOY = ROOT / "deploy" / "nginx.conf"
NGINX = "/usr/sbin/nginx"


def _wrap(directory: Path, server_blocks: str) -> str:
    """A whole nginx.conf around ``server_blocks``: foreground, one worker, files in ``directory``."""
    temp = "\n".join(f"    {kind}_temp_path {directory / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""
    return (f"{user}daemon off;\nworker_processes 1;\npid {directory / 'nginx.pid'};\n"
            f"error_log {directory / 'error.log'} warn;\nevents {{ worker_connections 4096; }}\n"
            f"http {{\n    access_log {directory / 'access.log'};\n{temp}\n{server_blocks}\n}}\n")


def _domain(text: str, base_domain: str) -> str:
    return text.replace("example.com", base_domain)


def loopback_config(directory: Path, port: int, upstream_ports, base_domain: str) -> str:
    """deploy/nginx.conf for a loopback test (see the module's docstring)."""
    text = DEPLOY.read_text()
    servers = "".join(f"    server 127.0.0.1:{p} max_fails=0;\n" for p in upstream_ports)
    text, n = re.subn(r"    server 127\.0\.0\.1:8888 max_fails=0;\n", servers, text)
    assert n == 1, "deploy/nginx.conf's upstream is not as expected"
    # The port-80 server only redirects to HTTPS: not wanted here.
    text, n = re.subn(r"server \{\n    listen 80;.*?\n\}\n", "", text, flags=re.S)
    assert n == 1, "deploy/nginx.conf's redirect server is not as expected"
    text = re.sub(r"    listen \[::\]:443 ssl[^;]*;\n", "", text)
    text, n = re.subn(r"    listen 443 ssl[^;]*;\n", f"    listen 127.0.0.1:{port};\n"
                      "    add_header X-Upstream $upstream_addr always;\n", text)
    assert n == 1, "deploy/nginx.conf's listen line is not as expected"
    text = re.sub(r"    (ssl_\w+|http2) [^;]*;\n", "", text)
    return _wrap(directory, _domain(text, base_domain))


def check_deploy_config(directory: Path, certfile: Path, keyfile: Path) -> subprocess.CompletedProcess:
    """``nginx -t`` on deploy/nginx.conf as shipped (TLS included), with a test certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    text = DEPLOY.read_text().replace("/etc/letsencrypt/live/example.com/fullchain.pem", str(certfile))
    text = text.replace("/etc/letsencrypt/live/example.com/privkey.pem", str(keyfile))
    conf = directory / "check.conf"
    conf.write_text(_wrap(directory, text))
    return subprocess.run([NGINX, "-t", "-p", str(directory), "-e", str(directory / "error.log"), "-c", str(conf)],
                          capture_output=True, text=True, timeout=30)


class Nginx:
    """nginx in the foreground on ``port``, proxying to ``upstream_ports``. Looks enough like the
    live server for the test helpers (``url``, ``port``, ``platform.settings.base_domain``,
    ``client(slug)``)."""

    def __init__(self, directory: Path, port: int, upstream_ports, base_domain: str = "localhost"):
        from types import SimpleNamespace

        self.directory, self.port = Path(directory), port
        self.directory.mkdir(parents=True, exist_ok=True)
        self.conf = self.directory / "nginx.conf"
        self.conf.write_text(loopback_config(self.directory, port, upstream_ports, base_domain))
        self.platform = SimpleNamespace(settings=SimpleNamespace(base_domain=base_domain))
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen([NGINX, "-p", str(self.directory), "-e", str(self.directory / "error.log"),
                                      "-c", str(self.conf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("nginx did not start:\n" + self.proc.stdout.read() + self.errors())
            try:
                requests.get(self.url + "/health/live", headers={"Host": base_domain}, timeout=2)
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError("nginx did not answer:\n" + self.errors())

    def errors(self) -> str:
        path = self.directory / "error.log"
        return path.read_text() if path.exists() else ""

    def client(self, slug=None):
        from tests.support.server import HostClient

        return HostClient(self, slug)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish what is in flight
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
