"""Billing addon hooks: each feature module contributes what it has; this module only collects.

A feature module may define any of: ``configure(platform)``, ``MODELS`` (declarations for
``smsgw_models``), ``ROUTES``, ``tasks(queue)``, ``permissions(register)``, ``MENU`` (menu items),
``openapi()`` (a fragment), ``ADMIN_SECTIONS`` (a dict), ``template_context(handler)`` (a dict
merged into every page's context) and ``cli(group)`` (commands).
Hooks that a feature implements beyond these are named apart with ``specname`` below.
"""

from core.addons import hookimpl

from . import plans, subscriptions
from . import metering, quotas

FEATURES: tuple = (plans, subscriptions)
FEATURES += (metering, quotas)


def _each(attr: str):
    for feature in FEATURES:
        value = getattr(feature, attr, None)
        if value:
            yield value


@hookimpl
def smsgw_configure(platform):
    for configure in _each("configure"):
        configure(platform)


@hookimpl
def smsgw_models():
    return [model for models in _each("MODELS") for model in models]


@hookimpl
def smsgw_routes():
    return [route for routes in _each("ROUTES") for route in routes]


@hookimpl
def smsgw_tasks(queue):
    for tasks in _each("tasks"):
        tasks(queue)


@hookimpl
def smsgw_permissions(register):
    for permissions in _each("permissions"):
        permissions(register)


@hookimpl
def smsgw_menu_items():
    return [item for items in _each("MENU") for item in items]


@hookimpl
def smsgw_openapi():
    merged: dict = {"paths": {}, "components": {"schemas": {}}, "tags": []}
    for openapi in _each("openapi"):
        fragment = openapi() or {}
        merged["paths"].update(fragment.get("paths", {}))
        for kind, entries in fragment.get("components", {}).items():
            merged["components"].setdefault(kind, {}).update(entries)
        merged["tags"] += fragment.get("tags", [])
    return merged if merged["paths"] else None


@hookimpl
def smsgw_admin_sections():
    return {name: section for sections in _each("ADMIN_SECTIONS") for name, section in sections.items()} or None


@hookimpl
def smsgw_template_context(handler):
    merged: dict = {}
    for context in _each("template_context"):
        for key, value in (context(handler) or {}).items():
            if isinstance(value, list):
                merged[key] = merged.get(key, []) + value
            else:
                merged[key] = value
    return merged or None


# -- quotas (quotas.py): hooks of their own ---------------------------------------------------------

@hookimpl(specname="smsgw_messages_submitting")
def quotas_messages_submitting(tenant, segments):
    return quotas.messages_submitting(tenant, segments)


@hookimpl(specname="smsgw_limit_check")
def quotas_limit_check(tenant, resource, current):
    return quotas.limit_check(tenant, resource, current)


@hookimpl(specname="smsgw_request_check")
def quotas_request_check(tenant, handler):
    quotas.request_check(tenant, handler)


@hookimpl(specname="smsgw_startup")
def quotas_startup(app):
    quotas.startup(app)
