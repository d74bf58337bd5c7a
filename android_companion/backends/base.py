"""The interface every backend implements."""

from __future__ import annotations

import abc

# Android SmsManager result codes, by the names we report (RESULT_ERROR_*).
RETRIABLE = ("GENERIC_FAILURE", "RADIO_OFF", "NO_SERVICE", "LIMIT_EXCEEDED")
PERMANENT = ("NULL_PDU", "INVALID_DESTINATION", "SHORT_CODE_NOT_ALLOWED", "SHORT_CODE_NEVER_ALLOWED")


class Backend(abc.ABC):
    name = "base"

    @abc.abstractmethod
    def device_info(self) -> dict:
        """``{"model", "os_version", "sims": [{"slot", "operator", "number"}]}``."""
        ...

    @abc.abstractmethod
    def status(self) -> dict:
        """``{"battery_level", "charging", "signal"}`` (any may be missing)."""
        ...

    @abc.abstractmethod
    def send(self, to: str, text: str, sim_slot: int | None, on_event) -> None:
        """Hand one SMS to the radio. Call ``on_event(state, error_code=None)`` with
        ``sent`` or ``failed``, and later ``delivered`` if a delivery report arrives."""
        ...

    @abc.abstractmethod
    def read_inbound(self) -> list[dict]:
        """New inbound SMS since the last call: ``{"id", "from", "body", "received_at", "sim_slot"}``."""
        ...

    def close(self) -> None:
        pass
