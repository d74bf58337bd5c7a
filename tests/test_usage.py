"""Usage metering (issue 16, item 3): daily figures per workspace, exact, per workspace only.

Counts are written by triggers in the same transaction as the work (addons/usage/migrations); the
figures must equal the durable rows whatever the concurrency, and must not change when retention
redacts or erasure deletes what they counted. API calls are counted in memory and written in
batches (addons/usage/recorder.py): exact after a flush, never twice.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from addons.usage.recorder import recorder
from core.clock import utcnow
from tests.support.identity import OWNER_PASSWORD, owner_email, sign_in
from tests.support.messaging import raw_device, sql
from tests.support.phones import api_client, api_token

USAGE_SCOPES = ["messages:send", "messages:read", "devices:read", "devices:write", "usage:read"]
LONG = "x" * 200  # two GSM-7 segments


def truth(t) -> dict:
    """The figures computed from the durable records themselves (all days)."""
    (messages, msg_segments, recipients, rec_segments, sent, sent_segments, delivered, failed, inbound), = sql(t, """
        SELECT (SELECT count(*) FROM messages), (SELECT coalesce(sum(segments), 0) FROM messages),
               (SELECT count(*) FROM recipients),
               (SELECT coalesce(sum(m.segments), 0) FROM recipients r JOIN messages m ON m.id = r.message_id),
               (SELECT count(*) FROM recipient_events WHERE to_state = 'sent'
                    OR (to_state = 'delivered' AND from_state IS DISTINCT FROM 'sent')),
               (SELECT coalesce(sum(m.segments), 0) FROM recipient_events e JOIN recipients r ON r.id = e.recipient_id
                  JOIN messages m ON m.id = r.message_id
                 WHERE e.to_state = 'sent' OR (e.to_state = 'delivered' AND e.from_state IS DISTINCT FROM 'sent')),
               (SELECT count(*) FROM recipient_events WHERE to_state = 'delivered'),
               (SELECT count(*) FROM recipient_events WHERE to_state = 'failed'),
               (SELECT count(*) FROM device_inbound)""")
    return {"messages": messages, "segments_messages": msg_segments, "recipients_submitted": recipients,
            "segments_submitted": rec_segments, "recipients_sent": sent, "segments_sent": sent_segments,
            "recipients_delivered": delivered, "recipients_failed": failed, "inbound": inbound}


def figures(client) -> dict:
    r = client.get("/api/v1/usage", params={"from": (utcnow().date() - dt.timedelta(days=2)).isoformat()})
    assert r.status_code == 200, r.text
    return r.json()


def matches_truth(t, data) -> None:
    want = truth(t)
    got = data["totals"]
    for key in ("messages", "recipients_submitted", "segments_submitted", "recipients_sent", "segments_sent",
                "recipients_delivered", "recipients_failed", "inbound"):
        assert got[key] == want[key], (key, got[key], want[key])
    (msg_segments,), = sql(t, "SELECT coalesce(sum(segments), 0) FROM usage_counts WHERE metric = 'messages'")
    assert msg_segments == want["segments_messages"]


def test_sixteen_concurrent_senders_and_reporting_phones_are_counted_exactly(live_server, make_tenant, tmp_path):
    t = make_tenant("use")
    reader = api_client(live_server, t.slug, USAGE_SCOPES)
    phones = [raw_device(live_server, t.slug, tmp_path / f"p{i}") for i in range(2)]
    clients = [api_client(live_server, t.slug, USAGE_SCOPES) for _ in range(16)]

    def sender(i):
        out = []
        for k in range(8):
            to = [f"+1415555{i:02d}{k:02d}"] + ([f"+1415556{i:02d}{k:02d}"] if k % 3 == 0 else [])
            r = clients[i].post("/api/v1/messages", json={"to": to, "text": LONG if k % 2 else f"hi {i} {k}"})
            assert r.status_code == 202, r.text
            out.append(r.json()["id"])
        return out

    with ThreadPoolExecutor(16) as pool:
        sent = [m for ms in pool.map(sender, range(16)) for m in ms]
    assert len(sent) == 128

    # The phones take everything and report it from 16 threads at once (group-committed reports).
    assert truth(t)["recipients_submitted"] == 128 + 16 * 3
    handed = [(phone, x["id"]) for phone in phones for x in phone.fetch(limit=100)]
    assert len(handed) >= 40  # what the phones' default rate limits let them take now
    outcome = ["delivered", "sent", "failed", "sent+delivered"]

    def report(job):
        n, (phone, rid) = job
        kind = outcome[n % 4]
        if kind == "sent+delivered":
            assert phone.report({"message_id": rid, "state": "sent"}).status_code == 200
            kind = "delivered"
        item = {"message_id": rid, "state": kind}
        if kind == "failed":
            item["error_code"] = "GENERIC_FAILURE"
        r = phone.report(item)
        assert r.status_code == 200, r.text

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(report, enumerate(handed)))
    for i, phone in enumerate(phones):
        assert phone.inbound(*[{"id": f"in-{i}-{k}", "from": "+14155550999", "body": "hello"}
                               for k in range(3)]).status_code == 200
        assert phone.inbound({"id": f"in-{i}-0", "from": "+14155550999", "body": "hello"}).json()["duplicates"] == 1

    data = figures(reader)
    matches_truth(t, data)
    today = data["days"][-1]
    assert today["day"] == utcnow().date().isoformat()
    assert today["recipients_delivered"] > 0 and today["inbound"] == 6
    assert today["active_devices"] == 2
    per_device = {d["device_id"]: d for d in data["devices"] if d["day"] == today["day"]}
    assert set(per_device) == {p.device_id for p in phones}
    assert sum(d["delivered"] for d in per_device.values()) == today["recipients_delivered"]
    assert sum(d["sent"] + d["failed"] for d in per_device.values()) >= len(handed) // 2
    assert data["performance"]["delivery_ms"]["count"] == today["recipients_delivered"]
    assert data["performance"]["delivery_ms"]["p50"] is not None
    # The figures were written by more than one database session (one row each, no shared row lock).
    (shards,), = sql(t, "SELECT count(DISTINCT shard) FROM usage_counts WHERE metric = 'submitted'")
    assert shards > 1


def test_redaction_and_erasure_do_not_change_what_was_counted(live_server, make_tenant, tmp_path):
    t = make_tenant("use")
    c = api_client(live_server, t.slug, USAGE_SCOPES)
    phone = raw_device(live_server, t.slug, tmp_path / "p")
    for k in range(3):
        assert c.post("/api/v1/messages", json={"to": ["+14155550100", "+14155550101"], "text": LONG}).status_code == 202
    for x in phone.fetch(limit=10):
        phone.report({"message_id": x["id"], "state": "delivered"})
    before = figures(c)["totals"]
    assert before["segments_submitted"] == 12 and before["recipients_delivered"] == 6
    # Retention blanks the texts (rows stay); erasure deletes the rows (as the privacy addon does).
    sql(t, "UPDATE messages SET text = '', redacted_at = now()")
    sql(t, "DELETE FROM messages WHERE id IN (SELECT id FROM messages ORDER BY id LIMIT 2)")
    assert truth(t)["recipients_submitted"] == 2
    assert figures(c)["totals"] == before


def test_api_calls_are_counted_per_token_and_family_exactly_after_a_flush(live_server, make_tenant):
    t = make_tenant("use")
    token = api_token(t.slug, USAGE_SCOPES)
    (token_id,), = sql(t, "SELECT max(id) FROM api_tokens")
    c = live_server.client(t.slug)
    c.headers["Authorization"] = f"Bearer {token}"
    recorder.flush()
    for _ in range(7):
        assert c.get("/api/v1/messages").status_code == 200
    for _ in range(3):
        assert c.get("/api/v1/devices").status_code == 200
    assert c.get("/api/v1/messages/999999").status_code == 404  # an answered call counts too
    time.sleep(0.3)  # a request is counted as it is logged, just after its answer left
    recorder.flush()
    calls = {(x["credential"], x["family"]): x["calls"] for x in figures(c)["api_calls"]}
    assert calls[(f"token:{token_id}", "messages")] == 8
    assert calls[(f"token:{token_id}", "devices")] == 3
    # The usage request above was counted too, after it answered: it shows after the next flush.
    time.sleep(0.3)
    recorder.flush()
    data = figures(c)
    calls = {(x["credential"], x["family"]): x["calls"] for x in data["api_calls"]}
    assert calls[(f"token:{token_id}", "usage")] == 1
    assert data["totals"]["api_calls"] == 8 + 3 + 1
    assert data["performance"]["api_latency_ms"]["count"] == 12
    assert 0 < data["performance"]["api_latency_ms"]["p50"] <= data["performance"]["api_latency_ms"]["p95"]


def test_dashboard_sign_ins_are_counted(live_server, make_tenant):
    t = make_tenant("use")
    c = api_client(live_server, t.slug, USAGE_SCOPES)
    assert figures(c)["totals"]["signins"] == 0
    sign_in(live_server, t.slug, owner_email(t))
    sign_in(live_server, t.slug, owner_email(t))
    assert figures(c)["totals"]["signins"] == 2


def page_numbers(html: str) -> dict:
    return {k: int(v) for k, v in re.findall(r'data-figure="([a-z_]+)">(\d+)<', html)}


def test_the_api_the_csv_and_the_page_agree(live_server, make_tenant, tmp_path):
    t = make_tenant("use")
    c = api_client(live_server, t.slug, USAGE_SCOPES)
    phone = raw_device(live_server, t.slug, tmp_path / "p")
    for k in range(4):
        c.post("/api/v1/messages", json={"to": ["+14155550100"], "text": LONG if k else "short"})
    for n, x in enumerate(phone.fetch(limit=10)):
        phone.report({"message_id": x["id"], "state": "failed" if n == 0 else "delivered",
                      **({"error_code": "X"} if n == 0 else {})})
    phone.inbound({"id": "in-1", "from": "+14155550999", "body": "hi"})
    owner = sign_in(live_server, t.slug, owner_email(t))
    time.sleep(0.3)
    recorder.flush()
    # The page first, then the API: the API's own reads are API calls that a periodic flush may
    # write between two of them (at most these two reads); every other figure must be equal.
    page = owner.get("/usage")
    assert page.status_code == 200
    page_csv = owner.get("/usage.csv?days=30")
    assert page_csv.status_code == 200
    start = (utcnow().date() - dt.timedelta(days=29)).isoformat()
    api = c.get("/api/v1/usage", params={"from": start}).json()
    api_csv = c.get("/api/v1/usage", params={"from": start, "format": "csv"})
    assert api_csv.status_code == 200 and api_csv.headers["Content-Type"].startswith("text/csv")

    def rows(text):
        return [{k: int(v) if k != "day" else v for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))]

    def steady(day):
        return {k: v for k, v in day.items() if k != "api_calls"}

    page_rows, api_rows = rows(page_csv.text), rows(api_csv.text)
    assert len(page_rows) == len(api_rows) == len(api["days"]) == 30
    assert [steady(r) for r in page_rows] == [steady(r) for r in api_rows] == [steady(d) for d in api["days"]]
    for p, a, d in zip(page_rows, api_rows, api["days"]):
        assert p["api_calls"] <= d["api_calls"] <= a["api_calls"] <= p["api_calls"] + 2
    shown = page_numbers(page.text)
    assert shown and all(shown[k] == sum(r[k] for r in page_rows) for k in shown), (shown, page_rows[-1])
    assert shown["segments_submitted"] == 7 and shown["recipients_failed"] == 1 and shown["inbound"] == 1
    assert shown["signins"] == 1 and shown["api_calls"] >= 4
    today = page_rows[-1]
    row = re.search(rf'<tr data-day="{today["day"]}">(.*?)</tr>', page.text).group(1)
    cells = [int(x) for x in re.findall(r"<td>(\d+)</td>", row)]
    assert cells == [today[k] for k in ("messages", "segments_submitted", "recipients_sent", "recipients_delivered",
                                        "recipients_failed", "inbound", "webhooks_delivered", "webhooks_failed",
                                        "api_calls", "active_devices", "signins")]
    assert owner.get("/usage?days=90").status_code == 200
    assert owner.get("/usage?days=7").status_code == 400 and owner.get("/usage.csv?days=x").status_code == 400


def test_another_workspace_never_sees_this_ones_usage(live_server, make_tenant, tmp_path):
    a, b = make_tenant("usa"), make_tenant("usb")
    ca = api_client(live_server, a.slug, USAGE_SCOPES)
    cb = api_client(live_server, b.slug, USAGE_SCOPES)
    for _ in range(5):
        assert ca.post("/api/v1/messages", json={"to": ["+14155550100"], "text": LONG}).status_code == 202
    assert figures(ca)["totals"]["segments_submitted"] == 10
    assert figures(cb)["totals"]["segments_submitted"] == 0
    # B's token on A's address, B's session on A's pages: refused, not A's figures.
    cross = live_server.client(a.slug)
    cross.headers["Authorization"] = cb.headers["Authorization"]
    assert cross.get("/api/v1/usage").status_code == 401
    assert cross.get("/api/v1/usage?format=csv").status_code == 401
    owner_b = sign_in(live_server, b.slug, owner_email(b))
    assert "10" not in page_numbers(owner_b.get("/usage").text).values()
    owner_b.headers["Host"] = f"{a.slug}.{live_server.platform.settings.base_domain}:{live_server.port}"
    for path in ("/usage", "/usage.csv"):
        r = owner_b.get(path)
        assert r.status_code in (302, 401, 403), (path, r.status_code)
        assert "segments_submitted" not in r.text
    # A token without the scope: 403.
    plain = api_client(live_server, a.slug, ["messages:read"])
    assert plain.get("/api/v1/usage").status_code == 403


@pytest.mark.parametrize("query", [
    "from=yesterday", "from=2026-02-30", "to=2026-13-01", "from=%EF%BC%92%EF%BC%90%EF%BC%92%EF%BC%96-01-01",
    "from=2026-01-01T00:00", "granularity=hour", "granularity=", "format=xml", "from=2020-01-01&to=2022-01-01",
    "from=2026-01-02&from=2026-01-03", "from=" + "9" * 5000, "to=0001-01-01&from=9999-12-31",
    "from=1-1-1", "from=%00", "from=", "format=", "to=%C0%AF", "granularity=day&granularity=week",
])
def test_hostile_query_parameters_get_a_problem_and_change_nothing(live_server, make_tenant, query):
    t = make_tenant("hos")
    c = api_client(live_server, t.slug, USAGE_SCOPES)
    (before,), = sql(t, "SELECT count(*) FROM usage_counts")
    r = c.get("/api/v1/usage?" + query)
    assert r.status_code == 400, (query, r.status_code, r.text[:300])
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json()["code"] == ("bad-request" if "%C0" in query else "invalid-parameter")  # the kernel refuses bad UTF-8
    (after,), = sql(t, "SELECT count(*) FROM usage_counts")
    assert after == before


def test_a_range_in_the_future_is_clipped_and_days_without_activity_are_zero(live_server, make_tenant):
    t = make_tenant("use")
    c = api_client(live_server, t.slug, USAGE_SCOPES)
    today = utcnow().date()
    r = c.get("/api/v1/usage", params={"from": (today - dt.timedelta(days=365)).isoformat(),
                                       "to": (today + dt.timedelta(days=30)).isoformat(), "granularity": "day"})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["to"] == today.isoformat() and len(data["days"]) == 366
    assert all(d["messages"] == 0 for d in data["days"])


def test_the_operator_sees_every_workspaces_counts_and_no_message_content(live_server, platform, make_tenant):
    from core.admins import create_admin
    from tests.support.identity import admin_sign_in, client as identity_client

    busy, quiet = make_tenant("opb"), make_tenant("opq")
    cb = api_client(live_server, busy.slug, USAGE_SCOPES)
    secret_text = "SECRET-CONTENT-" + busy.slug
    for _ in range(3):
        assert cb.post("/api/v1/messages", json={"to": ["+14155550177"], "text": secret_text}).status_code == 202
    admin = create_admin(platform, f"ops-{busy.slug}@platform.example", "admin password long enough", "Ops")
    console = admin_sign_in(live_server, admin.email, "admin password long enough")
    r = console.get("/admin/usage")
    assert r.status_code == 200
    row = re.search(rf'<tr data-slug="{busy.slug}">(.*?)</tr>', r.text).group(1)
    cells = re.findall(r"<td>([^<]*)</td>", row)
    assert cells[1:3] == ["3", "3"]  # recipients and segments submitted
    assert re.search(rf'<tr data-slug="{quiet.slug}">', r.text)
    assert secret_text not in r.text and "+14155550177" not in r.text
    assert r.text.index(busy.slug) < r.text.index(quiet.slug)  # busiest first
    assert console.get("/admin/usage?days=90").status_code == 200
    assert console.get("/admin/usage?days=1").status_code == 400
    # Not for a workspace's people, nor without signing in.
    owner = sign_in(live_server, busy.slug, owner_email(busy))
    owner.headers["Host"] = f"{live_server.platform.settings.base_domain}:{live_server.port}"
    assert owner.get("/admin/usage").status_code in (302, 401, 403)
    stranger = identity_client(live_server)
    r = stranger.get("/admin/usage")
    assert r.status_code == 302 and r.headers["Location"].startswith("/admin/login"), r.status_code
