"""Workspaces on several PostgreSQL servers: which server a new one goes to, and moving one.

``SMSGW_DATABASES`` names the servers besides the default one (the catalogue's)::

    SMSGW_DATABASES="eu1=postgresql://admin:pw@db-eu1/smsgw eu2=postgresql://admin:pw@db-eu2/smsgw"

Every server is bootstrapped like the default one (roles, provisioning functions, the ``public``
migrations), so a workspace's role and schema are made there exactly as on the default server:
its own role, owning its schema and nothing else, entered with ``SET LOCAL ROLE`` by the serving
role. ``public.tenant.database_alias`` in the catalogue is the record of where a workspace lives;
the server it lives on keeps a copy of its catalogue rows (tenant, enabled addons, migration
ledger, due work) for what runs there: the due-work functions, the migrator and the worker's
scheduler of that server. Every process routes a workspace's transactions by that alias
(:func:`core.db.tenant_transaction`), cached per process and forgotten through ``NOTIFY
smsgw_tenant_changed`` like a suspension.

Placement (``SMSGW_PLACEMENT``): ``least-loaded`` puts a new workspace on the server with the
fewest workspaces; ``region`` on the least-loaded server whose regions
(``SMSGW_DATABASE_REGIONS="default=US,CA eu1=DE,FR,AT"``) hold the workspace's default country,
else least-loaded among all.

``smsgw tenant move SLUG --to ALIAS`` (:func:`move`) moves one workspace with a short write
pause: the workspace is marked ``moving`` (its requests answer 503 with Retry-After), its tables
are locked against writes on the source (in-flight writers finish first), ``pg_dump`` of its
schema in that snapshot is piped into ``pg_restore`` on the target (one transaction), its
catalogue rows are written there, the catalogue points at the new server and the pause ends; then
the old copy is dropped. A failure before the catalogue points at the new server undoes the copy
on the target and ends the pause: the workspace stays where it was. See docs/scaling.md.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

from .db import DEFAULT

ALIAS_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
COPIED = ("tenant_addon", "tenant_migration", "due_work")  # catalogue rows a server keeps of its workspaces


class PlacementError(ValueError):
    """A server list or a move was refused; the message says why."""


def parse_databases(raw: str) -> tuple:
    """``SMSGW_DATABASES``: ``alias=URL`` entries separated by spaces, newlines or ``;``."""
    from .config import ConfigError

    seen, out = set(), []
    for entry in re.split(r"[\s;]+", raw.strip()):
        if not entry:
            continue
        alias, sep, url = entry.partition("=")
        if not sep or not ALIAS_RE.match(alias) or alias == DEFAULT:
            raise ConfigError("SMSGW_DATABASES holds alias=URL entries, an alias being lowercase letters, digits "
                              f"or _ (not 'default'), e.g. eu1=postgresql://user:pw@host/smsgw; got {entry[:40]!r}")
        if alias in seen:
            raise ConfigError(f"SMSGW_DATABASES names the server {alias!r} twice")
        if not re.match(r"^postgres(ql)?://[^/]*/[^/?]+", url):
            raise ConfigError(f"SMSGW_DATABASES: the URL of {alias!r} must be postgresql://user:pw@host/database")
        seen.add(alias)
        out.append((alias, url))
    return tuple(out)


def parse_regions(raw: str, aliases: set) -> tuple:
    """``SMSGW_DATABASE_REGIONS``: ``alias=CC,CC`` entries (two-letter countries) separated by spaces or ``;``."""
    from .config import ConfigError

    out = []
    for entry in re.split(r"[\s;]+", raw.strip()):
        if not entry:
            continue
        alias, sep, codes = entry.partition("=")
        regions = [c.strip().upper() for c in codes.split(",") if c.strip()]
        if not sep or alias not in aliases or not regions or not all(re.fullmatch(r"[A-Z]{2}", c) for c in regions):
            raise ConfigError("SMSGW_DATABASE_REGIONS holds alias=CC,CC entries for servers named in SMSGW_DATABASES "
                              f"(or default), CC being two-letter countries; got {entry[:40]!r}")
        out.append((alias, frozenset(regions)))
    return tuple(out)


def load(app_db) -> dict[str, int]:
    """Workspaces per server alias, from the catalogue (inside a connection to it)."""
    return dict(app_db.execute_sql("SELECT database_alias, count(*) FROM public.tenant GROUP BY 1").fetchall())


def choose(settings, counts: dict[str, int], region: str = "") -> str:
    """The server for a new workspace whose default country is ``region``, given the workspaces
    each server holds (:func:`load`)."""
    aliases = [DEFAULT] + [alias for alias, _ in settings.databases]
    candidates = aliases
    if settings.placement == "region":
        regions = dict(settings.database_regions)
        local = [a for a in aliases if region in regions.get(a, ())]
        candidates = local or aliases
    return min(candidates, key=lambda a: (counts.get(a, 0), aliases.index(a)))


# -- moving one workspace ----------------------------------------------------------------------

def move(platform, slug: str, to: str, progress=None) -> dict:
    """Move workspace ``slug`` to server ``to``; returns what it measured (seconds, rows, bytes)."""
    import psycopg2

    from .backup import _libpq_args, create_tenant_roles, pg_tool
    from .tenancy import TENANT_CHANNEL

    say = progress or (lambda msg: None)
    servers = platform.servers
    if to not in servers:
        raise PlacementError(f"there is no database server {to!r}; known: {', '.join(sorted(servers))} "
                             "(SMSGW_DATABASES names the others)")
    started = time.monotonic()
    cat = psycopg2.connect(servers[DEFAULT])
    cat.autocommit = True
    ccur = cat.cursor()
    ccur.execute("SELECT id, status, database_alias, schema_name, role_name, row_to_json(t) FROM public.tenant t "
                 "WHERE slug = %s", (slug,))
    row = ccur.fetchone()
    if row is None:
        cat.close()
        raise PlacementError(f"there is no workspace {slug!r} (smsgw tenant list shows them)")
    tenant_id, status, source, schema, role, tenant_row = row
    if status == "moving":
        cat.close()
        raise PlacementError(f"workspace {slug} is being moved already")
    if source == to:
        cat.close()
        raise PlacementError(f"workspace {slug} is on {to} already")
    if source not in servers:
        cat.close()
        raise PlacementError(f"workspace {slug} is on {source!r}, which this process does not know (SMSGW_DATABASES)")
    prefix = platform.settings.role_prefix
    say(f"Moving workspace {slug} from {source} to {to} ...")

    def notify():
        ccur.execute("SELECT pg_notify(%s, %s)", (TENANT_CHANNEL, slug))

    ccur.execute("UPDATE public.tenant SET status = 'moving', updated_at = now() WHERE id = %s AND status = %s",
                 (tenant_id, status))
    if ccur.rowcount != 1:
        cat.close()
        raise PlacementError(f"workspace {slug} changed meanwhile; try again")
    try:
        src = psycopg2.connect(servers[source])
        dst = psycopg2.connect(servers[to])
    except psycopg2.Error:
        ccur.execute("UPDATE public.tenant SET status = %s WHERE id = %s AND status = 'moving'", (status, tenant_id))
        cat.close()
        raise PlacementError(f"could not connect to the servers {source} and {to}; the workspace stays where it was")
    dst.autocommit = True
    scur, dcur = src.cursor(), dst.cursor()
    flipped = copied = False
    notify()  # every process: its requests answer 503 with Retry-After from now on
    paused = time.monotonic()
    say("Writes paused; waiting for work in flight to finish ...")
    try:
        tables = _lock_tables(scur, src, schema)
        scur.execute("SELECT pg_export_snapshot()")
        (snapshot,) = scur.fetchone()
        rows = {}
        for table in COPIED:
            scur.execute(f"SELECT coalesce(json_agg(row_to_json(x)), '[]') FROM public.{table} x WHERE tenant_id = %s",
                         (tenant_id,))
            rows[table] = scur.fetchone()[0]
        scur.execute("SELECT coalesce(sum(n_live_tup), 0)::bigint FROM pg_stat_user_tables WHERE schemaname = %s",
                     (schema,))
        (live_rows,) = scur.fetchone()
        say(f"Copying schema {schema} ({len(tables)} tables, about {live_rows} rows) ...")
        create_tenant_roles(dcur, prefix, [role])
        copied = True
        size = _copy_schema(pg_tool, _libpq_args, servers[source], servers[to], snapshot, schema)
        with dst:  # the target's catalogue rows: all or none
            dst.autocommit = False
            if to != DEFAULT:
                tenant = dict(tenant_row, status=status, database_alias=to)
                dcur.execute("INSERT INTO public.tenant SELECT * FROM json_populate_record(NULL::public.tenant, %s)",
                             (json.dumps(tenant),))
                dcur.execute("INSERT INTO public.tenant_addon SELECT * FROM "
                             "json_populate_recordset(NULL::public.tenant_addon, %s)", (json.dumps(rows["tenant_addon"]),))
            dcur.execute("DELETE FROM public.tenant_migration WHERE tenant_id = %s", (tenant_id,))
            dcur.execute("INSERT INTO public.tenant_migration SELECT * FROM "
                         "json_populate_recordset(NULL::public.tenant_migration, %s)", (json.dumps(rows["tenant_migration"]),))
            dcur.execute("DELETE FROM public.due_work WHERE tenant_id = %s", (tenant_id,))
            # Whatever was due waits no longer than the move: its jobs run on the new server at once.
            dcur.execute("INSERT INTO public.due_work (tenant_id, job, due_at) SELECT tenant_id, job, "
                         "least(due_at, now()) FROM json_populate_recordset(NULL::public.due_work, %s)",
                         (json.dumps(rows["due_work"]),))
            dcur.execute("SELECT pg_notify('smsgw_due', 'moved')")
        dst.autocommit = True
        say(f"Copied {size} bytes; pointing the catalogue at {to} ...")
        with cat:
            cat.autocommit = False
            ccur.execute("UPDATE public.tenant SET database_alias = %s, status = %s, updated_at = now() WHERE id = %s",
                         (to, status, tenant_id))
            if source == DEFAULT:
                for table in ("tenant_migration", "due_work", "due_repair_seen"):
                    ccur.execute(f"DELETE FROM public.{table} WHERE tenant_id = %s", (tenant_id,))
            notify()
        cat.autocommit = True
        flipped = True
        pause = time.monotonic() - paused
        say(f"Writes resumed after {pause:.2f} s; workspace {slug} now lives on {to}. Dropping the old copy on "
            f"{source} ...")
        # Still under the lock: a transaction that waited on it fails now (its request answers 503 and
        # is tried again on the new server) instead of writing to the copy that is going away.
        if source != DEFAULT:
            scur.execute("DELETE FROM public.tenant WHERE id = %s", (tenant_id,))
        _drop_old_copy(scur, prefix, schema, slug)
        src.commit()
    except BaseException:
        src.rollback()
        if not flipped:
            if copied:
                dst.rollback() if not dst.autocommit else None
                dst.autocommit = True
                if to != DEFAULT:
                    dcur.execute("DELETE FROM public.tenant WHERE id = %s", (tenant_id,))
                else:
                    dcur.execute("DELETE FROM public.due_work WHERE tenant_id = %s", (tenant_id,))
                dcur.execute(f"SELECT public.{prefix}_drop_tenant_space(%s)", (slug,))
            cat.autocommit = True
            ccur.execute("UPDATE public.tenant SET status = %s WHERE id = %s AND status = 'moving'", (status, tenant_id))
            notify()
            say(f"The move failed; workspace {slug} stays on {source} and its writes resumed.")
        raise
    finally:
        for conn in (src, dst, cat):
            conn.close()
    platform.tenant_cache.invalidate(slug)
    total = time.monotonic() - started
    say(f"Moved workspace {slug} to {to} in {total:.2f} s (writes paused {pause:.2f} s).")
    return {"seconds": total, "pause": pause, "rows": live_rows, "bytes": size, "tables": len(tables)}


def _lock_tables(cur, conn, schema: str) -> list[str]:
    """Inside ``conn``'s transaction: lock the schema's tables against writes (SHARE: readers and
    ``pg_dump`` go on), waiting for writers in flight. A deadlock with a writer that already holds
    one of them is tried again (the writer, aborted or not, is done by then)."""
    from psycopg2 import errors, sql

    for attempt in range(10):
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename", (schema,))
        tables = [t for (t,) in cur.fetchall()]
        if not tables:
            return tables
        try:
            cur.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(
                sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables)))
            return tables
        except errors.DeadlockDetected:
            conn.rollback()
            time.sleep(0.05 * (attempt + 1))
    raise PlacementError("could not lock the workspace's tables: writers kept deadlocking with the move")


def _copy_schema(pg_tool, libpq_args, source_url: str, target_url: str, snapshot: str, schema: str) -> int:
    """``pg_dump`` of ``schema`` in ``snapshot`` on the source piped into ``pg_restore`` on the
    target (one transaction: all or nothing); the bytes that went through."""
    sargs, senv = libpq_args(source_url)
    targs, tenv = libpq_args(target_url)
    dump = subprocess.Popen([pg_tool("pg_dump"), "--format=custom", "--compress=0", f"--snapshot={snapshot}",
                             "--schema", schema, *sargs], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=senv)
    restore = subprocess.Popen([pg_tool("pg_restore"), "--exit-on-error", "--single-transaction", *targs],
                               stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=tenv)
    size = 0
    try:
        while True:
            chunk = dump.stdout.read(1 << 16)
            if not chunk:
                break
            size += len(chunk)
            restore.stdin.write(chunk)
        restore.stdin.close()
    except BrokenPipeError:
        pass
    dump_err = dump.stderr.read().decode(errors="replace")
    restore_err = restore.stderr.read().decode(errors="replace")
    if dump.wait() != 0:
        restore.kill()
        restore.wait()
        raise PlacementError(f"pg_dump failed: {dump_err.strip()[-600:]}")
    if restore.wait() != 0:
        raise PlacementError(f"pg_restore failed (nothing was restored): {restore_err.strip()[-600:]}")
    return size


# -- the CLI --------------------------------------------------------------------------------------

def add_commands(tenant_sub) -> None:
    m = tenant_sub.add_parser(
        "move", help="move one workspace to another database server (SMSGW_DATABASES), online",
        description="Move one workspace's schema, role and catalogue rows to another PostgreSQL server named in "
                    "SMSGW_DATABASES (or 'default'). Its writes pause for the copy (its requests answer 503 with "
                    "Retry-After meanwhile); every process routes it to the new server when the pause ends.")
    m.add_argument("slug")
    m.add_argument("--to", required=True, metavar="ALIAS", help="the server: an alias of SMSGW_DATABASES, or default")
    tenant_sub.add_parser("servers", help="list the database servers and how many workspaces each holds")


CANCEL_LOCKERS = """
    SELECT pg_cancel_backend(l.pid) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
      JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = %s AND l.pid <> pg_backend_pid()"""


def _drop_old_copy(scur, prefix: str, schema: str, slug: str, attempts: int = 10) -> None:
    """Drop the old copy, still under the write pause's locks. A transaction queued on those locks
    would write into the copy once they are released, or deadlock with the drop (seen in CI: the
    drop lost, the move failed after the switch): such statements are cancelled first, so their
    requests fail and are tried again on the new server; a drop that still meets a deadlock is
    tried again (the pause's locks, taken before the savepoint, stay held)."""
    import psycopg2.errors

    for attempt in range(attempts):
        scur.execute("SAVEPOINT drop_old_copy")
        scur.execute(CANCEL_LOCKERS, (schema,))
        try:
            scur.execute(f"SELECT public.{prefix}_drop_tenant_space(%s)", (slug,))
            return
        except psycopg2.errors.DeadlockDetected:
            scur.execute("ROLLBACK TO SAVEPOINT drop_old_copy")
            time.sleep(0.1 * (attempt + 1))
    raise PlacementError(f"could not drop the old copy of {slug} (deadlocks); run the move's cleanup again")


def command(platform, args) -> int:
    if args.tenant_command == "servers":
        from .db import app_db, connection

        with connection():
            counts = load(app_db)
        regions = dict(platform.settings.database_regions)
        print(f"placement: {platform.settings.placement}")
        for alias in platform.servers:
            where = ",".join(sorted(regions.get(alias, ()))) or "-"
            print(f"{alias:16} {counts.get(alias, 0):8} workspace(s)   regions: {where}")
        return 0
    move(platform, args.slug, args.to, progress=print)
    return 0
