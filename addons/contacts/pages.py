"""Dashboard pages: contacts (list, search, add, edit), groups, CSV import and export, templates."""

from __future__ import annotations

from core.i18n import N_
from core.web.base import PageHandler
from core.web.params import parse_id
from core.web.problem import Problem

from . import csvio, service
from .models import Contact, ContactGroup, MessageTemplate
from .service import ContactError

READ, WRITE = "contacts:read", "contacts:write"


def _filters(handler) -> dict:
    group = handler.get_query_argument("group", "")
    return {"q": handler.get_query_argument("q", "").strip()[:100],
            "group": int(group) if group.isdigit() and len(group) <= 18 else None,
            "tag": handler.get_query_argument("tag", "").strip()[:40]}


async def show_contacts(handler, errors: dict | None = None, typed: dict | None = None):
    """The contacts page (its list filtered by the query), with a form's errors and what was typed."""
    filters = _filters(handler)

    def load():
        return service.search(filters["q"], filters["group"], filters["tag"]), service.groups()

    rows, groups = await handler.in_tenant(load)
    handler.render("contacts/list.html", rows=rows, groups=groups, filters=filters, errors=errors or {},
                   typed=typed or {})


class ContactsPage(PageHandler):
    permissions = {"GET": READ, "POST": WRITE}

    async def get(self):
        await show_contacts(self)

    async def post(self):
        typed = {k: self.get_body_argument(k, "")[:300] for k in ("name", "phone", "tags")}
        typed["group"] = self.get_body_arguments("group")
        group_ids = [int(g) for g in typed["group"] if g.isdigit() and len(g) <= 18]
        region = self.tenant.default_region
        try:
            await self.in_tenant(service.save_contact, region, typed["name"], typed["phone"],
                                 service.parse_tags(typed["tags"]), group_ids)
        except ContactError as exc:
            self.set_status(422)
            await show_contacts(self, {exc.field: self.refusal_text(exc)}, typed)
            return
        self.flash("success", N_("Contact saved."))
        self.redirect("/contacts", status=303)


class ContactPage(PageHandler):
    permissions = {"GET": READ, "POST": WRITE}

    async def show(self, contact_id: int, errors: dict | None = None, typed: dict | None = None):
        def load():
            c = service.contact(contact_id)
            return c, service.group_ids_of(c.id), service.groups(), service.opted_out(c.phone)

        c, member_of, groups, opted_out = await self.in_tenant(load)
        self.render("contacts/contact.html", c=c, member_of=member_of, groups=groups, opted_out=opted_out,
                    errors=errors or {}, typed=typed or {})

    async def get(self, raw_id):
        await self.show(parse_id(raw_id, "contact"))

    async def post(self, raw_id):
        contact_id = parse_id(raw_id, "contact")
        if self.get_body_argument("action", "save") == "delete":
            c = await self.in_tenant(service.contact, contact_id)
            _ = self.gettext()[0]
            if not self.confirmed(_("Delete the contact “%(name)s” (%(phone)s)?") % {"name": c.name, "phone": c.phone},
                                  _("Delete contact"), f"/contacts/{contact_id}",
                                  _("Its messages stay; they show the bare number again.")):
                return
            await self.in_tenant(lambda: Contact.delete().where(Contact.id == contact_id).execute())
            self.flash("success", N_("Contact deleted."))
            self.redirect("/contacts", status=303)
            return
        typed = {k: self.get_body_argument(k, "")[:300] for k in ("name", "phone", "tags")}
        typed["group"] = self.get_body_arguments("group")
        group_ids = [int(g) for g in typed["group"] if g.isdigit() and len(g) <= 18]
        try:
            await self.in_tenant(service.save_contact, self.tenant.default_region, typed["name"], typed["phone"],
                                 service.parse_tags(typed["tags"]), group_ids, contact_id)
        except ContactError as exc:
            self.set_status(422)
            await self.show(contact_id, {exc.field: self.refusal_text(exc)}, typed)
            return
        self.flash("success", N_("Contact saved."))
        self.redirect(f"/contacts/{contact_id}", status=303)


class GroupsPage(PageHandler):
    """``POST /contacts/groups``: create a group, or delete one (confirmed; its contacts stay)."""

    permission = WRITE

    async def post(self):
        if self.get_body_argument("action", "create") == "delete":
            group_id = parse_id(self.get_body_argument("group_id", ""), "group")
            g = await self.in_tenant(service.group, group_id)
            _ = self.gettext()[0]
            if not self.confirmed(_("Delete the group “%(name)s”?") % {"name": g.name}, _("Delete group"), "/contacts",
                                  _("Its contacts stay; only the group goes.")):
                return
            await self.in_tenant(lambda: ContactGroup.delete().where(ContactGroup.id == group_id).execute())
            self.flash("success", N_("Group deleted."))
            self.redirect("/contacts", status=303)
            return
        name = self.get_body_argument("group_name", "")[:300]
        try:
            await self.in_tenant(service.create_group, name)
        except ContactError as exc:
            self.set_status(422)
            await show_contacts(self, {exc.field: self.refusal_text(exc)}, {"group_name": name})
            return
        self.flash("success", N_("Group created."))
        self.redirect("/contacts", status=303)


class ImportPage(PageHandler):
    """Upload → preview with per-row errors → confirm (the rows travel back signed, not re-uploaded)."""

    permissions = {"GET": WRITE, "POST": WRITE}
    max_body_size = csvio.MAX_BYTES + 64 * 1024

    def get(self):
        self.render("contacts/import.html", preview=None, total=0, errors=[], payload=None)

    def serializer(self):
        from itsdangerous import URLSafeTimedSerializer

        return URLSafeTimedSerializer(self.platform.link_secret, salt=f"smsgw-contacts:{self.tenant.slug}")

    async def post(self):
        if self.get_body_argument("confirm", ""):
            from itsdangerous import BadSignature

            try:
                rows = self.serializer().loads(self.get_body_argument("payload", ""), max_age=3600)
            except BadSignature:
                raise Problem(400, "invalid-upload", N_("This preview expired or was altered; upload the file again."))
            created, updated = await self.in_tenant(csvio.save, rows)
            self.flash("success", N_("Imported: %(created)s new contacts, %(updated)s updated."), created=created,
                       updated=updated)
            self.redirect("/contacts", status=303)
            return
        files = self.request.files.get("file") or []
        if not files:
            self.set_status(422)
            self.render("contacts/import.html", preview=None, total=0, payload=None,
                        errors=[{"row": 0, "message": N_("Choose a CSV file to upload.")}])
            return
        good, errors = await self.run_db(csvio.read, files[0]["body"], self.tenant.default_region)
        payload = self.serializer().dumps(good) if good else None
        if not good:
            self.set_status(422)
        self.render("contacts/import.html", preview=good[:csvio.PREVIEW_ROWS], total=len(good), errors=errors,
                    payload=payload)


class ExportPage(PageHandler):
    permission = READ

    async def get(self):
        filters = _filters(self)
        rows = await self.in_tenant(service.search, filters["q"], filters["group"], filters["tag"], 100_000)
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="contacts.csv"')
        self.set_header("Cache-Control", "no-store")
        self.finish(csvio.export_text(rows))


class TemplatesPage(PageHandler):
    permissions = {"GET": READ, "POST": WRITE}

    async def show(self, errors: dict | None = None, typed: dict | None = None, edit=None):
        rows = await self.in_tenant(service.templates)
        self.render("contacts/templates.html", rows=rows, errors=errors or {}, typed=typed or {}, edit=edit,
                    fields=service.FIELDS)

    async def get(self):
        await self.show()

    async def post(self):
        typed = {"name": self.get_body_argument("name", "")[:300], "body": self.get_body_argument("body", "")[:5000]}
        try:
            await self.in_tenant(service.save_template, typed["name"], typed["body"])
        except ContactError as exc:
            self.set_status(422)
            await self.show({exc.field: self.refusal_text(exc)}, typed)
            return
        self.flash("success", N_("Template saved."))
        self.redirect("/templates", status=303)


class TemplatePage(TemplatesPage):
    permissions = {"GET": READ, "POST": WRITE}

    async def get(self, raw_id):
        t = await self.in_tenant(service.template, parse_id(raw_id, "template"))
        await self.show(edit=t, typed={"name": t.name, "body": t.body})

    async def post(self, raw_id):
        template_id = parse_id(raw_id, "template")
        if self.get_body_argument("action", "save") == "delete":
            t = await self.in_tenant(service.template, template_id)
            _ = self.gettext()[0]
            if not self.confirmed(_("Delete the template “%(name)s”?") % {"name": t.name}, _("Delete template"),
                                  "/templates"):
                return
            await self.in_tenant(lambda: MessageTemplate.delete().where(
                MessageTemplate.id == template_id).execute())
            self.flash("success", N_("Template deleted."))
            self.redirect("/templates", status=303)
            return
        typed = {"name": self.get_body_argument("name", "")[:300], "body": self.get_body_argument("body", "")[:5000]}
        try:
            await self.in_tenant(service.save_template, typed["name"], typed["body"], template_id)
        except ContactError as exc:
            t = await self.in_tenant(service.template, template_id)
            self.set_status(422)
            await self.show({exc.field: self.refusal_text(exc)}, typed, edit=t)
            return
        self.flash("success", N_("Template saved."))
        self.redirect("/templates", status=303)


ROUTES = [
    (r"/contacts", ContactsPage),
    (r"/contacts/([0-9]{1,18})", ContactPage),
    (r"/contacts/groups", GroupsPage),
    (r"/contacts/import", ImportPage),
    (r"/contacts/export\.csv", ExportPage),
    (r"/templates", TemplatesPage),
    (r"/templates/([0-9]{1,18})", TemplatePage),
]
