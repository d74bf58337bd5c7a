"""Tenant tables of the messaging addon."""

from peewee import (BigAutoField, BigIntegerField, BooleanField, DateTimeField, ForeignKeyField, IntegerField,
                    SmallIntegerField, TextField)
from playhouse.postgres_ext import ArrayField, BinaryJSONField

from core.clock import utcnow
from core.users import TenantModel


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

    class Meta:
        table_name = "messages"


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
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    claimed_at = DateTimeField(null=True)
    sent_at = DateTimeField(null=True)
    delivered_at = DateTimeField(null=True)
    failed_at = DateTimeField(null=True)

    class Meta:
        table_name = "recipients"


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


class IdempotencyKey(TenantModel):
    key = TextField(primary_key=True)
    request_hash = TextField()
    status = IntegerField()
    response = BinaryJSONField()
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "idempotency_keys"


class Suppression(TenantModel):
    phone = TextField(primary_key=True)
    reason = TextField(default="")
    source = TextField(default="manual")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "suppressions"


class MessagingSettings(TenantModel):
    id = BooleanField(primary_key=True, default=True)
    max_attempts = IntegerField(default=3)
    sticky_sender = BooleanField(default=False)
    claim_timeout_seconds = IntegerField(default=600)

    class Meta:
        table_name = "messaging_settings"


MODELS = [Message, Recipient, RecipientEvent, IdempotencyKey, Suppression, MessagingSettings]
