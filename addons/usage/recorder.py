"""API calls and API latency, counted in the web process and written to ``usage_counts`` in batches.

Most API requests (every GET) have no transaction to count in, and one transaction per request only
to count it would cost more than many requests do. So each process keeps its counts in memory and
writes them every ``usage_flush_seconds`` (and when it stops), one transaction per workspace. How
exact that is, precisely:

* never counted twice: a batch is taken out of memory before it is written, and written in one
  transaction; a batch whose transaction fails is put back and written with the next one;
* after a clean stop (SIGTERM, ``smsgw serve`` ending), every finished API request is counted;
* a process killed without a chance to write (SIGKILL, power loss) loses the requests it finished
  in at most the last ``usage_flush_seconds``: API call figures are a lower bound, short by at
  most that window per killed process. They are not what messages are billed from (segments are,
  counted with the work itself).

Counted: requests under ``/api/`` of a workspace with an authenticated credential (an API token, a
phone, a member's JWT or session), by credential and endpoint family. Latency: the same requests
except the phones' API (long polls wait on purpose), as a histogram per day.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from core.db import tenant_transaction

from . import service

log = logging.getLogger(__name__)

EPOCH = dt.date(1970, 1, 1)


def credential(principal) -> str:
    """How an API call's credential is named: an API token or a phone by id; a member's own sign-in
    (session or JWT) as ``user`` (no person's id in the usage records)."""
    if principal.kind == "token":
        return f"token:{principal.id}"
    if principal.kind == "device":
        return f"device:{principal.id}"
    return principal.kind if principal.kind in ("user", "admin") else "other"


def family(path: str) -> str:
    """The endpoint family of an API path: ``/api/v1/messages/7`` -> ``messages``,
    ``/api/device/v1/...`` -> ``device``; the first segment after the version otherwise."""
    parts = [p for p in path.split("/") if p][1:]  # after "api"
    if parts and parts[0] == "device":
        return "device"
    if parts and parts[0][:1] == "v" and parts[0][1:].isdigit():
        parts = parts[1:]
    name = parts[0] if parts else ""
    return name[:40] if name.replace("-", "").replace("_", "").isalnum() else "other"


class Recorder:
    def __init__(self):
        self._lock = threading.Lock()
        self._pending: dict[tuple, dict[tuple, int]] = {}  # tenant ref -> {(metric, day, key): n}
        # Every API request passes here: what its counter key is made of is worked out once per
        # (credential, path) and per UTC day, then read back (bounded: paths carry ids).
        self._keys: dict[tuple, tuple[str, str]] = {}
        self._day: tuple[int, dt.date] = (-1, dt.date.min)

    def request_finished(self, handler, elapsed_ms: float) -> None:
        tenant = getattr(handler, "tenant", None)
        principal = getattr(handler, "principal", None)
        path = handler.request.path
        if tenant is None or principal is None or not path.startswith("/api/"):
            return
        found = self._keys.get((principal.kind, principal.id, path))
        if found is None:
            if len(self._keys) >= 10_000:
                self._keys.clear()
            fam = family(path)
            found = self._keys[(principal.kind, principal.id, path)] = (f"{credential(principal)}|{fam}", fam)
        api_key, fam = found
        day = self.today()
        with self._lock:
            counts = self._pending.setdefault(tenant.ref, {})
            key = ("api", day, api_key)
            counts[key] = counts.get(key, 0) + 1
            if fam != "device":
                key = ("api_ms", day, str(service.bucket_of(elapsed_ms)))
                counts[key] = counts.get(key, 0) + 1

    def today(self) -> dt.date:
        """The UTC date now (made once per day)."""
        number = int(time.time() // 86400)
        if number != self._day[0]:
            self._day = (number, EPOCH + dt.timedelta(days=number))
        return self._day[1]

    def flush(self) -> int:
        """Write what was counted; returns the number of workspaces written."""
        with self._lock:
            batch, self._pending = self._pending, {}
        written = 0
        for ref, counts in batch.items():
            try:
                with tenant_transaction(ref):
                    service.add_many([(metric, day, key, n) for (metric, day, key), n in counts.items()])
                written += 1
            except Exception as exc:  # the database is away: keep the counts for the next flush
                if self.gone(ref):
                    log.info("usage: dropped API counts of %s, a workspace deleted since", ref.slug)
                    continue
                log.warning("usage: could not write API counts of %s (%s: %s); kept for the next flush",
                            ref.slug, exc.__class__.__name__, str(exc).strip()[:200])
                with self._lock:
                    mine = self._pending.setdefault(ref, {})
                    for key, n in counts.items():
                        mine[key] = mine.get(key, 0) + n
        return written


    @staticmethod
    def gone(ref) -> bool:
        """Whether the workspace ``ref`` names was deleted (its counts have nowhere to go)."""
        from core.db import app_db, connection

        try:
            with connection():
                return app_db.execute_sql("SELECT NOT EXISTS (SELECT 1 FROM public.tenant WHERE id = %s "
                                          "AND schema_name = %s)", (ref.id, ref.schema_name)).fetchone()[0]
        except Exception:
            return False


recorder = Recorder()
