"""recipients.message_id -> messages.id is enforced by the database (migration 0003 of messaging).

The reference is checked once per statement by triggers rather than once per row by a
foreign key; these tests hold the triggers to everything the foreign key guaranteed,
including under concurrent transactions, against the real database as the tenant's role.
"""

from __future__ import annotations

import threading

import peewee
import pytest

from core.db import tenant_transaction

from tests.support.messaging import sql


def _message(t, n_recipients: int = 1) -> tuple[int, list[int]]:
    with tenant_transaction(t.ref) as db:
        mid = db.execute_sql("INSERT INTO messages (text, encoding, segments, source, created_by) "
                             "VALUES ('hello', 'GSM-7', 1, 'api', 'test') RETURNING id").fetchone()[0]
        rids = [r[0] for r in db.execute_sql(
            "INSERT INTO recipients (message_id, phone) SELECT %s, '+1415555' || lpad(g::text, 4, '0') "
            "FROM generate_series(1, %s) g RETURNING id", (mid, n_recipients)).fetchall()]
    return mid, rids


def _counts(t, mid: int) -> tuple[int, int, int]:
    (m, r, e), = sql(t, "SELECT (SELECT count(*) FROM messages WHERE id = %s), "
                        "(SELECT count(*) FROM recipients WHERE message_id = %s), "
                        "(SELECT count(*) FROM recipient_events e JOIN recipients r ON r.id = e.recipient_id "
                        " WHERE r.message_id = %s)", (mid, mid, mid))
    return m, r, e


def _refused(t, statement: str, params=()) -> str:
    with pytest.raises(peewee.DatabaseError) as caught:
        sql(t, statement, params)
    return str(caught.value)


def test_a_recipient_of_a_missing_message_is_refused_with_the_whole_statement(make_tenant):
    t = make_tenant("ref")
    mid, _ = _message(t)
    before = sql(t, "SELECT count(*) FROM recipients")[0][0]
    error = _refused(t, "INSERT INTO recipients (message_id, phone) VALUES (%s, '+14155550100'), (%s, '+14155550101')",
                     (mid, mid + 1000))
    assert 'violates its reference to "messages"' in error
    assert sql(t, "SELECT count(*) FROM recipients")[0][0] == before  # the valid row went with it
    # Many recipients of one existing message (the bulk shape) pass; so does an empty insert.
    sql(t, "INSERT INTO recipients (message_id, phone) SELECT %s, '+1415555' || lpad(g::text, 4, '0') "
           "FROM generate_series(1, 1000) g", (mid,))
    sql(t, "INSERT INTO recipients (message_id, phone) SELECT message_id, phone FROM recipients WHERE false")
    assert _counts(t, mid)[1] == 1001


def test_deleting_a_message_deletes_its_recipients_and_their_history(make_tenant):
    t = make_tenant("ref")
    mid, rids = _message(t, 3)
    other, _ = _message(t, 2)
    sql(t, "INSERT INTO recipient_events (recipient_id, from_state, to_state, source) "
           "SELECT id, 'pending', 'processed', 'claim' FROM recipients WHERE message_id = %s", (mid,))
    assert _counts(t, mid) == (1, 3, 3)
    sql(t, "DELETE FROM messages WHERE id = %s", (mid,))
    assert _counts(t, mid) == (0, 0, 0)
    assert _counts(t, other) == (1, 2, 0)  # nobody else's


def test_neither_key_moves(make_tenant):
    t = make_tenant("ref")
    mid, (rid,) = _message(t)
    other, _ = _message(t)
    assert "would move a message reference" in _refused(
        t, "UPDATE recipients SET message_id = %s WHERE id = %s", (other, rid))
    assert "would move a message reference" in _refused(t, "UPDATE messages SET id = id + 100000 WHERE id = %s",
                                                         (mid,))
    # An update that names the column without changing it (as an ORM save does) is fine.
    sql(t, "UPDATE recipients SET message_id = message_id, state = 'processed' WHERE id = %s", (rid,))
    assert sql(t, "SELECT message_id, state FROM recipients WHERE id = %s", (rid,)) == [(mid, "processed")]


def test_messages_are_truncated_only_with_their_recipients(make_tenant):
    t = make_tenant("ref")
    mid, _ = _message(t, 2)
    assert "while \"recipients\" refers to it" in _refused(t, "TRUNCATE messages")
    assert _counts(t, mid) == (1, 2, 0)
    sql(t, "TRUNCATE messages, recipients, recipient_events")
    assert _counts(t, mid) == (0, 0, 0)


def _in_thread(t, statement, params, hold: threading.Event | None, started: threading.Event, result: dict):
    def run():
        try:
            with tenant_transaction(t.ref) as db:
                db.execute_sql(statement, params)
                started.set()
                if hold is not None:
                    hold.wait(10)
            result["ok"] = True
        except Exception as exc:
            result["error"] = exc
        finally:
            started.set()
    th = threading.Thread(target=run)
    th.start()
    return th


def test_a_delete_waits_for_a_transaction_adding_recipients_and_then_takes_them(make_tenant):
    t = make_tenant("ref")
    mid, _ = _message(t)
    hold, started, adding = threading.Event(), threading.Event(), {}
    th = _in_thread(t, "INSERT INTO recipients (message_id, phone) VALUES (%s, '+14155550199')", (mid,),
                    hold, started, adding)
    try:
        assert started.wait(10) and "error" not in adding
        # The message is locked by the adding transaction: a delete cannot go ahead meanwhile.
        error = _refused(t, "SET LOCAL lock_timeout = '300ms'; DELETE FROM messages WHERE id = %s", (mid,))
        assert "lock timeout" in error
    finally:
        hold.set()
        th.join(10)
    assert adding == {"ok": True}
    assert _counts(t, mid) == (1, 2, 0)
    sql(t, "DELETE FROM messages WHERE id = %s", (mid,))
    assert _counts(t, mid) == (0, 0, 0)  # no orphan left behind


def test_recipients_added_while_their_message_is_being_deleted_are_refused(make_tenant):
    t = make_tenant("ref")
    mid, _ = _message(t)
    hold, started, deleting = threading.Event(), threading.Event(), {}
    deleter = _in_thread(t, "DELETE FROM messages WHERE id = %s", (mid,), hold, started, deleting)
    assert started.wait(10) and "error" not in deleting
    added_started, adding = threading.Event(), {}
    adder = _in_thread(t, "INSERT INTO recipients (message_id, phone) VALUES (%s, '+14155550198')", (mid,),
                       None, added_started, adding)
    adder.join(0.5)
    assert adder.is_alive()  # waiting for the delete to end
    hold.set()
    deleter.join(10)
    adder.join(10)
    assert deleting == {"ok": True}
    assert 'violates its reference to "messages"' in str(adding.get("error"))
    assert _counts(t, mid) == (0, 0, 0)
    assert sql(t, "SELECT count(*) FROM recipients WHERE message_id NOT IN (SELECT id FROM messages)") == [(0,)]
