"""Prometheus metrics: ``GET /metrics`` on a listener of its own (``SMSGW_METRICS_ADDRESS``).

Off unless that setting names an address: then the web process counts its requests (by route
pattern, method and status, with a latency histogram), wake-ups and their latency, group-commit
group sizes, and every ``SAMPLE_SECONDS`` samples what it holds (waiters by kind: parked polls,
event streams; its database pool). What lives in the database is read when Prometheus scrapes
(task queue depth, due work and its age), and addons add theirs: counters they create with
``prometheus_client`` themselves, and scrape-time collectors through ``smsgw_metrics``.

Several processes (web processes behind one port, the worker): set ``PROMETHEUS_MULTIPROC_DIR`` to
an empty directory shared by all of them (before they start; cleared when the platform restarts).
Each process writes its values to files there (prometheus_client's multiprocess mode) and any web
process's ``/metrics`` answers for all of them. Without it, each process shows only its own.

Labels never name a workspace: their number would grow with the customers.

Per request this costs a dictionary lookup, a counter increment and a histogram observation
(a few microseconds; bench/README.md), and nothing at all while the setting is unset.
"""

from __future__ import annotations

import hmac
import logging
import os

from prometheus_client import (CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Gauge, Histogram,
                               generate_latest)
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

#: True once a web process serves metrics: the request path checks this before counting.
ON = False
MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
SAMPLE_SECONDS = 5.0
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))

REQUESTS = Counter("smsgw_http_requests_total", "HTTP requests answered, by route pattern, method and status.",
                   ["route", "method", "status"])
LATENCY = Histogram("smsgw_http_request_duration_seconds",
                    "Time from a request's arrival to its answer (long polls: their whole wait), by route pattern.",
                    ["route"], buckets=(.002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 15, 30, 60, 120))
WAKES = Counter("smsgw_wakeups_total", "Waiters (parked polls, event streams) woken.")
WAKE_LATENCY = Histogram("smsgw_wakeup_latency_seconds",
                         "From a wake-up reaching this process (its own commit, NOTIFY or Redis) to its waiters "
                         "being called.", buckets=(.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1))
GROUP_SIZE = Histogram("smsgw_group_commit_size", "Items per group-commit transaction, by the work grouped.",
                       ["work"], buckets=(1, 2, 4, 8, 16, 32, 64, 100, 250, 1000))
_live = {"multiprocess_mode": "livesum"}
WAITERS = Gauge("smsgw_waiters", "Clients waiting for a wake-up now (parked long polls, event streams), by kind.",
                ["kind"], **_live)
POOL_IN_USE = Gauge("smsgw_db_pool_connections_in_use", "Database connections checked out of the pool now.", **_live)
POOL_IDLE = Gauge("smsgw_db_pool_connections_idle", "Open database connections waiting in the pool.", **_live)
POOL_MAX = Gauge("smsgw_db_pool_connections_max", "The pool's connection limit.", **_live)

_children: dict = {}


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """One answered request (the access log calls this when :data:`ON`)."""
    key = (route, method, status)
    pair = _children.get(key)
    if pair is None:
        if method not in METHODS:  # a client picks the method: it must not pick new series
            return observe_request(route, "other", status, seconds)
        pair = _children[key] = (REQUESTS.labels(route, method, str(status)), LATENCY.labels(route))
    pair[0].inc()
    pair[1].observe(seconds)


def child(metric, *labels):
    """``metric.labels(*labels)``, cached: ``labels()`` takes a lock and checks its arguments each
    time (about 2 µs), a dictionary lookup does not."""
    key = (metric, labels)
    found = _labelled.get(key)
    if found is None:
        found = _labelled[key] = metric.labels(*labels)
    return found


_labelled: dict = {}


def route_of(handler_class) -> str:
    """The route pattern a handler class serves (set by :func:`name_routes`), else its class name."""
    return _routes.get(handler_class) or handler_class.__name__


_routes: dict = {}


def name_routes(route_table) -> None:
    """Learn each handler class's pattern from the application's ``(pattern, handler, kwargs, addon)``."""
    for pattern, handler, _kwargs, _addon in route_table:
        _routes.setdefault(handler, pattern)


# -- what the process holds, sampled --------------------------------------------------------------

def sample(platform) -> None:
    """Set the gauges of what this process holds now (a timer calls it; cheap: one pass over the
    waiters, which are at most a few tens of thousands)."""
    kinds: dict[str, int] = {}
    for waiters in list(platform.wakeups._waiters.values()):
        for item in (waiters if isinstance(waiters, set) else (waiters,)):
            kind = getattr(item, "metrics_kind", None) or type(item).__name__
            kinds[kind] = kinds.get(kind, 0) + 1
    for kind in _seen_kinds - kinds.keys():
        WAITERS.labels(kind).set(0)
    for kind, n in kinds.items():
        WAITERS.labels(kind).set(n)
    _seen_kinds.update(kinds)
    from .db import app_db

    # peewee's pool keeps these as private attributes (no public count; see the canary test).
    POOL_IN_USE.set(len(getattr(app_db, "_in_use", ())))
    POOL_IDLE.set(len(getattr(app_db, "_connections", ())))
    POOL_MAX.set(getattr(app_db, "_max_connections", 0) or 0)


_seen_kinds: set = set()


# -- read from the database when scraped -----------------------------------------------------------

class DatabaseCollector:
    """Task queue depth (Huey), and due work: workspaces whose job is overdue and the oldest one's
    age. Two small catalogue queries per scrape, whatever the number of workspaces."""

    def __init__(self, platform):
        self.platform = platform

    def collect(self):
        from .db import app_db, connection

        depth = GaugeMetricFamily("smsgw_task_queue_depth", "Tasks waiting in the queue (Huey).")
        scheduled = GaugeMetricFamily("smsgw_task_queue_scheduled", "Tasks scheduled for later (Huey).")
        due = GaugeMetricFamily("smsgw_due_work_overdue", "Workspaces whose due job's time has passed, by job.",
                                labels=["job"])
        age = GaugeMetricFamily("smsgw_due_work_overdue_seconds",
                                "How long the oldest overdue workspace of each job has waited (task queue age).",
                                labels=["job"])
        armed = GaugeMetricFamily("smsgw_due_work_armed", "Workspaces with work armed for later, by job.",
                                  labels=["job"])
        try:
            huey = self.platform.huey
            if huey is not None:
                depth.add_metric([], huey.pending_count())
                scheduled.add_metric([], huey.scheduled_count())
            with connection():
                rows = app_db.execute_sql(
                    "SELECT job, count(*) FILTER (WHERE due_at <= now()), count(*), "
                    "coalesce(extract(epoch FROM now() - min(due_at) FILTER (WHERE due_at <= now())), 0) "
                    "FROM public.due_work GROUP BY job").fetchall()
        except Exception as exc:  # a scrape during an outage shows what it can
            log.warning("metrics: the database could not be read (%s)", exc.__class__.__name__)
            return
        for job, overdue, total, oldest in rows:
            due.add_metric([job], overdue)
            armed.add_metric([job], total - overdue)
            age.add_metric([job], float(oldest))
        yield from (depth, scheduled, due, age, armed)


class _Default:
    """This process's own metrics (prometheus_client's default registry), for the exposition registry."""

    def collect(self):
        return REGISTRY.collect()


class Exposition:
    """What ``/metrics`` answers: this process's metrics (or, in multiprocess mode, every process's
    from their files), the database collector and the addons' collectors (``smsgw_metrics``)."""

    def __init__(self, platform):
        self.registry = CollectorRegistry(auto_describe=False)
        if MULTIPROCESS:
            from prometheus_client import multiprocess

            multiprocess.MultiProcessCollector(self.registry)
        else:
            self.registry.register(_Default())
        self.registry.register(DatabaseCollector(platform))

        def register(collector) -> None:
            if not callable(getattr(collector, "collect", None)):
                raise TypeError("smsgw_metrics: register() takes a collector (an object with collect())")
            self.registry.register(collector)

        platform.registry.hook.smsgw_metrics(register=register)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def parse_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6) or a bare port (loopback)."""
    from .config import ConfigError

    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", value
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"SMSGW_METRICS_ADDRESS must be HOST:PORT such as 127.0.0.1:9464, got {value!r}")
    return host, int(port)


class MetricsServer:
    """``GET /metrics`` on its own socket, in the web process's loop; with ``SMSGW_METRICS_TOKEN``
    set, only for ``Authorization: Bearer <token>``. Also samples the process every few seconds."""

    def __init__(self, platform):
        self.platform = platform
        self.exposition = Exposition(platform)
        self.server = None
        self.sampler = None

    def start(self, reuse_port: bool = True) -> int:
        """Listen (several processes of the platform share the port); returns the port."""
        import tornado.httpserver
        import tornado.ioloop
        import tornado.netutil
        import tornado.web

        global ON
        exposition, token = self.exposition, self.platform.settings.metrics_token

        class Handler(tornado.web.RequestHandler):
            async def get(self):
                if token and not hmac.compare_digest(self.request.headers.get("Authorization", ""),
                                                     f"Bearer {token}"):
                    self.set_status(401)
                    self.set_header("WWW-Authenticate", "Bearer")
                    return self.finish("metrics need the token (SMSGW_METRICS_TOKEN)\n")
                from .db import run_sync

                body = await run_sync(exposition.render)
                self.set_header("Content-Type", CONTENT_TYPE_LATEST)
                self.finish(body)

            def log_exception(self, *args):  # a scrape's failure is logged once, not with the request
                log.warning("metrics scrape failed", exc_info=args)

        host, port = parse_address(self.platform.settings.metrics_address)
        app = tornado.web.Application([(r"/metrics", Handler)], log_function=lambda handler: None)
        self.server = tornado.httpserver.HTTPServer(app)
        sockets = tornado.netutil.bind_sockets(port, address=host, reuse_port=reuse_port)
        self.server.add_sockets(sockets)
        ON = True
        sample(self.platform)
        self.sampler = tornado.ioloop.PeriodicCallback(lambda: sample(self.platform), SAMPLE_SECONDS * 1000)
        self.sampler.start()
        return sockets[0].getsockname()[1]

    def stop(self) -> None:
        global ON
        ON = False
        if self.sampler is not None:
            self.sampler.stop()
        if self.server is not None:
            self.server.stop()
        if MULTIPROCESS:  # this process's live gauges leave the sums
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())
