"""Building a data export: every personal datum about one subject, as a zip of JSON files.

What goes in is read from the personal-data declarations (:mod:`core.datamap`), never from a
list of known tables, so a reseller's addon is covered by declaring its models:

* a **workspace** export takes the ``export`` columns of every row of every declared tenant
  table, and of the rows of declared public tables whose ``tenant`` column names the workspace;
* a **user** export takes the rows whose ``user`` column is the member's id or whose ``actor``
  column names them (``user:<id>``), in the workspace's schema and in public tables (there only
  rows of this workspace); and the rows of a tenant table that refer by foreign key to such a
  row (the recipients of the messages the member sent);
* then each addon adds what its declarations do not say (``smsgw_privacy_export``, see
  :mod:`addons.privacy.hookspecs`): the messaging addon a recipient's history, the webhooks
  addon the webhook endpoints (without their secrets).

The format (``schema_version`` 1) is described by the JSON Schema in :mod:`.export_schema`,
which every export carries as ``schema.json``: ``manifest.json`` lists the parts; each part is
``<name>.json``, an object with the part's ``columns`` and its ``rows``.

Memory stays bounded whatever the size: rows come through server-side cursors and go straight
into a zip stream, cut into 1 MB chunks stored in ``public.privacy_export_chunk`` by a
connection of the builder's own (which also commits the progress and renews the lease). All
reads happen in one read-only, repeatable-read transaction: one consistent snapshot.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import json
import zipfile
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import orjson

from core.clock import utcnow
from core.datamap import WHOLE_TABLE, DeclaredModel
from core.db import app_db, as_serving_role, quote_ident

from .export_schema import SCHEMA

SCHEMA_VERSION = 1
CHUNK_BYTES = 1 << 20
FETCH_ROWS = 2000
PROGRESS_EVERY = 5000  # rows between two progress commits (each also renews the lease)

_cursor_names = itertools.count(1)


@dataclass(frozen=True)
class ExportSubject:
    """Whom an export is about: the whole workspace, or one member (``user_id``)."""

    kind: str  # "workspace" | "user"
    user_id: int | None = None

    @property
    def actors(self) -> list[str]:
        """The actor strings (core.events) that name this member."""
        return [f"user:{self.user_id}"] if self.kind == "user" else []

    @property
    def label(self) -> str:
        return "tenant" if self.kind == "workspace" else f"user:{self.user_id}"

    @staticmethod
    def from_label(label: str) -> "ExportSubject":
        if label == "tenant":
            return ExportSubject("workspace")
        kind, _, user_id = label.partition(":")
        if kind != "user" or not user_id.isdigit():
            raise ValueError(f"not an export subject: {label!r}")
        return ExportSubject("user", int(user_id))

    def query(self, sql: str, params=()) -> "QueryRows":
        """The rows of ``sql`` (the caller's own SQL, never input) as dicts, streamed when iterated;
        the export also counts them first, for its progress."""
        return QueryRows(sql, tuple(params))


@dataclass(frozen=True)
class QueryRows:
    """The rows of one SELECT, read when iterated (see :meth:`ExportSubject.query`)."""

    sql: str
    params: tuple = ()

    def __iter__(self) -> Iterator[dict]:
        return stream(self.sql, self.params)

    @property
    def count_sql(self) -> tuple[str, tuple]:
        return f"SELECT count(*) FROM ({self.sql}) AS part", self.params


def stream(sql: str, params=()) -> Iterator[dict]:
    """Rows of ``sql`` through a server-side cursor of the current transaction, ``FETCH_ROWS`` at a time.

    DECLARE and FETCH by hand: psycopg2's named cursors refuse peewee's autocommit connections
    even inside the transaction peewee opened with its own BEGIN."""
    name = f"privacy_export_{next(_cursor_names)}"
    cur = app_db.cursor()
    cur.execute(f"DECLARE {name} NO SCROLL CURSOR FOR {sql}", params)
    try:
        while True:
            cur.execute(f"FETCH {FETCH_ROWS} FROM {name}")
            rows = cur.fetchall()
            if not rows:
                return
            columns = [d.name for d in cur.description]
            for row in rows:
                yield dict(zip(columns, row))
    finally:
        cur.execute(f"CLOSE {name}")


@dataclass(frozen=True)
class Part:
    """One file of the export."""

    name: str
    addon: str
    description: str
    rows: Callable[[], Iterable[dict]]  # called inside the build's transaction
    table: str | None = None
    columns: tuple[str, ...] | None = None
    count_sql: tuple[str, tuple] | None = None  # for progress
    public: bool = False  # read as the serving role (a public table)


def _subject_filter(d: DeclaredModel, subject: ExportSubject, tenant_id: int,
                     by_model: dict) -> tuple[str, list] | None:
    """The WHERE clause that picks the subject's rows of ``d`` (``None``: none of them)."""
    subjects = d.privacy.subjects
    scoped, params = [], []
    if d.scope == "public":
        tenant_col = subjects.get("tenant")
        if tenant_col in (None, WHOLE_TABLE):
            return None  # rows of no particular workspace (platform admins'): not this export's
        scoped.append(f"{quote_ident(tenant_col)} = %s")
        params.append(tenant_id)
    if subject.kind == "workspace":
        return " AND ".join(scoped) or "TRUE", params
    about = _about_user(subjects, subject)
    if about is None and d.scope == "tenant" and d.model is not None:
        about = _via_foreign_key(d, subject, by_model)
    if about is None:
        return None
    sql, more = about
    return " AND ".join([*scoped, f"({sql})"]), params + more


def _about_user(subjects: dict, subject: ExportSubject) -> tuple[str, list] | None:
    ors, params = [], []
    if "user" in subjects:
        ors.append(f"{quote_ident(subjects['user'])}::text = %s")
        params.append(str(subject.user_id))
    if "actor" in subjects:
        ors.append(f"{quote_ident(subjects['actor'])} = ANY (%s)")
        params.append(subject.actors)
    return (" OR ".join(ors), params) if ors else None


def _via_foreign_key(d: DeclaredModel, subject: ExportSubject, by_model: dict) -> tuple[str, list] | None:
    """Rows that refer to a row about the member (a recipient of a message they sent)."""
    ors, params = [], []
    for field in d.model._meta.sorted_fields:
        parent = by_model.get(getattr(field, "rel_model", None))
        if parent is None or parent.scope != "tenant" or parent is d:
            continue
        about = _about_user(parent.privacy.subjects, subject)
        if about is None:
            continue
        pk = parent.model._meta.primary_key.column_name
        ors.append(f"{quote_ident(field.column_name)} IN (SELECT {quote_ident(pk)} FROM "
                   f"{quote_ident(parent.table)} WHERE {about[0]})")
        params += about[1]
    return (" OR ".join(ors), params) if ors else None


def declared_parts(models: list[DeclaredModel], subject: ExportSubject, tenant_id: int) -> list[Part]:
    """The parts the declarations give for ``subject``, one per table with rows to export."""
    by_model = {d.model: d for d in models if d.model is not None}
    parts, names = [], set()
    for d in sorted(models, key=lambda d: (d.scope != "tenant", d.addon != "core", d.addon, d.table)):
        if not d.privacy.export:
            continue
        where = _subject_filter(d, subject, tenant_id, by_model)
        if where is None:
            continue
        table = quote_ident(d.table) if d.scope == "tenant" else f"public.{quote_ident(d.table)}"
        columns = tuple(d.privacy.export)
        order = ""
        if d.model is not None and d.model._meta.primary_key is not None:
            order = f" ORDER BY {quote_ident(d.model._meta.primary_key.column_name)}"
        sql = f"SELECT {', '.join(quote_ident(c) for c in columns)} FROM {table} WHERE {where[0]}{order}"
        params = tuple(where[1])
        name = d.table if d.table not in names else f"{d.scope}_{d.table}"
        names.add(name)
        parts.append(Part(
            name=name, addon=d.addon, table=d.qualified, columns=columns,
            description=f"Table {d.qualified} ({d.addon}): the columns its declaration exports.",
            rows=lambda sql=sql, params=params: stream(sql, params),
            count_sql=(f"SELECT count(*) FROM {table} WHERE {where[0]}", params), public=d.scope == "public"))
    return parts


def addon_parts(registry, tenant, subject: ExportSubject, taken: set[str]) -> list[Part]:
    """What the addons add through ``smsgw_privacy_export``."""
    parts = []
    for addon, given in registry.call_each("smsgw_privacy_export", tenant=tenant, subject=subject):
        for name, rows in (given or {}).items():
            if not isinstance(name, str) or not name.replace("_", "").isalnum() or name != name.lower() \
                    or name in taken:
                raise ValueError(f"addon {addon!r}: export part name {name!r} is not [a-z0-9_] or is taken")
            taken.add(name)
            parts.append(Part(name=name, addon=addon, description=f"Added by the {addon} addon.",
                              rows=lambda rows=rows: rows, count_sql=getattr(rows, "count_sql", None)))
    return parts


def _json_default(value):
    if isinstance(value, (bytes, memoryview)):
        raise TypeError("binary data is never exported")  # hashes and ciphertexts are bytes or *_hash/_enc text
    return str(value)  # Decimal, IPv4Address, ...


def row_json(row: dict) -> bytes:
    return orjson.dumps(row, default=_json_default, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z)


class ChunkSink(io.RawIOBase):
    """A write-only, unseekable file that stores what is written in 1 MB chunks (``put(seq, data)``)."""

    def __init__(self, put: Callable[[int, bytes], None]):
        super().__init__()
        self._put = put
        self._buffer = bytearray()
        self.seq = 0
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._buffer += data
        self.size += len(data)
        while len(self._buffer) >= CHUNK_BYTES:
            self._emit(bytes(self._buffer[:CHUNK_BYTES]))
            del self._buffer[:CHUNK_BYTES]
        return len(data)

    def _emit(self, data: bytes) -> None:
        self._put(self.seq, data)
        self.seq += 1

    def finish(self) -> None:
        if self._buffer:
            self._emit(bytes(self._buffer))
            self._buffer.clear()


class Progress:
    """Counts rows; every ``PROGRESS_EVERY`` rows calls ``report(rows_done, percent)``."""

    def __init__(self, total: int, report: Callable[[int, int], None]):
        self.total, self.done, self._report, self._next = total, 0, report, PROGRESS_EVERY

    def add(self, n: int = 1) -> None:
        self.done += n
        if self.done >= self._next:
            self._next = self.done + PROGRESS_EVERY
            self._report(self.done, self.percent)

    @property
    def percent(self) -> int:
        return min(99, self.done * 100 // self.total) if self.total else 0


def write_export(sink: ChunkSink, parts: list[Part], manifest: dict, progress: Progress,
                 public_reader: Callable) -> dict:
    """Write the zip into ``sink``; the manifest written (with each part's row count)."""
    listed = []
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        for part in parts:
            count = 0
            with zf.open(f"{part.name}.json", "w", force_zip64=True) as out:
                head = {"schema_version": SCHEMA_VERSION, "part": part.name, "addon": part.addon,
                        "table": part.table, "columns": list(part.columns) if part.columns else None}
                out.write(orjson.dumps(head)[:-1] + b',"rows":[')
                with public_reader() if part.public else _nothing():
                    for row in part.rows():
                        out.write(b"\n" + row_json(row) if count == 0 else b",\n" + row_json(row))
                        count += 1
                        progress.add()
                out.write(b"\n]}\n")
            listed.append({"name": part.name, "file": f"{part.name}.json", "addon": part.addon, "table": part.table,
                           "columns": list(part.columns) if part.columns else None, "rows": count,
                           "description": part.description})
        manifest = {**manifest, "parts": listed}
        zf.writestr("manifest.json", json.dumps(manifest, indent=2, default=str))
        zf.writestr("schema.json", json.dumps(SCHEMA, indent=2))
    sink.finish()
    return manifest


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def build(registry, tenant, subject: ExportSubject, sink: ChunkSink, report: Callable[[int, int], None]) -> dict:
    """Inside a tenant transaction (read-only, one snapshot): write the subject's export into
    ``sink``; its manifest."""
    parts = declared_parts(registry.models(), subject, tenant.id)
    parts += addon_parts(registry, tenant, subject, {p.name for p in parts})
    total = 0
    for part in parts:
        if part.count_sql:
            with as_serving_role() if part.public else _nothing():
                total += app_db.execute_sql(*part.count_sql).fetchone()[0]
    manifest = {
        "format": "smsgw-privacy-export", "schema_version": SCHEMA_VERSION,
        "generated_at": utcnow().astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z"),
        "workspace": {"id": tenant.id, "slug": tenant.slug, "name": tenant.name},
        "subject": {"kind": subject.kind, "user_id": subject.user_id, "actors": subject.actors},
    }
    return write_export(sink, parts, manifest, Progress(total, report), as_serving_role)
