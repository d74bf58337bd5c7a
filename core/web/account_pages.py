"""The signed-in dashboard's own pages: overview, profile, team (Customer) and API tokens (Customer)."""

from __future__ import annotations

import re

from peewee import fn

from .. import passwords
from ..catalogue import utcnow
from ..events import emit
from ..identity import AuthError, check_password, create_api_token, revoke_api_token, revoke_user_credentials, set_password
from ..permissions import API_SCOPES
from ..users import TENANT_ROLES, ApiToken, User
from .auth_pages import audit
from .base import PageHandler
from .problem import Problem

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}$")


def _int(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise Problem(404, "not-found", "There is no such item here.")
    return int(value)


class DashboardHandler(PageHandler):
    permission = "dashboard:view"

    async def get(self):
        def stats():
            return {"users": User.select(fn.count(User.id)).where(User.is_active == True).scalar(),  # noqa: E712
                    "tokens": ApiToken.select(fn.count(ApiToken.id)).where(ApiToken.revoked_at.is_null()).scalar()}

        self.render("dashboard.html", stats=await self.in_tenant(stats))


class ProfileHandler(PageHandler):
    permission = "profile:edit"

    async def get(self):
        user = await self.in_tenant(User.get_by_id, self.principal.id)
        self.render("profile.html", user=user, errors={})

    async def post(self):
        action = self.get_body_argument("action", "profile")
        platform = self.platform
        principal = self.principal
        errors = {}
        if action == "password":
            current = self.get_body_argument("current_password", "")
            new = self.get_body_argument("new_password", "")

            def change():
                user = User.get_by_id(principal.id)
                if check_password(user.email, current, platform.pepper, platform.bcrypt_cost) is None:
                    raise AuthError("Your current password is not right.")
                passwords.check_policy(new)
                # Other sessions and refresh tokens die; this browser stays signed in.
                set_password(user, new, platform.pepper, platform.bcrypt_cost, keep_session_id=principal.session_id)
                return user

            try:
                user = await self.in_tenant(change)
            except (AuthError, passwords.PasswordPolicyError) as exc:
                errors["password"] = str(exc)
            else:
                await self.run_db(emit, platform, audit(self, "password.changed", actor=principal.actor,
                                                        actor_name=user.email, target=principal.actor))
                self.flash("success", "Your password was changed. Other sessions were signed out.")
                self.redirect("/account")
                return
        else:
            name = self.get_body_argument("name", "").strip()[:200]
            email = self.get_body_argument("email", "").strip()[:254]
            phone = self.get_body_argument("phone", "").strip()[:40]
            job_title = self.get_body_argument("job_title", "").strip()[:100]
            if not EMAIL_RE.match(email):
                errors["email"] = "Enter a valid email address."
            if phone and not re.match(r"^\+?[0-9 ()./-]{3,40}$", phone):
                errors["phone"] = "Use digits, spaces and + ( ) - only."

            def save():
                user = User.get_by_id(principal.id)
                other = User.by_email(email)
                if other is not None and other.id != user.id:
                    raise AuthError("Another member of this workspace uses that email.")
                changed_email = email.lower() != user.email.lower()
                User.update(name=name, email=email, phone=phone, job_title=job_title, updated_at=utcnow(),
                            email_verified_at=None if changed_email else user.email_verified_at
                            ).where(User.id == user.id).execute()
                return changed_email

            if not errors:
                try:
                    changed_email = await self.in_tenant(save)
                except AuthError as exc:
                    errors["email"] = str(exc)
                else:
                    if changed_email:
                        from .auth_pages import send_verification

                        await self.run_db(send_verification, platform, self.tenant, user_id=principal.id)
                        await self.run_db(emit, platform, audit(self, "email.changed", actor=principal.actor,
                                                                actor_name=email))
                    self.flash("success", "Your details were saved.")
                    self.redirect("/account")
                    return
        user = await self.in_tenant(User.get_by_id, principal.id)
        self.set_status(422)
        self.render("profile.html", user=user, errors=errors)


class TeamHandler(PageHandler):
    permission = "users:read"
    permissions = {"GET": "users:read", "POST": "users:manage"}

    async def get(self):
        users = await self.in_tenant(lambda: list(User.select().order_by(User.created_at)))
        self.render("team.html", users=users, errors={}, roles=TENANT_ROLES)

    async def post(self):
        action = self.get_body_argument("action", "")
        platform = self.platform
        principal = self.principal
        tenant = self.tenant
        if action == "invite":
            email = self.get_body_argument("email", "").strip()[:254]
            role = self.get_body_argument("role", "user")
            if not EMAIL_RE.match(email) or role not in TENANT_ROLES:
                users = await self.in_tenant(lambda: list(User.select().order_by(User.created_at)))
                self.set_status(422)
                self.render("team.html", users=users, roles=TENANT_ROLES,
                            errors={"invite": "Enter a valid email address and a role."})
                return

            def invite():
                if User.by_email(email):
                    raise AuthError(f"{email} is already a member of this workspace.")
                user = User.create(email=email, role=role, invited_by=principal.id)
                return user, platform.links.make("invite", tenant.slug, user.id, {"e": email})

            try:
                user, token = await self.in_tenant(invite)
            except AuthError as exc:
                users = await self.in_tenant(lambda: list(User.select().order_by(User.created_at)))
                self.set_status(422)
                self.render("team.html", users=users, roles=TENANT_ROLES, errors={"invite": str(exc)})
                return
            url = f"{self.settings_.public_url(tenant.slug)}/accept-invite?token={token}"
            await self.run_db(platform.mailer.send, email, f"You are invited to {tenant.name}",
                              f"{principal.name or principal.email} invited you to {tenant.name} on SMS Gateway.\n\n"
                              f"Accept the invitation and choose a password (valid 7 days, once):\n{url}\n")
            await self.run_db(emit, platform, audit(self, "user.invited", actor=principal.actor,
                                                    actor_name=principal.email, target=f"user:{user.id}",
                                                    email=email, role=role))
            self.flash("success", f"Invitation sent to {email}.")
            self.redirect("/team")
            return
        user_id = _int(self.get_body_argument("user_id", ""))
        if user_id == principal.id:
            raise Problem(400, "cannot-change-self", "You cannot change your own role or disable yourself.")

        def change():
            user = User.get_or_none(User.id == user_id)
            if user is None:
                raise Problem(404, "not-found", "There is no such member here.")
            if action == "role":
                role = self.get_body_argument("role", "")
                if role not in TENANT_ROLES:
                    raise Problem(400, "invalid-role", "Choose Customer or User.")
                User.update(role=role, updated_at=utcnow()).where(User.id == user_id).execute()
                revoke_user_credentials(user_id)  # new rights take effect at next sign-in
                return user, "user.role_changed", {"from": user.role, "to": role}
            if action in ("disable", "enable"):
                User.update(is_active=action == "enable", updated_at=utcnow()).where(User.id == user_id).execute()
                if action == "disable":
                    revoke_user_credentials(user_id)
                return user, f"user.{action}d", {}
            if action == "delete":
                revoke_user_credentials(user_id)
                User.delete().where(User.id == user_id).execute()
                return user, "user.deleted", {}
            raise Problem(400, "invalid-action", "Unknown action.")

        user, event, details = await self.in_tenant(change)
        await self.run_db(emit, platform, audit(self, event, actor=principal.actor, actor_name=principal.email,
                                                target=f"user:{user.id}", email=user.email, **details))
        self.flash("success", "Saved.")
        self.redirect("/team")


class TokensHandler(PageHandler):
    permission = "tokens:manage"

    async def get(self):
        tokens = await self.in_tenant(lambda: list(ApiToken.select().order_by(ApiToken.created_at.desc())))
        self.render("tokens.html", tokens=tokens, scopes=API_SCOPES, new_token=None, error=None)

    async def post(self):
        action = self.get_body_argument("action", "create")
        principal = self.principal
        if action == "revoke":
            token_id = _int(self.get_body_argument("token_id", ""))
            row = await self.in_tenant(revoke_api_token, token_id)
            if row is None:
                raise Problem(404, "not-found", "There is no such token here.")
            await self.run_db(self.platform.credentials_changed, self.tenant.slug)
            await self.run_db(emit, self.platform, audit(self, "token.revoked", actor=principal.actor,
                                                         actor_name=principal.email, target=f"token:{row.id}",
                                                         name=row.name))
            self.flash("success", f"Token “{row.name}” revoked.")
            self.redirect("/tokens")
            return
        name = self.get_body_argument("name", "")
        scopes = self.get_body_arguments("scope")
        try:
            row, token = await self.in_tenant(create_api_token, self.tenant.slug, name, scopes, principal.id)
        except AuthError as exc:
            tokens = await self.in_tenant(lambda: list(ApiToken.select().order_by(ApiToken.created_at.desc())))
            self.set_status(422)
            self.render("tokens.html", tokens=tokens, scopes=API_SCOPES, new_token=None, error=str(exc))
            return
        await self.run_db(emit, self.platform, audit(self, "token.created", actor=principal.actor,
                                                     actor_name=principal.email, target=f"token:{row.id}",
                                                     name=row.name, scopes=list(row.scopes)))
        tokens = await self.in_tenant(lambda: list(ApiToken.select().order_by(ApiToken.created_at.desc())))
        # Shown once, on this response only; never stored or shown again.
        self.set_header("Cache-Control", "no-store")
        self.render("tokens.html", tokens=tokens, scopes=API_SCOPES, new_token=token, error=None)
