"""Database bootstrap: the platform's roles, privileges and provisioning functions.

Run with an *administrative* connection (``DATABASE_URL``: a superuser, or a
role with CREATEROLE that owns the database). It is idempotent and runs before
every ``migrate``.

Roles (prefix configurable, so several platforms can share a cluster):

* ``<prefix>_app``: LOGIN NOINHERIT. Serves requests and runs workers. Member
  of every tenant role *without* inherit, so it holds no tenant privilege until
  it does ``SET LOCAL ROLE``.
* ``<prefix>_provisioner``: NOLOGIN CREATEROLE. Owns the two SECURITY DEFINER
  functions that create and drop a tenant's role and schema; the app role may
  call them and do nothing else with roles.
* ``<prefix>_t_<slug>``: NOLOGIN, one per tenant, owns schema ``t_<slug>``.
* ``<prefix>_tenants``: NOLOGIN, granted to every tenant role (with inherit). It may call the
  few ``public`` functions a tenant transaction needs (e.g. arming its due work, see
  :mod:`core.due`) and nothing else; the app role is not a member.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit, urlunsplit

import psycopg2
from psycopg2 import sql

SLUG_SQL_RE = "^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$"


class RoleNames:
    def __init__(self, prefix: str):
        self.prefix = prefix
        self.app = f"{prefix}_app"
        self.provisioner = f"{prefix}_provisioner"
        self.maintenance = f"{prefix}_maintenance"
        self.tenants = f"{prefix}_tenants"

    def tenant_role(self, slug: str) -> str:
        return f"{self.prefix}_t_{slug.replace('-', '_')}"

    @staticmethod
    def tenant_schema(slug: str) -> str:
        return f"t_{slug.replace('-', '_')}"


def database_name(url: str) -> str:
    path = urlsplit(url).path.lstrip("/")
    if not path:
        raise ValueError("DATABASE_URL must name a database, e.g. postgresql://user:pw@host/smsgw")
    return path


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, parts.fragment))


def with_credentials(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def ensure_database(admin_url: str, dbname: str) -> bool:
    """Create ``dbname`` if missing (connecting to the server's ``postgres`` db). True if created."""
    conn = psycopg2.connect(with_database(admin_url, "postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
            if cur.fetchone():
                return False
            cur.execute(sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(
                sql.Identifier(dbname)))
            return True
    finally:
        conn.close()


def drop_database(admin_url: str, dbname: str, role_prefix: str) -> None:
    """Tests and benchmarks: drop a scratch database and every role of its prefix."""
    conn = psycopg2.connect(with_database(admin_url, "postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
            # Tenant roles first: the provisioner granted their memberships and must go last.
            cur.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE %s "
                        "ORDER BY rolname LIKE %s DESC, rolname LIKE %s ASC",
                        (role_prefix.replace("_", r"\_") + r"\_%", role_prefix + r"\_t\_%",
                         role_prefix + r"\_provisioner"))
            for (role,) in cur.fetchall():
                cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
    finally:
        conn.close()


def _role_exists(cur, name: str) -> bool:
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
    return cur.fetchone() is not None


PROVISION_FUNCTIONS = """
CREATE OR REPLACE FUNCTION public.{prefix}_create_tenant_space(p_slug text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog
SET createrole_self_grant = 'set'
AS $fn$
DECLARE
  r text := '{prefix}_t_' || replace(p_slug, '-', '_');
  s text := 't_' || replace(p_slug, '-', '_');
BEGIN
  IF p_slug !~ '{slug_re}' THEN
    RAISE EXCEPTION 'invalid tenant slug %', p_slug USING ERRCODE = '22023';
  END IF;
  -- The provisioner gets SET (not INHERIT) on the new role: every inherited
  -- membership makes PostgreSQL's role-membership checks walk one more edge,
  -- which grows with the number of tenants (measured in bench/bench_kernel.py).
  EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', r);
  EXECUTE format('GRANT %I TO %I WITH INHERIT FALSE, SET TRUE', r, '{app}');
  EXECUTE format('GRANT %I TO %I WITH INHERIT TRUE, SET FALSE', '{tenants}', r);
  EXECUTE format('CREATE SCHEMA %I', s);
  EXECUTE format('REVOKE ALL ON SCHEMA %I FROM PUBLIC', s);
  EXECUTE format('ALTER SCHEMA %I OWNER TO %I', s, r);
END
$fn$;

CREATE OR REPLACE FUNCTION public.{prefix}_drop_tenant_space(p_slug text)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog
AS $fn$
DECLARE
  r text := '{prefix}_t_' || replace(p_slug, '-', '_');
  s text := 't_' || replace(p_slug, '-', '_');
BEGIN
  IF p_slug !~ '{slug_re}' THEN
    RAISE EXCEPTION 'invalid tenant slug %', p_slug USING ERRCODE = '22023';
  END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
    -- Dropping the schema needs the owner's privileges: inherit them just for this.
    EXECUTE format('GRANT %I TO %I WITH INHERIT TRUE', r, current_user);
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', s);
    EXECUTE format('DROP ROLE %I', r);
  ELSE
    EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', s);
  END IF;
END
$fn$;
"""


def bootstrap(admin_url: str, role_prefix: str, app_password: str) -> None:
    """Create or refresh the platform's roles, privileges and provisioning functions."""
    roles = RoleNames(role_prefix)
    dbname = database_name(admin_url)
    conn = psycopg2.connect(admin_url)
    try:
        with conn, conn.cursor() as cur:
            # Serialise concurrent bootstraps (two processes starting at once).
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('smsgw-bootstrap'))")
            cur.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
            admin_role, is_super = cur.fetchone()
            if not _role_exists(cur, roles.app):
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE "
                                    "NOBYPASSRLS").format(sql.Identifier(roles.app)))
            cur.execute(sql.SQL("ALTER ROLE {} WITH LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE "
                                "NOBYPASSRLS PASSWORD %s").format(sql.Identifier(roles.app)), (app_password,))
            # An empty search_path: unqualified names resolve only inside a tenant transaction.
            cur.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = ''").format(
                sql.Identifier(roles.app), sql.Identifier(dbname)))
            for role, attrs in ((roles.provisioner, "NOLOGIN CREATEROLE"),
                                (roles.maintenance, "NOLOGIN")):
                if not _role_exists(cur, role):
                    cur.execute(sql.SQL("CREATE ROLE {} " + attrs).format(sql.Identifier(role)))
                if not is_super:
                    cur.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(role), sql.Identifier(admin_role)))
            # Every tenant role is a member of the tenants role: the provisioner grants it.
            if not _role_exists(cur, roles.tenants):
                cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOINHERIT").format(sql.Identifier(roles.tenants)))
            cur.execute(sql.SQL("GRANT {} TO {} WITH ADMIN TRUE, INHERIT FALSE, SET FALSE").format(
                sql.Identifier(roles.tenants), sql.Identifier(roles.provisioner)))
            # The maintenance role owns SECURITY DEFINER housekeeping functions (e.g. purging
            # audit rows past retention). The app role may call them, never become it.
            cur.execute("SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                        "JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = %s AND u.rolname = %s",
                        (roles.maintenance, roles.app))
            if cur.fetchone():
                cur.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(roles.maintenance),
                                                                sql.Identifier(roles.app)))

            # Nobody but the roles we name touches the catalogue or the database.
            cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(dbname)))
            cur.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(dbname), sql.Identifier(roles.app)))
            cur.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}, {}").format(
                sql.Identifier(roles.app), sql.Identifier(roles.maintenance)))
            cur.execute(sql.SQL(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE "
                "ON TABLES TO {}").format(sql.Identifier(roles.app)))
            cur.execute(sql.SQL(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO {}").format(
                sql.Identifier(roles.app)))
            cur.execute(sql.SQL(
                "ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC"))
            # The task queue's tables live in a schema of their own, owned by the app role.
            cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                sql.Identifier(f"{role_prefix}_queue"), sql.Identifier(roles.app)))

            cur.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(dbname), sql.Identifier(roles.provisioner)))
            cur.execute(PROVISION_FUNCTIONS.format(prefix=role_prefix, slug_re=SLUG_SQL_RE, app=roles.app,
                                                   tenants=roles.tenants))
            for fn in ("create_tenant_space", "drop_tenant_space"):
                ident = sql.SQL("public.{}(text)").format(sql.Identifier(f"{role_prefix}_{fn}"))
                cur.execute(sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(ident, sql.Identifier(roles.provisioner)))
                cur.execute(sql.SQL("REVOKE ALL ON FUNCTION {} FROM PUBLIC").format(ident))
                cur.execute(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(ident, sql.Identifier(roles.app)))
    finally:
        conn.close()
