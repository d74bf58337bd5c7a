"""A real platform web server on loopback, in a background thread, for tests."""

from __future__ import annotations

import asyncio
import threading

import requests
import tornado.httpserver
import tornado.netutil


class LiveServer:
    def __init__(self, platform):
        from core.web.app import Application

        self.platform = platform
        self.app = Application(platform)
        self._ready = threading.Event()
        self._stop = None
        self.loop = None
        self.port = None

    def start(self):
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("test server did not start")
        return self

    async def _main(self):
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        # One runtime per platform (wake-up hub bound to one loop, one NOTIFY listener), as in a real
        # process: a second server on the same platform (a test's own) uses the running one and leaves
        # it running. Starting it again rebound the hub to the second loop; once that loop ended, no
        # wake-up from another process reached the session's server (seen as late scheduled sends).
        self.owns_runtime = self.platform.listener is None
        if self.owns_runtime:
            self.platform.start_runtime(self.loop)
        self.platform.registry.hook.smsgw_startup(app=self.app)
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        server = self.app.http_server(max_body_size=self.platform.settings.max_body_size * 2, xheaders=True)
        self.delegate = server.delegate
        server.add_sockets(sockets)
        self._ready.set()
        await self._stop.wait()
        server.stop()
        await server.close_all_connections()
        server.delegate.idle.stop()
        self.platform.registry.hook.smsgw_shutdown(app=self.app)
        if self.owns_runtime:
            self.platform.stop_runtime()

    def stop(self):
        if self.loop and self._stop:
            self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, slug: str | None = None) -> "HostClient":
        return HostClient(self, slug)


class HostClient(requests.Session):
    """requests with the Host header of a tenant (``slug``) or of the base domain."""

    def __init__(self, server: LiveServer, slug: str | None):
        super().__init__()
        self.server = server
        base = server.platform.settings.base_domain
        self.host = f"{slug}.{base}" if slug else base
        self.headers["Host"] = f"{self.host}:{server.port}"

    def request(self, method, url, *args, **kwargs):
        if url.startswith("/"):
            url = self.server.url + url
        kwargs.setdefault("allow_redirects", False)
        kwargs.setdefault("timeout", 30)
        return super().request(method, url, *args, **kwargs)
