"""The app's private-server API, ``/api/mobile/v1/…`` on a workspace's address.

The app (*SMS Gateway for Android*, Settings → Cloud Server) is given
``https://<slug>.<base-domain>/api/mobile/v1`` and an enrollment token. It registers
(``POST /device``) and from then on speaks with the device token it received: the
same ``sgd_`` token a companion phone has, so the kernel resolves it, and the long
poll's claim, the reports' group commit and the inbound store serve both kinds of
phone. Answers are JSON as the app's Gson reads it (null fields left out).
"""

from __future__ import annotations

from core import tokenformat
from core.clock import parse_iso, utcnow
from core.events import AuditEvent
from core.permissions import PUBLIC
from core.web import jsonin
from core.web.detach import detach
from core.web.mediatype import is_json
from core.web.params import parse_id
from core.web.problem import Problem

from addons.devices import longpoll
from addons.devices import service as devices
from addons.devices.models import Device
from addons.devices.protocol import DeviceApiHandler, ReportBatch, apply_reports

from . import events, service
from .models import Offer
from core.i18n import N_

MAX_MESSAGES = 100  # what GET /message hands out at most, as the app's own server does


def without_nulls(data: dict) -> dict:
    return {k: v for k, v in data.items() if v is not None}


class MobileHandler(DeviceApiHandler):
    """A request of a registered app phone (its device token)."""

    @property
    def version(self):
        return service.app_version(self.request.headers.get("User-Agent"))

    def token_hash(self) -> str:
        return tokenformat.digest(self.request.headers.get("Authorization", "").partition(" ")[2].strip())

    def json_any(self):
        """The body as JSON of any shape (``PATCH /message`` sends an array)."""
        if not is_json(self.request.headers.get("Content-Type", "")):
            raise Problem(415, "unsupported-media-type", N_("Send the body as application/json."))
        try:
            return jsonin.loads(self.request.body or b"")
        except ValueError:
            raise Problem(400, "invalid-json", N_("The body is not valid JSON.")) from None

    def no_content(self) -> None:
        self.set_status(204)
        self.finish()

    async def enrolling(self, work, audit):
        """Run ``work`` (it checks a private token, login or code) in the tenant, throttled per source:
        too many wrong ones from an address answer 429, and each wrong one (401) counts."""
        platform, ip = self.platform, self.request.remote_ip or ""
        key = f"enroll:{self.tenant.slug}:{ip}"
        verdict = await self.run_db(platform.throttle.check, key, ip, False)
        if not verdict.allowed:
            raise Problem(429, "too-many-attempts", N_("Too many wrong private tokens, passwords or codes. Wait a "
                                                       "while and try again."),
                          headers={"Retry-After": str(verdict.retry_after)})
        try:
            return await self.in_tenant(work, audit=audit)
        except Problem as exc:
            if exc.status == 401:
                await self.run_db(platform.throttle.record_failure, key, ip)
            raise


class DeviceHandler(MobileHandler):
    """``POST /device`` (enroll with the private token), ``PATCH /device``, ``GET /device``."""

    permissions = {"POST": PUBLIC, "PATCH": devices.DEVICE_PERMISSION, "GET": devices.DEVICE_PERMISSION}

    async def prepare_user(self):
        if self.request.method != "POST":
            return await super().prepare_user()
        self.principal = None  # the private token is checked by post() itself: it is no principal

    async def post(self):
        """Register a phone with the private token (``Bearer``: the answer carries a new login and
        password), or with the login and password of a phone that did (``Basic``), or with a one-time
        code one of them asked for (``Code``)."""
        platform, tenant = self.platform, self.tenant
        scheme, _, credential = self.request.headers.get("Authorization", "").partition(" ")
        scheme, credential = scheme.lower(), credential.strip()
        basic = service.parse_basic(credential) if scheme == "basic" else None
        if not credential or scheme not in ("bearer", "basic", "code") or (scheme == "basic" and basic is None):
            raise service.unauthorized(N_(
                "Enter the private token from the Devices page (Connect the Android app) in the app's Cloud Server "
                "settings, or sign in with the login and password, or a one-time code, of a phone that joined."))
        ip = self.request.remote_ip or ""
        body = self.json_body()
        errors = service.check_device_body(body, register=True)
        if errors:
            raise Problem(400, "validation-failed", N_("The device is described wrongly; nothing was "
                                                       "registered."),
                          errors=errors)
        version = self.version

        def enroll():
            if scheme == "bearer":
                login, enrollment = None, service.spend_enrollment(credential)
            elif scheme == "basic":
                login, enrollment = service.login_enrollment(platform, *basic)
            else:
                login, enrollment = service.code_enrollment(platform, credential)
            device, token, row = service.register(platform, tenant, enrollment, body, version,
                                                  lambda: devices.check_device_limit(platform, tenant),
                                                  login.id if login else None)
            answer = {"id": str(device.id), "token": token}
            if login is None:
                answer["login"], answer["password"] = service.new_login(platform, enrollment.id, device.id)
            else:
                answer["login"] = login.login
            return device, answer, row

        def audit(done) -> AuditEvent:
            device, _answer, row = done
            return AuditEvent("device.enrolled", tenant.id, tenant.slug, actor=f"device:{device.id}",
                              actor_name=device.name, ip=ip,
                              user_agent=self.request.headers.get("User-Agent", "")[:300],
                              details={"enrollment": row.enrollment_id, "app_version": row.app_version,
                                       "replaces_device": row.replaces_device_id,
                                       "with": {"bearer": "private token", "basic": "login and password",
                                                "code": "one-time code"}[scheme]})

        _device, answer, _row = await self.enrolling(enroll, audit)
        self.set_header("Cache-Control", "no-store")
        self.write_json(answer, 201)

    async def patch(self):
        body = self.json_body()
        if str(body.get("id")) != str(self.principal.id):
            raise Problem(403, "forbidden", N_("This is not the device the token belongs to."))
        errors = service.check_device_body(body, register=False)
        if errors:
            raise Problem(400, "validation-failed", N_("Some fields are invalid; nothing was changed."), errors=errors)
        device_id, version = self.principal.id, self.version

        def update():
            service.mobile_row(device_id)
            service.update_device(device_id, body, version)
            self.announce_if_online(devices.touch(device_id))

        await self.in_tenant(update)
        self.no_content()

    async def get(self):
        self.write_json(without_nulls({"id": str(self.principal.id), "name": self.principal.name,
                                       "externalIp": self.request.remote_ip}))


class UserCodeHandler(MobileHandler):
    """``GET /user/code`` (``Basic`` login and password): a one-time code that adds one more phone."""

    permissions = {"GET": PUBLIC}

    async def prepare_user(self):
        self.principal = None  # the login and password are checked by get() itself: they are no principal

    async def get(self):
        platform, tenant = self.platform, self.tenant
        scheme, _, credential = self.request.headers.get("Authorization", "").partition(" ")
        basic = service.parse_basic(credential) if scheme.lower() == "basic" else None
        if basic is None:
            raise service.unauthorized(N_("Sign in with the login and password the app was given when it joined."))
        ip = self.request.remote_ip or ""

        def make():
            login, _enrollment = service.login_enrollment(platform, *basic)
            return login, *service.new_code(platform, login)

        def audit(done) -> AuditEvent:
            login, _code, expires = done
            return AuditEvent("enrollment.code_created", tenant.id, tenant.slug, actor=f"device:{login.device_id}",
                              ip=ip, details={"enrollment": login.enrollment_id, "login": login.login,
                                              "expires_at": expires.isoformat()})

        _login, code, expires = await self.enrolling(make, audit)
        self.set_header("Cache-Control", "no-store")
        self.write_json({"code": code, "validUntil": service.gson_time(expires)})


class PasswordHandler(MobileHandler):
    """``PATCH /user/password`` (device token): ``{currentPassword, newPassword}``."""

    permission = devices.DEVICE_PERMISSION

    async def patch(self):
        body = self.json_body()
        current, new = body.get("currentPassword"), body.get("newPassword")
        if not isinstance(new, str):
            raise Problem(400, "validation-failed", N_("Give the new password as text; nothing was changed."),
                          errors=[{"field": "newPassword", "message": N_("required")}])
        platform, tenant, device_id = self.platform, self.tenant, self.principal.id

        def audit(login) -> AuditEvent:
            return AuditEvent("enrollment.password_changed", tenant.id, tenant.slug, actor=f"device:{device_id}",
                              ip=self.request.remote_ip or "", details={"login": login.login})

        await self.in_tenant(service.change_password, platform, device_id, current, new, audit=audit)
        self.no_content()


class MessagesHandler(MobileHandler):
    """``GET /message``: what the phone should send; ``PATCH /message``: what became of it."""

    permission = devices.DEVICE_PERMISSION

    async def get(self):
        order = (self.get_query_argument("order", None) or "fifo").lower()
        if order not in ("fifo", "lifo"):
            raise Problem(400, "validation-failed", N_("order is fifo or lifo."),
                          errors=[{"field": "order", "message": N_("must be fifo or lifo")}])
        platform, tenant, device_id, version = self.platform, self.tenant, self.principal.id, self.version

        def held():
            service.mobile_row(device_id)
            service.note_version(device_id, version)
            offers = service.open_offers(device_id)
            items = [item for result in platform.registry.hook.smsgw_device_held(
                tenant=tenant, device_id=device_id, ids=sorted(offers)) for item in (result or [])]
            service.forget_offers(set(offers) - {item["id"] for item in items})
            return items, offers

        items, offers = await self.in_tenant(held)
        items = items[:MAX_MESSAGES]
        room = MAX_MESSAGES - len(items)
        if room > 0:
            # The long poll's own look (a claim, the contact recorded, refused for a replaced token):
            # what an app phone takes is taken exactly as a companion phone takes it.
            look = longpoll.Look(platform, tenant, device_id, room, True, self.token_hash(), self.online_event())
            batch, _version, _online = await longpoll.look(tenant.ref, look)
            if batch:
                await self.in_tenant(service.record_offers, device_id, [item["id"] for item in batch])
                now = utcnow()
                for item in batch:
                    offers[item["id"]] = Offer(recipient_id=item["id"], device_id=device_id, offered_at=now)
                items.extend(batch)
        items.sort(key=lambda item: item["id"], reverse=order == "lifo")
        self.write_json([service.app_message(item, offers[item["id"]], version) for item in items])

    async def patch(self):
        items = service.check_patch_items(self.json_any())
        now = utcnow()
        reports, acked, final = [], [], []
        for item in items:
            rid, item_reports, is_final = service.reports_from_app(item, now)
            if rid is None:
                continue  # not an id we handed out: ignored, as the app's own server does
            acked.append(rid)
            if is_final:
                final.append(rid)
            reports.extend(item_reports)
        device_id = self.principal.id
        if reports:
            await apply_reports(self.tenant.ref, ReportBatch(self.platform, self.tenant, device_id, reports,
                                                             self.online_event()))
        if acked:
            await self.in_tenant(service.acknowledge, device_id, acked, final)
        self.no_content()


class EventsHandler(MobileHandler):
    """``GET /events``: the server-sent event stream (see :mod:`.events`)."""

    permission = devices.DEVICE_PERMISSION
    _stream = None

    def on_connection_close(self):
        if self._stream is not None:
            self._stream.closed()

    async def get(self):
        platform, tenant, device_id, token_hash = self.platform, self.tenant, self.principal.id, self.token_hash()
        version, online = self.version, self.online_event()

        def contact():
            row = service.mobile_row(device_id)
            device = devices.require_usable(devices.locked_many([device_id]).get(device_id), token_hash)
            service.note_version(device_id, version)
            if devices.note_contacts([device]).get(device_id):
                devices.announce_online(platform, tenant, device, online)
            return service.take_exports(device_id) if row.export_pending else []

        exports = await self.in_tenant(contact)
        request = detach(self)
        if request is None:
            self._stream = request = events.InHandler(self)
        if not request.open_stream("text/event-stream; charset=utf-8", events.HEADERS):
            return
        events.Stream(platform, tenant, device_id, request, token_hash).tell_exports(exports)
        if isinstance(request, events.InHandler):
            await request.ended()


class SettingsHandler(MobileHandler):
    """``GET /settings``: the device's settings as the app imports them."""

    permission = devices.DEVICE_PERMISSION

    async def get(self):
        platform, device_id = self.platform, self.principal.id

        def read():
            row = service.mobile_row(device_id)
            return service.app_settings(Device.get_by_id(device_id), service.signing_key(platform, row))

        self.set_header("Cache-Control", "no-store")
        self.write_json(await self.in_tenant(read))


class WebhooksHandler(MobileHandler):
    """``GET /webhooks``: where the app posts inbound SMS and status changes: our ingest URL."""

    permission = devices.DEVICE_PERMISSION

    async def get(self):
        await self.in_tenant(service.mobile_row, self.principal.id)
        self.write_json(service.app_webhooks(self.settings_.public_url(self.tenant.slug), self.principal.id))


STATUS_EVENTS = {"sms:sent": ("sent", "sentAt"), "sms:delivered": ("delivered", "deliveredAt"),
                 "sms:failed": ("failed", "failedAt")}


class IngestHandler(MobileHandler):
    """``POST /ingest/{device_id}``: the app's signed webhooks (``GET /webhooks`` lists this URL).

    Inbound SMS are stored once per ``(device, payload.messageId)``; status events are reports,
    as ``PATCH /message`` makes them (a second channel: whichever arrives first applies)."""

    permission = PUBLIC

    async def prepare_user(self):
        self.principal = None  # the signature is the credential

    async def post(self, raw_id):
        device_id = parse_id(raw_id, "device")
        platform, tenant, raw = self.platform, self.tenant, self.request.body or b""

        def key():
            row = service.mobile_row(device_id) if Device.get_or_none(
                (Device.id == device_id) & Device.enabled & Device.removed_at.is_null()) else None
            return None if row is None else service.signing_key(platform, row)

        try:
            signing_key = await self.in_tenant(key)
        except Problem:
            signing_key = None
        if signing_key is None:
            raise service.unauthorized(N_("There is no such app device here (or it was removed)."))
        service.verify_signature(signing_key, raw, self.request.headers.get("X-Timestamp"),
                                 self.request.headers.get("X-Signature"))
        body = self.json_body()
        event, payload = body.get("event"), body.get("payload")
        if not isinstance(payload, dict):
            raise Problem(400, "validation-failed", N_("payload must be an object."),
                          errors=[{"field": "payload", "message": N_("must be an object")}])
        if event == "sms:received":
            await self.received(device_id, payload)
        elif event in STATUS_EVENTS:
            await self.status(device_id, event, payload)
        self.no_content()

    async def received(self, device_id: int, payload: dict) -> None:
        pid, sender, text = payload.get("messageId"), payload.get("phoneNumber"), payload.get("message")
        errors = []
        if not (isinstance(pid, str) and 1 <= len(pid) <= 200):
            errors.append({"field": "payload.messageId", "message": N_("the phone's message id is required")})
        if not (isinstance(sender, str) and 1 <= len(sender) <= 64):
            errors.append({"field": "payload.phoneNumber", "message": N_("the sender is required")})
        if not (isinstance(text, str) and len(text) <= 10_000):
            errors.append({"field": "payload.message", "message": N_("must be text up to 10,000 characters")})
        slot = payload.get("simNumber")
        if not (isinstance(slot, int) and not isinstance(slot, bool) and 1 <= slot <= 4):
            slot = None
        if errors:
            raise Problem(400, "validation-failed", N_("The received message is malformed; nothing "
                                                       "was stored."),
                          errors=errors)
        item = {"id": pid, "from": sender, "body": text, "sim_slot": slot,
                "received_at": parse_iso(payload.get("receivedAt")) or utcnow()}
        platform, tenant = self.platform, self.tenant

        def store():
            new, _dupes = devices.store_inbound(device_id, [item])
            device = Device.get_by_id(device_id)
            for row in new:
                platform.registry.hook.smsgw_device_inbound(tenant=tenant, device=device, message=row)
            if devices.touch(device_id):
                devices.announce_online(platform, tenant, device, None)

        await self.in_tenant(store)

    async def status(self, device_id: int, event: str, payload: dict) -> None:
        raw = payload.get("messageId")
        if not (isinstance(raw, str) and raw.isdigit() and len(raw) <= 18):
            return  # not a message we handed out
        state, field = STATUS_EVENTS[event]
        at = parse_iso(payload.get(field)) or utcnow()
        reason = payload.get("reason")
        report = {"message_id": int(raw), "state": state, "at": at,
                  "error_code": (reason[:100] if isinstance(reason, str) and reason else "FAILED")
                  if state == "failed" else None}
        await apply_reports(self.tenant.ref, ReportBatch(self.platform, self.tenant, device_id, [report]))
        if state in ("sent", "delivered", "failed"):
            await self.in_tenant(service.acknowledge, device_id, [int(raw)], [int(raw)])


ROUTES = [
    (r"/api/mobile/v1/device", DeviceHandler),
    (r"/api/mobile/v1/user/code", UserCodeHandler),
    (r"/api/mobile/v1/user/password", PasswordHandler),
    (r"/api/mobile/v1/message", MessagesHandler),
    (r"/api/mobile/v1/events", EventsHandler),
    (r"/api/mobile/v1/settings", SettingsHandler),
    (r"/api/mobile/v1/webhooks", WebhooksHandler),
    (r"/api/mobile/v1/ingest/([^/]+)", IngestHandler),
]
