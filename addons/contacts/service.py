"""Contacts, groups and templates: the rules, inside the tenant's transaction (pages call these).

Templates are filled by plain substitution: ``{name}``, ``{first_name}`` and ``{phone}`` are
replaced by the contact's values, and nothing else in a text means anything. ``{__class__}``,
``{0}``, ``%s`` and ``{{ name }}`` stay as they are written: no ``str.format``, no ``%``, no
template engine ever sees a template's text.
"""

from __future__ import annotations

import re

from peewee import JOIN, fn

from core.clock import utcnow
from core.web.problem import Problem, Refusal, field_error

from addons.messaging.phones import PhoneError, normalise, try_normalise
from addons.messaging.sendform import ContactLabel

from .models import Contact, ContactGroup, GroupMember, MessageTemplate
from core.i18n import N_

FIELDS = ("name", "first_name", "phone")
_FIELD = re.compile(r"\{(name|first_name|phone)\}")
MAX_TAGS, MAX_TAG = 20, 40
MAX_NAME, MAX_GROUP_NAME, MAX_TEMPLATE_NAME, MAX_TEMPLATE = 200, 100, 100, 2000


class ContactError(Refusal):
    """Input refused; ``field`` names the form field, the message (a msgid and its arguments) says what to do."""

    def __init__(self, field: str, message: str, args: dict | None = None):
        super().__init__(message, args)
        self.field = field


# -- templates ------------------------------------------------------------------------------

def has_fields(text: str) -> bool:
    return _FIELD.search(text) is not None


def values_for(name: str, phone: str) -> dict[str, str]:
    """The values a contact fills a template with (an unknown number: only ``{phone}``)."""
    words = name.split()
    return {"name": name, "first_name": words[0] if words else "", "phone": phone}


def fill(text: str, values: dict[str, str]) -> str:
    """``text`` with each ``{name}``, ``{first_name}`` and ``{phone}`` replaced by its value (empty
    when there is none); every other character as written."""
    return _FIELD.sub(lambda m: values.get(m.group(1), ""), text)


def templates() -> list[MessageTemplate]:
    return list(MessageTemplate.select().order_by(fn.lower(MessageTemplate.name)))


def save_template(name: str, body: str, template_id: int | None = None) -> MessageTemplate:
    name, body = name.strip(), body.strip()
    if not name or len(name) > MAX_TEMPLATE_NAME:
        raise ContactError("name", N_("Give the template a name of 1 to %(max)s characters."),
                           {"max": MAX_TEMPLATE_NAME})
    if not body or len(body) > MAX_TEMPLATE:
        raise ContactError("body", N_("Write a text of 1 to %(max)s characters."), {"max": MAX_TEMPLATE})
    clash = MessageTemplate.get_or_none(fn.lower(MessageTemplate.name) == name.lower())
    if clash is not None and clash.id != template_id:
        raise ContactError("name", N_("Another template has this name; choose another."))
    if template_id is None:
        return MessageTemplate.create(name=name, body=body)
    if not MessageTemplate.update(name=name, body=body, updated_at=utcnow()).where(
            MessageTemplate.id == template_id).execute():
        raise Problem(404, "not-found", N_("There is no such template here."))
    return MessageTemplate.get_by_id(template_id)


def template(template_id: int) -> MessageTemplate:
    found = MessageTemplate.get_or_none(MessageTemplate.id == template_id)
    if found is None:
        raise Problem(404, "not-found", N_("There is no such template here."))
    return found


# -- contacts -------------------------------------------------------------------------------

def parse_tags(raw: str) -> list[str]:
    """Tags as typed (separated by commas or semicolons): trimmed, without repeats, at most 20 of 40 characters."""
    tags: list[str] = []
    for tag in re.split(r"[,;]", raw or ""):
        tag = " ".join(tag.split())[:MAX_TAG]
        if tag and tag.lower() not in (t.lower() for t in tags):
            tags.append(tag)
    return tags[:MAX_TAGS]


def check_contact(name: str, raw_phone: str, region: str) -> tuple[str, str]:
    """``(name, E.164 phone)`` or :class:`ContactError` (every check but uniqueness)."""
    name = " ".join((name or "").split())
    if not name or len(name) > MAX_NAME:
        raise ContactError("name", N_("Enter a name of 1 to %(max)s characters."), {"max": MAX_NAME})
    try:
        phone = normalise(raw_phone, region)
    except PhoneError as exc:
        raise ContactError("phone", exc.msgid, exc.msg_args) from None
    return name, phone


def save_contact(region: str, name: str, raw_phone: str, tags: list[str], group_ids: list[int],
                 contact_id: int | None = None) -> Contact:
    name, phone = check_contact(name, raw_phone, region)
    other = Contact.get_or_none(Contact.phone == phone)
    if other is not None and other.id != contact_id:
        raise ContactError("phone", N_("%(phone)s is already the contact “%(name)s”."),
                           {"phone": phone, "name": other.name})
    known = {g.id for g in ContactGroup.select(ContactGroup.id).where(ContactGroup.id.in_(group_ids or [0]))}
    if contact_id is None:
        contact = Contact.create(name=name, phone=phone, tags=tags)
    else:
        if not Contact.update(name=name, phone=phone, tags=tags, updated_at=utcnow()).where(
                Contact.id == contact_id).execute():
            raise Problem(404, "not-found", N_("There is no such contact here."))
        contact = Contact.get_by_id(contact_id)
        GroupMember.delete().where(GroupMember.contact_id == contact_id).execute()
    if known:
        GroupMember.insert_many([{"group_id": g, "contact_id": contact.id} for g in sorted(known)]).execute()
    return contact


def contact(contact_id: int) -> Contact:
    found = Contact.get_or_none(Contact.id == contact_id)
    if found is None:
        raise Problem(404, "not-found", N_("There is no such contact here."))
    return found


def group_ids_of(contact_id: int) -> set[int]:
    return {m.group_id for m in GroupMember.select().where(GroupMember.contact_id == contact_id)}


def groups() -> list[dict]:
    """Every group with its number of contacts, by name."""
    rows = (ContactGroup.select(ContactGroup, fn.count(GroupMember.contact_id).alias("size"))
            .join(GroupMember, on=(GroupMember.group_id == ContactGroup.id), join_type=JOIN.LEFT_OUTER)
            .group_by(ContactGroup.id).order_by(fn.lower(ContactGroup.name)))
    return [{"id": g.id, "name": g.name, "size": g.size} for g in rows]


def create_group(name: str) -> ContactGroup:
    name = " ".join((name or "").split())
    if not name or len(name) > MAX_GROUP_NAME:
        raise ContactError("group_name", N_("Give the group a name of 1 to %(max)s characters."),
                           {"max": MAX_GROUP_NAME})
    if ContactGroup.select().where(fn.lower(ContactGroup.name) == name.lower()).exists():
        raise ContactError("group_name", N_("There is a group “%(name)s” already."), {"name": name})
    return ContactGroup.create(name=name)


def group(group_id: int) -> ContactGroup:
    found = ContactGroup.get_or_none(ContactGroup.id == group_id)
    if found is None:
        raise Problem(404, "not-found", N_("There is no such group here."))
    return found


def search(q: str = "", group_id: int | None = None, tag: str = "", limit: int = 500) -> list[dict]:
    """Contacts by name, with their groups' names: all, or those matching a name or number part,
    a group and a tag."""
    query = Contact.select()
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(Contact.name.ilike(like) | Contact.phone.contains(q.replace(" ", "")))
    if group_id is not None:
        query = query.where(Contact.id.in_(GroupMember.select(GroupMember.contact_id)
                                           .where(GroupMember.group_id == group_id)))
    if tag:
        query = query.where(Contact.tags.contains(tag))
    rows = list(query.order_by(fn.lower(Contact.name), Contact.id).limit(limit))
    names = {g.id: g.name for g in ContactGroup.select()}
    member = {}
    for m in GroupMember.select().where(GroupMember.contact_id.in_([c.id for c in rows] or [0])):
        member.setdefault(m.contact_id, []).append(names.get(m.group_id, ""))
    return [{"id": c.id, "name": c.name, "phone": c.phone, "tags": list(c.tags or []),
             "groups": sorted(member.get(c.id, []), key=str.lower)} for c in rows]


def labels(phones: list[str]) -> dict[str, ContactLabel]:
    return {c.phone: ContactLabel(c.name, f"/contacts/{c.id}")
            for c in Contact.select(Contact.id, Contact.name, Contact.phone).where(Contact.phone.in_(phones))}


def opted_out(phone: str) -> bool:
    """Whether the number opted out (the messaging addon's ``suppressions``): its contact page says so."""
    from addons.messaging.models import Suppression

    return Suppression.select().where(Suppression.phone == phone).exists()


# -- the send form (messaging's hooks) ------------------------------------------------------

def ids(values: list[str]) -> list[int]:
    return [int(v) for v in values if v.isdigit() and len(v) <= 18]


def form_body(tenant, form: dict, body: dict) -> dict | None:
    """The send request for a form with a group and/or a template (see ``smsgw_send_form_body``).

    The group's numbers join the typed ones. A text with ``{name}``-style fields becomes one message
    per recipient, filled with that recipient's contact (a typed number that is nobody's contact
    fills only ``{phone}``)."""
    group_ids = ids(form.get("group", []))
    template_ids = ids(form.get("template", []))
    if not group_ids and not template_ids and not has_fields(body.get("text", "")):
        return None
    text = body.get("text", "")
    if not text.strip() and template_ids:
        text = template(template_ids[0]).body
    region = tenant.default_region
    recipients: dict[str, str | None] = {}  # E.164 (or a typed number that is not one) -> name
    typed = list(body.get("to", []))
    for raw in typed:
        recipients.setdefault(try_normalise(raw, region) or raw, None)
    for gid in group_ids:
        g = group(gid)
        members = list(Contact.select(Contact.phone, Contact.name).join(
            GroupMember, on=(GroupMember.contact_id == Contact.id)).where(GroupMember.group_id == g.id))
        if not members:
            raise Problem(422, "empty-group", N_("The group “%(name)s” has no contacts yet."), args={"name": g.name},
                          errors=[field_error("group", N_("the group “%(name)s” has no contacts yet"),
                                              {"name": g.name})])
        for c in members:
            recipients[c.phone] = c.name
    unnamed = [p for p, name in recipients.items() if name is None and p.startswith("+")]
    if unnamed:
        for c in Contact.select(Contact.phone, Contact.name).where(Contact.phone.in_(unnamed)):
            recipients[c.phone] = c.name
    extras = {k: body[k] for k in ("device_id", "send_at") if k in body}
    if not has_fields(text):
        return dict(body, text=text, to=list(recipients))
    invalid = [p for p in recipients if not p.startswith("+")]
    if invalid:
        raise Problem(422, "invalid-recipients", N_("Correct or remove these numbers: %(numbers)s"),
                      args={"numbers": ", ".join(invalid[:10])},
                      errors=[field_error("to", N_("“%(number)s” is not a phone number."), {"number": p[:40]})
                              for p in invalid[:10]])
    return {"messages": [dict(extras, text=fill(text, values_for(name or "", phone)), to=[phone])
                         for phone, name in recipients.items()]}
