"""Dashboard pages: messages with live status, detail with history, send form, CSV upload,
inbox and conversations, opt-outs. (Statistics are the usage addon's, from its exact counts.)"""

from __future__ import annotations

import json

from core import localtime
from core.clock import parse_iso
from core.db import app_db
from core.web.base import PageHandler
from core.web.pages import safe_next
from core.web.live import answer_version, version_of, wants_version
from core.web.overview import FirstStep, OverviewPart
from core.web.params import is_digits, number_or_none
from core.web.problem import Problem

from addons.devices.models import Device, DeviceInbound

from . import filters, recovery, recovery_pages, search, sendform, states, submit
from .csvfile import CSV_MAX_BYTES, read_upload
from .api import get_message, list_messages, message_json
from .models import Suppression
from .phones import PhoneError, normalise, try_normalise
from core.i18n import N_


class MessagesPage(PageHandler):
    permission = "messages:read"

    async def get(self):
        args = filters.read(self, search.MESSAGE_FILTERS)
        try:
            page = await self.in_tenant(list_messages, filters.query_args(self, args), 50)
            refusal = None
        except Problem as exc:  # a bad filter: said above the list, which is empty
            page, refusal = {"messages": [], "next_cursor": None}, exc.localized(self.gettext()[0])[1]
            self.set_status(422)
        for m in page["messages"]:
            m["removed_after_days"] = removed_after_days(m["created_at"], m["redacted_at"])
        choices = await self.in_tenant(filters.choices)
        labels = await contact_labels(self, [m["recipients"][0]["phone"] for m in page["messages"] if m["recipients"]])
        self.render("messaging/messages.html", page=page, args=args, states=states.STATES, refusal=refusal,
                    kept=filters.kept(args), labels=labels, **choices)


class MessageStatusJson(PageHandler):
    """Live status for the messages page (polled by static JS; same-origin, session-authenticated)."""

    permission = "messages:read"

    async def get(self):
        raw = self.get_query_argument("ids", "")
        ids = [n for n in map(number_or_none, raw.split(",")[:100]) if n is not None]

        def load():
            from .models import Message, Recipient
            from .api import message_state

            out = {}
            for m in Message.select().where(Message.id.in_(ids)):
                out[m.id] = message_state(list(Recipient.select().where(Recipient.message == m.id)))
            return out

        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(await self.in_tenant(load)))


def message_version(message_id: int) -> str:
    """A message's live version: its recipients' last change (index ``recipients_message``)."""
    return version_of(*app_db.execute_sql("SELECT max(updated_at), count(*) FROM recipients WHERE message_id = %s",
                                          (message_id,)).fetchone())


class MessagePage(PageHandler):
    permission = "messages:read"

    async def get(self, raw_id):
        def load():
            msg = message_json(get_message(raw_id), with_history=True)
            return msg, message_version(msg["id"]), recovery_pages.device_names()

        if wants_version(self):
            answer_version(self, await self.in_tenant(lambda: message_version(get_message(raw_id).id)))
            return
        msg, version, names = await self.in_tenant(load)
        msg["removed_after_days"] = removed_after_days(msg["created_at"], msg["redacted_at"])
        for r in msg["recipients"]:
            r["explanation"] = recovery.explain(r["error_code"])
        labels = await contact_labels(self, [r["phone"] for r in msg["recipients"]])
        self.render("messaging/message.html", m=msg, live_version=version, device_names=names, labels=labels,
                    retry_devices=sorted({r["device_id"] for r in msg["recipients"]
                                          if r["state"] == "failed" and r["device_id"] in names}))


class SendPage(PageHandler):
    permissions = {"GET": "messages:send", "POST": "messages:send"}

    async def get(self):
        devices = await self.in_tenant(lambda: list(Device.select().where(Device.removed_at.is_null())))
        raw = self.get_query_argument("resend", "")
        # A resend copies a message into the form; a link may fill the recipients in (a contact's
        # "Send a message").
        form = (await self.in_tenant(recovery_pages.resend_form, raw) if raw
                else {"to": self.get_query_argument("to", "")[:2000]})
        parts = await self.in_tenant(sendform.parts, self.tenant, self.principal, "send", form_args(self, posted=False))
        self.render("messaging/send.html", form=form, errors=[], devices=devices, result=None, parts=parts)

    async def post(self):
        form = {"to": self.get_body_argument("to", ""), "text": self.get_body_argument("text", ""),
                "device_id": self.get_body_argument("device_id", ""), "send_at": self.get_body_argument("send_at", "")}
        body = {"text": form["text"], "to": [p for p in form["to"].replace(";", ",").replace("\n", ",").split(",")
                                             if p.strip()][:1000]}
        if is_digits(form["device_id"]):
            body["device_id"] = int(form["device_id"])
        if form["send_at"]:  # typed in the member's time zone (the form says which)
            body["send_at"] = localtime.typed_to_utc(form["send_at"], self.principal.time_zone) or form["send_at"]
        posted = form_args(self, posted=True)
        try:
            recovery_pages.refuse_past(body.get("send_at"), self.gettext()[0], self.principal.time_zone)
            # Fields other addons add (a contact group, a template) make the request what it is.
            body = await self.in_tenant(sendform.form_body, self.tenant, self.principal, posted, body)
            clean, rejected, batch = submit.validate_request(body, self.tenant.default_region)
            status, response, keys = await self.in_tenant(recovery_pages.accept_from_page, self.tenant, clean,
                                                          rejected, batch, "dashboard", self.principal.actor,
                                                          form["text"][:40])
        except Problem as exc:
            devices = await self.in_tenant(lambda: list(Device.select().where(Device.removed_at.is_null())))
            parts = await self.in_tenant(sendform.parts, self.tenant, self.principal, "send", posted)
            self.set_status(402 if exc.status == 402 else 422)  # 402: a plan's limit (addons/billing)
            self.render("messaging/send.html", form=form, devices=devices, result=None, parts=parts,
                        errors=exc.errors or [{"field": "", "message": exc.detail, "link": exc.extra.get("upgrade_url")}])
            return
        self.platform.wake_now(*keys)
        refused = sendform.rejected_of(response)
        if refused:
            self.flash("error", N_("Sent to the valid numbers; not to: %(numbers)s"),
                       numbers=", ".join(f"{r['input']} ({r['reason']})" for r in refused[:10]))
        else:
            self.flash("success", N_("Accepted: the message is on its way."))
        # A reply from a conversation goes back to it (only ever to a conversation of this site).
        back = self.get_body_argument("return_to", "")
        if back.startswith("/inbox/") and safe_next(back) == back:
            self.redirect(back)
            return
        self.redirect(sendform.landing(response))


class CsvPage(PageHandler):
    """Upload → preview with per-row errors → confirm (the rows travel back signed, not re-uploaded)."""

    permissions = {"GET": "messages:send", "POST": "messages:send"}
    max_body_size = CSV_MAX_BYTES + 64 * 1024

    def get(self):
        self.render("messaging/csv.html", preview=None, errors=[], payload=None)

    async def post(self):
        if self.get_body_argument("confirm", ""):
            payload = self.get_body_argument("payload", "")
            data = self.decode_payload(payload)
            body = {"messages": [{"text": r["text"], "to": [r["to"]]} for r in data]}
            try:
                clean, rejected, batch = submit.validate_request(body, self.tenant.default_region)
                name = self.get_body_argument("filename", "")[:120] or "CSV"
                status, response, keys = await self.in_tenant(recovery_pages.accept_from_page, self.tenant, clean,
                                                              rejected, batch, "csv", self.principal.actor, name)
            except Problem as exc:
                self.set_status(402 if exc.status == 402 else 422)  # 402: a plan's limit (addons/billing)
                self.render("messaging/csv.html", preview=None, payload=None,
                            errors=[{"row": 0, "message": exc.detail}])
                return
            self.platform.wake_now(*keys)
            self.flash("success", N_("Accepted %(count)s messages from the file."), count=len(response["messages"]))
            campaign = response.get("campaign_id")
            self.redirect(f"/campaigns/{campaign}" if campaign else "/messages")
            return
        files = self.request.files.get("file") or []
        if not files:
            self.set_status(422)
            self.render("messaging/csv.html", preview=None, payload=None,
                        errors=[{"row": 0, "message": N_("Choose a CSV file to upload.")}])
            return
        # Reading, filling in and signing up to 5,000 rows is CPU work: it runs in another process
        # (see csvfile), so it never holds this process's IOLoop or interpreter lock.
        preview, total, errors, payload = await read_upload(files[0]["body"], self.tenant.default_region,
                                                            self.platform.link_secret)
        if not total:
            self.set_status(422)
        self.render("messaging/csv.html", preview=preview, total=total, errors=errors, payload=payload,
                    filename=files[0].get("filename", "")[:120])

    def decode_payload(self, payload: str) -> list[dict]:
        from itsdangerous import BadSignature, URLSafeTimedSerializer

        try:
            rows = URLSafeTimedSerializer(self.platform.link_secret, salt="smsgw-csv").loads(payload, max_age=3600)
        except BadSignature:
            raise Problem(400, "invalid-upload", N_("This preview expired or was altered; upload the "
                                                    "file again."))
        if not isinstance(rows, list) or not rows:
            raise Problem(400, "invalid-upload", N_("Nothing to send; upload the file again."))
        return rows


def inbox_version() -> str:
    return version_of(app_db.execute_sql("SELECT max(id) FROM device_inbound").fetchone()[0])


class InboxPage(PageHandler):
    permission = "messages:read"

    async def get(self):
        if wants_version(self):
            answer_version(self, await self.in_tenant(inbox_version))
            return

        def load():
            rows = app_db.execute_sql("""
                SELECT sender, count(*), max(received_at),
                       (array_agg(body ORDER BY received_at DESC))[1],
                       (array_agg(redacted_at ORDER BY received_at DESC))[1]
                  FROM device_inbound GROUP BY sender ORDER BY max(received_at) DESC LIMIT 200""").fetchall()
            out = []
            for phone, count, last_at, body, redacted in rows:
                days = removed_after_days(last_at, redacted)
                out.append({"phone": phone, "count": count, "last_at": last_at, "last_body": body,
                            "removed_after_days": days})
            return out, inbox_version()

        args = filters.read(self, search.INBOX_FILTERS)
        found, refusal = None, None
        if args:  # a search: the received SMS that match, newest first, a page at a time
            try:
                found = await self.in_tenant(inbox_page, filters.query_args(self, args))
            except Problem as exc:
                found, refusal = {"messages": [], "next_cursor": None}, exc.localized(self.gettext()[0])[1]
                self.set_status(422)
        conversations, version = await self.in_tenant(load) if found is None else ([], "")
        choices = await self.in_tenant(filters.choices)
        labels = await contact_labels(self, [c["phone"] for c in conversations]
                                      + [m["from"] for m in (found or {}).get("messages", [])])
        self.render("messaging/inbox.html", conversations=conversations, live_version=version, args=args,
                    found=found, refusal=refusal, kept=filters.kept(args), devices=choices["devices"],
                    labels=labels)


def inbox_page(args: dict, limit: int = 50) -> dict:
    from .api import encode_cursor

    rows = list(search.inbox_query(args).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    return {"messages": [{"id": m.id, "from": m.sender, "body": m.body, "received_at": m.received_at,
                          "removed_after_days": removed_after_days(m.received_at, m.redacted_at)} for m in rows],
            "next_cursor": encode_cursor(rows[-1].id) if more else None}


class ConversationPage(PageHandler):
    permission = "messages:read"

    async def get(self, phone):
        # Tornado has already decoded the path (and refused a NUL): decoding it again would turn
        # "%2500" into a NUL that reaches PostgreSQL.
        if len(phone) > 40:
            raise Problem(404, "not-found", N_("There is no such conversation."))
        normal = try_normalise(phone, self.tenant.default_region) or phone

        def version():
            """The conversation's live version: its newest SMS in, its replies' last change."""
            return version_of(*app_db.execute_sql(
                "SELECT (SELECT max(id) FROM device_inbound WHERE sender = ANY (%s)), "
                "(SELECT max(updated_at) FROM (SELECT updated_at FROM recipients WHERE phone = %s "
                "ORDER BY id DESC LIMIT 200) r)", (list({phone, normal}), normal)).fetchone())

        if wants_version(self):
            answer_version(self, await self.in_tenant(version))
            return

        def load():
            from .models import Message, Recipient

            items = []
            for m in DeviceInbound.select().where(DeviceInbound.sender.in_({phone, normal})).order_by(
                    DeviceInbound.received_at.desc()).limit(200):
                items.append({"dir": "in", "at": m.received_at, "text": m.body, "state": None,
                              "removed_after_days": removed_after_days(m.received_at, m.redacted_at)})
            q = (Recipient.select(Recipient, Message).join(Message).where(Recipient.phone == normal)
                 .order_by(Recipient.id.desc()).limit(200))
            for r in q:
                items.append({"dir": "out", "at": r.created_at, "text": r.message.text, "state": r.state,
                              "message_id": r.message_id,
                              "removed_after_days": removed_after_days(r.message.created_at, r.message.redacted_at)})
            return sorted(items, key=lambda i: i["at"]), version()

        items, live = await self.in_tenant(load)
        if not items:
            raise Problem(404, "not-found", N_("There is no conversation with this number."))
        labels = await contact_labels(self, [normal])
        parts = (await self.in_tenant(sendform.parts, self.tenant, self.principal, "reply", {"to": [normal]})
                 if self.principal.can("messages:send") else [])
        self.render("messaging/conversation.html", phone=normal, items=items, live_version=live, labels=labels,
                    parts=parts)


class SuppressionsPage(PageHandler):
    permissions = {"GET": "messages:read", "POST": "settings:write"}

    async def get(self):
        rows = await self.in_tenant(lambda: list(Suppression.select().order_by(Suppression.created_at.desc())))
        labels = await contact_labels(self, [r.phone for r in rows])
        self.render("messaging/suppressions.html", rows=rows, error=None, labels=labels, typed={})

    async def post(self):
        action = self.get_body_argument("action", "add")
        raw = self.get_body_argument("phone", "")
        try:
            phone = normalise(raw, self.tenant.default_region)
        except PhoneError as exc:
            rows = await self.in_tenant(lambda: list(Suppression.select().order_by(Suppression.created_at.desc())))
            labels = await contact_labels(self, [r.phone for r in rows])
            self.set_status(422)
            self.render("messaging/suppressions.html", rows=rows, error=self.refusal_text(exc), labels=labels,
                        typed={"phone": raw[:40], "reason": self.get_body_argument("reason", "")[:200]})
            return
        if action == "remove":
            await self.in_tenant(lambda: Suppression.delete().where(Suppression.phone == phone).execute())
        else:
            reason = self.get_body_argument("reason", "")[:200]
            await self.in_tenant(lambda: Suppression.insert(phone=phone, reason=reason, source="manual")
                                 .on_conflict_ignore().execute())
        self.flash("success", N_("Saved."))
        self.redirect("/suppressions")


def form_args(handler, posted: bool) -> dict[str, list[str]]:
    """The form's fields as ``{name: [values]}`` (decoded and checked like any argument), for the
    addons that add fields to it (:mod:`addons.messaging.sendform`)."""
    names = handler.request.body_arguments if posted else handler.request.query_arguments
    get = handler.get_body_arguments if posted else handler.get_query_arguments
    return {name: get(name) for name in list(names)[:50] if not name.startswith("_xsrf")}


async def contact_labels(handler, phones) -> dict:
    """Names other addons give the numbers a page shows (``smsgw_contact_labels``), for ``who()``."""
    return await handler.in_tenant(sendform.labels, handler.tenant, phones) if phones else {}


def overview_part(principal, gettext):
    """The Overview's first step of this addon (one statement): a first message sent."""
    if not principal.can("messages:send"):
        return None
    sent = app_db.execute_sql("SELECT EXISTS (SELECT 1 FROM messages)").fetchone()[0]
    return OverviewPart(steps=[FirstStep("message", gettext("Send a test message"), sent, "/send", 20)])


def removed_after_days(start, redacted_at) -> int | None:
    """A removed text (retention, privacy addon) shows "text removed after N days": whole days from
    the message (or the incoming SMS) to the removal; None while the text is there."""
    if redacted_at is None:
        return None
    start, redacted_at = (parse_iso(t) if isinstance(t, str) else t for t in (start, redacted_at))
    return max(0, (redacted_at - start).days)


ROUTES = [
    (r"/messages", MessagesPage),
    (r"/messages/status\.json", MessageStatusJson),
    (r"/messages/([0-9]{1,18})", MessagePage),
    (r"/send", SendPage),
    (r"/send/csv", CsvPage),
    (r"/inbox", InboxPage),
    (r"/inbox/([^/]{1,60})", ConversationPage),
    (r"/suppressions", SuppressionsPage),
]
