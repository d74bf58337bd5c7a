"""Audit addon hooks: record every security event, purge past retention, show the trail."""

from core.addons import hookimpl
from core.datamap import PersonalData, Table
from core.hookspecs import AdminSection
from core.i18n import N_
from core.tasks import crontab
from core.web.menu import INSIGHTS, MenuItem

from . import trail
from .handlers import AuditExportHandler, AuditPageHandler


@hookimpl
def smsgw_audit_event(event):
    trail.record(event)


@hookimpl
def smsgw_routes():
    return [(r"/audit", AuditPageHandler), (r"/audit/export\.json", AuditExportHandler)]


@hookimpl
def smsgw_menu_items():
    return [MenuItem(N_("Audit trail"), "/audit", "audit:read", 88, INSIGHTS)]


@hookimpl
def smsgw_tasks(queue):
    prefix = queue.platform.settings.role_prefix
    queue.periodic(crontab(hour="3", minute="17"), lambda: trail.purge(prefix), name="audit.purge",
                   per_tenant=False)


@hookimpl
def smsgw_admin_sections():
    return {"audit": AdminSection(N_("Audit trail"), lambda tenant: trail.query(tenant.id, limit=200), False)}


@hookimpl
def smsgw_models():
    # Written with SQL (trail.py). Erasure pseudonymises it, never edits it otherwise.
    return [Table("audit_event", "public", PersonalData(
        personal=("actor_name", "target", "ip", "user_agent", "details"), subjects={"tenant": "tenant_id", "actor": "actor"},
        export=("at", "action", "actor", "actor_name", "target", "ip", "user_agent", "reason", "details"),
        erase="pseudonymise"))]


@hookimpl
def smsgw_permissions(register):
    register("audit:read", "Read and export the workspace's audit trail", ["customer", "admin"])
