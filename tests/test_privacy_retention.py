"""Message-text retention (privacy addon, issue 15 item 1): each workspace keeps message text N days after
the message ended, then the text is removed from every declared content column, in the rows themselves.

The clock is the test's: rows are written with the times a test chooses and the removal runs with the
``now`` it chooses (``retention.redact(..., now=...)``), so each boundary is checked to the second in
the raw rows. Metadata stays; a message still going on is never touched; other workspaces neither.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from addons.privacy import retention
from core.addons import AddonRegistry
from core.db import tenant_transaction
from tests.support.addons import addon_folder, make_addon
from tests.support.identity import add_user, admin_sql, audit_rows, owner_email, post_form, sign_in
from tests.support.messaging import raw_device, sql
from tests.support.phones import api_client
from tests.support.problems import problem

T0 = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.timezone.utc)  # when the test's messages end
SECOND = dt.timedelta(seconds=1)
DAY = dt.timedelta(days=1)
SECRET = "the secret text"


def days(n: float) -> dt.timedelta:
    return dt.timedelta(days=n)


def set_days(tenant, n: int) -> None:
    sql(tenant, "UPDATE privacy_retention SET keep_days = %s", (n,))


def outbound(tenant, ended: dt.datetime, states=("delivered",), text=SECRET) -> int:
    """A message created an hour before ``ended``, one recipient per state, each final (or not) at ``ended``."""
    (mid,), = sql(tenant, "INSERT INTO messages (created_at, text, encoding, segments) "
                          "VALUES (%s, %s, 'GSM-7', 1) RETURNING id", (ended - dt.timedelta(hours=1), text))
    for i, state in enumerate(states):
        sql(tenant, "INSERT INTO recipients (message_id, phone, state, error_code, created_at, updated_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s)",
            (mid, f"+1415555{i:04d}", state, "RESULT_ERROR" if state == "failed" else None,
             ended - dt.timedelta(hours=1), ended))
    return mid


def inbound(tenant, received: dt.datetime, body=SECRET) -> int:
    found = sql(tenant, "SELECT id FROM devices WHERE device_uid = %s", (f"uid-{tenant.slug}",))
    (device,), = found or sql(tenant, "INSERT INTO devices (name, device_uid) VALUES ('phone', %s) RETURNING id",
                              (f"uid-{tenant.slug}",))
    (iid,), = sql(tenant, "INSERT INTO device_inbound (device_id, phone_message_id, sender, body, received_at) "
                          "VALUES (%s, %s, '+14155550199', %s, %s) RETURNING id",
                  (device, f"p-{received.timestamp()}", body, received))
    return iid


def webhook_rows(tenant, at: dt.datetime, body=SECRET) -> tuple[str, int]:
    """A stored sms:received event (its payload holds the body) with a delivery and an attempt whose
    answer echoed it."""
    event_id = f"evt_{at.timestamp():.0f}_{tenant.slug}"
    (ep,), = sql(tenant, "INSERT INTO webhook_endpoints (url, events, secret_enc) VALUES "
                         "('https://example.com/hook', '{sms:received}', 'x') RETURNING id")
    payload = {"type": "sms:received", "timestamp": at.isoformat(),
               "data": {"inbound_id": 1, "from": "+14155550199", "body": body, "received_at": at.isoformat()}}
    sql(tenant, "INSERT INTO webhook_events (id, event, payload, created_at) VALUES (%s, 'sms:received', %s, %s)",
        (event_id, json.dumps(payload), at))
    (delivery,), = sql(tenant, "INSERT INTO webhook_deliveries (endpoint_id, event_id, state) VALUES (%s, %s, "
                               "'succeeded') RETURNING id", (ep, event_id))
    (aid,), = sql(tenant, "INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, response_excerpt) "
                          "VALUES (%s, 1, %s, 200, %s) RETURNING id", (delivery, at, f"got: {body}"))
    return event_id, aid


def message_row(tenant, mid) -> dict:
    row = sql(tenant, "SELECT text, redacted_at, segments, encoding, created_at FROM messages WHERE id = %s", (mid,))[0]
    return dict(zip(("text", "redacted_at", "segments", "encoding", "created_at"), row))


def inbound_row(tenant, iid) -> dict:
    rows = sql(tenant, "SELECT body, redacted_at, sender, received_at FROM device_inbound WHERE id = %s", (iid,))
    return dict(zip(("body", "redacted_at", "sender", "received_at"), rows[0]))


def event_payload(tenant, event_id) -> dict:
    return sql(tenant, "SELECT payload FROM webhook_events WHERE id = %s", (event_id,))[0][0]


def attempt_excerpt(tenant, aid):
    return sql(tenant, "SELECT response_excerpt, status_code FROM webhook_attempts WHERE id = %s", (aid,))[0]


def redact(platform, tenant, now, models=None):
    return retention.redact(platform, tenant, now=now, models=models)


THIRD_PARTY_HOOKS = '''
    from core.addons import hookimpl
    from core.datamap import PersonalData, Table, WHOLE_TABLE


    @hookimpl
    def smsgw_models():
        # A reseller's addon: notes that quote what customers wrote, and a JSON column with a text inside.
        return [Table("tp_notes", "tenant", PersonalData(
            content=("quote", "extra.msg.text"), subjects={"tenant": WHOLE_TABLE}, redact_after="written_at",
            erase="delete"))]
'''


@pytest.fixture
def third_party(tmp_path):
    """The declarations of a third-party addon loaded the way a reseller's is (its own registry)."""
    with addon_folder(tmp_path):
        registry = AddonRegistry(addons=[make_addon(tmp_path, "notes", THIRD_PARTY_HOOKS)])
        yield registry.models()


def third_party_row(tenant, at: dt.datetime) -> int:
    sql(tenant, "CREATE TABLE IF NOT EXISTS tp_notes (id serial PRIMARY KEY, written_at timestamptz NOT NULL, "
                "quote text, extra jsonb NOT NULL DEFAULT '{}', author text NOT NULL DEFAULT 'ann')")
    (nid,), = sql(tenant, "INSERT INTO tp_notes (written_at, quote, extra) VALUES (%s, %s, %s) RETURNING id",
                  (at, SECRET, json.dumps({"msg": {"text": SECRET, "lang": "en"}, "kept": 1})))
    return nid


def third_party_read(tenant, nid):
    return sql(tenant, "SELECT quote, extra, author, written_at FROM tp_notes WHERE id = %s", (nid,))[0]


# -- the boundary, for every kind of row ---------------------------------------------------------------------

def test_each_kind_of_text_is_there_a_second_before_the_period_ends_and_gone_a_second_after(
        platform, make_tenant, third_party):
    t = make_tenant("ret")
    mid = outbound(t, T0, states=("delivered", "failed", "expired", "cancelled"))
    iid = inbound(t, T0)
    event_id, aid = webhook_rows(t, T0)
    nid = third_party_row(t, T0)
    models = platform.registry.models() + third_party
    due = T0 + days(retention.DEFAULT_DAYS)

    done = redact(platform, t, due - SECOND, models)
    assert done.rows == 0
    assert message_row(t, mid)["text"] == SECRET and message_row(t, mid)["redacted_at"] is None
    assert inbound_row(t, iid)["body"] == SECRET
    assert event_payload(t, event_id)["data"]["body"] == SECRET
    assert attempt_excerpt(t, aid)[0] == f"got: {SECRET}"
    assert third_party_read(t, nid)[0] == SECRET and third_party_read(t, nid)[1]["msg"]["text"] == SECRET

    done = redact(platform, t, due + SECOND, models)
    assert done.by_table == {"messages": 1, "device_inbound": 1, "webhook_events": 1, "webhook_attempts": 1,
                             "tp_notes": 1}
    m = message_row(t, mid)
    assert m["text"] == "" and m["redacted_at"] == due + SECOND
    assert (m["segments"], m["encoding"], m["created_at"]) == (1, "GSM-7", T0 - dt.timedelta(hours=1))
    # Recipients keep numbers, states, times and error codes.
    assert sorted(sql(t, "SELECT state, error_code, updated_at FROM recipients WHERE message_id = %s", (mid,))) == [
        ("cancelled", None, T0), ("delivered", None, T0), ("expired", None, T0), ("failed", "RESULT_ERROR", T0)]
    i = inbound_row(t, iid)
    assert i["body"] == "" and i["redacted_at"] == due + SECOND and i["sender"] == "+14155550199"
    payload = event_payload(t, event_id)
    assert payload["data"] == {"inbound_id": 1, "from": "+14155550199", "body": None, "received_at": T0.isoformat()}
    assert payload["type"] == "sms:received"
    assert attempt_excerpt(t, aid) == (None, 200)
    quote, extra, author, written = third_party_read(t, nid)
    assert quote is None and extra == {"msg": {"text": None, "lang": "en"}, "kept": 1} and author == "ann"
    # Nothing of the text is left anywhere in those rows.
    dump = sql(t, "SELECT concat_ws('|', (SELECT string_agg(m::text, '') FROM messages m), "
                  "(SELECT string_agg(i::text, '') FROM device_inbound i), "
                  "(SELECT string_agg(e::text, '') FROM webhook_events e), "
                  "(SELECT string_agg(a::text, '') FROM webhook_attempts a), "
                  "(SELECT string_agg(n::text, '') FROM tp_notes n))")[0][0]
    assert SECRET not in dump

    assert redact(platform, t, due + days(1), models).rows == 0  # once removed, never again


def test_a_message_ends_with_its_last_recipient(platform, make_tenant):
    t = make_tenant("ret")
    mid = outbound(t, T0)
    # A second recipient became final a day later: the message ended then.
    sql(t, "INSERT INTO recipients (message_id, phone, state, updated_at) VALUES (%s, '+14155550777', 'failed', %s)",
        (mid, T0 + DAY))
    redact(platform, t, T0 + days(7) + SECOND)
    assert message_row(t, mid)["text"] == SECRET
    redact(platform, t, T0 + DAY + days(7) - SECOND)
    assert message_row(t, mid)["text"] == SECRET
    redact(platform, t, T0 + DAY + days(7) + SECOND)
    assert message_row(t, mid)["text"] == ""


def test_a_message_still_going_on_is_never_redacted(platform, make_tenant):
    t = make_tenant("ret")
    set_days(t, 0)
    going = {state: outbound(t, T0 - days(400), states=("delivered", state)) for state in ("pending", "processed",
                                                                                          "sent")}
    done = outbound(t, T0 - days(400))
    redact(platform, t, T0 + days(400))
    for state, mid in going.items():
        assert message_row(t, mid)["text"] == SECRET, state
    assert message_row(t, done)["text"] == ""


def test_retention_zero_removes_the_text_as_soon_as_the_message_is_final(platform, make_tenant):
    t = make_tenant("ret")
    set_days(t, 0)
    mid = outbound(t, T0)
    iid = inbound(t, T0)
    redact(platform, t, T0 - SECOND)
    assert message_row(t, mid)["text"] == SECRET and inbound_row(t, iid)["body"] == SECRET
    redact(platform, t, T0 + SECOND)
    assert message_row(t, mid)["text"] == "" and inbound_row(t, iid)["body"] == ""


def test_each_workspace_keeps_text_as_long_as_it_chose_and_others_are_untouched(platform, make_tenant):
    short, long_, other = make_tenant("ret"), make_tenant("ret"), make_tenant("ret")
    set_days(short, 1)
    set_days(long_, 30)
    rows = {t.slug: (outbound(t, T0), inbound(t, T0)) for t in (short, long_, other)}
    now = T0 + days(2)
    for t in (short, long_):
        redact(platform, t, now)
    assert message_row(short, rows[short.slug][0])["text"] == ""
    assert inbound_row(short, rows[short.slug][1])["body"] == ""
    assert message_row(long_, rows[long_.slug][0])["text"] == SECRET
    assert inbound_row(long_, rows[long_.slug][1])["body"] == SECRET
    # "other" keeps the default (7 days) and was not run: even its due texts are untouched by the others' runs.
    redact(platform, short, T0 + days(40))
    assert message_row(other, rows[other.slug][0])["text"] == SECRET
    redact(platform, long_, T0 + days(30) + SECOND)
    assert message_row(long_, rows[long_.slug][0])["text"] == ""


def test_a_large_backlog_goes_in_batches_oldest_first(platform, make_tenant):
    t = make_tenant("ret")
    sql(t, "INSERT INTO messages (created_at, text, encoding, segments) SELECT %s + n * interval '1 second', "
           "'text ' || n, 'GSM-7', 1 FROM generate_series(1, 1000) n", (T0 - days(30),))
    sql(t, "INSERT INTO recipients (message_id, phone, state, updated_at) SELECT id, '+14155550100', 'delivered', "
           "created_at FROM messages")
    done = retention.redact(platform, t, now=T0, batch=64)
    assert done.rows == 1000 and done.batches >= 1000 // 64
    assert sql(t, "SELECT count(*) FROM messages WHERE text <> '' OR redacted_at IS NULL") == [(0,)]


# -- when the job is due ----------------------------------------------------------------------------------------

def next_due(platform, tenant, now):
    with tenant_transaction(tenant.ref):
        return retention.next_due(tenant, platform=platform, now=now)


def test_next_due_is_the_next_whole_minute_after_a_text_becomes_due(platform, make_tenant):
    t = make_tenant("ret")
    assert next_due(platform, t, T0) is None  # nothing kept: nothing to arm
    outbound(t, T0 + dt.timedelta(seconds=30), states=("delivered", "pending"))
    assert next_due(platform, t, T0 + days(8)) is None  # only a message going on: its end will arm
    mid = outbound(t, T0 + dt.timedelta(seconds=30))  # created an hour before it ended
    # Before its start passes the cut-off, its start says the earliest its text can be due; once past,
    # its end says when exactly, at the next whole minute (a busy workspace runs once a minute at most).
    early = next_due(platform, t, T0 + DAY)
    assert early == T0 - dt.timedelta(minutes=59) + days(7)
    assert redact(platform, t, early).rows == 0 and message_row(t, mid)["text"] == SECRET
    assert next_due(platform, t, early) == T0 + days(7) + dt.timedelta(minutes=1)
    late = T0 + days(9)  # overdue (the worker was away): due now
    assert next_due(platform, t, late) <= late
    redact(platform, t, late)
    assert message_row(t, mid)["text"] == ""
    assert next_due(platform, t, late) is None


def test_a_message_that_ends_arms_the_job_for_when_its_text_is_due(live_server, make_tenant, tmp_path):
    t = make_tenant("ret")
    api = api_client(live_server, t.slug)
    dev = raw_device(live_server, t.slug, tmp_path / "dev", client=api)
    r = api.post("/api/v1/messages", json={"text": SECRET, "to": ["+14155550123"]})
    assert r.status_code == 202, r.text
    (item,) = dev.fetch()

    def armed():
        return _due_rows(live_server.platform, t)

    assert armed() == []  # pending and processed: nothing to arm yet
    before = dt.datetime.now(dt.timezone.utc)
    r = dev.report({"message_id": item["id"], "state": "delivered"})
    assert r.status_code == 200, r.text
    (due_at,) = armed()
    # The start of the minute it ended, plus the retention: never later than the text is due.
    expected = before.replace(second=0, microsecond=0) + days(7)
    assert expected <= due_at <= dt.datetime.now(dt.timezone.utc) + days(7)


def _due_rows(platform, tenant):
    return [r[0] for r in admin_sql(platform, "SELECT due_at FROM public.due_work WHERE job = %s AND tenant_id = %s",
                                    (retention.JOB, tenant.id), fetch=True)]


def test_a_shorter_retention_arms_the_job_at_once(live_server, make_tenant):
    t = make_tenant("ret")
    outbound(t, dt.datetime.now(dt.timezone.utc) - days(3))
    api = api_client(live_server, t.slug, scopes=["privacy:manage"])
    assert _due_rows(live_server.platform, t) == []
    r = api.patch("/api/v1/privacy/settings", json={"keep_message_text_days": 1})
    assert r.status_code == 200, r.text
    (due_at,) = _due_rows(live_server.platform, t)
    assert due_at <= dt.datetime.now(dt.timezone.utc)


# -- the setting through the API ---------------------------------------------------------------------------------

def test_the_setting_reads_and_changes_through_the_api_and_is_audited(live_server, make_tenant):
    t = make_tenant("ret")
    api = api_client(live_server, t.slug, scopes=["privacy:manage"])
    r = api.get("/api/v1/privacy/settings")
    assert r.status_code == 200 and r.json()["keep_message_text_days"] == 7
    r = api.patch("/api/v1/privacy/settings", json={"keep_message_text_days": 30})
    assert r.status_code == 200 and r.json()["keep_message_text_days"] == 30
    assert sql(t, "SELECT keep_days FROM privacy_retention") == [(30,)]
    (event,) = audit_rows(live_server.platform, t.id, "privacy.retention_changed")
    assert event["details"] == {"keep_message_text_days": {"from": 7, "to": 30}}
    assert event["actor"].startswith("token:")
    for edge in (0, 365):
        r = api.patch("/api/v1/privacy/settings", json={"keep_message_text_days": edge})
        assert r.status_code == 200 and r.json()["keep_message_text_days"] == edge


@pytest.mark.parametrize("body", [
    {"keep_message_text_days": 366}, {"keep_message_text_days": -1}, {"keep_message_text_days": "7"},
    {"keep_message_text_days": None}, {"keep_message_text_days": 7.5}, {"keep_message_text_days": True},
    {"keep_message_text_days": 10**30}, {}, {"keep_message_text_days": 7, "delete_everything": True},
    {"keep": 7}, [7],
])
def test_hostile_settings_are_refused_and_change_nothing(live_server, make_tenant, body):
    t = make_tenant("ret")
    api = api_client(live_server, t.slug, scopes=["privacy:manage"])
    before = sql(t, "SELECT keep_days, updated_at FROM privacy_retention")
    r = api.patch("/api/v1/privacy/settings", json=body)
    p = problem(r, 422 if isinstance(body, dict) else 400)
    assert p["code"] in ("validation-failed", "invalid-json")
    assert sql(t, "SELECT keep_days, updated_at FROM privacy_retention") == before and before[0][0] == 7
    assert audit_rows(live_server.platform, t.id, "privacy.retention_changed") == []


def test_not_json_is_refused(live_server, make_tenant):
    t = make_tenant("ret")
    api = api_client(live_server, t.slug, scopes=["privacy:manage"])
    problem(api.patch("/api/v1/privacy/settings", data="keep_message_text_days=1",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}), 415)
    problem(api.patch("/api/v1/privacy/settings", data="{", headers={"Content-Type": "application/json"}), 400)
    assert sql(t, "SELECT keep_days FROM privacy_retention") == [(7,)]


def test_only_the_privacy_manage_permission_reads_or_changes_it(live_server, make_tenant, platform):
    t = make_tenant("ret")
    no_scope = api_client(live_server, t.slug)  # every messaging scope, not privacy:manage
    problem(no_scope.get("/api/v1/privacy/settings"), 403, "forbidden")
    problem(no_scope.patch("/api/v1/privacy/settings", json={"keep_message_text_days": 1}), 403, "forbidden")
    add_user(platform, t, "member@example.com", "a long enough password", role="user")
    member = sign_in(live_server, t.slug, "member@example.com", "a long enough password")
    assert member.get("/api/v1/privacy/settings").status_code == 403
    page = member.get("/account/privacy")
    assert page.status_code == 200 and 'id="retention"' not in page.text
    assert sql(t, "SELECT keep_days FROM privacy_retention") == [(7,)]


# -- the setting on Account → Privacy -------------------------------------------------------------------------

def test_the_customer_changes_it_on_the_privacy_page(live_server, make_tenant):
    t = make_tenant("ret")
    c = sign_in(live_server, t.slug, owner_email(t))
    page = c.get("/account/privacy")
    assert page.status_code == 200 and 'id="retention"' in page.text and 'value="7"' in page.text
    r = post_form(c, "/account/privacy", {"section": "retention", "keep_message_text_days": "2"},
                  allow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    assert sql(t, "SELECT keep_days FROM privacy_retention") == [(2,)]
    assert len(audit_rows(live_server.platform, t.id, "privacy.retention_changed")) == 1
    for bad in ("366", "-1", "seven", "", "1e3", "7.5"):
        r = post_form(c, "/account/privacy", {"section": "retention", "keep_message_text_days": bad})
        assert r.status_code == 422 and "from 0 to 365" in r.text, bad
    assert sql(t, "SELECT keep_days FROM privacy_retention") == [(2,)]


# -- redaction shows ----------------------------------------------------------------------------------------

def test_answers_and_pages_say_the_text_was_removed(live_server, make_tenant, platform):
    t = make_tenant("ret")
    mid = outbound(t, T0)
    kept = outbound(t, T0 + days(30), text="still here")
    iid = inbound(t, T0)
    redact(platform, t, T0 + days(7) + SECOND)
    api = api_client(live_server, t.slug)
    m = api.get(f"/api/v1/messages/{mid}").json()
    assert m["text"] is None and m["redacted_at"] == (T0 + days(7) + SECOND).isoformat()
    assert m["segments"] == 1 and [r["state"] for r in m["recipients"]] == ["delivered"]
    other = api.get(f"/api/v1/messages/{kept}").json()
    assert other["text"] == "still here" and other["redacted_at"] is None
    listed = {x["id"]: x for x in api.get("/api/v1/messages").json()["messages"]}
    assert listed[mid]["text"] is None and listed[kept]["text"] == "still here"
    (i,) = [x for x in api.get("/api/v1/inbox").json()["messages"] if x["id"] == iid]
    assert i["body"] is None and i["redacted_at"] == (T0 + days(7) + SECOND).isoformat()
    assert i["from"] == "+14155550199"

    c = sign_in(live_server, t.slug, owner_email(t))
    page = c.get(f"/messages/{mid}").text
    assert "text removed after 7 days" in page and SECRET not in page
    assert "text removed after 7 days" in c.get("/messages").text
    assert "text removed after 7 days" in c.get("/inbox").text
    conversation = c.get("/inbox/+14155550199").text
    assert "text removed after 7 days" in conversation and SECRET not in conversation


def test_the_compat_api_still_answers_for_a_redacted_message(live_server, make_tenant, platform):
    t = make_tenant("ret")
    api = api_client(live_server, t.slug)
    r = api.post("/api/v1/messages", json={"text": SECRET, "to": ["+14155550123"]})
    mid = r.json()["id"]
    sql(t, "UPDATE recipients SET state = 'failed', error_code = 'RESULT_ERROR', updated_at = %s", (T0,))
    redact(platform, t, T0 + days(8))
    compat = live_server.client(t.slug)
    compat.headers.update(api.headers)
    r = compat.get(f"/3rdparty/v1/messages/{mid}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["state"] == "Failed" and body["recipients"][0]["error"] == "RESULT_ERROR"
    assert SECRET not in r.text


def test_a_webhook_redelivered_after_redaction_carries_no_text(live_server, make_tenant, tmp_path, monkeypatch):
    from tests.test_webhooks import Receiver, attempt

    monkeypatch.setenv("SMSGW_WEBHOOK_ALLOW_PRIVATE", "1")
    receiver = Receiver()
    try:
        t = make_tenant("ret")
        api = api_client(live_server, t.slug)
        r = api.post("/api/v1/webhooks", json={"url": receiver.url(), "events": ["sms:received"]})
        assert r.status_code == 201, r.text
        ep = r.json()["id"]
        dev = raw_device(live_server, t.slug, tmp_path / "dev", client=api)
        r = dev.inbound({"id": "in-1", "from": "+14155550400", "body": SECRET})
        assert r.status_code == 200, r.text
        (delivery_id,), = sql(t, "SELECT id FROM webhook_deliveries")
        assert attempt(t, delivery_id) == "succeeded"
        assert SECRET in receiver.requests[-1]["body"].decode()

        set_days(t, 0)
        redact(live_server.platform, t, dt.datetime.now(dt.timezone.utc) + SECOND)
        r = api.post(f"/api/v1/webhooks/{ep}/deliveries/{delivery_id}/redeliver", json={})
        assert r.status_code in (200, 202), r.text
        assert attempt(t, delivery_id, "redeliver") == "succeeded"
        sent = json.loads(receiver.requests[-1]["body"])
        assert sent["data"]["body"] is None and sent["data"]["from"] == "+14155550400"
        assert SECRET not in receiver.requests[-1]["body"].decode()
    finally:
        receiver.close()


def test_csv_uploads_leave_no_text_behind_to_keep(live_server, make_tenant):
    """The preview of a CSV upload lives in the page and its signed form field only: no row holds it, so
    there is nothing for retention to remove (the confirmed messages are ordinary messages)."""
    t = make_tenant("ret")
    c = sign_in(live_server, t.slug, owner_email(t))
    csv_text = f"recipient,text\n+14155550123,{SECRET} csv\n".encode()
    page = c.get("/send/csv")
    assert page.status_code == 200
    r = c.post("/send/csv", files={"file": ("list.csv", csv_text, "text/csv")},
               data={"_xsrf": c.cookies.get("_xsrf")})
    assert r.status_code == 200 and f"{SECRET} csv" in r.text
    tables = sql(t, "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")
    for (table,) in tables:
        rows = sql(t, f'SELECT count(*) FROM "{table}" x WHERE x::text LIKE %s', (f"%{SECRET} csv%",))
        assert rows == [(0,)], table


def test_the_due_run_removes_what_is_due_and_clears_its_entry(platform, make_tenant):
    """The worker's path: the job armed for the workspace runs (core.due.run_due), the texts past the
    period go, and with nothing left kept the workspace's entry is gone."""
    from core import due

    t, other = make_tenant("ret"), make_tenant("ret")
    now = dt.datetime.now(dt.timezone.utc)
    old, fresh = outbound(t, now - days(8)), outbound(t, now - days(1))
    untouched = outbound(other, now - days(8))
    job = platform.setup_tasks().due_jobs[retention.JOB]
    with tenant_transaction(t.ref):
        due.arm(retention.JOB, now - SECOND)
    assert due.run_due(platform, job, t.id, t.slug) == "ran"
    assert message_row(t, old)["text"] == "" and message_row(t, fresh)["text"] == SECRET
    assert message_row(other, untouched)["text"] == SECRET
    # The fresh one is next: armed for the minute after its text can first be due (created an hour before
    # it ended, and not yet past the cut-off: its start is the earliest its end can be).
    (due_at,) = _due_rows(platform, t)
    start = now - days(1) - dt.timedelta(hours=1)
    assert due_at == (start + days(7)).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    (event,) = audit_rows(platform, t.id, "privacy.retention_applied")
    assert event["details"]["rows"] == 1 and event["actor"] == "system"


def test_retention_fields_without_content_are_refused_at_start_up():
    from core.datamap import DeclarationError, PersonalData, Table, declare

    for extra in ({"redacted_at": "removed_at"}, {"ended": "(SELECT now())"}):
        with pytest.raises(DeclarationError, match="ended and redacted_at are for retention of content"):
            declare("notes", Table("tp_things", "tenant", PersonalData(
                personal=("who",), subjects={"tenant": "*"}, erase="delete", **extra)))
    # Named columns are checked: a content path names its column, redacted_at its own.
    p = PersonalData(content=("payload.data.body",), subjects={"tenant": "*"}, redact_after="at",
                     redacted_at="removed_at", erase="delete")
    assert p.columns() == {"payload", "at", "removed_at"}
