"""Messages the SMS Gateway for Android way: their request body → our message, our rows → their MessageState.

Their message ids are strings and may be chosen by the client. Ids live in one
namespace per workspace, split by form so that every id names one message only:

* an id of ASCII digits only is our message number (``Message.id``): the id of a
  message sent without one, or sent through our native API or dashboard;
* any other id is a client-chosen id, stored as the message's ``reference``
  (messages created here have ``source = 'compat'``).

So a client may not choose an id of digits only (400): it would name another
message, or one sent later. Rows stored before that rule with such a reference are
known by their number.
"""

from __future__ import annotations

import datetime as dt
import re

import phonenumbers
from peewee import Case, fn

from core.bodyschema import iso_time
from core.clock import parse_iso, utcnow
from core.db import app_db
from core.web.params import is_digits, number_or_none
from core.web.problem import Problem

from addons.devices.models import Device
from addons.messaging import submit, text as smstext
from addons.messaging.models import Message, Recipient
from addons.messaging.phones import PhoneError, normalise
from core.i18n import N_, Said

SOURCE = "compat"
# Our recipient states → theirs. They have no "expired": an expired message failed (its TTL ran out).
STATE_OUT = {"pending": "Pending", "held": "Pending", "processed": "Processed", "sent": "Sent",
             "delivered": "Delivered", "failed": "Failed", "expired": "Failed", "cancelled": "Cancelled"}
# Theirs → ours, for filters.
STATE_IN = {"Pending": ("held", "pending"), "Processed": ("processed",), "Sent": ("sent",), "Delivered": ("delivered",),
            "Failed": ("failed", "expired"), "Cancelled": ("cancelled",)}
# The message-level state is the least advanced recipient state, in this order (as in our native API).
ORDER = ("held", "pending", "processed", "sent", "delivered", "failed", "expired", "cancelled")
OUR_PRIORITY = (-100, 100)
ID_RE = re.compile(r"^[^/\s\x00-\x1f\x7f]{1,100}$")
MAX_TTL = 30 * 86400


def bad(message: str, field: str | None = None, args: dict | None = None) -> Problem:
    """400 with ``message`` (an ``N_()`` msgid, ``args`` its values), also as ``field``'s error."""
    return Problem(400, "validation-failed", message, args=args,
                   errors=[{"field": field, "message": message % args if args else message, "msgid": message,
                            "args": args or {}}] if field else None)


def parse_time(value, field: str) -> dt.datetime:
    t = parse_iso(value)
    if t is not None:
        return t
    raise bad(N_("%(field)s must be an ISO 8601 / RFC 3339 time, e.g. 2026-12-01T09:00:00Z."), field, {"field": field})


def lenient_phone(raw: str) -> str | None:
    """For ``skipPhoneValidation``: any plausibly dialable number, as +digits where we can tell the country."""
    try:
        number = phonenumbers.parse(raw, None if raw.strip().startswith("+") else "ZZ")
        if phonenumbers.is_possible_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        pass
    digits = re.sub(r"[\s().-]", "", raw.strip())
    if re.fullmatch(r"\+?[0-9]{3,20}", digits):
        return digits
    return None


def translate(body: dict, region: str, skip_validation: bool) -> dict:
    """Their send request, as its published schema (``CompatNewMessage``) accepted it → the clean
    message :func:`addons.messaging.submit.accept` stores. Here is what a schema cannot say."""
    text = (body.get("textMessage") or {}).get("text")
    if text is None:  # the legacy form: {"message": "...", "phoneNumbers": [...]}
        text = body.get("message")
    if text is None or not text.strip():
        raise bad(N_("Give the text to send as textMessage.text."), "textMessage.text")
    info = smstext.describe(text)
    if info["segments"] > smstext.MAX_SEGMENTS:
        raise bad(N_("The text is too long: %(segments)s segments (%(encoding)s); the maximum is %(max)s."),
                  "textMessage.text", {"segments": info["segments"], "encoding": info["encoding"],
                                       "max": smstext.MAX_SEGMENTS})
    now = utcnow()
    ttl, valid_until = body.get("ttl"), iso_time(body.get("validUntil"))
    if ttl is not None and valid_until is not None:
        raise bad(N_("Give ttl or validUntil, not both."), "ttl")
    if ttl is not None:
        valid_until = now + dt.timedelta(seconds=ttl)
    elif valid_until is not None and valid_until <= now:
        raise bad(N_("validUntil is in the past."), "validUntil")
    priority = body.get("priority") or 0
    dr = body.get("withDeliveryReport")
    return {"text": text, "encoding": info["encoding"], "segments": info["segments"],
            "phones": _phones(body["phoneNumbers"], region, skip_validation),
            "device_id": parse_device_id(body.get("deviceId"), "deviceId"), "sim_slot": body.get("simNumber"),
            "priority": max(OUR_PRIORITY[0], min(OUR_PRIORITY[1], priority)), "valid_until": valid_until,
            "send_at": None, "delivery_report": True if dr is None else dr, "reference": body.get("id")}


def _phones(numbers: list[str], region: str, skip_validation: bool) -> list[str]:
    phones, seen = [], set()
    for i, raw in enumerate(numbers):
        try:
            phone = normalise(raw, region)
        except PhoneError as exc:
            phone = lenient_phone(raw) if skip_validation else None
            if phone is None:
                raise bad(N_("%(field)s: %(why)s"), f"phoneNumbers[{i}]",
                          {"field": f"phoneNumbers[{i}]", "why": Said(exc.msgid, exc.msg_args)}) from None
        if phone not in seen:
            seen.add(phone)
            phones.append(phone)
    return phones


def parse_device_id(value, field: str) -> int | None:
    if value is None or value == "":
        return None
    number = number_or_none(str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else "")
    if number is None or number < 1:
        raise bad(N_("%(field)s “%(value)s” is not one of your devices (GET /devices lists them)."), field,
                  {"field": field, "value": str(value)[:40]})
    return number


# -- storing ------------------------------------------------------------------------

def check_active_devices(device_id: int | None, hours: int) -> None:
    """``deviceActiveWithin``: refuse unless a usable device was seen in the last ``hours`` hours."""
    q = Device.select(Device.id).where(Device.enabled & Device.removed_at.is_null()
                                       & (Device.last_seen_at >= utcnow() - dt.timedelta(hours=hours)))
    if device_id is not None:
        q = q.where(Device.id == device_id)
    if not q.exists():
        if device_id is not None:
            raise Problem(400, "no-active-device",
                          N_("Device %(device)s was not active within the last %(hours)s hours, so nothing was sent. "
                             "Start the phone's app, or leave deviceActiveWithin out."),
                          args={"device": device_id, "hours": hours})
        raise Problem(400, "no-active-device",
                      N_("No device was active within the last %(hours)s hours, so nothing was sent. Start the "
                         "phone's app, or leave deviceActiveWithin out."), args={"hours": hours})


def store(tenant, clean: dict, created_by: str, active_within: int = 0) -> tuple[dict, list[str]]:
    """Inside the tenant transaction: store the message; returns its MessageState and wake keys."""
    if active_within:
        check_active_devices(clean["device_id"], active_within)
    client_id = clean["reference"]
    if client_id:
        # Two requests with the same id must not both pass the check below.
        # Advisory locks are database-wide: the tenant is part of the key.
        app_db.execute_sql("SELECT pg_advisory_xact_lock(hashtext('compat-id:' || %s), hashtext(%s))",
                           (tenant.slug, client_id))
        if Message.select(Message.id).where((Message.source == SOURCE) & (Message.reference == client_id)).exists():
            raise Problem(409, "duplicate-id",
                          N_("A message with id “%(id)s” already exists; choose another id, or leave it out."),
                          args={"id": client_id})
    _status, response, keys = submit.accept(tenant, [clean], [[]], False, source=SOURCE, created_by=created_by)
    message = Message.get_by_id(response["id"])
    return states([message])[0], keys


# -- reading ------------------------------------------------------------------------

def is_number(raw_id: str) -> bool:
    """Whether an id has the form of our message numbers (ASCII digits only): see the module's docstring."""
    return is_digits(raw_id)


def public_id(m: Message) -> str:
    if m.source == SOURCE and m.reference and not is_number(m.reference):
        return m.reference
    return str(m.id)


def find(raw_id: str) -> Message:
    """The one message an id names: by number if it is digits only, else by client id. Never both."""
    if not ID_RE.match(raw_id or ""):
        raise Problem(404, "not-found", N_("There is no message with this id here."))
    if is_number(raw_id):
        m = Message.get_or_none(Message.id == int(raw_id)) if len(raw_id) <= 18 else None
    else:
        m = Message.get_or_none((Message.source == SOURCE) & (Message.reference == raw_id))
    if m is None:
        raise Problem(404, "not-found", N_("There is no message with this id here."))
    return m


def _iso(t: dt.datetime | None) -> str | None:
    if t is None:
        return None
    return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).isoformat()


def states(messages: list[Message]) -> list[dict]:
    """Their MessageState for each message, with three queries whatever the number of messages."""
    if not messages:
        return []
    ids = [m.id for m in messages]
    recipients: dict[int, list[Recipient]] = {}
    for r in Recipient.select().where(Recipient.message.in_(ids)).order_by(Recipient.id):
        recipients.setdefault(r.message_id, []).append(r)
    reached: dict[int, dict[str, dt.datetime]] = {}
    for message_id, to_state, at in app_db.execute_sql(
            "SELECT r.message_id, e.to_state, min(e.at) FROM recipient_events e "
            "JOIN recipients r ON r.id = e.recipient_id WHERE r.message_id = ANY(%s) GROUP BY 1, 2", (ids,)):
        name = STATE_OUT.get(to_state)
        if name:
            times = reached.setdefault(message_id, {})
            times[name] = min(times[name], at) if name in times else at
    out = []
    for m in messages:
        rs = recipients.get(m.id, [])
        present = {r.state for r in rs}
        state = next((s for s in ORDER if s in present), "pending")
        device = m.device_id or next((r.device_id for r in rs if r.device_id), None)
        times = reached.get(m.id, {})
        # Creation is not stored as a history row: the message's own time says when it was Pending.
        times["Pending"] = min(times.get("Pending", m.created_at), m.created_at)
        out.append({
            "id": public_id(m),
            "deviceId": str(device) if device else None,
            "state": STATE_OUT[state],
            "isHashed": False,
            "isEncrypted": False,
            "recipients": [{"phoneNumber": r.phone, "state": STATE_OUT[r.state], "error": _error(r)} for r in rs],
            "states": {name: _iso(at) for name, at in sorted(times.items(), key=lambda kv: kv[1])},
            "createdAt": _iso(m.created_at),
        })
    return out


def _error(r: Recipient) -> str | None:
    if r.state == "expired":
        return "Expired: the message's TTL (validUntil) passed before it could be sent."
    if r.state == "failed":
        return r.error_code or "Failed"
    return None


def listing(args: dict, limit: int, offset: int) -> tuple[list[dict], int]:
    q = Message.select()
    if args.get("from"):
        q = q.where(Message.created_at >= parse_time(args["from"], "from"))
    if args.get("to"):
        q = q.where(Message.created_at < parse_time(args["to"], "to"))
    if args.get("deviceId"):
        device_id = parse_device_id(args["deviceId"], "deviceId")
        q = q.where((Message.device_id == device_id) | Message.id.in_(
            Recipient.select(Recipient.message).where(Recipient.device_id == device_id)))
    if args.get("state"):
        wanted = STATE_IN.get(args["state"])
        if wanted is None:
            raise bad(N_("state must be one of %(states)s."), "state", {"states": ", ".join(STATE_IN)})
        ranks = [ORDER.index(s) for s in wanted]
        rank = Case(Recipient.state, [(s, i) for i, s in enumerate(ORDER)])
        q = q.where(Message.id.in_(Recipient.select(Recipient.message).group_by(Recipient.message)
                                   .having(fn.MIN(rank).in_(ranks))))
    sort = args.get("sort") or "-created_at"
    if sort not in ("created_at", "-created_at"):
        raise bad(N_("sort must be created_at or -created_at."), "sort")
    total = q.count()
    order = (Message.created_at.asc(), Message.id.asc()) if sort == "created_at" else (
        Message.created_at.desc(), Message.id.desc())
    rows = list(q.order_by(*order).offset(offset).limit(limit))
    return states(rows), total
