"""Contacts addon hooks: tables, pages, menu, permissions; names and send-form fields for messaging."""

from core.addons import hookimpl
from core.i18n import N_
from core.web.menu import MenuItem
from core.web.problem import Problem

from addons.messaging.sendform import SendFormPart

from . import pages, service
from .models import MODELS


@hookimpl
def smsgw_models():
    return MODELS


@hookimpl
def smsgw_routes():
    return pages.ROUTES


@hookimpl
def smsgw_menu_items():
    return [MenuItem(N_("Contacts"), "/contacts", pages.READ, 22),
            MenuItem(N_("Templates"), "/templates", pages.READ, 23)]


@hookimpl
def smsgw_permissions(register):
    register(pages.READ, "See contacts, groups and message templates", ["customer", "user", "admin"], scope=True)
    register(pages.WRITE, "Add, import, change and delete contacts, groups and templates", ["customer", "user"],
             scope=True)


# -- the messaging addon's hooks ----------------------------------------------------------------

@hookimpl
def smsgw_contact_labels(tenant, phones):
    return service.labels(phones)


@hookimpl
def smsgw_send_form_parts(tenant, principal, where, form):
    if not principal.can(pages.READ):
        return None
    groups = service.groups() if where == "send" else []
    templates = service.templates()
    if not groups and not templates:
        return None
    return [SendFormPart("contacts/_send_part.html", {"groups": groups, "templates": templates, "where": where,
                                                       "chosen_group": (form.get("group") or [""])[0],
                                                       "chosen_template": (form.get("template") or [""])[0]}, 10)]


@hookimpl
def smsgw_send_form_body(tenant, principal, form, body):
    if (service.ids(form.get("group", [])) or service.ids(form.get("template", []))) and not principal.can(pages.READ):
        raise Problem(403, "forbidden", N_("Your role does not allow using contacts and templates."))
    return service.form_body(tenant, form, body)
