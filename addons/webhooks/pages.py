"""The Webhooks dashboard page: endpoints, test button, delivery log with redelivery."""

from __future__ import annotations

from core import localtime
from core.db import app_db
from core.web.base import PageHandler
from core.web.overview import Attention, FirstStep, OverviewPart
from core.web.params import parse_id
from core.web.problem import Problem

from . import service
from .api import delivery_json, endpoint_or_404, problem
from .models import Delivery, Endpoint, Event
from .service import EVENTS, WebhookError
from core.i18n import N_


class WebhooksPage(PageHandler):
    permissions = {"GET": "webhooks:read", "POST": "webhooks:write"}

    async def get(self):
        rows = await self.in_tenant(lambda: [service.endpoint_json(e) for e in Endpoint.select().order_by(Endpoint.id)])
        self.render("webhooks/list.html", endpoints=rows, events=EVENTS, errors=[], new_secret=None)

    async def post(self):
        action = self.get_body_argument("action", "create")
        new_secret, errors = None, []
        if action == "create":
            checked = await service.check_url(self.get_body_argument("url", ""))  # DNS before the transaction
            try:
                _, new_secret = await self.in_tenant(service.create_endpoint, checked,
                                                     self.get_body_arguments("events"),
                                                     self.get_body_argument("description", ""))
            except WebhookError as exc:
                errors = exc.errors
        else:
            raw = self.get_body_argument("endpoint_id", "")
            if action == "delete":
                url = await self.in_tenant(lambda: endpoint_or_404(raw).url)
                _ = self.gettext()[0]
                if not self.confirmed(_("Delete the webhook to %(url)s?") % {"url": url}, _("Delete webhook"),
                                      "/webhooks", _("Events are no longer sent there. This cannot be undone.")):
                    return

            def act():
                ep = endpoint_or_404(raw)
                if action == "ping":
                    service.record("system:ping", {"message": "Test from your SMS gateway", "webhook": ep.id},
                                   only_endpoint=ep.id)
                elif action == "rotate":
                    return service.rotate_secret(ep)
                elif action in ("enable", "disable"):
                    Endpoint.update(enabled=action == "enable", disabled_reason=None, failing_since=None).where(
                        Endpoint.id == ep.id).execute()
                elif action == "delete":
                    Endpoint.delete().where(Endpoint.id == ep.id).execute()
                else:
                    raise Problem(400, "invalid-action", N_("Unknown action."))
                return None

            new_secret = await self.in_tenant(act)
        if errors or new_secret:
            rows = await self.in_tenant(lambda: [service.endpoint_json(e) for e in Endpoint.select().order_by(Endpoint.id)])
            if errors:
                self.set_status(422)
            self.set_header("Cache-Control", "no-store")
            self.render("webhooks/list.html", endpoints=rows, events=EVENTS, errors=errors, new_secret=new_secret)
            return
        self.flash("success", N_("Saved."))
        self.redirect("/webhooks")


class DeliveriesPage(PageHandler):
    permissions = {"GET": "webhooks:read", "POST": "webhooks:write"}

    async def get(self, raw):
        def load():
            ep = endpoint_or_404(raw)
            q = (Delivery.select(Delivery, Event).join(Event).where(Delivery.endpoint == ep.id)
                 .order_by(Delivery.id.desc()).limit(100))
            return service.endpoint_json(ep), [delivery_json(d) for d in q]

        ep, deliveries = await self.in_tenant(load)
        self.render("webhooks/deliveries.html", ep=ep, deliveries=deliveries)

    async def post(self, raw):
        delivery_id = parse_id(self.get_body_argument("delivery_id", ""), "delivery")
        try:
            await self.in_tenant(service.redeliver, parse_id(raw, "webhook"), delivery_id)
        except WebhookError as exc:
            raise problem(exc) from None
        self.flash("success", N_("Queued for redelivery with the same webhook-id."))
        self.redirect(f"/webhooks/{raw}/deliveries")


def overview_part(principal, gettext):
    """The Overview: endpoints that fail or were switched off for failing, and the first step
    "add a webhook" (one statement over the small endpoints table)."""
    if not principal.can("webhooks:read"):
        return None
    rows = app_db.execute_sql("SELECT id, url, enabled, disabled_reason, failing_since FROM webhook_endpoints "
                              "ORDER BY id").fetchall()
    attention = []
    for _id, url, enabled, disabled_reason, failing_since in rows:
        if not enabled and disabled_reason:
            attention.append(Attention(gettext("Webhook %(url)s was switched off after failing deliveries.")
                                       % {"url": url[:80]}, "/webhooks", "error"))
        elif enabled and failing_since is not None:
            attention.append(Attention(gettext("Webhook %(url)s has been failing since %(time)s.")
                                       % {"url": url[:80], "time": localtime.local_text(failing_since,
                                                                                        principal.time_zone)},
                                       "/webhooks"))
    steps = [FirstStep("webhook", gettext("Add a webhook"), bool(rows), "/webhooks", 40)]
    return OverviewPart(attention=attention, steps=steps)


ROUTES = [(r"/webhooks", WebhooksPage), (r"/webhooks/([0-9]{1,18})/deliveries", DeliveriesPage)]
