"""A real platform web server on loopback, in a background thread, for tests."""

from __future__ import annotations

import asyncio
import threading

import requests
import tornado.netutil


class LiveServer:
    """The platform's web server as ``smsgw serve`` runs it (:class:`core.server.ServerRuntime`
    on uvloop, :func:`core.server.run_loop`), in a thread of the test process, on loopback."""

    def __init__(self, platform):
        from core.web.app import Application

        self.platform = platform
        self.app = Application(platform)
        self._ready = threading.Event()
        self._stop = None
        self._failed: BaseException | None = None
        self.loop = None
        self.port = None
        self.runtime = None

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise RuntimeError("test server did not start")
        if self._failed is not None:
            raise RuntimeError("test server did not start") from self._failed
        return self

    def _run(self):
        from core.server import run_loop

        try:
            run_loop(self._main())
        except BaseException as exc:  # start-up failed: start() raises it
            self._failed = exc
            self._ready.set()

    async def _main(self):
        from core.server import ServerRuntime

        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.runtime = ServerRuntime(self.platform, self.app)
        server = self.runtime.start(max_body_size=self.platform.settings.max_body_size * 2, xheaders=True)
        self.delegate = server.delegate
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self.runtime.serve(sockets)
        self._ready.set()
        await self._stop.wait()
        await self.runtime.stop_serving()
        self.runtime.stop()

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
