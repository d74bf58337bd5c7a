"""Recovering from failure: cancel what is not sent yet, send again what failed, and the same for
a whole campaign (one bulk submission from the dashboard). The API (``/cancel``, ``/retry``) and the
dashboard's buttons call these functions, inside the tenant transaction, so they cannot diverge.

A retry never moves a failed recipient back: ``failed`` is final (see :mod:`.states`), and its
history, webhooks and counts stay true. It stores a new message with the same text to the numbers
that failed (same reference and campaign), through :func:`.submit.accept` like any send: opt-outs,
quotas and a paused workspace refuse it as they would refuse a new send.
"""

from __future__ import annotations

from core.i18n import N_
from core.web.problem import Problem

from . import submit
from .models import Campaign, Message, Recipient
from .transitions import transition_all

# What Android's SmsManager result codes mean, for people (a phone reports them with or without
# the RESULT_ERROR_ prefix; the numeric codes are the same results by number).
EXPLANATIONS = {
    "GENERIC_FAILURE": N_("The phone's network refused the SMS without saying why (often no credit, or the "
                          "network was busy). Retrying, perhaps on another phone, usually works."),
    "RADIO_OFF": N_("The phone's radio was off (airplane mode). Turn it on, or retry on another phone."),
    "NULL_PDU": N_("The phone could not build the SMS (a fault of the phone's SMS app). Retrying on another "
                   "phone may work."),
    "NO_SERVICE": N_("The phone had no mobile network. Retry once it has signal, or on another phone."),
    "LIMIT_EXCEEDED": N_("Android's limit on SMS per hour was reached on that phone. Retry later or on "
                         "another phone."),
    "FDN_CHECK_FAILURE": N_("The SIM only allows fixed dialling numbers, and this number is not one of them."),
    "SHORT_CODE_NOT_ALLOWED": N_("The phone's owner did not allow SMS to this short code."),
    "SHORT_CODE_NEVER_ALLOWED": N_("The phone is set to never send SMS to this short code."),
    "INVALID_DESTINATION": N_("The network says the number cannot receive SMS. Check the number."),
}
_NUMERIC = {"1": "GENERIC_FAILURE", "2": "RADIO_OFF", "3": "NULL_PDU", "4": "NO_SERVICE", "5": "LIMIT_EXCEEDED"}


def explain(code: str | None) -> str | None:
    """The untranslated explanation of a failed recipient's ``error_code`` (translate it where it is
    shown), or None for a code we know nothing about."""
    if not code:
        return None
    key = code.upper().removeprefix("RESULT_ERROR_")
    return EXPLANATIONS.get(_NUMERIC.get(key, key))


def cancel(tenant, registry, message_ids: list[int], source: str) -> tuple[int, int, list[str]]:
    """Cancel every pending (or scheduled) recipient of the messages, and ask phones that hold one
    back where they can (``smsgw_device_recall``). Returns ``(cancelled, recalling, refusals)``."""
    pending = (Recipient.select().where(Recipient.message.in_(message_ids) & Recipient.state.in_(("pending", "held")))
               .order_by(Recipient.id))
    cancelled = transition_all(tenant, pending.for_update(), "cancelled", source)
    recalling, refusals = 0, []
    for message_id in message_ids:
        asked, refused = recall(registry, tenant, message_id)
        recalling += asked
        refusals += refused
    return cancelled, recalling, refusals


def recall(registry, tenant, message_id: int) -> tuple[int, list[str]]:
    """Recipients of the message that a phone holds: asked back where its protocol can
    (``smsgw_device_recall``). Returns how many the phones were asked to cancel and, for the
    others, why not."""
    held: dict[int, list[int]] = {}
    for rid, device_id in (Recipient.select(Recipient.id, Recipient.device_id)
                           .where((Recipient.message == message_id) & (Recipient.state == "processed"))
                           .tuples()):
        held.setdefault(device_id, []).append(rid)
    recalling, refusals = 0, []
    for device_id, ids in held.items():
        answers: dict = {}
        for result in registry.hook.smsgw_device_recall(tenant=tenant, device_id=device_id, ids=ids):
            answers.update(result or {})
        for rid in ids:
            if rid in answers and answers[rid] is None:
                recalling += 1
            else:
                refusals.append(answers.get(rid) or "a phone has it already and cannot be asked to give it back.")
    return recalling, refusals


def retry(tenant, message: Message, device_id: int | None, created_by: str, region: str) -> tuple[list, list]:
    """Send the message again to its failed recipients (on any phone, or on ``device_id``): one new
    message. Returns ``([its answer as POST /api/v1/messages gives it], wake_keys)``. Raises a :class:`Problem` when
    nothing failed, the text was removed, or the send is refused."""
    return retry_many(tenant, [message], device_id, created_by, region)


def retry_many(tenant, messages: list[Message], device_id: int | None, created_by: str,
               region: str) -> tuple[list, list]:
    """:func:`retry` for several messages at once (a campaign's): one new message per message with
    failed recipients, stored together. Returns their answers and the wake-up keys."""
    failed: dict[int, list[str]] = {}
    for message_id, phone in (Recipient.select(Recipient.message, Recipient.phone)
                              .where(Recipient.message.in_([m.id for m in messages]) & (Recipient.state == "failed"))
                              .order_by(Recipient.id).tuples()):
        failed.setdefault(message_id, []).append(phone)
    again = [m for m in messages if m.id in failed]
    if not again:
        raise Problem(409, "nothing-to-retry", N_("Nothing to retry: no recipient of this failed."))
    if any(m.redacted_at for m in again):
        raise Problem(409, "text-removed", N_("The text of this message was removed (retention); it cannot be "
                                              "sent again."))
    stored, keys = [], set()
    for at in range(0, len(again), submit.MAX_BATCH):  # a campaign may hold more than one request may
        chunk = again[at:at + submit.MAX_BATCH]
        items = []
        for m in chunk:
            item = {"text": m.text, "to": failed[m.id], "priority": m.priority, "delivery_report": m.delivery_report}
            if m.reference is not None:
                item["reference"] = m.reference
            if device_id is not None:
                item["device_id"] = device_id
            items.append(item)
        clean, rejected, _batch = submit.validate_request({"messages": items}, region)
        _status, response, wake = submit.accept(tenant, clean, rejected, True, source="retry", created_by=created_by)
        keys.update(wake)
        for m, answer in zip(chunk, response["messages"]):  # a retry stays in its campaign
            if m.campaign_id is not None and answer["id"] is not None:
                Message.update(campaign_id=m.campaign_id).where(Message.id == answer["id"]).execute()
        stored += response["messages"]
    return stored, sorted(keys)


def start_campaign(name: str, source: str, created_by: str, message_ids: list[int]) -> int:
    """Record a bulk submission and mark its (just stored) messages as its own; the campaign's id."""
    campaign = Campaign.create(name=name[:120], source=source, created_by=created_by)
    Message.update(campaign_id=campaign.id).where(Message.id.in_(message_ids)).execute()
    return campaign.id


def campaign_messages(campaign_id: int) -> list[Message]:
    return list(Message.select().where(Message.campaign_id == campaign_id).order_by(Message.id))
