"""The device protocol client (``/api/device/v1``), on the standard library only (Termux-friendly)."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from urllib.parse import urlencode, urlsplit, urlunsplit

from . import __version__


class ServerError(Exception):
    """The server answered with an error; ``status`` and ``problem`` say which."""

    def __init__(self, status: int, problem: dict):
        super().__init__(f"{status}: {problem.get('detail') or problem.get('title') or problem}")
        self.status = status
        self.problem = problem

    @property
    def auth_failed(self) -> bool:
        return self.status in (401, 403)


class NetworkError(Exception):
    """The server could not be reached; retry later."""


class DeviceClient:
    """``connect_to`` (``host[:port]``) opens connections there while keeping the server URL's
    host in the ``Host`` header, like curl's ``--connect-to``: for LANs and test machines
    where the workspace's subdomain has no DNS record."""

    def __init__(self, server_url: str, token: str = "", timeout: float = 30.0, connect_to: str | None = None):
        parts = urlsplit(server_url.rstrip("/"))
        self.host_header = parts.netloc
        netloc = connect_to or parts.netloc
        self.base = urlunsplit((parts.scheme, netloc, parts.path, "", "")) + "/api/device/v1"
        self.connect_to = connect_to
        self.token = token
        self.timeout = timeout

    def _call(self, method: str, path: str, body=None, query=None, timeout=None):
        url = self.base + path + ("?" + urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if self.connect_to:
            req.add_header("Host", self.host_header)
        req.add_header("User-Agent", f"smsgw-companion/{__version__}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                raw = resp.read()
                return json.loads(raw) if raw else {}
        except urllib.error.HTTPError as exc:
            try:
                problem = json.loads(exc.read() or b"{}")
            except ValueError:
                problem = {"detail": exc.reason}
            raise ServerError(exc.code, problem) from None
        except (urllib.error.URLError, socket.timeout, ConnectionError, TimeoutError, OSError) as exc:
            raise NetworkError(str(exc)) from None

    def register(self, code: str, device: dict) -> dict:
        return self._call("POST", "/register", {"code": code, "device": device})

    def fetch(self, wait: int, limit: int, settings_version: int) -> dict:
        return self._call("GET", "/messages", query={"wait": wait, "limit": limit,
                                                     "settings_version": settings_version},
                          timeout=wait + 15)

    def reports(self, reports: list[dict]) -> dict:
        return self._call("POST", "/reports", {"reports": reports})

    def inbound(self, messages: list[dict]) -> dict:
        return self._call("POST", "/inbound", {"messages": messages})

    def heartbeat(self, status: dict) -> dict:
        return self._call("POST", "/heartbeat", status)

    def settings(self) -> dict:
        return self._call("GET", "/settings")

    def rotate_token(self) -> str:
        return self._call("POST", "/token", {})["token"]
