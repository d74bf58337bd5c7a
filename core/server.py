"""Running the platform: ``smsgw serve`` (web, optional in-process worker) and ``smsgw worker``."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import signal
import ssl

import tornado.netutil
import uvloop

from .progress import Progress

log = logging.getLogger(__name__)


def prepare_platform(platform, say=print, migrate=True):
    platform.start_database(progress=say)
    if migrate:
        applied, result = platform.migrate(progress=Progress())
        if applied:
            say(f"Applied {len(applied)} public migration(s).")
        if result and result.failed:
            for slug, err in result.failed.items():
                say(f"Migration failed for tenant {slug}: {err}")
            raise SystemExit(1)


def ensure_demo(platform, say=print):
    """The demo tenant and platform admin that ``make run`` promises, with saved credentials."""
    path = platform.secrets.path("demo-credentials.json")
    creds_raw = platform.secrets.get(
        "demo-credentials.json",
        generate=lambda: json.dumps({
            "tenant_email": "owner@demo.example", "tenant_password": _random_password(),
            "admin_email": "admin@platform.example", "admin_password": _random_password(),
        }))
    creds = json.loads(creds_raw)
    if platform.tenant_cache.loader("demo") is None:
        platform.tenants.create("demo", "Demo Company", creds["tenant_email"], creds["tenant_password"])
        say("Created the demo tenant 'demo'.")
    from .admins import ensure_admin as ensure_platform_admin

    ensure_platform_admin(platform, creds["admin_email"], creds["admin_password"])
    return creds, path


def _random_password() -> str:
    import secrets

    return secrets.token_urlsafe(12)


def serve(platform, port: int, with_worker: bool, demo: bool, certfile=None, keyfile=None, say=print,
          bind: str | None = None):
    from .web.app import Application

    bind = platform.settings.bind if bind is None else bind
    prepare_platform(platform, say=say)
    platform.supervise_database()
    creds = None
    if demo:
        creds, creds_path = ensure_demo(platform, say=say)
    app = Application(platform)
    ssl_ctx = None
    if certfile:
        ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_ctx.load_cert_chain(certfile, keyfile)

    async def main():
        runtime = ServerRuntime(platform, app)
        runtime.start(
            # X-Forwarded-For/-Proto are believed only behind a proxy the operator vouches for.
            ssl_options=ssl_ctx, xheaders=platform.settings.trust_proxy_headers and not ssl_ctx,
            max_body_size=platform.settings.max_body_size * 2, idle_timeout=75, body_timeout=60)
        consumer = standin = None
        if with_worker:
            consumer = start_consumer(platform, workers=2)
        else:  # a separate worker is expected; while it is away, this process releases due work
            from .worker_watch import StandIn

            standin = StandIn(platform)
            standin.start()
        settle_heap()
        # SO_REUSEPORT: several `smsgw serve` processes of one platform (same user) share the port,
        # the kernel spreading connections over them: the production shape on one machine.
        runtime.serve(tornado.netutil.bind_sockets(port, address=bind, reuse_port=True))
        scheme = "https" if ssl_ctx else "http"
        s = platform.settings
        say("")
        say(f"SMS gateway is running (pid {os.getpid()}).")
        say(f"  Platform:     {scheme}://{s.base_domain}:{port}/")
        say(f"  Health:       {scheme}://{s.base_domain}:{port}/health/ready")
        if s.metrics_address:
            say(f"  Metrics:      http://{s.metrics_address}/metrics"
                + (" (bearer token SMSGW_METRICS_TOKEN)" if s.metrics_token else ""))
        local = bind in ("127.0.0.1", "::1", "localhost")
        say(f"  Listening on: {bind}:{port}"
            + (" (this machine only; --host or SMSGW_BIND to change)" if local else ""))
        if creds:
            say(f"  Demo tenant:  {scheme}://demo.{s.base_domain}:{port}/")
            say(f"    sign in as  {creds['tenant_email']} / {creds['tenant_password']}")
            say(f"  Admin:        {scheme}://{s.base_domain}:{port}/admin")
            say(f"    sign in as  {creds['admin_email']} / {creds['admin_password']}")
            say(f"  (credentials saved in {creds_path}, mode 0600)")
        say(f"  Mail:         {platform.mailer.describe()}")
        if creds:
            say("  Try a simulated phone: create a pairing code under Devices in the dashboard, then run")
            say(f"    .venv/bin/smsgw-companion --state-dir var/phone pair http://demo.{s.base_domain}:{port} CODE "
                f"--backend simulator --connect-to 127.0.0.1:{port}")
            say("    .venv/bin/smsgw-companion --state-dir var/phone run --backend simulator")
            say("  and reply from it as a recipient (shown under Inbox):")
            say("    .venv/bin/smsgw-companion --state-dir var/phone sim-receive --from +14155550123 'Thanks!'")
        for note in getattr(platform, "startup_notes", []):
            say(f"  {note}")
        say("Press Ctrl-C to stop.")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        say("Shutting down: no new connections; finishing requests in flight ...")
        drained = await runtime.stop_serving()
        if drained:
            say(f"Told {drained} waiting phone(s) to poll again in a second.")
        if standin:
            standin.stop()
        if consumer:
            consumer.due.stop()
            consumer.stop(graceful=True)
            consumer.heartbeat.stop()
        runtime.stop()

    try:
        run_loop(main())
    finally:
        platform.close()
        if platform.embedded:
            say("Embedded PostgreSQL stopped." if platform.embedded.stopped_here else
                "Embedded PostgreSQL left running for the platform's other processes.")
        say("Stopped.")


def run_loop(main):
    """Run the coroutine ``main`` on a new event loop (uvloop's, in production and in the tests);
    returns its result.

    uvloop: the same asyncio loop, written in C on libuv. Measured with bench_messaging (two runs
    each way): single sends 0.61 and 0.69 of the bare baseline on asyncio's own loop, 0.77 and
    0.74 on uvloop; the other phases within their noise."""
    return uvloop.run(main)


class ServerRuntime:
    """A web server's life in its process, the same for ``smsgw serve`` and the tests' server
    (``tests/support/server.py``), on the loop that serves (:func:`run_loop`).

    :meth:`start`: the HTTP server (its start-up checks included, see
    :meth:`core.web.app.Application.http_server`), the platform's runtime (wake-up hub bound to
    this loop, NOTIFY listener), the addons' ``smsgw_startup``. :meth:`serve`: accept on sockets.
    :meth:`stop_serving`: no new connections, waiting phones told to come back, requests in
    flight finished, the idle sweep and ``smsgw_shutdown``. :meth:`stop`: the platform's runtime.

    One platform runtime per process: a second server on a platform whose runtime runs (a test's
    own) uses it and leaves it running; rebinding the hub to the second loop would leave it bound
    to a dead loop once that server stopped.
    """

    def __init__(self, platform, app):
        self.platform, self.app = platform, app
        self.server = None
        self.owns_platform_runtime = False
        self.metrics = None  # core.metrics.MetricsServer with SMSGW_METRICS_ADDRESS

    def start(self, **server_options):
        """Start everything but accepting; returns the ``HTTPServer``
        (``server_options`` go to :meth:`core.web.app.Application.http_server`). The server is
        built first: if its start-up checks fail, nothing has been started."""
        self.server = self.app.http_server(**server_options)
        self.owns_platform_runtime = self.platform.listener is None
        if self.owns_platform_runtime:
            self.platform.start_runtime(asyncio.get_running_loop())
        self.platform.registry.hook.smsgw_startup(app=self.app)
        if self.platform.settings.metrics_address:
            from .metrics import MetricsServer

            self.metrics = MetricsServer(self.platform)
            self.metrics_port = self.metrics.start()
        return self.server

    def serve(self, sockets) -> None:
        self.server.add_sockets(sockets)

    async def stop_serving(self, timeout: float = 10.0) -> int:
        """Returns how many waiting phones were told to poll again."""
        self.server.stop()
        # Waiting phones: 503 + Retry-After, back in a second (the hub is the platform runtime's).
        drained = self.platform.wakeups.drain() if self.owns_platform_runtime else 0
        try:
            await asyncio.wait_for(self.server.close_all_connections(), timeout=timeout)
        except asyncio.TimeoutError:
            log.warning("some connections did not finish within %g s", timeout)
        self.server.delegate.idle.stop()
        if self.metrics is not None:
            self.metrics.stop()
            self.metrics = None
        self.platform.registry.hook.smsgw_shutdown(app=self.app)
        return drained

    def stop(self) -> None:
        if self.owns_platform_runtime:
            self.platform.stop_runtime()
            self.owns_platform_runtime = False


def settle_heap() -> None:
    """Once started: what is loaded now (modules, metadata, caches) lives as long as the process,
    so move it out of the garbage collector's sight. Full collections then scan only what requests
    made: measured in bench_messaging's bulk phase, 0.48 of the server's 7.6 CPU-s went to 15
    full collections before, 0.03 s after."""
    gc.collect()
    gc.freeze()


def start_consumer(platform, workers: int = 2):
    from .due import start_scheduler
    from .tasks import EmbeddedConsumer
    from .worker_watch import WorkerHeartbeat

    platform.setup_tasks()
    consumer = EmbeddedConsumer(platform.huey, workers=workers, worker_type="thread",
                                periodic=True, check_worker_health=False, max_delay=1.0,
                                shutdown_timeout=10)
    consumer.start()
    consumer.heartbeat = WorkerHeartbeat(platform)
    consumer.heartbeat.start()
    consumer.due = start_scheduler(platform)
    return consumer


def run_worker(platform, workers: int, say=print):
    from huey.consumer import Consumer

    from .due import start_scheduler
    from .worker_watch import WorkerHeartbeat

    prepare_platform(platform, say=say, migrate=False)
    platform.supervise_database()
    platform.setup_tasks()
    from . import metrics

    # The worker serves no /metrics: with a shared PROMETHEUS_MULTIPROC_DIR its counters reach the
    # web processes' answers through their files; without one they would reach nobody.
    metrics.ON = bool(platform.settings.metrics_address) and metrics.MULTIPROCESS
    consumer = Consumer(platform.huey, workers=workers, worker_type="thread", periodic=True,
                        max_delay=1.0, shutdown_timeout=10)
    heartbeat = WorkerHeartbeat(platform)  # web processes stand in for a worker that stops beating
    heartbeat.start()
    scheduler = start_scheduler(platform)  # per-workspace jobs, run when due
    settle_heap()
    say(f"Worker running with {workers} thread(s). Press Ctrl-C to stop.")
    try:
        consumer.run()
    finally:
        scheduler.stop()
        heartbeat.stop()
        platform.close()
