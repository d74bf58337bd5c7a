"""``/api/v1/webhooks``: endpoints, secret rotation, test pings, delivery log, redelivery."""

from __future__ import annotations

from core.events import AuditEvent
from core.web.base import ApiHandler
from core.web.params import parse_id
from core.web.problem import Problem

from . import service
from .models import Attempt, Delivery, Endpoint, Event
from .service import WebhookError
from core.i18n import N_


def endpoint_or_404(raw: str) -> Endpoint:
    ep = Endpoint.get_or_none(Endpoint.id == parse_id(raw, "webhook"))
    if ep is None:
        raise Problem(404, "not-found", N_("There is no such webhook here."))
    return ep


def problem(exc: WebhookError) -> Problem:
    return Problem.refused(exc.status, exc.code, exc, errors=exc.errors or None)


def delivery_json(d: Delivery) -> dict:
    return {"id": d.id, "webhook_id": d.event_id, "event": d.event.event, "state": d.state, "attempts": d.attempts,
            "next_attempt_at": d.next_attempt_at.isoformat() if d.state == "pending" else None,
            "last_status": d.last_status, "last_error": d.last_error, "created_at": d.created_at.isoformat(),
            "history": [{"attempt": a.attempt, "trigger": a.trigger, "at": a.at.isoformat(), "status": a.status_code,
                         "duration_ms": a.duration_ms, "error": a.error}
                        for a in Attempt.select().where(Attempt.delivery == d.id).order_by(Attempt.id)]}


class WebhooksAudit:
    def audit(self, action, target=""):
        return AuditEvent(action, self.tenant.id, self.tenant.slug, actor=self.principal.actor,
                          actor_name=self.principal.email or self.principal.name, target=target,
                          ip=self.request.remote_ip or "")


class WebhooksHandler(WebhooksAudit, ApiHandler):
    permissions = {"GET": "webhooks:read", "POST": "webhooks:write"}

    async def get(self):
        rows = await self.in_tenant(lambda: [service.endpoint_json(e) for e in Endpoint.select().order_by(Endpoint.id)])
        self.write_json({"webhooks": rows})

    async def post(self):
        body = self.json_body()
        unknown = sorted(set(body) - {"url", "events", "description", "device_id"})
        if unknown:
            raise Problem(422, "validation-failed", N_("Unknown fields; nothing was saved."),
                          errors=[{"field": k, "message": N_("unknown field")} for k in unknown])
        desc = body.get("description", "")
        if not isinstance(desc, str) or len(desc) > 200:
            raise Problem(422, "validation-failed", N_("description must be at most 200 characters."),
                          errors=[{"field": "description", "message": N_("at most 200 characters")}])
        device_id = body.get("device_id")
        if device_id is not None and (isinstance(device_id, bool) or not isinstance(device_id, int) or device_id < 1):
            raise Problem(422, "validation-failed", N_("device_id must be a device id."),
                          errors=[{"field": "device_id", "message": N_("must be a device id")}])
        checked = await service.check_url(body.get("url"))  # before the transaction: DNS never runs inside one
        try:
            ep, secret = await self.in_tenant(service.create_endpoint, checked, body.get("events"), desc, device_id,
                                              audit=lambda made: self.audit("webhook.created", f"webhook:{made[0].id}"))
        except WebhookError as exc:
            raise problem(exc) from None
        out = await self.in_tenant(lambda: service.endpoint_json(Endpoint.get_by_id(ep.id)))
        out["secret"] = secret  # shown once: store it to verify our signatures
        self.set_header("Cache-Control", "no-store")
        self.write_json(out, 201)


class WebhookHandler(WebhooksAudit, ApiHandler):
    permissions = {"GET": "webhooks:read", "PATCH": "webhooks:write", "DELETE": "webhooks:write"}

    async def get(self, raw):
        self.write_json(await self.in_tenant(lambda: service.endpoint_json(endpoint_or_404(raw))))

    async def patch(self, raw):
        body = self.json_body()
        unknown = sorted(set(body) - {"url", "events", "description", "enabled"})
        if unknown:
            raise Problem(422, "validation-failed", N_("Unknown fields; nothing was changed."),
                          errors=[{"field": k, "message": N_("unknown field")} for k in unknown])
        if "enabled" in body and not isinstance(body["enabled"], bool):
            raise Problem(422, "validation-failed", N_("enabled must be true or false."),
                          errors=[{"field": "enabled", "message": N_("must be true or false")}])
        # A new URL is looked up before the transaction: DNS never runs inside one.
        checked = await service.check_url(body["url"]) if "url" in body else None

        def change():
            ep = endpoint_or_404(raw)
            url = body.get("url", ep.url)
            events = body.get("events", list(ep.events))
            service.validate(url, events, checked if url != ep.url else None)
            fields = {"url": url, "events": sorted(set(events)), "updated_at": service.utcnow()}
            if "description" in body:
                if not isinstance(body["description"], str) or len(body["description"]) > 200:
                    raise WebhookError(N_("description must be at most 200 characters."),
                                       [{"field": "description", "message": N_("at most 200 characters")}])
                fields["description"] = body["description"]
            if "enabled" in body:
                fields["enabled"] = body["enabled"]
                if body["enabled"]:
                    fields.update(disabled_reason=None, failing_since=None)
                    service.arm(service.utcnow())  # its deliveries that waited are due again
            Endpoint.update(**fields).where(Endpoint.id == ep.id).execute()
            return service.endpoint_json(Endpoint.get_by_id(ep.id))

        try:
            out = await self.in_tenant(change, audit=lambda out: self.audit("webhook.updated", f"webhook:{out['id']}"))
        except WebhookError as exc:
            raise problem(exc) from None
        self.write_json(out)

    async def delete(self, raw):
        def remove():
            ep = endpoint_or_404(raw)
            Endpoint.delete().where(Endpoint.id == ep.id).execute()
            return ep.id

        await self.in_tenant(remove, audit=lambda ep_id: self.audit("webhook.deleted", f"webhook:{ep_id}"))
        self.set_status(204)
        self.finish()


class RotateSecretHandler(WebhooksAudit, ApiHandler):
    permissions = {"POST": "webhooks:write"}

    async def post(self, raw):
        secret = await self.in_tenant(lambda: service.rotate_secret(endpoint_or_404(raw)),
                                      audit=self.audit("webhook.secret_rotated", f"webhook:{raw}"))
        self.set_header("Cache-Control", "no-store")
        self.write_json({"secret": secret, "previous_secret_valid_for_hours": int(service.OVERLAP.total_seconds() // 3600)})


class PingHandler(ApiHandler):
    permissions = {"POST": "webhooks:write"}

    async def post(self, raw):
        def ping():
            ep = endpoint_or_404(raw)
            ids = service.record("system:ping", {"message": "Test from your SMS gateway", "webhook": ep.id},
                                 only_endpoint=ep.id)
            return ids[0]

        delivery_id = await self.in_tenant(ping)
        self.write_json({"delivery_id": delivery_id}, 202)


class DeliveriesHandler(ApiHandler):
    permissions = {"GET": "webhooks:read"}

    async def get(self, raw):
        def load():
            ep = endpoint_or_404(raw)
            q = (Delivery.select(Delivery, Event).join(Event).where(Delivery.endpoint == ep.id)
                 .order_by(Delivery.id.desc()).limit(100))
            return [delivery_json(d) for d in q]

        self.write_json({"deliveries": await self.in_tenant(load)})


class RedeliverHandler(WebhooksAudit, ApiHandler):
    permissions = {"POST": "webhooks:write"}

    async def post(self, raw, raw_delivery):
        delivery_id = parse_id(raw_delivery, "delivery")
        try:
            d = await self.in_tenant(service.redeliver, parse_id(raw, "webhook"), delivery_id,
                                     audit=lambda d: self.audit("webhook.redelivered", f"delivery:{d.id}"))
        except WebhookError as exc:
            raise problem(exc) from None
        self.write_json({"delivery_id": d.id, "webhook_id": d.event_id}, 202)


ROUTES = [
    (r"/api/v1/webhooks", WebhooksHandler),
    (r"/api/v1/webhooks/([^/]+)", WebhookHandler),
    (r"/api/v1/webhooks/([^/]+)/rotate-secret", RotateSecretHandler),
    (r"/api/v1/webhooks/([^/]+)/ping", PingHandler),
    (r"/api/v1/webhooks/([^/]+)/deliveries", DeliveriesHandler),
    (r"/api/v1/webhooks/([^/]+)/deliveries/([^/]+)/redeliver", RedeliverHandler),
]
