"""PostgreSQL LISTEN/NOTIFY fan-in: one background connection per process.

Callbacks run on the listener thread; they must be quick and thread-safe
(hand work to the IOLoop with ``call_soon_threadsafe`` where needed).
"""

from __future__ import annotations

import logging
import select
import threading

import psycopg2
import psycopg2.extensions

log = logging.getLogger(__name__)


class Listener:
    def __init__(self, url: str):
        self.url = url
        self.callbacks: dict[str, list] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = threading.Event()

    def subscribe(self, channel: str, callback) -> None:
        """Call ``callback(payload)`` for each notification on ``channel``. A channel subscribed
        after :meth:`start` (an addon's ``smsgw_startup``) is listened to within a second; the
        callback is also called with ``None`` then, as after a reconnect."""
        self.callbacks.setdefault(channel, []).append(callback)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pg-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                conn = psycopg2.connect(self.url)
                conn.set_isolation_level(psycopg2.extensions.ISOLATION_LEVEL_AUTOCOMMIT)
                listening = set(self.callbacks)
                with conn.cursor() as cur:
                    for channel in listening:
                        cur.execute(f'LISTEN "{channel}"')
                self.connected.set()
                backoff = 0.5
                # A reconnect may have missed notifications: tell everyone to refresh.
                self._dispatch_all(None)
                while not self._stop.is_set():
                    late = [channel for channel in list(self.callbacks) if channel not in listening]
                    if late:
                        with conn.cursor() as cur:
                            for channel in late:
                                cur.execute(f'LISTEN "{channel}"')
                        listening.update(late)
                        for channel in late:
                            self._dispatch(channel, None)
                    if select.select([conn], [], [], 1.0) == ([], [], []):
                        continue
                    conn.poll()
                    while conn.notifies:
                        n = conn.notifies.pop(0)
                        self._dispatch(n.channel, n.payload)
                conn.close()
            except psycopg2.Error as exc:
                self.connected.clear()
                log.warning("notification listener lost its connection (%s); retrying", exc.__class__.__name__)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)  # wake-ups are missed meanwhile: come back soon

    def _dispatch(self, channel, payload):
        for cb in self.callbacks.get(channel, []):
            try:
                cb(payload)
            except Exception:
                log.exception("notification callback for %s failed", channel)

    def _dispatch_all(self, payload):
        for channel in self.callbacks:
            self._dispatch(channel, payload)


class Listeners:
    """One :class:`Listener` per database server (``SMSGW_DATABASES``), behind the same interface:
    a workspace's transactions send their NOTIFY (wake-ups, credential changes) on the server it
    lives on, so every process listens to every server. ``connected``: the default server's."""

    def __init__(self, urls):
        self.all = [Listener(url) for url in urls]
        self.url = self.all[0].url
        self.connected = self.all[0].connected

    def subscribe(self, channel: str, callback) -> None:
        for listener in self.all:
            listener.subscribe(channel, callback)

    def start(self) -> None:
        for listener in self.all:
            listener.start()

    def stop(self) -> None:
        for listener in self.all:
            listener.stop()


def listener_for(urls) -> Listener | Listeners:
    urls = list(urls)
    return Listener(urls[0]) if len(urls) == 1 else Listeners(urls)
