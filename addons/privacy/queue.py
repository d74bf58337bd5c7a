"""Privacy requests, handled: the platform admin's queue, the requester's answer, the "contact us"
form, the workspace's list (*Account → Privacy* and ``GET /api/v1/privacy/requests``).

The records themselves live in :mod:`.requests`. Requests that complete by themselves (an
export, an objection) never reach the queue; the others wait at ``/admin/privacy`` (base
domain), sorted by due date, the overdue ones flagged. Closing one (done or refused) needs an
outcome text, mails it to the requester, and is audited; closing a restriction lifts it.
"""

from __future__ import annotations

import datetime as dt

import logging
import re
from dataclasses import replace

from core.db import app_db, connection, run_sync, tenant_transaction
from core.events import emit
from core.i18n import N_
from core.openapi import api_errors, date_time, json_response, ref, responses, security
from core.permissions import PUBLIC
from core.users import ROLE_CUSTOMER, User
from core.web.admin_pages import AdminHandler
from core.web.auth_pages import audit, client_ip
from core.web.base import ApiHandler, PageHandler
from core.web.problem import Problem

from . import requests, restriction
from .page import MANAGE, SELF, Section

log = logging.getLogger(__name__)

OUTCOME_MAX = 4000
OUTCOME_MIN = 10
CONTACT_MAX = 5000
CONTACT_MIN = 10
CONTACTS_PER_IP_HOUR = 5  # a person writes a few times; more is a flood of the privacy mailbox
CONTACTS_PER_HOUR = 200  # the whole platform, whoever sends them
EMAIL = re.compile(r"^[^@\s<>,;\"]{1,64}@[^@\s<>,;\"]{1,190}\.[^@\s<>,;\"]{2,63}$")
ADMIN_MOVES = ("in_progress", "done", "refused")
KIND_LABELS = {"export": N_("Data export"), "erasure": N_("Erasure"), "rectification": N_("Rectification"),
               "restriction": N_("Restriction"), "objection": N_("Objection"), "contact": N_("Contact")}
STATE_LABELS = {"open": N_("Open"), "in_progress": N_("In progress"), "done": N_("Done"), "refused": N_("Refused"),
                "cancelled": N_("Cancelled")}

_platform = None


def configure(platform) -> None:
    global _platform
    _platform = platform


class RequestError(ValueError):
    """Refused input; the message is an English msgid, ``field`` the form field it is about."""

    def __init__(self, message: str, field: str = "form"):
        super().__init__(message)
        self.field = field


# -- the requester ------------------------------------------------------------------------------

def requester_address(req: dict) -> str | None:
    """Where to tell the requester the outcome: the address the request recorded, else the person's
    (or, for a workspace's request, its owner's) current address in the workspace."""
    recorded = (req.get("details") or {}).get("email")
    if recorded:
        return recorded
    if "@" in req["subject"]:
        return req["subject"]
    if not req["tenant_slug"]:
        return None
    tenant = _platform.tenant_cache.loader(req["tenant_slug"])
    if tenant is None or tenant.id != req["tenant_id"]:
        return None  # the workspace is gone
    who = req["requested_by"] if req["requested_by"].startswith("user:") else req["subject"]
    with tenant_transaction(tenant.ref):
        if who.startswith("user:") and who[5:].isdigit():
            user = User.get_or_none(User.id == int(who[5:]))
        else:
            user = User.select().where(User.role == ROLE_CUSTOMER).order_by(User.id).first()
        return user.email if user else None


def tell_requester(req: dict) -> bool:
    """Mail the outcome of a closed request; whether there was anyone to tell."""
    to = requester_address(req)
    if not to:
        log.warning("privacy request %s closed, but nobody to tell (no address)", req["id"])
        return False
    settings = _platform.settings
    done = req["state"] == "done"
    tenant = _platform.tenant_cache.loader(req["tenant_slug"]) if req["tenant_slug"] else None

    def compose(_, ngettext, fmt):
        received = fmt.date(req["created_at"])
        return (_("Your privacy request #%(id)s is done", id=req["id"]) if done else
                _("Your privacy request #%(id)s is refused", id=req["id"]),
                (_("Your privacy request #%(id)s (%(kind)s), received on %(date)s, is done.", id=req["id"],
                   kind=_(req["kind"]), date=received) if done else
                 _("Your privacy request #%(id)s (%(kind)s), received on %(date)s, is refused.", id=req["id"],
                   kind=_(req["kind"]), date=received))
                + "\n\n" + _("Outcome:") + f"\n{req['outcome']}\n\n"
                + _("Questions about it: write to %(address)s, naming request #%(id)s.",
                    address=settings.privacy_address, id=req["id"]) + "\n"
                + _("Our privacy policy: %(url)s", url=f"{settings.public_url()}/privacy") + "\n")

    _platform.send_mail(to, compose, tenant=tenant if tenant is not None and tenant.id == req["tenant_id"] else None)
    return True


def move(request_id: int, state: str, outcome: str, admin) -> dict:
    """The admin moves a request on (one transaction, audited with it); the request as it is now."""
    if state not in ADMIN_MOVES:
        raise RequestError(N_("Choose in progress, done or refused."), "state")
    outcome = (outcome or "").replace("\r\n", "\n").strip()
    if len(outcome) > OUTCOME_MAX:
        raise RequestError(N_("Keep the outcome under 4,000 characters."), "outcome")
    if state != "in_progress" and len(outcome) < OUTCOME_MIN:
        raise RequestError(N_("Write the outcome the requester will be told (at least 10 characters)."), "outcome")
    with connection(), app_db.atomic():
        req = requests.get(request_id, lock=True)
        if req is None:
            raise RequestError(N_("There is no such request."), "missing")
        if req["state"] not in requests.OPEN_STATES:
            raise RequestError(N_("This request is already closed."), "closed")
        requests.set_state(request_id, state, outcome)
        if req["kind"] == "restriction" and state != "in_progress":
            restriction.lift_for_request(request_id, admin.actor)
        emit(_platform, admin.audit("privacy.request_updated", req, state=state, outcome=outcome))
        return requests.get(request_id)


class _AdminAudit:
    """What :func:`move` needs of the admin: who, and an audit event from the handler."""

    def __init__(self, handler):
        self.handler = handler
        self.actor = handler.principal.actor

    def audit(self, action: str, req: dict, **details):
        event = audit(self.handler, action, actor=self.actor, actor_name=self.handler.principal.email,
                      target=f"privacy_request:{req['id']}", kind=req["kind"], previous=req["state"], **details)
        if req["tenant_id"] is not None:  # the workspace sees what was done about its people's requests
            event = replace(event, tenant_id=req["tenant_id"], tenant_slug=req["tenant_slug"] or None)
        return event


class AdminQueueHandler(AdminHandler):
    """``/admin/privacy``: every open request, due first, overdue flagged; the last closed ones."""

    async def get(self):
        await self.show()

    async def show(self, errors: dict | None = None, failed: int | None = None, status: int = 200):
        def load():
            with connection():
                return requests.open_queue(), requests.recently_closed()

        queue, closed = await run_sync(load)
        self.set_status(status)
        self.render("privacy/requests_admin.html", queue=queue, closed=closed, errors=errors or {}, failed=failed,
                    kinds=KIND_LABELS, states=STATE_LABELS, outcome_max=OUTCOME_MAX)


class AdminRequestHandler(AdminQueueHandler):
    """``POST /admin/privacy/<id>``: move a request to in_progress, done or refused."""

    async def get(self, request_id):
        self.redirect("/admin/privacy")

    async def post(self, request_id):
        _ = self.gettext()[0]
        state = self.get_body_argument("state", "")
        try:
            req = await run_sync(move, int(request_id), state, self.get_body_argument("outcome", ""),
                                 _AdminAudit(self))
        except RequestError as exc:
            if exc.field == "missing":
                raise Problem(404, "not-found", N_("There is no such privacy request.")) from None
            if exc.field == "closed":
                raise Problem(409, "request-closed", N_("This privacy request is already closed; "
                                                        "nothing was changed."))
            await self.show({exc.field: _(str(exc))}, int(request_id), 422)
            return
        told = True
        if req["state"] in ("done", "refused"):
            told = await run_sync(tell_requester, req)
        message = _("Request #%(id)s: %(state)s.", id=req["id"], state=_(STATE_LABELS[req["state"]]))
        if not told:
            message += " " + _("Nobody could be told: the request names no address.")
        self.flash("success", message)
        self.redirect("/admin/privacy", status=303)


# -- "contact us" --------------------------------------------------------------------------------

def _check_contact(email: str, message: str) -> None:
    if not EMAIL.match(email) or len(email) > 254:
        raise RequestError(N_("Enter the e-mail address we should answer to."), "email")
    if len(message) < CONTACT_MIN:
        raise RequestError(N_("Write your question or request (at least 10 characters)."), "message")
    if len(message) > CONTACT_MAX:
        raise RequestError(N_("Keep your message under 5,000 characters."), "message")


def contact(tenant, email: str, message: str, ip: str, requested_by: str, audit_event) -> int:
    """Record a "contact us" request and mail it to the privacy address; its id. Throttled by
    address and platform-wide, counted in the same table (every web process sees the same)."""
    with connection(), app_db.atomic():
        app_db.execute_sql("SELECT pg_advisory_xact_lock(hashtext('privacy-contact'))")
        per_ip, total = app_db.execute_sql(
            "SELECT count(*) FILTER (WHERE details->>'ip' = %s), count(*) FROM public.privacy_request "
            "WHERE kind = 'contact' AND created_at > now() - interval '1 hour'", (ip,)).fetchone()
        if per_ip >= CONTACTS_PER_IP_HOUR or total >= CONTACTS_PER_HOUR:
            raise RequestError(N_("Too many messages were sent recently. Try again in an hour, or write to "
                                  "the privacy address below."), "throttled")
        request_id = requests.open_request("contact", email.lower(), tenant=tenant, requested_by=requested_by,
                                           details={"email": email, "message": message, "ip": ip})
        emit(_platform, audit_event(request_id))
    settings = _platform.settings
    where = f"the workspace {tenant.slug}" if tenant else "the main site"
    # The privacy team's own mailbox: what the person wrote goes there as plain text.
    _platform.mailer.send(
        settings.privacy_address, f"Privacy request #{request_id} (contact form)",
        f"From: {email}\nSent through the privacy page of {where}, from {ip}.\n"
        f"Answer by the 30-day due date; close it in the Admin console: {settings.public_url()}/admin/privacy\n\n"
        f"{message}\n")
    return request_id


class ContactHandler(PageHandler):
    """``POST /privacy/contact`` (base domain and every workspace): the privacy page's form."""

    scope = "any"
    permission = PUBLIC

    async def post(self):
        _ = self.gettext()[0]
        email = self.get_body_argument("email", "").strip()
        message = self.get_body_argument("message", "").replace("\r\n", "\n").strip()
        principal = self.principal
        requested_by = principal.actor if principal is not None and principal.kind == "user" else email[:254]

        def event(request_id):
            return audit(self, "privacy.contact_received", actor=requested_by if ":" in requested_by else "",
                         actor_name=email[:254], target=f"privacy_request:{request_id}")

        try:
            _check_contact(email, message)
            request_id = await run_sync(contact, self.tenant, email, message, client_ip(self), requested_by, event)
        except RequestError as exc:
            from .policy import render_policy

            status = 429 if exc.field == "throttled" else 422
            field = "form" if exc.field == "throttled" else exc.field
            await render_policy(self, status=status, contact_errors={field: _(str(exc))},
                                contact_form={"email": email[:254], "message": message[:CONTACT_MAX]})
            return
        self.flash("success", _("Thank you: your message is request #%(id)s. We answer within 30 days.",
                                id=request_id))
        self.redirect("/privacy#contact", status=303)


# -- the workspace's requests: Account → Privacy and the API -------------------------------------

def workspace_requests(tenant_id: int, subject: str | None) -> list[dict]:
    with connection():
        if subject is None:
            return requests.for_tenant(tenant_id)
        return requests.for_subject(tenant_id, subject)


async def load(handler) -> dict | None:
    principal = handler.principal
    if principal is None or principal.via != "session" or not principal.can(SELF):
        return None
    whole = principal.can(MANAGE)
    rows = await run_sync(workspace_requests, handler.tenant.id, None if whole else principal.actor)
    return {"requests": rows, "whole": whole, "kinds": KIND_LABELS, "states": STATE_LABELS}


SECTION = Section("requests", 90, "privacy/requests.html", load)

PUBLIC_FIELDS = ("id", "kind", "subject", "requested_by", "self_service", "state", "outcome", "created_at",
                 "due_at", "completed_at")


class RequestsApiHandler(ApiHandler):
    """``GET /api/v1/privacy/requests``: the workspace's privacy requests, newest first."""

    permissions = {"GET": MANAGE}

    async def get(self):
        rows = await run_sync(workspace_requests, self.tenant.id, None)
        self.write_json({"requests": [{k: _iso(row[k]) for k in PUBLIC_FIELDS} for row in rows]})


def _iso(value):
    """Times as ISO 8601 (``date-time``, as the published schema says), everything else as it is."""
    return value.isoformat() if isinstance(value, dt.datetime) else value


ROUTES = [
    (r"/admin/privacy", AdminQueueHandler),
    (r"/admin/privacy/([0-9]{1,18})", AdminRequestHandler),
    (r"/privacy/contact", ContactHandler),
    (r"/api/v1/privacy/requests", RequestsApiHandler),
]

ADMIN_LINKS = [{"label": N_("Privacy requests"), "url": "/admin/privacy"}]


def openapi() -> dict:
    tag = "Privacy"
    return {
        "tags": [{"name": tag, "description": "Privacy: the data-subject requests of the workspace and its people."}],
        "components": {"schemas": {
            "PrivacyRequest": {
                "type": "object", "required": list(PUBLIC_FIELDS),
                "properties": {
                    "id": {"type": "integer"},
                    "kind": {"enum": list(requests.KINDS)},
                    "subject": {"type": "string",
                                "description": "Whom it is about: `tenant` (the workspace), a person (`user:<id>`) "
                                               "or, for a message to the privacy address, an e-mail address."},
                    "requested_by": {"type": "string", "description": "Who asked (an actor or an address)."},
                    "self_service": {"type": "boolean",
                                     "description": "Completed by the platform itself (an export, an objection)."},
                    "state": {"enum": list(requests.STATES)},
                    "outcome": {"type": "string", "description": "What was done, as the requester was told."},
                    "created_at": date_time(),
                    "due_at": date_time("Answered by then: 30 days after it was made (GDPR art. 12)."),
                    "completed_at": date_time("When it was done, refused or cancelled.", null=True),
                },
            },
            "PrivacyRequestList": {"type": "object", "required": ["requests"], "properties": {
                "requests": {"type": "array", "items": ref("PrivacyRequest"), "maxItems": 200}}},
        }},
        "paths": {"/api/v1/privacy/requests": {"get": {
            "operationId": "listPrivacyRequests", "tags": [tag], "summary": "List the workspace's privacy requests",
            "description": "Every privacy request about the workspace or its people (exports, erasures, "
                           "rectifications, restrictions, objections, messages to the privacy address), newest "
                           "first, at most 200.",
            "security": security(MANAGE),
            "responses": responses({200: json_response("The requests.", ref("PrivacyRequestList"))},
                                   api_errors(MANAGE)),
        }}},
    }
