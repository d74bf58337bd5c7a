"""Dashboard: Devices → Connect the Android app (enrollment tokens, step by step; phones that joined;
phones that registered again and may replace an older device)."""

from __future__ import annotations

from core.web.base import ApiHandler, PageHandler
from core.web.params import parse_id
from core.web.problem import Problem

from addons.devices import service as devices

from . import inbox, service
from .cli import enrollment_event
from core.i18n import N_

APP_DOWNLOAD = "https://github.com/capcom6/android-sms-gateway/releases/latest"


def joined_since(after_id: int) -> list[dict]:
    """App devices enrolled after device ``after_id`` (the newest when the page was shown)."""
    from core.db import app_db

    rows = app_db.execute_sql(
        "SELECT d.id, d.name, m.app_version, m.replaces_device_id FROM mobile_devices m "
        "JOIN devices d ON d.id = m.device_id WHERE d.id > %s AND d.removed_at IS NULL ORDER BY d.id LIMIT 50",
        (after_id,)).fetchall()
    return [{"id": r[0], "name": r[1], "app_version": r[2], "replaces": r[3]} for r in rows]


def page_state() -> dict:
    from core.db import app_db

    newest = app_db.execute_sql("SELECT coalesce(max(id), 0) FROM devices").fetchone()[0]
    replaced = app_db.execute_sql(
        "SELECT o.id, o.name, n.id, n.name FROM mobile_devices m JOIN devices o ON o.id = m.device_id "
        "JOIN devices n ON n.id = m.replaced_by_device_id ORDER BY o.id DESC LIMIT 20").fetchall()
    return {"enrollments": [service.enrollment_json(e) for e in service.enrollments()],
            "app_phones": service.app_phones(), "exports": service.export_requests(),
            "replacements": service.pending_replacements(), "newest": newest,
            "replaced": [{"old_id": r[0], "old_name": r[1], "new_id": r[2], "new_name": r[3]} for r in replaced]}


class ConnectPage(PageHandler):
    """``/devices/connect``: the steps, with a new token when one was just made."""

    permissions = {"GET": "devices:write", "POST": "devices:write"}

    def render_page(self, state: dict, token: str | None = None, error: str | None = None, status: int = 200,
                    form: dict | None = None):
        self.set_status(status)
        self.set_header("Cache-Control", "no-store")
        self.render("mobile/connect.html", api_url=self.settings_.public_url(self.tenant.slug) + "/api/mobile/v1",
                    token=token, error=error, download_url=APP_DOWNLOAD, form=form or {}, **state)

    async def get(self):
        self.render_page(await self.in_tenant(page_state))

    async def post(self):
        action = self.get_body_argument("action", "")
        platform, tenant, actor = self.platform, self.tenant, self.principal.actor
        token = error = None
        form = {}
        if action == "refresh":
            form = {name: self.get_body_argument(name, "")[:40] for name in ("device", "since", "until")}
            try:
                await inbox.ask(self, parse_id(form["device"], "device"), form["since"], form["until"])
            except Problem as exc:
                if exc.status >= 500:
                    raise
                said = exc.to_dict(gettext=self.gettext()[0])
                error = " ".join([said["detail"]] + [f"{e['field']}: {e['message']}." for e in said.get("errors") or []])
            else:
                self.flash("success", N_("The phone was asked to send its received SMS again."))
                self.redirect("/devices/connect")
                return
        elif action == "create":
            try:
                phones = int(self.get_body_argument("phones", "1") or 1)
                days = int(self.get_body_argument("expires_days", str(service.ENROLLMENT_DAYS)) or 7)
            except ValueError:
                phones = days = 0
            name = self.get_body_argument("name", "")

            def create():
                made, row = service.create_enrollment(tenant.slug, actor, name, phones, days)
                from core.events import emit_with_work

                emit_with_work(platform, enrollment_event("enrollment.created", tenant, actor, row))
                return made

            try:
                token = await self.in_tenant(create)
            except service.EnrollmentError as exc:
                error = str(exc)
        elif action == "revoke":
            enrollment_id = parse_id(self.get_body_argument("id", ""), "enrollment token")

            def revoke():
                row = service.revoke_enrollment(enrollment_id)
                from core.events import emit_with_work

                emit_with_work(platform, enrollment_event("enrollment.revoked", tenant, actor, row))

            await self.in_tenant(revoke)
        elif action in ("replace", "keep"):
            new_id = parse_id(self.get_body_argument("device", ""), "device")

            def decide():
                from core.events import AuditEvent, emit_with_work

                if action == "replace":
                    old = service.confirm_replacement(platform, tenant, new_id)
                    platform.credentials_changed(tenant.slug)
                    emit_with_work(platform, AuditEvent("device.replaced", tenant.id, tenant.slug, actor=actor,
                                                        target=f"device:{old.id}",
                                                        details={"replaced_by": new_id}))
                    return old.id
                service.dismiss_replacement(new_id)
                return None

            old_id = await self.in_tenant(decide)
            if old_id is not None:
                platform.wake_now(devices.wake_key(tenant.slug, old_id))
        else:
            raise Problem(400, "invalid-action", N_("Unknown action."))
        if token is None and error is None:
            self.flash("success", N_("Saved."))
            self.redirect("/devices/connect")
            return
        self.render_page(await self.in_tenant(page_state), token=token, error=error, status=422 if error else 201,
                         form=form)


class JoinedHandler(ApiHandler):
    """``/devices/connect/joined?after=N``: app phones that joined since the page was shown (the
    page asks every few seconds, so it notices a phone joining without a reload)."""

    permissions = {"GET": "devices:read"}

    async def get(self):
        raw = self.get_query_argument("after", "0")
        after = int(raw) if raw.isdigit() and len(raw) <= 18 else 0
        self.set_header("Cache-Control", "no-store")
        self.write_json({"devices": await self.in_tenant(joined_since, after)})


ROUTES = [
    (r"/devices/connect", ConnectPage),
    (r"/devices/connect/joined", JoinedHandler),
]
