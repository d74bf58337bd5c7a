"""Dashboard pages: the fleet, pairing with a QR code, and one device with its settings."""

from __future__ import annotations

from core.bodyschema import public, request_schemas
from core.clock import utcnow
from core.events import emit
from core.db import app_db
from core.web.base import PageHandler
from core.web.live import answer_version, version_of, wants_version
from core.web.params import is_digits, number_or_none
from core.web.problem import Problem

from . import service
from .api import audit_event, device_id_or_404, get_device
from .models import Device, DeviceInbound
from .pairing import pairing_payload
from .settings import SCHEMA as SETTINGS_SCHEMA, SIM_MODES, SettingsError, merged
from core.i18n import N_


def fleet(tenant, registry):
    devices = list(service.active_devices())
    extra = {}
    for result in registry.hook.smsgw_device_counts(tenant=tenant):
        for device_id, counts in (result or {}).items():
            extra.setdefault(device_id, {}).update(counts)
    reasons = {}
    for result in registry.hook.smsgw_device_waiting_reasons(tenant=tenant):
        reasons.update(result or {})
    return devices, extra, reasons


def fleet_version(device_id: int | None = None) -> str:
    """The live version of the Devices page (or of one device's): what it shows of each phone,
    with whether it counts as online now (which changes with time alone)."""
    rows = app_db.execute_sql(
        "SELECT id, name, enabled, online, last_seen_at, battery_level, charging, signal, queue_length, sims::text "
        "FROM devices WHERE removed_at IS NULL AND (%s::bigint IS NULL OR id = %s) ORDER BY id",
        (device_id, device_id)).fetchall()
    now = utcnow()
    return version_of(rows, [service.online_now(Device(online=r[3], last_seen_at=r[4]), now) for r in rows])


class HealthPage(PageHandler):
    """A devices page: shows a phone online only while it is seen within the offline timeout, and
    has a live region (``?live=1`` answers its version)."""

    def render(self, template_name: str, **kwargs):
        kwargs.setdefault("is_online", service.online_now)
        super().render(template_name, **kwargs)


class DevicesPage(HealthPage):
    permission = "devices:read"

    async def get(self):
        if wants_version(self):
            answer_version(self, await self.in_tenant(fleet_version))
            return

        def load():
            return fleet(self.tenant, self.platform.registry), fleet_version()

        (devices, extra, reasons), version = await self.in_tenant(load)
        self.render("devices/list.html", devices=devices, extra=extra, reasons=reasons, now=utcnow(),
                    live_version=version)


class PairPage(PageHandler):
    """Pair a phone: a one-time code and its QR code, then a live region (``?watch=``, the code's
    expiry time, which the page shows anyway) that says when the phone has paired with it."""

    permissions = {"GET": "devices:write", "POST": "devices:write"}

    async def get(self):
        raw = self.get_query_argument("watch", "")
        watch = service.parse_pairing_watch(raw)
        if raw and watch is None:
            self.set_status(422)
            self.render("devices/pair.html", pairing=None, watch=None,
                        refusal=N_("This address does not name a pairing code. Create a new one."))
            return
        if watch is None:
            self.render("devices/pair.html", pairing=None, watch=None)
            return
        status = await self.in_tenant(service.pairing_status, self.principal.actor, watch)
        if wants_version(self):
            answer_version(self, status.version)
            return
        self.set_header("Cache-Control", "no-store")
        self.render("devices/pair.html", pairing=None, watch=raw, status=status)

    async def post(self):
        try:
            code, expires = await self.in_tenant(service.create_pairing_code, self.principal.actor,
                                                 limit=lambda: service.check_device_limit(self.platform, self.tenant))
        except Problem as exc:  # a limit of the workspace's plan (402): said on the page
            self.set_status(exc.status)
            self.render("devices/pair.html", pairing=None, watch=None, refusal=exc.detail)
            return
        await self.run_db(emit, self.platform, audit_event(self, "device.pairing_code_created", None))
        self.set_header("Cache-Control", "no-store")
        status = service.PairingStatus(found=True)
        self.render("devices/pair.html", watch=expires.isoformat(), status=status,
                    pairing=pairing_payload(self.settings_.public_url(self.tenant.slug), code, expires))


class DevicePage(HealthPage):
    permissions = {"GET": "devices:read", "POST": "devices:write"}

    async def get(self, raw_id):
        device_id = device_id_or_404(raw_id)
        if wants_version(self):
            answer_version(self, await self.in_tenant(fleet_version, device_id))
            return

        def load():
            device = get_device(device_id)
            inbound = list(DeviceInbound.select().where(DeviceInbound.device == device_id)
                           .order_by(DeviceInbound.id.desc()).limit(20))
            return device, inbound, fleet_version(device_id)

        device, inbound, version = await self.in_tenant(load)
        self.render("devices/detail.html", device=device, settings=merged(device.settings), inbound=inbound,
                    errors=[], sim_modes=SIM_MODES, pairing=None, live_version=version,
                    new_token=self.take_shown_once("device_token", f"/devices/{device_id}"))

    async def post(self, raw_id):
        device_id = device_id_or_404(raw_id)
        action = self.get_body_argument("action", "")
        key = service.wake_key(self.tenant.slug, device_id)
        new_token, errors = None, []
        if action in ("remove", "rotate"):
            device = await self.in_tenant(get_device, device_id)
            _ = self.gettext()[0]
            question, button, detail = ((_("Remove the phone “%(name)s”?"), _("Remove phone"),
                                         _("It can no longer fetch or send; its waiting messages go to your other "
                                           "phones. To use it again, pair it anew."))
                                        if action == "remove" else
                                        (_("Make a new token for the phone “%(name)s”?"), _("Make a new token"),
                                         _("The phone's current token stops working at once: the phone must be "
                                           "given the new one.")))
            if not self.confirmed(question % {"name": device.name}, button, f"/devices/{device_id}", detail):
                return
        if action == "rename":
            name = self.get_body_argument("name", "").strip()
            if not 1 <= len(name) <= 100:
                errors.append({"field": "name", "message": N_("must be 1 to 100 characters")})
            else:
                await self.in_tenant(lambda: (get_device(device_id),
                                              Device.update(name=name).where(Device.id == device_id).execute()))
        elif action in ("enable", "disable"):
            await self.in_tenant(lambda: (get_device(device_id), Device.update(enabled=action == "enable")
                                          .where(Device.id == device_id).execute()))
        elif action == "settings":
            patch = self.settings_from_form()
            errors = public(request_schemas(self.platform).component(SETTINGS_SCHEMA).errors(patch))
            try:
                if not errors:
                    settings_key = service.settings_wake_key(self.tenant.slug, device_id)
                    await self.in_tenant(lambda: (service.update_settings(device_id, patch),
                                                  self.platform.wake_on_commit(Device._meta.database, key),
                                                  self.platform.wake_on_commit(Device._meta.database,
                                                                               settings_key)))
                    self.platform.wake_now(settings_key)
            except SettingsError as exc:
                errors = exc.errors
        elif action == "rotate":
            new_token = await self.in_tenant(lambda: (get_device(device_id),
                                                      service.rotate_token(device_id, self.tenant.slug))[1])
        elif action == "repair":
            # A code bound to this device: pairing with it replaces this device's token and keeps its
            # history. Only this page makes such codes; an ordinary code always pairs a new device.
            try:
                code, expires = await self.in_tenant(service.create_pairing_code, self.principal.actor, device_id)
            except service.DeviceError as exc:
                raise Problem.refused(exc.status, exc.code, exc) from None
            await self.run_db(emit, self.platform, audit_event(self, "device.repair_code_created", device_id))
            device = await self.in_tenant(get_device, device_id)
            self.set_header("Cache-Control", "no-store")
            self.render("devices/detail.html", device=device, settings=merged(device.settings), inbound=[],
                        errors=[], sim_modes=SIM_MODES, new_token=None,
                        pairing=pairing_payload(self.settings_.public_url(self.tenant.slug), code, expires))
            return
        elif action == "remove":
            try:
                await self.in_tenant(service.remove, self.platform, self.tenant, device_id)
            except service.DeviceError as exc:
                raise Problem.refused(exc.status, exc.code, exc) from None
            await self.run_db(self.platform.credentials_changed, self.tenant.slug)
            self.platform.wake_now(key)
            await self.run_db(emit, self.platform, audit_event(self, "device.removed", device_id))
            self.flash("success", N_("The device was removed; its waiting messages go to your other phones."))
            self.redirect("/devices")
            return
        else:
            raise Problem(400, "invalid-action", N_("Unknown action."))
        if action in ("enable", "disable", "rotate"):
            await self.run_db(self.platform.credentials_changed, self.tenant.slug)
        self.platform.wake_now(key)
        if not errors:
            await self.run_db(emit, self.platform, audit_event(self, f"device.{action}", device_id))
        if new_token:  # shown on the page this redirect leads to: a reload makes no second token
            self.show_once("device_token", new_token, f"/devices/{device_id}")
            self.redirect(f"/devices/{device_id}", status=303)
            return
        if errors:
            device = await self.in_tenant(get_device, device_id)
            if errors:
                self.set_status(422)
            self.set_header("Cache-Control", "no-store")
            self.render("devices/detail.html", device=device, settings=merged(device.settings), inbound=[],
                        errors=errors, sim_modes=SIM_MODES, new_token=new_token, pairing=None,
                        field_labels=SETTING_LABELS)
            return
        self.flash("success", N_("Saved."))
        self.redirect(f"/devices/{device_id}")

    def settings_from_form(self) -> dict:
        def num(name):
            raw = self.get_body_argument(name, "0").strip() or "0"
            number = number_or_none(raw, 9)
            return raw if number is None else number

        return {
            "limits": {"per_minute": num("per_minute"), "per_hour": num("per_hour"), "per_day": num("per_day")},
            "delay": {"min_ms": num("delay_min_ms"), "max_ms": num("delay_max_ms")},
            "working_hours": {"enabled": self.get_body_argument("wh_enabled", "") == "1",
                              "start": self.get_body_argument("wh_start", "08:00"),
                              "end": self.get_body_argument("wh_end", "20:00"),
                              "timezone": self.get_body_argument("wh_timezone", "UTC").strip(),
                              "days": [int(d) for d in self.get_body_arguments("wh_days") if is_digits(d) and len(d) == 1] or [0, 1, 2, 3, 4, 5, 6]},
            "sim": {"mode": self.get_body_argument("sim_mode", "default"), "slot": num("sim_slot")},
        }


# The settings' fields as the form names them, for its errors ("Per minute: must be …", not "limits.per_minute").
SETTING_LABELS = {
    "limits.per_minute": N_("Sending limit per minute"), "limits.per_hour": N_("Sending limit per hour"),
    "limits.per_day": N_("Sending limit per day"), "delay.min_ms": N_("Shortest pause between messages"),
    "delay.max_ms": N_("Longest pause between messages"), "working_hours.start": N_("Working hours start"),
    "working_hours.end": N_("Working hours end"), "working_hours.timezone": N_("Time zone"),
    "working_hours.days": N_("Working days"), "sim.mode": N_("SIM card"), "sim.slot": N_("SIM slot"),
    "name": N_("Name"),
}


ROUTES = [
    (r"/devices", DevicesPage),
    (r"/devices/pair", PairPage),
    (r"/devices/([0-9]{1,18})", DevicePage),
]
