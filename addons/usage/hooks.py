"""Usage addon hooks: wiring only (figures in service.py, API counts in recorder.py)."""

from __future__ import annotations

import logging

from core.addons import hookimpl
from core.db import tenant_transaction
from core.i18n import N_
from core.web.menu import INSIGHTS, MenuItem

from . import api, overview, pages, service, statistics
from .recorder import recorder

log = logging.getLogger(__name__)
_platform = None
_flusher = None


@hookimpl
def smsgw_configure(platform):
    global _platform
    _platform = platform


@hookimpl
def smsgw_models():
    return service.MODELS


@hookimpl
def smsgw_routes():
    return api.ROUTES + pages.ROUTES + statistics.ROUTES


@hookimpl
def smsgw_menu_items():
    return [MenuItem(N_("Usage"), "/usage", api.PERMISSION, 60, INSIGHTS),
            MenuItem(N_("Statistics"), "/overview", statistics.PERMISSION, 31, INSIGHTS)]


@hookimpl
def smsgw_permissions(register):
    register(api.PERMISSION, "See the workspace's usage figures (messages, segments, API calls, sign-ins) and "
                             "download them", ["customer", "admin"], scope=True)


@hookimpl
def smsgw_openapi():
    from . import openapi

    return openapi.fragment()


@hookimpl
def smsgw_template_context(handler):
    if handler.tenant is None:
        return {"admin_links": pages.ADMIN_LINKS}
    return None


@hookimpl
def smsgw_overview_parts(tenant, principal, gettext, params, formats):
    return overview.overview_part(principal, gettext, params, formats)


@hookimpl
def smsgw_request_finished(tenant, handler, elapsed_ms):
    recorder.request_finished(handler, elapsed_ms)


@hookimpl
def smsgw_audit_event(event):
    """Dashboard sign-ins, counted in a transaction of the workspace's own once the sign-in is
    recorded (a crash in between loses that one count; the sign-in history keeps the event)."""
    if event.action != "login.success" or not event.tenant_slug or _platform is None:
        return
    try:
        tenant = _platform.tenant_cache.get(event.tenant_slug)
        if tenant is None or "usage" not in tenant.enabled_addons:
            return
        with tenant_transaction(tenant.ref):
            service.add("signin", service.today(), 1)
    except Exception:  # a figure, not a security record: the sign-in goes ahead
        log.exception("usage: could not count a sign-in of %s", event.tenant_slug)


@hookimpl
def smsgw_startup(app):
    global _flusher
    import tornado.ioloop

    from core.db import run_sync

    seconds = app.platform.settings.usage_flush_seconds
    busy = False

    async def flush():
        nonlocal busy
        if busy:
            return
        busy = True
        try:
            await run_sync(recorder.flush)
        finally:
            busy = False

    _flusher = tornado.ioloop.PeriodicCallback(flush, seconds * 1000)
    _flusher.start()


@hookimpl
def smsgw_shutdown(app):
    global _flusher
    if _flusher is not None:
        _flusher.stop()
        _flusher = None
    recorder.flush()
