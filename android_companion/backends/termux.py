"""The real phone: Termux with the Termux:API app (``pkg install termux-api``).

* sending: ``termux-sms-send -n NUMBER [-s SLOT] TEXT`` (the exit code says whether
  Android accepted it; Termux:API gives no delivery report, so none is sent);
* receiving: ``termux-sms-list -t inbox`` (JSON; ``_id`` is the phone's message id);
* status: ``termux-battery-status``, ``termux-telephony-deviceinfo``, ``getprop``.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess

from .base import Backend


class TermuxError(RuntimeError):
    pass


def _run(args: list[str], timeout: float = 30.0, runner=subprocess.run) -> str:
    try:
        result = runner(args, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise TermuxError(f"{args[0]} not found: install Termux:API (pkg install termux-api) and its app") from None
    except subprocess.TimeoutExpired:
        raise TermuxError(f"{args[0]} did not answer within {timeout:.0f} s") from None
    if result.returncode != 0:
        raise TermuxError(f"{args[0]} failed: {(result.stderr or result.stdout).strip()[:200]}")
    return result.stdout


class TermuxBackend(Backend):
    name = "termux"

    def __init__(self, inbox_scan: int = 50, runner=subprocess.run, watermark_path=None):
        self.inbox_scan = inbox_scan
        self.runner = runner
        # The highest inbox _id already taken, kept across restarts so messages that
        # arrive while the companion is stopped are still uploaded, and the phone's
        # older history never is.
        self.watermark_path = watermark_path
        self._seen_max_id = None
        if watermark_path is not None:
            try:
                self._seen_max_id = int(open(watermark_path).read().strip())
            except (OSError, ValueError):
                self._seen_max_id = None

    @staticmethod
    def available() -> bool:
        return shutil.which("termux-sms-send") is not None

    def _json(self, *args):
        return json.loads(_run(list(args), runner=self.runner) or "null")

    def device_info(self) -> dict:
        def prop(name):
            try:
                return _run(["getprop", name], runner=self.runner).strip()
            except TermuxError:
                return ""

        sims = []
        try:
            info = self._json("termux-telephony-deviceinfo") or {}
            operator = info.get("sim_operator_name") or info.get("network_operator_name") or ""
            sims.append({"slot": 1, "operator": operator, "number": info.get("line1_number") or ""})
        except (TermuxError, ValueError):
            pass
        return {"model": prop("ro.product.model") or "Android", "os_version": prop("ro.build.version.release"),
                "sims": sims}

    def status(self) -> dict:
        try:
            b = self._json("termux-battery-status") or {}
        except (TermuxError, ValueError):
            return {}
        return {"battery_level": b.get("percentage"),
                "charging": b.get("plugged", "UNPLUGGED") not in ("UNPLUGGED", None)}

    def send(self, to: str, text: str, sim_slot, on_event) -> None:
        args = ["termux-sms-send", "-n", to]
        if sim_slot:
            args += ["-s", str(sim_slot - 1)]  # termux numbers slots from 0
        args += ["--", text]  # a text starting with "-" is not an option
        try:
            _run(args, timeout=60, runner=self.runner)
        except TermuxError:
            on_event("failed", "GENERIC_FAILURE")
            return
        on_event("sent", None)

    def read_inbound(self) -> list[dict]:
        try:
            items = self._json("termux-sms-list", "-t", "inbox", "-l", str(self.inbox_scan)) or []
        except (TermuxError, ValueError):
            return []
        out = []
        for item in items:
            phone_id = item.get("_id")
            if phone_id is None:
                continue
            if self._seen_max_id is not None and int(phone_id) <= self._seen_max_id:
                continue
            out.append({"id": str(phone_id), "from": item.get("number", ""), "body": item.get("body", ""),
                        "received_at": _parse_received(item.get("received")), "sim_slot": None})
        ids = [int(i["_id"]) for i in items if i.get("_id") is not None]
        if not ids and self._seen_max_id is None:
            # An empty inbox at the first scan: everything from now on is new.
            self._seen_max_id = 0
            if self.watermark_path is not None:
                with open(self.watermark_path, "w") as fh:
                    fh.write("0")
        if ids:
            first_scan = self._seen_max_id is None
            self._seen_max_id = max(ids + [self._seen_max_id or 0])
            if self.watermark_path is not None:
                with open(self.watermark_path, "w") as fh:
                    fh.write(str(self._seen_max_id))
            if first_scan:
                return []  # the very first start: do not upload the phone's history
        return out


def _parse_received(value) -> float:
    if isinstance(value, str):
        for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
            try:
                return dt.datetime.strptime(value, fmt).timestamp()
            except ValueError:
                pass
    return dt.datetime.now().timestamp()
