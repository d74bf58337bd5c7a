"""Tenant tables of the contacts addon."""

from peewee import BigAutoField, BigIntegerField, DateTimeField, TextField
from playhouse.postgres_ext import ArrayField

from core.clock import utcnow
from core.datamap import NO_PERSONAL_DATA, WHOLE_TABLE, PersonalData
from core.users import TenantModel


class Contact(TenantModel):
    id = BigAutoField()
    name = TextField()
    phone = TextField()  # E.164, unique
    tags = ArrayField(TextField, default=list)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "contacts"
        # About the person at the number: exported and erased with that number's data.
        privacy = PersonalData(personal=("name", "phone", "tags"), subjects={"phone": "phone"},
                               export=("name", "phone", "tags", "created_at", "updated_at"), erase="delete")


class ContactGroup(TenantModel):
    id = BigAutoField()
    name = TextField()
    created_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "contact_groups"
        privacy = NO_PERSONAL_DATA  # the business's own names for its lists


class GroupMember(TenantModel):
    group_id = BigIntegerField()
    contact_id = BigIntegerField()

    class Meta:
        table_name = "contact_group_members"
        primary_key = False
        privacy = NO_PERSONAL_DATA  # two ids; a contact's rows go with it (ON DELETE CASCADE)


class MessageTemplate(TenantModel):
    id = BigAutoField()
    name = TextField()
    body = TextField()
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "message_templates"
        # The workspace's own texts; they may name people, so they go with the workspace's export and erasure.
        privacy = PersonalData(personal=("body",), subjects={"tenant": WHOLE_TABLE},
                               export=("name", "body", "created_at", "updated_at"), erase="delete")


MODELS = [Contact, ContactGroup, GroupMember, MessageTemplate]
