"""Privacy: a member deletes their own account (issue 15, item 3).

From *Account → Privacy* (section ``delete-account``), with their password. Refused for the last
active Customer (the workspace would have no owner: they make someone else Customer first, or
delete the organisation). At once their sessions, refresh tokens (with the access tokens minted
from them) and the API tokens they created die; then their personal data is erased or
pseudonymised wherever it is declared (:func:`.erasure_walk.forget_member`): their account row,
sessions and tokens go, the rows that stay with the workspace (the messages they sent, the API
tokens and pairing codes they made) lose the link to them, and the audit trail names them by a
pseudonym. Their messages stay with the workspace, text included: they are the workspace's.
"""

from __future__ import annotations

from core.db import as_serving_role
from core.events import AuditEvent, emit_with_work
from core.identity import revoke_workspace_credentials
from core.users import ROLE_CUSTOMER, User

from . import requests
from .erasure import password_ok
from .erasure_walk import forget_member, forget_member_shared, new_salt
from .page import SELF, Section


def _other_customers(user_id: int) -> int:
    return User.select().where((User.role == ROLE_CUSTOMER) & (User.is_active == True)  # noqa: E712
                               & (User.id != user_id)).count()


async def load(handler) -> dict | None:
    principal = handler.principal
    if principal.kind != "user" or not principal.can(SELF):
        return None
    last = principal.is_customer and not await handler.in_tenant(_other_customers, principal.id)
    return {"last_customer": last}


def erase_member(platform, tenant, user_id: int) -> dict:
    """Inside the workspace transaction: revoke and erase one member. What was touched."""
    user = User.get_by_id(user_id)
    salt = new_salt()
    revoke_workspace_credentials(platform, tenant, user_id)
    touched = forget_member(platform, user_id, user.email, salt)
    touched.update(forget_member_shared(platform, tenant, user_id, user.email, salt))
    subject = f"user:{user_id}"
    with as_serving_role():
        requests.set_state(requests.open_request("erasure", subject, tenant=tenant, requested_by=subject,
                                                 self_service=True), "done", "account erased")
    # No address, name or IP here: the record of an erasure must not bring back what it erased.
    emit_with_work(platform, AuditEvent("user.erased", tenant.id, tenant.slug, actor=subject, target=subject,
                                        details={"rows": touched}))
    return touched


async def post(handler) -> dict | None:
    _ = handler.gettext()[0]
    platform, tenant, principal = handler.platform, handler.tenant, handler.principal
    password = handler.get_body_argument("password", "")[:2048]

    def work():
        if not password_ok(platform, principal, password):
            return {"password": _("Your password is not right.")}
        if principal.is_customer and not _other_customers(principal.id):
            return {"password": _("You are the only owner of this workspace: make another member an owner "
                                  "first, or delete the whole organisation.")}
        erase_member(platform, tenant, principal.id)
        return None

    errors = await handler.in_tenant(work)
    if errors:
        return errors
    await handler.run_db(platform.credentials_changed, tenant.slug)
    handler.redirect("/login", status=303)
    return None


SECTION = Section("delete-account", 85, "privacy/erasure_account.html", load, post)
