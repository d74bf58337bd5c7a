"""Cookies addon hooks: wiring only (the logic lives in :mod:`.consent` and :mod:`.analytics`)."""

from core.addons import hookimpl

from . import analytics, consent


@hookimpl
def smsgw_models():
    return consent.MODELS + analytics.MODELS


@hookimpl
def smsgw_routes():
    return consent.ROUTES + analytics.ROUTES


@hookimpl
def smsgw_tasks(queue):
    analytics.tasks(queue)


@hookimpl
def smsgw_template_context(handler):
    ctx = {}
    if handler.tenant is None:
        ctx["admin_links"] = analytics.ADMIN_LINKS
    if handler.tenant is not None and consent.ADDON not in handler.tenant.enabled_addons:
        return ctx  # a workspace that switched the addon off has no consent endpoint to post to
    banner, chosen = consent.banner_context(handler)
    ctx.update(banner)
    if chosen is not None and chosen.choice == "analytics":
        if analytics.counted(handler):
            analytics.page_view(handler)
    else:
        analytics.clear_cookie(handler)  # withdrawn, never given, or given for an older policy
    return ctx


@hookimpl
def smsgw_signed_up(handler, tenant):
    analytics.signed_up(handler)
