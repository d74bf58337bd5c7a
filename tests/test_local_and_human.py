"""Local and human (issue 22 item 9): a workspace's default country reads numbers written without
+, each member sees times in their own time zone (UTC on hover), forms keep what was typed, sign-up
shows all its errors at once, and the owner is called Owner in every language."""

from __future__ import annotations

import datetime as dt
import re
import secrets

from core.localtime import formatter
from tests.support.identity import (OWNER_PASSWORD, add_user, client, owner_email, post_form, sign_in,
                                    signup_acceptance)
from tests.support.messaging import sql
from tests.support.phones import api_client


def test_a_german_local_number_is_read_in_a_german_workspace(live_server, make_tenant):
    t = make_tenant("de-num")
    c = sign_in(live_server, t.slug, owner_email(t))
    refused = post_form(c, "/send", {"to": "01701234567", "text": "Hallo"})
    assert refused.status_code == 422 and "not a valid phone number in region US" in refused.text
    page = c.get("/workspace")
    assert page.status_code == 200 and '<option value="US" selected>' in page.text
    bad = post_form(c, "/workspace", {"default_region": "XX"})
    assert bad.status_code == 422 and "Choose a country from the list." in bad.text
    assert post_form(c, "/workspace", {"default_region": "DE"}).status_code == 303
    assert '<option value="DE" selected>Germany (DE)</option>' in c.get("/workspace").text
    sent = post_form(c, "/send", {"to": "01701234567", "text": "Hallo"})
    assert sent.status_code == 302, sent.text[:400]
    assert sql(t, "SELECT phone FROM recipients") == [("+491701234567",)]
    # The country is the owner's to set: a member may not.
    add_user(live_server.platform, t, f"member@{t.slug}.example", password=OWNER_PASSWORD)
    member = sign_in(live_server, t.slug, f"member@{t.slug}.example")
    assert post_form(member, "/workspace", {"default_region": "FR"}).status_code == 403
    assert live_server.platform.tenants.get(t.slug).default_region == "DE"


def test_a_time_is_written_in_the_readers_zone_with_utc_in_its_title():
    at = dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.timezone.utc)  # Berlin moves to summer time at 01:00 UTC
    assert str(formatter("Europe/Berlin")(at)) == \
        '<time datetime="2026-03-29T00:30:00Z" title="2026-03-29 00:30 UTC">2026-03-29 01:30</time>'
    assert str(formatter("Europe/Berlin")(at + dt.timedelta(hours=1))).endswith(">2026-03-29 03:30</time>")
    assert str(formatter("")("2026-03-29T00:30:00+00:00")).endswith(">2026-03-29 00:30</time>")  # no zone: UTC
    assert str(formatter("No/Such_Zone")(at)).endswith(">2026-03-29 00:30</time>")
    assert str(formatter("UTC")(None)) == ""


def test_pages_show_times_in_the_members_time_zone(live_server, make_tenant):
    t = make_tenant("tz")
    c = sign_in(live_server, t.slug, owner_email(t))
    assert post_form(c, "/send", {"to": "+14155550130", "text": "What time is it?"}).status_code == 302
    details = {"action": "profile", "name": "Ola", "email": owner_email(t), "phone": "", "job_title": ""}
    refused = post_form(c, "/account", {**details, "name": "Ola Typed", "time_zone": "Mars/Olympus_Mons"})
    assert refused.status_code == 422 and "Choose a time zone from the list." in refused.text
    assert 'value="Ola Typed"' in refused.text  # what was typed stays
    assert post_form(c, "/account", {**details, "time_zone": "Asia/Kolkata"}).status_code == 302
    assert '<option value="Asia/Kolkata" selected translate="no">' in c.get("/account").text
    found = re.search(r'<time datetime="([^"]+)" title="([^"]+) UTC">([^<]+)</time>', c.get("/messages").text)
    assert found, "the message's time is not marked up"
    utc = dt.datetime.strptime(found.group(1), "%Y-%m-%dT%H:%M:%SZ")
    assert found.group(2) == utc.strftime("%Y-%m-%d %H:%M")
    assert found.group(3) == (utc + dt.timedelta(hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M")
    # Every list of times says them in the member's zone, so none is headed "(UTC)".
    assert post_form(c, "/send", {"to": "+14155550131, +14155550132", "text": "A campaign"}).status_code == 302
    for path in ("/messages", "/campaigns", "/audit", "/account/security", "/inbox?q=x"):
        page = c.get(path)
        assert page.status_code == 200, path
        assert "When (UTC)" not in page.text and "Created (UTC)" not in page.text, path
        if path != "/inbox?q=x":  # nothing received here
            times = re.findall(r'<time datetime="([^"]+)" title="[^"]+ UTC">([^<]+)</time>', page.text)
            assert times, path
            for iso, shown in times:
                utc = dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ")
                assert shown.startswith((utc + dt.timedelta(hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M")), path


def test_why_a_message_waits_names_its_time_in_the_readers_zone_and_utc_in_the_api(live_server, make_tenant):
    """A scheduled message's waiting reason: the page says its time in the member's zone, naming the
    zone; the API (no reader) says it in UTC, naming UTC. The Overview's failing-webhook line too."""
    t = make_tenant("tzw")
    c = sign_in(live_server, t.slug, owner_email(t))
    details = {"action": "profile", "name": "Ola", "email": owner_email(t), "phone": "", "job_title": ""}
    assert post_form(c, "/account", {**details, "time_zone": "Asia/Kolkata"}).status_code == 302
    at = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)).replace(second=0, microsecond=0)
    typed = (at + dt.timedelta(hours=5, minutes=30)).strftime("%Y-%m-%dT%H:%M")  # in Kolkata
    sent = post_form(c, "/send", {"to": "+14155550140", "text": "Later", "send_at": typed})
    assert sent.status_code == 302, sent.text[:400]
    (message_id,) = sql(t, "SELECT id FROM messages")[0]
    page = c.get(f"/messages/{message_id}").text
    local = (at + dt.timedelta(hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M")
    assert f"scheduled for {local} IST" in page, re.findall(r"Waiting[^<]*", page)
    assert " UTC" not in re.search(r'class="waiting">([^<]*)<', page).group(1)
    # Another language, the same zone: the sentence is translated, the time still the reader's.
    c.cookies.set("lang", "de")
    assert f"{local} IST" in re.search(r'class="waiting">([^<]*)<', c.get(f"/messages/{message_id}").text).group(1)
    r = api_client(live_server, t.slug).get(f"/api/v1/messages/{message_id}")
    assert r.json()["recipients"][0]["waiting_reason"] == f"scheduled for {at:%Y-%m-%d %H:%M} UTC"
    # The Overview's line about a failing webhook endpoint, in the member's zone too.
    failing = at - dt.timedelta(days=3)
    sql(t, "INSERT INTO webhook_endpoints (url, events, secret_enc, failing_since) "
           "VALUES ('https://example.org/hook', '{sms:sent}', 'not used here', %s)", (failing,))
    c.cookies.set("lang", "en")
    overview = c.get("/").text
    shown = (failing + dt.timedelta(hours=5, minutes=30)).strftime("%Y-%m-%d %H:%M")
    assert f"has been failing since {shown} IST." in overview


def test_sign_up_shows_every_error_at_once_and_keeps_what_was_typed(live_server, make_tenant):
    taken = make_tenant("taken")
    c = client(live_server, None, ip=f"10.22.{secrets.randbelow(250)}.{secrets.randbelow(250)}")
    form = {"company": "", "slug": "A", "email": "not-an-address", "password": "short", **signup_acceptance(c)}
    r = post_form(c, "/signup", form)
    assert r.status_code == 422
    for field in ("company", "slug", "email", "password"):
        assert f'id="e-{field}"' in r.text, f"no error shown for {field}"
    assert 'value="not-an-address"' in r.text
    r = post_form(c, "/signup", {**form, "company": "Taken Co", "slug": taken.slug, "password": OWNER_PASSWORD})
    assert r.status_code == 422 and "already taken" in r.text and 'id="e-email"' in r.text
    assert 'value="Taken Co"' in r.text


def test_the_owner_is_called_owner_in_every_language(live_server, make_tenant):
    t = make_tenant("owner")
    c = sign_in(live_server, t.slug, owner_email(t))
    add_user(live_server.platform, t, f"member@{t.slug}.example")
    for lang, owner, customer in (("en", "Owner", "Customer"), ("de", "Inhaber", "Kunde"),
                                  ("fr", "Propriétaire", "Client"), ("es", "Propietario", "Cliente")):
        c.cookies.set("lang", lang)
        page = c.get("/team").text
        assert f'<span class="role-badge">{owner}</span>' in page, lang
        assert f"<td>{owner}</td>" in page and customer not in page, lang


def test_team_invite_errors_keep_the_address_and_role(live_server, make_tenant):
    t = make_tenant("invite")
    c = sign_in(live_server, t.slug, owner_email(t))
    r = post_form(c, "/team", {"action": "invite", "email": "typo@", "role": "customer"})
    assert r.status_code == 422 and 'value="typo@"' in r.text
    assert '<option value="customer" selected>Owner</option>' in r.text
