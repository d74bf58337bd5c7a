"""A client that plays the *SMS Gateway for Android* app against our private-server API.

Written from the protocol's description (issue 19), not from our server's code: JSON as the
app's Gson writes it (null fields left out, compact, ``2026-08-01T10:00:00.123+02:00`` dates),
``User-Agent: me.capcom.smsgateway/<version>``, and the event stream read from a raw socket
(HTTP/1.1, chunked), as the app's OkHttp reads it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import json
import socket
import ssl
import time


def gson(data) -> bytes:
    """JSON as Gson writes it: compact, null fields of objects left out."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return json.dumps(strip(data), separators=(",", ":"), ensure_ascii=False).encode()


def gson_date(t: dt.datetime | None = None, offset_hours: int = 2) -> str:
    """``2026-08-01T10:00:00.123+02:00``: the app's date format (a local offset, milliseconds)."""
    zone = dt.timezone(dt.timedelta(hours=offset_hours))
    t = (t or dt.datetime.now(dt.timezone.utc)).astimezone(zone)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}" + t.strftime("%z")[:3] + ":" + \
        t.strftime("%z")[3:]


class AppPhone:
    """One phone running the app: its base URL (host, port, TLS), version and tokens."""

    def __init__(self, host: str, port: int, *, connect_host: str = "127.0.0.1", version: str = "1.68.0",
                 ssl_context: ssl.SSLContext | None = None):
        self.host, self.port, self.connect_host = host, port, connect_host
        self.version, self.ssl_context = version, ssl_context
        self.token: str | None = None
        self.device_id: str | None = None

    @property
    def user_agent(self) -> str:
        return f"me.capcom.smsgateway/{self.version}"

    def _connection(self, timeout: float = 30):
        if self.ssl_context is not None:
            return http.client.HTTPSConnection(self.connect_host, self.port, timeout=timeout,
                                               context=self.ssl_context)
        return http.client.HTTPConnection(self.connect_host, self.port, timeout=timeout)

    def call(self, method: str, path: str, body=None, *, token: str | None = None, auth: str | None = None,
             headers: dict | None = None, raw: bytes | None = None):
        """``(status, headers, parsed JSON or None)`` of one request to ``/api/mobile/v1<path>``."""
        conn = self._connection()
        sent = {"Host": f"{self.host}:{self.port}", "User-Agent": self.user_agent, "Accept": "application/json"}
        if auth is not None:
            sent["Authorization"] = auth
        elif (token or self.token) is not None:
            sent["Authorization"] = f"Bearer {token or self.token}"
        data = raw if raw is not None else (gson(body) if body is not None else None)
        if data is not None:
            sent["Content-Type"] = "application/json; charset=UTF-8"
        sent.update(headers or {})
        try:
            conn.request(method, "/api/mobile/v1" + path, body=data, headers=sent)
            resp = conn.getresponse()
            payload = resp.read()
        finally:
            conn.close()
        parsed = json.loads(payload) if payload and "json" in resp.getheader("Content-Type", "") else None
        return resp.status, dict(resp.getheaders()), parsed

    # -- the app's calls ---------------------------------------------------------------------

    def register(self, private_token: str, name: str = "Google Pixel 8", sims=None):
        status, headers, body = self.call("POST", "/device", {
            "name": name, "pushToken": None,
            "simCards": sims if sims is not None else [{"slotIndex": 0, "simNumber": 1, "phoneNumber": None,
                                                        "carrierName": "Carrier"}]}, token=private_token)
        if status == 201:
            self.token, self.device_id = body["token"], body["id"]
        return status, headers, body

    def patch_device(self, device_id: str | None = None):
        return self.call("PATCH", "/device", {"id": device_id or self.device_id, "pushToken": None})

    def messages(self, order: str = "lifo"):
        return self.call("GET", f"/message?order={order}")

    def report(self, states: list[dict]):
        return self.call("PATCH", "/message", states)

    def settings(self):
        return self.call("GET", "/settings")

    def webhooks(self):
        return self.call("GET", "/webhooks")

    def webhook(self, url_path: str, event: str, payload: dict, signing_key: str | None,
                timestamp: int | None = None, bad_signature: bool = False):
        """POST a webhook as the app does (``X-Signature`` over body + ``X-Timestamp``)."""
        body = gson({"id": f"wh-{time.time_ns()}", "webhookId": f"smsgw-{event.replace(':', '-')}",
                     "event": event, "deviceId": self.device_id, "payload": payload})
        ts = str(int(time.time()) if timestamp is None else timestamp)
        headers = {"Host": f"{self.host}:{self.port}", "User-Agent": self.user_agent,
                   "Content-Type": "application/json; charset=UTF-8", "X-Timestamp": ts}
        if signing_key is not None:
            sig = hmac.new(signing_key.encode(), body + ts.encode(), hashlib.sha256).hexdigest()
            headers["X-Signature"] = ("0" * 64) if bad_signature else sig
        conn = self._connection()
        try:
            conn.request("POST", url_path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status
        finally:
            conn.close()

    def open_events(self, timeout: float = 20) -> "EventStream":
        return EventStream(self, timeout)


class EventStream:
    """``GET /events`` read from a raw socket: status line, headers, then chunked SSE frames."""

    def __init__(self, phone: AppPhone, timeout: float):
        sock = socket.create_connection((phone.connect_host, phone.port), timeout=timeout)
        if phone.ssl_context is not None:
            sock = phone.ssl_context.wrap_socket(sock, server_hostname=phone.host)
        self.sock, self.buffer, self.body = sock, b"", b""
        request = (f"GET /api/mobile/v1/events HTTP/1.1\r\nHost: {phone.host}:{phone.port}\r\n"
                   f"Authorization: Bearer {phone.token}\r\nAccept: text/event-stream\r\n"
                   f"User-Agent: {phone.user_agent}\r\nCache-Control: no-cache\r\n\r\n")
        sock.sendall(request.encode())
        head = self._until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"

    def _recv(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the event stream")
        self.buffer += data

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            self._recv()
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def _more_body(self) -> None:
        if not self.chunked:
            if not self.buffer:
                self._recv()
            self.body += self.buffer
            self.buffer = b""
            return
        size_line = self._until(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            raise ConnectionError("the server ended the event stream")
        while len(self.buffer) < size + 2:
            self._recv()
        self.body += self.buffer[:size]
        self.buffer = self.buffer[size + 2:]

    def next_frame(self, timeout: float | None = None) -> tuple[str | None, str | None, str]:
        """The next frame: ``(event, data, raw)``; a comment (``:keepalive``) gives ``(None, None, raw)``."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        while b"\n\n" not in self.body:
            self._more_body()
        raw, _, self.body = self.body.partition(b"\n\n")
        text = raw.decode()
        event = data = None
        for line in text.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data = line[5:].strip()
        return event, data, text

    def next_event(self, timeout: float = 10) -> tuple[str, dict]:
        """The next event that is not a comment."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no event arrived")
            event, data, _raw = self.next_frame(left)
            if event is not None:
                return event, json.loads(data or "{}")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
