"""Database handles and the tenant transaction.

Two peewee databases, both pooled and both logged in as the *serving role*
(``<prefix>_app``), which is not superuser, owns no tenant object and reaches a
tenant's schema only after ``SET LOCAL ROLE`` inside a transaction:

* ``app_db``: catalogue queries (schema-qualified ``public`` tables) and tenant
  transactions opened with :func:`tenant_transaction`.
* the Huey storage has its own handle (see :mod:`core.tasks`).

The serving role's own ``search_path`` is empty, so a query that forgets the
tenant context finds no table at all instead of the wrong one.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import peewee
from playhouse.pool import PooledPostgresqlDatabase

from .outage import TenantMoving, database_outage


class _Retired(set):
    """FastPool.retire_connection's mark: the connection is closed when it comes back."""


_RETIRED = _Retired()


class FastPool(PooledPostgresqlDatabase):
    """A pool that checks a connection with a round trip only after it sat idle for a while.

    peewee's pool sends ``SELECT 1`` on every checkout, under its lock: one extra
    round trip per transaction, with every executor thread queueing behind it.
    """

    PING_AFTER = 30.0

    def __init__(self, *args, schemas_per_connection: int = 100, **kwargs):
        super().__init__(*args, **kwargs)
        self._returned_at: dict[int, float] = {}
        # Schemas each connection entered. A backend keeps catalogue cache for every schema it
        # touched (~0.13 MB each for ours), so one that visited many (the due-work repair pass,
        # due jobs of many workspaces) is closed when it comes back, not kept for its age.
        self.schemas_per_connection = schemas_per_connection
        self._schemas: dict[int, set] = {}

    def note_schema(self, schema: str) -> None:
        """The current connection entered ``schema`` (called by the tenant transaction)."""
        self._schemas.setdefault(id(self.connection()), set()).add(schema)

    def schemas_touched(self) -> int:
        return len(self._schemas.get(id(self.connection()), ()))

    def retire_connection(self) -> None:
        """Close the current connection when it comes back instead of pooling it: for work that
        leaves a backend holding much memory (a read over every workspace's relations)."""
        self._schemas[id(self.connection())] = _RETIRED

    def _can_reuse(self, conn):
        seen = self._schemas.get(id(conn))
        if seen is _RETIRED or (seen is not None and len(seen) > self.schemas_per_connection):
            self._schemas.pop(id(conn), None)
            return False
        return super()._can_reuse(conn)

    def _is_closed(self, conn):
        if conn.closed:
            return True
        returned = self._returned_at.get(id(conn))
        if returned is not None and time.monotonic() - returned < self.PING_AFTER:
            import psycopg2.extensions as ext

            return conn.get_transaction_status() == ext.TRANSACTION_STATUS_UNKNOWN
        return super()._is_closed(conn)

    def begin(self, isolation_level=None, setup_sql: str | None = None):
        """``BEGIN``; with ``setup_sql`` (the statements that set a tenant transaction up) not
        yet: both go ahead of the transaction's first statement, in its round trip, so a tenant
        transaction costs no trip of its own to start, and one that ran no statement none at all.

        Every way a statement reaches the connection passes through :meth:`execute_sql` or
        :meth:`cursor`, and both send what is pending first: no statement can run before the
        transaction's ``SET LOCAL ROLE``. A setup that fails (the workspace's role is gone) fails
        that first statement, and the transaction is rolled back as for any failed statement."""
        if setup_sql is None:
            return super().begin(isolation_level)
        if "%" in setup_sql:  # it goes ahead of statements with parameters: keep it plain
            raise ValueError("a transaction's setup statements must not contain '%'")
        self._state.pending_begin = "BEGIN; " + setup_sql + "; "

    def _take_pending(self) -> str | None:
        pending = getattr(self._state, "pending_begin", None)
        if pending is not None:
            self._state.pending_begin = None
        return pending

    def execute_sql(self, sql, params=None):
        pending = self._take_pending()
        if pending is not None:
            sql = pending + sql
        return self._execute_cursor(sql, params)

    def cursor(self, named_cursor=None):
        pending = self._take_pending()
        cursor = super().cursor(named_cursor)
        if pending is not None:  # a cursor for direct use (COPY, say): the transaction starts first
            with peewee.__exception_wrapper__:
                cursor.execute(pending)
        return cursor

    def commit(self):
        if self._take_pending() is not None:  # the transaction ran nothing: nothing to end
            return None
        return super().commit()

    def rollback(self):
        if self._take_pending() is not None:
            return None
        return super().rollback()

    def _close(self, conn, close_conn=False):
        if conn is self._state.conn:  # a transaction that never ran a statement leaves nothing behind
            self._take_pending()
        self._returned_at[id(conn)] = time.monotonic()
        if close_conn:
            self._returned_at.pop(id(conn), None)
            self._schemas.pop(id(conn), None)
        return super()._close(conn, close_conn)


class _Routed:
    """An attribute of :class:`RoutingPool` that is the routed pool's own while this thread is
    routed to another server (:func:`routed`): its connection state, its pooled connections, its
    DSN. Everything peewee's Database and pool do goes through these, so the one ``app_db`` every
    model is bound to runs on the server the thread is routed to."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        target = getattr(_route, "pool", None)
        return (target if target is not None else obj).__dict__[self.name]

    def __set__(self, obj, value):
        obj.__dict__[self.name] = value


class RoutingPool(FastPool):
    """``app_db``: the pool of the default server (the catalogue's), routed per thread to the pool
    of another server (``SMSGW_DATABASES``) for a workspace placed there (:func:`tenant_transaction`)."""

    for _name in ("_state", "_connections", "_in_use", "_pool_lock", "_pool_available", "database",
                  "connect_params", "_returned_at", "_schemas"):
        locals()[_name] = _Routed(_name)
    del _name


_route = threading.local()
# A plain FastPool while the platform has one server: the routing descriptors cost an attribute
# look-up on every access to the connection state, so app_db becomes a RoutingPool only when
# configure_server() adds a second server.
app_db = FastPool(None, autoconnect=True)
# Alias → pool of every other server (SMSGW_DATABASES); empty on a platform with one server.
pools: dict[str, FastPool] = {}
DEFAULT = "default"

IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class TenantContextMissing(RuntimeError):
    """Tenant-scoped work was started without naming its tenant."""


@dataclass(frozen=True)
class TenantRef:
    """What a transaction needs to enter a tenant: validated role and schema names."""

    id: int
    slug: str
    schema_name: str
    role_name: str

    def __post_init__(self):
        for ident in (self.schema_name, self.role_name):
            if not IDENT_RE.match(ident):
                raise ValueError(f"refusing unsafe identifier {ident!r}")


current_tenant: contextvars.ContextVar[TenantRef | None] = contextvars.ContextVar(
    "current_tenant", default=None
)


def quote_ident(name: str) -> str:
    if not IDENT_RE.match(name):
        raise ValueError(f"refusing unsafe identifier {name!r}")
    return f'"{name}"'


def array_literal(values) -> str:
    """A PostgreSQL array literal (``'{1,NULL,"a b"}'``) of ints, bools, None, datetimes and text,
    to pass as one parameter cast to the array type. psycopg2 adapts a list element by element
    through Python adapter objects: 1.5 ms for the three 1,000-element lists of a bulk send,
    against 0.4 ms here (lists of plain text or of whole numbers take a fast path)."""
    values = list(values)
    kinds = set(map(type, values))
    if kinds <= {str}:
        everything = "".join(values)
        if "\\" not in everything and '"' not in everything:
            return '{"' + '","'.join(values) + '"}' if values else "{}"
    elif kinds <= {int, type(None)}:
        return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"
    parts = []
    for v in values:
        if v is None:
            parts.append("NULL")
        elif v is True or v is False:
            parts.append("t" if v else "f")
        elif isinstance(v, int):
            parts.append(str(v))
        else:
            text = v.isoformat() if hasattr(v, "isoformat") else str(v)
            parts.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(parts) + "}"


def configure(app_url: str, pool_size: int, schemas_per_connection: int = 100) -> None:
    """Point ``app_db`` at the serving role's URL (libpq accepts a URI as dbname)."""
    app_db.schemas_per_connection = schemas_per_connection
    # Every session speaks UTC, whatever the server's or the machine's time zone.
    app_db.init(app_url, max_connections=pool_size + 8, stale_timeout=300, timeout=30, options="-c timezone=UTC")


def configure_server(alias: str, app_url: str, pool_size: int, schemas_per_connection: int = 100) -> None:
    """Add (or re-point) the pool of another server, ``alias`` in ``SMSGW_DATABASES``."""
    if not isinstance(app_db, RoutingPool):
        app_db.__class__ = RoutingPool  # same attributes; from now on they follow the thread's route
    pool = pools.get(alias)
    if pool is None:
        pool = pools[alias] = FastPool(None, autoconnect=True)
    pool.schemas_per_connection = schemas_per_connection
    pool.init(app_url, max_connections=pool_size + 8, stale_timeout=300, timeout=30, options="-c timezone=UTC")


def close_servers() -> None:
    for pool in pools.values():
        pool.close_all()
    pools.clear()
    _placed.clear()


def current_alias() -> str:
    """The server this thread's database work goes to now."""
    return getattr(_route, "alias", DEFAULT)


@contextmanager
def routed(alias: str | None):
    """Run this thread's database work on server ``alias`` (``None``/"default": the catalogue's)
    for the block. Connections opened on another server meanwhile stay open and are found again."""
    alias = alias or DEFAULT
    if alias != DEFAULT and alias not in pools:
        raise TenantMoving(f"no database server {alias!r} is configured in this process (SMSGW_DATABASES)")
    before = (getattr(_route, "pool", None), getattr(_route, "alias", DEFAULT))
    _route.pool, _route.alias = pools.get(alias), alias
    try:
        yield
    finally:
        _route.pool, _route.alias = before


# -- where each workspace lives ---------------------------------------------------------
# slug -> (alias, status) from the catalogue, cached; forgotten with the tenant cache (NOTIFY
# smsgw_tenant_changed reaches every process), so a move reaches every process at once.
_placed: dict[str, tuple[str, str]] = {}


def placement(slug: str) -> tuple[str, str]:
    """``(alias, status)`` of the workspace ``slug`` (cached; one catalogue read on a miss)."""
    found = _placed.get(slug)
    if found is None:
        with routed(DEFAULT), connection():
            row = app_db.execute_sql("SELECT database_alias, status FROM public.tenant WHERE slug = %s",
                                     (slug,)).fetchone()
        found = (row[0], row[1]) if row else (DEFAULT, "gone")
        if found[1] != "moving":
            # Not cached while it moves (a catalogue read per attempt, for a second or two): an answer
            # read just before the move's end and stored just after its NOTIFY would stay forever. A
            # stale server is found out by the first statement there (see _moved_is_moving).
            _placed[slug] = found
    return found


def forget_placement(slug: str | None = None) -> None:
    if slug is None:
        _placed.clear()
    else:
        _placed.pop(slug, None)


def server_of(tenant: TenantRef) -> str:
    """The server ``tenant``'s transactions run on; :class:`TenantMoving` while it moves."""
    if not pools:
        return DEFAULT
    alias, status = placement(tenant.slug)
    if status == "moving":
        raise TenantMoving(f"workspace {tenant.slug} is moving to another database server")
    return alias


@contextmanager
def connection(db=app_db):
    """Hold one pooled connection for the block, returning it to the pool after."""
    opened = db.is_closed()
    if opened:
        db.connect()
    try:
        yield db
    finally:
        if opened:
            db.close()


def enter_sql(tenant: TenantRef) -> str:
    return (f"SET LOCAL ROLE {quote_ident(tenant.role_name)}; "
            f"SET LOCAL search_path TO {quote_ident(tenant.schema_name)}")


def enter_tenant(db, tenant: TenantRef) -> None:
    """Inside an open transaction: become the tenant's role, see only its schema."""
    db.execute_sql(enter_sql(tenant))
    if isinstance(db, FastPool):
        db.note_schema(tenant.schema_name)


@contextmanager
def as_serving_role(db=app_db):
    """Inside a tenant transaction: run catalogue work (the audit trail's record of what the
    transaction did) in that same transaction as the serving role, then be the tenant again.
    Only for kernel code that writes ``public`` tables it is granted; never around tenant data."""
    tenant = current_tenant.get()
    if current_alias() != DEFAULT:
        # The workspace lives on another server: its catalogue work goes to the catalogue's server
        # in a transaction of its own, committed at the end of the block (docs/scaling.md).
        with routed(DEFAULT), connection(db), db.atomic():
            yield db
        return
    db.execute_sql("SET LOCAL ROLE NONE; SET LOCAL search_path TO public")
    try:
        yield db
    finally:
        if tenant is not None:
            enter_tenant(db, tenant)


@contextmanager
def tenant_transaction(tenant: TenantRef | None = None, db=app_db):
    """One unit of tenant work: a transaction that starts with SET LOCAL ROLE and search_path.

    Both settings die with the transaction (commit or rollback), so a pooled
    connection never carries one tenant's context into the next request.
    """
    tenant = tenant or current_tenant.get()
    if tenant is None:
        raise TenantContextMissing("tenant-scoped work needs a tenant; none was given")
    outer = current_tenant.get()
    alias = server_of(tenant) if db is app_db else DEFAULT
    token = current_tenant.set(tenant)
    try:
        with routed(alias) if alias != current_alias() else nullcontext(), connection(db), \
                _moved_is_moving(tenant, alias) if pools else nullcontext():
            if db.transaction_depth() == 0 and isinstance(db, FastPool):
                with _ending(), db.atomic(setup_sql=enter_sql(tenant)):  # BEGIN and enter: one round trip
                    db.note_schema(tenant.schema_name)
                    yield db
            else:
                # Inside a transaction already (a savepoint), or a database that is not the pool: on
                # the way out of a savepoint the outer work is what it was before (its tenant, or the
                # serving role), not this tenant's role for the rest of the transaction. A failure
                # rolls the savepoint back, and that undoes it too.
                nested = db.transaction_depth() > 0
                with nullcontext() if nested else _ending(), db.atomic():
                    enter_tenant(db, tenant)
                    yield db
                    if nested and outer is not None:
                        enter_tenant(db, outer)
                    elif nested:
                        db.execute_sql("SET LOCAL ROLE NONE; SET LOCAL search_path TO DEFAULT")
    finally:
        current_tenant.reset(token)


@contextmanager
def _moved_is_moving(tenant: TenantRef, alias: str):
    """A statement that failed because the workspace moved away meanwhile (its copy here was
    dropped under a transaction that waited on the move's lock) is the move's pause, not a bug."""
    try:
        yield
    except (peewee.DatabaseError, peewee.InterfaceError) as exc:
        if pools:
            forget_placement(tenant.slug)
            try:
                where, status = placement(tenant.slug)
                moved = where != alias or status == "moving"
            except Exception:
                moved = False
            if moved:
                raise TenantMoving(f"workspace {tenant.slug} moved to another database server") from exc
        raise


_ends = threading.local()


def after_transaction(callback) -> None:
    """Inside a tenant transaction: call ``callback(committed)`` in this thread once the outermost
    transaction ended (after its COMMIT: ``True``; rolled back: ``False``). For bookkeeping in memory
    about work that is in flight (a quota's sends not yet visible to other transactions); a callback
    that raises is logged, never the transaction's problem."""
    pending = getattr(_ends, "pending", None)
    if pending is None:
        raise TenantContextMissing("after_transaction needs an open tenant transaction")
    pending.append(callback)


@contextmanager
def _ending():
    _ends.pending = pending = []
    committed = False
    try:
        yield
        committed = True
    finally:
        _ends.pending = None
        for callback in pending:
            try:
                callback(committed)
            except Exception:
                logging.getLogger(__name__).exception("an after_transaction callback failed")


# -- running database work off the IOLoop -----------------------------------

_executor: ThreadPoolExecutor | None = None


def executor() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=app_db._max_connections - 8 if app_db._max_connections else 8,
                                       thread_name_prefix="db")
    return _executor


def set_executor_size(workers: int) -> None:
    global _executor
    if _executor is not None:
        _executor.shutdown(wait=False)
    _executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="db")


async def run_sync(fn, *args, **kwargs):
    """Run blocking ``fn`` in the bounded DB executor, carrying the current context."""
    ctx = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(executor(), lambda: ctx.run(fn, *args, **kwargs))
    database_outage.recovered()  # an attribute check, unless an outage is being reported
    return result


async def run_in_tenant(tenant: TenantRef, fn, *args, **kwargs):
    """Run ``fn`` inside :func:`tenant_transaction` for ``tenant`` in the executor."""

    def work():
        with tenant_transaction(tenant):
            return fn(*args, **kwargs)

    return await run_sync(work)


async def run_catalogue(fn, *args, **kwargs):
    """Run catalogue (public schema) work in the executor on a pooled connection."""

    def work():
        with connection():
            return fn(*args, **kwargs)

    return await run_sync(work)
