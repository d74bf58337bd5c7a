"""``/3rdparty/v1``: the SMS Gateway for Android third-party API, served from our own services.

Every handler answers on tenant hosts and, with a token that names the tenant, on
the base domain (``token_tenant_ok``). See ``docs/compat.md`` for what maps and
what does not.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import secrets
import string
import time

from core import tokenformat
from core.clock import utcnow
from core.db import app_db, connection
from core.events import AuditEvent, emit
from core.permissions import AUTHENTICATED, PUBLIC
from core.web.auth_pages import audit as auth_audit, client_ip
from core.web.params import is_digits, parse_id, whole_number
from core.web.problem import Problem

from addons.devices import service as device_service
from addons.devices.models import Device, DeviceInbound
from addons.messaging.models import Recipient
from addons.messaging.transitions import transition_all
from addons.webhooks import service as webhook_service
from addons.webhooks.models import Endpoint

from . import messages, tokens
from .base import CompatHandler, NotImplementedHandler
from core.i18n import N_

PREFIX = r"/3rdparty/v1"


def _iso(t):
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).isoformat()


class AuditMixin:
    def audit(self, action: str, target: str = "", **details) -> AuditEvent:
        p = self.principal
        return AuditEvent(action, self.tenant.id, self.tenant.slug, actor=p.actor if p else "",
                          actor_name=(p.email or p.name) if p else "", target=target,
                          ip=client_ip(self),
                          user_agent=self.request.headers.get("User-Agent", "")[:300],
                          details={"via": "compat", **details})


# -- messages ---------------------------------------------------------------------------

def _flag(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


class MessagesHandler(CompatHandler):
    permissions = {"POST": "messages:send", "GET": "messages:read"}
    max_body_size = 2 * 1024 * 1024
    body_schemas = {"POST": "compatSendMessage"}

    async def post(self):
        body = self.json_body()
        skip = _flag(self.get_query_argument("skipPhoneValidation", ""))
        within = whole_number(self.get_query_argument("deviceActiveWithin", "0") or "0",
                              N_("deviceActiveWithin must be a number of hours (0 for any)."), 6, high=24 * 366)
        clean = messages.translate(body, self.tenant.default_region, skip)
        state, keys = await self.in_tenant(messages.store, self.tenant, clean, self.principal.actor, within)
        self.platform.wake_now(*keys)
        self.write_json(state, 202)

    async def get(self):
        limit, offset = self.paging()
        args = {k: self.get_query_argument(k, None) for k in ("from", "to", "state", "deviceId", "sort")}
        items, total = await self.in_tenant(messages.listing, args, limit, offset)
        self.write_list(items, total)


class MessageHandler(CompatHandler):
    permissions = {"GET": "messages:read", "DELETE": "messages:send"}

    async def get(self, raw_id):
        self.write_json(await self.in_tenant(lambda: messages.states([messages.find(raw_id)])[0]))

    async def delete(self, raw_id):
        tenant = self.tenant

        def cancel():
            m = messages.find(raw_id)
            pending = (Recipient.select().where((Recipient.message == m.id) & (Recipient.state == "pending"))
                       .order_by(Recipient.id).for_update())
            n = transition_all(tenant, pending, "cancelled", messages.SOURCE)
            left = {r.state for r in Recipient.select(Recipient.state).where(Recipient.message == m.id)}
            return n, left

        cancelled, left = await self.in_tenant(cancel)
        if not cancelled and "cancelled" not in left:
            shown = ", ".join(sorted(messages.STATE_OUT[s] for s in left)) or "empty"
            raise Problem(409, "not-cancellable", N_("Nothing to cancel: the message is already %(state)s. Only "
                                                     "messages no phone has taken yet (Pending) can be cancelled."),
                          args={"state": shown})
        self.set_status(204)
        self.finish()


# -- inbox ----------------------------------------------------------------------------------

INBOX_TYPES = ("SMS", "DATA_SMS", "MMS", "MMS_DOWNLOADED")


def inbox_json(m: DeviceInbound, device: Device) -> dict:
    number = next((s.get("number") or None for s in (device.sims or [])
                   if isinstance(s, dict) and s.get("slot") == m.sim_slot), None)
    return {"id": str(m.id), "type": "SMS", "sender": m.sender, "contentPreview": m.body,
            "createdAt": _iso(m.received_at), "recipient": number, "simNumber": m.sim_slot,
            "deviceId": str(m.device_id)}


class InboxHandler(CompatHandler):
    permissions = {"GET": "messages:read"}

    async def get(self):
        limit, offset = self.paging()
        kind = self.get_query_argument("type", None)
        if kind is not None and kind not in INBOX_TYPES:
            raise Problem(400, "invalid-parameter", N_("type must be one of %(types)s."),
                          args={"types": ", ".join(INBOX_TYPES)})
        since = self.get_query_argument("from", None)
        until = self.get_query_argument("to", None)
        device = self.get_query_argument("deviceId", None)
        since = messages.parse_time(since, "from") if since else None
        until = messages.parse_time(until, "to") if until else None
        device_id = messages.parse_device_id(device, "deviceId")
        if kind not in (None, "SMS"):  # we receive plain SMS only
            self.write_list([], 0)
            return

        def load():
            q = DeviceInbound.select(DeviceInbound, Device).join(Device)
            if since:
                q = q.where(DeviceInbound.received_at >= since)
            if until:
                q = q.where(DeviceInbound.received_at < until)
            if device_id is not None:
                q = q.where(DeviceInbound.device == device_id)
            total = q.count()
            rows = q.order_by(DeviceInbound.received_at.desc(), DeviceInbound.id.desc()).offset(offset).limit(limit)
            return [inbox_json(m, m.device) for m in rows], total

        items, total = await self.in_tenant(load)
        self.write_list(items, total)


class InboxRefreshHandler(NotImplementedHandler):
    """``POST /inbox/refresh`` and ``POST /messages/inbox/export``."""

    refusal = N_("Asking phones to re-read their inbox (refresh / export) is not supported by this gateway. Phones "
                 "upload every SMS they receive as it arrives: read them with GET /inbox, or subscribe to "
                 "sms:received with POST /webhooks.")
    post = NotImplementedHandler.refuse


class AttachmentHandler(NotImplementedHandler):
    refusal = N_("MMS attachments are not supported by this gateway. Only SMS are received here.")
    get = NotImplementedHandler.refuse


# -- webhooks ---------------------------------------------------------------------------------

EVENTS = {"sms:received": "sms:received", "sms:sent": "sms:sent", "sms:delivered": "sms:delivered",
          "sms:failed": "sms:failed", "sms:cancelled": "sms:cancelled", "system:ping": "system:ping"}
UNSUPPORTED_EVENTS = ("sms:data-received", "mms:received", "mms:downloaded", "app:started", "sms:batch:received",
                      "sms:batch:data-received", "mms:batch:received", "mms:batch:downloaded")
ID_ALPHABET = string.ascii_letters + string.digits
THEIRS = {ours: theirs for theirs, ours in EVENTS.items()}


def webhook_json(ep: Endpoint) -> dict:
    event = next((THEIRS[e] for e in ep.events if e in THEIRS), ep.events[0] if ep.events else None)
    return {"id": ep.compat_id, "url": ep.url, "event": event,
            "deviceId": str(ep.device_id) if ep.device_id else None}


def _webhook_error(exc: webhook_service.WebhookError) -> Problem:
    return Problem.refused(400 if exc.status == 422 else exc.status, exc.code, exc, errors=exc.errors or None)


class WebhooksHandler(AuditMixin, CompatHandler):
    permissions = {"GET": "webhooks:read", "POST": "webhooks:write"}

    async def get(self):
        rows = await self.in_tenant(lambda: [webhook_json(e) for e in Endpoint.select().where(
            Endpoint.compat_id.is_null(False)).order_by(Endpoint.id)])
        self.write_list(rows)

    async def post(self):
        body = self.json_body()
        url, event = body.get("url"), body.get("event")
        if not isinstance(url, str) or not url:
            raise messages.bad(N_("url is required."), "url")
        if not isinstance(event, str):
            raise messages.bad(N_("event must be one of %(events)s."), "event", {"events": ", ".join(EVENTS)})
        if event in UNSUPPORTED_EVENTS:
            raise messages.bad(N_("The event %(event)s is not supported by this gateway (supported: %(events)s)."),
                               "event", {"event": event, "events": ", ".join(EVENTS)})
        if event not in EVENTS:
            raise messages.bad(N_("event must be one of %(events)s."), "event", {"events": ", ".join(EVENTS)})
        hook_id = body.get("id")
        if hook_id in (None, ""):
            hook_id = "".join(secrets.choice(ID_ALPHABET) for _ in range(21))
        elif not isinstance(hook_id, str) or not messages.ID_RE.match(hook_id):
            raise messages.bad(N_("id must be 1 to 100 characters without '/', spaces or control characters."), "id")
        device_id = messages.parse_device_id(body.get("deviceId"), "deviceId")
        ours = EVENTS[event]
        checked = await webhook_service.check_url(url)  # before the transaction: DNS never runs inside one

        def save():
            if device_id is not None and not Device.select().where(
                    (Device.id == device_id) & Device.removed_at.is_null()).exists():
                raise messages.bad(N_("deviceId %(id)s is not one of your devices."), "deviceId", {"id": device_id})
            ep = Endpoint.select().where(Endpoint.compat_id == hook_id).for_update().first()
            if ep is None:
                ep, secret = webhook_service.create_endpoint(checked, [ours], f"Through the compat API ({event})",
                                                             device_id, compat_id=hook_id)
                return webhook_json(Endpoint.get_by_id(ep.id)), secret, True
            # The same id again replaces that webhook, as the original API does.
            webhook_service.validate(url, [ours], checked if url != ep.url else None)
            Endpoint.update(url=url, events=[ours], device_id=device_id, updated_at=utcnow()).where(
                Endpoint.id == ep.id).execute()
            return webhook_json(Endpoint.get_by_id(ep.id)), None, False

        try:
            out, secret, created = await self.in_tenant(
                save, audit=lambda done: self.audit("webhook.created" if done[2] else "webhook.updated",
                                                    f"webhook:{hook_id}"))
        except webhook_service.WebhookError as exc:
            raise _webhook_error(exc) from None
        if secret:
            # Shown once. We sign the Standard Webhooks way (webhook-id, webhook-timestamp, webhook-signature).
            out["secret"] = secret
            out["signature"] = "standard-webhooks"
            self.set_header("Cache-Control", "no-store")
        self.write_json(out, 201)


class WebhookHandler(AuditMixin, CompatHandler):
    permissions = {"DELETE": "webhooks:write"}

    async def delete(self, hook_id):
        if not messages.ID_RE.match(hook_id):
            raise Problem(404, "not-found", N_("There is no webhook with this id here."))
        def remove():
            if not Endpoint.delete().where(Endpoint.compat_id == hook_id).execute():
                raise Problem(404, "not-found", N_("There is no webhook with this id here."))

        await self.in_tenant(remove, audit=self.audit("webhook.deleted", f"webhook:{hook_id}"))
        self.set_status(204)
        self.finish()


# -- devices ----------------------------------------------------------------------------------

def device_json(d: Device) -> dict:
    return {"id": str(d.id), "name": d.name, "createdAt": _iso(d.created_at),
            "updatedAt": _iso(max(t for t in (d.created_at, d.last_seen_at) if t is not None)),
            "deletedAt": _iso(d.removed_at), "lastSeen": _iso(d.last_seen_at)}


class DevicesHandler(CompatHandler):
    permissions = {"GET": "devices:read"}

    async def get(self):
        self.write_list(await self.in_tenant(lambda: [device_json(d) for d in device_service.active_devices()]))


class DeviceHandler(AuditMixin, CompatHandler):
    permissions = {"DELETE": "devices:write"}

    async def delete(self, raw_id):
        device_id = parse_id(raw_id, "device")
        tenant, platform = self.tenant, self.platform

        def remove():
            device_service.remove(platform, tenant, device_id)
            platform.credentials_changed(tenant.slug)  # its NOTIFY goes out with the commit

        try:
            await self.in_tenant(remove, audit=self.audit("device.removed", f"device:{device_id}"))
        except device_service.DeviceError as exc:
            raise Problem.refused(exc.status, exc.code, exc) from None
        self.platform.wake_now(device_service.wake_key(self.tenant.slug, device_id))
        self.set_status(204)
        self.finish()


# -- health ---------------------------------------------------------------------------------------

def _version() -> tuple[str, int]:
    try:
        version = importlib.metadata.version("smsgw")
    except importlib.metadata.PackageNotFoundError:
        version = "0.0.0"
    parts = [int(p) if is_digits(p) else 0 for p in version.split(".")[:3]] + [0, 0, 0]
    return version, parts[0] * 10000 + parts[1] * 100 + parts[2]


VERSION, RELEASE_ID = _version()


class HealthHandler(CompatHandler):
    """Their HealthResponse: ``{status: pass|fail, version, releaseId, checks}``. Public; credentials ignored."""

    scope = "any"
    permission = PUBLIC
    probe = "ready"
    _cache: dict = {}

    async def prepare(self):  # no tenant lookup, no authentication: a probe must not depend on them
        pass

    async def get(self):
        if self.probe == "live":
            checks = {"process": {"status": "pass", "description": "The web process answers."}}
        else:
            cached = self._cache.get("checks")
            if cached and cached[0] > time.monotonic():
                checks = cached[1]
            else:
                checks = await self.run_db(self._check)
                self._cache["checks"] = (time.monotonic() + 2.0, checks)
        ok = all(c["status"] == "pass" for c in checks.values())
        self.set_header("Cache-Control", "no-store")
        self.write_json({"status": "pass" if ok else "fail", "version": VERSION, "releaseId": RELEASE_ID,
                         "checks": checks}, 200 if ok else 503)

    def _check(self) -> dict:
        start = time.monotonic()
        try:
            with connection():
                app_db.execute_sql("SELECT 1")
        except Exception as exc:
            return {"database": {"status": "fail", "description": f"The database does not answer "
                                                                  f"({exc.__class__.__name__})."}}
        checks = {"database": {"status": "pass", "description": "The database answers.",
                               "observedValue": int((time.monotonic() - start) * 1000), "observedUnit": "ms"}}
        try:
            m = self.platform.migration_status()
            lagging = int(m["tenants_lagging"]) + len(m["public_pending"])
            checks["migrations"] = {"status": "pass" if lagging == 0 else "fail",
                                    "description": "Every migration is applied." if lagging == 0 else
                                    "Migrations are pending: run `smsgw migrate`.",
                                    "observedValue": lagging, "observedUnit": "pending"}
        except Exception as exc:
            checks["migrations"] = {"status": "fail", "description": f"Cannot read migration state "
                                                                     f"({exc.__class__.__name__})."}
        return checks


class LiveHandler(HealthHandler):
    probe = "live"


# -- tokens -------------------------------------------------------------------------------------------

class TokenHandler(AuditMixin, CompatHandler):
    """``POST /auth/token``: an access JWT (≤ 900 s) with scopes, and a refresh token."""

    permissions = {"POST": AUTHENTICATED}

    async def post(self):
        p = self.principal
        if p.via == "jwt" and not p.can("tokens:manage"):
            raise Problem(403, "forbidden", N_("An access token cannot mint new tokens unless it has the "
                             "tokens:manage scope; use your API token or email and password."))
        body = self.json_body(required=False)
        plan = await self.in_tenant(tokens.plan_issue, self.tenant.slug, p, body.get("scopes"), body.get("ttl"),
                                    audit=lambda plan: self.audit("token.issued", f"jwt:{plan['jti']}",
                                                                  scope=plan["scope"], ttl=plan["ttl"]))
        out = await self.run_db(tokens.sign, self.platform, self.tenant.slug, plan)
        self.set_header("Cache-Control", "no-store")
        self.write_json(out, 201)


class RefreshHandler(AuditMixin, CompatHandler):
    """``POST /auth/token/refresh`` with ``Authorization: Bearer <refresh token>``."""

    permission = PUBLIC

    async def prepare_user(self):
        scheme, _, token = self.request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        parsed = tokenformat.parse(token, "sgr") if scheme.lower() == "bearer" else None
        if parsed is None:
            raise Problem(401, "invalid-refresh-token",
                          N_("Send the refresh token you were given as 'Authorization: Bearer <refresh token>'."),
                          headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        await self._tenant_for_token(parsed[1])
        self.refresh_token = token

    async def post(self):
        plan = await self.in_tenant(tokens.plan_refresh, self.tenant.slug, self.refresh_token)
        if "error" in plan:
            await self.run_db(emit, self.platform, auth_audit(self, "refresh.refused", detail=str(plan["error"])))
            raise Problem.refused(401, "invalid-refresh-token", plan["error"],
                          headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        out = await self.run_db(tokens.sign, self.platform, self.tenant.slug, plan)
        self.set_header("Cache-Control", "no-store")
        self.write_json(out)


class RevokeHandler(AuditMixin, CompatHandler):
    """``DELETE /auth/token/{jti}``: your own tokens, or any with tokens:manage (the Customer)."""

    permissions = {"DELETE": AUTHENTICATED}

    async def delete(self, jti):
        if not messages.ID_RE.match(jti):
            raise Problem(404, "not-found", N_("There is no token with this id here."))
        def revoke():
            if not tokens.revoke(self.principal, jti):
                raise Problem(404, "not-found", N_("There is no token with this id that you may revoke."))

        await self.in_tenant(revoke, audit=self.audit("token.revoked", f"jwt:{jti}"))
        self.set_status(204)
        self.finish()


# -- not offered -----------------------------------------------------------------------------------------

class SettingsHandler(NotImplementedHandler):
    refusal = N_("Reading or changing phone settings through this API is not supported by this gateway. Use the "
                 "dashboard (Devices) or PATCH /api/v1/devices/{id} with settings.")
    get = put = patch = NotImplementedHandler.refuse


class LogsHandler(NotImplementedHandler):
    refusal = N_("The device log is not supported by this gateway. Message history is in GET /messages/{id} "
                 "(states) and in the dashboard.")
    get = NotImplementedHandler.refuse


ROUTES = [
    (PREFIX + r"/messages", MessagesHandler),
    (PREFIX + r"/messages/inbox/export", InboxRefreshHandler),
    (PREFIX + r"/messages/([^/]+)", MessageHandler),
    (PREFIX + r"/inbox", InboxHandler),
    (PREFIX + r"/inbox/refresh", InboxRefreshHandler),
    (PREFIX + r"/inbox/([^/]+)/attachments/([^/]+)", AttachmentHandler),
    (PREFIX + r"/webhooks", WebhooksHandler),
    (PREFIX + r"/webhooks/([^/]+)", WebhookHandler),
    (PREFIX + r"/devices", DevicesHandler),
    (PREFIX + r"/devices/([^/]+)", DeviceHandler),
    (PREFIX + r"/health", HealthHandler),
    (PREFIX + r"/health/ready", HealthHandler),
    (PREFIX + r"/health/startup", HealthHandler),
    (PREFIX + r"/health/live", LiveHandler),
    (PREFIX + r"/auth/token", TokenHandler),
    (PREFIX + r"/auth/token/refresh", RefreshHandler),
    (PREFIX + r"/auth/token/([^/]+)", RevokeHandler),
    (PREFIX + r"/settings", SettingsHandler),
    (PREFIX + r"/logs", LogsHandler),
]
