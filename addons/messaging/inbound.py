"""Inbound SMS: opt-out and opt-in keywords, and the ``received`` event."""

from __future__ import annotations

from core.clock import utcnow

from .models import Suppression
from .phones import try_normalise
from .transitions import emit

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
START_WORDS = frozenset({"START", "UNSTOP"})


def keyword(body: str) -> str | None:
    """The keyword if the message is one, alone (case-insensitive, surrounding spaces and dots ignored)."""
    word = (body or "").strip().strip(".!").strip().upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    return None


def on_inbound(tenant, device, message) -> None:
    phone = try_normalise(message.sender, tenant.default_region) or message.sender
    kind = keyword(message.body)
    if kind == "stop":
        (Suppression.insert(phone=phone, reason=f"replied {message.body.strip().upper()[:20]}", source="keyword")
         .on_conflict_ignore().execute())
    elif kind == "start":
        Suppression.delete().where((Suppression.phone == phone) & (Suppression.source == "keyword")).execute()
    emit(tenant, "received", {"inbound_id": message.id, "from": phone, "body": message.body,
                              "device_id": device.id, "sim_slot": message.sim_slot,
                              "received_at": message.received_at.isoformat(), "keyword": kind,
                              "at": utcnow().isoformat()})
