"""Resellers addon hooks: wiring only (logic in service.py, pages in console.py and admin.py)."""

from core.addons import hookimpl
from core.datamap import PersonalData, Table
from core.tasks import crontab

from . import admin, brand, cli, console, hostnames, invoicing, signup
from .service import ADMIN_PERMISSION, SUPPORT_PERMISSION


@hookimpl
def smsgw_routes():
    return signup.routes() + console.routes() + admin.routes()


@hookimpl
def smsgw_permissions(register):
    # Held by nobody inside a workspace: only the reseller console's sessions carry them (service.ROLE_PERMISSIONS).
    register(ADMIN_PERMISSION, "Reseller console: create, suspend and resume its workspaces; its people and addons")
    register(SUPPORT_PERMISSION, "Reseller console: see its workspaces and open one for support with a reason")


@hookimpl
def smsgw_template_context(handler):
    if handler.tenant is None and handler.scope == "platform":
        return {"admin_links": admin.ADMIN_LINKS}
    return None


@hookimpl
def smsgw_brand_defaults(tenant):
    return brand.defaults(tenant)


@hookimpl
def smsgw_brand_default_logo(tenant):
    return brand.default_logo(tenant)


@hookimpl
def smsgw_tls_allowed(host):
    return hostnames.tls_allowed(host)


@hookimpl
def smsgw_brand_editable(tenant):
    return brand.editable(tenant)


@hookimpl
def smsgw_tasks(queue):
    # On the 1st of each month: last month's invoices, the resellers' to their customers, then the
    # platform's to each reseller (each issued once: a rerun or a second worker issues nothing more).
    queue.periodic(crontab(day="1", hour="2", minute="40"), invoicing.invoice_last_month,
                   name="resellers.invoice_month", per_tenant=False)


@hookimpl
def smsgw_cli(subparsers):
    cli.add_commands(subparsers)


@hookimpl
def smsgw_models():
    keep = "the record of who resold which workspace and who opened it, kept while the reseller exists"
    return [
        Table("reseller", "public", PersonalData(personal=("contact_name", "contact_email"),
                                                 subjects={"actor": "contact_actor"},
                                                 export=("slug", "company", "contact_name", "contact_email"),
                                                 erase="keep", why=keep)),
        Table("reseller_user", "public", PersonalData(personal=("email", "name"), subjects={"actor": "actor"},
                                                      export=("email", "name", "role", "created_at"),
                                                      erase="keep", why=keep)),
        Table("reseller_session", "public", PersonalData(personal=("ip", "user_agent"), subjects={"actor": "actor"},
                                                         export=("created_at", "ip", "user_agent"),
                                                         erase="redact")),
        Table("reseller_tenant", "public", PersonalData(subjects={"tenant": "tenant_id"}, erase="delete")),
        Table("reseller_access_grant", "public", PersonalData(personal=("ip",), subjects={"tenant": "tenant_id",
                                                                                           "actor": "actor"},
                                                              export=("created_at", "reason", "expires_at"),
                                                              erase="keep", why=keep)),
        Table("reseller_addon", "public", PersonalData()),
        Table("reseller_brand", "public", PersonalData()),
        Table("reseller_plan", "public", PersonalData()),
        Table("reseller_wholesale_counter", "public", PersonalData()),
        Table("reseller_wholesale_invoice", "public", PersonalData()),
        Table("reseller_wholesale_line", "public", PersonalData()),
        Table("reseller_customer_invoice", "public", PersonalData()),
        Table("reseller_plan_addon", "public", PersonalData()),
        Table("reseller_addon_job", "public", PersonalData()),
        Table("reseller_addon_job_item", "public", PersonalData()),
        Table("reseller_domain", "public", PersonalData()),
    ]
