"""A simulated phone: configurable send latency, failures (with Android's codes), delivery
reports and inbound traffic. Used by the tests and the load benchmarks."""

from __future__ import annotations

import itertools
import random
import threading
import time

from .base import Backend


class SimulatorBackend(Backend):
    name = "simulator"

    def __init__(self, send_latency: float = 0.0, failure_rate: float = 0.0,
                 failure_codes=("GENERIC_FAILURE",), delivery_delay: float = 0.0, delivery_rate: float = 1.0,
                 inbound_per_minute: float = 0.0, sims: int = 2, model: str = "Simulated Pixel 8",
                 seed: int | None = None, fail_numbers: dict | None = None):
        self.send_latency = send_latency
        self.failure_rate = failure_rate
        self.failure_codes = tuple(failure_codes)
        self.delivery_delay = delivery_delay
        self.delivery_rate = delivery_rate
        self.inbound_per_minute = inbound_per_minute
        self.sims = sims
        self.model = model
        self.fail_numbers = dict(fail_numbers or {})  # number -> error code, always fails
        self.random = random.Random(seed)
        self.sent: list[dict] = []  # what went "over the air", for tests
        self._inbound: list[dict] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._timers: list[threading.Timer] = []
        self._last_generated = time.time()

    def device_info(self) -> dict:
        return {"model": self.model, "os_version": "14", "sims": [
            {"slot": i + 1, "operator": f"SimTel {i + 1}", "number": f"+1555000{i + 1:04d}"} for i in range(self.sims)]}

    def status(self) -> dict:
        return {"battery_level": 87, "charging": True, "signal": -70}

    def send(self, to: str, text: str, sim_slot, on_event) -> None:
        if self.send_latency:
            time.sleep(self.send_latency)
        code = self.fail_numbers.get(to)
        if code is None and self.failure_rate and self.random.random() < self.failure_rate:
            code = self.random.choice(self.failure_codes)
        if code is not None:
            on_event("failed", code)
            return
        with self._lock:
            self.sent.append({"to": to, "text": text, "sim_slot": sim_slot, "at": time.time()})
        on_event("sent", None)
        if self.delivery_rate and self.random.random() <= self.delivery_rate:
            if self.delivery_delay:
                timer = threading.Timer(self.delivery_delay, on_event, args=("delivered", None))
                timer.daemon = True
                self._timers.append(timer)
                timer.start()
            else:
                on_event("delivered", None)

    def inject_inbound(self, sender: str, body: str, sim_slot: int = 1) -> str:
        """Make the phone 'receive' an SMS (tests, demos)."""
        phone_id = f"sim-{next(self._ids)}-{int(time.time() * 1000)}"
        with self._lock:
            self._inbound.append({"id": phone_id, "from": sender, "body": body, "received_at": time.time(),
                                  "sim_slot": sim_slot})
        return phone_id

    def read_inbound(self) -> list[dict]:
        if self.inbound_per_minute:
            now = time.time()
            due = int((now - self._last_generated) * self.inbound_per_minute / 60)
            for _ in range(due):
                self.inject_inbound(f"+1555{self.random.randint(1000000, 9999999)}", "Simulated reply")
            if due:
                self._last_generated = now
        with self._lock:
            items, self._inbound = self._inbound, []
        return items

    def close(self) -> None:
        for t in self._timers:
            t.cancel()
