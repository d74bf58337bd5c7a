"""Billing addon hooks: each feature module contributes what it has; this module only collects.

A feature module may define any of: ``configure(platform)``, ``MODELS`` (declarations for
``smsgw_models``), ``ROUTES``, ``tasks(queue)``, ``permissions(register)``, ``MENU`` (menu items),
``openapi()`` (a fragment), ``ADMIN_SECTIONS`` (a dict), ``template_context(handler)`` (a dict
merged into every page's context) and ``cli(subparsers)`` (``smsgw`` commands).
Hooks that a feature implements beyond these are named apart with ``specname`` below.
"""

import logging

from core.addons import hookimpl

from . import plans, subscriptions
from . import billing_page, plans_admin, plans_cli, pricing  # Billing, Pricing, admin pages, `smsgw plans`
from . import accounts, dunning, invoice_pages, invoicing, payments, stripe_provider, tax  # invoices, payments
from . import metering, quotas  # exact usage per period, limits answered where work is asked for

FEATURES: tuple = (plans, subscriptions)
FEATURES += (billing_page, pricing, plans_admin, plans_cli)
FEATURES += (accounts, tax, invoicing, payments, stripe_provider, dunning, invoice_pages)
FEATURES += (metering, quotas)

log = logging.getLogger(__name__)


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
    from core.openapi import merge_fragment  # the kernel's own merge: it refuses what would overwrite

    merged: dict = {"paths": {}, "components": {}, "tags": [], "webhooks": {}}
    for openapi in _each("openapi"):
        merge_fragment(merged, "billing", openapi() or {})
    return {key: value for key, value in merged.items() if value} or None


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


@hookimpl
def smsgw_cli(subparsers):
    for cli in _each("cli"):
        cli(subparsers)


# -- subscriptions (A): one per workspace, the plan picked at sign-up, cancelled at erasure ---------

@hookimpl(specname="smsgw_tenant_created")
def subscriptions_tenant_created(tenant):
    try:
        subscriptions.create_for(tenant)
    except Exception:  # the workspace exists: its Billing page subscribes it to the default plan later
        log.exception("could not subscribe the new workspace %s to the default plan", tenant.slug)


@hookimpl(specname="smsgw_tenant_deleted")
def subscriptions_tenant_deleted(tenant):
    """The workspace was erased (or deleted otherwise): its subscription ends now, nothing more is charged."""
    subscriptions.cancel_now(tenant.id, "the workspace was deleted", tenant=tenant)


@hookimpl(specname="smsgw_signup_check")
def pricing_signup_check(handler):
    return pricing.signup_check(handler)


@hookimpl(specname="smsgw_signed_up")
def pricing_signed_up(handler, tenant):
    pricing.signed_up(handler, tenant)

# -- payments: the providers this addon ships (resellers' addons add theirs) ----------------------

@hookimpl(specname="smsgw_billing_payment_providers")
def payment_providers():
    return [payments.ManualProvider(), stripe_provider.StripeProvider()]


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


@hookimpl(specname="smsgw_overview_parts")
def quotas_overview_parts(tenant, principal, gettext):
    return quotas.overview_part(tenant, principal, gettext)


@hookimpl(specname="smsgw_startup")
def quotas_startup(app):
    quotas.startup(app)
