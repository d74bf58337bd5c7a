"""``GET /events``: the app's server-sent event stream, built like the long polls.

Once the phone's request is checked (tenant, token, contact recorded), the handler
detaches (:mod:`core.web.detach`), the answer's headers go out, and a small
:class:`Stream` listens on the device's wake-up keys (:mod:`core.wakeups`): the
one messaging wakes for new work (``MessageEnqueued``), the one the devices addon
wakes when the device's settings change (``SettingsUpdated``) and one for
cancellations (``MessageCancelled``), and one for requests to send received SMS again
(``MessagesExportRequested``). A wake writes a frame; nothing touches the
database while a stream waits, except:

* one ticker per process, every second, writes the ``:keepalive`` comment to the
  fifteenth of the streams whose turn it is (each stream every 15 s);
* every minute it records contact for every open stream, one statement pair per
  workspace (a phone holding a stream is online for routing, as a phone polling
  is), and ends the streams of devices that were removed, disabled or re-tokened.

One device keeps at most one stream in a process: a newer one ends the older.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging

from core.db import app_db, run_in_tenant
from core.web.detach import Detached
from core.web.hosts import tenant_by_slug
from core.web.jsonout import json_bytes

from addons.devices import service as devices
from addons.devices.models import Device

from .models import Offer
from .service import export_key, take_exports

log = logging.getLogger(__name__)

KEEPALIVE = Detached.framed(b":keepalive\n\n")
KEEPALIVE_EVERY = 15  # seconds, as the app's own server does
CONTACT_EVERY = 60    # at most, seconds between recorded contacts of an open stream (see contact_every)
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def frame(event: str, data: dict | None = None) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + json_bytes(data or {}) + b"\n\n"


ENQUEUED = frame("MessageEnqueued")
SETTINGS = frame("SettingsUpdated")


def cancel_key(tenant_slug: str, device_id: int) -> str:
    return f"{tenant_slug}:device:{device_id}:cancel"


# The stream of each device (by its wake-up key) in this process.
STREAMS: dict[str, "Stream"] = {}


class Stream:
    """An open event stream: a detached request and the device it belongs to."""

    __slots__ = ("platform", "tenant", "device_id", "key", "request", "token_hash", "turn", "__weakref__")

    def __init__(self, platform, tenant, device_id: int, request, token_hash: str):
        self.platform, self.tenant, self.device_id = platform, tenant, device_id
        self.key, self.request, self.token_hash = devices.wake_key(tenant.slug, device_id), request, token_hash
        request.on_close = self  # the phone hung up: __call__ sees request.done
        older = STREAMS.get(self.key)
        STREAMS[self.key] = self
        if older is not None:
            older.end()
        hub = platform.wakeups
        hub.listen(self.key, self)
        hub.listen(devices.settings_wake_key(tenant.slug, device_id), self.settings_changed)
        hub.listen(cancel_key(tenant.slug, device_id), self.cancelled)
        hub.listen(export_key(tenant.slug, device_id), self.export_requested)
        self.turn = TICKER.add(self)

    def __call__(self) -> None:
        """New work for the device (the hub), or the phone hanging up (the request's ``on_close``)."""
        if self.request.done:
            self._forget()
        else:
            self.request.write(ENQUEUED)

    def settings_changed(self) -> None:
        self.request.write(SETTINGS)

    def cancelled(self) -> None:
        task = asyncio.ensure_future(self._tell_cancelled())
        RUNNING.add(task)
        task.add_done_callback(RUNNING.discard)

    async def _tell_cancelled(self) -> None:
        try:
            ids = await run_in_tenant(self.tenant.ref, cancel_requests, self.device_id)
        except Exception:  # the app learns it at its next GET /message (state Cancelling)
            log.warning("could not read the cancellations of device %s", self.device_id, exc_info=True)
            return
        for rid in ids:
            self.request.write(frame("MessageCancelled", {"messageId": str(rid)}))

    def export_requested(self) -> None:
        task = asyncio.ensure_future(self._tell_exports())
        RUNNING.add(task)
        task.add_done_callback(RUNNING.discard)

    async def _tell_exports(self) -> None:
        try:
            requests = await run_in_tenant(self.tenant.ref, take_exports, self.device_id)
        except Exception:  # still waiting in the table: told when the stream next opens
            log.warning("could not read the export requests of device %s", self.device_id, exc_info=True)
            return
        self.tell_exports(requests)

    def tell_exports(self, requests: list[dict]) -> None:
        for data in requests:
            self.request.write(frame("MessagesExportRequested", data))

    def keepalive(self) -> None:
        self.request.write_framed(KEEPALIVE)

    def drain(self) -> None:
        """The server is stopping: end the stream; the app reconnects (to another process)."""
        self.end()

    def end(self) -> None:
        self._forget()
        self.request.end()

    def _forget(self) -> None:
        if STREAMS.get(self.key) is self:
            del STREAMS[self.key]
        hub = self.platform.wakeups
        hub.discard(self.key, self)
        hub.discard(devices.settings_wake_key(self.tenant.slug, self.device_id), self.settings_changed)
        hub.discard(cancel_key(self.tenant.slug, self.device_id), self.cancelled)
        hub.discard(export_key(self.tenant.slug, self.device_id), self.export_requested)
        TICKER.remove(self)


def cancel_requests(device_id: int) -> list[int]:
    """Inside the tenant transaction: what the device was asked to cancel and has not reported on."""
    return [o.recipient_id for o in Offer.select(Offer.recipient_id).where(
        (Offer.device_id == device_id) & Offer.cancel_requested_at.is_null(False)).order_by(Offer.recipient_id)]


RUNNING: set = set()


class Ticker:
    """One timer for every stream of the process: keepalives in fifteen turns, contact each minute."""

    def __init__(self):
        self.turns = [set() for _ in range(KEEPALIVE_EVERY)]
        self.tick = 0
        self.timer = None
        self.next_turn = 0

    def __len__(self) -> int:
        return sum(map(len, self.turns))

    def add(self, stream: Stream) -> int:
        turn = self.next_turn
        self.next_turn = (turn + 1) % KEEPALIVE_EVERY
        self.turns[turn].add(stream)
        if self.timer is None:
            self._arm()
        return turn

    def remove(self, stream: Stream) -> None:
        self.turns[stream.turn].discard(stream)

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(1.0, self._fire, context=contextvars.Context())

    def _fire(self) -> None:
        self.timer = None
        self.tick += 1
        for stream in list(self.turns[self.tick % KEEPALIVE_EVERY]):
            try:
                stream.keepalive()
            except Exception:
                log.exception("an event stream's keepalive failed")
        if self.tick % contact_every() == 0:
            task = asyncio.ensure_future(record_contacts())
            RUNNING.add(task)
            task.add_done_callback(RUNNING.discard)
        if len(self):
            self._arm()


def contact_every() -> int:
    """Seconds between recorded contacts of the open streams: each minute, or half the time after
    which a silent phone is offline (``SMSGW_DEVICE_OFFLINE_SECONDS``) if that is shorter, so a
    phone holding a stream never reads as offline."""
    return max(1, min(CONTACT_EVERY, int(devices.OFFLINE_AFTER.total_seconds()) // 2))


TICKER = Ticker()


_CONTACT_COLUMNS = ("id", "name", "enabled", "online", "last_seen_at", "removed_at", "token_hash")


def note_stream_contacts(platform, tenant, streams: dict[int, str]) -> list[int]:
    """Inside the tenant transaction: record contact for the devices holding ``streams``
    (``{device_id: token digest}``); returns the devices whose streams must end (removed,
    disabled, or their token replaced since the stream opened)."""
    rows = app_db.execute_sql(f"SELECT {', '.join(_CONTACT_COLUMNS)} FROM devices WHERE id = ANY (%s)",
                              (sorted(streams),)).fetchall()
    usable, gone = [], set(streams)
    for row in rows:
        values = dict(zip(_CONTACT_COLUMNS, row))
        if values["enabled"] and values["removed_at"] is None and values["token_hash"] == streams[values["id"]]:
            device = Device(**values)
            device._dirty.clear()
            usable.append(device)
            gone.discard(values["id"])
    came_online = devices.note_contacts(usable)
    for device in usable:
        if came_online.get(device.id):
            devices.announce_online(platform, tenant, device, None)
    return sorted(gone)


async def record_contacts() -> None:
    """Every minute: contact for the open streams, per workspace; streams of unusable devices end."""
    by_tenant: dict[str, list[Stream]] = {}
    for stream in list(STREAMS.values()):
        by_tenant.setdefault(stream.tenant.slug, []).append(stream)
    for slug, streams in by_tenant.items():
        try:
            tenant = await tenant_by_slug(streams[0].platform, slug)
            if tenant is None or not tenant.is_active:
                gone = [s.device_id for s in streams]
            else:
                gone = await run_in_tenant(tenant.ref, note_stream_contacts, streams[0].platform, tenant,
                                           {s.device_id: s.token_hash for s in streams})
        except Exception:  # the next minute tries again; offline comes only after two minutes
            log.warning("recording the event streams' contact for %s failed", slug, exc_info=True)
            continue
        gone = set(gone)
        for stream in streams:
            if stream.device_id in gone:
                stream.end()


class InHandler:
    """The stream's side of a request whose handler keeps it (a server without the detaching
    delegate): writes go through the handler, which awaits :meth:`ended`."""

    __slots__ = ("handler", "done", "on_close", "over")

    def __init__(self, handler):
        self.handler, self.done, self.on_close, self.over = handler, False, None, None

    def open_stream(self, content_type: str, extra_headers: dict | None = None) -> bool:
        self.handler.set_header("Content-Type", content_type)
        for name, value in (extra_headers or {}).items():
            self.handler.set_header(name, value)
        self.handler.flush()
        return not self.done

    def write(self, chunk: bytes) -> None:
        if not self.done:
            self.handler.write(chunk)
            self.handler.flush()

    def end(self) -> None:
        if not self.done:
            self.done = True
            self.on_close = None
            self.handler.finish()
            self._over()

    def closed(self) -> None:
        """The handler's ``on_connection_close``."""
        if not self.done:
            self.done = True
            callback, self.on_close = self.on_close, None
            if callback is not None:
                callback()
            self._over()

    def _over(self) -> None:
        if self.over is not None and not self.over.done():
            self.over.set_result(None)

    async def ended(self) -> None:
        if not self.done:
            self.over = asyncio.get_running_loop().create_future()
            await self.over
