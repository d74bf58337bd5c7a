"""One workspace on its own: ``smsgw tenant export SLUG`` and ``smsgw tenant import FILE``.

An export is a sealed file in the backup format (:mod:`core.backup`, same key): a preface with
the workspace's catalogue rows (``public.tenant``, its enabled addons, its migration ledger, its
armed due work) and role name, then ``pg_dump --schema=t_<slug>`` of its schema, both read in one
snapshot. Import creates the role as the provisioning function does, restores the schema in one
transaction, then writes the catalogue rows (under a new tenant id) in another; if that fails,
the schema and role are dropped again. So a workspace can be moved to another platform (export,
suspend or delete here, import there) or brought back alone after a deletion.

Not carried: rows other addons keep about the workspace in the catalogue (billing subscriptions
and invoices, the audit trail, privacy requests, usage counters); the platforms' secrets (a
workspace's stored webhook secrets are encrypted with the data keys: between two platforms, give
the target the source's data keys too, see ``SMSGW_DATA_KEYS``). Both platforms need the same
``SMSGW_DB_ROLE_PREFIX``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from .backup import BackupError, backup_key, create_tenant_roles, dump_sealed, pg_restore, verify

# The catalogue rows that make a workspace, besides its public.tenant row (tenant_id columns).
CATALOGUE = ("tenant_addon", "tenant_migration", "due_work")


def export(platform, slug: str, out: Path, progress=None) -> dict:
    import psycopg2

    say = progress or (lambda msg: None)
    key = backup_key(platform.secrets)
    conn = psycopg2.connect(platform.admin_url)
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        cur = conn.cursor()
        cur.execute("SELECT pg_export_snapshot()")
        (snapshot,) = cur.fetchone()
        cur.execute("SELECT row_to_json(t), t.id, t.schema_name, t.role_name FROM public.tenant t WHERE slug = %s",
                    (slug,))
        found = cur.fetchone()
        if found is None:
            raise BackupError(f"there is no workspace {slug!r} (smsgw tenant list shows them)")
        tenant_row, tenant_id, schema, role = found
        rows = {}
        for table in CATALOGUE:
            cur.execute(f"SELECT coalesce(json_agg(row_to_json(x)), '[]') FROM public.{table} x WHERE tenant_id = %s",
                        (tenant_id,))
            rows[table] = cur.fetchone()[0]
        preface = {"format": 1, "kind": "workspace", "slug": slug, "role_prefix": platform.settings.role_prefix,
                   "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                   "schema": schema, "role": role, "tenant": tenant_row, "catalogue": rows}
        say(f"Exporting workspace {slug} (schema {schema}) to {out} ...")
        written = dump_sealed(platform.admin_url, snapshot, Path(out), key, preface, ["--schema", schema],
                              progress=say)
    finally:
        conn.close()
    say(f"Exported {slug}: {written['size']} bytes, sha256 {written['sha256'][:16]}...")
    return written


def import_(platform, path: Path, progress=None) -> str:
    """Bring the workspace exported in ``path`` in; its slug."""
    import psycopg2

    from .tenancy import TENANT_CHANNEL

    say = progress or (lambda msg: None)
    path = Path(path)
    key = backup_key(platform.secrets, create=False)
    say(f"Checking {path} ...")
    preface = verify(path, key)
    if preface.get("kind") != "workspace":
        raise BackupError(f"{path.name} is not the export of one workspace (smsgw restore takes whole backups)")
    slug, prefix = preface["slug"], platform.settings.role_prefix
    if preface["role_prefix"] != prefix:
        raise BackupError(f"the workspace was exported from a platform with role prefix {preface['role_prefix']!r}, "
                          f"this one has {prefix!r}")
    conn = psycopg2.connect(platform.admin_url)
    conn.autocommit = True
    try:
        cur = conn.cursor()
        cur.execute("SELECT 1 FROM public.tenant WHERE slug = %s UNION ALL "
                    "SELECT 1 FROM pg_namespace WHERE nspname = %s", (slug, preface["schema"]))
        if cur.fetchone():
            raise BackupError(f"workspace {slug} exists here already: delete it first, or import elsewhere")
        create_tenant_roles(cur, prefix, [preface["role"]])
        say(f"Restoring schema {preface['schema']} ...")
        try:
            pg_restore(platform.admin_url, path, key)
            conn.autocommit = False
            with conn:  # one transaction: the catalogue rows all or none
                _insert_catalogue(cur, preface)
                cur.execute("SELECT pg_notify(%s, %s)", (TENANT_CHANNEL, slug))  # every process forgets "unknown"
        except BaseException:
            conn.autocommit = True
            cur.execute(f"SELECT public.{prefix}_drop_tenant_space(%s)", (slug,))
            raise
    finally:
        conn.close()
    platform.tenant_cache.invalidate(slug)
    say(f"Imported workspace {slug}.")
    return slug


def _columns(cur, table: str) -> list[str]:
    cur.execute("SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s "
                "ORDER BY ordinal_position", (table,))
    return [c for (c,) in cur.fetchall()]


def _insert_catalogue(cur, preface: dict) -> None:
    """The rows under a new tenant id (the old one may be taken here); columns this platform's
    catalogue lacks are left out, columns it has that the export lacks take their defaults."""
    from psycopg2 import sql

    def insert(table: str, row: dict, skip=(), returning: str | None = None):
        cols = sql.SQL(", ").join(map(sql.Identifier, [c for c in _columns(cur, table) if c in row and c not in skip]))
        query = sql.SQL("INSERT INTO {t} ({c}) SELECT {c} FROM json_populate_record(NULL::{t}, %s)").format(
            t=sql.Identifier("public", table), c=cols)
        if returning:
            query += sql.SQL(" RETURNING {}").format(sql.Identifier(returning))
        cur.execute(query, (json.dumps(row),))
        return cur.fetchone() if returning else None

    (tenant_id,) = insert("tenant", preface["tenant"], skip=("id",), returning="id")  # a new id: the old may be taken
    for table in CATALOGUE:
        for row in preface["catalogue"].get(table, []):
            insert(table, dict(row, tenant_id=tenant_id))


def add_commands(tenant_sub) -> None:
    e = tenant_sub.add_parser(
        "export", help="write one workspace (schema, catalogue rows, role) to an encrypted file",
        description="Export one workspace: its schema (pg_dump), its catalogue rows and its role name, sealed with "
                    "the backup key (SMSGW_BACKUP_KEY). Suspend it first if it must not change meanwhile (a move).")
    e.add_argument("slug")
    e.add_argument("--out", metavar="FILE", help="where to write it (default ./<slug>-<UTC time>.workspace)")
    i = tenant_sub.add_parser(
        "import", help="bring in a workspace exported with `tenant export`",
        description="Import a workspace exported with `smsgw tenant export` (same backup key, same "
                    "SMSGW_DB_ROLE_PREFIX). Its slug must be free here.")
    i.add_argument("file")


def command(platform, args) -> int:
    if args.tenant_command == "export":
        out = Path(args.out or f"{args.slug}-{dt.datetime.now(dt.timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.workspace")
        export(platform, args.slug, out, progress=print)
        return 0
    slug = import_(platform, Path(args.file), progress=print)
    print(f"Workspace {slug} is at {platform.settings.public_url(slug)}/")
    return 0
