"""Messaging addon hooks: the devices addon's work source, reports and inbound; API; tasks; menu."""


from core.addons import hookimpl
from core.db import app_db
from core.i18n import N_
from core.web.menu import SETTINGS, MenuItem

from . import api, dispatch, export, inbound, lifecycle, pages, recovery_pages, runtime
from . import reports as report_handling
from .models import MODELS



@hookimpl
def smsgw_configure(platform):
    runtime.set_platform(platform)


@hookimpl
def smsgw_models():
    return MODELS


@hookimpl
def smsgw_routes():
    return api.ROUTES + pages.ROUTES + recovery_pages.ROUTES + export.ROUTES


@hookimpl
def smsgw_menu_items():
    return [MenuItem(N_("Messages"), "/messages", "messages:read", 10),
            MenuItem(N_("Send"), "/send", "messages:send", 11),
            MenuItem(N_("Inbox"), "/inbox", "messages:read", 12),
            MenuItem(N_("Campaigns"), "/campaigns", "messages:read", 21),
            MenuItem(N_("Opt-outs"), "/suppressions", "messages:read", 30, SETTINGS)]


# -- the devices addon's hooks ------------------------------------------------

@hookimpl
def smsgw_device_claim(tenant, device, limit):
    return dispatch.claim(tenant, device, limit)


@hookimpl
def smsgw_device_held(tenant, device_id, ids):
    return dispatch.held(device_id, ids)


@hookimpl
def smsgw_device_reports(tenant, batches):
    return report_handling.apply(tenant, batches)


@hookimpl
def smsgw_device_inbound(tenant, device, message):
    inbound.on_inbound(tenant, device, message)


@hookimpl
def smsgw_device_unclaim(tenant, device_id, ids):
    lifecycle.unclaim(tenant, device_id, ids)


@hookimpl
def smsgw_device_offline(tenant, device):
    lifecycle.hand_back(tenant, device_id=device.id)


@hookimpl
def smsgw_device_waiting_reasons(tenant):
    return dispatch.waiting_reasons()


@hookimpl
def smsgw_device_waiting_work(tenant):
    return dispatch.waiting_work()


@hookimpl
def smsgw_overview_parts(tenant, principal, gettext):
    return pages.overview_part(principal, gettext)


@hookimpl
def smsgw_device_counts(tenant):
    rows = app_db.execute_sql(
        "SELECT device_id, count(*) FROM recipients WHERE sent_at >= date_trunc('day', now()) "
        "AND device_id IS NOT NULL GROUP BY device_id").fetchall()
    return {device_id: {"sent_today": n} for device_id, n in rows}


# -- tasks -----------------------------------------------------------------------

def sweep_job(tenant):
    """The due job: whatever of the workspace's timed work came due (inside its transaction)."""
    return lifecycle.sweep(tenant)


@hookimpl
def smsgw_worker_standin(tenant, since, until):
    # The worker is late: scheduled messages that came due must still wake their phones on time.
    return lifecycle.release_window(tenant, since, until)


@hookimpl
def smsgw_tasks(queue):
    runtime.set_platform(queue.platform)
    # Scheduled sends, expiries and lapsed claims: run when the workspace's earliest one is due.
    queue.due_job(lifecycle.JOB, sweep_job, lifecycle.next_due)


@hookimpl
def smsgw_openapi():
    from . import openapi

    return openapi.fragment()


# -- what the messaging addon registers with the kernel ------------------------

@hookimpl
def smsgw_permissions(register):
    # Sending reaches third parties: not before a self-service workspace's owner confirmed their address.
    register("messages:send", "Send SMS and cancel unsent ones", ["customer", "user"], scope=True,
             default_scope=True, verified_only=True)
    register("messages:read", "See sent and received messages, opt-outs and statistics",
             ["customer", "user", "admin"], scope=True, default_scope=True)


# -- privacy: what a data export adds to the declared tables (messages, recipients) --------------

@hookimpl(optionalhook=True)  # offered by the privacy addon, which may not be installed
def smsgw_privacy_export(tenant, subject):
    """Each recipient's state history (``recipient_events`` is declared without personal data, but
    it is the history of the messages the export holds): all of it, or that of the member's messages."""
    columns = "e.recipient_id, e.at, e.from_state, e.to_state, e.source, e.device_id, e.error_code, e.reported_at"
    if subject.kind == "workspace":
        return {"messaging_recipient_history": subject.query(f"SELECT {columns} FROM recipient_events e ORDER BY e.id")}
    return {"messaging_recipient_history": subject.query(
        f"SELECT {columns} FROM recipient_events e JOIN recipients r ON r.id = e.recipient_id "
        "JOIN messages m ON m.id = r.message_id WHERE m.created_by = ANY (%s) ORDER BY e.id", (subject.actors,))}
