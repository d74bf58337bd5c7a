"""Tenant tables of the compat addon."""

from peewee import BigIntegerField, DateTimeField, IntegerField, TextField, UUIDField

from core.clock import utcnow
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


class TokenFamily(TenantModel):
    """The lifetime a refresh-token family gives the access tokens it mints (its scope is the kernel's,
    ``refresh_tokens.scope``)."""

    family_id = UUIDField(primary_key=True)
    ttl = IntegerField()
    expires_at = DateTimeField()

    class Meta:
        table_name = "compat_token_families"


MODELS = [AccessToken, TokenFamily]
