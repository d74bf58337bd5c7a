"""Device lifecycle inside one tenant: pairing, tokens, settings, contact and health.

Everything here runs inside the tenant's transaction unless it says otherwise.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets

from core import due, limits, tokenformat
from core.clock import utcnow
from core.db import app_db
from core.permissions import Principal
from core.web.problem import Problem, Refusal

from . import settings as device_settings
from .models import Device, DeviceInbound, PairingCode
from core.i18n import N_

PAIRING_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud and typed on phones
PAIRING_TTL = dt.timedelta(minutes=10)
# A phone with no contact for OFFLINE_AFTER is offline (SMSGW_DEVICE_OFFLINE_SECONDS, see configure).
OFFLINE_AFTER = dt.timedelta(seconds=120)  # long-poll cap (60 s) + a generous margin
MAX_WAIT = 60  # the longest long poll, in seconds: at most half of OFFLINE_AFTER
DEVICE_PERMISSION = "device:protocol"


class DeviceError(Refusal):
    """Refused; the message says why and what to do."""

    def __init__(self, message: str, status: int = 400, code: str = "device-error", args: dict | None = None):
        super().__init__(message, args)
        self.status = status
        self.code = code


def wake_key(tenant_slug: str, device_id: int) -> str:
    return f"{tenant_slug}:device:{device_id}"


def settings_wake_key(tenant_slug: str, device_id: int) -> str:
    """Woken when the device's settings change (an event stream tells its phone; a long poll learns
    it from ``settings_version``)."""
    return f"{tenant_slug}:device:{device_id}:settings"


def _hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


def check_device_limit(platform, tenant) -> None:
    """Inside the tenant transaction, before a new phone is paired (or a code for one made): the
    workspace's limit on devices (``smsgw_limit_check``, e.g. its plan), serialized per workspace."""
    limits.check(platform, tenant, "device", Device.select().where(Device.removed_at.is_null()).count)


def create_pairing_code(created_by: str, repair_device_id: int | None = None, *,
                        limit=None) -> tuple[str, dt.datetime]:
    """A one-time code. With ``repair_device_id`` (the Customer's "Re-pair this phone" on that
    device's page) the code re-pairs that device; without it, it pairs a new one, after
    ``limit()`` (:func:`check_device_limit`) if given."""
    if repair_device_id is not None and Device.get_or_none(
            (Device.id == repair_device_id) & Device.removed_at.is_null()) is None:
        raise DeviceError(N_("There is no such device here."), 404, "not-found")
    if repair_device_id is None and limit is not None:
        limit()
    code = "".join(secrets.choice(PAIRING_ALPHABET) for _ in range(8))
    expires = utcnow() + PAIRING_TTL
    PairingCode.create(code_hash=_hash_code(code), expires_at=expires, created_by=created_by,
                       repair_device_id=repair_device_id)
    return code, expires


@dataclasses.dataclass(frozen=True)
class PairingStatus:
    """What the pairing page says about a code it made: still waiting, paired (the device), or
    expired unused. ``found`` is false when the member made no such code."""

    found: bool
    device: Device | None = None
    expired: bool = False

    @property
    def version(self) -> str:
        return f"{int(self.found)}-{self.device.id if self.device else 0}-{int(self.expired)}"


def parse_pairing_watch(raw: str) -> dt.datetime | None:
    """The pairing page's ``watch`` value: a code's expiry time (ISO 8601 with its offset), or None."""
    if not raw or len(raw) > 40:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def pairing_status(created_by: str, expires_at: dt.datetime) -> PairingStatus:
    """The code ``created_by`` made that expires at ``expires_at``: only its maker may watch it."""
    row = PairingCode.select().where((PairingCode.created_by == created_by)
                                     & (PairingCode.expires_at == expires_at)).first()
    if row is None:
        return PairingStatus(found=False)
    if row.device_id is not None:
        return PairingStatus(found=True, device=Device.get_or_none(Device.id == row.device_id))
    return PairingStatus(found=True, expired=row.expires_at <= utcnow())


def register(tenant_slug: str, code: str, info: dict, *, limit=None) -> tuple[Device, str, bool]:
    """Spend a pairing code: pair a new phone, or re-pair the device the code was made for.

    Returns the device, its token and whether an existing device's token was replaced (the
    caller then tells every process: ``platform.credentials_changed``). What the phone says
    about itself (its ``device_uid``) never selects an existing device: a code pairs a *new*
    device unless the Customer made it on a device's page to re-pair that one, and a removed
    device never comes back.
    """
    if not isinstance(code, str) or len(code.strip()) != 8:
        raise DeviceError(N_("The pairing code has 8 characters; check it and try again."), 400, "invalid-code")
    row = PairingCode.select().where(PairingCode.code_hash == _hash_code(code)).for_update().first()
    if row is None:
        raise DeviceError(N_("This pairing code is not valid. Create a new one in the dashboard."), 400, "invalid-code")
    if row.used_at is not None:
        raise DeviceError(N_("This pairing code was already used. Create a new one in the dashboard."), 400,
                          "code-used")
    if row.expires_at <= utcnow():
        raise DeviceError(N_("This pairing code has expired (codes last 10 minutes). Create a new one."), 400,
                          "code-expired")
    uid = str(info.get("device_uid") or "").strip()
    if not 1 <= len(uid) <= 200:
        raise DeviceError(N_("device_uid is required (1 to 200 characters)."), 422, "validation-failed")
    token = tokenformat.generate("sgd", tenant_slug)
    fields = dict(device_uid=uid, model=_s(info.get("model"), 100), os_version=_s(info.get("os_version"), 50),
                  app_version=_s(info.get("app_version"), 50), sims=_sims(info.get("sims")),
                  token_hash=tokenformat.digest(token), token_hint=tokenformat.hint(token))
    repaired = row.repair_device_id is not None
    if repaired:  # keeps the device's name, settings, enabled state and history; replaces its token
        device = Device.select().where((Device.id == row.repair_device_id)
                                       & Device.removed_at.is_null()).for_update().first()
        if device is None:
            raise DeviceError(N_("The device this code was made for has been removed. Pair the phone as a new "
                                 "device instead."), 400, "device-removed")
        Device.update(**fields).where(Device.id == device.id).execute()
        device = Device.get_by_id(device.id)
    else:
        if limit is not None:  # a new phone: the workspace's limit on devices (check_device_limit)
            limit()
        name = _s(info.get("name"), 100) or fields["model"] or "Phone"
        device = Device.create(name=name, settings=device_settings.merged({}), **fields)
    PairingCode.update(used_at=utcnow(), device_id=device.id).where(PairingCode.code_hash == row.code_hash).execute()
    return device, token, repaired


def _s(value, limit: int) -> str:
    return str(value).strip()[:limit] if isinstance(value, (str, int, float)) else ""


def _sims(value) -> list:
    out = []
    if isinstance(value, list):
        for item in value[:4]:
            if isinstance(item, dict) and isinstance(item.get("slot"), int) and 1 <= item["slot"] <= 4:
                out.append({"slot": item["slot"], "operator": _s(item.get("operator"), 60),
                            "number": _s(item.get("number"), 30)})
    return out


def revoke_all_tokens() -> int:
    """Every phone's token stops working (the workspace is being deleted); pairing again gives a new one."""
    return Device.update(token_hash=None).where(Device.token_hash.is_null(False)).execute()


def rotate_token(device_id: int, tenant_slug: str) -> str:
    token = tokenformat.generate("sgd", tenant_slug)
    Device.update(token_hash=tokenformat.digest(token), token_hint=tokenformat.hint(token)).where(
        Device.id == device_id).execute()
    return token


_DEVICE_PERMISSIONS = frozenset({DEVICE_PERMISSION})


# Plain SQL: every phone that comes back after a restart runs this once, and building it with
# peewee cost more than running it.
_DEVICE_BY_TOKEN = "SELECT id, name FROM devices WHERE token_hash = %s AND enabled AND removed_at IS NULL"


def principal_for_token(token: str, tenant_slug: str) -> Principal | None:
    row = app_db.execute_sql(_DEVICE_BY_TOKEN, (tokenformat.digest(token),)).fetchone()
    if row is None:
        return None
    return Principal(kind="device", id=row[0], role="device", tenant=tenant_slug,
                     permissions=_DEVICE_PERMISSIONS, name=row[1], via="device_token")


TOUCH_EVERY = dt.timedelta(seconds=15)  # between recorded contacts of one phone (an eighth of OFFLINE_AFTER)


def configure(offline_seconds: int) -> None:
    """Set how long a silent phone stays online (the platform's ``device_offline_seconds``).

    A phone that polls is seen at least every ``MAX_WAIT + TOUCH_EVERY`` (a poll waits at most
    ``MAX_WAIT``; a contact is recorded when the last recorded one is older than ``TOUCH_EVERY``),
    which stays below ``OFFLINE_AFTER`` with a quarter of it to spare for the network; so a phone
    is offline at most ``OFFLINE_AFTER`` after its last contact, and never while it polls."""
    global OFFLINE_AFTER, TOUCH_EVERY, MAX_WAIT
    OFFLINE_AFTER = dt.timedelta(seconds=offline_seconds)
    TOUCH_EVERY = dt.timedelta(seconds=min(15.0, offline_seconds / 8))
    MAX_WAIT = min(60, offline_seconds // 2)


_DEVICE_COLUMNS = tuple(Device._meta.sorted_field_names)
_LOCK_DEVICES = f"SELECT {', '.join(_DEVICE_COLUMNS)} FROM devices WHERE id = ANY (%s) ORDER BY id FOR UPDATE"


def locked_many(device_ids) -> dict[int, Device]:
    """Several device rows by id, locked for update in id order (one statement)."""
    rows = app_db.execute_sql(_LOCK_DEVICES, (sorted(set(device_ids)),)).fetchall()
    return {device.id: device for device in map(_from_row, rows)}


_CONTACT_COLUMNS = ("id", "name", "enabled", "online", "last_seen_at", "removed_at")


def read_for_contact(device_ids) -> dict[int, Device]:
    """Several devices by id, without a lock (a phone's poll must not queue behind its reports),
    loaded with only what a report needs: who it is, whether it may still talk to us
    (:func:`require_usable`) and when it was last seen (:func:`note_contact`). Their settings
    and SIMs (JSON, the costly part of a row to read) are left out."""
    rows = app_db.execute_sql(f"SELECT {', '.join(_CONTACT_COLUMNS)} FROM devices WHERE id = ANY (%s)",
                              (sorted(set(device_ids)),)).fetchall()
    return {row[0]: _from_row(row, _CONTACT_COLUMNS) for row in rows}


def _from_row(row, columns=_DEVICE_COLUMNS) -> Device:
    device = Device(**dict(zip(columns, row)))
    device._dirty.clear()
    return device


def require_usable(device: Device | None, token_hash: str | None = None) -> Device:
    """The device, if it may still talk to us; otherwise the phone is told to pair again.
    With ``token_hash`` (a poll checked before it waited), also that the device still has that token."""
    if device is None or not device.enabled or device.removed_at is not None:
        raise Problem(403, "device-disabled", N_("This device is disabled or removed; re-pair it."))
    if token_hash is not None and device.token_hash != token_hash:
        raise Problem(401, "invalid-token", N_("This device token was replaced; the phone must use "
                                               "its new one."),
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return device


def announce_online(platform, tenant, device: Device, audit_event) -> None:
    """Inside the transaction that recorded a contact which brought ``device`` back online: tell
    the addons (``smsgw_device_online``: webhooks records its event) and the audit trail, in that
    same transaction, so the phone's answer never turns into an error after its work committed,
    and the event is never lost after it (the contact is told only once)."""
    from core.events import emit_with_work

    from .health import on_online

    on_online(device.id)
    platform.registry.hook.smsgw_device_online(tenant=tenant, device=device)
    if audit_event is not None:
        emit_with_work(platform, audit_event)


def note_contact(device: Device) -> bool:
    """Record contact when it says something new (offline, or seen a while ago): a phone that
    polls and reports all the time then costs no write for it. True when it came online."""
    if device.online and device.last_seen_at is not None and utcnow() - device.last_seen_at <= TOUCH_EVERY:
        return False
    return touch(device.id)


def note_contacts(devices) -> dict[int, bool]:
    """:func:`note_contact` for several phones (each once, however often it appears), in id order:
    the order every transaction locks device rows in, so two cannot wait on each other.
    ``{device_id: came_online}``."""
    unique = {device.id: device for device in devices}
    return {device_id: note_contact(unique[device_id]) for device_id in sorted(unique)}


def touch(device_id: int, status: dict | None = None) -> bool:
    """Record contact (and heartbeat fields). Returns True when the device was offline before."""
    values = ["last_seen_at = now()", "online = true"]
    params: list = []
    for key in ("battery_level", "charging", "signal", "queue_length", "app_version"):
        if status and key in status:
            values.append(f"{key} = %s")
            params.append(status[key])
    row = app_db.execute_sql(
        f"UPDATE devices d SET {', '.join(values)} FROM (SELECT id, online AS was FROM devices WHERE id = %s "
        f"FOR UPDATE) o WHERE d.id = o.id RETURNING o.was", (*params, device_id)).fetchone()
    came_online = row is not None and not row[0]
    if came_online:  # from now on it may go silent: the due job looks when it would be overdue
        due.arm(OFFLINE_JOB, utcnow() + OFFLINE_AFTER)
    return came_online


def online_now(device: Device, now: dt.datetime | None = None) -> bool:
    """Online, and seen within the offline timeout: what pages show, so a phone that went silent
    reads as offline at its deadline even before the sweep (a due job) has marked it."""
    return bool(device.online and device.last_seen_at is not None
                and (now or utcnow()) - device.last_seen_at <= OFFLINE_AFTER)


def sweep_offline(now: dt.datetime | None = None, after: dt.timedelta | None = None) -> list[Device]:
    """Mark devices that missed their expected contact offline; return them."""
    cutoff = (now or utcnow()) - (after or OFFLINE_AFTER)
    ids = [r[0] for r in app_db.execute_sql(
        "UPDATE devices SET online = false WHERE online AND (last_seen_at IS NULL OR last_seen_at < %s) "
        "RETURNING id", (cutoff,)).fetchall()]
    return list(Device.select().where(Device.id.in_(ids))) if ids else []


OFFLINE_JOB = "devices.offline"


def next_offline_due(tenant=None) -> dt.datetime | None:
    """Inside the tenant transaction: when the online phone seen longest ago becomes overdue."""
    return app_db.execute_sql("SELECT min(coalesce(last_seen_at, now())) + %s FROM devices WHERE online",
                              (OFFLINE_AFTER,)).fetchone()[0]


def update_settings(device_id: int, patch: dict) -> Device:
    device = Device.select().where(Device.id == device_id).for_update().first()
    if device is None:
        raise DeviceError(N_("There is no such device here."), 404, "not-found")
    new = device_settings.validate(patch, device.settings)
    Device.update(settings=new, settings_version=Device.settings_version + 1).where(Device.id == device_id).execute()
    return Device.get_by_id(device_id)


def store_inbound(device_id: int, items: list[dict]) -> tuple[list[DeviceInbound], int]:
    """Insert new inbound SMS; the phone's own id makes retries harmless. Returns (new, duplicates)."""
    new, dupes = [], 0
    for item in items:
        row_id = (DeviceInbound.insert(device=device_id, phone_message_id=item["id"], sender=item["from"],
                                       body=item["body"], sim_slot=item.get("sim_slot"),
                                       received_at=item["received_at"])
                  .on_conflict_ignore().execute())
        if row_id:
            new.append(DeviceInbound.get_by_id(row_id))
        else:
            dupes += 1
    return new, dupes


def remove(platform, tenant, device_id: int) -> Device:
    """Remove a phone: its token stops working and its unreported work goes to the other phones.

    Inside the tenant transaction; call ``platform.credentials_changed`` and
    ``platform.wake_now(wake_key(...))`` after the commit.
    """
    device = Device.get_or_none((Device.id == device_id) & Device.removed_at.is_null())
    if device is None:
        raise DeviceError(N_("There is no such device here."), 404, "not-found")
    Device.update(removed_at=utcnow(), enabled=False, online=False, token_hash=None).where(
        Device.id == device_id).execute()
    from .health import on_removed

    on_removed(device_id)
    platform.registry.hook.smsgw_device_offline(tenant=tenant, device=device)
    platform.wake_on_commit(app_db, wake_key(tenant.slug, device_id))
    return device


def active_devices():
    return Device.select().where(Device.removed_at.is_null()).order_by(Device.id)
