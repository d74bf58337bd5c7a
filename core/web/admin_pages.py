"""The platform Admin console (``/admin`` on the base domain).

Admins manage tenants from the catalogue. To see a tenant's data they must
write a reason; that opens a one-hour, read-only access grant, and every page
viewed under it is recorded in the audit trail with the reason, before the
data is shown.
"""

from __future__ import annotations

import asyncio

from ..adminauth import (MIN_REASON, GrantError, active_grant, check_admin_password, create_admin_session,
                         grant_principal, open_grant, revoke_admin_session)
from ..catalogue import Tenant
from ..db import connection, run_in_tenant
from ..events import emit
from ..hookspecs import AdminSection
from ..i18n import N_
from ..permissions import PUBLIC
from ..tenancy import TenantError
from ..users import ApiToken, User
from .auth_pages import SAME_ANSWER, audit, client_ip, send_verification
from .base import ADMIN_COOKIE, PageHandler
from .problem import Problem
from .pages import safe_next


ADMIN_KNOWN_COOKIE = "smsgw_admin_known"
ADMIN_TOO_MANY = N_("Too many failed sign-ins. Wait a while and try again.")


class AdminHandler(PageHandler):
    scope = "platform"
    permission = "platform:admin"
    login_path = "/admin/login"

    async def tenant_or_404(self, slug: str):
        tenant = await self.run_db(self.platform.tenant_cache.loader, slug)
        if tenant is None:
            raise Problem(404, "not-found", N_("There is no tenant %(slug)s."), args={"slug": repr(slug[:60])})
        return tenant


class AdminLoginHandler(AdminHandler):
    permission = PUBLIC

    def get(self):
        self.render("admin/login.html", error=None, next=safe_next(self.get_query_argument("next", "/admin")))

    async def post(self):
        email = self.get_body_argument("email", "").strip()[:254]
        password = self.get_body_argument("password", "")[:2048]
        nxt = safe_next(self.get_body_argument("next", "/admin"))
        from ..throttle import account_key

        key = account_key("(platform)", email)
        known = self.get_signed_cookie(ADMIN_KNOWN_COOKIE, max_age_days=365)
        trusted = bool(known) and known.decode().lower() == email.lower()
        verdict = await self.run_db(self.platform.throttle.begin, key, client_ip(self), trusted)
        admin = None
        if verdict.allowed:
            if verdict.delay:
                await asyncio.sleep(verdict.delay)
            admin = await self.run_db(check_admin_password, email, password, self.platform.pepper,
                                      self.platform.bcrypt_cost)
        if admin is None:
            await self.run_db(emit, self.platform, audit(self, "admin.login.failure", actor_name=email))
            self.set_status(401 if verdict.allowed else 429)
            self.render("admin/login.html", error=SAME_ANSWER if verdict.allowed else ADMIN_TOO_MANY, next=nxt)
            return
        await self.run_db(self.platform.throttle.succeeded, key, verdict)
        self.set_signed_cookie(ADMIN_KNOWN_COOKIE, admin.email, expires_days=365, httponly=True, samesite="Strict",
                               secure=self.request.protocol == "https", path="/admin")
        token = await self.run_db(create_admin_session, admin, client_ip(self), self.request.headers.get("User-Agent", ""))
        await self.run_db(emit, self.platform, audit(self, "admin.login.success", actor=f"admin:{admin.id}",
                                                     actor_name=admin.email))
        self.set_signed_cookie(ADMIN_COOKIE, token, expires_days=1, httponly=True, samesite="Strict",
                               secure=self.request.protocol == "https", path="/")
        self.redirect(nxt)


class AdminLogoutHandler(AdminHandler):
    permission = PUBLIC

    async def post(self):
        sid = self.get_signed_cookie(ADMIN_COOKIE, max_age_days=1)
        if sid:
            await self.run_db(revoke_admin_session, sid.decode())
        self.clear_cookie(ADMIN_COOKIE, path="/")
        self.redirect("/admin/login")


def tenant_overview():
    with connection():
        tenants = list(Tenant.select().order_by(Tenant.slug))
    out = []
    from ..db import tenant_transaction

    for t in tenants:
        with tenant_transaction(t.ref):
            users = User.select().count()
        out.append({"slug": t.slug, "name": t.name, "status": t.status, "plan": t.plan,
                    "created_at": t.created_at, "users": users})
    return out


class AdminHomeHandler(AdminHandler):
    async def get(self):
        tenants = await self.run_db(tenant_overview)
        self.render("admin/tenants.html", tenants=tenants, pending=[t for t in tenants if t["status"] == "pending"])


def decision_reason(raw: str) -> str:
    """The written reason an Admin gives for approving or rejecting a sign-up."""
    reason = (raw or "").strip()
    if len(reason) < MIN_REASON:
        raise GrantError(f"Write why you approve or reject this workspace (at least {MIN_REASON} characters).")
    if len(reason) > 1000:
        raise GrantError("Keep the reason under 1,000 characters.")
    return reason


class AdminTenantHandler(AdminHandler):
    """``/admin/tenants/<slug>``: catalogue facts, suspend/resume, and the reasoned access form."""

    async def get(self, slug):
        tenant = await self.tenant_or_404(slug)
        grant = await self.run_db(active_grant, self.principal.id, tenant.id)
        self.render("admin/tenant.html", t=tenant, grant=grant, error=None, decision_error=None)

    async def post(self, slug):
        tenant = await self.tenant_or_404(slug)
        action = self.get_body_argument("action", "")
        admin = self.principal
        if action == "suspend":
            _ = self.gettext()[0]
            if not self.confirmed(_("Suspend the workspace %(slug)s (%(name)s)?") % {"slug": tenant.slug,
                                                                                      "name": tenant.name},
                                  _("Suspend workspace"), f"/admin/tenants/{tenant.slug}",
                                  _("Nobody can sign in or send there, and its phones are refused, until it "
                                    "is resumed.")):
                return
        if action in ("suspend", "resume"):
            try:
                await self.run_db(getattr(self.platform.tenants, action), tenant.slug)
            except TenantError as exc:
                raise Problem.refused(400, "invalid", exc) from None
            done = {"suspend": "suspended", "resume": "resumed"}[action]
            said = {"suspend": N_("Workspace %(slug)s: suspended."), "resume": N_("Workspace %(slug)s: resumed.")}[action]
            await self.run_db(emit, self.platform, audit(self, f"admin.tenant_{done}", tenant=tenant,
                                                         actor=admin.actor, actor_name=admin.email,
                                                         target=f"tenant:{tenant.slug}"))
            self.flash("success", said, slug=tenant.slug)
            self.redirect(f"/admin/tenants/{tenant.slug}")
            return
        if action in ("approve", "reject"):
            await self.decide(tenant, action)
            return
        if action == "access":
            reason = self.get_body_argument("reason", "")
            try:
                await self.run_db(open_grant, admin.id, tenant.id, reason, client_ip(self))
            except GrantError as exc:
                self.set_status(422)
                self.render("admin/tenant.html", t=tenant, grant=None, error=self.refusal_text(exc), decision_error=None)
                return
            await self.run_db(emit, self.platform, audit(self, "admin.access_granted", tenant=tenant,
                                                         actor=admin.actor, actor_name=admin.email,
                                                         target=f"tenant:{tenant.slug}", reason=reason.strip()))
            self.redirect(f"/admin/tenants/{tenant.slug}/data/users")
            return
        raise Problem(400, "invalid-action", N_("Unknown action."))

    async def decide(self, tenant, action: str):
        """Approve a pending sign-up (its owner then gets the confirmation link) or reject it (deleted)."""
        admin = self.principal
        if not tenant.is_pending:
            raise Problem(409, "not-pending", N_("The workspace %(slug)s is not waiting for approval."),
            args={"slug": tenant.slug})
        try:
            reason = decision_reason(self.get_body_argument("reason", ""))
        except GrantError as exc:
            grant = await self.run_db(active_grant, admin.id, tenant.id)
            self.set_status(422)
            self.render("admin/tenant.html", t=tenant, grant=grant, error=None, decision_error=self.refusal_text(exc))
            return
        done = {"approve": "approved", "reject": "rejected"}[action]
        # Recorded first (the tenant row still exists): a decision that cannot be recorded is not made.
        await self.run_db(emit, self.platform, audit(self, f"admin.tenant_{done}", tenant=tenant, actor=admin.actor,
                                                     actor_name=admin.email, target=f"tenant:{tenant.slug}",
                                                     reason=reason))
        try:
            if action == "approve":
                approved = await self.run_db(self.platform.tenants.approve, tenant.slug)
                await self.run_db(send_verification, self.platform, approved)
            else:
                await self.run_db(self.platform.tenants.delete, tenant.slug)
        except TenantError as exc:
            raise Problem.refused(409, "not-pending", exc) from None
        self.flash("success", N_("Workspace %(slug)s: approved.") if action == "approve"
                   else N_("Workspace %(slug)s: rejected."), slug=tenant.slug)
        self.redirect("/admin" if action == "reject" else f"/admin/tenants/{tenant.slug}")


def _users_section(tenant):
    return [{"id": u.id, "name": u.name, "email": u.email, "role": u.role, "active": u.is_active,
             "created": u.created_at, "last sign-in": u.last_login_at}
            for u in User.select().order_by(User.id)]


def _tokens_section(tenant):
    return [{"id": t.id, "name": t.name, "token": t.hint, "scopes": ", ".join(t.scopes), "created": t.created_at,
             "last used": t.last_used_at, "revoked": t.revoked_at}
            for t in ApiToken.select().order_by(ApiToken.id)]


CORE_SECTIONS = {"users": AdminSection(N_("Users"), _users_section, True),
                 "tokens": AdminSection(N_("API tokens"), _tokens_section, True)}


class AdminTenantDataHandler(AdminHandler):
    """``/admin/tenants/<slug>/data/<section>``: read-only tenant data under a grant, each view recorded.

    Sections come from core (users, API tokens) and from addons through
    ``smsgw_admin_sections``; each is a function returning a list of dicts.
    """

    def sections(self) -> dict:
        sections = dict(CORE_SECTIONS)
        for _addon, extra in self.platform.registry.call_each("smsgw_admin_sections"):
            sections.update(extra)
        return sections

    async def get(self, slug, section):
        sections = self.sections()
        if section not in sections:
            raise Problem(404, "not-found", N_("There is no such section."))
        tenant = await self.tenant_or_404(slug)
        grant = await self.run_db(active_grant, self.principal.id, tenant.id)
        if grant is None:
            self.flash("error", N_("Write a reason to open this tenant's data."))
            self.redirect(f"/admin/tenants/{tenant.slug}")
            return
        grant_id, reason, expires_at = grant
        viewer = grant_principal(self.principal, tenant.slug, reason)
        # Record first: if the access cannot be recorded, it does not happen.
        await self.run_db(emit, self.platform, audit(self, "admin.access", tenant=tenant, actor=viewer.actor,
                                                     actor_name=viewer.email, target=self.request.path,
                                                     reason=reason, grant=grant_id))
        view = sections[section]
        if view.in_tenant:
            rows = await run_in_tenant(tenant.ref, view.function, tenant)
        else:
            rows = await self.run_db(view.function, tenant)
        self.render("admin/tenant_data.html", t=tenant, section=section,
                    sections=[(name, s.label) for name, s in sections.items()], rows=rows, reason=reason,
                    expires_at=expires_at, label=view.label)
