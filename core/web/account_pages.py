"""The signed-in dashboard's own pages: overview, profile, team (Customer) and API tokens (Customer)."""

from __future__ import annotations

import json
import re
import secrets

from peewee import IntegrityError, fn

from .. import limits, passwords
from ..localtime import time_zones, valid_zone
from ..regions import names_language, regions
from ..tenancy import TenantError
from ..clock import utcnow
from ..db import app_db
from ..events import emit, emit_with_work
from ..i18n import N_
from ..identity import (AuthError, _password_stamp, check_password, create_api_token, revoke_api_token,
                        revoke_user_credentials, set_password)
from ..permissions import PUBLIC, catalogue
from ..users import TENANT_ROLES, ApiToken, User
from .auth_pages import audit
from .base import PageHandler
from .overview import FirstStep, OverviewPart, collect
from .params import parse_id
from .problem import Problem

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}$")


class FieldError(AuthError):
    """A refusal that belongs to one form field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


# -- changing the sign-in email ----------------------------------------------------------------
#
# A new address is only *requested* on the account page (with the current password): it becomes
# the sign-in address when the link sent to it is opened. Until then the pending request is kept
# in the tenant's settings table (one entry per user; a newer request or a cancel replaces it, so
# only the latest link works). The old address is told at once, with a link to undo for a week.

def _pending_key(user_id: int) -> str:
    return f"account.email-change.{int(user_id)}"


def pending_email_change(user_id: int) -> dict | None:
    row = app_db.execute_sql("SELECT value FROM settings WHERE key = %s", (_pending_key(user_id),)).fetchone()
    return row[0] if row else None


def clear_pending_email_change(user_id: int) -> None:
    app_db.execute_sql("DELETE FROM settings WHERE key = %s", (_pending_key(user_id),))


def _user_and_pending(user_id: int):
    return User.get_by_id(user_id), pending_email_change(user_id)


def request_email_change(platform, tenant_slug: str, user: User, new_email: str) -> dict:
    """Record the request and make both links (inside the tenant transaction)."""
    change = {"email": new_email, "id": secrets.token_urlsafe(12), "at": utcnow().isoformat()}
    app_db.execute_sql(
        "INSERT INTO settings (key, value, updated_at) VALUES (%s, %s, now()) "
        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        (_pending_key(user.id), json.dumps(change)))
    extra = {"e": new_email, "o": user.email, "c": change["id"]}
    return {**change, "old": user.email,
            "confirm": platform.links.make("email", tenant_slug, user.id, extra),
            "undo": platform.links.make("email-undo", tenant_slug, user.id, extra)}


def send_email_change_mails(platform, tenant, user: User, change: dict) -> None:
    """The link to the new address; the notice, with the undo link, to the old one. Nothing typed
    by the requester (or by whoever named the workspace) goes into them but the new address itself:
    the workspace is named by its address."""
    base = platform.settings.public_url(tenant.slug)
    platform.send_mail(change["email"], lambda _, ngettext, fmt: (
        _("Confirm your new email address"),
        _("Workspace: %(url)s", url=base) + "\n\n"
        + _("Someone asked to make %(email)s the sign-in email of an account there.", email=change["email"])
        + "\n\n" + _("Confirm it here (valid for 24 hours, once):")
        + f"\n{base}/confirm-email?token={change['confirm']}\n\n"
        + _("If it was not you, ignore this email; nothing changes.") + "\n"), language=user.language, tenant=tenant)
    platform.send_mail(change["old"], lambda _, ngettext, fmt: (
        _("Your sign-in email is being changed"),
        _("Workspace: %(url)s", url=base) + "\n\n"
        + _("Someone signed in to your account there asked to change its sign-in email from %(old)s to "
            "%(new)s.", old=change["old"], new=change["email"]) + "\n\n"
        + _("If it was you, there is nothing to do here: the change takes effect once it is confirmed from "
            "the new address.") + "\n\n"
        + _("If it was not you, undo it here (valid for 7 days). This keeps or puts back %(old)s as your "
            "sign-in email and signs out every session; then reset your password:", old=change["old"])
        + f"\n{base}/undo-email-change?token={change['undo']}\n"), language=user.language, tenant=tenant)


class DashboardHandler(PageHandler):
    permission = "dashboard:view"

    async def get(self):
        principal, tenant, registry = self.principal, self.tenant, self.platform.registry
        _, formats = self.gettext()[0], self.platform.catalogues.formats(self.lang)
        params = {k: self.get_query_argument(k) for k in self.request.query_arguments}

        def load():
            stats = {"users": User.select(fn.count(User.id)).where(User.is_active == True).scalar(),  # noqa: E712
                     "tokens": ApiToken.select(fn.count(ApiToken.id)).where(ApiToken.revoked_at.is_null()).scalar()}
            own = OverviewPart(steps=[FirstStep("token", _("Create an API token"), bool(stats["tokens"]), "/tokens",
                                                30)] if principal.can("tokens:manage") else [])
            found = registry.hook.smsgw_overview_parts(tenant=tenant, principal=principal, gettext=_, params=params,
                                                       formats=formats)
            return stats, collect([own, *found])

        stats, (parts, attention, steps) = await self.in_tenant(load)
        self.render("dashboard.html", stats=stats, parts=parts, attention=attention, steps=steps,
                    steps_left=sum(not s.done for s in steps))


class ProfileHandler(PageHandler):
    permission = "profile:edit"

    async def save_language(self, action: str) -> None:
        """A person's own language, or (``settings:write``) the workspace's default language: one of
        the shipped languages, or ``""`` for the next one down (the workspace's, the platform's)."""
        language = self.get_body_argument("language", "")
        if language and language not in self.platform.catalogues.languages:
            raise Problem(400, "unknown-language", N_("We do not ship the language %(lang)s."),
                          args={"lang": repr(language[:20])})
        principal = self.principal
        if action == "workspace-language":
            if not principal.can("settings:write"):
                raise Problem(403, "forbidden", N_("Your role does not allow this. Ask the account owner if you "
                                                   "need it."))
            await self.run_db(self.platform.tenants.set_language, self.tenant.slug, language)
            await self.run_db(emit, self.platform, audit(self, "workspace.language_changed", actor=principal.actor,
                                                         actor_name=principal.email, target=f"tenant:{self.tenant.slug}",
                                                         language=language))
        else:
            await self.in_tenant(lambda: User.update(language=language, updated_at=utcnow())
                                 .where(User.id == principal.id).execute())
            # The menu's language cookie would outrank the new setting in this browser: it follows it.
            if language:
                self.set_cookie("lang", language, max_age=365 * 86400, httponly=True, samesite="Lax",
                                secure=self.request.protocol == "https")
            else:
                self.clear_cookie("lang")
        self.flash("success", N_("Saved."))
        self.redirect("/account")

    async def get(self):
        user, pending = await self.in_tenant(_user_and_pending, self.principal.id)
        self.render("profile.html", user=user, pending=pending, errors={}, form={}, time_zones=time_zones())

    async def post(self):
        action = self.get_body_argument("action", "profile")
        platform = self.platform
        principal = self.principal
        errors = {}
        typed = {}  # what the member typed, shown again with the errors
        if action in ("language", "workspace-language"):
            await self.save_language(action)
            return
        if action == "password":
            current = self.get_body_argument("current_password", "")
            new = self.get_body_argument("new_password", "")

            def change():
                user = User.get_by_id(principal.id)
                if check_password(user.email, current, platform.pepper, platform.bcrypt_cost) is None:
                    raise AuthError(N_("Your current password is not right."))
                passwords.check_policy(new)
                # Other sessions and refresh tokens die; this browser stays signed in.
                set_password(user, new, platform.pepper, platform.bcrypt_cost, keep_session_id=principal.session_id)
                return user

            try:
                await self.in_tenant(change, audit=lambda user: audit(
                    self, "password.changed", actor=principal.actor, actor_name=user.email, target=principal.actor))
            except (AuthError, passwords.PasswordPolicyError) as exc:
                errors["password"] = self.refusal_text(exc)
            else:
                self.flash("success", N_("Your password was changed. Other sessions were signed out."))
                self.redirect("/account")
                return
        elif action == "cancel-email":
            def cancel():
                pending = pending_email_change(principal.id)
                if pending:
                    clear_pending_email_change(principal.id)
                    emit_with_work(platform, audit(self, "email.change_cancelled", actor=principal.actor,
                                                   actor_name=principal.email, target=principal.actor,
                                                   to=pending["email"]))

            await self.in_tenant(cancel)
            self.flash("success", N_("The email change was cancelled."))
            self.redirect("/account")
            return
        else:
            name = self.get_body_argument("name", "").strip()[:200]
            email = self.get_body_argument("email", "").strip()[:254]
            phone = self.get_body_argument("phone", "").strip()[:40]
            job_title = self.get_body_argument("job_title", "").strip()[:100]
            current = self.get_body_argument("current_password", "")[:2048]
            time_zone = self.get_body_argument("time_zone", "").strip()[:64]
            typed = {"name": name, "email": email, "phone": phone, "job_title": job_title, "time_zone": time_zone}
            if not valid_zone(time_zone):
                errors["time_zone"] = "Choose a time zone from the list."
            if not EMAIL_RE.match(email):
                errors["email"] = N_("Enter a valid email address.")
            if phone and not re.match(r"^\+?[0-9 ()./-]{3,40}$", phone):
                errors["phone"] = N_("Use digits, spaces and + ( ) - only.")
            tenant = self.tenant

            def save():
                """Save the details; a new email is only requested here (it becomes the sign-in address
                once confirmed from that address), and only with the current password."""
                user = User.get_by_id(principal.id)
                change = None
                if email.lower() != user.email.lower():
                    other = User.by_email(email)
                    if other is not None and other.id != user.id:
                        raise FieldError("email", N_("Another member of this workspace uses that email."))
                    if check_password(user.email, current, platform.pepper, platform.bcrypt_cost) is None:
                        raise FieldError("current_password", N_("Enter your current password to change your email."))
                    change = request_email_change(platform, tenant.slug, user, email)
                changed = [f for f, v in (("name", name), ("phone", phone), ("job_title", job_title),
                                          ("time_zone", time_zone)) if getattr(user, f) != v]
                if changed:
                    User.update(name=name, phone=phone, job_title=job_title, time_zone=time_zone, updated_at=utcnow()
                                ).where(User.id == user.id).execute()
                    emit_with_work(platform, audit(self, "profile.updated", actor=principal.actor,
                                                   actor_name=user.email, target=principal.actor, fields=changed))
                return user, change

            if not errors:
                try:
                    user, change = await self.in_tenant(save)
                except FieldError as exc:
                    errors[exc.field] = self.refusal_text(exc)
                else:
                    if change:
                        await self.run_db(send_email_change_mails, platform, tenant, user, change)
                        await self.run_db(emit, platform, audit(self, "email.change_requested",
                                                                actor=principal.actor, actor_name=user.email,
                                                                target=principal.actor, to=change["email"]))
                        self.flash("success", N_("Your details were saved. To use %(email)s to sign in, "
                                                 "open the link we sent there."), email=change["email"])
                    else:
                        self.flash("success", N_("Your details were saved."))
                    self.redirect("/account")
                    return
        user, pending = await self.in_tenant(_user_and_pending, principal.id)
        self.set_status(422)
        self.render("profile.html", user=user, pending=pending, errors=errors, form=typed, time_zones=time_zones())


class TeamHandler(PageHandler):
    permission = "users:read"
    permissions = {"GET": "users:read", "POST": "users:manage"}

    async def get(self):
        users = await self.in_tenant(lambda: list(User.select().order_by(User.created_at)))
        self.render("team.html", users=users, errors={}, roles=TENANT_ROLES, form={})

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
                self.render("team.html", users=users, roles=TENANT_ROLES, form={"email": email, "role": role},
                            errors={"invite": "Enter a valid email address and a role."})
                return

            def invite():
                if User.by_email(email):
                    raise AuthError(N_("%(email)s is already a member of this workspace."), {"email": email})
                limits.check(platform, tenant, "member", User.select().where(User.is_active).count)
                user = User.create(email=email, role=role, invited_by=principal.id)
                return user, platform.links.make("invite", tenant.slug, user.id, {"e": email})

            try:
                user, token = await self.in_tenant(invite)
            except (AuthError, Problem) as exc:  # a Problem: a limit of the workspace's plan (402)
                users = await self.in_tenant(lambda: list(User.select().order_by(User.created_at)))
                self.set_status(exc.status if isinstance(exc, Problem) else 422)
                self.render("team.html", users=users, roles=TENANT_ROLES, form={"email": email, "role": role},
                            errors={"invite": exc.detail if isinstance(exc, Problem) else str(exc)})
                return
            url = f"{self.settings_.public_url(tenant.slug)}/accept-invite?token={token}"
            inviter = principal.name or principal.email
            await self.run_db(platform.send_mail, email, lambda _, ngettext, fmt: (
                _("You are invited to %(workspace)s", workspace=tenant.name),
                _("%(inviter)s invited you to %(workspace)s on %(product)s.", inviter=inviter,
                  workspace=tenant.name, product=platform.brand_for(tenant).product_name) + "\n\n"
                + _("Accept the invitation and choose a password (valid 7 days, once):") + f"\n{url}\n"),
                tenant=tenant)
            await self.run_db(emit, platform, audit(self, "user.invited", actor=principal.actor,
                                                    actor_name=principal.email, target=f"user:{user.id}",
                                                    email=email, role=role))
            self.flash("success", N_("Invitation sent to %(email)s."), email=email)
            self.redirect("/team")
            return
        user_id = parse_id(self.get_body_argument("user_id", ""))
        if user_id == principal.id:
            raise Problem(400, "cannot-change-self", N_("You cannot change your own role or disable "
                                                        "yourself."))
        if action in ("disable", "delete"):
            member = await self.in_tenant(lambda: User.get_or_none(User.id == user_id))
            if member is None:
                raise Problem(404, "not-found", N_("There is no such member here."))
            _ = self.gettext()[0]
            name = member.email if not member.name else f"{member.name} ({member.email})"
            question, button, detail = ((_("Disable %(name)s?"), _("Disable member"),
                                         _("They are signed out everywhere and cannot sign in until enabled again."))
                                        if action == "disable" else
                                        (_("Remove %(name)s from this workspace?"), _("Remove member"),
                                         _("They are signed out everywhere. This cannot be undone.")))
            if not self.confirmed(question % {"name": name}, button, "/team", detail):
                return

        def change():
            user = User.get_or_none(User.id == user_id)
            if user is None:
                raise Problem(404, "not-found", N_("There is no such member here."))
            if action == "role":
                role = self.get_body_argument("role", "")
                if role not in TENANT_ROLES:
                    raise Problem(400, "invalid-role", N_("Choose Owner or User."))
                User.update(role=role, updated_at=utcnow()).where(User.id == user_id).execute()
                revoke_user_credentials(user_id)  # new rights take effect at next sign-in
                return user, "user.role_changed", {"from": user.role, "to": role}
            if action in ("disable", "enable"):
                if action == "enable" and not user.is_active:  # one more member: the workspace's limit
                    limits.check(platform, tenant, "member", User.select().where(User.is_active).count)
                User.update(is_active=action == "enable", updated_at=utcnow()).where(User.id == user_id).execute()
                if action == "disable":
                    revoke_user_credentials(user_id)
                return user, f"user.{action}d", {}
            if action == "delete":
                revoke_user_credentials(user_id)
                clear_pending_email_change(user_id)
                User.delete().where(User.id == user_id).execute()
                return user, "user.deleted", {}
            raise Problem(400, "invalid-action", N_("Unknown action."))

        await self.in_tenant(change, audit=lambda done: audit(
            self, done[1], actor=principal.actor, actor_name=principal.email, target=f"user:{done[0].id}",
            email=done[0].email, **done[2]))
        self.flash("success", N_("Saved."))
        self.redirect("/team")


class TokensHandler(PageHandler):
    permission = "tokens:manage"

    def render_tokens(self, tokens, new_token=None, error=None):
        access = catalogue()  # the scopes the kernel and the installed addons registered
        self.render("tokens.html", tokens=tokens, scopes=access.api_scopes, default_scopes=access.default_scopes,
                    new_token=new_token, error=error)

    async def get(self):
        tokens = await self.in_tenant(lambda: list(ApiToken.select().order_by(ApiToken.created_at.desc())))
        self.render_tokens(tokens, new_token=self.take_shown_once("token", "/tokens"))

    async def post(self):
        action = self.get_body_argument("action", "create")
        principal = self.principal
        if action == "revoke":
            token_id = parse_id(self.get_body_argument("token_id", ""))
            named = await self.in_tenant(lambda: ApiToken.get_or_none(ApiToken.id == token_id))
            if named is None:
                raise Problem(404, "not-found", N_("There is no such token here."))
            _ = self.gettext()[0]
            if not self.confirmed(_("Revoke the API token “%(name)s”?") % {"name": named.name},
                                  _("Revoke token"), "/tokens",
                                  _("Systems that use it are refused from now on. This cannot be undone.")):
                return

            def revoke():
                row = revoke_api_token(token_id)
                if row is None:
                    raise Problem(404, "not-found", N_("There is no such token here."))
                self.platform.credentials_changed(self.tenant.slug)  # its NOTIFY goes out with the commit
                return row

            row = await self.in_tenant(revoke, audit=lambda row: audit(
                self, "token.revoked", actor=principal.actor, actor_name=principal.email, target=f"token:{row.id}",
                name=row.name))
            self.flash("success", N_("Token “%(name)s” revoked."), name=row.name)
            self.redirect("/tokens")
            return
        name = self.get_body_argument("name", "")
        scopes = self.get_body_arguments("scope")
        try:
            row, token = await self.in_tenant(create_api_token, self.tenant.slug, name, scopes, principal.id,
                                              audit=lambda made: audit(
                                                  self, "token.created", actor=principal.actor,
                                                  actor_name=principal.email, target=f"token:{made[0].id}",
                                                  name=made[0].name, scopes=list(made[0].scopes)))
        except AuthError as exc:
            tokens = await self.in_tenant(lambda: list(ApiToken.select().order_by(ApiToken.created_at.desc())))
            self.set_status(422)
            self.render_tokens(tokens, error=self.refusal_text(exc))
            return
        # Shown once, on the page this redirect leads to; never stored or shown again. A reload of
        # that page shows the list, and makes no second token.
        self.show_once("token", token, "/tokens")
        self.redirect("/tokens", status=303)


class EmailLinkHandler(PageHandler):
    """A page behind a link from an email-change mail. GET only shows what the link will do (mail
    scanners fetch links); the button POSTs and spends it. No session needed: the link is the proof."""

    permission = PUBLIC
    purpose = ""
    refused_title = ""

    async def get(self):
        token = self.get_query_argument("token", "")
        try:
            data, user = await self.in_tenant(self.check, token)
        except AuthError as exc:
            self.set_status(400)
            self.render("message.html", title=self.refused_title, message=self.refusal_text(exc), ok=False)
            return
        self.render("email_change.html", mode=self.purpose, token=token, new_email=data["e"], old_email=data["o"],
                    done=False)

    def check(self, token: str):
        data = self.platform.links.peek(self.purpose, token, self.tenant.slug)
        user = User.get_or_none(User.id == data["u"])
        if user is None or not user.is_active:
            raise AuthError(N_("This link no longer matches an account. Ask for a new one."))
        return data, user

    def applied(self, token: str):
        done = self.apply(token)
        self.platform.credentials_changed(self.tenant.slug)  # its NOTIFY goes out with the commit
        return done

    async def post(self):
        token = self.get_body_argument("token", "")
        try:
            user, event, details = await self.in_tenant(self.applied, token, audit=lambda done: audit(
                self, done[1], actor=f"user:{done[0].id}", actor_name=done[0].email, target=f"user:{done[0].id}",
                **done[2]))
        except IntegrityError:
            # The address was taken between our check and the write.
            user = None
            message = N_("Another member of this workspace now uses that email.")
        except AuthError as exc:
            user, message = None, self.refusal_text(exc)
        if user is None:
            self.set_status(400)
            self.render("message.html", title=self.refused_title, message=message, ok=False)
            return
        self.render("email_change.html", mode=self.purpose, token="", new_email=details.get("to", ""),
                    old_email=details.get("from", ""), done=True)


class ConfirmEmailHandler(EmailLinkHandler):
    """The new address confirms itself: only now does it become the sign-in email."""

    purpose = "email"
    refused_title = N_("Email not changed")

    def apply(self, token: str):
        data, user = self.check(token)
        if data.get("p") != _password_stamp(user.id):
            # A password change (or reset) since the request cancels it.
            raise AuthError(N_("The password changed since this change was asked for. Ask again."))
        pending = pending_email_change(user.id)
        if not pending or pending.get("id") != data.get("c"):
            raise AuthError(N_("This change was cancelled or replaced by a newer one."))
        if user.email.lower() != str(data["o"]).lower():
            raise AuthError(N_("The sign-in email changed since this link was sent. Ask again."))
        other = User.by_email(data["e"])
        if other is not None and other.id != user.id:
            raise AuthError(N_("Another member of this workspace now uses that email."))
        self.platform.links.spend(self.purpose, token, self.tenant.slug)
        User.update(email=data["e"], email_verified_at=utcnow(), updated_at=utcnow()
                    ).where(User.id == user.id).execute()
        clear_pending_email_change(user.id)
        return user, "email.changed", {"from": user.email, "to": data["e"]}


class UndoEmailChangeHandler(EmailLinkHandler):
    """The old address takes the account back: its email again, every session and refresh token
    revoked (whoever asked for the change may hold one), and the advice to reset the password."""

    purpose = "email-undo"
    refused_title = N_("Email change not undone")

    def apply(self, token: str):
        data, user = self.check(token)
        old = str(data["o"])
        other = User.by_email(old)
        if other is not None and other.id != user.id:
            raise AuthError(N_("Another member of this workspace now uses that email."))
        self.platform.links.spend(self.purpose, token, self.tenant.slug)
        User.update(email=old, email_verified_at=utcnow(), updated_at=utcnow()).where(User.id == user.id).execute()
        clear_pending_email_change(user.id)
        revoke_user_credentials(user.id)
        return user, "email.change_undone", {"from": user.email, "to": old, "undone": data["e"]}


class WorkspaceHandler(PageHandler):
    """The workspace's own settings (its Customer): the default country numbers without ``+`` are read in."""

    permission = "settings:write"

    def show(self, region: str, error: str | None = None):
        self.render("workspace.html", regions=regions(self.lang), names_lang=names_language(self.lang), region=region,
                    error=error)

    def get(self):
        self.show(self.tenant.default_region)

    async def post(self):
        region = self.get_body_argument("default_region", "").strip().upper()[:8]
        before = self.tenant.default_region
        try:
            await self.run_db(self.platform.tenants.set_default_region, self.tenant.slug, region)
        except TenantError:
            self.set_status(422)
            self.show(region, N_("Choose a country from the list."))
            return
        await self.run_db(emit, self.platform, audit(self, "workspace.settings_changed", actor=self.principal.actor,
                                                     actor_name=self.principal.email, default_region=region,
                                                     previous=before))
        self.flash("success", N_("Saved."))
        self.redirect("/workspace", status=303)
