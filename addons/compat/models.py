"""Tenant tables of the compat addon."""

from peewee import BigIntegerField, DateTimeField, IntegerField, TextField, UUIDField

from core.clock import utcnow
from core.datamap import NO_PERSONAL_DATA, PersonalData
from core.users import TenantModel


class AccessToken(TenantModel):
    """An access token issued by ``POST /3rdparty/v1/auth/token`` (or a jti revoked by ``DELETE``)."""

    jti = TextField(primary_key=True)
    user_id = BigIntegerField(null=True)
    issued_by = TextField(default="")
    family_id = UUIDField(null=True)
    scope = TextField(default="")
    expires_at = DateTimeField()
    created_at = DateTimeField(default=utcnow)
    revoked_at = DateTimeField(null=True)

    class Meta:
        table_name = "compat_access_tokens"
        privacy = PersonalData(subjects={"user": "user_id"},
                               export=("issued_by", "scope", "expires_at", "created_at", "revoked_at"), erase="delete")


class TokenFamily(TenantModel):
    """The lifetime a refresh-token family gives the access tokens it mints (its scope is the kernel's,
    ``refresh_tokens.scope``)."""

    family_id = UUIDField(primary_key=True)
    ttl = IntegerField()
    expires_at = DateTimeField()

    class Meta:
        table_name = "compat_token_families"
        privacy = NO_PERSONAL_DATA


MODELS = [AccessToken, TokenFamily]
