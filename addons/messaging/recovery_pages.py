"""The dashboard's recovery: Cancel, Retry and Resend of a message; campaigns (one bulk submission
each) with their progress, counts by state, cancel-remaining and retry-failed. The work is done by
:mod:`.recovery`, which the API calls too."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from core import localtime
from core.clock import parse_iso, utcnow
from core.db import app_db
from core.web.base import PageHandler
from core.web.live import answer_version, version_of, wants_version
from core.web.params import is_digits, parse_id
from core.i18n import N_
from core.web.problem import Problem

from addons.devices.models import Device

from . import recovery, states, submit
from .api import get_message, not_cancellable
from .models import Campaign, Recipient


def device_names() -> dict[int, str]:
    return dict(Device.select(Device.id, Device.name).where(Device.removed_at.is_null()).tuples())


def resend_form(raw_id: str) -> dict:
    """The send form filled in from a message (*Resend*): its text, its numbers, its phone."""
    m = get_message(raw_id)
    phones = [p for (p,) in Recipient.select(Recipient.phone).where(Recipient.message == m.id)
              .order_by(Recipient.id).tuples()]
    return {"to": ", ".join(phones), "text": "" if m.redacted_at else m.text,
            "device_id": str(m.device_id) if m.device_id else ""}


def refuse_past(send_at: str | None, _, zone_name: str = "") -> None:
    """A "send at" before the current minute is refused (the form's field has minutes only, so the
    current minute is "now", told in the member's zone ``zone_name``); nothing is stored. The API
    sends such a message at once instead."""
    t = parse_iso(send_at) if send_at else None
    now = utcnow()
    if t is not None and t < now.replace(second=0, microsecond=0):
        zone = localtime.zone_name_or_utc(zone_name)
        message = _("“Send at” is in the past (it is now %(now)s, %(zone)s): leave it empty to send now, or choose "
                    "a later time. Nothing was sent.") % {
            "now": localtime.as_utc(now).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M"), "zone": zone}
        raise Problem(422, "validation-failed", message, errors=[{"field": "", "message": message}])


def accept_from_page(tenant, clean, rejected, batch, source: str, created_by: str, name: str):
    """Inside the tenant transaction: store a send from the dashboard; a bulk one (a CSV file, or
    several numbers) becomes a campaign, whose id the response carries as ``campaign_id``."""
    status, response, keys = submit.accept(tenant, clean, rejected, batch, source=source, created_by=created_by)
    stored = response["messages"] if batch else [response]
    ids = [m["id"] for m in stored if m["id"] is not None]
    if sum(len(m["recipients"]) for m in stored) > 1:
        response = dict(response, campaign_id=recovery.start_campaign(name, source, created_by, ids))
    return status, response, keys


class MessageCancelPage(PageHandler):
    """*Cancel* on a message's page: what is still pending is cancelled, as the API's ``/cancel`` does."""

    permission = "messages:send"

    async def post(self, raw_id):
        _ = self.gettext()[0]
        m = await self.in_tenant(get_message, raw_id)
        if not self.confirmed(_("Cancel the unsent part of message #%(id)s?") % {"id": m.id}, _("Cancel it"),
                              f"/messages/{m.id}", _("Recipients not sent yet will not get it.")):
            return
        tenant, registry = self.tenant, self.platform.registry
        cancelled, recalling, refusals = await self.in_tenant(recovery.cancel, tenant, registry, [m.id], "dashboard")
        if cancelled or recalling:
            self.flash("success", _("Cancelled: %(n)d; asked the phone to give back: %(m)d.")
                       % {"n": cancelled, "m": recalling})
        else:
            state = await self.in_tenant(lambda: message_state_of(m.id))
            refused = not_cancellable(state, refusals)
            self.flash("error", refused.msgid, **refused.detail_args)
        self.redirect(f"/messages/{m.id}")


def message_state_of(message_id: int) -> str:
    from .api import message_state

    return message_state(list(Recipient.select().where(Recipient.message == message_id)))


def chosen_device(handler) -> int | None:
    raw = handler.get_body_argument("device_id", "")
    return int(raw) if is_digits(raw) else None


class MessageRetryPage(PageHandler):
    """*Retry* on a failed message's page, on any phone or on one: a new message to those that failed."""

    permission = "messages:send"

    async def post(self, raw_id):
        tenant, actor, region, device = self.tenant, self.principal.actor, self.tenant.default_region, chosen_device(self)
        try:
            stored, keys = await self.in_tenant(
                lambda: recovery.retry(tenant, get_message(raw_id), device, actor, region))
        except Problem as exc:
            if exc.status == 404:
                raise
            self.flash("error", exc.msgid, **exc.detail_args)
            self.redirect(f"/messages/{parse_id(raw_id, 'message')}")
            return
        self.platform.wake_now(*keys)
        _ = self.gettext()[0]
        self.flash("success", _("Sent again as a new message."))
        self.redirect(f"/messages/{stored[0]['id']}")


# -- campaigns -------------------------------------------------------------------------------------

def counts(campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Each campaign's recipients by state (indexes messages_campaign, recipients_message)."""
    out = {c: dict.fromkeys(states.STATES, 0) for c in campaign_ids}
    if campaign_ids:
        for campaign, state, n in app_db.execute_sql(
                "SELECT m.campaign_id, r.state, count(*) FROM messages m JOIN recipients r ON r.message_id = m.id "
                "WHERE m.campaign_id = ANY (%s) GROUP BY 1, 2", (campaign_ids,)):
            out[campaign][state] = n
    return out


def summary(c: Campaign, by_state: dict[str, int]) -> dict:
    total = sum(by_state.values())
    done = sum(n for s, n in by_state.items() if s in states.TERMINAL)
    return {"id": c.id, "name": c.name, "created_at": c.created_at, "source": c.source, "counts": by_state,
            "total": total, "done": done, "percent": round(100 * done / total) if total else 100}


def campaign_version(campaign_id: int) -> str:
    return version_of(*app_db.execute_sql(
        "SELECT max(r.updated_at), count(*) FROM messages m JOIN recipients r ON r.message_id = m.id "
        "WHERE m.campaign_id = %s", (campaign_id,)).fetchone())


def get_campaign(raw_id: str) -> Campaign:
    c = Campaign.get_or_none(Campaign.id == parse_id(raw_id, "campaign"))
    if c is None:
        raise Problem(404, "not-found", N_("There is no such campaign here."))
    return c


class CampaignsPage(PageHandler):
    permission = "messages:read"

    async def get(self):
        def load():
            rows = list(Campaign.select().order_by(Campaign.id.desc()).limit(50))
            by_state = counts([c.id for c in rows])
            return [summary(c, by_state[c.id]) for c in rows]

        self.render("messaging/campaigns.html", campaigns=await self.in_tenant(load), states=states.STATES)


class CampaignPage(PageHandler):
    permission = "messages:read"

    async def get(self, raw_id):
        if wants_version(self):
            answer_version(self, await self.in_tenant(lambda: campaign_version(get_campaign(raw_id).id)))
            return

        def load():
            c = get_campaign(raw_id)
            return summary(c, counts([c.id])[c.id]), campaign_version(c.id)

        campaign, version = await self.in_tenant(load)
        self.render("messaging/campaign.html", c=campaign, states=states.STATES, live_version=version)


class CampaignCancelPage(PageHandler):
    """Cancel what a campaign has not sent yet."""

    permission = "messages:send"

    async def post(self, raw_id):
        _ = self.gettext()[0]
        c = await self.in_tenant(get_campaign, raw_id)
        if not self.confirmed(_("Cancel the unsent messages of the campaign “%(name)s”?") % {"name": c.name},
                              _("Cancel the rest"), f"/campaigns/{c.id}",
                              _("Recipients not sent yet will not get it.")):
            return
        tenant, registry = self.tenant, self.platform.registry

        def cancel():
            ids = [m.id for m in recovery.campaign_messages(c.id)]
            return recovery.cancel(tenant, registry, ids, "dashboard")

        cancelled, recalling, _refusals = await self.in_tenant(cancel)
        self.flash("success", _("Cancelled: %(n)d; asked the phone to give back: %(m)d.")
                   % {"n": cancelled, "m": recalling})
        self.redirect(f"/campaigns/{c.id}")


class CampaignRetryPage(PageHandler):
    """Send again what failed in a campaign (new messages in the same campaign)."""

    permission = "messages:send"

    async def post(self, raw_id):
        tenant, actor, region, device = self.tenant, self.principal.actor, self.tenant.default_region, chosen_device(self)
        c = await self.in_tenant(get_campaign, raw_id)
        try:
            stored, keys = await self.in_tenant(
                lambda: recovery.retry_many(tenant, recovery.campaign_messages(c.id), device, actor, region))
        except Problem as exc:
            self.flash("error", exc.msgid, **exc.detail_args)
        else:
            self.platform.wake_now(*keys)
            _ = self.gettext()[0]
            self.flash("success", _("Sent again: %(n)d messages.") % {"n": len(stored)})
        self.redirect(f"/campaigns/{c.id}")


ROUTES = [
    (r"/messages/([0-9]{1,18})/cancel", MessageCancelPage),
    (r"/messages/([0-9]{1,18})/retry", MessageRetryPage),
    (r"/campaigns", CampaignsPage),
    (r"/campaigns/([0-9]{1,18})", CampaignPage),
    (r"/campaigns/([0-9]{1,18})/cancel", CampaignCancelPage),
    (r"/campaigns/([0-9]{1,18})/retry", CampaignRetryPage),
]
