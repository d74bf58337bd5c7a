"""A change and its audit record commit together (issue 23, item 1): when the record cannot be
written, the change is not made and the answer says so; the answer is never an error for work
that was done (a client that retries an error would do it twice).

The fault is real: a trigger on ``public.audit_event`` refuses this test's workspace's rows, as a
full disk or a lost privilege would refuse them."""

from __future__ import annotations

import pytest

from tests.support.devices import raw_device, sql
from tests.support.identity import admin_sql
from tests.support.phones import api_client


@pytest.fixture
def refuse_audit(platform):
    """``refuse_audit(slug)``: from now on, recording an audit event of that workspace fails."""
    name = f"public.{platform.settings.role_prefix}_test_refuse_audit"
    slugs: list[str] = []

    def define() -> None:
        listed = ", ".join(f"'{s}'" for s in slugs) or "NULL"  # slugs are ours: [a-z0-9-] only
        admin_sql(platform, f"""
            CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.tenant_slug IN ({listed}) THEN
                    RAISE EXCEPTION 'audit trail refused (test fault)';
                END IF;
                RETURN NEW;
            END $$""")

    define()
    admin_sql(platform, f"CREATE TRIGGER test_refuse_audit BEFORE INSERT ON public.audit_event FOR EACH ROW "
                        f"EXECUTE FUNCTION {name}()")

    def refuse(slug: str) -> None:
        slugs.append(slug)
        define()

    yield refuse
    admin_sql(platform, "DROP TRIGGER IF EXISTS test_refuse_audit ON public.audit_event")
    admin_sql(platform, f"DROP FUNCTION IF EXISTS {name}()")


def test_a_webhook_whose_record_fails_is_not_created(live_server, make_tenant, refuse_audit, monkeypatch):
    monkeypatch.setenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", "1")  # the receiver is on loopback
    t = make_tenant("auditwh")
    api = api_client(live_server, t.slug)
    refuse_audit(t.slug)
    r = api.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/hook", "events": ["sms:delivered"]})
    assert r.status_code == 500 and r.headers["Content-Type"].startswith("application/problem+json"), r.text
    assert sql(t, "SELECT count(*) FROM webhook_endpoints")[0][0] == 0


def test_device_changes_whose_record_fails_are_not_made(live_server, make_tenant, refuse_audit):
    t = make_tenant("auditdev")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    refuse_audit(t.slug)
    assert api.patch(f"/api/v1/devices/{device_id}", json={"enabled": False, "name": "x"}).status_code == 500
    assert api.post(f"/api/v1/devices/{device_id}/token").status_code == 500
    assert api.delete(f"/api/v1/devices/{device_id}").status_code == 500
    assert sql(t, "SELECT name, enabled, removed_at IS NULL FROM devices WHERE id = %s", (device_id,))[0][1:] == (
        True, True)
    assert sql(t, "SELECT count(*) FROM devices WHERE id = %s AND token_hash IS NOT NULL AND name <> 'x'",
               (device_id,))[0][0] == 1


def test_a_phone_that_comes_online_while_its_record_fails_loses_nothing(live_server, make_tenant, refuse_audit):
    """The 'device came online' event is recorded with the contact that brought the phone back:
    when its record fails, the poll is refused and hands nothing over (its message stays queued for
    the next poll, which then announces the phone); it is never answered with an error after
    its messages were claimed."""
    from tests.support.devices import device_client, fetch

    t = make_tenant("auditon")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api)
    sql(t, "UPDATE devices SET online = false, last_seen_at = now() - interval '1 hour' WHERE id = %s",
        (device_id,), fetch=False)
    assert api.post("/api/v1/messages", json={"text": "while offline", "to": ["+14155550129"],
                                              "device_id": device_id}).status_code == 202
    refuse_audit(t.slug)
    phone = device_client(live_server, t.slug, token)
    r = fetch(phone)
    assert r.status_code == 500, r.text
    assert sql(t, "SELECT state FROM recipients")[0][0] == "pending"  # claimed nothing
    assert phone.post("/api/device/v1/heartbeat", json={"battery_level": 50}).status_code == 500
    assert sql(t, "SELECT online FROM devices WHERE id = %s", (device_id,))[0][0] is False
