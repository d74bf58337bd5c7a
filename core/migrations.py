"""Versioned migrations per addon, for the public catalogue and for every tenant schema.

* Public migrations run once, as the administrative role, each in its own
  transaction together with its row in ``public.smsgw_public_migration``.
* Tenant migrations run as the tenant's role inside one transaction per
  tenant that also records the versions in ``public.tenant_migration``. A
  migrate killed mid-way therefore leaves every tenant either fully at the
  new version or untouched, and re-running finishes the job.
* Deciding that nothing is to be done costs one catalogue query, whatever the
  number of tenants.
"""

from __future__ import annotations

import importlib.util
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import psycopg2.extras

from .db import TenantRef, quote_ident

FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(sql|py)$")
SCOPES = ("public", "tenant")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    addon: str
    scope: str
    version: int
    name: str
    path: Path

    @property
    def label(self) -> str:
        return f"{self.addon}:{self.version:04d}_{self.name}"

    def sql(self, context: dict) -> str:
        text = self.path.read_text()
        for key, value in context.items():
            text = text.replace("{{" + key + "}}", value)
        return text

    def apply(self, cur, context: dict) -> None:
        if self.path.suffix == ".sql":
            cur.execute(self.sql(context))
        else:
            spec = importlib.util.spec_from_file_location(f"smsgw_migration_{self.addon}_{self.version}", self.path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            module.migrate(cur, context)


def collect(sources: list[tuple[str, Path]]) -> dict[str, list[Migration]]:
    """Read migration files from ``[(addon, dir)]`` in the order given (dependency order)."""
    out: dict[str, list[Migration]] = {s: [] for s in SCOPES}
    for addon, directory in sources:
        for scope in SCOPES:
            folder = Path(directory) / scope
            if not folder.is_dir():
                continue
            seen = set()
            for f in sorted(folder.iterdir()):
                if f.name.startswith(("_", ".")) or f.name == "__pycache__":
                    continue
                m = FILE_RE.match(f.name)
                if not m:
                    raise MigrationError(f"{f}: migration files are named NNNN_description.sql or .py")
                version = int(m.group(1))
                if version in seen:
                    raise MigrationError(f"{addon}: two {scope} migrations numbered {version:04d}")
                seen.add(version)
                out[scope].append(Migration(addon, scope, version, m.group(2), f))
    return out


def latest_versions(migrations: list[Migration]) -> dict[str, int]:
    latest: dict[str, int] = {}
    for m in migrations:
        latest[m.addon] = max(latest.get(m.addon, 0), m.version)
    return latest


PUBLIC_LEDGER = """
CREATE TABLE IF NOT EXISTS public.smsgw_public_migration (
    addon text NOT NULL,
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (addon, version)
)
"""


def migrate_public(admin_url: str, migrations: list[Migration], context: dict, progress=None) -> list[str]:
    """Apply pending public migrations as the admin role. Returns the labels applied."""
    applied = []
    conn = psycopg2.connect(admin_url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('smsgw-migrate-public'))")
            cur.execute(PUBLIC_LEDGER)
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(hashtext('smsgw-migrate-public'))")
        conn.commit()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT addon, version FROM public.smsgw_public_migration")
                done = set(cur.fetchall())
            conn.commit()
            pending = [m for m in migrations if (m.addon, m.version) not in done]
            for i, m in enumerate(pending):
                try:
                    with conn, conn.cursor() as cur:
                        m.apply(cur, context)
                        cur.execute(
                            "INSERT INTO public.smsgw_public_migration (addon, version, name) VALUES (%s, %s, %s)",
                            (m.addon, m.version, m.name))
                except psycopg2.Error as exc:
                    raise MigrationError(f"public migration {m.label} failed: {exc.pgerror or exc}") from exc
                applied.append(m.label)
                if progress:
                    progress(i + 1, len(pending), m.label)
        finally:
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(hashtext('smsgw-migrate-public'))")
            conn.commit()
    finally:
        conn.close()
    return applied


def public_pending(conn, migrations: list[Migration]) -> list[Migration]:
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.smsgw_public_migration') IS NOT NULL")
        if not cur.fetchone()[0]:
            return list(migrations)
        cur.execute("SELECT addon, version FROM public.smsgw_public_migration")
        done = set(cur.fetchall())
    return [m for m in migrations if (m.addon, m.version) not in done]


def tenant_plan(conn, migrations: list[Migration], only: list[str] | None = None, alias: str = "default"):
    """One catalogue query: ``[(TenantRef, [pending migrations])]`` for tenants that lag."""
    with conn.cursor() as cur:
        cur.execute("""
            SELECT t.id, t.slug, t.schema_name, t.role_name,
                   coalesce(array_agg(m.addon || ':' || m.version) FILTER (WHERE m.addon IS NOT NULL), '{}')
              FROM public.tenant t
              LEFT JOIN public.tenant_migration m ON m.tenant_id = t.id
             WHERE (%s::text[] IS NULL OR t.slug = ANY(%s::text[])) AND t.database_alias = %s
             GROUP BY t.id ORDER BY t.id""", (only, only, alias))
        rows = cur.fetchall()
    plan = []
    for tid, slug, schema, role, done in rows:
        done = set(done)
        pending = [m for m in migrations if f"{m.addon}:{m.version}" not in done]
        if pending:
            plan.append((TenantRef(tid, slug, schema, role), pending))
    return plan


def apply_tenant_in_transaction(cur, tenant: TenantRef, migrations: list[Migration], context: dict) -> list[Migration]:
    """Inside an open transaction on the app role: apply what ``tenant`` lacks and record it.

    Takes a per-tenant lock and re-reads the ledger, so concurrent migrators and
    resumed runs never apply a version twice. Returns what it applied.
    """
    cur.execute("SELECT pg_advisory_xact_lock(hashtext('smsgw-migrate-tenant'), %s::int)", (tenant.id,))
    cur.execute("SELECT addon, version FROM public.tenant_migration WHERE tenant_id = %s", (tenant.id,))
    done = set(cur.fetchall())
    todo = [m for m in migrations if (m.addon, m.version) not in done]
    if not todo:
        return []
    cur.execute(f"SET LOCAL ROLE {quote_ident(tenant.role_name)}")
    cur.execute(f"SET LOCAL search_path TO {quote_ident(tenant.schema_name)}")
    ctx = dict(context, schema=tenant.schema_name, tenant_role=tenant.role_name)
    # Consecutive SQL migrations go to the server in one round trip (provisioning speed).
    i = 0
    while i < len(todo):
        group = [todo[i]]
        while todo[i].path.suffix == ".sql" and i + len(group) < len(todo) \
                and todo[i + len(group)].path.suffix == ".sql":
            group.append(todo[i + len(group)])
        try:
            if len(group) == 1:
                group[0].apply(cur, ctx)
            else:
                cur.execute(";\n".join(m.sql(ctx) for m in group))
        except psycopg2.Error as exc:
            labels = ", ".join(m.label for m in group)
            raise MigrationError(f"{labels}: {(exc.pgerror or str(exc)).strip()}") from exc
        i += len(group)
    cur.execute("RESET ROLE; SET LOCAL search_path TO ''")
    psycopg2.extras.execute_values(
        cur, "INSERT INTO public.tenant_migration (tenant_id, addon, version) VALUES %s",
        [(tenant.id, m.addon, m.version) for m in todo])
    return todo


def apply_tenant(conn, tenant: TenantRef, migrations: list[Migration], context: dict) -> list[Migration]:
    """Bring one tenant up to date in one transaction of its own on ``conn`` (the app role)."""
    with conn, conn.cursor() as cur:
        return apply_tenant_in_transaction(cur, tenant, migrations, context)


@dataclass
class TenantRunResult:
    migrated: list[str]
    failed: dict[str, str]
    up_to_date: bool
    seconds: float

    def merged(self, other: "TenantRunResult") -> "TenantRunResult":
        """This run and ``other`` (another server's) as one."""
        return TenantRunResult(self.migrated + other.migrated, {**self.failed, **other.failed},
                               self.up_to_date and other.up_to_date, self.seconds + other.seconds)


def migrate_tenants(app_url: str, migrations: list[Migration], context: dict, jobs: int = 4,
                    only: list[str] | None = None, progress=None, alias: str = "default") -> TenantRunResult:
    """Apply pending tenant migrations with at most ``jobs`` tenants in flight, to the workspaces
    that live on the server of ``app_url`` (``alias``: core/placement.py)."""
    start = time.perf_counter()
    conn = psycopg2.connect(app_url)
    try:
        plan = tenant_plan(conn, migrations, only, alias)
        conn.commit()
    finally:
        conn.close()
    if not plan:
        return TenantRunResult([], {}, True, time.perf_counter() - start)

    local = threading.local()
    conns = []
    lock = threading.Lock()

    def worker(tenant: TenantRef, pending: list[Migration]):
        c = getattr(local, "conn", None)
        if c is None:
            c = local.conn = psycopg2.connect(app_url)
            with lock:
                conns.append(c)
        apply_tenant(c, tenant, pending, context)
        return tenant.slug

    migrated, failed = [], {}
    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="migrate") as pool:
            futures = {pool.submit(worker, t, p): t for t, p in plan}
            for n, fut in enumerate(as_completed(futures), 1):
                tenant = futures[fut]
                try:
                    migrated.append(fut.result())
                except Exception as exc:  # one tenant's failure must not stop the others
                    failed[tenant.slug] = str(exc)
                if progress:
                    progress(n, len(plan), tenant.slug)
    finally:
        for c in conns:
            c.close()
    return TenantRunResult(migrated, failed, False, time.perf_counter() - start)
