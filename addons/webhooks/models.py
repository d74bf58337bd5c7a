"""Tenant tables of the webhooks addon."""

from peewee import BigAutoField, BigIntegerField, BooleanField, DateTimeField, ForeignKeyField, IntegerField, TextField
from playhouse.postgres_ext import ArrayField, BinaryJSONField

from core.clock import utcnow
from core.datamap import NO_PERSONAL_DATA, PersonalData, WHOLE_TABLE
from core.users import TenantModel


class Endpoint(TenantModel):
    id = BigAutoField()
    url = TextField()
    description = TextField(default="")
    events = ArrayField(TextField)
    enabled = BooleanField(default=True)
    secret_enc = TextField()
    previous_secret_enc = TextField(null=True)
    previous_secret_until = DateTimeField(null=True)
    device_id = BigIntegerField(null=True)
    compat_id = TextField(null=True, unique=True)
    disabled_reason = TextField(null=True)
    failing_since = DateTimeField(null=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "webhook_endpoints"
        privacy = NO_PERSONAL_DATA


class Event(TenantModel):
    id = TextField(primary_key=True)
    event = TextField()
    payload = BinaryJSONField()
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "webhook_events"
        # An inbound SMS's text is the payload's data.body; retention removes it and nothing else.
        privacy = PersonalData(personal=("payload",), content=("payload.data.body",),
                               subjects={"tenant": WHOLE_TABLE}, redact_after="created_at", erase="delete")


class Delivery(TenantModel):
    id = BigAutoField()
    endpoint = ForeignKeyField(Endpoint, column_name="endpoint_id", on_delete="CASCADE")
    event = ForeignKeyField(Event, column_name="event_id", on_delete="CASCADE")
    state = TextField(default="pending")
    attempts = IntegerField(default=0)
    next_attempt_at = DateTimeField(default=utcnow)
    locked_until = DateTimeField(null=True)  # the claim's lease
    claimed_by = TextField(null=True)  # host:pid:boot id of the process attempting it
    last_status = IntegerField(null=True)
    last_error = TextField(null=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "webhook_deliveries"
        privacy = NO_PERSONAL_DATA


class Attempt(TenantModel):
    id = BigAutoField()
    delivery = ForeignKeyField(Delivery, column_name="delivery_id", on_delete="CASCADE")
    attempt = IntegerField()
    trigger = TextField(default="schedule")
    at = DateTimeField(default=utcnow)
    status_code = IntegerField(null=True)
    duration_ms = IntegerField(null=True)
    error = TextField(null=True)
    response_excerpt = TextField(null=True)

    class Meta:
        table_name = "webhook_attempts"
        # An endpoint's answer may echo the SMS text it was sent: removed with the texts (retention).
        privacy = PersonalData(content=("response_excerpt",), subjects={"tenant": WHOLE_TABLE}, redact_after="at",
                               erase="delete")


MODELS = [Endpoint, Event, Delivery, Attempt]
