"""Tenant tables of the mobile addon (``migrations/tenant/0020_mobile.sql``, ``0021_mobile_logins.sql``)."""

from peewee import BigAutoField, BooleanField, BigIntegerField, DateTimeField, IntegerField, TextField

from core.clock import utcnow
from core.datamap import NO_PERSONAL_DATA, PersonalData
from core.users import TenantModel


class Enrollment(TenantModel):
    """An enrollment token: the app's *Private Token*, good for ``phones`` phones until ``expires_at``."""

    id = BigAutoField()
    token_hash = TextField(unique=True)
    token_hint = TextField(default="")
    name = TextField(default="")
    phones = IntegerField()
    used = IntegerField(default=0)
    created_by = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    revoked_at = DateTimeField(null=True)

    class Meta:
        table_name = "mobile_enrollments"
        privacy = PersonalData(subjects={"actor": "created_by"},
                               export=("name", "phones", "used", "created_at", "expires_at", "revoked_at"),
                               erase="redact")


class MobileDevice(TenantModel):
    """A device that joined through the app (its row in ``devices`` is the one messaging knows)."""

    device_id = BigIntegerField(primary_key=True)
    enrollment_id = BigIntegerField(null=True)
    signing_key_enc = TextField()
    push_token = TextField(null=True)
    app_version = TextField(default="")
    replaces_device_id = BigIntegerField(null=True)
    replaced_by_device_id = BigIntegerField(null=True)
    login_id = BigIntegerField(null=True)
    export_pending = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "mobile_devices"
        privacy = NO_PERSONAL_DATA


class Offer(TenantModel):
    """A recipient offered to an app phone by ``GET /message`` (its id is the app's message id)."""

    recipient_id = BigIntegerField(primary_key=True)
    device_id = BigIntegerField()
    offered_at = DateTimeField(default=utcnow)
    acked_at = DateTimeField(null=True)
    cancel_requested_at = DateTimeField(null=True)

    class Meta:
        table_name = "mobile_offers"
        privacy = NO_PERSONAL_DATA


class Login(TenantModel):
    """The app's login and password: they enroll more phones on the token the first phone used."""

    id = BigAutoField()
    login = TextField(unique=True)
    password_hash = TextField()
    enrollment_id = BigIntegerField()
    device_id = BigIntegerField()
    created_at = DateTimeField(default=utcnow)
    password_changed_at = DateTimeField(null=True)

    class Meta:
        table_name = "mobile_logins"
        privacy = NO_PERSONAL_DATA


class Code(TenantModel):
    """A one-time code (``GET /user/code``) that enrolls one phone, as the login it came from could."""

    id = BigAutoField()
    code_hash = TextField(unique=True)
    login_id = BigIntegerField()
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)

    class Meta:
        table_name = "mobile_codes"
        privacy = NO_PERSONAL_DATA


class Export(TenantModel):
    """A request to an app phone to send again the SMS it received between ``since`` and ``until``."""

    id = BigAutoField()
    device_id = BigIntegerField()
    since = DateTimeField()
    until = DateTimeField()
    requested_by = TextField(default="")
    requested_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField(null=True)

    class Meta:
        table_name = "mobile_exports"
        privacy = PersonalData(subjects={"actor": "requested_by"}, export=("device_id", "since", "until",
                                                                          "requested_at", "sent_at"),
                               erase="redact")


MODELS = [Enrollment, MobileDevice, Offer, Login, Code, Export]
