"""Moving recipients through the state machine, recording history and emitting events."""

from __future__ import annotations

from core.clock import utcnow

from . import metrics, runtime, states
from .models import Message, Recipient, RecipientEvent

EVENT_FOR_STATE = {"sent": "sent", "delivered": "delivered", "failed": "failed", "cancelled": "cancelled",
                   "expired": "expired", "held": "held"}


def event_data(r: Recipient, reference: str | None = None, at=None) -> dict:
    return {"message_id": r.message_id, "recipient_id": r.id, "phone": r.phone, "state": r.state,
            "device_id": r.device_id, "error_code": r.error_code, "reference": reference,
            "at": (at or utcnow()).isoformat(), **({"hold_reason": r.hold_reason} if r.state == "held" else {})}


def emit(tenant, event: str, data: dict) -> None:
    emit_many(tenant, [(event, data)])


def emit_many(tenant, events: list[tuple[str, dict]]) -> None:
    if events:
        runtime.platform().registry.hook.smsgw_message_events(tenant=tenant, events=events)


def transition_all(tenant, rows, to_state: str, source: str, *, error_code=None, extra: dict | None = None) -> int:
    """Move many (row-locked) recipients; how many moved. Their events go out together, and each
    message's reference is read once."""
    n, events, references = 0, [], {}
    for r in rows:
        n += transition(tenant, r, to_state, source, error_code=error_code, extra=extra, events=events,
                        references=references)
    emit_many(tenant, events)
    return n


def transition(tenant, r: Recipient, to_state: str, source: str, *, device_id=None, error_code=None,
               reported_at=None, extra: dict | None = None, events: list | None = None,
               references: dict | None = None) -> bool:
    """Move one (row-locked) recipient; False if the state machine forbids it.

    Emits the event, or appends it to ``events`` for the caller to emit with the others of
    its batch (:func:`emit_many`); ``references`` keeps message references read for a batch."""
    if not states.allowed(r.state, to_state):
        return False
    now = utcnow()
    fields = {"state": to_state, "updated_at": now}
    if to_state == "sent":
        fields["sent_at"] = reported_at or now
    elif to_state == "delivered":
        fields["delivered_at"] = reported_at or now
        if r.sent_at is None:
            fields["sent_at"] = reported_at or now
    elif to_state == "failed":
        fields["failed_at"] = reported_at or now
        fields["error_code"] = error_code
    elif to_state == "pending":
        fields.update(device_id=None, claimed_at=None, sim_slot=None)
    fields.update(extra or {})
    updated = Recipient.update(**fields).where((Recipient.id == r.id) & (Recipient.state == r.state)).execute()
    if not updated:
        return False
    RecipientEvent.create(recipient=r.id, from_state=r.state, to_state=to_state, source=source,
                          device_id=device_id if device_id is not None else r.device_id, error_code=error_code,
                          reported_at=reported_at)
    metrics.count(to_state)
    for k, v in fields.items():
        setattr(r, k, v)
    event = EVENT_FOR_STATE.get(to_state)
    if event:
        references = {} if references is None else references
        if r.message_id not in references:
            references[r.message_id] = Message.select(Message.reference).where(Message.id == r.message_id).scalar()
        reference = references[r.message_id]
        if events is None:
            emit(tenant, event, event_data(r, reference, reported_at))
        else:
            events.append((event, event_data(r, reference, reported_at)))
    return True
