"""Cross-tenant access is impossible at the database level, not merely avoided by code."""

import peewee
import psycopg2
import psycopg2.errors
import pytest
from playhouse.pool import PooledPostgresqlDatabase

from core.db import TenantContextMissing, tenant_transaction


def app_conn(platform):
    return psycopg2.connect(platform.app_url)


def test_serving_role_cannot_read_tenant_table_outside_tenant_transaction(platform, make_tenant):
    a = make_tenant("iso")
    conn = app_conn(platform)
    try:
        with conn.cursor() as cur:
            with pytest.raises(psycopg2.errors.InsufficientPrivilege) as exc:
                cur.execute(f'SELECT * FROM "{a.schema_name}".users')
            assert "permission denied for schema" in str(exc.value)
        conn.rollback()
        with conn.cursor() as cur:
            # A query that forgets the tenant context finds no table at all.
            with pytest.raises(psycopg2.errors.UndefinedTable):
                cur.execute("SELECT * FROM users")
    finally:
        conn.close()


def test_tenant_a_cannot_read_or_write_tenant_b(platform, make_tenant):
    a, b = make_tenant("a"), make_tenant("b")
    conn = app_conn(platform)
    try:
        for statement in (f'SELECT * FROM "{b.schema_name}".users',
                          f"INSERT INTO \"{b.schema_name}\".users (email, role) VALUES ('x@y.z', 'user')",
                          f'DELETE FROM "{b.schema_name}".users',
                          "SELECT * FROM public.tenant"):
            with conn.cursor() as cur:
                cur.execute(f'SET LOCAL ROLE "{a.role_name}"')
                cur.execute(f'SET LOCAL search_path TO "{a.schema_name}"')
                cur.execute("SELECT count(*) FROM users")
                assert cur.fetchone()[0] == 1  # A sees its own owner
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement)
            conn.rollback()
    finally:
        conn.close()
    # B's data is untouched.
    with tenant_transaction(b.ref) as db:
        assert db.execute_sql("SELECT count(*) FROM users").fetchone()[0] == 1


def test_pool_of_one_does_not_leak_tenant_context(platform, make_tenant):
    a, b = make_tenant("pa"), make_tenant("pb")
    db = PooledPostgresqlDatabase(platform.app_url, max_connections=1)
    try:
        with pytest.raises(peewee.ProgrammingError, match="no_such_table"):
            with tenant_transaction(a.ref, db=db):
                assert db.execute_sql("SELECT current_user").fetchone()[0] == a.role_name
                db.execute_sql("SELECT * FROM no_such_table")  # errors mid-transaction
        with tenant_transaction(b.ref, db=db):
            user, path = db.execute_sql("SELECT current_user, current_setting('search_path')").fetchone()
            assert user == b.role_name
            assert path.strip('"') == b.schema_name
            assert db.execute_sql("SELECT email FROM users").fetchone()[0] == f"owner@{b.slug}.example"
        # Outside any tenant transaction the same connection is the bare serving role again.
        with db.connection_context():
            user, path = db.execute_sql("SELECT current_user, current_setting('search_path')").fetchone()
            assert user == platform.roles.app
            assert path in ('""', "")
    finally:
        db.close_all()


def test_serving_role_has_no_superpowers_and_owns_no_tenant_table(platform, make_tenant):
    make_tenant("own")
    conn = app_conn(platform)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolinherit "
                        "FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone() == (False, False, False, False, False)
            cur.execute("""
                SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname LIKE 't\\_%%' AND c.relowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
            """)
            assert cur.fetchone()[0] == 0
            cur.execute("""
                SELECT count(*) FROM pg_namespace n
                 WHERE n.nspname LIKE 't\\_%%' AND n.nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user)
            """)
            assert cur.fetchone()[0] == 0
            # Tenant tables exist and belong to tenant roles.
            cur.execute("""
                SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 JOIN pg_roles r ON r.oid = c.relowner
                 WHERE n.nspname LIKE 't\\_%%' AND r.rolname LIKE %s
            """, (platform.roles.prefix + "\\_t\\_%",))
            assert cur.fetchone()[0] > 0
    finally:
        conn.close()


def test_serving_role_cannot_create_roles_or_schemas(platform):
    conn = app_conn(platform)
    try:
        for statement in ("CREATE ROLE sneaky", "CREATE SCHEMA sneaky", "CREATE TABLE public.sneaky (x int)"):
            with conn.cursor() as cur:
                with pytest.raises((psycopg2.errors.InsufficientPrivilege,)):
                    cur.execute(statement)
            conn.rollback()
    finally:
        conn.close()


def test_tenant_role_cannot_reach_the_catalogue(platform, make_tenant):
    a = make_tenant("cat")
    with pytest.raises(peewee.ProgrammingError, match="permission denied for schema public"):
        with tenant_transaction(a.ref) as db:
            db.execute_sql("SELECT slug FROM public.tenant")


def test_tenant_work_without_tenant_fails_closed(platform):
    with pytest.raises(TenantContextMissing):
        with tenant_transaction():
            pass


def test_a_tenant_transaction_that_cannot_enter_leaves_the_connection_usable(platform):
    """BEGIN and SET LOCAL ROLE go ahead of the transaction's first statement, in its round trip;
    when the role is gone that statement fails, and the transaction that BEGIN opened must be ended,
    or the thread's connection stays in an aborted transaction."""
    from core.db import TenantRef, app_db, connection, tenant_transaction

    ghost = TenantRef(id=0, slug="ghost", schema_name="ghost_schema", role_name="no_such_role_here")
    with connection():
        with pytest.raises(Exception) as exc:
            with tenant_transaction(ghost):
                app_db.execute_sql("SELECT 1")
        assert "no_such_role_here" in str(exc.value)
        assert app_db.execute_sql("SELECT 1").fetchone() == (1,)
        with app_db.atomic():
            assert app_db.execute_sql("SELECT current_user = session_user").fetchone() == (True,)


def test_no_statement_runs_in_a_tenant_transaction_before_its_role_is_set(platform, make_tenant):
    """The transaction's setup is sent with its first statement, whichever way that statement goes:
    through execute_sql, a model query, or a cursor taken for direct use (COPY); a transaction that
    ran nothing sent nothing and leaves the connection outside any transaction."""
    import psycopg2.extensions as ext

    from core.db import app_db, connection

    t = make_tenant("lazyb")
    who = "SELECT current_user, current_setting('search_path')"
    with connection():
        with tenant_transaction(t.ref):
            assert app_db.execute_sql(who).fetchone() == (t.role_name, t.schema_name)
        with tenant_transaction(t.ref):
            cur = app_db.cursor()
            cur.execute(who)
            assert cur.fetchone() == (t.role_name, t.schema_name)
        with tenant_transaction(t.ref):
            pass
        assert app_db.connection().get_transaction_status() == ext.TRANSACTION_STATUS_IDLE
        assert app_db.execute_sql("SELECT current_user = session_user").fetchone() == (True,)
        with pytest.raises(ZeroDivisionError):
            with tenant_transaction(t.ref):
                raise ZeroDivisionError  # before any statement: nothing to roll back, nothing left
        assert app_db.connection().get_transaction_status() == ext.TRANSACTION_STATUS_IDLE
        assert app_db.execute_sql("SELECT current_user = session_user").fetchone() == (True,)


def test_a_tenant_transaction_inside_another_gives_the_outer_work_its_own_role_back(platform, make_tenant):
    """A workspace's work done as a savepoint of a catalogue transaction (billing: a payment recorded
    in public tables moves the workspace's subscription) leaves the rest of that transaction as it
    was: the serving role, or the outer workspace's role, not the inner workspace's."""
    from core.db import app_db, connection

    a, b = make_tenant("nesta"), make_tenant("nestb")
    who = "SELECT current_user, current_setting('search_path')"
    with connection(), app_db.atomic():
        outside = app_db.execute_sql(who).fetchone()
        with tenant_transaction(a.ref):
            assert app_db.execute_sql(who).fetchone()[0] == a.role_name
        assert app_db.execute_sql(who).fetchone() == outside
        assert app_db.execute_sql("SELECT count(*) FROM public.tenant").fetchone()[0] >= 2  # the catalogue again
    with tenant_transaction(a.ref):
        with tenant_transaction(b.ref):
            assert app_db.execute_sql(who).fetchone() == (b.role_name, b.schema_name)
        assert app_db.execute_sql(who).fetchone() == (a.role_name, a.schema_name)
