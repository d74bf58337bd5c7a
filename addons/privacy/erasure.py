"""Privacy: deleting the organisation (issue 15, item 3).

A Customer deletes the workspace from *Account → Privacy* (section ``delete-workspace``) with their
password and the workspace's name typed out. At once every credential dies (sessions, refresh
tokens with their access tokens, API tokens, device tokens: :func:`core.identity.
revoke_workspace_credentials`, then NOTIFY so no process keeps one cached), sending stops (the
catalogue's ``deletion_scheduled_at`` makes the cached tenant info say "sending paused", which
messaging honours), and everyone who signs in sees "scheduled for deletion on <date>"; the
Customer can cancel until then (``SMSGW_DELETION_GRACE_DAYS``, default 14, at most 30).

Cancelling restores the workspace, its data and its sending; the credentials revoked stay revoked
(a secret that may have leaked is not brought back): members sign in again, the Customer creates
new API tokens and pairs the phones again (each keeps its name, settings and history).

On the date, the platform periodic ``privacy.erase_due_workspaces`` (every 10 minutes) erases it:
public tables by their declarations (:mod:`.erasure_walk`), the login throttles, its queued tasks,
then the schema, role and catalogue rows (:meth:`core.tenancy.TenantService.delete`). What stays,
because a legal obligation requires it: the audit trail (pseudonymised; purged after its 90 days),
the record of the erasure request, and a tombstone (``public.reserved_slug``: the subdomain and the
deletion date; sign-up refuses the subdomain for 90 days). The platform admin sees pending
deletions at ``/admin/privacy/deletions`` and can run one early, with a written reason.
"""

from __future__ import annotations

import datetime as dt
import logging

from core.adminauth import MIN_REASON
from core.catalogue import Tenant
from core.clock import utcnow
from core.db import app_db, connection, tenant_transaction
from core.events import AuditEvent, emit
from core.identity import check_password, revoke_workspace_credentials
from core.tasks import crontab
from core.tenancy import load_tenant
from core.users import User
from core.web.admin_pages import AdminHandler
from core.web.auth_pages import audit, client_ip
from core.web.problem import Problem

from . import requests
from .erasure_walk import forget_workspace_shared, new_salt
from .page import MANAGE, Section
from core.i18n import N_

log = logging.getLogger(__name__)

MAX_GRACE_DAYS = 30
TOMBSTONE = dt.timedelta(days=90)
TASK = "privacy.erase_due_workspaces"


def grace(platform) -> dt.timedelta:
    return dt.timedelta(days=min(platform.settings.deletion_grace_days, MAX_GRACE_DAYS))


def password_ok(platform, principal, password: str) -> bool:
    """Inside the tenant transaction: the signed-in person typed their own password."""
    return (principal.kind == "user" and bool(principal.email)
            and check_password(principal.email, password, platform.pepper, platform.bcrypt_cost) is not None)


def _open_erasure(tenant_id: int, subject: str = "tenant") -> list[dict]:
    return [r for r in requests.for_tenant(tenant_id) if r["kind"] == "erasure" and r["subject"] == subject
            and r["state"] in requests.OPEN_STATES]


# -- the section of Account → Privacy ------------------------------------------------------------

async def load(handler) -> dict | None:
    if not handler.principal.can(MANAGE):
        return None
    tenant = handler.tenant
    return {"name": tenant.name, "scheduled": tenant.deletion_scheduled_at, "grace_days": grace(handler.platform).days}


async def post(handler) -> dict | None:
    action = handler.get_body_argument("action", "")
    if action == "cancel-deletion":
        await cancel(handler)
        return None
    if action != "delete-workspace":
        raise Problem(400, "bad-request", N_("Unknown action; reload the page and try again."))
    _ = handler.gettext()[0]
    platform, tenant, principal = handler.platform, handler.tenant, handler.principal
    if tenant.deletion_scheduled_at is not None:
        return {"confirm_name": _("The workspace is already scheduled for deletion.")}
    password = handler.get_body_argument("password", "")[:2048]
    typed = " ".join(handler.get_body_argument("confirm_name", "").split())[:300]
    if typed.casefold() != " ".join(tenant.name.split()).casefold():
        return {"confirm_name": _("Type the workspace's name exactly as shown to confirm.")}
    at = utcnow() + grace(platform)

    def revoke_everything() -> bool:
        if not password_ok(platform, principal, password):
            return False
        revoke_workspace_credentials(platform, tenant)
        return True

    if not await handler.in_tenant(revoke_everything):
        return {"password": _("Your password is not right.")}
    await handler.run_db(schedule, platform, tenant, at, principal.actor, audit(
        handler, "tenant.deletion_scheduled", actor=principal.actor, actor_name=principal.email,
        target=f"tenant:{tenant.slug}", scheduled_for=at.isoformat()))
    handler.redirect("/login?next=/account/privacy%23delete-workspace", status=303)
    return None


def schedule(platform, tenant, at: dt.datetime, requested_by: str, event: AuditEvent) -> None:
    """The credentials are revoked: stop sending, show the date, record the request, tell every process."""
    platform.tenants.schedule_deletion(tenant.slug, at)
    with connection():
        requests.open_request("erasure", "tenant", tenant=tenant, requested_by=requested_by, self_service=True,
                              details={"scheduled_for": at.isoformat()}, state="in_progress")
    emit(platform, event)
    platform.credentials_changed(tenant.slug)


async def cancel(handler) -> None:
    platform, tenant, principal = handler.platform, handler.tenant, handler.principal
    if tenant.deletion_scheduled_at is None:
        return

    def undo():
        platform.tenants.schedule_deletion(tenant.slug, None)
        with connection():
            for r in _open_erasure(tenant.id):
                requests.set_state(r["id"], "cancelled", "cancelled by the Customer during the grace period")
        emit(platform, audit(handler, "tenant.deletion_cancelled", actor=principal.actor, actor_name=principal.email,
                             target=f"tenant:{tenant.slug}"))

    await handler.run_db(undo)
    _ = handler.gettext()[0]
    handler.flash("success", _("The deletion was cancelled. Create new API tokens and pair your phones again: "
                               "the old ones stay revoked."))


SECTION = Section("delete-workspace", 90, "privacy/erasure_workspace.html", load, post)


# -- the run ------------------------------------------------------------------------------------

def tasks(queue) -> None:
    platform = queue.platform
    queue.periodic(crontab(minute="*/10"), lambda: run_due(platform), name=TASK, per_tenant=False)


def run_due(platform, now: dt.datetime | None = None) -> list[str]:
    """Erase every workspace whose deletion date has come; their slugs."""
    now = now or utcnow()
    with connection():
        slugs = [t.slug for t in Tenant.select(Tenant.slug).where(
            Tenant.deletion_scheduled_at.is_null(False) & (Tenant.deletion_scheduled_at <= now))]
    done = []
    for slug in slugs:
        try:
            if erase_workspace(platform, slug, due_by=now) is None:
                continue  # cancelled meanwhile
        except Exception:  # one workspace's failure must not keep the others: the next run retries it
            log.exception("erasing workspace %s failed; the next run tries again", slug)
            continue
        done.append(slug)
    return done


def erase_workspace(platform, slug: str, *, actor: str = "system", actor_name: str = "",
                    reason: str | None = None, ip: str = "", due_by: dt.datetime | None = None) -> dict | None:
    """Erase a workspace waiting for deletion (with ``due_by``: only if its date is not after it) now:
    shared tables by declaration, queued tasks, schema, role, catalogue; leave the pseudonymised audit
    trail, the request's record and the tombstone. What was touched; ``None`` if it is not waiting
    (its Customer cancelled meanwhile)."""
    info = load_tenant(slug)
    if info is None or info.deletion_scheduled_at is None or (due_by and info.deletion_scheduled_at > due_by):
        return None
    salt = new_salt()
    with tenant_transaction(info.ref):
        emails = [e for (e,) in User.select(User.email).tuples()]
    with connection():
        with app_db.atomic():
            touched = forget_workspace_shared(platform, info, emails, salt)
    touched["queued_tasks"] = drop_queued_tasks(platform, slug)
    platform.tenants.delete(slug)
    now = utcnow()
    platform.tenants.reserve_slug(slug, now + TOMBSTONE, f"workspace deleted on {now:%Y-%m-%d}")
    with connection():
        outcome = "erased early by the platform admin: " + reason if reason else "erased on its date"
        open_ones = _open_erasure(info.id)
        for r in open_ones:
            requests.set_state(r["id"], "done", outcome)
        if not open_ones:
            request_id = requests.open_request("erasure", "tenant", tenant=info, requested_by=actor)
            requests.set_state(request_id, "done", outcome)
    emit(platform, AuditEvent("tenant.erased", info.id, info.slug, actor=actor, actor_name=actor_name,
                              target=f"tenant:{slug}", ip=ip, reason=reason,
                              details={"rows": touched, "slug_reserved_until": (now + TOMBSTONE).isoformat()}))
    log.info("erased workspace %s (%s)", slug, ", ".join(f"{k}: {v}" for k, v in touched.items()))
    return touched


def drop_queued_tasks(platform, slug: str) -> int:
    """Remove the workspace's tasks waiting in the queue (``huey.contrib.sql_huey``; with Redis they
    stay until a worker takes them, and the kernel skips tasks of a workspace that is gone)."""
    huey = platform.huey
    storage = getattr(huey, "storage", None)
    models = [getattr(storage, name, None) for name in ("Task", "Schedule")]
    if huey is None or None in models:
        return 0
    removed = 0
    with storage.database.connection_context():
        for model in models:
            for row in model.select(model.id, model.data).where(model.queue == storage.name):
                try:
                    message = huey.serializer.deserialize(bytes(row.data))
                except Exception:  # not ours to judge: leave it
                    continue
                if message.args and message.args[0] == slug:
                    removed += model.delete().where(model.id == row.id).execute()
    return removed


# -- the platform admin ---------------------------------------------------------------------------

def pending_deletions() -> list[dict]:
    with connection():
        return [{"slug": t.slug, "name": t.name, "deletion_scheduled_at": t.deletion_scheduled_at,
                 "created_at": t.created_at}
                for t in Tenant.select().where(Tenant.deletion_scheduled_at.is_null(False))
                .order_by(Tenant.deletion_scheduled_at)]


class AdminDeletionsPage(AdminHandler):
    """``/admin/privacy/deletions``: workspaces waiting to be erased; run one early with a reason."""

    async def get(self):
        self.render("privacy/erasure_admin.html", pending=await self.run_db(pending_deletions), error=None)

    async def post(self):
        slug = self.get_body_argument("slug", "")[:60]
        reason = self.get_body_argument("reason", "").strip()[:1000]
        pending = {p["slug"]: p for p in await self.run_db(pending_deletions)}
        if slug not in pending:
            raise Problem(404, "not-found", N_("That workspace is not waiting for deletion."))
        _ = self.gettext()[0]
        if len(reason) < MIN_REASON:
            self.set_status(422)
            self.render("privacy/erasure_admin.html", pending=list(pending.values()),
                        error=_("Write why you erase this workspace before its date (at least %(n)d characters).")
                        % {"n": MIN_REASON})
            return
        admin = self.principal
        if await self.run_db(erase_workspace, self.platform, slug, actor=admin.actor, actor_name=admin.email,
                             reason=reason, ip=client_ip(self)) is None:
            raise Problem(409, "not-pending", N_("The workspace %(slug)s is no longer waiting for "
                                                 "deletion."), args={"slug": slug})
        self.flash("success", _("The workspace %(slug)s was erased.") % {"slug": slug})
        self.redirect("/admin/privacy/deletions", status=303)


ROUTES = [(r"/admin/privacy/deletions", AdminDeletionsPage)]


# -- what everyone who signs in sees --------------------------------------------------------------

def notices(handler) -> list[dict]:
    """The notice on every page of a workspace waiting for deletion or whose sending is paused."""
    tenant = handler.tenant
    if tenant is None or handler.principal is None or handler.principal.tenant != tenant.slug:
        return []
    _ = handler.gettext()[0]
    if tenant.deletion_scheduled_at is not None:
        text = _("This workspace is scheduled for deletion on %(date)s. Sending is stopped.") % {
            "date": handler.platform.catalogues.formats(handler.lang).date(tenant.deletion_scheduled_at)}
        if handler.principal.can(MANAGE):
            return [{"kind": "error", "id": "deletion-notice", "text": text,
                     "link": "/account/privacy#delete-workspace", "link_label": _("Cancel the deletion")}]
        return [{"kind": "error", "id": "deletion-notice", "text": text + " " + _("Its owner can cancel it until then."),
                 "link": None, "link_label": None}]
    if tenant.sending_paused:
        return [{"kind": "error", "id": "sending-paused-notice", "text": _("Sending is paused for this workspace."),
                 "link": "/account/privacy#freeze-sending" if handler.principal.can(MANAGE) else None,
                 "link_label": _("Resume sending")}]
    return []

