"""People of a tenant (tenant schema): the Customer who owns it and its Users."""

from __future__ import annotations

from peewee import BigAutoField, BooleanField, DateTimeField, Model, TextField, fn

from .catalogue import utcnow
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

    @classmethod
    def by_email(cls, email: str):
        return cls.get_or_none(fn.lower(cls.email) == email.strip().lower())
