"""Which workspaces an email address belongs to, for "find my workspace" on the landing page.

``public.member_directory`` holds a keyed hash of each address that signed up, accepted an
invitation or signed in, with the workspace. It is a hint, never the truth: :func:`workspaces_of`
checks each candidate against that workspace's own users (active, same address) and drops rows that
no longer match, so a changed, removed or erased address is never mailed a link. A lookup touches
only the workspaces the address was seen in, never all of them.
"""

from __future__ import annotations

import hashlib
import hmac

from .db import app_db, connection, tenant_transaction
from .tenancy import TenantError


def email_key(platform, email: str) -> str:
    """The directory's key for ``email``: not reversible without the platform's link secret."""
    return hmac.new(f"member-directory:{platform.link_secret}".encode(), email.strip().lower().encode(),
                    hashlib.sha256).hexdigest()


def remember(platform, tenant_id: int, email: str) -> None:
    """Note that ``email`` belongs to workspace ``tenant_id`` (an upsert; cheap enough per sign-in)."""
    with connection():
        app_db.execute_sql(
            "INSERT INTO public.member_directory (email_key, tenant_id) VALUES (%s, %s) "
            "ON CONFLICT (email_key, tenant_id) DO UPDATE SET seen_at = now()",
            (email_key(platform, email), tenant_id))


def workspaces_of(platform, email: str) -> list:
    """The active workspaces (:class:`core.tenancy.TenantInfo`) where ``email`` is an active user now."""
    from .users import User

    key = email_key(platform, email)
    with connection():
        slugs = [slug for (slug,) in app_db.execute_sql(
            "SELECT t.slug FROM public.member_directory d JOIN public.tenant t ON t.id = d.tenant_id "
            "WHERE d.email_key = %s AND t.status = 'active' ORDER BY t.name", (key,)).fetchall()]
    found, stale = [], []
    for slug in slugs:
        try:
            tenant = platform.tenants.get(slug)
        except TenantError:  # deleted meanwhile (its rows went with it)
            continue
        with tenant_transaction(tenant.ref):
            user = User.by_email(email)
            member = user is not None and user.is_active
        (found if member else stale).append(tenant)
    if stale:
        with connection():
            app_db.execute_sql("DELETE FROM public.member_directory WHERE email_key = %s AND tenant_id = ANY(%s)",
                               (key, [t.id for t in stale]))
    return found
