"""The app's side of a workspace: enrollment tokens, app devices, the shapes the app reads and writes.

Everything here runs inside the tenant's transaction unless it says otherwise. An app phone is a
row in ``devices`` like a companion phone: messaging claims work for it, applies its reports and
stores its inbound SMS through the devices addon's hooks; this module only translates.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import re
import secrets

from core import passwords, tokenformat
from core.clock import parse_iso, utcnow
from core.db import app_db
from core.web.problem import Problem, field_error

from addons.devices import service as devices
from addons.devices import settings as device_settings
from addons.devices.models import Device

from .models import Code, Enrollment, Export, Login, MobileDevice, Offer
from core.i18n import N_

# -- versions ------------------------------------------------------------------------------------

USER_AGENT = re.compile(r"me\.capcom\.smsgateway/v?(\d{1,4})\.(\d{1,4})(?:\.(\d{1,4}))?")
CANCELLING_SINCE = (1, 67)  # older apps do not know the Cancelling state: they would send the message anyway
EXPORT_SINCE = (1, 68)  # the version whose protocol we serve lists MessagesExportRequested; older ones are not asked


def app_version(user_agent: str | None) -> tuple[int, int, int] | None:
    """``(major, minor, patch)`` from ``me.capcom.smsgateway/<version>``, or None (not the app)."""
    m = USER_AGENT.search(user_agent or "")
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def version_text(version: tuple | None) -> str:
    return ".".join(map(str, version)) if version else ""


def parse_version_text(text: str | None) -> tuple[int, int, int] | None:
    return app_version(f"me.capcom.smsgateway/{text}") if text else None


def knows_cancelling(version: tuple | None) -> bool:
    return version is not None and version[:2] >= CANCELLING_SINCE


# -- enrollment tokens ---------------------------------------------------------------------------

ENROLLMENT_DAYS = 7
MAX_PHONES = 1000
MAX_DAYS = 365


class EnrollmentError(ValueError):
    """Refused input for a new enrollment token (a message for people)."""


def create_enrollment(tenant_slug: str, created_by: str, name: str = "", phones: int = 1,
                      expires_days: int = ENROLLMENT_DAYS) -> tuple[str, Enrollment]:
    """A new enrollment token (shown once; only its digest is stored)."""
    name = (name or "").strip()
    if len(name) > 100:
        raise EnrollmentError("The name has at most 100 characters.")
    if not isinstance(phones, int) or not 1 <= phones <= MAX_PHONES:
        raise EnrollmentError(f"A token is good for 1 to {MAX_PHONES} phones.")
    if not isinstance(expires_days, int) or not 1 <= expires_days <= MAX_DAYS:
        raise EnrollmentError(f"A token lasts 1 to {MAX_DAYS} days.")
    token = tokenformat.generate("sge", tenant_slug)
    row = Enrollment.create(token_hash=tokenformat.digest(token), token_hint=tokenformat.hint(token), name=name,
                            phones=phones, created_by=created_by,
                            expires_at=utcnow() + dt.timedelta(days=expires_days))
    return token, row


def revoke_enrollment(enrollment_id: int) -> Enrollment:
    row = Enrollment.get_or_none(Enrollment.id == enrollment_id)
    if row is None:
        raise Problem(404, "not-found", N_("There is no such enrollment token here."))
    if row.revoked_at is None:
        Enrollment.update(revoked_at=utcnow()).where(Enrollment.id == enrollment_id).execute()
    return Enrollment.get_by_id(enrollment_id)


def enrollment_json(row: Enrollment, now: dt.datetime | None = None) -> dict:
    now = now or utcnow()
    status = ("revoked" if row.revoked_at else "expired" if row.expires_at <= now
              else "used up" if row.used >= row.phones else "active")
    return {"id": row.id, "name": row.name, "token_hint": row.token_hint, "phones": row.phones, "used": row.used,
            "created_at": row.created_at.isoformat(), "expires_at": row.expires_at.isoformat(),
            "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None, "status": status}


def enrollments() -> list[Enrollment]:
    return list(Enrollment.select().order_by(Enrollment.id.desc()).limit(200))


def unauthorized(detail: str, args: dict | None = None) -> Problem:
    """401 with ``detail`` (an ``N_()`` msgid, its ``%(name)s`` placeholders filled from ``args``)."""
    return Problem(401, "invalid-token", detail, args=args,
                   headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def spend_enrollment(token: str) -> Enrollment:
    """Lock and check the enrollment a registering phone names; 401 unless it may still enroll one."""
    row = (Enrollment.select().where(Enrollment.token_hash == tokenformat.digest(token)).for_update().first()
           if tokenformat.parse(token, "sge") else None)
    if row is None:
        raise unauthorized(N_("This private token is unknown here. Create one on the Devices page, "
                              "Connect the Android app."))
    return usable(row, via_login=False)


# Why an enrollment can enroll no more phones, as said to a phone that brought its private token
# (``False``) or a login that came from it (``True``).
_SPENT = {
    ("revoked", False): N_("This private token was revoked. Create a new private token on the Devices page."),
    ("revoked", True): N_("The private token this login came from was revoked. Create a new private token on "
                          "the Devices page."),
    ("expired", False): N_("This private token has expired. Create a new private token on the Devices page."),
    ("expired", True): N_("The private token this login came from has expired. Create a new private token on "
                          "the Devices page."),
    ("used", False): N_("Every phone this private token allows has joined (its limit: %(phones)s). Create a new "
                        "private token on the Devices page."),
    ("used", True): N_("Every phone the private token this login came from allows has joined (its limit: "
                       "%(phones)s). Create a new private token on the Devices page."),
}


def usable(row: Enrollment, via_login: bool) -> Enrollment:
    """``row`` if it may still enroll a phone; 401 saying why not (to a login's phone if ``via_login``)."""
    if row.revoked_at is not None:
        raise unauthorized(_SPENT["revoked", via_login])
    if row.expires_at <= utcnow():
        raise unauthorized(_SPENT["expired", via_login])
    if row.used >= row.phones:
        raise unauthorized(_SPENT["used", via_login], {"phones": row.phones})
    return row


# -- the app's login, password and one-time codes ------------------------------------------------
#
# After it registers with the private token the app is given a login and a password (shown in its
# Cloud Server settings). With ``Authorization: Basic`` they register another phone, or ask
# ``GET /user/code`` for a one-time code that the other phone types (``Authorization: Code``).
# Neither carries more than the enrollment token they came from: every phone they add spends one of
# its uses, and they stop working when it expires or is revoked, or when the phone given the
# password is removed. They are no API credential: sending needs an API token.

CODE_MINUTES = 5
PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"


def new_login(platform, enrollment_id: int, device_id: int) -> tuple[str, str]:
    """The login and password for the phone that just registered with the private token."""
    password = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(20))
    login = f"device-{device_id}"
    row = Login.create(login=login, password_hash=passwords.hash_password(password, platform.pepper,
                                                                          platform.bcrypt_cost),
                       enrollment_id=enrollment_id, device_id=device_id)
    MobileDevice.update(login_id=row.id).where(MobileDevice.device_id == device_id).execute()
    return login, password


def parse_basic(credential: str) -> tuple[str, str] | None:
    """``(login, password)`` from the value of ``Authorization: Basic``, or None."""
    try:
        text = base64.b64decode(credential.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    login, sep, password = text.partition(":")
    return (login, password) if sep and 0 < len(login) <= 100 and len(password) <= passwords.MAX_LENGTH else None


def _live_login(row: Login | None) -> bool:
    return row is not None and Device.select().where(
        (Device.id == row.device_id) & Device.removed_at.is_null()).exists()


def _enrollment_of(login: Login) -> Enrollment:
    row = Enrollment.select().where(Enrollment.id == login.enrollment_id).for_update().first()
    return usable(row, via_login=True)


def login_enrollment(platform, login: str, password: str) -> tuple[Login, Enrollment]:
    """The login (locked) and the enrollment it may still spend; 401 otherwise, with one answer for an
    unknown login, a wrong password and a removed phone."""
    row = Login.select().where(Login.login == login).for_update().first()
    live = _live_login(row)
    if not passwords.verify_password(password, row.password_hash if live else None, platform.pepper,
                                     platform.bcrypt_cost):
        raise unauthorized(N_("The login or password is wrong, or the phone they were given to was removed."))
    return row, _enrollment_of(row)


def code_digest(platform, code: str) -> str:
    return hmac.new(platform.pepper, b"mobile-code:" + code.encode(), hashlib.sha256).hexdigest()


def new_code(platform, login: Login) -> tuple[str, dt.datetime]:
    """A one-time code (8 digits, ``CODE_MINUTES`` minutes) that enrolls one phone as ``login`` could."""
    _enrollment_of(login)  # no code from a login that could not enroll a phone itself
    app_db.execute_sql("DELETE FROM mobile_codes WHERE expires_at < now() OR used_at IS NOT NULL")
    expires = utcnow() + dt.timedelta(minutes=CODE_MINUTES)
    for _ in range(8):
        code = f"{secrets.randbelow(10 ** 8):08d}"
        made = app_db.execute_sql(
            "INSERT INTO mobile_codes (code_hash, login_id, expires_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (code_hash) DO NOTHING RETURNING id", (code_digest(platform, code), login.id, expires)).fetchone()
        if made:
            return code, expires
    raise Problem(503, "try-again", N_("No free one-time code was found. Ask for one again."))


def code_enrollment(platform, code: str) -> tuple[Login, Enrollment]:
    """Spend a one-time code: the login it came from and the enrollment it may still spend; 401 otherwise."""
    code = code.strip()
    row = (Code.select().where(Code.code_hash == code_digest(platform, code)).for_update().first()
           if len(code) == 8 and code.isdigit() else None)
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        raise unauthorized(N_("This one-time code is unknown, used or expired. Ask the first phone for a new one "
                              "(a code lasts %(minutes)s minutes and adds one phone)."), {"minutes": CODE_MINUTES})
    login = Login.select().where(Login.id == row.login_id).for_update().first()
    if not _live_login(login):
        raise unauthorized(N_("The phone this code came from was removed; its codes no longer work."))
    Code.update(used_at=utcnow()).where(Code.id == row.id).execute()
    return login, _enrollment_of(login)


def change_password(platform, device_id: int, current: str, new: str) -> Login:
    """``PATCH /user/password`` from a phone that joined with this login: 401 for a wrong current
    password, 400 for a new one that breaks the policy. Open one-time codes die with the old password."""
    mobile = MobileDevice.get_or_none(MobileDevice.device_id == device_id)
    row = (Login.select().where(Login.id == mobile.login_id).for_update().first()
           if mobile is not None and mobile.login_id is not None else None)
    live = _live_login(row)
    if not passwords.verify_password(current if isinstance(current, str) else "", row.password_hash if live else None,
                                     platform.pepper, platform.bcrypt_cost):
        raise Problem(401, "invalid-password", N_("The current password is wrong, or this phone has no login."))
    try:
        hashed = passwords.hash_password(new, platform.pepper, platform.bcrypt_cost)
    except passwords.PasswordPolicyError as exc:
        raise Problem(400, "validation-failed", N_("The new password is refused: %(why)s Nothing was changed."),
                      args={"why": str(exc)},
                      errors=[{"field": "newPassword", "message": str(exc), "msgid": exc.msgid,
                               "args": exc.msg_args}]) from None
    Login.update(password_hash=hashed, password_changed_at=utcnow()).where(Login.id == row.id).execute()
    Code.delete().where((Code.login_id == row.id) & Code.used_at.is_null()).execute()
    return row


# -- app devices ---------------------------------------------------------------------------------

def _text(value, limit: int) -> str | None:
    return value.strip()[:limit] if isinstance(value, str) else None


def sims_from_app(sim_cards) -> list[dict] | None:
    """The app's ``simCards`` as our SIM list (slots from 1; the app counts its ``simNumber`` from 1)."""
    if not isinstance(sim_cards, list):
        return None
    out = []
    for card in sim_cards[:4]:
        if not isinstance(card, dict):
            continue
        slot = card.get("simNumber")
        if not (isinstance(slot, int) and not isinstance(slot, bool) and 1 <= slot <= 4):
            slot = card.get("slotIndex")
            slot = slot + 1 if isinstance(slot, int) and not isinstance(slot, bool) and 0 <= slot <= 3 else None
        if slot is None or any(s["slot"] == slot for s in out):
            continue
        out.append({"slot": slot, "operator": _text(card.get("carrierName"), 60) or "",
                    "number": _text(card.get("phoneNumber"), 30) or ""})
    return out


def check_device_body(body: dict, *, register: bool) -> list[dict]:
    errors = []
    name = body.get("name")
    if register and not (isinstance(name, str) and 1 <= len(name.strip()) <= 100):
        errors.append({"field": "name", "message": N_("the phone's name is required (1 to 100 characters)")})
    push = body.get("pushToken")
    if push is not None and not (isinstance(push, str) and len(push) <= 4096):
        errors.append({"field": "pushToken", "message": N_("must be text up to 4096 characters")})
    sims = body.get("simCards")
    if sims is not None and not isinstance(sims, list):
        errors.append({"field": "simCards", "message": N_("must be a list")})
    return errors


def register(platform, tenant, enrollment: Enrollment, body: dict, version: tuple | None, limit,
             login_id: int | None = None) -> tuple:
    """Enroll a phone: spend one use of the enrollment (locked and checked by :func:`spend_enrollment`,
    :func:`login_enrollment` or :func:`code_enrollment`), make its device.

    Returns ``(device, device_token, mobile_row)``. A phone that registers again (the app does so
    silently after a 401) is a new device; if a device of the same enrollment with the same name
    is still listed, the new one is marked as possibly replacing it, for the Customer to confirm
    (:func:`confirm_replacement`)."""
    limit()
    name = body["name"].strip()[:100]
    device_token = tokenformat.generate("sgd", tenant.slug)
    device = Device.create(name=name, device_uid=f"app-{secrets.token_hex(8)}", model=name,
                           app_version=version_text(version), sims=sims_from_app(body.get("simCards")) or [],
                           token_hash=tokenformat.digest(device_token), token_hint=tokenformat.hint(device_token),
                           settings=device_settings.merged({}))
    ghost = app_db.execute_sql(
        "SELECT d.id FROM devices d JOIN mobile_devices m ON m.device_id = d.id "
        "WHERE m.enrollment_id = %s AND d.name = %s AND d.removed_at IS NULL AND d.id <> %s "
        "AND m.replaced_by_device_id IS NULL ORDER BY d.last_seen_at DESC NULLS LAST, d.id DESC LIMIT 1",
        (enrollment.id, name, device.id)).fetchone()
    key = secrets.token_urlsafe(24)
    row = MobileDevice.create(device_id=device.id, enrollment_id=enrollment.id,
                              signing_key_enc=platform.data_cipher().encrypt(key),
                              push_token=_text(body.get("pushToken"), 4096), app_version=version_text(version),
                              replaces_device_id=ghost[0] if ghost else None, login_id=login_id)
    Enrollment.update(used=Enrollment.used + 1).where(Enrollment.id == enrollment.id).execute()
    return device, device_token, row


def update_device(device_id: int, body: dict, version: tuple | None) -> None:
    """``PATCH /device``: the push token (absent: none, deliver over SSE), SIM cards, app version."""
    values = {"push_token": _text(body.get("pushToken"), 4096)}
    if version is not None:
        values["app_version"] = version_text(version)
    MobileDevice.update(**values).where(MobileDevice.device_id == device_id).execute()
    fields = {}
    sims = sims_from_app(body.get("simCards"))
    if sims is not None:
        fields["sims"] = sims
    if version is not None:
        fields["app_version"] = version_text(version)
    if fields:
        Device.update(**fields).where(Device.id == device_id).execute()


def note_version(device_id: int, version: tuple | None) -> None:
    """Record the version the app's User-Agent names, when it changed (an update of the app)."""
    if version is None:
        return
    text = version_text(version)
    MobileDevice.update(app_version=text).where((MobileDevice.device_id == device_id)
                                                 & (MobileDevice.app_version != text)).execute()


def mobile_row(device_id: int) -> MobileDevice:
    row = MobileDevice.get_or_none(MobileDevice.device_id == device_id)
    if row is None:
        raise Problem(403, "not-an-app-device", N_("This device was paired with the companion, not "
                                                   "the Android app; it speaks /api/device/v1."))
    return row


def signing_key(platform, row: MobileDevice) -> str:
    return platform.data_cipher().decrypt(row.signing_key_enc)


def pending_replacements() -> list[dict]:
    """App devices that may replace an older one (a phone that registered again): for the Customer."""
    rows = app_db.execute_sql(
        "SELECT n.id, n.name, n.created_at, o.id, o.name, o.last_seen_at FROM mobile_devices m "
        "JOIN devices n ON n.id = m.device_id JOIN devices o ON o.id = m.replaces_device_id "
        "WHERE n.removed_at IS NULL AND o.removed_at IS NULL ORDER BY n.id").fetchall()
    return [{"new_id": r[0], "new_name": r[1], "new_created_at": r[2], "old_id": r[3], "old_name": r[4],
             "old_last_seen_at": r[5]} for r in rows]


def confirm_replacement(platform, tenant, new_id: int) -> Device:
    """The Customer confirmed that app device ``new_id`` is the phone of the device it may replace:
    the new one takes the old one's settings, the old one is removed (its unreported work goes back
    to the queue) and shown as replaced."""
    row = MobileDevice.select().where(MobileDevice.device_id == new_id).for_update().first()
    if row is None or row.replaces_device_id is None:
        raise Problem(404, "not-found", N_("This device replaces no other device."))
    old = Device.get_or_none((Device.id == row.replaces_device_id) & Device.removed_at.is_null())
    if old is None:
        raise Problem(409, "already-removed", N_("The device it would replace was removed already."))
    Device.update(settings=old.settings, settings_version=Device.settings_version + 1, enabled=old.enabled).where(
        Device.id == new_id).execute()
    devices.remove(platform, tenant, old.id)
    MobileDevice.update(replaced_by_device_id=new_id).where(MobileDevice.device_id == old.id).execute()
    MobileDevice.update(replaces_device_id=None).where(MobileDevice.device_id == new_id).execute()
    return old


def dismiss_replacement(new_id: int) -> None:
    """The Customer said the new device is another phone: keep both."""
    MobileDevice.update(replaces_device_id=None).where(MobileDevice.device_id == new_id).execute()


def replaced_by() -> dict[int, int]:
    """``{old device id: new device id}`` for devices an app device replaced."""
    return dict(app_db.execute_sql(
        "SELECT device_id, replaced_by_device_id FROM mobile_devices WHERE replaced_by_device_id IS NOT NULL"
    ).fetchall())


# -- received SMS sent again (MessagesExportRequested) ------------------------------------------

MAX_EXPORT_DAYS = 31


def export_key(tenant_slug: str, device_id: int) -> str:
    return f"{tenant_slug}:device:{device_id}:export"


def check_export_window(since: dt.datetime | None, until: dt.datetime | None, now: dt.datetime) -> list[dict]:
    errors = []
    if since is None:
        errors.append({"field": "since", "message": N_("a date and time (ISO 8601) is required")})
    if until is None:
        errors.append({"field": "until", "message": N_("a date and time (ISO 8601) is required")})
    if errors:
        return errors
    if until <= since:
        errors.append({"field": "until", "message": N_("must be after since")})
    elif until - since > dt.timedelta(days=MAX_EXPORT_DAYS):
        errors.append(field_error("since", N_("ask for at most %(max)s days at once"), {"max": MAX_EXPORT_DAYS}))
    if since > now:
        errors.append({"field": "since", "message": N_("must not be in the future")})
    return errors


def request_export(platform, tenant, device_id: int, since: dt.datetime, until: dt.datetime, actor: str) -> Export:
    """Ask app phone ``device_id`` to send again what it received from ``since`` to ``until``: on its
    open stream at once, or when it next opens one. 404 for no such app phone, 409 for an app that
    does not know the request."""
    row = MobileDevice.select().where(MobileDevice.device_id == device_id).first()
    device = Device.get_or_none((Device.id == device_id) & Device.removed_at.is_null())
    if row is None or device is None:
        raise Problem(404, "not-found", N_("There is no phone on the Android app with this id here."))
    if not (parse_version_text(row.app_version) or (0,))[:2] >= EXPORT_SINCE:
        raise Problem(409, "app-too-old", N_("This phone runs the Android app %(version)s; asking it to send received "
                                             "SMS again needs version 1.68 or later. Update the app and try again."),
                      args={"version": row.app_version or "?"})
    errors = check_export_window(since, until, utcnow())
    if errors:
        raise Problem(400, "validation-failed", N_("The time window is wrong; nothing was asked."), errors=errors)
    made = Export.create(device_id=device_id, since=since, until=until, requested_by=actor)
    MobileDevice.update(export_pending=True).where(MobileDevice.device_id == device_id).execute()
    platform.wake_on_commit(app_db, export_key(tenant.slug, device_id))
    return made


def take_exports(device_id: int) -> list[dict]:
    """Inside the tenant transaction: the waiting export requests of the device, marked sent, as
    the app's event data (RFC 3339 times, as strings)."""
    rows = app_db.execute_sql(
        "UPDATE mobile_exports SET sent_at = now() WHERE device_id = %s AND sent_at IS NULL "
        "RETURNING id, since, until", (device_id,)).fetchall()
    MobileDevice.update(export_pending=False).where(MobileDevice.device_id == device_id).execute()
    fmt = lambda t: t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    return [{"since": fmt(r[1]), "until": fmt(r[2])} for r in sorted(rows)]


def export_requests(limit: int = 20) -> list[dict]:
    rows = app_db.execute_sql(
        "SELECT e.id, d.name, e.since, e.until, e.requested_at, e.sent_at FROM mobile_exports e "
        "JOIN devices d ON d.id = e.device_id ORDER BY e.id DESC LIMIT %s", (limit,)).fetchall()
    return [{"id": r[0], "device": r[1], "since": r[2], "until": r[3], "requested_at": r[4], "sent_at": r[5]}
            for r in rows]


def app_phones() -> list[dict]:
    rows = app_db.execute_sql(
        "SELECT d.id, d.name, m.app_version FROM mobile_devices m JOIN devices d ON d.id = m.device_id "
        "WHERE d.removed_at IS NULL ORDER BY d.name, d.id LIMIT 500").fetchall()
    return [{"id": r[0], "name": r[1], "app_version": r[2]} for r in rows]


# -- what the app reads --------------------------------------------------------------------------

def gson_time(t: dt.datetime | None) -> str | None:
    """A time as the app's Gson writes and reads it: ``2026-08-01T10:00:00.123+00:00``."""
    if t is None:
        return None
    t = t.astimezone(dt.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}+00:00"


def app_message(item: dict, offer: Offer, version: tuple | None) -> dict:
    """A claimed item (``smsgw_device_claim``'s shape) as the app's message; null fields are left
    out, as Gson does, and so is anything the requesting version does not know."""
    out = {"id": str(item["id"]), "textMessage": {"text": item["text"]}, "phoneNumbers": [item["to"]],
           "withDeliveryReport": bool(item.get("delivery_report", True)), "isEncrypted": False,
           "state": "Pending", "createdAt": gson_time(offer.offered_at)}
    if item.get("sim_slot"):
        out["simNumber"] = item["sim_slot"]
    if item.get("valid_until"):
        out["validUntil"] = gson_time(parse_iso(item["valid_until"]))
    if offer.cancel_requested_at is not None and knows_cancelling(version):
        out["state"] = "Cancelling"
    return out


def app_settings(device: Device, key: str) -> dict:
    """The nested settings map the app imports, from the device's settings in our dashboard.
    Our server enforces the sending limits and working hours too; the app's own copy only paces it."""
    s = device_settings.merged(device.settings)
    limits = s["limits"]
    period, value = "Disabled", 0
    for name, period_name in (("per_minute", "PerMinute"), ("per_hour", "PerHour"), ("per_day", "PerDay")):
        if limits.get(name):
            period, value = period_name, limits[name]
            break
    sim_mode = {"round_robin": "RoundRobin"}.get(s["sim"]["mode"], "OSDefault")
    return {
        "messages": {"send_interval_min": s["delay"]["min_ms"] // 1000,
                     "send_interval_max": s["delay"]["max_ms"] // 1000,
                     "limit_period": period, "limit_value": value, "sim_selection_mode": sim_mode,
                     "processing_order": "FIFO",
                     # Our server holds work outside the device's working hours, in the time zone set
                     # in our dashboard; the app would apply its own copy in the phone's clock, which
                     # may be another zone, so its own is switched off (the hours are shown in it).
                     "work_hours_enabled": False, "work_hours_start": s["working_hours"]["start"],
                     "work_hours_end": s["working_hours"]["end"]},
        "ping": {"interval_seconds": 0},
        "webhooks": {"signing_key": key, "retry_count": 5, "internet_required": True},
        "gateway": {"notification_channel": "SSE_ONLY"},
    }


INGEST_EVENTS = ("sms:received", "sms:sent", "sms:delivered", "sms:failed")


def ingest_path(device_id: int) -> str:
    return f"/api/mobile/v1/ingest/{device_id}"


def app_webhooks(base_url: str, device_id: int) -> list[dict]:
    """The webhooks the app posts to: our ingest URL, for inbound SMS and as a second status channel."""
    return [{"id": f"smsgw-{event.replace(':', '-')}", "deviceId": str(device_id), "url": base_url + ingest_path(device_id),
             "event": event} for event in INGEST_EVENTS]


# -- what the app writes -------------------------------------------------------------------------

SIGNATURE_WINDOW = 300  # seconds a signed webhook's X-Timestamp may be off


def verify_signature(key: str, body: bytes, timestamp: str | None, signature: str | None,
                     now: float | None = None) -> None:
    """``X-Signature: hex(HMAC-SHA256(key, body + X-Timestamp))`` with a recent ``X-Timestamp``
    (epoch seconds); 401 otherwise."""
    if not timestamp or not signature:
        raise unauthorized(N_("Sign the webhook: X-Signature and X-Timestamp are required."))
    try:
        ts = int(timestamp)
    except ValueError:
        raise unauthorized(N_("X-Timestamp must be the time in epoch seconds.")) from None
    now = utcnow().timestamp() if now is None else now
    if abs(now - ts) > SIGNATURE_WINDOW:
        raise unauthorized(N_("X-Timestamp is too far from our clock (more than 5 minutes): a stale or replayed "
                              "webhook, or the phone's clock is wrong."))
    expected = hmac.new(key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise unauthorized(N_("The webhook's signature does not match this phone's signing key."))


APP_STATES = ("Pending", "Processed", "Sent", "Delivered", "Failed", "Cancelled")


def reports_from_app(item: dict, at_fallback: dt.datetime) -> tuple[int | None, list[dict], bool]:
    """One element of ``PATCH /message``: ``(recipient id, reports, final)``. ``Pending`` and
    ``Processed`` only acknowledge; ``Delivered`` reports ``sent`` first when the app says when it
    was sent, so the history holds both. Unknown ids (not digits) give ``None``."""
    raw = item.get("id")
    if not (isinstance(raw, str) and raw.isdigit() and len(raw) <= 18):
        return None, [], False
    rid = int(raw)
    state = item.get("state")
    times = item.get("states") if isinstance(item.get("states"), dict) else {}

    def when(name):
        return parse_iso(times.get(name)) or at_fallback

    error = None
    for r in item.get("recipients") or []:
        if isinstance(r, dict) and isinstance(r.get("error"), str) and r["error"]:
            error = r["error"][:100]
            break
    reports = []
    if state == "Sent" or (state in ("Delivered", "Failed") and times.get("Sent")):
        reports.append({"message_id": rid, "state": "sent", "error_code": None, "at": when("Sent")})
    if state == "Delivered":
        reports.append({"message_id": rid, "state": "delivered", "error_code": None, "at": when("Delivered")})
    elif state == "Failed":
        reports.append({"message_id": rid, "state": "failed", "error_code": error or "FAILED", "at": when("Failed")})
    elif state == "Cancelled":  # the app did not send it, as asked (Cancelling): failed, not sent
        reports.append({"message_id": rid, "state": "failed", "error_code": "CANCELLED",
                        "at": when("Cancelled") if times.get("Cancelled") else at_fallback})
    return rid, reports, state in ("Sent", "Delivered", "Failed", "Cancelled")


def check_patch_items(items) -> list[dict]:
    if not isinstance(items, list):
        raise Problem(400, "validation-failed", N_("Send the message states as a JSON array."))
    if len(items) > 500:
        raise Problem(413, "batch-too-large", N_("Send at most 500 message states per request."))
    errors = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append({"field": f"[{i}]", "message": N_("must be an object")})
        elif item.get("state") not in APP_STATES:
            errors.append(field_error(f"[{i}].state", N_("must be one of %(states)s"), {"states": ", ".join(APP_STATES)}))
    if errors:
        raise Problem(400, "validation-failed", N_("Some message states are malformed; none were "
                                                   "applied."),
                      errors=errors)
    return items


# -- offers (what GET /message handed out and the app has not acknowledged) ----------------------

def open_offers(device_id: int) -> dict[int, Offer]:
    """The offers ``GET /message`` repeats: not acknowledged yet, or with a cancellation to tell."""
    return {o.recipient_id: o for o in Offer.select().where(
        (Offer.device_id == device_id) & (Offer.acked_at.is_null() | Offer.cancel_requested_at.is_null(False)))}


def record_offers(device_id: int, ids: list[int]) -> None:
    if ids:
        Offer.insert_many([{"recipient_id": i, "device_id": device_id} for i in ids]).on_conflict(
            conflict_target=[Offer.recipient_id],
            update={Offer.device_id: device_id, Offer.acked_at: None, Offer.cancel_requested_at: None,
                    Offer.offered_at: utcnow()}).execute()


def forget_offers(ids) -> None:
    ids = list(ids)
    if ids:
        Offer.delete().where(Offer.recipient_id.in_(ids)).execute()


def acknowledge(device_id: int, acked: list[int], final: list[int]) -> None:
    """The app reported on these: acknowledged ones are not offered again; final ones are done."""
    if acked:
        Offer.update(acked_at=utcnow()).where((Offer.device_id == device_id) & Offer.recipient_id.in_(acked)
                                              & Offer.acked_at.is_null()).execute()
    if final:
        Offer.delete().where((Offer.device_id == device_id) & Offer.recipient_id.in_(final)).execute()


def recall(platform, tenant, device_id: int, ids: list[int]) -> dict[int, str | None] | None:
    """``smsgw_device_recall`` for app phones: from 1.67 the app is told the message is
    ``Cancelling`` (``GET /message``, after a ``MessageEnqueued`` and a ``MessageCancelled``);
    an older app does not know that state and would send the message anyway, so it is not asked."""
    row = MobileDevice.get_or_none(MobileDevice.device_id == device_id)
    if row is None:
        return None
    version = parse_version_text(row.app_version)
    if not knows_cancelling(version):
        reason = (f"the phone holding it runs the Android app {row.app_version or 'of an unknown version'}, which "
                  "cannot cancel a message it was given (that needs version 1.67 or later) and will send it.")
        return {i: reason for i in ids}
    Offer.update(cancel_requested_at=utcnow()).where((Offer.device_id == device_id) & Offer.recipient_id.in_(ids)
                                                     & Offer.cancel_requested_at.is_null()).execute()
    found = {o.recipient_id for o in Offer.select(Offer.recipient_id).where(
        (Offer.device_id == device_id) & Offer.recipient_id.in_(ids))}
    from .events import cancel_key

    platform.wake_on_commit(app_db, devices.wake_key(tenant.slug, device_id))
    platform.wake_on_commit(app_db, cancel_key(tenant.slug, device_id))
    return {i: None if i in found else "the phone was not given it yet." for i in ids}
