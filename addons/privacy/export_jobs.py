"""Data exports as work: the ``public.privacy_export`` rows, the build task, the sweep.

Huey only triggers a build; the row is the truth. A build claims its row with a lease
(``lease_until``) that it renews with every progress commit; the sweep (every minute, one
platform-wide periodic: the table is public) hands a build whose lease lapsed (its worker died)
or that no worker claimed in time to the queue again, marks an export that failed
``MAX_ATTEMPTS`` times failed, and deletes the files of exports past ``expires_at``.
Functions without a ``platform`` argument run as the serving role on ``app_db``.
"""

from __future__ import annotations

import logging

import psycopg2

from core.db import app_db, connection, tenant_transaction
from core.events import AuditEvent, emit

from . import requests
from .exporter import ChunkSink, ExportSubject, build

log = logging.getLogger(__name__)

TASK = "privacy.export.build"
LEASE_SECONDS = 120
UNCLAIMED_SECONDS = 60  # a queued export no worker took by then is queued again
MAX_ATTEMPTS = 3
KEEP_HOURS = 24  # a ready export's file is kept (and downloadable) this long
RETRY_SECONDS = 30
GIVE_UP_HOURS = 24  # an export not built by then (its workspace suspended, the addon disabled) fails

COLUMNS = ("id", "tenant_id", "subject", "requested_by", "bound_to", "request_id", "state", "progress", "rows_done",
           "size_bytes", "error", "attempts", "created_at", "started_at", "finished_at", "expires_at", "downloads",
           "last_downloaded_at")


class Superseded(Exception):
    """Another worker took this build over (our lease lapsed): stop without touching the row."""


def _rows(sql: str, params) -> list[dict]:
    return [dict(zip(COLUMNS, r)) for r in app_db.execute_sql(sql, params).fetchall()]


def create(tenant, subject: ExportSubject, requested_by: str, bound_to: str) -> dict:
    """Record a new export (and its privacy request); the row. One transaction."""
    with app_db.atomic():
        request_id = requests.open_request("export", subject.label, tenant=tenant, requested_by=requested_by,
                                           self_service=True, state="in_progress", details={"scope": subject.kind})
        return _rows(f"INSERT INTO public.privacy_export (tenant_id, subject, requested_by, bound_to, request_id) "
                     f"VALUES (%s, %s, %s, %s, %s) RETURNING {', '.join(COLUMNS)}",
                     (tenant.id, subject.label, requested_by, bound_to, request_id))[0]


def running(tenant_id: int, subject: ExportSubject, requested_by: str) -> dict | None:
    """This person's export of this subject that is still being built, if any."""
    found = _rows(f"SELECT {', '.join(COLUMNS)} FROM public.privacy_export WHERE tenant_id = %s AND subject = %s "
                  "AND requested_by = %s AND state IN ('queued', 'building') ORDER BY id DESC LIMIT 1",
                  (tenant_id, subject.label, requested_by))
    return found[0] if found else None


def get(tenant_id: int, export_id: int) -> dict | None:
    found = _rows(f"SELECT {', '.join(COLUMNS)} FROM public.privacy_export WHERE tenant_id = %s AND id = %s",
                  (tenant_id, export_id))
    return found[0] if found else None


def requested_by(tenant_id: int, actor: str, limit: int = 10) -> list[dict]:
    """The exports ``actor`` asked for in this workspace, newest first."""
    return _rows(f"SELECT {', '.join(COLUMNS)} FROM public.privacy_export WHERE tenant_id = %s AND requested_by = %s "
                 "ORDER BY id DESC LIMIT %s", (tenant_id, actor, limit))


def record_download(platform, tenant, export: dict, event: AuditEvent) -> bool:
    """Count a download and record it in the audit trail, in one transaction, before a byte leaves;
    False if the export is no longer ready (expired meanwhile)."""
    with connection():
        with app_db.atomic():
            cur = app_db.execute_sql(
                "UPDATE public.privacy_export SET downloads = downloads + 1, last_downloaded_at = now() "
                "WHERE id = %s AND tenant_id = %s AND state = 'ready' AND expires_at > now()",
                (export["id"], tenant.id))
            if cur.rowcount != 1:
                return False
            emit(platform, event)
    return True


def chunk(export_id: int, seq: int) -> bytes | None:
    row = app_db.execute_sql("SELECT data FROM public.privacy_export_chunk WHERE export_id = %s AND seq = %s",
                             (export_id, seq)).fetchone()
    return bytes(row[0]) if row else None


# -- the build -------------------------------------------------------------------------------

def _claim(export_id: int, tenant_id: int) -> dict | None:
    """Take the build (queued, or building under a lapsed lease); drop a dead attempt's chunks."""
    with connection():
        with app_db.atomic():
            found = _rows(
                "UPDATE public.privacy_export SET state = 'building', attempts = attempts + 1, progress = 0, "
                "rows_done = 0, error = '', started_at = coalesce(started_at, now()), "
                "lease_until = now() + make_interval(secs => %s) "
                "WHERE id = %s AND tenant_id = %s AND attempts < %s AND (state = 'queued' "
                "OR (state = 'building' AND lease_until < now())) RETURNING " + ", ".join(COLUMNS),
                (LEASE_SECONDS, export_id, tenant_id, MAX_ATTEMPTS))
            if found:
                app_db.execute_sql("DELETE FROM public.privacy_export_chunk WHERE export_id = %s", (export_id,))
    return found[0] if found else None


class _Writer:
    """The builder's own connection: chunks, progress and the lease, committed as it goes."""

    def __init__(self, url: str, export: dict):
        self.conn = psycopg2.connect(url, options="-c timezone=UTC")
        self.export = export

    def _mine(self, cur, sql: str, params: tuple) -> None:
        cur.execute(sql + " WHERE id = %s AND state = 'building' AND attempts = %s",
                    params + (self.export["id"], self.export["attempts"]))
        if cur.rowcount != 1:
            self.conn.rollback()
            raise Superseded()

    def put(self, seq: int, data: bytes) -> None:
        with self.conn.cursor() as cur:
            cur.execute("INSERT INTO public.privacy_export_chunk (export_id, seq, tenant_id, data) "
                        "VALUES (%s, %s, %s, %s)", (self.export["id"], seq, self.export["tenant_id"], data))
            self._mine(cur, "UPDATE public.privacy_export SET lease_until = now() + make_interval(secs => %s)",
                       (LEASE_SECONDS,))
        self.conn.commit()

    def progress(self, rows_done: int, percent: int) -> None:
        with self.conn.cursor() as cur:
            self._mine(cur, "UPDATE public.privacy_export SET rows_done = %s, progress = %s, "
                            "lease_until = now() + make_interval(secs => %s)", (rows_done, percent, LEASE_SECONDS))
        self.conn.commit()

    def ready(self, size: int, rows_done: int) -> None:
        with self.conn.cursor() as cur:
            self._mine(cur, "UPDATE public.privacy_export SET state = 'ready', progress = 100, rows_done = %s, "
                            "size_bytes = %s, finished_at = now(), lease_until = NULL, "
                            "expires_at = now() + make_interval(hours => %s)", (rows_done, size, KEEP_HOURS))
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()


def run_build(platform, slug: str, export_id: int) -> str:
    """The task: build export ``export_id`` of workspace ``slug``. What happened: ``built``,
    ``not-mine`` (nothing to claim), ``superseded``, ``retry`` or ``failed``."""
    tenant = platform.tenant_cache.get(slug)
    if tenant is None:
        return "not-mine"
    export = _claim(export_id, tenant.id)
    if export is None:
        return "not-mine"
    subject = ExportSubject.from_label(export["subject"])
    writer = _Writer(platform.app_url, export)
    try:
        sink = ChunkSink(writer.put)
        with tenant_transaction(tenant.ref):
            # One snapshot for the whole export, and nothing in it can write.
            app_db.execute_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            manifest = build(platform.registry, tenant, subject, sink, writer.progress)
        rows = sum(p["rows"] for p in manifest["parts"])
        writer.ready(sink.size, rows)
    except Superseded:
        log.warning("privacy export %s of %s was taken over by another worker", export_id, slug)
        return "superseded"
    except Exception as exc:
        log.exception("privacy export %s of %s failed (attempt %s)", export_id, slug, export["attempts"])
        return _failed(platform, tenant, export, f"{exc.__class__.__name__}: {str(exc)[:300]}")
    finally:
        writer.close()
    _finish(platform, tenant, export, "done", f"ready: {sink.size} bytes, {rows} rows")
    log.info("privacy export %s of %s ready: %d rows, %d bytes", export_id, slug, rows, sink.size)
    return "built"


def _failed(platform, tenant, export: dict, error: str) -> str:
    final = export["attempts"] >= MAX_ATTEMPTS
    with connection():
        with app_db.atomic():
            app_db.execute_sql(
                "UPDATE public.privacy_export SET state = CASE WHEN %s THEN 'failed' ELSE 'building' END, error = %s, "
                "lease_until = now() + make_interval(secs => %s) WHERE id = %s AND state = 'building' "
                "AND attempts = %s", (final, error, RETRY_SECONDS, export["id"], export["attempts"]))
            if final:
                app_db.execute_sql("DELETE FROM public.privacy_export_chunk WHERE export_id = %s", (export["id"],))
    if final:
        _finish(platform, tenant, export, "refused", "the export failed; the requester may ask again")
        return "failed"
    return "retry"  # the sweep hands it out again once the lease lapses


def _finish(platform, tenant, export: dict, state: str, outcome: str) -> None:
    """Close the privacy request and record the outcome in the audit trail."""
    with connection():
        with app_db.atomic():
            if export["request_id"]:
                requests.set_state(export["request_id"], state, outcome)
            emit(platform, AuditEvent(
                "privacy.export." + ("ready" if state == "done" else "failed"), tenant.id, tenant.slug,
                actor="system", target=f"privacy_export:{export['id']}",
                details={"subject": export["subject"], "requested_by": export["requested_by"], "outcome": outcome}))


# -- the sweep -------------------------------------------------------------------------------

def sweep(platform) -> dict:
    """Delete expired exports' files; queue again the builds nobody holds; fail the hopeless."""
    with connection():
        with app_db.atomic():
            expired = app_db.execute_sql(
                "WITH gone AS (UPDATE public.privacy_export SET state = 'expired' WHERE state = 'ready' "
                "AND expires_at <= now() RETURNING id), chunks AS (DELETE FROM public.privacy_export_chunk "
                "WHERE export_id IN (SELECT id FROM gone)) SELECT count(*) FROM gone").fetchone()[0]
        with app_db.atomic():
            hopeless = _rows(
                "UPDATE public.privacy_export SET state = 'failed', error = CASE WHEN error = '' THEN "
                "'not built in time: the worker stopped, or the workspace was suspended' ELSE error END WHERE (state = 'building' AND lease_until < now() "
                "AND attempts >= %s) OR (state IN ('queued', 'building') AND created_at < now() - "
                "make_interval(hours => %s)) RETURNING " + ", ".join(COLUMNS), (MAX_ATTEMPTS, GIVE_UP_HOURS))
            for export in hopeless:
                app_db.execute_sql("DELETE FROM public.privacy_export_chunk WHERE export_id = %s", (export["id"],))
        stale = app_db.execute_sql(
            "SELECT e.id, t.slug FROM public.privacy_export e JOIN public.tenant t ON t.id = e.tenant_id "
            "WHERE t.status = 'active' AND ((e.state = 'queued' AND e.created_at < now() - make_interval(secs => %s)) "
            "OR (e.state = 'building' AND e.lease_until < now())) ORDER BY e.id LIMIT 100",
            (UNCLAIMED_SECONDS,)).fetchall()
    for export in hopeless:
        with connection():
            if export["request_id"]:
                requests.set_state(export["request_id"], "refused", "the export failed; the requester may ask again")
        log.warning("privacy export %s of workspace %s failed for good: %s", export["id"], export["tenant_id"],
                    export["error"])
    task = platform.queue.tasks[TASK]
    for export_id, slug in stale:
        task(slug, export_id)
    if expired or stale or hopeless:
        log.info("privacy exports: %d expired (files deleted), %d queued again, %d failed", expired, len(stale),
                 len(hopeless))
    return {"expired": expired, "requeued": len(stale), "failed": len(hopeless)}
