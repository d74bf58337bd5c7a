"""Sending through the native API: end to end through real simulated phones, idempotency,
validation with problem+json, encodings and segments, and the message list.

Everything runs against the real server and database; phones are the real companion code
with the simulator backend (or, where a test must choose the reports itself, a paired phone
whose device-protocol requests the test writes).
"""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest

from android_companion.backends.simulator import SimulatorBackend
from tests.support.messaging import parse_time, raw_device, row_counts, wait_for_states, wait_until
from tests.support.phones import api_client, start_phone
from tests.support.problems import problem as support_problem


def problem(r, status: int, code: str | None = None) -> dict:
    body = support_problem(r, status, code)
    assert body["status"] == status
    return body


# -- end to end -------------------------------------------------------------------------------

def test_single_multi_recipient_and_batch_sends_are_delivered_by_a_phone(live_server, make_tenant, tmp_path):
    t = make_tenant("send")
    c = api_client(live_server, t.slug)
    backend = SimulatorBackend(delivery_delay=0.02)
    phone = start_phone(live_server, t.slug, tmp_path / "phone", backend=backend)
    try:
        r = c.post("/api/v1/messages", json={"text": "Hello single", "to": "+14155550100", "reference": "one"})
        assert r.status_code == 202, r.text
        single = r.json()
        assert single["state"] == "pending" and single["reference"] == "one"
        assert (single["encoding"], single["segments"]) == ("GSM-7", 1)
        assert [x["phone"] for x in single["recipients"]] == ["+14155550100"]
        assert single["rejected"] == []

        # National formats are normalised with the tenant's region; the duplicate is dropped.
        r = c.post("/api/v1/messages", json={"text": "Hello many",
                                             "to": ["+14155550101", "4155550102", "(415) 555-0103", "+1 415 555 0101"]})
        assert r.status_code == 202, r.text
        multi = r.json()
        assert [x["phone"] for x in multi["recipients"]] == ["+14155550101", "+14155550102", "+14155550103"]

        r = c.post("/api/v1/messages", json={"messages": [
            {"text": "Batch one", "to": ["+14155550104"]},
            {"text": "Batch two", "to": ["+14155550105", "+14155550106"], "reference": "b2"}]})
        assert r.status_code == 202, r.text
        batch = r.json()["messages"]
        assert [m["reference"] for m in batch] == [None, "b2"]
        assert [len(m["recipients"]) for m in batch] == [1, 2]

        for mid in [single["id"], multi["id"]] + [m["id"] for m in batch]:
            m = wait_for_states(c, mid, {"delivered", "failed"})
            assert m["state"] == "delivered", m
            for rec in m["recipients"]:
                assert rec["state"] == "delivered" and rec["device_id"] == phone.state.device_id
                assert rec["attempts"] == 1 and rec["error_code"] is None
                assert rec["sent_at"] and rec["delivered_at"] and "waiting_reason" not in rec
                steps = [(h["from"], h["to"], h["source"]) for h in rec["history"]]
                assert steps == [(None, "pending", "api"), ("pending", "processed", "claim"),
                                 ("processed", "sent", "device"), ("sent", "delivered", "device")]
                times = [parse_time(h["at"]) for h in rec["history"]]
                assert times == sorted(times)
                assert [h["device_id"] for h in rec["history"][1:]] == [phone.state.device_id] * 3
    finally:
        phone.stop()
    over_the_air = sorted((s["to"], s["text"]) for s in backend.sent)
    assert over_the_air == sorted([("+14155550100", "Hello single"), ("+14155550101", "Hello many"),
                                   ("+14155550102", "Hello many"), ("+14155550103", "Hello many"),
                                   ("+14155550104", "Batch one"), ("+14155550105", "Batch two"),
                                   ("+14155550106", "Batch two")])


# -- idempotency --------------------------------------------------------------------------------

def test_same_key_and_body_replays_the_first_answer_and_creates_nothing(live_server, make_tenant):
    t = make_tenant("idem")
    c = api_client(live_server, t.slug)
    body = {"text": "Your order 42 shipped", "to": ["+14155550110", "+14155550111", "12345"], "reference": "o42"}
    first = c.post("/api/v1/messages", json=body, headers={"Idempotency-Key": "order-42"})
    assert first.status_code == 202, first.text
    assert first.headers["Idempotency-Key"] == "order-42"
    assert len(first.json()["recipients"]) == 2 and len(first.json()["rejected"]) == 1
    after_first = row_counts(t)
    assert after_first["messages"] == 1 and after_first["recipients"] == 2

    # The same request again (keys in another order: the same JSON object) replays the first answer.
    again = c.post("/api/v1/messages", json={"reference": "o42", "to": body["to"], "text": body["text"]},
                   headers={"Idempotency-Key": "order-42"})
    assert again.status_code == 202, again.text
    assert again.json() == first.json()
    assert again.headers["Idempotency-Key"] == "order-42"
    assert row_counts(t) == after_first

    # The same key with another body is refused, and changes nothing.
    other = c.post("/api/v1/messages", json=dict(body, text="Your order 43 shipped"),
                   headers={"Idempotency-Key": "order-42"})
    problem(other, 422, "idempotency-key-reused")
    assert row_counts(t) == after_first

    # Batches replay the same way; a new key is a new request.
    batch = {"messages": [{"text": "a", "to": ["+14155550112"]}, {"text": "b", "to": ["+14155550113"]}]}
    b1 = c.post("/api/v1/messages", json=batch, headers={"Idempotency-Key": "batch-1"})
    b2 = c.post("/api/v1/messages", json=batch, headers={"Idempotency-Key": "batch-1"})
    assert (b1.status_code, b2.status_code) == (202, 202)
    assert b2.json() == b1.json()
    fresh = c.post("/api/v1/messages", json=body, headers={"Idempotency-Key": "order-42-bis"})
    assert fresh.status_code == 202 and fresh.json()["id"] != first.json()["id"]
    counts = row_counts(t)
    assert (counts["messages"], counts["recipients"], counts["idempotency_keys"]) == (4, 6, 3)

    problem(c.post("/api/v1/messages", json=body, headers={"Idempotency-Key": "x" * 256}), 400,
            "invalid-idempotency-key")


class SlowFirstRequest:
    """Make a tenant's first request with ``key`` really slow: an uncommitted row with the same key,
    written in a separate transaction as the tenant, makes the request wait at its own insert, inside
    its transaction, after it took its idempotency lock. ``release()`` rolls the row back."""

    def __init__(self, platform, tenant, key: str):
        self.conn = psycopg2.connect(platform.app_url)
        self.monitor = psycopg2.connect(platform.app_url)
        self.monitor.autocommit = True
        with self.conn.cursor() as cur:
            cur.execute(f'SET LOCAL ROLE "{tenant.role_name}"')
            cur.execute(f'SET LOCAL search_path TO "{tenant.schema_name}"')
            cur.execute("INSERT INTO idempotency_keys (key, request_hash, status, response) "
                        "VALUES (%s, 'held', 0, '{}')", (key,))

    def blocked(self) -> int:
        with self.monitor.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_locks l WHERE NOT l.granted AND %s = ANY (pg_blocking_pids(l.pid))",
                        (self.conn.get_backend_pid(),))
            return cur.fetchone()[0]

    def release(self):
        self.conn.rollback()

    def close(self):
        self.conn.close()
        self.monitor.close()


def test_retry_while_the_first_request_is_in_flight_gets_409_then_the_answer(platform, live_server, make_tenant):
    t = make_tenant("idfl")
    c, c2 = api_client(live_server, t.slug), api_client(live_server, t.slug)
    body = {"text": "Transfer 100", "to": ["+14155550115"]}
    key = "transfer-9"
    slow = SlowFirstRequest(platform, t, key)
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(c.post, "/api/v1/messages", json=body, headers={"Idempotency-Key": key})
            wait_until(slow.blocked, 10, what="the first request to be in flight")
            problem(c2.post("/api/v1/messages", json=body, headers={"Idempotency-Key": key}), 409,
                    "idempotency-in-flight")
            slow.release()
            r1 = first.result(timeout=20)
        assert r1.status_code == 202, r1.text
        replay = c2.post("/api/v1/messages", json=body, headers={"Idempotency-Key": key})
        assert replay.status_code == 202 and replay.json() == r1.json()
        assert row_counts(t)["messages"] == 1
    finally:
        slow.close()


def test_a_key_in_flight_in_one_tenant_does_not_block_another_tenant(platform, live_server, make_tenant):
    a, b = make_tenant("ida"), make_tenant("idb")
    ca, cb = api_client(live_server, a.slug), api_client(live_server, b.slug)
    body = {"text": "Welcome", "to": ["+14155550116"]}
    key = "signup-1"  # keys are the tenant's own: another workspace may use the same one
    slow = SlowFirstRequest(platform, a, key)
    try:
        with ThreadPoolExecutor(1) as pool:
            first = pool.submit(ca.post, "/api/v1/messages", json=body, headers={"Idempotency-Key": key})
            wait_until(slow.blocked, 10, what="tenant A's request to be in flight")
            rb = cb.post("/api/v1/messages", json=body, headers={"Idempotency-Key": key})
            slow.release()
            ra = first.result(timeout=20)
        assert ra.status_code == 202, ra.text
        assert rb.status_code == 202, rb.text
        assert row_counts(b)["messages"] == 1
    finally:
        slow.close()


# -- validation ------------------------------------------------------------------------------------

def test_invalid_requests_get_problem_details_per_field_and_write_nothing(live_server, make_tenant):
    t = make_tenant("val")
    c = api_client(live_server, t.slug)
    before = row_counts(t)
    cases = [
        ({"text": "hi", "to": ["12345", "hello"]}, {"to"}),
        ({"text": "x" * 1531, "to": ["+14155550120"]}, {"text"}),
        ({"text": "ж" * 671, "to": ["+14155550120"]}, {"text"}),
        ({"text": "  ", "to": ["+14155550120"]}, {"text"}),
        ({"to": ["+14155550120"]}, {"text"}),
        ({"text": "hi"}, {"to"}),
        ({"text": "hi", "to": ["+14155550120"], "colour": "red"}, {"colour"}),
        ({"text": "hi", "to": ["+14155550120"], "priority": 101, "sim_slot": 9}, {"priority", "sim_slot"}),
        ({"text": "hi", "to": ["+14155550120"], "send_at": "tomorrow"}, {"send_at"}),
        ({"messages": [{"text": "fine", "to": ["+14155550120"]}, {"text": "x" * 2000, "to": ["+14155550121"]},
                       {"text": "fine", "to": ["nope"]}]}, {"messages[1].text", "messages[2].to"}),
    ]
    for body, fields in cases:
        r = c.post("/api/v1/messages", json=body)
        p = problem(r, 422, "validation-failed")
        assert {e["field"] for e in p["errors"]} == fields, (body, p)
        assert all(e["message"] for e in p["errors"])
    # Messages name what is wrong.
    p = c.post("/api/v1/messages", json={"text": "{" * 800, "to": ["+14155550120"]}).json()  # 2 units each
    assert "11 segments" in p["errors"][0]["message"] and "GSM-7" in p["errors"][0]["message"]
    p = c.post("/api/v1/messages", json={"text": "x" * 1531, "to": ["+14155550120"]}).json()  # the schema's bound
    assert "10 segments" in p["errors"][0]["message"] and "1530 GSM-7" in p["errors"][0]["message"]
    p = c.post("/api/v1/messages", json={"text": "hi", "to": ["12345", "hello"]}).json()
    assert "12345" in p["errors"][0]["message"] and "hello" in p["errors"][0]["message"]
    problem(c.post("/api/v1/messages", data="{not json", headers={"Content-Type": "application/json"}), 400,
            "invalid-json")
    problem(c.post("/api/v1/messages", json={"messages": []}), 422, "validation-failed")
    problem(c.post("/api/v1/messages", json={"text": "hi", "to": ["+14155550120"], "device_id": 999999}), 422,
            "validation-failed")
    assert row_counts(t) == before


def test_text_postgresql_cannot_store_is_refused_however_it_is_encoded(live_server, make_tenant):
    """A NUL or a lone surrogate, escaped, as raw bytes, or in a UTF-16 body: a 400 that says
    why, never a 500, and nothing written (most bodies skip the check: it must not skip these)."""
    t = make_tenant("unstor")
    c = api_client(live_server, t.slug)
    before = row_counts(t)
    json_type = {"Content-Type": "application/json"}
    bodies = [
        b'{"text": "a\\u0000b", "to": ["+14155550130"]}',
        b'{"text": "a\\ud800b", "to": ["+14155550130"]}',
        b'{"text": "a\xed\xa0\x80b", "to": ["+14155550130"]}',  # a surrogate as raw UTF-8 bytes
        '{"text": "a\\u0000b", "to": ["+14155550130"]}'.encode("utf-16"),
        '{"text": "hi", "to": ["+1415555\\u0000"]}'.encode("utf-32"),
    ]
    for raw in bodies:
        r = c.post("/api/v1/messages", data=raw, headers=json_type)
        assert problem(r, 400, "invalid-characters")["detail"], raw
    assert row_counts(t) == before
    # The same text, storable, goes through.
    r = c.post("/api/v1/messages", data='{"text": "a\\u00e9b", "to": ["+14155550130"]}'.encode("utf-16"),
               headers=json_type)
    assert r.status_code == 202 and r.json()["text"] == "a\u00e9b", r.text


def test_valid_recipients_are_accepted_and_invalid_ones_listed(live_server, make_tenant):
    t = make_tenant("mix")
    c = api_client(live_server, t.slug)
    r = c.post("/api/v1/messages", json={"text": "mixed", "to": ["+14155550121", "12345", "4155550122",
                                                                "+999123456", 42]})
    assert r.status_code == 202, r.text
    m = r.json()
    assert [x["phone"] for x in m["recipients"]] == ["+14155550121", "+14155550122"]
    rejected = {x["index"]: x for x in m["rejected"]}
    assert sorted(rejected) == [1, 3, 4]
    assert rejected[1]["input"] == "12345" and "not a valid phone number" in rejected[1]["reason"]
    assert rejected[3]["input"] == "+999123456" and rejected[3]["reason"]
    assert rejected[4]["input"] == "42" and "must be text" in rejected[4]["reason"]
    counts = row_counts(t)
    assert (counts["messages"], counts["recipients"]) == (1, 2)
    got = c.get(f"/api/v1/messages/{m['id']}").json()
    assert [x["phone"] for x in got["recipients"]] == ["+14155550121", "+14155550122"]


@pytest.mark.parametrize("text, encoding, segments", [
    ("a" * 160, "GSM-7", 1), ("a" * 161, "GSM-7", 2), ("a" * 306, "GSM-7", 2), ("a" * 307, "GSM-7", 3),
    ("a" * 1530, "GSM-7", 10),
    ("€" * 80, "GSM-7", 1), ("€" * 80 + "a", "GSM-7", 2), ("a" * 159 + "^", "GSM-7", 2),
    ("{}[]~|\\" + "a" * 146, "GSM-7", 1), ("{}[]~|\\" + "a" * 147, "GSM-7", 2),
    ("Grüße aus Köln, señor! é à ø Å £$¥ §¿¡", "GSM-7", 1), ("naïve", "UCS-2", 1), ("ç", "UCS-2", 1),
    ("ж" * 70, "UCS-2", 1), ("ж" * 71, "UCS-2", 2), ("ж" * 134, "UCS-2", 2), ("ж" * 135, "UCS-2", 3),
    ("ж" * 670, "UCS-2", 10),
    ("😀" * 35, "UCS-2", 1), ("😀" * 35 + "a", "UCS-2", 2), ("a" * 159 + "😀", "UCS-2", 3),
])
def test_encoding_and_segments(live_server, make_tenant, text, encoding, segments):
    t = make_tenant("seg")
    c = api_client(live_server, t.slug)
    r = c.post("/api/v1/messages", json={"text": text, "to": ["+14155550123"]})
    assert r.status_code == 202, r.text
    assert (r.json()["encoding"], r.json()["segments"]) == (encoding, segments)
    got = c.get(f"/api/v1/messages/{r.json()['id']}").json()
    assert (got["encoding"], got["segments"], got["text"]) == (encoding, segments, text)


# -- the message list -------------------------------------------------------------------------------

def _cursor(data) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_message_list_filters_and_cursor_paging(live_server, make_tenant, tmp_path):
    t = make_tenant("list")
    c = api_client(live_server, t.slug)
    dev = raw_device(live_server, t.slug, tmp_path / "dev")

    def send(**body):
        r = c.post("/api/v1/messages", json=body)
        assert r.status_code == 202, r.text
        return r.json()

    m1 = send(text="one", to=["+14155550130"], reference="r-1")
    m2 = send(text="two", to=["+14155550131", "+14155550132"])
    claimed = {x["to"]: x["id"] for x in dev.fetch()}
    assert sorted(claimed) == ["+14155550130", "+14155550131", "+14155550132"]
    assert dev.report({"message_id": claimed["+14155550130"], "state": "delivered"}).status_code == 200
    assert dev.report({"message_id": claimed["+14155550131"], "state": "sent"}).status_code == 200
    m3 = send(text="three", to=["+14155550133"])
    m4 = send(text="four", to=["+14155550134"], reference="r-1")
    ids = {"m1": m1["id"], "m2": m2["id"], "m3": m3["id"], "m4": m4["id"]}

    def listed(**params):
        r = c.get("/api/v1/messages", params=params)
        assert r.status_code == 200, r.text
        return [m["id"] for m in r.json()["messages"]]

    def names(*keys):
        return [ids[k] for k in keys]

    assert listed() == names("m4", "m3", "m2", "m1")
    assert listed(state="delivered") == names("m1")
    assert listed(state="sent") == names("m2")
    assert listed(state="processed") == names("m2")
    assert listed(state="pending") == names("m4", "m3")
    assert listed(device_id=str(dev.device_id)) == names("m2", "m1")
    assert listed(phone="(415) 555-0132") == names("m2")
    assert listed(phone="+14155550133") == names("m3")
    assert listed(reference="r-1") == names("m4", "m1")
    assert listed(reference="r-1", state="pending") == names("m4")
    assert listed(since=m3["created_at"]) == names("m4", "m3")
    assert listed(until=m3["created_at"]) == names("m2", "m1")
    assert listed(since=m2["created_at"], until=m4["created_at"]) == names("m3", "m2")
    whole = c.get("/api/v1/messages", params={"state": "processed"}).json()["messages"][0]
    assert whole["state"] == "processed" and {r["state"] for r in whole["recipients"]} == {"processed", "sent"}

    # Cursor paging walks everything once, newest first.
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = c.get("/api/v1/messages", params=params).json()
        seen += [m["id"] for m in page["messages"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == names("m4", "m3", "m2", "m1") and pages == 4
    page = c.get("/api/v1/messages", params={"reference": "r-1", "limit": 1}).json()
    assert [m["id"] for m in page["messages"]] == names("m4") and page["next_cursor"]
    page = c.get("/api/v1/messages", params={"reference": "r-1", "limit": 1, "cursor": page["next_cursor"]}).json()
    assert [m["id"] for m in page["messages"]] == names("m1") and page["next_cursor"] is None

    for bad in ("!!!", "not-a-cursor", _cursor({"before": 0}), _cursor({"before": "x"}), _cursor({"after": 5}),
                _cursor([1])):
        problem(c.get("/api/v1/messages", params={"cursor": bad}), 400, "invalid-cursor")
    problem(c.get("/api/v1/messages", params={"state": "lost"}), 400, "invalid-parameter")
    problem(c.get("/api/v1/messages", params={"limit": "0"}), 400, "invalid-parameter")
    problem(c.get("/api/v1/messages", params={"since": "yesterday"}), 400, "invalid-parameter")
    problem(c.get("/api/v1/messages", params={"phone": "12345"}), 400, "invalid-parameter")
    problem(c.get("/api/v1/messages", params={"device_id": "abc"}), 400, "invalid-parameter")
    problem(c.get("/api/v1/messages/abc"), 404, "not-found")
    problem(c.get("/api/v1/messages/999999"), 404, "not-found")


# -- the ids in the answer -------------------------------------------------------------------------

def test_each_recipient_id_in_the_answer_is_that_recipients_row(live_server, make_tenant):
    from tests.support.messaging import sql

    t = make_tenant("ids")
    c = api_client(live_server, t.slug)
    phones = [f"+1415555{i:04d}" for i in range(300)]
    r = c.post("/api/v1/messages", json={"messages": [
        {"text": "first", "to": phones[:200]}, {"text": "second", "to": phones[100:] + ["+14155550000"]}]})
    assert r.status_code == 202, r.text
    answered = {(m["id"], x["id"], x["phone"]) for m in r.json()["messages"] for x in m["recipients"]}
    assert len(answered) == 200 + 201
    assert answered == set(sql(t, "SELECT message_id, id, phone FROM recipients"))


def test_recipient_ids_are_matched_to_phones_in_any_row_order():
    from addons.messaging.submit import recipient_ids

    messages = [(10, ["+1", "+2", "+3"]), (11, ["+3", "+1"])]
    rows = [(100, 10, "+1"), (101, 10, "+2"), (102, 10, "+3"), (103, 11, "+3"), (104, 11, "+1")]
    expected = [[100, 101, 102], [103, 104]]
    assert recipient_ids(messages, *map(list, zip(*rows))) == expected
    # Rows back in another order (the ids did not follow the insert order): matched, not sliced.
    shuffled = [(103, 11, "+3"), (100, 10, "+1"), (104, 11, "+1"), (102, 10, "+3"), (101, 10, "+2")]
    assert recipient_ids(messages, *map(list, zip(*shuffled))) == expected
    # The same phone under the other message in the slot: the message ids tell them apart.
    swapped = [(100, 10, "+1"), (101, 10, "+2"), (103, 11, "+3"), (102, 10, "+3"), (104, 11, "+1")]
    assert recipient_ids(messages, *map(list, zip(*swapped))) == [[100, 101, 102], [103, 104]]
