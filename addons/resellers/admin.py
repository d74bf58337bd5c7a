"""The platform Admin's side: ``/admin/resellers`` (create a reseller, its first console user) and
``/admin/resellers/<slug>`` (its people, its workspaces, which installed addons it may offer)."""

from __future__ import annotations

from core.events import emit
from core.i18n import N_
from core.web.admin_pages import AdminHandler
from core.web.auth_pages import audit
from core.web.problem import Problem

from . import service
from .service import ResellerError

ADMIN_LINKS = [{"label": N_("Resellers"), "url": "/admin/resellers"}]
FIELDS = ("slug", "company", "contact_name", "contact_email", "pricing", "commission_percent", "wholesale_plan",
          "max_workspaces")


class AdminResellersHandler(AdminHandler):
    async def get(self):
        await self.show()

    async def show(self, error: str | None = None, form: dict | None = None):
        self.render("resellers/admin_list.html", resellers=await self.run_db(service.everyone), error=error,
                    form=form or {"pricing": "commission", "commission_percent": "20", "max_workspaces": "10"})

    async def post(self):
        form = {k: self.get_body_argument(k, "")[:300] for k in FIELDS}
        try:
            reseller = await self.run_db(service.create, form)
        except ResellerError as exc:
            self.set_status(422)
            await self.show(self.refusal_text(exc), form)
            return
        await self.run_db(emit, self.platform, audit(self, "admin.reseller_created", actor=self.principal.actor,
                                                     actor_name=self.principal.email, target=f"reseller:{reseller.slug}"))
        self.flash("success", N_("Reseller %(slug)s: created."), slug=reseller.slug)
        self.redirect(f"/admin/resellers/{reseller.slug}")


class AdminResellerHandler(AdminHandler):
    async def reseller_or_404(self, slug):
        reseller = await self.run_db(service.by_slug, slug)
        if reseller is None:
            raise Problem(404, "not-found", N_("There is no reseller %(slug)s."), args={"slug": repr(slug[:60])})
        return reseller

    async def get(self, slug):
        await self.show(await self.reseller_or_404(slug))

    async def show(self, reseller, error: str | None = None):
        self.render("resellers/admin_reseller.html", r=reseller, error=error,
                    people=await self.run_db(service.users, reseller),
                    workspaces=await self.run_db(service.workspaces, reseller.id),
                    available=await self.run_db(service.available_addons, reseller),
                    installed=self.platform.registry.names())

    async def post(self, slug):
        reseller = await self.reseller_or_404(slug)
        action = self.get_body_argument("action", "")
        try:
            details = {}
            if action == "billing_details":
                form = {k: self.get_body_argument(k, "")[:1000] for k in ("address", "country", "vat_id")}
                errors = await self.run_db(service.save_billing_details, reseller, form)
                if errors:
                    _ = self.gettext()[0]
                    raise ResellerError("; ".join(_(msgid) for msgid in errors.values()))
                target = f"reseller:{reseller.slug}"
            elif action in ("suspend", "resume"):
                reason = self.get_body_argument("reason", "")[:1000]
                await self.run_db(service.set_status, reseller, action == "suspend", reason)
                target, details = f"reseller:{reseller.slug}", {"reason": " ".join(reason.split())}
            elif action in ("make_available", "withdraw"):
                addon = self.get_body_argument("addon", "")[:60]
                await self.run_db(service.set_available, self.platform, reseller, addon, action == "make_available")
                target = f"addon:{addon}"
            elif action == "add_user":
                user_id = await self.run_db(service.add_user, self.platform, reseller,
                                            self.get_body_argument("email", "")[:254],
                                            self.get_body_argument("password", "")[:2048],
                                            self.get_body_argument("role", ""), self.get_body_argument("name", "")[:200])
                target = f"reseller_user:{user_id}"
            else:
                raise Problem(400, "invalid-action", N_("Unknown action."))
        except ResellerError as exc:
            self.set_status(422)
            await self.show(reseller, self.refusal_text(exc))
            return
        await self.run_db(emit, self.platform, audit(self, f"admin.reseller_{action}", actor=self.principal.actor,
                                                     actor_name=self.principal.email, target=target,
                                                     reseller=reseller.slug, **details))
        self.flash("success", N_("Reseller %(slug)s: saved."), slug=reseller.slug)
        self.redirect(f"/admin/resellers/{reseller.slug}")


def routes() -> list[tuple]:
    return [(r"/admin/resellers", AdminResellersHandler),
            (r"/admin/resellers/([a-z0-9-]{1,40})", AdminResellerHandler)]
