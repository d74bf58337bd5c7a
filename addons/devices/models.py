"""Tenant tables of the devices addon."""

from peewee import BigAutoField, BigIntegerField, BooleanField, DateTimeField, ForeignKeyField, IntegerField, TextField
from playhouse.postgres_ext import BinaryJSONField

from core.clock import utcnow
from core.datamap import PersonalData, WHOLE_TABLE
from core.users import TenantModel


class Device(TenantModel):
    id = BigAutoField()
    name = TextField()
    device_uid = TextField()  # chosen by the phone: identifies nothing on its own (see service.register)
    model = TextField(default="")
    os_version = TextField(default="")
    app_version = TextField(default="")
    sims = BinaryJSONField(default=list)
    token_hash = TextField(null=True, unique=True)
    token_hint = TextField(default="")
    enabled = BooleanField(default=True)
    online = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    last_seen_at = DateTimeField(null=True)
    battery_level = IntegerField(null=True)
    charging = BooleanField(null=True)
    signal = IntegerField(null=True)
    queue_length = IntegerField(default=0)
    settings = BinaryJSONField(default=dict)
    settings_version = IntegerField(default=1)
    removed_at = DateTimeField(null=True)

    class Meta:
        table_name = "devices"
        privacy = PersonalData(personal=("name", "device_uid", "model", "os_version", "sims"),
                               subjects={"tenant": WHOLE_TABLE},
                               export=("name", "device_uid", "model", "os_version", "app_version", "sims",
                                       "created_at", "last_seen_at", "removed_at"), erase="delete")

    def public(self) -> dict:
        def iso(t):
            return t.isoformat() if t else None

        return {
            "id": self.id, "name": self.name, "device_uid": self.device_uid, "model": self.model,
            "os_version": self.os_version, "app_version": self.app_version, "sims": self.sims,
            "enabled": self.enabled, "online": self.online, "created_at": iso(self.created_at),
            "last_seen_at": iso(self.last_seen_at), "battery_level": self.battery_level, "charging": self.charging,
            "signal": self.signal, "queue_length": self.queue_length, "settings": self.settings,
            "settings_version": self.settings_version, "token_hint": self.token_hint,
        }


class PairingCode(TenantModel):
    code_hash = TextField(primary_key=True)
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)
    created_by = TextField(default="")
    device_id = BigIntegerField(null=True)
    repair_device_id = BigIntegerField(null=True)  # made on that device's page: pairing replaces its token

    class Meta:
        table_name = "pairing_codes"
        privacy = PersonalData(subjects={"actor": "created_by"},
                               export=("created_at", "expires_at", "used_at", "device_id"), erase="redact")


class DeviceInbound(TenantModel):
    id = BigAutoField()
    device = ForeignKeyField(Device, column_name="device_id", on_delete="CASCADE")
    phone_message_id = TextField()
    sender = TextField()
    body = TextField()
    sim_slot = IntegerField(null=True)
    received_at = DateTimeField()
    uploaded_at = DateTimeField(default=utcnow)
    redacted_at = DateTimeField(null=True)  # the body was removed (retention): ``body`` is empty

    class Meta:
        table_name = "device_inbound"
        privacy = PersonalData(personal=("sender",), content=("body",), subjects={"phone": "sender"},
                               export=("sender", "body", "sim_slot", "received_at"), redact_after="received_at",
                               redacted_at="redacted_at", erase="redact")


MODELS = [Device, PairingCode, DeviceInbound]
