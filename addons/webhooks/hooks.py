"""Webhooks addon hooks: subscribe to message and device events, deliver, sweep, show."""

from core.addons import hookimpl
from core.hookspecs import EncryptedField
from core.i18n import N_
from core.tasks import URGENT
from core.web.menu import SETTINGS, MenuItem

from . import api, delivery, pages, runtime, service
from .models import MODELS

@hookimpl
def smsgw_configure(platform):
    runtime.set_platform(platform)


@hookimpl
def smsgw_models():
    return MODELS


@hookimpl
def smsgw_routes():
    return api.ROUTES + pages.ROUTES


@hookimpl
def smsgw_menu_items():
    return [MenuItem(N_("Webhooks"), "/webhooks", "webhooks:read", 40, SETTINGS)]


@hookimpl
def smsgw_overview_parts(tenant, principal, gettext):
    return pages.overview_part(principal, gettext)


@hookimpl
def smsgw_encrypted_fields():
    return [EncryptedField("tenant", "webhook_endpoints", "id", "secret_enc"),
            EncryptedField("tenant", "webhook_endpoints", "id", "previous_secret_enc")]


@hookimpl
def smsgw_message_events(tenant, events):
    service.record_many([(service.MESSAGE_EVENTS[event], data, data.get("device_id"))
                         for event, data in events if event in service.MESSAGE_EVENTS])


@hookimpl
def smsgw_device_online(tenant, device):
    service.record("device:online", {"device_id": device.id, "name": device.name}, device_id=device.id)


@hookimpl
def smsgw_device_offline(tenant, device):
    service.record("device:offline", {"device_id": device.id, "name": device.name}, device_id=device.id)


@hookimpl
def smsgw_tasks(queue):
    runtime.set_platform(queue.platform)
    # Handing an attempt to the delivery pool is quick and a customer waits for it: before housekeeping.
    runtime.set_deliver_task(queue.tenant_task(delivery.deliver_task, name="webhooks.deliver", priority=URGENT))
    queue.due_job(service.JOB, delivery.sweep_job, service.next_due)


@hookimpl
def smsgw_metrics(register):
    from .metrics import BacklogCollector

    register(BacklogCollector(service.JOB))


@hookimpl
def smsgw_openapi():
    from . import openapi

    return openapi.fragment()


# -- what the webhooks addon registers with the kernel -------------------------

@hookimpl
def smsgw_permissions(register):
    register("webhooks:read", "See webhook endpoints and their delivery log", ["customer", "user", "admin"],
             scope=True)
    register("webhooks:write", "Add, change, test and remove webhook endpoints; redeliver events", ["customer"],
             scope=True)


# -- privacy: what a data export adds -----------------------------------------------------------

@hookimpl(optionalhook=True)  # offered by the privacy addon, which may not be installed
def smsgw_privacy_export(tenant, subject):
    """The workspace's webhooks (they are the workspace's, no member's), never their secrets."""
    if subject.kind != "workspace":
        return None
    return {"webhooks_endpoints": subject.query(
        "SELECT id, url, description, events, enabled, device_id, disabled_reason, failing_since, created_at, "
        "updated_at FROM webhook_endpoints ORDER BY id")}
