"""The device protocol (``/api/device/v1/…``): pairing, long-poll fetch, reports, inbound, heartbeat.

While a phone waits in a long poll the server does no database work: the poll
is parked on a wake-up (:mod:`core.wakeups`, :mod:`.longpoll`) and claims work
only when woken or when the wait ends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

from core import tokenformat
from core.bodyschema import iso_time
from core.clock import utcnow
from core.events import AuditEvent
from core.groupcommit import GroupCommit, with_refusals
from core.permissions import PUBLIC
from core.web.base import ApiHandler
from core.web.detach import detach
from core.web.params import whole_number
from core.web.problem import Problem

from . import health, longpoll, service
from .models import Device
from .service import DEVICE_PERMISSION, DeviceError, wake_key
from .settings import merged
from core.i18n import N_

MAX_BATCH = 500
REPORT_STATES = ("sent", "delivered", "failed")


def parse_time(value, field: str, errors: list, index: int):
    if value is None or iso_time(value) or (isinstance(value, (int, float)) and not isinstance(value, bool)
                                            and 0 < value < 4e12):
        return report_time(value)
    errors.append({"field": f"{field}[{index}].at", "message": N_("must be an ISO 8601 time or epoch milliseconds")})
    return None


def report_time(value) -> dt.datetime:
    """A time the schema's ``LooseTime`` accepted: ISO 8601, epoch seconds or milliseconds, or now."""
    if value is None:
        return utcnow()
    if isinstance(value, str):
        return iso_time(value)
    # epoch seconds or milliseconds (Android reports milliseconds)
    return dt.datetime.fromtimestamp(value / 1000 if value > 1e11 else value, dt.timezone.utc)


class DeviceApiHandler(ApiHandler):
    permission = DEVICE_PERMISSION
    max_body_size = 1024 * 1024

    def int_arg(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get_query_argument(name, None)
        if raw is None:
            return default
        return max(low, min(high, whole_number(raw, N_("%(name)s must be a whole number from %(low)s to %(high)s."), 10,
                                                  args={"name": name, "low": low, "high": high})))

    def device_problem(self, exc: DeviceError) -> Problem:
        return Problem.refused(exc.status, exc.code, exc)

    def batch(self, body: dict, key: str) -> list:
        items = body.get(key)
        if not isinstance(items, list):
            raise Problem(422, "validation-failed", N_("Send %(key)s as a list."),
                          errors=[{"field": key, "message": N_("must be a list")}], args={"key": key})
        if len(items) > MAX_BATCH:
            raise Problem(413, "batch-too-large", N_("Send at most %(MAX_BATCH)s %(key)s per request."),
            args={"MAX_BATCH": MAX_BATCH, "key": key})
        return items

    def online_event(self) -> AuditEvent:
        """What the audit trail records if this request's contact brings the phone back online."""
        return self.audit("device.online", device=self.principal.id)

    def announce_if_online(self, came_online: bool) -> None:
        """Inside the transaction that recorded the contact (see ``service.announce_online``)."""
        if came_online:
            service.announce_online(self.platform, self.tenant, Device.get_by_id(self.principal.id),
                                    self.online_event())

    def audit(self, action: str, **details) -> AuditEvent:
        return AuditEvent(action=action, tenant_id=self.tenant.id, tenant_slug=self.tenant.slug,
                          actor=self.principal.actor if self.principal else "",
                          ip=self.request.remote_ip or "", user_agent=self.request.headers.get("User-Agent", "")[:300],
                          details=details)


class RegisterHandler(DeviceApiHandler):
    """``POST /api/device/v1/register``: spend a pairing code, receive a device token."""

    permission = PUBLIC

    async def post(self):
        body = self.json_body()
        platform = self.platform
        # Per workspace *and* address: one guesser cannot block pairing for everyone.
        key = f"pair:{self.tenant.slug}:{self.request.remote_ip or ''}"
        verdict = await self.run_db(platform.throttle.check, key, self.request.remote_ip or "", False)
        if not verdict.allowed:
            raise Problem(429, "too-many-attempts", N_("Too many wrong pairing codes. Wait a while "
                                                       "and try again."),
                          headers={"Retry-After": str(verdict.retry_after)})
        info = body.get("device") if isinstance(body.get("device"), dict) else {}
        def register():
            device, token, repaired = service.register(
                self.tenant.slug, body.get("code"), info,
                limit=lambda: service.check_device_limit(platform, self.tenant))
            if repaired:  # the old token is dead: no process may keep it cached (NOTIFY goes with the commit)
                platform.credentials_changed(self.tenant.slug)
            return device, token, repaired

        def audit(done) -> AuditEvent:
            device, _token, repaired = done
            return AuditEvent("device.repaired" if repaired else "device.paired", self.tenant.id, self.tenant.slug,
                              actor=f"device:{device.id}", actor_name=device.name, ip=self.request.remote_ip or "")

        try:
            device, token, repaired = await self.in_tenant(register, audit=audit)
        except DeviceError as exc:
            if exc.code in ("invalid-code", "code-used", "code-expired"):
                await self.run_db(platform.throttle.record_failure, key, self.request.remote_ip or "")
            raise self.device_problem(exc) from None
        if repaired:  # nor may a poll of the old token stay parked
            platform.wake_now(wake_key(self.tenant.slug, device.id))
        self.set_header("Cache-Control", "no-store")
        self.write_json({"device_id": device.id, "token": token, "name": device.name,
                         "settings": merged(device.settings), "settings_version": device.settings_version,
                         "server_time": utcnow().isoformat()}, 201)


class FetchHandler(DeviceApiHandler):
    """``GET /api/device/v1/messages?wait=30&limit=10&settings_version=N``: long-poll for work.

    A long poll is parked once the request is checked (see :mod:`.longpoll`).
    """

    _request = None
    _closed = False

    def on_connection_close(self):
        self._closed = True
        if self._request is not None:
            self._request.closed()

    async def get(self):
        wait = self.int_arg("wait", min(30, service.MAX_WAIT), 0, service.MAX_WAIT)
        limit = self.int_arg("limit", 10, 1, 100)
        known_version = self.int_arg("settings_version", 0, 0, 2**31 - 1)
        platform, tenant, device_id = self.platform, self.tenant, self.principal.id
        deadline = asyncio.get_running_loop().time() + wait if wait > 0 else None
        key = wake_key(tenant.slug, device_id)
        # The token this poll was let in with: a poll that outlives it (rotated, re-paired) gets no work.
        token_hash = tokenformat.digest(self.request.headers.get("Authorization", "").partition(" ")[2].strip())
        if deadline is not None:
            # Built while the handler still has the request (detaching drops its headers).
            online = self.online_event()
            request = detach(self)
            if request is not None:
                # From here the handler is gone: the parked poll looks for work and answers the phone.
                longpoll.ParkedPoll(platform, tenant, device_id, limit, known_version, key, request, deadline, online,
                                    token_hash).wake()
                return
        # wait=0 (one look), or a server without the detaching delegate: the poll answers through this handler.
        if self._closed:
            return  # the phone hung up before we looked: nothing to hand over
        self._request = request = longpoll.InHandler(self)
        poll = longpoll.ParkedPoll(platform, tenant, device_id, limit, known_version, key, request, deadline,
                                   self.online_event(), token_hash)
        await poll.look()
        await request.answered()


class ReportsHandler(DeviceApiHandler):
    """``POST /api/device/v1/reports``: a batch of sent / delivered / failed reports."""

    body_schemas = {"POST": "deviceReports"}
    batch_field = "reports"
    invalid_body_detail = N_("Some reports are malformed; none were applied.")

    async def post(self):
        reports = [{"message_id": int(item["message_id"]), "state": item["state"],
                    "error_code": None if item.get("error_code") is None else str(item["error_code"]),
                    "recipient": item.get("recipient"), "at": report_time(item.get("at"))}
                   for item in self.json_body()["reports"]]
        device_id = self.principal.id
        results, _came_online = await apply_reports(self.tenant.ref, ReportBatch(self.platform, self.tenant, device_id,
                                                                                 reports, self.online_event()))
        self.write_json({"accepted": len(reports), "results": results})


@dataclass(slots=True, frozen=True)
class ReportBatch:
    """One request's reports, a group-commit item of :data:`apply_reports`."""

    platform: object
    tenant: object  # core.tenancy.TenantInfo
    device_id: int
    reports: list[dict]
    online: object = None  # the AuditEvent recorded, with the reports, if the contact brings the phone online


def _apply_reports(items: list[ReportBatch]) -> list:
    """Reports of one or several phones' requests in one transaction: ``(results, came_online)``
    for each, or the refusal of a phone that may no longer report."""
    platform, tenant = items[0].platform, items[0].tenant
    devices = service.read_for_contact(item.device_id for item in items)
    online_events = {item.device_id: item.online for item in items}

    def apply(batches: list[tuple]) -> list:
        per_batch = platform.registry.hook.smsgw_device_reports(tenant=tenant, batches=batches)
        if per_batch is None:  # no enabled addon applies reports
            per_batch = [[{"message_id": r["message_id"], "status": "unknown", "state": None} for r in reports]
                         for _, reports in batches]
        came_online = service.note_contacts(device for device, _ in batches)
        outcomes = []
        for (device, _), results in zip(batches, per_batch):
            online = came_online.pop(device.id, False)  # told once per phone
            if online:
                service.announce_online(platform, tenant, device, online_events.get(device.id))
            outcomes.append((results, online))
        return outcomes

    return with_refusals(items, lambda item: (service.require_usable(devices.get(item.device_id)), item.reports), apply)


# Reports that phones send together are applied together (see core.groupcommit), up to 500
# reports a transaction, one transaction at a time per tenant (bench_messaging reports at batch
# 1: 0.95 and 0.83 of the baseline, against 0.73-0.77 with two at a time and 0.61-0.65 with four).
apply_reports = GroupCommit(_apply_reports, concurrency=1, max_size=500, size=lambda item: len(item.reports) or 1)


class InboundHandler(DeviceApiHandler):
    """``POST /api/device/v1/inbound``: received SMS, deduplicated by the phone's own id."""

    async def post(self):
        items = self.batch(self.json_body(), "messages")
        errors, clean = [], []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                errors.append({"field": f"messages[{i}]", "message": N_("must be an object")})
                continue
            pid, sender, body = item.get("id"), item.get("from"), item.get("body")
            if not (isinstance(pid, (str, int)) and not isinstance(pid, bool) and 1 <= len(str(pid)) <= 200):
                errors.append({"field": f"messages[{i}].id", "message": N_("the phone's message id is required")})
            if not (isinstance(sender, str) and 1 <= len(sender) <= 64):
                errors.append({"field": f"messages[{i}].from", "message": N_("the sender is required")})
            if not (isinstance(body, str) and len(body) <= 10_000):
                errors.append({"field": f"messages[{i}].body", "message": N_("must be text up to 10,000 characters")})
            slot = item.get("sim_slot")
            if slot is not None and not (isinstance(slot, int) and not isinstance(slot, bool) and 1 <= slot <= 4):
                errors.append({"field": f"messages[{i}].sim_slot", "message": N_("must be 1 to 4")})
            at = parse_time(item.get("received_at"), "messages", errors, i)
            clean.append({"id": str(pid), "from": sender, "body": body, "sim_slot": slot, "received_at": at})
        if errors:
            raise Problem(422, "validation-failed", N_("Some messages are malformed; none were "
                                                       "stored."), errors=errors)
        device_id = self.principal.id

        def store():
            new, dupes = service.store_inbound(device_id, clean)
            device = Device.get_by_id(device_id)
            for row in new:
                self.platform.registry.hook.smsgw_device_inbound(tenant=self.tenant, device=device, message=row)
            self.announce_if_online(service.touch(device_id))
            return len(new), dupes

        stored, dupes = await self.in_tenant(store)
        self.write_json({"stored": stored, "duplicates": dupes})


class HeartbeatHandler(DeviceApiHandler):
    """``POST /api/device/v1/heartbeat``: battery, charging, signal, queue length, app version."""

    async def post(self):
        body = self.json_body()
        status, errors = {}, []
        checks = {"battery_level": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 100,
                  "charging": lambda v: isinstance(v, bool),
                  "signal": lambda v: isinstance(v, int) and not isinstance(v, bool) and -200 <= v <= 100,
                  "queue_length": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10**6,
                  "app_version": lambda v: isinstance(v, str) and len(v) <= 50}
        for key, ok in checks.items():
            if key in body and body[key] is not None:
                if ok(body[key]):
                    status[key] = body[key]
                else:
                    errors.append({"field": key, "message": N_("out of range or wrong type")})
        if errors:
            raise Problem(422, "validation-failed", N_("The heartbeat has invalid fields."), errors=errors)
        device_id = self.principal.id

        def beat():
            self.announce_if_online(service.touch(device_id, status))
            health.note_battery(device_id, status)
            return Device.get_by_id(device_id).settings_version

        version = await self.in_tenant(beat)
        self.write_json({"settings_version": version, "server_time": utcnow().isoformat()})


class SettingsHandler(DeviceApiHandler):
    """``GET /api/device/v1/settings``: the device's current settings."""

    async def get(self):
        device = await self.in_tenant(Device.get_by_id, self.principal.id)
        self.write_json({"settings": merged(device.settings), "settings_version": device.settings_version,
                         "name": device.name})


class DeviceTokenHandler(DeviceApiHandler):
    """``POST /api/device/v1/token``: the phone rotates its own token; the old one stops working."""

    async def post(self):
        def rotate():
            token = service.rotate_token(self.principal.id, self.tenant.slug)
            self.platform.credentials_changed(self.tenant.slug)  # its NOTIFY goes out with the commit
            return token

        token = await self.in_tenant(rotate, audit=self.audit("device.token_rotated"))
        self.set_header("Cache-Control", "no-store")
        self.write_json({"token": token})


ROUTES = [
    (r"/api/device/v1/register", RegisterHandler),
    (r"/api/device/v1/messages", FetchHandler),
    (r"/api/device/v1/reports", ReportsHandler),
    (r"/api/device/v1/inbound", InboundHandler),
    (r"/api/device/v1/heartbeat", HeartbeatHandler),
    (r"/api/device/v1/settings", SettingsHandler),
    (r"/api/device/v1/token", DeviceTokenHandler),
]
