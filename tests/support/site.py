"""A workspace with something on every page: the data the page-by-page tests look at."""

from __future__ import annotations

import pytest

from core.db import connection
from tests.support.devices import device_client, phone, raw_device
from tests.support.identity import OWNER_PASSWORD, add_user
from tests.support.phones import api_client
from tests.support.quotas import make_plan, subscribe


def populated_workspace(server, slug: str, name: str, admin_password: str, *, phone_name: str, sent_text: str,
                        received_text: str) -> dict:
    """Create workspace ``slug`` with a phone, a message sent and one received, a webhook, a member,
    a contact, a group and a template, a campaign, a plan, an invoice and a privacy request, and a
    platform admin. Returns the ``tenant``, the
    ``admin`` and the ``fields`` the page addresses need (``{message}``, ``{device}`` …)."""
    from addons.billing import invoicing
    from addons.billing.invoicing import Line
    from addons.privacy.requests import open_request
    from core.admins import create_admin

    platform = server.platform
    tenant = platform.tenants.create(slug, name, f"owner@{slug}.example", OWNER_PASSWORD)
    api = api_client(server, slug)
    device_id, device_token = raw_device(server, slug, api, uid=f"{slug}-phone", name=phone_name)
    device = device_client(server, slug, device_token)
    sent = api.post("/api/v1/messages", json={"text": sent_text, "to": [phone(1), phone(2)]})
    assert sent.status_code == 202, sent.text
    assert device.post("/api/device/v1/inbound", json={"messages": [
        {"id": "in-1", "from": phone(3), "body": received_text, "received_at": "2026-01-01T10:00:00Z"}]}
    ).status_code == 200
    with pytest.MonkeyPatch.context() as env:  # a loopback endpoint nobody listens on: never called here
        env.setenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", "1")
        hook = api.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/sms", "events": ["sms:received"]})
    assert hook.status_code == 201, hook.text
    add_user(platform, tenant, f"member@{slug}.example")
    from addons.contacts import service as contacts
    from addons.messaging.recovery import start_campaign
    from core.db import tenant_transaction

    with tenant_transaction(tenant.ref):  # a named recipient, a group for the send form, a template, a campaign
        regulars = contacts.create_group("Regulars")
        contact = contacts.save_contact("US", "Ann Example", phone(1), ["vip"], [regulars.id])
        template = contacts.save_template("Pick-up", "Hello {first_name}, your order is ready.")
        campaign = start_campaign("Spring sale", "dashboard", "owner", [sent.json()["id"]])
    subscribe(platform, tenant, make_plan(platform))
    with connection():
        invoice = invoicing.issue(tenant.id, [Line("Pro plan", 1, 4900)], reason="renewal", currency="EUR")
        request_id = open_request("export", f"owner@{slug}.example", tenant=tenant, requested_by="owner")
    admin = create_admin(platform, f"ops-{slug}@platform.example", admin_password, "Ops")
    fields = {"slug": slug, "message": sent.json()["id"], "sender": phone(3).replace("+", "%2B"),
              "device": device_id, "webhook": hook.json()["id"], "invoice": invoice.id, "request": request_id,
              "campaign": campaign, "contact": contact.id, "template": template.id}
    return {"tenant": tenant, "admin": admin, "fields": fields}


def send_every_mail(platform, tenant, fields: dict, owner_client, language: str = "") -> None:
    """Have the platform write, once, each mail it writes to a member of ``tenant`` (a workspace made
    by :func:`populated_workspace`; ``owner_client`` is its owner's signed-in client): confirmation,
    password reset, the list of workspaces (in ``language``), address change, invitation, webhook
    failure, privacy answer, phone alerts and their end."""
    from addons.devices.health import DeviceAlert, notice_run
    from addons.privacy.queue import tell_requester
    from addons.webhooks.runtime import send_notices
    from core.clock import utcnow
    from core.db import current_tenant, tenant_transaction
    from core.users import User
    from core.web.account_pages import send_email_change_mails
    from core.web.auth_pages import mail_workspaces, send_reset_mail, send_verification
    from tests.support.identity import owner_email, post_form

    slug = tenant.slug
    owner = owner_email(tenant)
    with tenant_transaction(tenant.ref):
        user = User.by_email(owner)
    send_verification(platform, tenant, user_id=user.id)
    token = current_tenant.set(tenant.ref)
    try:
        send_reset_mail(platform, owner)
    finally:
        current_tenant.reset(token)
    mail_workspaces(platform, owner, language)
    send_email_change_mails(platform, tenant, user, {"email": f"new@{slug}.example", "old": owner,
                                                     "confirm": "c", "undo": "u"})
    r = post_form(owner_client, "/team", {"action": "invite", "email": f"invited@{slug}.example", "role": "user"},
                  allow_redirects=False)
    assert r.status_code == 302, r.text[:300]
    send_notices([(owner, "", slug, "http://127.0.0.1:9/sms", "HTTP 410")])
    tell_requester({"id": 1, "state": "done", "tenant_slug": slug, "tenant_id": tenant.id, "kind": "export",
                    "created_at": utcnow(), "outcome": "Here it is", "details": {"email": owner},
                    "subject": owner, "requested_by": "owner"})
    with tenant_transaction(tenant.ref):
        DeviceAlert.create(device_id=fields["device"], kind="offline", waiting=2)
        DeviceAlert.create(device_id=fields["device"], kind="battery", battery_level=9)
        send = notice_run(platform, tenant)
    send()
    with tenant_transaction(tenant.ref):
        DeviceAlert.update(ended_at=utcnow()).execute()
        send = notice_run(platform, tenant)
    send()
