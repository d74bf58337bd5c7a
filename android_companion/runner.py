"""The companion's main loop: long-poll for work, send through the backend, report, upload inbound.

Three threads share one SQLite outbox:

* the *poller* holds a long poll open and queues the messages it receives;
* the *sender* sends them one by one, honouring the device's limits and random delay;
* the *flusher* uploads reports and inbound SMS from the outbox, sends heartbeats,
  and reads new inbound SMS from the backend.

Network failures back off exponentially with jitter; nothing is lost, because
every report and inbound SMS stays in the outbox until the server acknowledges it.
"""

from __future__ import annotations

import datetime
import itertools
import logging
import queue
import random
import threading
import time
from pathlib import Path

from . import __version__
from .client import DeviceClient, NetworkError, ServerError
from .outbox import Outbox
from .state import State

log = logging.getLogger("smsgw.companion")


class Backoff:
    """How long to wait before the next attempt: "decorrelated jitter" (each wait is random between
    ``base`` and three times the last one), so phones that lost the server together come back
    spread out, not in waves.

    The first ``quick`` attempts after the server was last reached are capped at ``quick_cap``
    (5 s): a restart takes seconds, and a phone should be back soon after it, not idle for
    half a minute with work waiting. Only a server that stays away lets the waits grow to ``cap``.
    A ``Retry-After`` the server sent is a floor, with up to as much again of jitter on top.
    """

    def __init__(self, base: float = 0.5, cap: float = 60.0, quick_cap: float = 5.0, quick: int = 6):
        self.base, self.cap, self.quick_cap, self.quick = base, cap, quick_cap, quick
        self.failures, self.last = 0, base

    def next(self, retry_after: float | None = None) -> float:
        self.failures += 1
        cap = min(self.cap, self.quick_cap) if self.failures <= self.quick else self.cap
        self.last = random.uniform(self.base, max(self.base, min(cap, 3 * self.last)))
        if retry_after:  # the server said when: come then, spread over as much again
            return min(max(retry_after, 0.0), 300.0) * random.uniform(1.0, 2.0)
        return self.last

    def reset(self) -> None:
        self.failures, self.last = 0, self.base


class Companion:
    def __init__(self, state_dir: Path, backend, *, wait: int = 30, batch: int = 10,
                 heartbeat_interval: float = 60.0, inbound_interval: float = 2.0, flush_interval: float = 1.0,
                 backoff_cap: float = 30.0):
        self.state_dir = Path(state_dir)
        self.state = State.load(self.state_dir)
        if not self.state.paired:
            raise RuntimeError("This phone is not paired yet: run `smsgw-companion pair URL CODE` first.")
        self.backend = backend
        self.outbox = Outbox(self.state_dir / "outbox.sqlite3")
        self.client = DeviceClient(self.state.server_url, self.state.token, connect_to=self.state.connect_to)
        self.wait, self.batch = wait, batch
        self.heartbeat_interval = heartbeat_interval
        self.inbound_interval = inbound_interval
        self.flush_interval = flush_interval
        self.backoff_cap = backoff_cap
        self.stop_event = threading.Event()
        self.flush_event = threading.Event()
        self.work: queue.Queue = queue.Queue()
        self.threads: list[threading.Thread] = []
        self._settings_lock = threading.Lock()
        self.fatal: str | None = None
        self._sim_cycle = None
        self.stats = {"fetched": 0, "sent": 0, "failed": 0, "reports_flushed": 0, "inbound_flushed": 0,
                      "network_errors": 0}

    # -- lifecycle ----------------------------------------------------------------
    def start(self) -> "Companion":
        for name, target in (("poller", self._poll_loop), ("sender", self._send_loop),
                             ("flusher", self._flush_loop)):
            t = threading.Thread(target=target, name=f"companion-{name}", daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        self.flush_event.set()
        self.work.put(None)
        self.client.abort()  # hang up the long poll: the server hands nothing more over
        for t in self.threads:
            if t.name != "companion-poller":  # the poller may sit in a long poll; it is a daemon
                t.join(timeout)
        try:
            self.flush_once()  # a last attempt; whatever fails stays in the outbox for next time
        except Exception:
            pass
        self.backend.close()
        self.outbox.close()

    def run_forever(self) -> None:
        self.start()
        try:
            while not self.stop_event.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def _fail(self, message: str) -> None:
        log.error(message)
        self.fatal = message
        self.stop_event.set()
        self.work.put(None)

    # -- polling ----------------------------------------------------------------
    def _poll_loop(self) -> None:
        backoff = Backoff(cap=self.backoff_cap)
        while not self.stop_event.is_set():
            try:
                self._poll_once(backoff)
            except Exception:  # never let the thread die silently
                log.exception("the poller hit an unexpected error; retrying")
                self.stop_event.wait(backoff.next())

    def _poll_once(self, backoff: "Backoff") -> None:
        try:
            reply = self.client.fetch(self.wait, self.batch, self.state.settings_version)
        except NetworkError as exc:
            if self.stop_event.is_set():
                return
            self.stats["network_errors"] += 1
            delay = backoff.next()
            log.warning("server unreachable (%s); retrying in %.1f s", exc, delay)
            self.stop_event.wait(delay)
            return
        except ServerError as exc:
            if exc.auth_failed:
                self._fail(f"The server refused this phone ({exc}). Pair it again.")
                return
            delay = backoff.next(exc.retry_after)
            log.warning("server error %s; retrying in %.1f s", exc, delay)
            self.stop_event.wait(delay)
            return
        backoff.reset()
        if reply.get("settings_version") != self.state.settings_version:
            self._refresh_settings()
        for message in reply.get("messages", []):
            self.stats["fetched"] += 1
            self.work.put(message)

    def _refresh_settings(self) -> None:
        with self._settings_lock:
            try:
                reply = self.client.settings()
            except (NetworkError, ServerError) as exc:
                log.warning("could not fetch settings: %s", exc)
                return
            self.state.settings = reply.get("settings", {})
            self.state.settings_version = reply.get("settings_version", 0)
            self.state.save(self.state_dir)
        log.info("settings updated to version %s", self.state.settings_version)

    # -- sending ------------------------------------------------------------------
    def _send_loop(self) -> None:
        while not self.stop_event.is_set():
            message = self.work.get()
            if message is None:
                continue
            try:
                self._send_one(message)
            except Exception:
                log.exception("sending message %s failed unexpectedly", message.get("id"))

    def _send_one(self, message: dict) -> None:
        mid = int(message["id"])
        if self._expired(message):
            # Too late: sending now would deliver what the business no longer wants sent.
            self.outbox.mark_handled(mid, "failed", "EXPIRED")
            self.outbox.add_report(mid, "failed", "EXPIRED", message.get("to"))
            self.flush_event.set()
            return
        done = self.outbox.handled(mid)
        if done is not None:
            # The server handed it out again (our report was lost): report, never send twice.
            outcome, code = done
            self.outbox.add_report(mid, outcome, code, message.get("to"))
            self.flush_event.set()
            return
        self._respect_limits()
        if self._expired(message):
            self.outbox.mark_handled(mid, "failed", "EXPIRED")
            self.outbox.add_report(mid, "failed", "EXPIRED", message.get("to"))
            self.flush_event.set()
            return
        slot = self._choose_sim(message.get("sim_slot"))

        def on_event(state: str, error_code=None):
            if state in ("sent", "failed"):
                self.stats["sent" if state == "sent" else "failed"] += 1
            # Remember the furthest outcome, so a message handed out again is reported in full.
            self.outbox.mark_handled(mid, state, error_code)
            self.outbox.add_report(mid, state, error_code, message.get("to"))
            self.flush_event.set()

        # Mark before the radio: if we crash mid-send we report failure rather than send twice.
        self.outbox.mark_handled(mid, "failed", "GENERIC_FAILURE")
        self.outbox.log_send()
        self.backend.send(message["to"], message["text"], slot, on_event)

    @staticmethod
    def _expired(message: dict) -> bool:
        valid_until = message.get("valid_until")
        if not valid_until:
            return False
        try:
            return datetime.datetime.fromisoformat(valid_until.replace("Z", "+00:00")).timestamp() <= time.time()
        except ValueError:
            return False

    def _respect_limits(self) -> None:
        limits = (self.state.settings or {}).get("limits", {})
        delay = (self.state.settings or {}).get("delay", {})
        windows = (("per_minute", 60), ("per_hour", 3600), ("per_day", 86400))
        while not self.stop_event.is_set():
            blocked = [w for key, w in windows if limits.get(key) and self.outbox.sends_since(w) >= limits[key]]
            if not blocked:
                break
            self.stop_event.wait(1.0)
        lo, hi = delay.get("min_ms", 0), delay.get("max_ms", 0)
        if hi:
            self.stop_event.wait(random.uniform(lo, hi) / 1000)

    def _choose_sim(self, requested):
        if requested:
            return requested
        sim = (self.state.settings or {}).get("sim", {})
        mode = sim.get("mode", "default")
        if mode == "fixed":
            return sim.get("slot", 1)
        if mode == "round_robin":
            slots = [s["slot"] for s in self.backend.device_info().get("sims", [])] or [1]
            if self._sim_cycle is None:
                self._sim_cycle = itertools.cycle(slots)
            return next(self._sim_cycle)
        return None

    # -- flushing -------------------------------------------------------------------
    def flush_once(self) -> None:
        while True:
            pending = self.outbox.pending_reports()
            if not pending:
                break
            try:
                self.client.reports([r for _, r in pending])
            except ServerError as exc:
                if not self._set_aside(exc, "reports", [i for i, _ in pending], self.outbox.ack_reports):
                    raise
                continue
            self.outbox.ack_reports([i for i, _ in pending])
            self.stats["reports_flushed"] += len(pending)
        while True:
            inbound = self.outbox.pending_inbound()
            if not inbound:
                break
            try:
                self.client.inbound(inbound)
            except ServerError as exc:
                if not self._set_aside(exc, "messages", [m["id"] for m in inbound], self.outbox.ack_inbound):
                    raise
                continue
            self.outbox.ack_inbound([m["id"] for m in inbound])
            self.stats["inbound_flushed"] += len(inbound)

    def _set_aside(self, exc: ServerError, field: str, keys: list, drop) -> bool:
        """The server refused some items for good (4xx): drop those it names, keep the rest.

        Returns False when the refusal is not about the items (auth, server errors).
        """
        if exc.auth_failed or exc.status >= 500 or exc.status == 429:
            return False
        bad = set()
        for err in exc.problem.get("errors") or []:
            name = str(err.get("field", ""))
            if name.startswith(field + "[") and "]" in name:
                index = name[len(field) + 1:name.index("]")]
                if index.isascii() and index.isdigit() and int(index) < len(keys):
                    bad.add(keys[int(index)])
        if not bad:
            bad = set(keys)  # nothing named: the whole batch is unacceptable
        log.error("the server refused %d %s for good (%s); they are set aside", len(bad), field,
                  exc.problem.get("detail"))
        self.stats.setdefault("refused", 0)
        self.stats["refused"] += len(bad)
        drop(sorted(bad, key=str))
        return True

    def _flush_loop(self) -> None:
        while not self.stop_event.is_set():
            try:
                self._flush_loop_inner()
            except Exception:  # never let the thread die silently
                log.exception("the uploader hit an unexpected error; retrying")
                self.stop_event.wait(1.0)

    def _flush_loop_inner(self) -> None:
        backoff = Backoff(cap=self.backoff_cap)
        last_beat = 0.0
        last_inbound = 0.0
        while not self.stop_event.is_set():
            now = time.monotonic()
            if now - last_inbound >= self.inbound_interval:
                last_inbound = now
                for m in self.backend.read_inbound():
                    self.outbox.add_inbound(m["id"], m["from"], m["body"], m["received_at"], m.get("sim_slot"))
            try:
                self.flush_once()
                if now - last_beat >= self.heartbeat_interval:
                    reply = self.client.heartbeat(dict(self.backend.status(), app_version=__version__,
                                                       queue_length=self.work.qsize()))
                    last_beat = now
                    if reply.get("settings_version") != self.state.settings_version:
                        self._refresh_settings()
                backoff.reset()
                self.flush_event.wait(self.flush_interval)
                self.flush_event.clear()
            except NetworkError as exc:
                self.stats["network_errors"] += 1
                delay = backoff.next()
                log.warning("upload failed (%s); %s kept for retry in %.1f s", exc, self.outbox.counts(), delay)
                self.stop_event.wait(delay)
            except ServerError as exc:
                if exc.auth_failed:
                    self._fail(f"The server refused this phone ({exc}). Pair it again.")
                    return
                delay = backoff.next()
                log.warning("server refused an upload (%s); retrying in %.1f s", exc, delay)
                self.stop_event.wait(delay)


def pair(state_dir: Path, server_url: str, code: str, backend, name: str | None = None,
         connect_to: str | None = None) -> State:
    """Register this phone with a one-time pairing code and save the device token."""
    state = State.load(state_dir)
    state.connect_to = connect_to
    info = backend.device_info()
    device = {"device_uid": state.device_uid, "model": info.get("model", ""),
              "os_version": info.get("os_version", ""), "app_version": __version__, "sims": info.get("sims", [])}
    if name:
        device["name"] = name
    reply = DeviceClient(server_url, connect_to=connect_to).register(code, device)
    state.server_url = server_url.rstrip("/")
    state.token = reply["token"]
    state.device_id = reply["device_id"]
    state.settings = reply.get("settings", {})
    state.settings_version = reply.get("settings_version", 0)
    state.save(state_dir)
    return state
