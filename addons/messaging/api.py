"""The native messaging API: ``/api/v1/messages``, ``/api/v1/inbox``, ``/api/v1/suppressions``."""

from __future__ import annotations

import base64
import json

from core.clock import parse_iso
from core.events import AuditEvent, emit as emit_audit
from core.groupcommit import GroupCommit
from core.web import jsonin
from core.web.base import ApiHandler
from core.web.params import parse_id, whole_number
from core.web.problem import Problem

from addons.devices.models import DeviceInbound

from . import dispatch, recovery, search, submit
from .models import Message, Recipient, RecipientEvent, Suppression
from .phones import PhoneError, normalise, try_normalise
from core.i18n import N_


def encode_cursor(value: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": value}).encode()).decode().rstrip("=")


def decode_cursor(raw: str | None) -> int | None:
    if not raw:
        return None
    try:
        data = jsonin.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        value = int(data["before"])
        if value <= 0:
            raise ValueError
        return value
    except (ValueError, KeyError, TypeError, OverflowError, json.JSONDecodeError, UnicodeDecodeError):
        raise Problem(400, "invalid-cursor", N_("The cursor is not valid; use the next_cursor value "
                                                "of a previous page."))


def page_size(raw: str) -> int:
    return whole_number(raw, N_("limit must be from 1 to 500."), 3, 1, 500)


def parse_date(raw: str | None, name: str):
    if not raw:
        return None
    t = parse_iso(raw)
    if t is None:
        raise Problem(400, "invalid-parameter", N_("%(name)s must be an ISO 8601 date or time."), args={"name": name})
    return t


def history(r: Recipient, source: str) -> list[dict]:
    """Every state a recipient went through: its creation (pending, from its row and its message's
    source; not stored twice), then each stored transition."""
    created = {"at": r.created_at.isoformat(), "from": None, "to": "pending", "source": source, "device_id": None,
               "error_code": None, "reported_at": None}
    return [created] + [{"at": e.at.isoformat(), "from": e.from_state, "to": e.to_state, "source": e.source,
                         "device_id": e.device_id, "error_code": e.error_code,
                         "reported_at": e.reported_at.isoformat() if e.reported_at else None}
                        for e in RecipientEvent.select().where(RecipientEvent.recipient == r.id)
                        .order_by(RecipientEvent.id)]


def recipient_json(r: Recipient, source: str | None = None) -> dict:
    """A recipient; with its history when its message's ``source`` is given."""
    out = {"id": r.id, "phone": r.phone, "state": r.state, "device_id": r.device_id, "sim_slot": r.sim_slot,
           "attempts": r.attempts, "error_code": r.error_code, "updated_at": r.updated_at.isoformat(),
           "sent_at": r.sent_at.isoformat() if r.sent_at else None,
           "delivered_at": r.delivered_at.isoformat() if r.delivered_at else None,
           "failed_at": r.failed_at.isoformat() if r.failed_at else None}
    if r.hold_reason is not None:
        out["hold_reason"] = r.hold_reason
    if r.state == "pending":
        out["waiting_reason"] = dispatch.why_waiting(r)
    if source is not None:
        out["history"] = history(r, source)
    return out


def message_state(recipients: list[Recipient]) -> str:
    """One word for a whole message: the least advanced state of its recipients."""
    if not recipients:
        return "pending"
    order = ["held", "pending", "processed", "sent", "delivered", "failed", "expired", "cancelled"]
    present = {r.state for r in recipients}
    for s in order:
        if s in present:
            return s
    return recipients[0].state


def message_json(m: Message, with_history: bool = False, recipients: list[Recipient] | None = None) -> dict:
    """A message as the API shows it; ``recipients`` (in id order) when the caller read them already."""
    if recipients is None:
        recipients = list(Recipient.select().where(Recipient.message == m.id).order_by(Recipient.id))
    return {"id": m.id, "state": message_state(recipients), "created_at": m.created_at.isoformat(),
            # Retention (privacy addon) removes texts N days after the message ended: then null, and when.
            "text": None if m.redacted_at else m.text,
            "redacted_at": m.redacted_at.isoformat() if m.redacted_at else None, "encoding": m.encoding,
            "segments": m.segments, "priority": m.priority,
            "reference": m.reference, "device_id": m.device_id, "sim_slot": m.sim_slot,
            "send_at": m.send_at.isoformat() if m.send_at else None,
            "valid_until": m.valid_until.isoformat() if m.valid_until else None,
            "delivery_report": m.delivery_report, "campaign_id": m.campaign_id,
            "recipients": [recipient_json(r, m.source if with_history else None) for r in recipients]}


def get_message(raw_id: str) -> Message:
    m = Message.get_or_none(Message.id == parse_id(raw_id, "message"))
    if m is None:
        raise Problem(404, "not-found", N_("There is no such message here."))
    return m


def list_messages(args: dict, limit: int) -> dict:
    """A page of messages, newest first, filtered by ``args`` (see :func:`.search.message_query`):
    two statements, the messages and all their recipients."""
    rows = list(search.message_query(args).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    recipients: dict[int, list[Recipient]] = {m.id: [] for m in rows}
    if rows:
        for r in Recipient.select().where(Recipient.message.in_(list(recipients))).order_by(Recipient.id):
            recipients[r.message_id].append(r)
    return {"messages": [message_json(m, recipients=recipients[m.id]) for m in rows],
            "next_cursor": encode_cursor(rows[-1].id) if more else None}


# Sends that arrive together are validated and stored together, in one transaction
# (core.groupcommit); a request of more than 1,000 recipients goes alone. Small sends go best in
# few, large transactions: a second one starts beside a running one only after 20 ms, when that
# one is slow (bench_messaging submit: one at a time gave 0.80 and 0.85 of the baseline, two at
# a time 0.66 and 0.69; but then an Idempotency-Key retried while its first request is stuck
# would wait for it, not get its 409). The next group may also start once the running one's work
# is done and it only waits for its COMMIT (overlap_commit: 2026-12-08, submit 0.64 -> 0.69 on
# average of alternating runs, with the transaction's BEGIN sent with its first statement and the
# phones to wake read in the first round trip; bench/README.md). Large sends are database work that two transactions do
# side by side (bulk: 0.55 two at a time, 0.33 one at a time), so they group apart.
LARGE_SEND = 100  # recipients
send_group = GroupCommit(submit.accept_api_sends, concurrency=2, stagger=0.020, max_size=1000, size=submit.size_of,
                         overlap_commit=True)
large_send_group = GroupCommit(submit.accept_api_sends, concurrency=2, max_size=1000, size=submit.size_of)


class MessagesHandler(ApiHandler):
    permissions = {"POST": "messages:send", "GET": "messages:read"}
    max_body_size = 8 * 1024 * 1024

    async def post(self):
        body = self.json_body()
        key = self.request.headers.get("Idempotency-Key")
        if key is not None and not (1 <= len(key) <= 255 and key.isprintable()):
            raise Problem(400, "invalid-idempotency-key", N_("Idempotency-Key must be 1 to 255 "
                                                             "printable characters."))
        send = submit.ApiSend(self.tenant, body, self.principal.actor, key, submit.request_hash(body) if key else None)
        group = large_send_group if submit.size_of(send) >= LARGE_SEND else send_group
        status, response, keys = await group(self.tenant.ref, send)
        self.platform.wake_now(*keys)
        if key:
            self.set_header("Idempotency-Key", key)
        self.write_json(response, status)

    async def get(self):
        limit = page_size(self.get_query_argument("limit", "50"))
        args = {k: self.get_query_argument(k, None) for k in ("cursor", *search.MESSAGE_FILTERS)}
        args["_region"] = self.tenant.default_region
        self.write_json(await self.in_tenant(list_messages, args, limit))


class MessageHandler(ApiHandler):
    permissions = {"GET": "messages:read"}

    async def get(self, raw_id):
        self.write_json(await self.in_tenant(lambda: message_json(get_message(raw_id), with_history=True)))


class CancelHandler(ApiHandler):
    """``POST /api/v1/messages/{id}/cancel``: cancel every recipient still pending (or scheduled)."""

    permissions = {"POST": "messages:send"}

    async def post(self, raw_id):
        tenant = self.tenant

        registry = self.platform.registry

        def cancel():
            m = get_message(raw_id)
            cancelled, recalling, refusals = recovery.cancel(tenant, registry, [m.id], "api")
            return cancelled, recalling, refusals, message_json(m)

        cancelled, recalling, refusals, result = await self.in_tenant(cancel)
        if not cancelled and not recalling and result["state"] not in ("cancelled",):
            raise not_cancellable(result["state"], refusals)
        result["cancelled"] = cancelled
        if recalling:
            result["cancelling"] = recalling
        self.write_json(result)


def not_cancellable(state: str, refusals: list[str]) -> Problem:
    why = " ".join(sorted(set(refusals)))
    if why:
        return Problem(409, "not-cancellable", N_("Nothing to cancel: the message is already %(state)s. Only pending "
                                                  "or scheduled recipients can be cancelled; %(why)s"),
                       args={"state": state, "why": why})
    return Problem(409, "not-cancellable", N_("Nothing to cancel: the message is already %(state)s. Only pending or "
                                              "scheduled recipients can be cancelled."), args={"state": state})


class RetryHandler(ApiHandler):
    """``POST /api/v1/messages/{id}/retry``: send the message again to its failed recipients, on any
    phone or on ``device_id``; answers the new message as a send does (202)."""

    permissions = {"POST": "messages:send"}
    body_schemas = {"POST": "retryMessage"}

    async def post(self, raw_id):
        device = (self.json_body() if self.request.body else {}).get("device_id")
        tenant, actor, region = self.tenant, self.principal.actor, self.tenant.default_region
        stored, keys = await self.in_tenant(lambda: recovery.retry(tenant, get_message(raw_id), device, actor, region))
        self.platform.wake_now(*keys)
        self.write_json(stored[0], 202)


def inbox_json(m: DeviceInbound) -> dict:
    return {"id": m.id, "from": m.sender, "body": None if m.redacted_at else m.body, "device_id": m.device_id,
            "sim_slot": m.sim_slot, "received_at": m.received_at.isoformat(), "phone_message_id": m.phone_message_id,
            "redacted_at": m.redacted_at.isoformat() if m.redacted_at else None}


class InboxHandler(ApiHandler):
    permissions = {"GET": "messages:read"}

    async def get(self):
        limit = page_size(self.get_query_argument("limit", "50"))
        before = decode_cursor(self.get_query_argument("cursor", None))
        sender = self.get_query_argument("from", None)
        device = self.get_query_argument("device_id", None)
        since = parse_date(self.get_query_argument("since", None), "since")
        region = self.tenant.default_region

        def load():
            q = DeviceInbound.select().order_by(DeviceInbound.id.desc())
            if before:
                q = q.where(DeviceInbound.id < before)
            if sender:
                q = q.where(DeviceInbound.sender.in_({sender, try_normalise(sender, region) or sender}))
            if device:
                q = q.where(DeviceInbound.device == parse_id(device, field="device_id"))
            if since:
                q = q.where(DeviceInbound.received_at >= since)
            rows = list(q.limit(limit + 1))
            more = len(rows) > limit
            rows = rows[:limit]
            return {"messages": [inbox_json(m) for m in rows],
                    "next_cursor": encode_cursor(rows[-1].id) if more else None}

        self.write_json(await self.in_tenant(load))


class SuppressionsHandler(ApiHandler):
    permissions = {"GET": "messages:read", "POST": "settings:write"}

    async def get(self):
        rows = await self.in_tenant(lambda: [{"phone": s.phone, "reason": s.reason, "source": s.source,
                                              "created_at": s.created_at.isoformat()}
                                             for s in Suppression.select().order_by(Suppression.created_at.desc())])
        self.write_json({"suppressions": rows})

    async def post(self):
        body = self.json_body()
        try:
            phone = normalise(body.get("phone"), self.tenant.default_region)
        except PhoneError as exc:
            raise Problem(422, "validation-failed", exc.msgid, args=exc.msg_args,
                          errors=[{"field": "phone", "message": str(exc), "msgid": exc.msgid, "args": exc.msg_args}])
        reason = body.get("reason", "")
        if not isinstance(reason, str) or len(reason) > 200:
            raise Problem(422, "validation-failed", N_("reason must be text of at most 200 "
                                                       "characters."),
                          errors=[{"field": "reason", "message": N_("at most 200 characters")}])
        await self.in_tenant(lambda: Suppression.insert(phone=phone, reason=reason, source="manual")
                             .on_conflict(conflict_target=[Suppression.phone],
                                          update={Suppression.reason: reason}).execute())
        await self.run_db(emit_audit, self.platform, AuditEvent(
            "suppression.added", self.tenant.id, self.tenant.slug, actor=self.principal.actor, target=phone))
        self.write_json({"phone": phone, "reason": reason}, 201)


class SuppressionHandler(ApiHandler):
    permissions = {"DELETE": "settings:write"}

    async def delete(self, raw):
        from urllib.parse import unquote

        phone = try_normalise(unquote(raw), self.tenant.default_region)
        if phone is None:
            raise Problem(404, "not-found", N_("That number is not on the suppression list."))
        n = await self.in_tenant(lambda: Suppression.delete().where(Suppression.phone == phone).execute())
        if not n:
            raise Problem(404, "not-found", N_("That number is not on the suppression list."))
        await self.run_db(emit_audit, self.platform, AuditEvent(
            "suppression.removed", self.tenant.id, self.tenant.slug, actor=self.principal.actor, target=phone))
        self.set_status(204)
        self.finish()


ROUTES = [
    (r"/api/v1/messages", MessagesHandler),
    (r"/api/v1/messages/([^/]+)", MessageHandler),
    (r"/api/v1/messages/([^/]+)/cancel", CancelHandler),
    (r"/api/v1/messages/([^/]+)/retry", RetryHandler),
    (r"/api/v1/inbox", InboxHandler),
    (r"/api/v1/suppressions", SuppressionsHandler),
    (r"/api/v1/suppressions/([^/]{1,64})", SuppressionHandler),
]
