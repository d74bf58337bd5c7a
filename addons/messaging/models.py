"""Tenant tables of the messaging addon."""

from peewee import (BigAutoField, BigIntegerField, BooleanField, DateTimeField, ForeignKeyField, IntegerField,
                    SmallIntegerField, TextField)
from playhouse.postgres_ext import ArrayField, BinaryJSONField

from core.clock import utcnow
from core.datamap import NO_PERSONAL_DATA, PersonalData, WHOLE_TABLE
from core.users import TenantModel

from .states import TERMINAL

# When a message ended: its last recipient's final state change; NULL while any is not final
# (retention, in the privacy addon, never removes the text of a message still going on).
MESSAGE_ENDED = ("(SELECT max(r.updated_at) FROM recipients r WHERE r.message_id = messages.id HAVING "
                 f"bool_and(r.state IN ({', '.join(repr(s) for s in sorted(TERMINAL))})))")


class Message(TenantModel):
    id = BigAutoField()
    created_at = DateTimeField(default=utcnow)
    text = TextField()
    encoding = TextField()
    segments = IntegerField()
    priority = SmallIntegerField(default=0)
    valid_until = DateTimeField(null=True)
    send_at = DateTimeField(null=True)
    delivery_report = BooleanField(default=True)
    reference = TextField(null=True)
    device_id = BigIntegerField(null=True)
    sim_slot = SmallIntegerField(null=True)
    source = TextField(default="api")
    created_by = TextField(default="")
    redacted_at = DateTimeField(null=True)  # the text was removed (retention): ``text`` is empty
    campaign_id = BigIntegerField(null=True)  # the dashboard's bulk submission it came from (Campaign)

    class Meta:
        table_name = "messages"
        privacy = PersonalData(content=("text",), subjects={"actor": "created_by"},
                               export=("created_at", "text", "reference", "send_at", "source"),
                               redact_after="created_at", ended=MESSAGE_ENDED, redacted_at="redacted_at",
                               erase="redact")


class Recipient(TenantModel):
    id = BigAutoField()
    message = ForeignKeyField(Message, column_name="message_id", on_delete="CASCADE", backref="recipients")
    phone = TextField()
    state = TextField(default="pending")
    priority = SmallIntegerField(default=0)
    not_before = DateTimeField(null=True)
    valid_until = DateTimeField(null=True)
    requested_device_id = BigIntegerField(null=True)
    requested_sim = SmallIntegerField(null=True)
    device_id = BigIntegerField(null=True)
    sim_slot = SmallIntegerField(null=True)
    attempts = IntegerField(default=0)
    excluded_devices = ArrayField(BigIntegerField, default=list)
    error_code = TextField(null=True)
    hold_reason = TextField(null=True)  # why it is (or was) held, for people (see states.py)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    claimed_at = DateTimeField(null=True)
    sent_at = DateTimeField(null=True)
    delivered_at = DateTimeField(null=True)
    failed_at = DateTimeField(null=True)

    class Meta:
        table_name = "recipients"
        privacy = PersonalData(personal=("phone",), subjects={"phone": "phone"},
                               export=("message_id", "phone", "state", "created_at", "sent_at", "delivered_at",
                                       "failed_at", "error_code"), erase="redact")


class RecipientEvent(TenantModel):
    id = BigAutoField()
    recipient = ForeignKeyField(Recipient, column_name="recipient_id", on_delete="CASCADE", backref="events")
    at = DateTimeField(default=utcnow)
    from_state = TextField(null=True)
    to_state = TextField()
    source = TextField()
    device_id = BigIntegerField(null=True)
    error_code = TextField(null=True)
    reported_at = DateTimeField(null=True)

    class Meta:
        table_name = "recipient_events"
        privacy = NO_PERSONAL_DATA


class IdempotencyKey(TenantModel):
    key = TextField(primary_key=True)
    request_hash = TextField()
    status = IntegerField()
    response = BinaryJSONField()
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "idempotency_keys"
        privacy = PersonalData(personal=("response",), subjects={"tenant": WHOLE_TABLE}, erase="delete")


class Suppression(TenantModel):
    phone = TextField(primary_key=True)
    reason = TextField(default="")
    source = TextField(default="manual")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "suppressions"
        privacy = PersonalData(personal=("phone", "reason"), subjects={"phone": "phone"},
                               export=("phone", "reason", "source", "created_at"), erase="keep",
                               why="an opt-out must outlive an erasure, or the number gets messages again")


class Campaign(TenantModel):
    """One bulk submission from the dashboard (a CSV upload, a send to several numbers); its messages
    name it (``messages.campaign_id``)."""

    id = BigAutoField()
    created_at = DateTimeField(default=utcnow)
    name = TextField()  # the file's name, or the first words of the text
    source = TextField()
    created_by = TextField(default="")

    class Meta:
        table_name = "campaigns"
        privacy = PersonalData(personal=("name",), subjects={"actor": "created_by"},
                               export=("created_at", "name", "source"), erase="redact")


class MessagingSettings(TenantModel):
    id = BooleanField(primary_key=True, default=True)
    max_attempts = IntegerField(default=3)
    sticky_sender = BooleanField(default=False)
    claim_timeout_seconds = IntegerField(default=600)

    class Meta:
        table_name = "messaging_settings"
        privacy = NO_PERSONAL_DATA


MODELS = [Message, Recipient, RecipientEvent, IdempotencyKey, Suppression, Campaign, MessagingSettings]
