"""core.db.array_literal: what a bulk send passes to PostgreSQL instead of psycopg2's list adaptation.

Round trips through a real PostgreSQL: what comes back must be exactly what went in,
hostile text included (quotes, backslashes, braces, commas, the word NULL, SQL).
"""

from __future__ import annotations

import datetime as dt

import psycopg2
import pytest

from core.db import array_literal

HOSTILE = ['a"b', "back\\slash", "\\", '"', "{x,y}", "a,b", " spaced ", "NULL", "null", "", "it's",
           "'); DROP TABLE messages; --", "ü€😀", "new\nline\ttab", "+14155550100"]


@pytest.fixture(scope="module")
def cur(test_env):
    conn = psycopg2.connect(test_env["DATABASE_URL"])
    yield conn.cursor()
    conn.close()


@pytest.mark.parametrize("values", [
    HOSTILE,
    HOSTILE + [None],
    [None, "x", None],
    ["+14155550100", "+14155550101"],  # the fast path: plain text
    [],
])
def test_text_round_trips(cur, values):
    cur.execute("SELECT %s::text[]", (array_literal(values),))
    assert cur.fetchone()[0] == values


@pytest.mark.parametrize("values, cast", [
    ([1, 2, -3, 2**62], "bigint[]"),
    ([1, None, 7], "bigint[]"),
    ([None], "bigint[]"),
    ([True, False, None], "boolean[]"),
    ([dt.datetime(2026, 11, 27, 3, 4, 5, 678901, tzinfo=dt.timezone.utc), None], "timestamptz[]"),
])
def test_other_types_round_trip(cur, values, cast):
    cur.execute(f"SELECT %s::{cast}", (array_literal(values),))
    assert cur.fetchone()[0] == values


def test_one_parameter_however_long(cur):
    phones = ["+1415555%04d" % i for i in range(1000)]
    cur.execute("SELECT cardinality(%s::text[]), (%s::text[])[1000]", (array_literal(phones),) * 2)
    assert cur.fetchone() == (1000, "+14155550999")
