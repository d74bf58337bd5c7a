"""Branding addon hooks: wiring only (the logic lives in :mod:`.service`, :mod:`.domains`, :mod:`.pages`)."""

from core.addons import hookimpl
from core.datamap import NO_PERSONAL_DATA, PersonalData, Table
from core.i18n import N_
from core.web.menu import SETTINGS, MenuItem

from . import domains, pages, service


@hookimpl
def smsgw_configure(platform):
    service.configure(platform)


@hookimpl
def smsgw_models():
    return [Table("workspace_brand", "public", PersonalData(
                personal=("mail_sender_name", "support_email"), subjects={"tenant": "tenant_id"},
                export=("product_name", "mail_sender_name", "support_email", "colour_brand", "colour_text", "theme"),
                erase="delete")),
            Table("custom_domain", "public", NO_PERSONAL_DATA)]


@hookimpl
def smsgw_routes():
    return pages.ROUTES


@hookimpl
def smsgw_permissions(register):
    register(pages.MANAGE, "Change the workspace's brand (name, logo, colours, theme) and its own host names",
             ["customer"])


@hookimpl
def smsgw_menu_items():
    return [MenuItem(N_("Brand"), "/brand", pages.MANAGE, 78, SETTINGS)]


@hookimpl
def smsgw_brand(tenant, default):
    return service.brand(tenant, default)


@hookimpl
def smsgw_tenant_for_host(host):
    return domains.slug_for(host)
