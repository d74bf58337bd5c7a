"""Contacts in and out as CSV: an import is read, previewed with its errors per row, then saved;
an export is safe to open in a spreadsheet (no cell is read as a formula)."""

from __future__ import annotations

import csv
import io
import re

from peewee import fn

from addons.messaging.csvfile import csv_text
from addons.messaging.phones import PhoneError, normalise

from .models import Contact, ContactGroup, GroupMember
from .service import MAX_GROUP_NAME, MAX_NAME, parse_tags
from core.i18n import N_
from core.web.problem import row_error

MAX_BYTES = 1024 * 1024
MAX_ROWS = 5000
MAX_ERRORS = 200
PREVIEW_ROWS = 50
NAME_COLUMNS, PHONE_COLUMNS = ("name",), ("phone", "number", "mobile", "recipient")


def read(raw: bytes, region: str) -> tuple[list[dict], list[dict]]:
    """``(good rows, errors)`` of a file whose first line names its columns: ``name`` and ``phone``
    (or ``number``), optionally ``tags`` and ``groups`` (several separated by ``;``). Each error is
    ``{"row": line number, "message": ...}``; a number twice in the file is an error on its second row."""
    content = csv_text(raw, MAX_BYTES)
    if isinstance(content, dict):
        return [], [content]
    reader = csv.reader(io.StringIO(content))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        return [], [row_error(1, N_("The first line cannot be read as CSV: %(why)s."), {"why": str(exc)})]
    col = {}
    for key, names in (("name", NAME_COLUMNS), ("phone", PHONE_COLUMNS), ("tags", ("tags",)), ("groups", ("groups", "group"))):
        col[key] = next((header.index(n) for n in names if n in header), None)
    if col["name"] is None or col["phone"] is None:
        return [], [row_error(1, N_("The first line must name the columns, with at least 'name' and 'phone'."))]
    good, errors, seen = [], [], {}
    line = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            errors.append(row_error(reader.line_num, N_("this line cannot be read: %(why)s; the rest was not read."),
                                    {"why": str(exc)}))
            break
        line += 1
        if not any(c.strip() for c in cells):
            continue
        if len(good) + len(errors) >= MAX_ROWS:
            errors.append(row_error(line, N_("Only %(max)s contacts per file; the rest was not read."), {"max": MAX_ROWS}))
            break

        def cell(key: str) -> str:
            i = col[key]
            return cells[i].strip() if i is not None and i < len(cells) else ""

        name = " ".join(cell("name").split())
        if not name or len(name) > MAX_NAME:
            errors.append(row_error(line, N_("the name must be 1 to %(max)s characters"), {"max": MAX_NAME}))
            continue
        try:
            phone = normalise(cell("phone"), region)
        except PhoneError as exc:
            errors.append(row_error(line, exc.msgid, exc.msg_args))
            continue
        if phone in seen:
            errors.append(row_error(line, N_("%(phone)s is already on row %(row)s of this file"),
                                    {"phone": phone, "row": seen[phone]}))
            continue
        groups = [g for g in (" ".join(x.split()) for x in cell("groups").split(";")) if g]
        if any(len(g) > MAX_GROUP_NAME for g in groups):
            errors.append(row_error(line, N_("a group name is longer than %(max)s characters"), {"max": MAX_GROUP_NAME}))
            continue
        seen[phone] = line
        good.append({"row": line, "name": name, "phone": phone, "tags": parse_tags(cell("tags")),
                     "groups": list(dict.fromkeys(groups))[:20]})
        if len(errors) >= MAX_ERRORS:
            break
    return good, errors[:MAX_ERRORS]


def save(rows: list[dict]) -> tuple[int, int]:
    """Save the rows of a confirmed import: ``(created, updated)``. A number that is already a
    contact gets the file's name, and the file's tags and groups in addition to its own."""
    existing = {c.phone: c for c in Contact.select().where(Contact.phone.in_([r["phone"] for r in rows] or [""]))}
    wanted = {g for r in rows for g in r["groups"]}
    groups = {g.name.lower(): g.id for g in ContactGroup.select()}
    for name in sorted(wanted, key=str.lower):
        if name.lower() not in groups:
            groups[name.lower()] = ContactGroup.create(name=name).id
    created = updated = 0
    members = []
    for r in rows:
        old = existing.get(r["phone"])
        if old is None:
            contact_id = Contact.insert(name=r["name"], phone=r["phone"], tags=r["tags"]).execute()
            created += 1
        else:
            tags = list(old.tags or []) + [t for t in r["tags"] if t.lower() not in {x.lower() for x in old.tags or []}]
            Contact.update(name=r["name"], tags=tags[:20], updated_at=fn.now()).where(Contact.id == old.id).execute()
            contact_id = old.id
            updated += 1
        members += [{"group_id": groups[g.lower()], "contact_id": contact_id} for g in r["groups"]]
    if members:
        GroupMember.insert_many(members).on_conflict_ignore().execute()
    return created, updated


_FORMULA = ("=", "+", "-", "@", "\t", "\r")
_E164 = re.compile(r"\+[0-9]{4,15}\Z")


def safe_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading ``'``
    (a phone number in E.164, a plus and digits only, stays as it is: it is no formula)."""
    if value[:1] in _FORMULA and not _E164.match(value):
        return "'" + value
    return value


def export_text(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["name", "phone", "tags", "groups"])
    for r in rows:
        writer.writerow([safe_cell(r["name"]), safe_cell(r["phone"]), safe_cell(", ".join(r["tags"])),
                         safe_cell("; ".join(r["groups"]))])
    return out.getvalue()
