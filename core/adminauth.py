"""Platform Admin sign-in (base domain) and reasoned, time-limited access grants to a tenant."""

from __future__ import annotations

import datetime as dt
import secrets

from . import passwords, tokenformat
from .admins import PlatformAdmin
from .clock import utcnow
from .db import app_db, connection
from .permissions import ADMIN, Principal, role_permissions

ADMIN_SESSION_TTL = dt.timedelta(hours=12)
GRANT_TTL = dt.timedelta(hours=1)
MIN_REASON = 10


class GrantError(ValueError):
    pass


def check_admin_password(email: str, password: str, pepper: bytes, cost: int = passwords.DEFAULT_COST) -> PlatformAdmin | None:
    with connection():
        admin = PlatformAdmin.by_email(email) if email else None
    stored = admin.password_hash if admin is not None and admin.is_active else None
    return admin if passwords.verify_password(password or "", stored, pepper, cost) else None


def create_admin_session(admin: PlatformAdmin, ip: str, user_agent: str) -> str:
    token = secrets.token_urlsafe(32)
    with connection():
        app_db.execute_sql(
            "INSERT INTO public.admin_session (token_hash, admin_id, expires_at, ip, user_agent) "
            "VALUES (%s, %s, %s, %s, %s)",
            (tokenformat.digest(token), admin.id, utcnow() + ADMIN_SESSION_TTL, ip[:64], (user_agent or "")[:300]))
    return token


def admin_session_principal(token: str) -> Principal | None:
    if not token or len(token) > 100:
        return None
    with connection():
        row = app_db.execute_sql("""
            SELECT a.id, a.name, a.email, s.id FROM public.admin_session s
              JOIN public.platform_admin a ON a.id = s.admin_id
             WHERE s.token_hash = %s AND s.revoked_at IS NULL AND s.expires_at > now() AND a.is_active
        """, (tokenformat.digest(token),)).fetchone()
    if row is None:
        return None
    return Principal(kind="admin", id=row[0], role=ADMIN, tenant=None, permissions=frozenset({"platform:admin"}),
                     name=row[1], email=row[2], via="admin_session", session_id=row[3])


def revoke_admin_session(token: str) -> None:
    with connection():
        app_db.execute_sql("UPDATE public.admin_session SET revoked_at = now() WHERE token_hash = %s",
                           (tokenformat.digest(token or ""),))


def access_reason(reason: str) -> str:
    """The written reason for opening a tenant's data (an Admin's, or anyone else's under the same
    rule), stripped; :class:`GrantError` when it is too short or too long."""
    reason = (reason or "").strip()
    if len(reason) < MIN_REASON:
        raise GrantError(f"Write why you need to open this tenant's data (at least {MIN_REASON} characters).")
    if len(reason) > 1000:
        raise GrantError("Keep the reason under 1,000 characters.")
    return reason


def open_grant(admin_id: int, tenant_id: int, reason: str, ip: str) -> int:
    reason = access_reason(reason)
    with connection():
        cur = app_db.execute_sql(
            "INSERT INTO public.admin_access_grant (admin_id, tenant_id, reason, expires_at, ip) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (admin_id, tenant_id, reason, utcnow() + GRANT_TTL, ip[:64]))
        return cur.fetchone()[0]


def active_grant(admin_id: int, tenant_id: int) -> tuple[int, str, dt.datetime] | None:
    """The admin's current grant on this tenant: ``(id, reason, expires_at)``."""
    with connection():
        return app_db.execute_sql(
            "SELECT id, reason, expires_at FROM public.admin_access_grant "
            "WHERE admin_id = %s AND tenant_id = %s AND expires_at > now() ORDER BY created_at DESC LIMIT 1",
            (admin_id, tenant_id)).fetchone()


def grant_principal(admin: Principal, tenant_slug: str, reason: str) -> Principal:
    """What an admin may do inside a tenant under a grant: read, nothing else."""
    return Principal(kind="admin", id=admin.id, role=ADMIN, tenant=tenant_slug,
                     permissions=role_permissions(ADMIN) - {"platform:admin"}, name=admin.name,
                     email=admin.email, via="admin_grant", reason=reason)
