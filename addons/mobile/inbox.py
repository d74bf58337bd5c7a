"""Received SMS sent again by an app phone: ``POST /api/v1/devices/{id}/inbox-refresh`` and the
Connect page's form (the app's ``MessagesExportRequested``).

The app posts what it received in the window to our ingest URL, where a message already stored is
not stored twice: a Customer who suspects inbound SMS went missing (the phone had no data, the
server was down) asks for them again and gets only the ones that were missing.
"""

from __future__ import annotations

from core.clock import parse_iso
from core.events import AuditEvent
from core.web.base import ApiHandler

from addons.devices.api import device_id_or_404

from . import service


def request_event(handler, device_id: int, row) -> AuditEvent:
    return AuditEvent("device.inbox_refresh_requested", handler.tenant.id, handler.tenant.slug,
                      actor=handler.principal.actor, actor_name=handler.principal.email or handler.principal.name,
                      target=f"device:{device_id}", ip=handler.request.remote_ip or "",
                      details={"since": row.since.isoformat(), "until": row.until.isoformat()})


def answer(row) -> dict:
    return {"id": row.id, "device_id": row.device_id, "since": row.since.isoformat(),
            "until": row.until.isoformat(), "requested_at": row.requested_at.isoformat()}


async def ask(handler, device_id: int, since_text, until_text):
    """Record the request and wake the phone's stream (shared by the API and the page)."""
    since, until = parse_iso(since_text), parse_iso(until_text)
    platform, tenant, actor = handler.platform, handler.tenant, handler.principal.actor
    return await handler.in_tenant(service.request_export, platform, tenant, device_id, since, until, actor,
                                   audit=lambda row: request_event(handler, device_id, row))


class InboxRefreshHandler(ApiHandler):
    permissions = {"POST": "devices:write"}

    async def post(self, raw_id):
        device_id = device_id_or_404(raw_id)
        body = self.json_body()
        row = await ask(self, device_id, body.get("since"), body.get("until"))
        self.write_json(answer(row), 202)


ROUTES = [(r"/api/v1/devices/([^/]+)/inbox-refresh", InboxRefreshHandler)]
