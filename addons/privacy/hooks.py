"""Privacy addon hooks: each feature module contributes what it has; this module only collects.

A feature module may define any of: ``configure(platform)``, ``MODELS`` (declarations for
``smsgw_models``), ``ROUTES``, ``tasks(queue)``, ``permissions(register)``, ``MENU`` (menu items),
``openapi()`` (a fragment), ``ADMIN_SECTIONS`` (a dict), and ``SECTION`` (a
:class:`~addons.privacy.page.Section` of the *Account → Privacy* page).
"""

from core.addons import hookimpl

from . import erasure, exports, page, policy, queue, rectification, requests, restriction, retention
from . import account_deletion, freeze  # erasure: a member's own account; item 5's "freeze sending"
from . import signins  # issue 16 item 4: sign-in history on Account -> Security

FEATURES = (retention, exports, erasure, rectification, restriction, requests, policy)
FEATURES += (queue,)  # requests, handled: admin queue, contact form, the workspace's list and API
FEATURES += (account_deletion, freeze)
FEATURES += (signins,)


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
    return page.ROUTES + [route for routes in _each("ROUTES") for route in routes]


@hookimpl
def smsgw_tasks(queue):
    for tasks in _each("tasks"):
        tasks(queue)


@hookimpl
def smsgw_permissions(register):
    page.permissions(register)
    for permissions in _each("permissions"):
        permissions(register)


@hookimpl
def smsgw_menu_items():
    return page.MENU + [item for items in _each("MENU") for item in items]


@hookimpl
def smsgw_openapi():
    from core.openapi import merge_fragment  # the kernel's own merge: it refuses what would overwrite

    merged: dict = {"paths": {}, "components": {}, "tags": [], "webhooks": {}}
    for openapi in _each("openapi"):
        merge_fragment(merged, "privacy", openapi() or {})
    return {key: value for key, value in merged.items() if value} or None


@hookimpl
def smsgw_admin_sections():
    return {name: section for sections in _each("ADMIN_SECTIONS") for name, section in sections.items()} or None


# -- restriction, requests, policy (items 5-7 of issue 15) ---------------------------------------
# Named apart (specname) so that other features' implementations of the same hooks can sit here too.

@hookimpl(specname="smsgw_mail_suppressed")
def restriction_mail_suppressed(to, category):
    from core.db import connection

    if category == "service":
        return None
    with connection():
        return restriction.mail_suppressed(to, category)


@hookimpl(specname="smsgw_template_context")
def policy_template_context(handler):
    ctx = policy.template_context(handler)
    if handler.tenant is None:
        ctx["admin_links"] = queue.ADMIN_LINKS
    # erasure: the notice on every page of a workspace waiting for deletion or paused
    found = erasure.notices(handler)
    if found:
        ctx["page_notices"] = ctx.get("page_notices", []) + ["privacy/erasure_notice.html"]
        ctx["erasure_notices"] = found
    return ctx


@hookimpl(specname="smsgw_signup_check")
def policy_signup_check(handler):
    return policy.signup_check(handler)


@hookimpl(specname="smsgw_signed_up")
def policy_signed_up(handler, tenant):
    policy.signed_up(handler, tenant)


# -- retention: a message that ends or an SMS that arrives arms the removal of its text ----------

@hookimpl
def smsgw_message_events(tenant, events):
    retention.on_message_events(tenant, events)


# -- sign-ins: each sign-in goes into the member's history; the account pages link Security -------

@hookimpl(specname="smsgw_audit_event")
def signins_audit_event(event):
    signins.on_audit_event(event)


@hookimpl(specname="smsgw_template_context")
def signins_template_context(handler):
    return signins.template_context(handler)
