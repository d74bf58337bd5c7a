"""Which failures count as "the database cannot be reached" (503 + one log line), against a real
PostgreSQL that crashes under open connections."""

from __future__ import annotations

import peewee
import psycopg2
import pytest

from core.embedded_pg import EmbeddedPostgres
from core.outage import is_unavailable


@pytest.fixture
def crashing_pg(tmp_path):
    pg = EmbeddedPostgres(tmp_path / "pg", fast=True)
    url = pg.start()
    yield pg, url
    if pg.is_running():
        pg.stop(mode="immediate")


def first_failure(run) -> BaseException:
    try:
        run()
    except Exception as exc:  # what the request handler would see
        return exc
    raise AssertionError("the statement ran on a crashed server")


def test_connections_idle_through_a_crash_count_as_unavailable(crashing_pg):
    """A pooled connection that sat idle while PostgreSQL crashed fails its next statement with
    psycopg2's base ``DatabaseError`` and no SQLSTATE ("server closed the connection
    unexpectedly"), not an ``OperationalError``: a phone's poll answered 500 with a traceback
    instead of 503 when it drew such a connection (a CI run of test_faults)."""
    pg, url = crashing_pg
    raw = [psycopg2.connect(url) for _ in range(3)]
    for conn in raw:
        conn.autocommit = True
    db = peewee.PostgresqlDatabase(psycopg2.extensions.parse_dsn(url).pop("dbname"),
                                   **{k: v for k, v in psycopg2.extensions.parse_dsn(url).items() if k != "dbname"})
    db.connect()
    db.execute_sql("SELECT 1")
    pg.stop(mode="immediate")  # no goodbye to the clients: what a crash leaves

    failures = [first_failure(lambda c=conn: c.cursor().execute("BEGIN; SET LOCAL search_path TO public"))
                for conn in raw]
    failures.append(first_failure(lambda: db.execute_sql("SELECT 1")))
    # The case this test is for does happen here (else it would prove nothing) ...
    assert any(type(exc) is psycopg2.DatabaseError for exc in failures), [type(e) for e in failures]
    # ... and every failure, raw or wrapped by peewee, and the connection's later ones, say "unavailable".
    failures += [first_failure(lambda c=conn: c.cursor().execute("SELECT 1")) for conn in raw]
    for exc in failures:
        assert is_unavailable(exc), (type(exc), exc)


def test_errors_the_server_reports_are_not_an_outage(crashing_pg):
    _pg, url = crashing_pg
    conn = psycopg2.connect(url)
    conn.autocommit = True
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE t (id int PRIMARY KEY)")
    cur.execute("INSERT INTO t VALUES (1)")
    for statement in ("SELEC 1", "INSERT INTO t VALUES (1)", "SELECT 1/0", "SELECT 'x'::int"):
        exc = first_failure(lambda s=statement: cur.execute(s))
        assert isinstance(exc, psycopg2.DatabaseError) and exc.pgcode, exc
        assert not is_unavailable(exc), (statement, exc)
        wrapped = peewee.DatabaseError(exc)
        assert not is_unavailable(wrapped), (statement, exc)
    conn.close()
