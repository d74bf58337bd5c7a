"""Abuse addon hooks (wiring only; the logic is in signals, service, rules and pages)."""

import logging

from core.addons import hookimpl
from core.i18n import N_
from core.web.menu import SETTINGS, MenuItem

from . import access, mail, pages, rules, runtime, sandbox, service, signals, tokens

log = logging.getLogger(__name__)
OUTCOMES = ("sent", "delivered", "failed")


@hookimpl
def smsgw_configure(platform):
    runtime.set_platform(platform)


@hookimpl
def smsgw_startup(app):
    if app.platform.listener is not None:
        app.platform.listener.subscribe(rules.CHANNEL, rules.forget)
        app.platform.listener.subscribe(tokens.CHANNEL, tokens.on_notify)


@hookimpl
def smsgw_tasks(queue):
    runtime.set_platform(queue.platform)
    if getattr(queue.platform, "listener", None) is not None:
        queue.platform.listener.subscribe(rules.CHANNEL, rules.forget)
    platform = queue.platform
    queue.due_job(mail.JOB, lambda tenant: mail.run(platform, tenant), mail.next_due)


@hookimpl
def smsgw_models():
    from .models import MODELS

    return MODELS


@hookimpl
def smsgw_routes():
    return pages.ROUTES


@hookimpl
def smsgw_permissions(register):
    pages.permissions(register)


@hookimpl
def smsgw_menu_items():
    return [MenuItem(N_("Security"), "/security", pages.READ, 78, SETTINGS)]


@hookimpl
def smsgw_template_context(handler):
    if handler.tenant is None:
        return {"admin_links": pages.ADMIN_LINKS}
    try:
        return pages.notice_context(handler)
    except Exception:  # a database hiccup must not take every page down with it
        log.exception("abuse: could not compute the alerts banner")
        return None


# -- the messaging addon's hooks ----------------------------------------------------------------

@hookimpl
def smsgw_messages_submitting(tenant, segments, recipients):
    return sandbox.check(tenant, segments, recipients)


@hookimpl
def smsgw_messages_screening(tenant, messages):
    return service.screen(tenant, messages) or None


@hookimpl
def smsgw_message_events(tenant, events):
    if any(event in OUTCOMES for event, _ in events):
        service.on_outcomes(tenant, events)


@hookimpl
def smsgw_request_finished(tenant, handler, elapsed_ms):
    principal = getattr(handler, "principal", None)
    if principal is not None and principal.via == "api_token":
        tokens.on_request(tenant, principal, handler.request.remote_ip or "", rules.peek())


@hookimpl
def smsgw_audit_event(event):
    try:
        access.on_audit_event(event)
    except Exception:  # monitoring must never make a sign-in fail
        log.exception("abuse: could not check the %s event", event.action)


@hookimpl
def smsgw_tenant_deleted(tenant):
    signals.forget(tenant.id)


@hookimpl
def smsgw_openapi():
    from . import openapi

    return openapi.fragment()
