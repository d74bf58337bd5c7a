"""Customer REST API for devices (``/api/v1/devices``): list, read, rename, enable/disable,
settings, remove, rotate token, and pairing codes."""

from __future__ import annotations

from core.web.base import ApiHandler
from core.web.params import parse_id
from core.web.problem import Problem

from . import service
from .models import Device
from .pairing import pairing_payload
from .service import DeviceError
from .settings import SettingsError, merged
from core.i18n import N_


def device_id_or_404(raw: str) -> int:
    return parse_id(raw, "device")


def get_device(device_id: int) -> Device:
    device = Device.get_or_none((Device.id == device_id) & Device.removed_at.is_null())
    if device is None:
        raise Problem(404, "not-found", N_("There is no such device here."))
    return device


def device_json(d: Device) -> dict:
    out = d.public()
    out["settings"] = merged(d.settings)
    return out


class DevicesHandler(ApiHandler):
    permissions = {"GET": "devices:read"}

    async def get(self):
        devices = await self.in_tenant(lambda: [device_json(d) for d in service.active_devices()])
        self.write_json({"devices": devices})


class DeviceHandler(ApiHandler):
    permissions = {"GET": "devices:read", "PATCH": "devices:write", "DELETE": "devices:write"}
    body_schemas = {"PATCH": "updateDevice"}

    async def get(self, raw_id):
        self.write_json(await self.in_tenant(lambda: device_json(get_device(device_id_or_404(raw_id)))))

    async def patch(self, raw_id):
        device_id = device_id_or_404(raw_id)
        body = self.json_body()
        name, enabled = body.get("name"), body.get("enabled")
        if name is not None and not name.strip():
            raise Problem(422, "validation-failed", N_("Some fields are invalid; nothing was changed."),
                          errors=[{"field": "name", "message": N_("must be 1 to 100 characters")}])

        def change():
            get_device(device_id)  # 404 for unknown, removed or other tenants' devices
            if "settings" in body:
                try:
                    service.update_settings(device_id, body["settings"])
                except SettingsError as exc:
                    raise Problem(422, "validation-failed", N_("Some settings are invalid; nothing "
                                                               "was changed."),
                                  errors=[dict(e, field="settings." + e["field"]) for e in exc.errors]) from None
                self.platform.wake_on_commit(Device._meta.database,
                                             service.settings_wake_key(self.tenant.slug, device_id))
            fields = {}
            if name is not None:
                fields["name"] = name.strip()
            if enabled is not None:
                fields["enabled"] = enabled
            if fields:
                Device.update(**fields).where(Device.id == device_id).execute()
            self.platform.wake_on_commit(Device._meta.database, service.wake_key(self.tenant.slug, device_id))
            if "enabled" in body:
                self.platform.credentials_changed(self.tenant.slug)  # its NOTIFY goes out with the commit
            return device_json(Device.get_by_id(device_id))

        result = await self.in_tenant(change, audit=audit_event(self, "device.updated", device_id, sorted(body)))
        self.platform.wake_now(service.wake_key(self.tenant.slug, device_id))
        if "settings" in body:
            self.platform.wake_now(service.settings_wake_key(self.tenant.slug, device_id))
        self.write_json(result)

    async def delete(self, raw_id):
        device_id = device_id_or_404(raw_id)

        def remove():
            service.remove(self.platform, self.tenant, device_id)
            self.platform.credentials_changed(self.tenant.slug)  # its NOTIFY goes out with the commit

        try:
            await self.in_tenant(remove, audit=audit_event(self, "device.removed", device_id))
        except DeviceError as exc:
            raise Problem.refused(exc.status, exc.code, exc) from None
        self.platform.wake_now(service.wake_key(self.tenant.slug, device_id))
        self.set_status(204)
        self.finish()


class DeviceTokenRotateHandler(ApiHandler):
    permissions = {"POST": "devices:write"}

    async def post(self, raw_id):
        device_id = device_id_or_404(raw_id)

        def rotate():
            get_device(device_id)
            token = service.rotate_token(device_id, self.tenant.slug)
            self.platform.credentials_changed(self.tenant.slug)  # its NOTIFY goes out with the commit
            return token

        token = await self.in_tenant(rotate, audit=audit_event(self, "device.token_rotated", device_id))
        self.set_header("Cache-Control", "no-store")
        self.write_json({"token": token,
                         "note": "The old token stopped working. Run `smsgw-companion set-token TOKEN` on the phone."})


class PairingCodeHandler(ApiHandler):
    permissions = {"POST": "devices:write"}

    async def post(self):
        code, expires = await self.in_tenant(service.create_pairing_code, self.principal.actor,
                                             limit=lambda: service.check_device_limit(self.platform, self.tenant),
                                             audit=audit_event(self, "device.pairing_code_created", None))
        self.set_header("Cache-Control", "no-store")
        self.write_json(pairing_payload(self.settings_.public_url(self.tenant.slug), code, expires), 201)


def audit_event(handler, action, device_id, fields=None):
    from core.events import AuditEvent

    return AuditEvent(action=action, tenant_id=handler.tenant.id, tenant_slug=handler.tenant.slug,
                      actor=handler.principal.actor, actor_name=handler.principal.email or handler.principal.name,
                      target=f"device:{device_id}" if device_id else "", ip=handler.request.remote_ip or "",
                      user_agent=handler.request.headers.get("User-Agent", "")[:300],
                      details={"fields": fields} if fields else {})


ROUTES = [
    (r"/api/v1/devices", DevicesHandler),
    (r"/api/v1/devices/pairing-codes", PairingCodeHandler),
    (r"/api/v1/devices/([^/]+)", DeviceHandler),
    (r"/api/v1/devices/([^/]+)/token", DeviceTokenRotateHandler),
]
