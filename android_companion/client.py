"""The device protocol client (``/api/device/v1``), on the standard library only (Termux-friendly)."""

from __future__ import annotations

import json
import os
import socket
import http.client
import ssl
from urllib.parse import urlencode, urlsplit, urlunsplit

from . import __version__


class ServerError(Exception):
    """The server answered with an error; ``status`` and ``problem`` say which."""

    def __init__(self, status: int, problem: dict, retry_after: float | None = None):
        super().__init__(f"{status}: {problem.get('detail') or problem.get('title') or problem}")
        self.status = status
        self.problem = problem
        self.retry_after = retry_after  # seconds the server asked us to wait (Retry-After), if it said

    @property
    def auth_failed(self) -> bool:
        return self.status in (401, 403)


class NetworkError(Exception):
    """The server could not be reached; retry later."""


def accept_language(environ=None) -> str | None:
    """The phone user's language for the server's messages (its refusals are translated), from the
    POSIX locale variables as a shell sets them (``LC_ALL``, ``LC_MESSAGES``, ``LANG``: ``de_DE.UTF-8``
    is ``de-DE``); None for the C/POSIX locale or none set."""
    environ = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = (environ.get(name) or "").split(".")[0].split("@")[0]
        if value and value not in ("C", "POSIX"):
            tag = value.replace("_", "-")
            return tag if all(part.isalnum() and len(part) <= 8 for part in tag.split("-")) else None
    return None


def _seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the delay form; an HTTP date is not worth a phone's parsing)."""
    if value and value.strip().isdigit():
        return float(min(int(value.strip()), 3600))
    return None


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
        self.language = accept_language()  # the server answers its refusals in the phone user's language
        self._active = None

    def _call(self, method: str, path: str, body=None, query=None, timeout=None, hold: bool = False):
        parts = urlsplit(self.base)
        target = parts.path + path + ("?" + urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        # One connection per request (no keep-alive): nothing half-open lingers across network drops.
        headers = {"Accept": "application/json", "User-Agent": f"smsgw-companion/{__version__}",
                   "Host": self.host_header, "Connection": "close"}
        if self.language:
            headers["Accept-Language"] = self.language
        if data is not None:
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if parts.scheme == "https":
            conn = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout or self.timeout,
                                               context=ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout or self.timeout)
        if hold:
            self._active = conn
        try:
            conn.request(method, target, body=data, headers=headers)
            resp = conn.getresponse()
            status, raw = resp.status, resp.read()
            retry_after = _seconds(resp.getheader("Retry-After"))
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            raise NetworkError(str(exc) or exc.__class__.__name__) from None
        finally:
            if hold:
                self._active = None
            conn.close()
        if status >= 400:
            try:
                problem = json.loads(raw or b"{}")
            except ValueError:
                problem = {"detail": raw[:200].decode("utf-8", "replace")}
            raise ServerError(status, problem if isinstance(problem, dict) else {"detail": str(problem)}, retry_after)
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            raise NetworkError("the server answered something that is not JSON") from None

    def abort(self) -> None:
        """Hang up a long poll in progress (used on stop): the server then hands nothing over."""
        conn = self._active
        if conn is not None and conn.sock is not None:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def register(self, code: str, device: dict) -> dict:
        return self._call("POST", "/register", {"code": code, "device": device})

    def fetch(self, wait: int, limit: int, settings_version: int) -> dict:
        return self._call("GET", "/messages", query={"wait": wait, "limit": limit,
                                                     "settings_version": settings_version},
                          timeout=wait + 15, hold=True)

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
