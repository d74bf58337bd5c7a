"""The reseller console at ``partners.<base-domain>/<reseller>/...``: its own sign-in, the
reseller's workspaces, their usage and subscription, suspend/resume, reasoned support access,
its people and its addons.

Every handler reaches the reseller from the path (:meth:`ResellerHandler.prepare`) and a workspace
only through :meth:`ResellerHandler.workspace_or_404`, which asks :func:`.service.workspace`: the
one scoping query. Another reseller's workspace, or one of nobody's, is a 404 like a missing one.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import tornado.ioloop

from addons.branding.logo import MAX_BYTES as LOGO_MAX_BYTES
from core.clock import utcnow
from core.db import run_in_tenant, run_sync
from core.events import emit
from core.i18n import N_
from core.permissions import PUBLIC
from core.tenancy import TenantError
from core.throttle import account_key
from core.web.admin_pages import tenant_data_sections
from core.web.auth_pages import SAME_ANSWER, audit, client_ip
from core.web.base import PageHandler
from core.web.hosts import tenant_by_slug
from core.web.pages import safe_next
from core.web.problem import Problem

from . import plan_addons, service
from .service import ADMIN_PERMISSION, SUPPORT_PERMISSION, ResellerError

HOST = "partners"
COOKIE = "smsgw_partner"
KNOWN_COOKIE = "smsgw_partner_known"
TOO_MANY = N_("Too many failed sign-ins. Wait a while and try again.")
R = r"/([a-z0-9-]{1,40})"
W = r"([a-z0-9-]{1,40})"


class ResellerHandler(PageHandler):
    scope = "host"
    host_label = HOST
    custom_hosts = True  # also at the reseller's own proved host names (hostnames.py)
    permissions = {"GET": SUPPORT_PERMISSION, "POST": ADMIN_PERMISSION}

    def initialize(self, **kwargs):
        super().initialize(**kwargs)
        self.reseller = None
        self.logo_version = 0

    async def prepare(self):
        slug = self.path_args[0] if self.path_args else ""
        self.reseller = await self.run_db(service.by_slug, slug)
        if self.request.host_name.lower().rstrip(".") != f"{HOST}.{self.settings_.base_domain}":
            # A host of the reseller's own (core.web.app.custom_host_routes): only once it proved it.
            from . import hostnames

            host = self.request.host_name.lower().rstrip(".")
            if self.reseller is None or not await self.run_db(hostnames.serves, host, self.reseller):
                await self.not_a_reseller_host()
        if self.reseller is None:
            raise Problem(404, "not-found", N_("There is no page at this address."))
        if not self.reseller.is_active:
            raise Problem(403, "reseller-suspended",
                          N_("The partner account %(company)s is suspended by the platform operator: %(reason)s. "
                             "Nobody can sign in to its console until it is resumed; its customers' workspaces "
                             "keep working. Contact the platform operator."),
                          title=N_("Partner account suspended"),
                          args={"company": self.reseller.company, "reason": self.reseller.status_reason or "-"})
        from . import brand

        self.logo_version = await self.run_db(brand.logo_version, self.reseller.id)
        await super().prepare()

    async def not_a_reseller_host(self):
        """At a host no reseller proved for this page: what the workspaces' routes answer there (a
        workspace's own host: its branded 404; anybody else's: the unknown-host refusal)."""
        slug = await self.route_host()  # refuses a host nobody proved
        tenant = await tenant_by_slug(self.platform, slug) if slug else None
        if tenant is not None and tenant.is_active:
            self.tenant = tenant
            self._brand = await run_sync(self.platform.brand_for, tenant)
        raise Problem(404, "not-found", N_("There is no page at this address."))

    @property
    def home(self) -> str:
        return f"/{self.reseller.slug}"

    def unauthenticated(self):
        self.login_path = f"{self.home}/login"
        super().unauthenticated()

    def cookie_kwargs(self) -> dict:
        return {"httponly": True, "samesite": "Strict", "secure": self.request.protocol == "https",
                "path": self.home}

    async def prepare_user(self):
        # The console's own session only: no bearer tokens, no workspace or Admin sessions here.
        sid = self.get_signed_cookie(COOKIE, max_age_days=1)
        if sid:
            self.principal = await self.run_db(service.session_principal, sid.decode(), self.reseller)

    def template_context(self) -> dict:
        ctx = super().template_context()
        ctx["reseller"] = self.reseller
        ctx["console"] = self.home if self.reseller is not None else ""
        ctx["console_logo"] = f"{self.home}/brand/logo?v={self.logo_version}" if self.logo_version else ""
        return ctx

    async def workspace_or_404(self, slug: str):
        info = await self.run_db(service.workspace, self.reseller.id, slug)
        if info is None:
            raise Problem(404, "not-found", N_("There is no workspace %(slug)s here."), args={"slug": repr(slug[:60])})
        return info

    async def record_addon_changes(self, addon: str, enabled: bool, outcomes, **fields) -> None:
        """Each workspace's addon change that worked, in that workspace's own audit trail."""
        for outcome in outcomes:
            if not outcome.error:
                info = await self.run_db(self.platform.tenant_cache.loader, outcome.slug)
                await self.record("reseller.addon_enabled" if enabled else "reseller.addon_disabled", tenant=info,
                                  target=f"addon:{addon}", **fields)

    def record(self, action: str, tenant=None, **fields):
        p = self.principal
        return self.run_db(emit, self.platform, audit(self, action, tenant=tenant, actor=f"reseller:{p.id}",
                                                      actor_name=p.email, reseller=self.reseller.slug, **fields))


class LoginHandler(ResellerHandler):
    permissions = {"GET": PUBLIC, "POST": PUBLIC}

    def get(self, _reseller):
        self.render("resellers/login.html", error=None, next=safe_next(self.get_query_argument("next", self.home)))

    async def post(self, _reseller):
        email = self.get_body_argument("email", "").strip()[:254]
        password = self.get_body_argument("password", "")[:2048]
        nxt = safe_next(self.get_body_argument("next", self.home))
        key = account_key(f"(reseller:{self.reseller.slug})", email)
        known = self.get_signed_cookie(KNOWN_COOKIE, max_age_days=365)
        trusted = bool(known) and known.decode().lower() == email.lower()
        verdict = await self.run_db(self.platform.throttle.begin, key, client_ip(self), trusted)
        user = None
        if verdict.allowed:
            if verdict.delay:
                await asyncio.sleep(verdict.delay)
            user = await self.run_db(service.check_password, self.reseller, email, password, self.platform.pepper,
                                     self.platform.bcrypt_cost)
        if user is None:
            await self.run_db(emit, self.platform, audit(self, "reseller.login.failure", actor_name=email,
                                                         reseller=self.reseller.slug))
            self.set_status(401 if verdict.allowed else 429)
            self.render("resellers/login.html", error=SAME_ANSWER if verdict.allowed else TOO_MANY, next=nxt)
            return
        await self.run_db(self.platform.throttle.succeeded, key, verdict)
        user_id, address = user[0], user[1]
        token = await self.run_db(service.create_session, user_id, client_ip(self),
                                  self.request.headers.get("User-Agent", ""))
        await self.run_db(emit, self.platform, audit(self, "reseller.login.success", actor=f"reseller:{user_id}",
                                                     actor_name=address, reseller=self.reseller.slug))
        self.set_signed_cookie(KNOWN_COOKIE, address, expires_days=365, **self.cookie_kwargs())
        self.set_signed_cookie(COOKIE, token, expires_days=1, **self.cookie_kwargs())
        self.redirect(nxt if nxt.startswith(self.home + "/") or nxt == self.home else self.home)


class LogoutHandler(ResellerHandler):
    permissions = {"GET": PUBLIC, "POST": PUBLIC}  # a GET is a 405: signing out needs the form

    async def post(self, _reseller):
        sid = self.get_signed_cookie(COOKIE, max_age_days=1)
        if sid:
            await self.run_db(service.revoke_session, sid.decode())
        self.clear_cookie(COOKIE, path=self.home)
        self.redirect(f"{self.home}/login")


class HomeHandler(ResellerHandler):
    """``/<reseller>``: its workspaces, and a form to create one for a customer."""

    async def get(self, _reseller):
        await self.show()

    async def show(self, error: str | None = None, form: dict | None = None):
        found = await self.run_db(service.workspaces, self.reseller.id)
        self.render("resellers/home.html", workspaces=found, error=error, form=form or {})

    async def post(self, _reseller):
        form = {k: self.get_body_argument(k, "")[:300] for k in ("slug", "name", "owner_email")}
        try:
            info = await self.run_db(service.create_workspace, self.platform, self.reseller, form["slug"].strip(),
                                     form["name"], form["owner_email"], self.get_body_argument("owner_password", "")[:2048])
        except (ResellerError, TenantError) as exc:
            self.set_status(422)
            await self.show(self.refusal_text(exc), form)
            return
        await self.record("reseller.tenant_created", tenant=info, target=f"tenant:{info.slug}")
        self.flash("success", N_("Workspace %(slug)s: created."), slug=info.slug)
        self.redirect(f"{self.home}/workspaces/{info.slug}")


def workspace_figures(tenant) -> dict:
    """The workspace's subscription (billing's record) and this month's billable usage."""
    from addons.billing import subscriptions, usage_figures
    from core.db import connection, tenant_transaction

    now = utcnow()
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    with connection():
        sub = subscriptions.get(tenant.id)
    with tenant_transaction(tenant.ref):
        used = usage_figures.period_usage(tenant, start, now + dt.timedelta(days=1))
    return {"subscription": sub, "month_usage": used, "month_start": start}


class WorkspaceHandler(ResellerHandler):
    """``/<reseller>/workspaces/<slug>``: status, usage, subscription, addons; suspend/resume; support access."""

    permissions = {"GET": SUPPORT_PERMISSION, "POST": SUPPORT_PERMISSION}

    async def get(self, _reseller, slug):
        await self.show(await self.workspace_or_404(slug))

    async def show(self, tenant, error: str | None = None):
        figures = await self.run_db(workspace_figures, tenant)
        grant = await self.run_db(service.active_grant, self.principal.id, tenant.id)
        available = await self.run_db(service.available_addons, self.reseller)
        self.render("resellers/workspace.html", t=tenant, grant=grant, error=error, available=available, **figures)

    async def post(self, _reseller, slug):
        tenant = await self.workspace_or_404(slug)
        action = self.get_body_argument("action", "")
        if action in ("suspend", "resume"):
            if not self.principal.can(ADMIN_PERMISSION):
                raise Problem(403, "forbidden", N_("Your role does not allow this. Ask the account owner if you need it."))
            if action == "suspend":
                _ = self.gettext()[0]
                if not self.confirmed(_("Suspend the workspace %(slug)s (%(name)s)?") % {"slug": tenant.slug, "name": tenant.name},
                                      _("Suspend workspace"), f"{self.home}/workspaces/{tenant.slug}",
                                      _("Nobody can sign in or send there, and its phones are refused, until it "
                                        "is resumed.")):
                    return
            await self.run_db(getattr(self.platform.tenants, action), tenant.slug)
            done = {"suspend": "suspended", "resume": "resumed"}[action]
            await self.record(f"reseller.tenant_{done}", tenant=tenant, target=f"tenant:{tenant.slug}")
            self.flash("success", {"suspend": N_("Workspace %(slug)s: suspended."),
                                   "resume": N_("Workspace %(slug)s: resumed.")}[action], slug=tenant.slug)
            self.redirect(f"{self.home}/workspaces/{tenant.slug}")
            return
        if action == "access":
            try:
                grant_id, reason = await self.run_db(service.open_grant, self.principal.id, tenant.id,
                                                     self.get_body_argument("reason", ""), client_ip(self))
            except ResellerError as exc:
                self.set_status(422)
                await self.show(tenant, self.refusal_text(exc))
                return
            await self.record("reseller.access_granted", tenant=tenant, target=f"tenant:{tenant.slug}",
                              reason=reason, grant=grant_id)
            self.redirect(f"{self.home}/workspaces/{tenant.slug}/data/users")
            return
        raise Problem(400, "invalid-action", N_("Unknown action."))


class WorkspaceDataHandler(ResellerHandler):
    """``/<reseller>/workspaces/<slug>/data/<section>``: read-only, under a reasoned grant, each view
    recorded in the workspace's audit trail first: the Admins' rule and views
    (:func:`core.web.admin_pages.tenant_data_sections`)."""

    async def get(self, _reseller, slug, section):
        sections = tenant_data_sections(self.platform)
        if section not in sections:
            raise Problem(404, "not-found", N_("There is no such section."))
        tenant = await self.workspace_or_404(slug)
        grant = await self.run_db(service.active_grant, self.principal.id, tenant.id)
        if grant is None:
            self.flash("error", N_("Write a reason to open this tenant's data."))
            self.redirect(f"{self.home}/workspaces/{tenant.slug}")
            return
        grant_id, reason, expires_at = grant
        await self.record("reseller.access", tenant=tenant, target=self.request.path, reason=reason, grant=grant_id)
        view = sections[section]
        rows = (await run_in_tenant(tenant.ref, view.function, tenant) if view.in_tenant
                else await self.run_db(view.function, tenant))
        self.render("resellers/workspace_data.html", t=tenant, section=section, rows=rows, reason=reason,
                    sections=[(name, s.label) for name, s in sections.items()], expires_at=expires_at, label=view.label)


class AddonsHandler(ResellerHandler):
    """``/<reseller>/addons``: the addons the operator made available; enable or disable one for all
    or some workspaces, with each workspace's outcome shown."""

    async def get(self, _reseller):
        await self.show()

    async def show(self, outcomes=None, addon: str = ""):
        available = await self.run_db(service.available_addons, self.reseller)
        found = await self.run_db(service.workspaces, self.reseller.id)
        addons = [self.platform.registry.by_name[a] for a in available if a in self.platform.registry.by_name]
        self.render("resellers/addons.html", addons=addons, workspaces=found, outcomes=outcomes, addon=addon)

    async def post(self, _reseller):
        addon = self.get_body_argument("addon", "")[:60]
        enabled = self.get_body_argument("action", "") == "enable"
        everywhere = self.get_body_argument("all", "") == "1"
        if everywhere:
            slugs = [t.slug for t in await self.run_db(service.workspaces, self.reseller.id)]
        else:
            slugs = [s[:60] for s in self.get_body_arguments("workspace")][:1000]
        if not slugs:
            if self.wants_json():
                raise Problem(422, "no-workspace", N_("Choose at least one workspace."))
            self.flash("error", N_("Choose at least one workspace."))
            self.redirect(f"{self.home}/addons")
            return
        from . import jobs

        try:
            job_id = await self.run_db(jobs.create, self.reseller, addon, slugs, enabled)
        except service.NotYours:
            raise Problem(404, "not-found", N_("There is no such addon here.")) from None
        if self.wants_json():
            # The page's script: the job runs on, and the script polls its progress.
            tornado.ioloop.IOLoop.current().spawn_callback(self.run_job, job_id, addon, enabled)
            self.set_status(202)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"job": job_id, "url": f"{self.home}/addons/jobs/{job_id}"}))
            return
        outcomes = await self.run_job(job_id, addon, enabled)  # without JavaScript: the result at the end
        if any(o.error for o in outcomes):
            self.set_status(422)
        await self.show(outcomes, addon)

    async def run_job(self, job_id: int, addon: str, enabled: bool):
        from . import jobs

        outcomes = await self.run_db(jobs.run, self.platform, self.reseller, job_id)
        await self.record_addon_changes(addon, enabled, outcomes)
        return outcomes


class AddonJobHandler(ResellerHandler):
    """``/<reseller>/addons/jobs/<id>``: a job's progress as JSON (the addons page's script polls it)."""

    async def get(self, _reseller, job_id):
        from . import jobs

        job = await self.run_db(jobs.get, self.reseller.id, int(job_id)) if len(job_id) <= 18 else None
        if job is None:
            raise Problem(404, "not-found", N_("There is no such job here."))
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(job))


class TeamHandler(ResellerHandler):
    """``/<reseller>/team``: the console's people (reseller admins add them)."""

    permissions = {"GET": ADMIN_PERMISSION, "POST": ADMIN_PERMISSION}

    async def get(self, _reseller):
        await self.show()

    async def show(self, error: str | None = None):
        self.render("resellers/team.html", people=await self.run_db(service.users, self.reseller), error=error,
                    roles=service.ROLES)

    async def post(self, _reseller):
        email = self.get_body_argument("email", "")[:254]
        try:
            user_id = await self.run_db(service.add_user, self.platform, self.reseller, email,
                                        self.get_body_argument("password", "")[:2048],
                                        self.get_body_argument("role", ""), self.get_body_argument("name", "")[:200])
        except ResellerError as exc:
            self.set_status(422)
            await self.show(self.refusal_text(exc))
            return
        await self.record("reseller.user_added", target=f"reseller_user:{user_id}")
        self.flash("success", N_("%(email)s can now sign in."), email=email.strip())
        self.redirect(f"{self.home}/team")


def signup_settings(reseller):
    from . import signup

    return signup.settings_of(reseller)


class InvoicesHandler(ResellerHandler):
    """``/<reseller>/invoices``: its retail plans (create, put a workspace on one), its customers'
    invoices for a month, and the platform's wholesale invoices to it."""

    async def get(self, _reseller):
        await self.show()

    async def show(self, error: str | None = None):
        from . import invoicing

        from addons.billing.money import format_rate
        from addons.billing.plans import format_price

        self.render("resellers/invoices.html", error=error, tax_rate=format_rate, plans=await self.run_db(invoicing.plans, self.reseller),
                    plan_addons=await self.run_db(plan_addons.by_plan, self.reseller),
                    signup=await self.run_db(signup_settings, self.reseller),
                    available=await self.run_db(service.available_addons, self.reseller),
                    price=lambda amount, currency: format_price(amount, currency, self.lang),
                    workspaces=await self.run_db(service.workspaces, self.reseller.id),
                    wholesale=await self.run_db(invoicing.wholesale_invoices, self.reseller))

    async def post(self, _reseller):
        from . import invoicing

        action = self.get_body_argument("action", "")
        try:
            if action == "create_plan":
                fields = ("code", "name", "currency", "monthly_price", "included_segments", "overage_per_1000")
                await self.run_db(invoicing.create_plan, self.reseller,
                                  {k: self.get_body_argument(k, "")[:100] for k in fields})
            elif action == "assign_plan":
                slug, code = self.get_body_argument("workspace", "")[:60], self.get_body_argument("plan", "")[:60]
                changes = await self.run_db(invoicing.assign_plan, self.platform, self.reseller, slug, code)
                for addon, enabled, error in changes:
                    await self.record_addon_changes(addon, enabled, [service.Outcome(slug, error)], plan=code)
                failed = [f"{addon}: {error}" for addon, _enabled, error in changes if error]
                if failed:
                    raise ResellerError(N_("The workspace is on the new plan, but these addons could not follow it: "
                                           "%(failures)s"), {"failures": "; ".join(failed)})
            elif action in ("plan_addon_add", "plan_addon_remove"):
                plan = await self.run_db(invoicing.plan_by_code, self.reseller, self.get_body_argument("plan", "")[:60])
                addon = self.get_body_argument("addon", "")[:60]
                outcomes = await self.run_db(plan_addons.attach, self.platform, self.reseller, plan, addon,
                                             action == "plan_addon_add")
                await self.record_addon_changes(addon, action == "plan_addon_add", outcomes, plan=plan.code)
                failed = [o for o in outcomes if o.error]
                if failed:
                    raise ResellerError(N_("%(addon)s could not be changed in these workspaces: %(failures)s"),
                                        {"addon": addon, "failures": "; ".join(f"{o.slug}: {o.error}" for o in failed)})
            elif action == "signup_settings":
                from . import signup

                await self.run_db(signup.save_settings, self.reseller, self.get_body_argument("signup_enabled", "") == "1",
                                  self.get_body_argument("plan", "")[:60])
            elif action == "invoice_customers":
                issued = await self.run_db(invoicing.invoice_customers, self.reseller, self.get_body_argument("month", "")[:20])
                self.flash("success", N_("Invoices issued: %(numbers)s"), numbers=", ".join(i.number for i in issued) or "-")
            else:
                raise Problem(400, "invalid-action", N_("Unknown action."))
        except service.NotYours:
            raise Problem(404, "not-found", N_("There is no such workspace or plan here.")) from None
        except ResellerError as exc:
            self.set_status(422)
            await self.show(self.refusal_text(exc))
            return
        await self.record(f"reseller.{action}", target=f"reseller:{self.reseller.slug}")
        self.redirect(f"{self.home}/invoices")


class BrandHandler(ResellerHandler):
    """``/<reseller>/brand``: the brand its workspaces show (where their own settings say nothing),
    and whether their Customers may change it (reseller admins)."""

    permissions = {"GET": ADMIN_PERMISSION, "POST": ADMIN_PERMISSION}

    async def get(self, _reseller):
        from . import brand

        form, may_rebrand = await self.run_db(brand.of_reseller, self.reseller.id)
        await self.load_hosts()
        self.show(form, may_rebrand, {})

    hosts: list = []

    async def load_hosts(self) -> None:
        from . import hostnames

        self.hosts = await self.run_db(hostnames.of_reseller, self.reseller)

    def show(self, form: dict, may_rebrand: bool, errors: dict, logo_error=None, host_error=None) -> None:
        from addons.branding import logo, service as branding

        self.render("resellers/brand.html", form=form, may_rebrand=may_rebrand, errors=errors,
                    themes=branding.installed_themes(), logo_error=logo_error, logo_limit=logo.MAX_BYTES // 1024,
                    hosts=self.hosts, host_error=host_error)

    async def post(self, _reseller):
        from . import brand

        form = {name: self.get_body_argument(name, "")[:300] for name in brand.FIELDS}
        may_rebrand = self.get_body_argument("workspaces_may_rebrand", "") == "1"
        errors = await self.run_db(brand.save, self.reseller.id, form, may_rebrand)
        if errors:
            self.set_status(422)
            await self.load_hosts()
            self.show(form, may_rebrand, errors)
            return
        await self.record("reseller.brand_changed", target=f"reseller:{self.reseller.slug}",
                          workspaces_may_rebrand=may_rebrand)
        self.flash("success", N_("Saved. Your workspaces show the new brand now."))
        self.redirect(f"{self.home}/brand")


class BrandLogoHandler(BrandHandler):
    """``/<reseller>/brand/logo``: ``GET`` the reseller's logo (anyone: its sign-in page shows it);
    ``POST`` upload (``logo``, checked by the branding addon's :func:`addons.branding.logo.check`) or
    remove (``action=remove``) it (reseller admins)."""

    permissions = {"GET": PUBLIC, "POST": ADMIN_PERMISSION}

    max_body_size = 2 * LOGO_MAX_BYTES  # a larger file is refused by logo.check, with its size named

    async def get(self, _reseller):
        from addons.branding.pages import send_logo

        from . import brand

        found = await self.run_db(brand.logo, self.reseller.id)
        if found is None:
            raise Problem(404, "not-found", N_("This reseller has no logo."))
        send_logo(self, found)

    async def post(self, _reseller):
        from addons.branding.logo import LogoError
        from addons.branding.pages import uploaded_logo

        from . import brand

        if self.get_body_argument("action", "") == "remove":
            await self.run_db(brand.save_logo, self.reseller.id, None)
            await self.record("reseller.logo_removed", target=f"reseller:{self.reseller.slug}")
            self.flash("success", N_("The logo was removed."))
            self.redirect(f"{self.home}/brand", status=303)
            return
        try:
            checked = uploaded_logo(self)
        except LogoError as exc:
            form, may_rebrand = await self.run_db(brand.of_reseller, self.reseller.id)
            self.set_status(422)
            await self.load_hosts()
            self.show(form, may_rebrand, {}, (exc.msgid, exc.args_))
            return
        await self.run_db(brand.save_logo, self.reseller.id, checked)
        await self.record("reseller.logo_changed", target=f"reseller:{self.reseller.slug}",
                          content_type=checked.content_type, size=len(checked.data))
        self.flash("success", N_("The logo was saved."))
        self.redirect(f"{self.home}/brand", status=303)



class BrandHostsHandler(BrandHandler):
    """``POST /<reseller>/brand/hosts``: add a host name of its own (``action=add``), check its TXT
    record (``check``: the branding addon's proof and resolver) or remove it (``remove``)."""

    permissions = {"GET": ADMIN_PERMISSION, "POST": ADMIN_PERMISSION}

    async def get(self, _reseller):
        self.redirect(f"{self.home}/brand#hosts")

    async def post(self, _reseller):
        from addons.branding import domains

        from . import brand, hostnames

        action = self.get_body_argument("action", "")
        host = self.get_body_argument("host", "")[:300]
        try:
            if action == "add":
                added = await self.run_db(hostnames.add, self.reseller, host, self.settings_.base_domain)
                await self.record("reseller.host_added", target=f"reseller:{self.reseller.slug}", host=added.host)
                self.flash("success", N_("%(host)s was added. Publish its TXT record, then check it."), host=added.host)
            elif action == "check":
                checked = await self.run_db(hostnames.verify, self.reseller, host, domains.resolver_from(self.settings_))
                await self.record("reseller.host_verified", target=f"reseller:{self.reseller.slug}", host=checked.host)
                self.flash("success", N_("%(host)s is verified: your console and sign-up page answer there now."),
                           host=checked.host)
            elif action == "remove":
                if await self.run_db(hostnames.remove, self.reseller, host):
                    await self.record("reseller.host_removed", target=f"reseller:{self.reseller.slug}", host=host)
                self.flash("success", N_("%(host)s was removed."), host=host)
            else:
                raise Problem(400, "bad-request", N_("Choose add, check or remove."))
        except domains.DomainError as exc:
            form, may_rebrand = await self.run_db(brand.of_reseller, self.reseller.id)
            self.set_status(422)
            await self.load_hosts()
            self.show(form, may_rebrand, {}, None, (exc.msgid, exc.args_))
            return
        self.redirect(f"{self.home}/brand#hosts", status=303)



def routes() -> list[tuple]:
    return [
        (R + r"/login", LoginHandler),
        (R + r"/logout", LogoutHandler),
        (R + r"/?", HomeHandler),
        (R + r"/workspaces/" + W, WorkspaceHandler),
        (R + r"/workspaces/" + W + r"/data/([a-z_]{1,40})", WorkspaceDataHandler),
        (R + r"/addons", AddonsHandler),
        (R + r"/addons/jobs/([0-9]{1,18})", AddonJobHandler),
        (R + r"/team", TeamHandler),
        (R + r"/invoices", InvoicesHandler),
        (R + r"/brand", BrandHandler),
        (R + r"/brand/logo", BrandLogoHandler),
        (R + r"/brand/hosts", BrandHostsHandler),
    ]
