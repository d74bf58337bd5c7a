"""Devices addon hooks: routes, pages, device-token principals, offline sweep and alerts, menu, Overview."""

from core.addons import hookimpl
from core.i18n import N_
from core.web.menu import MenuItem

from . import api, health, pages, protocol, service
from .models import MODELS


@hookimpl
def smsgw_configure(platform):
    service.configure(platform.settings.device_offline_seconds)
    health.configure(platform)


@hookimpl
def smsgw_models():
    return MODELS + health.MODELS


@hookimpl
def smsgw_routes():
    return protocol.ROUTES + api.ROUTES + pages.ROUTES + health.ROUTES


@hookimpl
def smsgw_menu_items():
    return [MenuItem(N_("Devices"), "/devices", "devices:read", 20)]


@hookimpl
def smsgw_principal_from_token(token, tenant):
    if token.startswith("sgd_"):
        return service.principal_for_token(token, tenant.slug)
    return None


def sweep_offline_devices(platform):
    """Per tenant (the current one): devices that missed their expected contact go offline; hooks
    hand back their work. As the due job does it, in a transaction of its own."""
    from core.db import current_tenant, tenant_transaction

    tenant = platform.tenant_cache.get(current_tenant.get().slug)
    with tenant_transaction(tenant.ref):
        gone, then = offline_job(platform, tenant)
    then()
    return gone


def offline_job(platform, tenant):
    """Inside the tenant's transaction: mark overdue phones offline. Returns their ids and what to
    do once the transaction committed (their audit events)."""
    from core.events import AuditEvent, emit

    gone = service.sweep_offline()
    for device in gone:
        platform.registry.hook.smsgw_device_offline(tenant=tenant, device=device)
    health.on_offline(platform, tenant, gone)  # after the hand-back: what still waits because they are away

    def record():
        for device in gone:
            emit(platform, AuditEvent("device.offline", tenant.id, tenant.slug, actor="system",
                                      target=f"device:{device.id}"))

    return [d.id for d in gone], record


@hookimpl
def smsgw_tasks(queue):
    platform = queue.platform
    # A phone that came online may go silent: run when the one seen longest ago would be overdue.
    queue.due_job(service.OFFLINE_JOB, lambda tenant: offline_job(platform, tenant)[1],
                  service.next_offline_due)
    # Phone alerts to tell by e-mail (armed when one opens or ends).
    queue.due_job(health.NOTICE_JOB, lambda tenant: health.notice_run(platform, tenant), health.notice_next_due)


@hookimpl
def smsgw_template_context(handler):
    return health.banner_context(handler)


@hookimpl
def smsgw_overview_parts(tenant, principal, gettext):
    return health.overview_part(tenant, principal, gettext)


@hookimpl
def smsgw_openapi():
    from . import openapi

    return openapi.fragment()


# -- what the devices addon registers with the kernel --------------------------

@hookimpl
def smsgw_permissions(register):
    register("devices:read", "See the phones, their health and pairing", ["customer", "user", "admin"], scope=True)
    register("devices:write", "Pair, rename, configure and remove phones", ["customer"], scope=True)
    # Held by no role: only a paired phone's device token (smsgw_principal_from_token) carries it.
    register(service.DEVICE_PERMISSION, "Speak the device protocol (paired phones only)")


@hookimpl
def smsgw_security_schemes(register):
    register("deviceToken", {
        "type": "http", "scheme": "bearer", "bearerFormat": "device token (sgd_…)",
        "description": "`Authorization: Bearer sgd_<workspace>_…`: the token a phone receives when it pairs "
                       "(`POST /api/device/v1/register`). It only reaches the device protocol.",
    }, accepted_by_kernel=True)


@hookimpl
def smsgw_revoke_credentials(tenant, user_id):
    # Device tokens belong to the workspace, not to a member: they die only with the workspace.
    # The phones stay listed (name, settings, history); pairing again gives each a new token.
    if user_id is None:
        service.revoke_all_tokens()
