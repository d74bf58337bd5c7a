"""Pages: the platform admins' review queue (``/admin/abuse``) and the workspace's *Security* page
(``/security``): its alerts and held messages; its Customer may release or reject what a
low-severity rule held.

Every action needs a written reason and is recorded in the audit trail in the same transaction as
the work (``emit_with_work``). The queue's evidence is the platform's own observation, copied to
the catalogue when the alert was raised, so reading the queue opens no workspace data.
"""

from __future__ import annotations

import re

from tornado.escape import url_escape

from core.db import app_db, run_catalogue, run_in_tenant, run_sync
from core.events import AuditEvent, emit_with_work
from core.i18n import N_
from core.web.admin_pages import AdminHandler
from core.web.auth_pages import client_ip
from core.web.base import ApiHandler, PageHandler
from core.web.params import is_digits
from core.web.problem import Problem, field_error

from . import rules, sandbox, service, summaries

READ = "abuse:read"
REVIEW = "abuse:review"
SANDBOX = "abuse:sandbox"
SEVERITY_LABELS = {1: N_("Low"), 2: N_("Medium"), 3: N_("High")}
STATUS_LABELS = {"open": N_("Open"), "released": N_("Released"), "rejected": N_("Rejected"),
                 "false_positive": N_("False positive"), "closed": N_("Closed")}
ACTION_LABELS = {"release": N_("Release"), "reject": N_("Reject"), "false_positive": N_("False positive"),
                 "suspend": N_("Suspend sending"), "close": N_("Close")}
ADMIN_LINKS = [{"label": N_("Abuse review"), "url": "/admin/abuse"}]
MAX_HELD_SHOWN = 200
HELD_BY = re.compile(r"\(alert ([0-9]{1,18})\)$")


def permissions(register) -> None:
    register(READ, "See the workspace's abuse alerts and held messages", ["customer", "admin"])
    register(REVIEW, "Release or reject messages held by a low-severity abuse rule", ["customer"])
    register(SANDBOX, "List the numbers a sandboxed workspace may send to", ["customer"], scope=True)


def with_chart(alerts: list[dict]) -> list[dict]:
    """Each alert's per-minute series as the chart's points (``HH:MM`` UTC, count)."""
    import datetime as dt

    for a in alerts:
        series = a["evidence"].get("series") or []
        a["evidence"]["series_points"] = [(dt.datetime.fromtimestamp(int(t), dt.timezone.utc).strftime("%H:%M"), n)
                                          for t, n in series][-60:]
    return alerts


def notice_context(handler) -> dict | None:
    """The dashboard banner (``page_notices``) while the workspace has open alerts that notify."""
    tenant, principal = handler.tenant, handler.principal
    if tenant is None or principal is None or principal.tenant != tenant.slug or not principal.can(READ):
        return None
    count = service.open_alerts(tenant)
    if not count:
        return None
    ngettext = handler.gettext()[1]
    return {"page_notices": ["abuse/notice.html"],
            "abuse_notice": {"text": ngettext("%(num)s security alert needs attention.",
                                              "%(num)s security alerts need attention.", count)}}


def labels(handler) -> dict:
    gettext = handler.gettext()[0]
    return {"rule_labels": {name: r.label for name, r in rules.DEFAULTS.items()}, "severities": SEVERITY_LABELS,
            "statuses": STATUS_LABELS, "actions": ACTION_LABELS,
            "summary_of": lambda alert: summaries.text(gettext, alert)}


def act(platform, tenant, alert_id: int, action: str, actor: str, reason: str, ip: str, customer: bool) -> dict:
    """Inside the tenant transaction: the review and its audit record, together."""
    done = service.review(tenant, alert_id, action, actor, reason, customer=customer)
    emit_with_work(platform, AuditEvent(action=f"abuse.{action}", tenant_id=tenant.id, tenant_slug=tenant.slug,
                                        actor=actor, target=f"alert:{alert_id}", ip=ip, reason=reason,
                                        details={"rule": done["rule"], "messages": done["messages"]}))
    return done


def _alert_id(raw: str) -> int:
    if not is_digits(raw) or len(raw) > 18:
        raise Problem(404, "not-found", N_("There is no such alert."))
    return int(raw)


def held_messages(limit: int = MAX_HELD_SHOWN) -> list[dict]:
    """Inside the tenant transaction: its held recipients, newest first, with their text."""
    rows = app_db.execute_sql(
        "SELECT r.id, r.message_id, r.phone, r.hold_reason, r.created_at, left(m.text, 120) FROM recipients r "
        "JOIN messages m ON m.id = r.message_id WHERE r.state = 'held' ORDER BY r.id DESC LIMIT %s", (limit,))
    return [dict(zip(("id", "message_id", "phone", "reason", "created_at", "text"), r)) for r in rows]


class AdminQueuePage(AdminHandler):
    """``/admin/abuse``: the alerts of every workspace, most severe first, with their evidence."""

    async def get(self):
        status = self.get_query_argument("status", "open")
        if status not in STATUS_LABELS:
            status = "open"
        queue = with_chart(await run_sync(service.queue, 200, status))
        self.render("abuse/admin_queue.html", queue=queue, status=status, error=None, **labels(self))


class AdminRulesPage(AdminHandler):
    """``/admin/abuse/rules``: the rules every process holds, the patterns, and a failed reload."""

    async def get(self):
        def load():
            rows = app_db.execute_sql("SELECT count(*) FROM public.abuse_rule_overrides").fetchone()[0]
            patterns = app_db.execute_sql("SELECT id, kind, pattern, note FROM public.abuse_aup_patterns "
                                          "ORDER BY id LIMIT 500").fetchall()
            return rows, [dict(zip(("id", "kind", "pattern", "note"), p)) for p in patterns]

        overrides, patterns = await run_catalogue(load)
        book = await run_sync(rules.book)
        self.render("abuse/admin_rules.html", rules_in_use=[book.rules[n] for n in rules.DEFAULTS],
                    overrides=overrides, patterns=patterns, failure=rules.failure(), **labels(self))


class AdminAlertAction(AdminHandler):
    """``POST /admin/abuse/<workspace>/<alert>``: release, reject, false positive, suspend, close."""

    async def post(self, slug, raw_id):
        alert_id = _alert_id(raw_id)
        tenant = await self.tenant_or_404(slug)
        action = self.get_body_argument("action", "")
        reason = self.get_body_argument("reason", "")[:600]
        actor = self.principal.actor
        try:
            done = await run_in_tenant(tenant.ref, act, self.platform, tenant, alert_id, action, actor, reason,
                                       client_ip(self), False)
        except service.ReviewError as exc:
            _ = self.gettext()[0]
            self.set_status(422)
            queue = with_chart(await run_sync(service.queue, 200, "open"))
            self.render("abuse/admin_queue.html", queue=queue, status="open", error=_(str(exc), **exc.args_),
                        **labels(self))
            return
        await run_sync(service.after_review, tenant, done, reason)
        self.flash("success", N_("Alert %(id)s: done. Messages moved: %(count)s."),
                   id=alert_id, count=done["messages"])
        self.redirect("/admin/abuse", status=303)


class SecurityPage(PageHandler):
    """``/security``: the workspace's alerts and held messages."""

    permissions = {"GET": READ, "POST": REVIEW}

    async def get(self):
        await self.show()

    async def show(self, error: str | None = None, status: int = 200, code_for: str | None = None):
        def load():
            return service.alerts(), held_messages(), sandbox.numbers()

        alerts, held, listed = await self.in_tenant(load)
        by_id = {a["id"]: a for a in alerts}
        for h in held:  # why, in the reader's language: the alert that holds it (its reason names it)
            m = HELD_BY.search(h["reason"] or "")
            h["alert"] = by_id.get(int(m.group(1))) if m else None
        rule = await self.run_db(sandbox.applies, self.tenant, rules.book())
        self.set_status(status)
        self.render("abuse/security.html", alerts=with_chart(alerts), held=held, error=error,
                    can_review=self.principal.can(REVIEW), low=rules.LOW, sandbox=rule, listed=listed,
                    can_list=self.principal.can(SANDBOX), code_for=code_for or self.get_query_argument("code_for", "")[:40],
                    **labels(self))


class SecurityAlertAction(SecurityPage):
    """``POST /security/alerts/<id>``: the Customer releases or rejects what a low-severity rule held."""

    async def get(self, raw_id):
        self.redirect("/security")

    async def post(self, raw_id):
        alert_id = _alert_id(raw_id)
        action = self.get_body_argument("action", "")
        reason = self.get_body_argument("reason", "")[:600]
        tenant, principal = self.tenant, self.principal
        try:
            done = await self.in_tenant(act, self.platform, tenant, alert_id, action, principal.actor, reason,
                                        client_ip(self), True)
        except service.ReviewError as exc:
            _ = self.gettext()[0]
            await self.show(_(str(exc), **exc.args_), 422)
            return
        self.flash("success", N_("Alert %(id)s: done. Messages moved: %(count)s."),
                   id=alert_id, count=done["messages"])
        self.redirect("/security", status=303)


def _list_number(platform, tenant, phone: str, actor: str) -> str:
    phone = sandbox.add(phone, actor, tenant.default_region)
    emit_with_work(platform, AuditEvent(action="abuse.sandbox_number_listed", tenant_id=tenant.id,
                                        tenant_slug=tenant.slug, actor=actor, target=phone))
    return phone


class SandboxNumbersPage(SecurityPage):
    """``POST /security/sandbox``: the Customer lists a number the sandboxed workspace may send to."""

    permissions = {"GET": READ, "POST": SANDBOX}

    async def get(self):
        self.redirect("/security")

    async def post(self):
        try:
            phone = await self.in_tenant(_list_number, self.platform, self.tenant, self.get_body_argument("phone", ""),
                                         self.principal.actor)
        except sandbox.SandboxError as exc:
            await self.show(self.gettext()[0](exc.msgid, **exc.msg_args), 422)
            return
        self.flash("success", N_("%(phone)s may receive messages from this workspace now."), phone=phone)
        self.redirect("/security#sandbox", status=303)


class SandboxCodePage(SecurityPage):
    """``POST /security/sandbox/code``: send a verification code to a number (sandboxed workspace)."""

    permissions = {"GET": READ, "POST": SANDBOX}

    async def get(self):
        self.redirect("/security")

    async def post(self):
        try:
            phone, keys = await self.in_tenant(sandbox.request_code, self.tenant, self.get_body_argument("phone", ""),
                                               self.principal.actor)
        except sandbox.SandboxError as exc:
            await self.show(self.gettext()[0](exc.msgid, **exc.msg_args), 422)
            return
        self.platform.wake_now(*keys)
        self.flash("success", N_("A code is on its way to %(phone)s; enter it below to verify the number."),
                   phone=phone)
        self.redirect(f"/security?code_for={url_escape(phone)}#sandbox", status=303)


class SandboxVerifyPage(SecurityPage):
    """``POST /security/sandbox/verify``: the code a number received verifies it."""

    permissions = {"GET": READ, "POST": SANDBOX}

    async def get(self):
        self.redirect("/security")

    async def post(self):
        try:
            phone, msgid, args = await self.in_tenant(sandbox.verify_code, self.tenant,
                                                      self.get_body_argument("phone", ""),
                                                      self.get_body_argument("code", "")[:20], self.principal.actor)
        except sandbox.SandboxError as exc:
            await self.show(self.gettext()[0](exc.msgid, **exc.msg_args), 422)
            return
        if msgid is not None:
            await self.show(self.gettext()[0](msgid, **args), 422, code_for=phone)
            return
        self.flash("success", N_("%(phone)s is verified: it may receive messages from this workspace now."),
                   phone=phone)
        self.redirect("/security#sandbox", status=303)


class SandboxNumbersApi(ApiHandler):
    """``GET/POST /api/v1/abuse/sandbox/numbers``: the numbers a sandboxed workspace may send to."""

    permissions = {"GET": SANDBOX, "POST": SANDBOX}

    async def get(self):
        rows = await self.in_tenant(sandbox.numbers)
        self.write_json({"numbers": [{"phone": r["phone"], "listed": r["listed_by"] is not None,
                                      "verified": r["verified_at"] is not None,
                                      "created_at": r["created_at"].isoformat()} for r in rows]})

    async def post(self):
        body = self.json_body()
        phone = body.get("phone") if isinstance(body, dict) else None
        try:
            phone = await self.in_tenant(_list_number, self.platform, self.tenant, phone if isinstance(phone, str)
                                         else "", self.principal.actor)
        except sandbox.SandboxError as exc:
            raise _invalid_phone(exc) from None
        self.write_json({"phone": phone, "listed": True}, 201)


def _invalid_phone(exc: sandbox.SandboxError) -> Problem:
    return Problem.refused(422, "validation-failed", exc, errors=[field_error("phone", exc.msgid, exc.msg_args)])


def _body_phone(body) -> str:
    phone = body.get("phone") if isinstance(body, dict) else None
    return phone if isinstance(phone, str) else ""


class SandboxCodesApi(ApiHandler):
    """``POST /api/v1/abuse/sandbox/codes``: send a verification code to a number."""

    permissions = {"POST": SANDBOX}

    async def post(self):
        body = self.json_body()
        try:
            phone, keys = await self.in_tenant(sandbox.request_code, self.tenant, _body_phone(body),
                                               self.principal.actor)
        except sandbox.SandboxError as exc:
            if exc.msgid == sandbox.NO_PHONE:
                raise Problem.refused(409, "no-phone", exc) from None
            if exc.msgid == sandbox.TOO_SOON:
                raise Problem.refused(429, "code-sent-recently", exc) from None
            raise _invalid_phone(exc) from None
        self.platform.wake_now(*keys)
        self.write_json({"phone": phone, "expires_in": sandbox.CODE_MINUTES * 60,
                         "attempts": sandbox.CODE_ATTEMPTS}, 202)


class SandboxVerifyApi(ApiHandler):
    """``POST /api/v1/abuse/sandbox/verify``: the number and the code it received verify it."""

    permissions = {"POST": SANDBOX}

    async def post(self):
        body = self.json_body()
        code = body.get("code") if isinstance(body, dict) else None
        try:
            phone, msgid, args = await self.in_tenant(sandbox.verify_code, self.tenant, _body_phone(body),
                                                      code if isinstance(code, str) else "", self.principal.actor)
        except sandbox.SandboxError as exc:
            raise _invalid_phone(exc) from None
        if msgid is not None:
            raise Problem(422, "code-not-accepted", msgid, args=args,
                          errors=[field_error("code", msgid, args)])
        self.write_json({"phone": phone, "verified": True})


ROUTES = [(r"/security/sandbox", SandboxNumbersPage), (r"/api/v1/abuse/sandbox/numbers", SandboxNumbersApi),
          (r"/security/sandbox/code", SandboxCodePage), (r"/security/sandbox/verify", SandboxVerifyPage),
          (r"/api/v1/abuse/sandbox/codes", SandboxCodesApi), (r"/api/v1/abuse/sandbox/verify", SandboxVerifyApi),
          (r"/admin/abuse", AdminQueuePage), (r"/admin/abuse/rules", AdminRulesPage), (r"/admin/abuse/([a-z0-9-]{1,63})/([0-9]{1,18})", AdminAlertAction),
          (r"/security", SecurityPage), (r"/security/alerts/([0-9]{1,18})", SecurityAlertAction)]
