"""CSV exports of the filtered Messages list (one row per recipient) and Inbox, streamed page by
page (a page per transaction, the same query as the list: :mod:`.search`)."""

from __future__ import annotations

import csv
import io
import re

from core.web.base import PageHandler
from core.web.problem import Problem

from . import filters, search
from .models import Message, Recipient

PAGE = 1000
MAX_ROWS = 100_000
_PHONE = re.compile(r"\+[0-9]{4,20}")


def cell(value) -> str:
    """A value as a cell a spreadsheet shows as text: one that starts like a formula (=, +, -, @,
    a tab or a return) is prefixed with ``'``, except a phone number in E.164 form."""
    text = "" if value is None else str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r") and not _PHONE.fullmatch(text):
        return "'" + text
    return text


def rows_text(rows: list[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([[cell(v) for v in row] for row in rows])
    return out.getvalue()


def iso(t) -> str:
    return t.isoformat() if t else ""


def message_rows(args: dict) -> tuple[list[list], int | None]:
    """Inside the tenant transaction: the next page of rows (one per recipient) and the cursor.
    Plain tuples, not model objects: most of an export's time was building those."""
    from .api import encode_cursor

    messages = list(search.message_query(args).select(Message.id, Message.created_at, Message.reference,
                                                      Message.campaign_id, Message.text, Message.redacted_at)
                    .limit(PAGE).tuples())
    out = []
    if messages:
        by_id = {m[0]: m for m in messages}
        for message_id, phone, state, error, sent, delivered, failed, device in (
                Recipient.select(Recipient.message, Recipient.phone, Recipient.state, Recipient.error_code,
                                 Recipient.sent_at, Recipient.delivered_at, Recipient.failed_at, Recipient.device_id)
                .where(Recipient.message.in_(list(by_id))).order_by(Recipient.message.desc(), Recipient.id).tuples()):
            _, created, reference, campaign, text, redacted = by_id[message_id]
            out.append([message_id, iso(created), phone, state, error or "", iso(sent), iso(delivered), iso(failed),
                        device or "", reference or "", campaign or "", "" if redacted else text])
    return out, encode_cursor(messages[-1][0]) if len(messages) == PAGE else None


def inbox_rows(args: dict) -> tuple[list[list], int | None]:
    from .api import encode_cursor

    rows = list(search.inbox_query(args).limit(PAGE))
    out = [[m.id, iso(m.received_at), m.sender, m.device_id, m.sim_slot or "", "" if m.redacted_at else m.body]
           for m in rows]
    return out, encode_cursor(rows[-1].id) if len(rows) == PAGE else None


MESSAGE_HEADER = ["message_id", "created_at", "phone", "state", "error_code", "sent_at", "delivered_at", "failed_at",
                  "device_id", "reference", "campaign_id", "text"]
INBOX_HEADER = ["id", "received_at", "from", "device_id", "sim_slot", "body"]


class ExportHandler(PageHandler):
    """``GET /messages.csv`` or ``/inbox.csv`` with the list's filters. A bad filter is refused
    before anything is sent (422, said in words)."""

    permission = "messages:read"
    names: tuple[str, ...] = ()
    header: list[str] = []
    filename = ""

    def load(self, args: dict):
        raise NotImplementedError

    async def get(self):
        args = filters.query_args(self, filters.read(self, self.names))
        args["cursor"] = None
        try:
            rows, cursor = await self.in_tenant(self.load, args)
        except Problem as exc:
            raise Problem(422, "invalid-filter", exc.msgid, args=exc.detail_args or None)
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="{self.filename}"')
        self.set_header("Cache-Control", "no-store")
        self.write(rows_text([self.header] + rows))
        written = len(rows)
        while cursor and written < MAX_ROWS:
            await self.flush()
            rows, cursor = await self.in_tenant(self.load, dict(args, cursor=cursor))
            self.write(rows_text(rows))
            written += len(rows)
        self.finish()


class MessagesExport(ExportHandler):
    names, header, filename = search.MESSAGE_FILTERS, MESSAGE_HEADER, "messages.csv"

    def load(self, args):
        return message_rows(args)


class InboxExport(ExportHandler):
    names, header, filename = search.INBOX_FILTERS, INBOX_HEADER, "inbox.csv"

    def load(self, args):
        return inbox_rows(args)


ROUTES = [(r"/messages\.csv", MessagesExport), (r"/inbox\.csv", InboxExport)]
