"""Abuse addon hooks (wiring only; the logic is in signals, service and rules)."""

from core.addons import hookimpl

from . import rules, runtime, service, signals

OUTCOMES = ("sent", "delivered", "failed")


@hookimpl
def smsgw_configure(platform):
    runtime.set_platform(platform)


@hookimpl
def smsgw_startup(app):
    if app.platform.listener is not None:
        app.platform.listener.subscribe(rules.CHANNEL, rules.forget)


@hookimpl
def smsgw_tasks(queue):
    runtime.set_platform(queue.platform)
    if getattr(queue.platform, "listener", None) is not None:
        queue.platform.listener.subscribe(rules.CHANNEL, rules.forget)


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
        rule = rules.book().rule(tenant.id, "token_ips")
        if rule.action != "off":
            signals.note_request(tenant.id, principal.actor, handler.request.remote_ip or "", rule)


@hookimpl
def smsgw_tenant_deleted(tenant):
    signals.forget(tenant.id)
