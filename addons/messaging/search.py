"""Finding messages and received SMS: the filters of the API's lists, the dashboard's lists and
their CSV exports (one definition, so a filtered page and its export show the same rows).

Every filter is a parameter, never SQL text; a bad value is a :class:`Problem` (400) naming it,
which the API answers and the dashboard shows above its list. Newest first, by id, so a page is a
backwards walk of the primary key that stops at its ``limit``: date filters use the
``created_at``/``received_at`` indexes, a campaign ``messages_campaign``, a state, phone or device
the recipients' indexes; text and partial numbers are matched while walking (measured in
bench/bench_search.py).
"""

from __future__ import annotations

import re

from peewee import Expression

from core.web.params import parse_id
from core.i18n import N_
from core.web.problem import Problem

from addons.devices.models import DeviceInbound

from . import states
from .models import Message, Recipient
from .phones import try_normalise

MESSAGE_FILTERS = ("reference", "since", "until", "state", "device_id", "phone", "number", "q", "campaign")
INBOX_FILTERS = ("since", "until", "device_id", "number", "q")
MAX_TEXT = 100


def like_pattern(raw: str, name: str) -> str:
    """``%raw%`` for ILIKE, with ``%``, ``_`` and ``\\`` taken literally (backslash is LIKE's
    default escape character in PostgreSQL)."""
    if len(raw) > MAX_TEXT or not raw.isprintable():
        raise Problem(400, "invalid-parameter", N_("%(name)s must be printable text of at most %(max)s characters."),
                      args={"name": name, "max": MAX_TEXT})
    return "%" + re.sub(r"([\\%_])", r"\\\1", raw) + "%"


def number_pattern(raw: str) -> str:
    """Part of a phone number (digits, perhaps with +, spaces, dashes, dots or brackets) as a LIKE
    pattern on the stored E.164 form."""
    digits = re.sub(r"[\s().\-/]", "", raw)
    if not re.fullmatch(r"\+?[0-9]{2,20}", digits):
        raise Problem(400, "invalid-parameter", N_("number must be at least two digits of a phone number."))
    return ("+" + digits[1:] + "%") if digits.startswith("+") else ("%" + digits + "%")


def in_period(q, column, args: dict):
    """``q`` limited to ``since`` (at or after) and ``until`` (before) on ``column``."""
    from .api import parse_date

    since, until = parse_date(args.get("since"), "since"), parse_date(args.get("until"), "until")
    if since:
        q = q.where(column >= since)
    if until:
        q = q.where(column < until)
    return q


def message_query(args: dict):
    """Messages (newest first) matching ``args``: ``cursor``, ``reference``, ``since``/``until``
    (ISO times), ``state``, ``device_id``, ``phone`` (a whole number), ``number`` (part of one),
    ``q`` (words of the text) and ``campaign``; ``_region`` reads national numbers."""
    from .api import decode_cursor

    q = Message.select().order_by(Message.id.desc())
    before = decode_cursor(args.get("cursor"))
    if before:
        q = q.where(Message.id < before)
    if args.get("reference"):
        q = q.where(Message.reference == args["reference"])
    q = in_period(q, Message.created_at, args)
    if args.get("q"):
        # A removed text is empty: it matches nothing (no redacted_at condition, which the planner
        # misjudged into an index probe per message: 1.9 s instead of 0.1 s on 100k in bench_search).
        q = q.where(Expression(Message.text, "ILIKE", like_pattern(args["q"], "q")))
    if args.get("campaign"):
        q = q.where(Message.campaign_id == parse_id(args["campaign"], field="campaign"))
    sub = Recipient.select(Recipient.message)
    filtered = False
    if args.get("state"):
        if args["state"] not in states.STATES:
            raise Problem(400, "invalid-parameter", N_("state must be one of %(STATES)s."),
                          args={"STATES": ", ".join(states.STATES)})
        sub, filtered = sub.where(Recipient.state == args["state"]), True
    if args.get("device_id"):
        sub, filtered = sub.where(Recipient.device_id == parse_id(args["device_id"], field="device_id")), True
    if args.get("phone"):
        phone = try_normalise(args["phone"], args.get("_region", "US"))
        if phone is None:
            raise Problem(400, "invalid-parameter", N_("phone is not a valid phone number."))
        sub, filtered = sub.where(Recipient.phone == phone), True
    if args.get("number"):
        sub, filtered = sub.where(Expression(Recipient.phone, "LIKE", number_pattern(args["number"]))), True
    if filtered:
        q = q.where(Message.id.in_(sub))
    return q


def inbox_query(args: dict):
    """Received SMS (newest first) matching ``args``: ``cursor``, ``since``/``until``, ``device_id``,
    ``number`` (part of the sender) and ``q`` (words of the body)."""
    from .api import decode_cursor

    q = DeviceInbound.select().order_by(DeviceInbound.id.desc())
    before = decode_cursor(args.get("cursor"))
    if before:
        q = q.where(DeviceInbound.id < before)
    q = in_period(q, DeviceInbound.received_at, args)
    if args.get("device_id"):
        q = q.where(DeviceInbound.device == parse_id(args["device_id"], field="device_id"))
    if args.get("number"):
        q = q.where(Expression(DeviceInbound.sender, "LIKE", number_pattern(args["number"])))
    if args.get("q"):
        q = q.where(Expression(DeviceInbound.body, "ILIKE", like_pattern(args["q"], "q")))  # removed: empty
    return q
