"""Platform Admins (the operators), stored in the public catalogue."""

from __future__ import annotations

import re

from peewee import BigAutoField, BooleanField, DateTimeField, TextField, fn

from . import passwords
from .catalogue import CatalogueModel
from .clock import utcnow
from .datamap import PersonalData
from .db import connection

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}$")


class AdminError(ValueError):
    pass


class PlatformAdmin(CatalogueModel):
    id = BigAutoField()
    email = TextField()
    name = TextField(default="")
    password_hash = TextField()
    is_active = BooleanField(default=True)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "platform_admin"
        privacy = PersonalData(personal=("email", "name"), subjects={"admin": "id"},
                               export=("email", "name", "is_active", "created_at"), erase="delete")

    @classmethod
    def by_email(cls, email: str):
        return cls.get_or_none(fn.lower(cls.email) == (email or "").strip().lower())


def create_admin(platform, email: str, password: str, name: str = "") -> PlatformAdmin:
    email = (email or "").strip()
    if not EMAIL_RE.match(email):
        raise AdminError(f"{email[:80]!r} does not look like an email address.")
    try:
        hashed = passwords.hash_password(password, platform.pepper, platform.bcrypt_cost)
    except passwords.PasswordPolicyError as exc:
        raise AdminError(str(exc)) from None
    with connection():
        if PlatformAdmin.by_email(email):
            raise AdminError(f"An admin with the email {email} already exists.")
        return PlatformAdmin.create(email=email, name=name, password_hash=hashed)


def ensure_admin(platform, email: str, password: str) -> None:
    """Create the admin if missing (the demo set-up of ``make run``)."""
    with connection():
        if PlatformAdmin.by_email(email):
            return
    create_admin(platform, email, password, name="Platform admin")
