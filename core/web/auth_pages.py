"""Sign-up (base domain), sign-in/out, email verification, password reset and invitations (tenant)."""

from __future__ import annotations

import asyncio
import re

from .. import directory, passwords
from ..clock import utcnow
from ..events import AuditEvent, emit
from ..i18n import N_
from ..identity import (AuthError, check_password, create_session, revoke_session, revoke_user_credentials,
                        set_password)
from ..permissions import PUBLIC
from ..tenancy import TenantError, check_email, validate_slug
from ..throttle import SignupThrottle, account_key
from ..users import ROLE_CUSTOMER, User
from .base import KNOWN_DEVICE_COOKIE, SESSION_COOKIE, PageHandler
from .pages import safe_next
from .problem import Problem, Refusal


def client_ip(handler) -> str:
    return handler.request.remote_ip or ""


def audit(handler, action: str, *, actor: str = "", actor_name: str = "", target: str = "",
          reason: str | None = None, tenant=None, **details) -> AuditEvent:
    tenant = tenant or handler.tenant
    return AuditEvent(action=action, tenant_id=tenant.id if tenant else None,
                      tenant_slug=tenant.slug if tenant else None, actor=actor, actor_name=actor_name,
                      target=target, ip=client_ip(handler),
                      user_agent=handler.request.headers.get("User-Agent", "")[:300], reason=reason,
                      details=details)


class SignupHandler(PageHandler):
    """``/signup``: the platform's sign-up form. Another sign-up page (an addon's: a reseller's,
    under its brand) reuses this flow, its checks and its rate limits by subclassing it and
    overriding :meth:`signup_mode`, :meth:`create_workspace` and ``signup_action``."""

    scope = "platform"
    permission = PUBLIC
    signup_form = True  # addons add their parts (signup_parts) and checks to every sign-up form
    signup_action = "/signup"

    def signup_mode(self) -> str:
        """``open``, ``approval`` or ``closed``."""
        return self.settings_.signup

    async def create_workspace(self, form: dict, password: str, mode: str):
        """Provision the new workspace (:class:`TenantError` for a field, another
        :class:`~core.web.problem.Refusal` for the whole form)."""
        return await self.run_db(self.platform.tenants.create, form["slug"], form["company"], form["email"], password,
                                 verified=False, pending=mode == "approval")

    def render_form(self, **kwargs) -> None:
        self.render("signup.html", signup_action=self.signup_action, **kwargs)

    def set_default_headers(self):
        super().set_default_headers()
        # The form's success redirect goes to the new workspace's own subdomain, and
        # browsers apply form-action to redirects too: allow exactly our subdomains.
        from .security_headers import CSP

        tenants = self.application.platform.settings.public_url("*")
        self.set_header("Content-Security-Policy", CSP.replace("form-action 'self'", f"form-action 'self' {tenants}"))

    def get(self, *_args):
        self.render_form(errors={}, form={}, mode=self.signup_mode(), pending=None)

    async def post(self, *_args):
        mode = self.signup_mode()
        if mode == "closed":
            self.set_status(403)
            self.render_form(errors={}, form={}, mode=mode, pending=None)
            return
        form = {k: self.get_body_argument(k, "").strip() for k in ("company", "slug", "email")}
        form["slug"] = form["slug"].lower()
        password = self.get_body_argument("password", "")
        errors = {}
        if not form["company"]:
            errors["company"] = N_("Enter your company's name.")
        # Every field is checked before anything is created, so the form shows all its errors at once.
        for name, check in (("slug", validate_slug), ("email", check_email)):
            try:
                check(form[name])
            except TenantError as exc:
                errors[name] = self.refusal_text(exc)
        if "slug" not in errors:
            taken = await self.run_db(self.platform.tenants.slug_unavailable, form["slug"])
            if taken:
                errors["slug"] = taken
        try:
            passwords.check_policy(password)
        except passwords.PasswordPolicyError as exc:
            errors["password"] = self.refusal_text(exc)
        for refusal in self.platform.registry.hook.smsgw_signup_check(handler=self):
            errors.update(refusal or {})
        status = 422
        if not errors:
            # Shared by every web process (a table): a few workspaces per address and hour, and a
            # platform-wide ceiling, so nobody can mint workspaces (and mails) in bulk.
            throttle = SignupThrottle(self.settings_.signup_per_ip_hour, self.settings_.signup_per_hour)
            verdict = await self.run_db(throttle.begin, client_ip(self))
            if not verdict.allowed:
                status = 429
                self.set_header("Retry-After", str(verdict.retry_after))
                errors["form"] = SIGNUP_TOO_MANY
                await self.run_db(emit, self.platform, audit(self, "tenant.signup_throttled",
                                                             actor_name=form["email"][:254]))
        if not errors:
            try:
                tenant = await self.create_workspace(form, password, mode)
            except Refusal as exc:
                await self.run_db(throttle.release, verdict)
                field = ("email" if "email" in exc.msgid else "slug") if isinstance(exc, TenantError) else "form"
                errors[field] = self.refusal_text(exc)
        if errors:
            self.set_status(status)
            self.render_form(errors=errors, form=form, mode=mode, pending=None)
            return
        await self.run_db(emit, self.platform, audit(self, "tenant.signup", tenant=tenant, actor="user:1",
                                                     actor_name=form["email"], mode=mode))
        await self.run_db(self.platform.registry.hook.smsgw_signed_up, handler=self, tenant=tenant)
        if tenant.is_pending:
            # No mail yet: the address gets its confirmation link once an Admin approves.
            self.render_form(errors={}, form={}, mode=mode, pending=tenant)
            return
        await self.run_db(send_verification, self.platform, tenant, email=form["email"])
        # The owner is signed in already: the redirect carries a one-time link (two minutes) that the
        # workspace's own address turns into its session cookie (WelcomeHandler).
        token = await self.run_db(welcome_link, self.platform, tenant)
        self.redirect(f"{self.settings_.public_url(tenant.slug)}/welcome?token={token}")


def welcome_link(platform, tenant) -> str:
    from ..db import tenant_transaction

    with tenant_transaction(tenant.ref):
        owner = User.select().where(User.role == ROLE_CUSTOMER).order_by(User.id).first()
        return platform.links.make("welcome", tenant.slug, owner.id, {"e": owner.email})


class WelcomeHandler(PageHandler):
    """``GET /welcome?token=…``: where sign-up sends the new owner. Spends the one-time link, signs the
    owner in and shows the overview; a spent or expired link leads to the sign-in page."""

    permission = PUBLIC

    async def get(self):
        token = self.get_query_argument("token", "")

        def welcome():
            data = self.platform.links.spend("welcome", token, self.tenant.slug)
            user = User.get_or_none(User.id == data["u"])
            if user is None or not user.is_active or user.email.lower() != str(data.get("e", "")).lower():
                raise AuthError(N_("This link no longer matches an account. Ask for a new one."))
            return user, create_session(user, client_ip(self), self.request.headers.get("User-Agent", ""))

        try:
            user, session = await self.in_tenant(welcome)
        except AuthError:
            self.redirect("/login?signed_up=1")  # the workspace exists: its owner signs in by hand
            return
        self.set_signed_cookie(SESSION_COOKIE, session, expires_days=14, **self.session_cookie_kwargs())
        self.set_signed_cookie(KNOWN_DEVICE_COOKIE, f"{self.tenant.slug}:{user.id}", expires_days=365,
                               **self.session_cookie_kwargs())
        await self.run_db(emit, self.platform, audit(self, "login.success", actor=f"user:{user.id}",
                                                     actor_name=user.email, via="signup"))
        await self.run_db(directory.remember, self.platform, self.tenant.id, user.email)
        self.flash("success", self.gettext()[0](WELCOME))
        self.redirect("/", status=303)


WELCOME = N_("Your workspace is ready. We sent you an email to confirm your address.")


class FindWorkspaceHandler(PageHandler):
    """``POST /find-workspace`` (the landing page's form): mails the address the sign-in links of its
    workspaces. The page answers the same whether or not the address is known (and before the
    lookup, so neither its words nor its time tell); unknown addresses get no mail. Throttled per
    client address and per email address, shared by every web process."""

    scope = "platform"
    permission = PUBLIC

    def get(self):
        self.redirect("/#find-workspace")

    async def post(self):
        email = self.get_body_argument("email", "").strip()[:254]
        if not re.fullmatch(r"[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}", email):
            self.set_status(422)
            self.render("platform_home.html", find_error=FIND_BAD_ADDRESS, find_email=email, find_sent=False)
            return
        per_source = SignupThrottle(self.settings_.find_workspace_per_ip_hour, 10**9, scope="find")
        per_address = SignupThrottle(3, 3, scope="find:" + directory.email_key(self.platform, email))
        for throttle in (per_source, per_address):
            verdict = await self.run_db(throttle.begin, client_ip(self))
            if not verdict.allowed:
                self.set_status(429)
                self.set_header("Retry-After", str(verdict.retry_after))
                self.render("platform_home.html", find_error=FIND_TOO_MANY, find_email=email, find_sent=False)
                return
        self.render("platform_home.html", find_error=None, find_email="", find_sent=True)
        await self.run_db(mail_workspaces, self.platform, email, self.lang)


def mail_workspaces(platform, email: str, language: str = "") -> None:
    """Mail ``email`` the sign-in links of its workspaces (in ``language``, the one the person asked
    in); nothing if it has none."""
    found = directory.workspaces_of(platform, email)
    if not found:
        return
    lines = "\n".join(f"{t.name}: {platform.settings.public_url(t.slug)}/login" for t in found)
    platform.send_mail(email, lambda _, ngettext, fmt: (
        _("Your workspaces"),
        ngettext("You asked which workspaces you can sign in to with this address (%(product)s). "
                 "It is a member of this one:", "You asked which workspaces you can sign in to with this "
                 "address (%(product)s). It is a member of these %(num)d:", len(found), product=platform.settings.product_name)
        + f"\n\n{lines}\n\n" + _("If it was not you, ignore this email.") + "\n"), language=language)


FIND_BAD_ADDRESS = N_("Enter the email address you sign in with.")
FIND_TOO_MANY = N_("Too many requests for this address or from your network. Try again in an hour.")


SIGNUP_TOO_MANY = N_("Too many workspaces were created recently from your address or on this platform. "
                     "Try again in an hour.")


def send_verification(platform, tenant, email: str | None = None, user_id: int | None = None):
    """Mail a confirmation link. The text is fixed: nothing a signer typed (company or person
    name) goes to an address nobody has confirmed; the workspace's address is all it names."""
    from ..db import tenant_transaction

    with tenant_transaction(tenant.ref):
        if user_id:
            user = User.get_or_none(User.id == user_id)
        elif email:
            user = User.by_email(email)
        else:  # the owner
            user = User.select().where(User.role == ROLE_CUSTOMER).order_by(User.id).first()
        if user is None:
            return
        token = platform.links.make("verify", tenant.slug, user.id, {"e": user.email})
    site = platform.settings.public_url(tenant.slug)
    url = f"{site}/verify-email?token={token}"
    days = platform.settings.unverified_ttl_days

    product = platform.brand_for(tenant).product_name

    def compose(_, ngettext, fmt):
        removal = "" if tenant.verified else " " + ngettext(
            "A workspace whose address is not confirmed is removed after %(num)d day.",
            "A workspace whose address is not confirmed is removed after %(num)d days.", days)
        return (_("Confirm your email address"),
                _("This email address was given for an account at %(site)s/ (%(product)s).", site=site,
                  product=product) + "\n\n" + _("Confirm it here:") + f"\n{url}\n\n"
                + _("The link works once, for 48 hours.") + "\n\n"
                + _("If it was not you, ignore this email.") + removal + "\n")

    platform.send_mail(user.email, compose, language=user.language, tenant=tenant)


class LoginHandler(PageHandler):
    permission = PUBLIC

    def get(self):
        if self.principal is not None:
            self.redirect(safe_next(self.get_query_argument("next", "/")))
            return
        self.render("login.html", error=None, email="", next=safe_next(self.get_query_argument("next", "/")),
                    signed_up=bool(self.get_query_argument("signed_up", "")))

    async def post(self):
        email = self.get_body_argument("email", "").strip()[:254]
        password = self.get_body_argument("password", "")[:2048]
        nxt = safe_next(self.get_body_argument("next", "/"))
        user, error = await login_attempt(self, email, password)
        if user is None:
            self.set_status(429 if error.startswith("Too many") else 401)
            self.render("login.html", error=error, email=email, next=nxt, signed_up=False)
            return
        token = await self.in_tenant(create_session, user, client_ip(self),
                                     self.request.headers.get("User-Agent", ""))
        self.set_signed_cookie(SESSION_COOKIE, token, expires_days=14, **self.session_cookie_kwargs())
        self.set_signed_cookie(KNOWN_DEVICE_COOKIE, f"{self.tenant.slug}:{user.id}", expires_days=365,
                               **self.session_cookie_kwargs())
        self.redirect(nxt)


SAME_ANSWER = N_("The email or password is not right.")
TOO_MANY = N_("Too many failed sign-ins. Wait a while and try again, or reset your password.")


async def login_attempt(handler, email: str, password: str):
    """Throttled password check shared by the page and the token API.

    Returns ``(user, None)`` or ``(None, message)``; unknown users and wrong
    passwords get the same message, the same delay and the same throttling.
    """
    platform = handler.platform
    key = account_key(handler.tenant.slug, email)
    known = handler.get_signed_cookie(KNOWN_DEVICE_COOKIE, max_age_days=365)
    ip = client_ip(handler)
    trusted = False
    if known:
        # A browser that signed in to this account before is not locked out by strangers' failures.
        user = await handler.in_tenant(User.by_email, email)
        trusted = user is not None and known.decode() == f"{handler.tenant.slug}:{user.id}"
    verdict = await handler.run_db(platform.throttle.begin, key, ip, trusted)
    if not verdict.allowed:
        await handler.run_db(emit, platform, audit(handler, "login.throttled", actor_name=email[:254]))
        return None, TOO_MANY
    if verdict.delay:
        await asyncio.sleep(verdict.delay)
    user = await handler.in_tenant(check_password, email, password, platform.pepper, platform.bcrypt_cost)
    if user is None:
        await handler.run_db(emit, platform, audit(handler, "login.failure", actor_name=email[:254]))
        return None, SAME_ANSWER
    await handler.run_db(platform.throttle.succeeded, key, verdict)
    await handler.run_db(directory.remember, platform, handler.tenant.id, user.email)
    await handler.run_db(emit, platform, audit(handler, "login.success", actor=f"user:{user.id}",
                                                 actor_name=user.email))
    return user, None


class LogoutHandler(PageHandler):
    permission = PUBLIC

    async def post(self):
        sid = self.get_signed_cookie(SESSION_COOKIE, max_age_days=14)
        if sid:
            user_id = await self.in_tenant(revoke_session, sid.decode())
            if user_id:
                await self.in_tenant(revoke_user_credentials, user_id)
                await self.run_db(emit, self.platform, audit(self, "logout", actor=f"user:{user_id}"))
        self.clear_cookie(SESSION_COOKIE, path="/")
        self.redirect("/login")


class VerifyEmailHandler(PageHandler):
    permission = PUBLIC

    async def get(self):
        token = self.get_query_argument("token", "")

        def verify():
            data = self.platform.links.spend("verify", token, self.tenant.slug)
            user = User.get_or_none(User.id == data["u"])
            if user is None or user.email.lower() != str(data.get("e", "")).lower():
                raise AuthError(N_("This link no longer matches an account. Ask for a new one."))
            User.update(email_verified_at=utcnow()).where(User.id == user.id).execute()
            return user

        try:
            user = await self.in_tenant(verify)
        except AuthError as exc:
            self.set_status(400)
            self.render("message.html", title=N_("Email not confirmed"), message=self.refusal_text(exc), ok=False)
            return
        if user.role == ROLE_CUSTOMER and not self.tenant.verified:
            # The owner's address is confirmed: the workspace may now send, invite and mint tokens.
            if await self.run_db(self.platform.tenants.mark_verified, self.tenant.slug):
                await self.run_db(emit, self.platform, audit(self, "tenant.verified", actor=f"user:{user.id}",
                                                             actor_name=user.email))
        self.render("message.html", title=N_("Email confirmed"), message=N_("Thank you: your email address is confirmed."),
                    ok=True)


class ResendVerificationHandler(PageHandler):
    """``POST /verify-email/resend``: the owner of an unverified workspace asks for the link again."""

    permission = "profile:edit"

    async def post(self):
        if self.tenant.verified:
            self.flash("success", N_("Your email address is already confirmed."))
            self.redirect("/")
            return
        if not self.principal.is_customer:
            raise Problem(403, "forbidden", N_("Only the workspace's owner can confirm its address."))
        # A few per workspace and hour: the mail goes to the owner's own address, but no inbox is flooded.
        throttle = SignupThrottle(3, 3, scope=f"resend:{self.tenant.slug}")
        verdict = await self.run_db(throttle.begin, client_ip(self))
        if not verdict.allowed:
            self.flash("error", N_("We sent the link several times in the last hour. Wait a while, "
                                   "and look in your spam folder."))
            self.redirect("/")
            return
        await self.run_db(send_verification, self.platform, self.tenant, user_id=self.principal.id)
        self.flash("success", N_("We sent the confirmation link again. It works once, for 48 hours."))
        self.redirect("/")


class ForgotPasswordHandler(PageHandler):
    permission = PUBLIC

    def get(self):
        self.render("forgot.html", sent=False)

    async def post(self):
        email = self.get_body_argument("email", "").strip()[:254]
        tenant = self.tenant
        verdict = await self.run_db(self.platform.reset_throttle.begin,
                                    "reset:" + account_key(tenant.slug, email), client_ip(self), False)
        if verdict.allowed:
            # Whether the account exists is decided in the worker: the request does the same
            # work (one enqueue of the typed address) for every address, so neither its answer
            # nor its timing tells a stranger which accounts exist.
            await self.run_db(self.platform.setup_tasks().tasks[RESET_MAIL_TASK], tenant.slug, email)
        self.render("forgot.html", sent=True)


RESET_MAIL_TASK = "core.password_reset_mail"


def send_reset_mail(platform, email: str) -> None:
    """The worker's half of /forgot-password, in the tenant the task carries: a reset link for an
    active account with that address, nothing at all for any other address."""
    from ..db import current_tenant, tenant_transaction
    from ..tenancy import load_tenant

    tenant = load_tenant(current_tenant.get().slug)
    with tenant_transaction():
        user = User.by_email(email)
        if user is None or not user.is_active:
            return
        to, token, language = user.email, platform.links.make("reset", tenant.slug, user.id), user.language
    url = f"{platform.settings.public_url(tenant.slug)}/reset-password?token={token}"
    platform.send_mail(to, lambda _, ngettext, fmt: (
        _("Reset your password"),
        _("Someone asked to reset the password of %(email)s at %(workspace)s.", email=to, workspace=tenant.name)
        + "\n\n" + _("Choose a new password here (valid for one hour, once):") + f"\n{url}\n\n"
        + _("If it was not you, ignore this email; nothing changes.") + "\n"), language=language, tenant=tenant)


class ResetPasswordHandler(PageHandler):
    permission = PUBLIC

    async def get(self):
        token = self.get_query_argument("token", "")
        try:
            await self.in_tenant(self.platform.links.peek, "reset", token, self.tenant.slug)
        except AuthError as exc:
            self.set_status(400)
            self.render("message.html", title=N_("Link not valid"), message=self.refusal_text(exc), ok=False)
            return
        self.render("reset.html", token=token, error=None)

    async def post(self):
        token = self.get_body_argument("token", "")
        password = self.get_body_argument("password", "")
        platform = self.platform

        def reset():
            data = platform.links.peek("reset", token, self.tenant.slug)
            passwords.check_policy(password)
            platform.links.spend("reset", token, self.tenant.slug)
            user = User.get_or_none((User.id == data["u"]) & (User.is_active == True))  # noqa: E712
            if user is None:
                raise AuthError(N_("This account is disabled."))
            set_password(user, password, platform.pepper, platform.bcrypt_cost)
            return user

        try:
            user = await self.in_tenant(reset)
        except passwords.PasswordPolicyError as exc:
            self.set_status(422)
            self.render("reset.html", token=token, error=self.refusal_text(exc))
            return
        except AuthError as exc:
            self.set_status(400)
            self.render("message.html", title=N_("Link not valid"), message=self.refusal_text(exc), ok=False)
            return
        await self.run_db(emit, platform, audit(self, "password.reset", actor=f"user:{user.id}",
                                                actor_name=user.email))
        self.flash("success", N_("Your password was changed. Sign in with the new one."))
        self.redirect("/login")


class AcceptInviteHandler(PageHandler):
    permission = PUBLIC

    async def get(self):
        token = self.get_query_argument("token", "")
        try:
            data = await self.in_tenant(self.platform.links.peek, "invite", token, self.tenant.slug)
        except AuthError as exc:
            self.set_status(400)
            self.render("message.html", title=N_("Invitation not valid"), message=self.refusal_text(exc), ok=False)
            return
        self.render("invite.html", token=token, email=data.get("e", ""), error=None)

    async def post(self):
        token = self.get_body_argument("token", "")
        name = self.get_body_argument("name", "").strip()[:200]
        password = self.get_body_argument("password", "")
        platform = self.platform

        def accept():
            data = platform.links.peek("invite", token, self.tenant.slug)
            passwords.check_policy(password)
            user = User.get_or_none(User.id == data["u"])
            if user is None or user.password_hash is not None:
                raise AuthError(N_("This invitation was already accepted or withdrawn."))
            platform.links.spend("invite", token, self.tenant.slug)
            user.name = name or user.name
            user.email_verified_at = utcnow()
            set_password(user, password, platform.pepper, platform.bcrypt_cost)
            return user, data.get("e", "")

        try:
            user, email = await self.in_tenant(accept)
        except passwords.PasswordPolicyError as exc:
            data = await self.in_tenant(platform.links.peek, "invite", token, self.tenant.slug)
            self.set_status(422)
            self.render("invite.html", token=token, email=data.get("e", ""), error=self.refusal_text(exc))
            return
        except AuthError as exc:
            self.set_status(400)
            self.render("message.html", title=N_("Invitation not valid"), message=self.refusal_text(exc), ok=False)
            return
        await self.run_db(emit, platform, audit(self, "invite.accepted", actor=f"user:{user.id}",
                                                actor_name=user.email))
        await self.run_db(directory.remember, platform, self.tenant.id, user.email)
        token = await self.in_tenant(create_session, user, client_ip(self), self.request.headers.get("User-Agent", ""))
        self.set_signed_cookie(SESSION_COOKIE, token, expires_days=14, **self.session_cookie_kwargs())
        self.redirect("/")
