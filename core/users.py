"""People of a tenant (tenant schema): the Customer who owns it and its Users."""

from __future__ import annotations

from peewee import BigAutoField, BigIntegerField, BooleanField, DateTimeField, Model, TextField, UUIDField, fn
from playhouse.postgres_ext import ArrayField

from .clock import utcnow
from .datamap import NO_PERSONAL_DATA, PersonalData
from .db import app_db

ROLE_CUSTOMER = "customer"
ROLE_USER = "user"
TENANT_ROLES = (ROLE_CUSTOMER, ROLE_USER)


class TenantModel(Model):
    """Base of every tenant-scoped model: no schema, resolved by the tenant's search_path."""

    class Meta:
        database = app_db


class User(TenantModel):
    id = BigAutoField()
    email = TextField()
    name = TextField(default="")
    password_hash = TextField(null=True)
    role = TextField()
    is_active = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "users"
        privacy = PersonalData(personal=("email", "name", "phone", "job_title"), subjects={"user": "id"},
                               export=("email", "name", "phone", "job_title", "role", "is_active", "created_at",
                                       "email_verified_at", "last_login_at", "time_zone", "language"), erase="delete")

    @classmethod
    def by_email(cls, email: str):
        return cls.get_or_none(fn.lower(cls.email) == email.strip().lower())


# Columns added by tenant migration 0002_identity.
User._meta.add_field("phone", TextField(default=""))
User._meta.add_field("job_title", TextField(default=""))
User._meta.add_field("email_verified_at", DateTimeField(null=True))
User._meta.add_field("password_changed_at", DateTimeField(null=True))
User._meta.add_field("last_login_at", DateTimeField(null=True))
User._meta.add_field("invited_by", BigIntegerField(null=True))
# Tenant migration 0004: the member's time zone (IANA name; empty: UTC), see core.localtime.
User._meta.add_field("time_zone", TextField(default=""))
# Tenant migration 0005_language: the person's own language for pages and mails ("" = the workspace's).
User._meta.add_field("language", TextField(default=""))


class Session(TenantModel):
    id = BigAutoField()
    token_hash = TextField(unique=True)
    user_id = BigIntegerField()
    created_at = DateTimeField(default=utcnow)
    last_seen_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    revoked_at = DateTimeField(null=True)
    ip = TextField(default="")
    user_agent = TextField(default="")

    class Meta:
        table_name = "sessions"
        privacy = PersonalData(personal=("ip", "user_agent"), subjects={"user": "user_id"},
                               export=("created_at", "last_seen_at", "expires_at", "revoked_at", "ip", "user_agent"),
                               erase="delete")


class RefreshToken(TenantModel):
    id = BigAutoField()
    family_id = UUIDField()
    token_hash = TextField(unique=True)
    user_id = BigIntegerField(null=True)  # the holder: a user, or (api_token_id) an API token
    created_at = DateTimeField(default=utcnow)
    family_expires_at = DateTimeField()
    used_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)
    # Tenant migration 0003: what the family was derived from, and what it may mint.
    api_token_id = BigIntegerField(null=True)
    scope = TextField(null=True)
    parent_family_id = UUIDField(null=True)

    class Meta:
        table_name = "refresh_tokens"
        privacy = PersonalData(subjects={"user": "user_id"},
                               export=("created_at", "family_expires_at", "used_at", "revoked_at", "scope"),
                               erase="delete")


class ApiToken(TenantModel):
    id = BigAutoField()
    name = TextField()
    token_hash = TextField(unique=True)
    hint = TextField()
    scopes = ArrayField(TextField)
    created_by = BigIntegerField(null=True)
    created_at = DateTimeField(default=utcnow)
    last_used_at = DateTimeField(null=True)
    revoked_at = DateTimeField(null=True)

    class Meta:
        table_name = "api_tokens"
        privacy = PersonalData(subjects={"user": "created_by"},
                               export=("name", "hint", "scopes", "created_at", "last_used_at", "revoked_at"),
                               erase="redact")


class OneTimeLink(TenantModel):
    nonce = TextField(primary_key=True)
    purpose = TextField()
    used_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "one_time_links"
        privacy = NO_PERSONAL_DATA


TENANT_MODELS = [User, Session, RefreshToken, ApiToken, OneTimeLink]
