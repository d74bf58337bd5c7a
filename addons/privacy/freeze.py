"""Privacy: the Customer's "freeze sending" switch (issue 15, item 5).

A Customer pauses all sending of the workspace with a reason (a complaint being checked, a
suspected misuse, a data-protection question) and resumes it later. It is the same mechanism a
scheduled deletion uses: a field of the catalogue (``public.tenant.sending_paused_at`` / ``_reason``)
that the cached tenant info carries as ``sending_paused``; the messaging addon refuses new sends
(409 ``sending-paused``, saying why and what to do) and hands no queued message to a phone while it
is set. Queued messages wait; after resuming, phones take them at their next poll.
"""

from __future__ import annotations

from core.catalogue import Tenant
from core.db import connection
from core.events import emit
from core.web.auth_pages import audit

from . import requests
from .page import MANAGE, Section

MAX_REASON = 500


def _paused_by_customer(tenant_id: int):
    with connection():
        t = Tenant.get_by_id(tenant_id)
        return t.sending_paused_at, t.sending_paused_reason


async def load(handler) -> dict | None:
    if not handler.principal.can(MANAGE):
        return None
    since, reason = await handler.run_db(_paused_by_customer, handler.tenant.id)
    return {"since": since, "reason": reason, "deletion": handler.tenant.deletion_scheduled_at}


async def post(handler) -> dict | None:
    _ = handler.gettext()[0]
    action = handler.get_body_argument("action", "")
    platform, tenant, principal = handler.platform, handler.tenant, handler.principal
    since, _reason = await handler.run_db(_paused_by_customer, tenant.id)
    if action == "freeze":
        reason = " ".join(handler.get_body_argument("reason", "").split())
        if not 3 <= len(reason) <= MAX_REASON:
            return {"reason": _("Say why you pause sending (3 to %(n)d characters).") % {"n": MAX_REASON}}
        if since is not None:
            return {"reason": _("Sending is already paused.")}

        def pause():
            platform.tenants.pause_sending(tenant.slug, reason)
            with connection():
                requests.set_state(requests.open_request(
                    "restriction", "tenant", tenant=tenant, requested_by=principal.actor, self_service=True,
                    details={"processing": "sending", "reason": reason}), "done", "sending paused")
            emit(platform, audit(handler, "sending.paused", actor=principal.actor, actor_name=principal.email,
                                 target=f"tenant:{tenant.slug}", reason=reason))

        await handler.run_db(pause)
        handler.flash("success", _("Sending is paused: new messages are refused and queued ones wait."))
        return None
    if action == "unfreeze":
        if since is None:
            return None

        def resume():
            platform.tenants.pause_sending(tenant.slug, None)
            emit(platform, audit(handler, "sending.resumed", actor=principal.actor, actor_name=principal.email,
                                 target=f"tenant:{tenant.slug}"))

        await handler.run_db(resume)
        handler.flash("success", _("Sending is resumed: phones take the queued messages at their next poll."))
        return None
    return {"reason": _("Unknown action; reload the page and try again.")}


SECTION = Section("freeze-sending", 70, "privacy/erasure_freeze.html", load, post)
