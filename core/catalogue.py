"""Peewee models of the public catalogue (schema ``public``)."""

from __future__ import annotations

from peewee import (BigAutoField, BooleanField, DateTimeField, ForeignKeyField,
                    IntegerField, Model, TextField, CompositeKey)

from .clock import utcnow
from .datamap import NO_PERSONAL_DATA, PersonalData
from .db import TenantRef, app_db


class CatalogueModel(Model):
    class Meta:
        database = app_db
        schema = "public"


class Tenant(CatalogueModel):
    id = BigAutoField()
    slug = TextField(unique=True)
    name = TextField()
    status = TextField(default="active")
    plan = TextField(default="free")
    schema_name = TextField()
    role_name = TextField()
    database_alias = TextField(default="default")
    theme = TextField(null=True)
    default_region = TextField(default="US")
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    suspended_at = DateTimeField(null=True)
    deletion_scheduled_at = DateTimeField(null=True)
    verified_at = DateTimeField(null=True)  # the owner confirmed their address (or the operator made it)
    approved_at = DateTimeField(null=True)  # an Admin approved a sign-up made under SMSGW_SIGNUP=approval
    # Sending paused by the workspace's Customer (public migration 0007), with the reason they gave.
    sending_paused_at = DateTimeField(null=True)
    sending_paused_reason = TextField(default="")
    # The workspace's default language for its pages and mails to its members (public migration 0011; "" = the platform's).
    language = TextField(default="")

    class Meta:
        table_name = "tenant"
        privacy = PersonalData(personal=("name",), subjects={"tenant": "id"},
                               export=("slug", "name", "plan", "status", "created_at", "verified_at"), erase="delete")

    @property
    def ref(self) -> TenantRef:
        return TenantRef(self.id, self.slug, self.schema_name, self.role_name)

    @property
    def is_active(self) -> bool:
        return self.status == "active"


class TenantAddon(CatalogueModel):
    tenant = ForeignKeyField(Tenant, column_name="tenant_id", on_delete="CASCADE")
    addon = TextField()
    enabled = BooleanField()
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "tenant_addon"
        privacy = NO_PERSONAL_DATA
        primary_key = CompositeKey("tenant", "addon")


class TenantMigration(CatalogueModel):
    tenant = ForeignKeyField(Tenant, column_name="tenant_id", on_delete="CASCADE")
    addon = TextField()
    version = IntegerField()
    applied_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "tenant_migration"
        privacy = NO_PERSONAL_DATA
        primary_key = CompositeKey("tenant", "addon", "version")


class ReservedSlug(CatalogueModel):
    """A subdomain no sign-up may take before ``reserved_until`` (a deleted workspace's, for a while)."""

    slug = TextField(primary_key=True)
    reserved_until = DateTimeField()
    reason = TextField(default="")
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "reserved_slug"
        privacy = NO_PERSONAL_DATA  # a subdomain and dates: what a deleted workspace leaves behind


CATALOGUE_MODELS = [Tenant, TenantAddon, TenantMigration, ReservedSlug]
