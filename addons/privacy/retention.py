"""Message-text retention: each workspace keeps message text N days after the message ended, then removes it.

What is removed is what the addons declare as ``content`` (:mod:`core.datamap`): the retention job
walks ``registry.models()`` and nothing else, so a reseller's addon that declares a content column
is covered like messaging (outbound texts), devices (inbound SMS bodies) and webhooks (the body
inside stored event payloads, endpoints' answers that may echo it). Metadata stays: numbers,
states, times, error codes, segment counts. A row's content is due once its ``ended`` time (a
message: when its last recipient became final; NULL while any is not, so a message still going on
is never touched) lies more than ``keep_days`` in the past.

The work is due work (:mod:`core.due`), per workspace: a message that ends, an SMS that arrives,
a changed setting arm the job for the time its text becomes due, and ``next_due`` says the next
time from the rows themselves. A run's own transaction only hands over: the removal goes in
batches after it, each batch a short transaction of its own (``FOR NO KEY UPDATE SKIP LOCKED``,
at most ``SMSGW_RETENTION_BATCH`` rows, halved while a batch takes longer than
``SMSGW_RETENTION_BATCH_MS``), so a backlog of millions never holds row locks for long and never
waits for rows others hold; progress goes to the worker log.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field

from core import due
from core.clock import utcnow
from core.datamap import NO_PERSONAL_DATA, Table
from core.db import app_db, quote_ident, tenant_transaction
from core.events import AuditEvent, emit
from core.openapi import VALIDATION, api_errors, json_body, json_response, ref, responses, security
from core.web.base import ApiHandler
from core.web.problem import Problem

from .page import MANAGE, Section

log = logging.getLogger(__name__)

JOB = "privacy.retention"
DEFAULT_DAYS = 7
MAX_DAYS = 365
START_BATCH = 250  # rows in a run's first batch
NEXT_DUE_SCAN = 10_000  # unredacted rows past the cut-off whose end next_due reads, at most
FINAL_EVENTS = frozenset({"delivered", "failed", "cancelled", "expired", "received"})

MODELS = [Table("privacy_retention", "tenant", NO_PERSONAL_DATA)]  # the setting; who changed it: the audit trail


# -- the setting ------------------------------------------------------------------

def keep_days() -> int:
    """Inside a tenant transaction: the workspace's retention in days."""
    row = app_db.execute_sql("SELECT keep_days FROM privacy_retention").fetchone()
    return DEFAULT_DAYS if row is None else row[0]


def settings_json() -> dict:
    row = app_db.execute_sql("SELECT keep_days, updated_at FROM privacy_retention").fetchone()
    days, updated = row if row else (DEFAULT_DAYS, None)
    return {"keep_message_text_days": days, "updated_at": updated.isoformat() if updated else None}


def set_keep_days(days: int, platform) -> int:
    """Inside a tenant transaction: change the retention; the old value. Arms the job for what the
    new value makes due (a shorter period: texts now already past it go at once)."""
    old = keep_days()
    app_db.execute_sql(
        "INSERT INTO privacy_retention (id, keep_days, updated_at) VALUES (true, %s, now()) "
        "ON CONFLICT (id) DO UPDATE SET keep_days = excluded.keep_days, updated_at = excluded.updated_at", (days,))
    when = next_due(None, platform=platform)
    if when is not None:
        due.arm(JOB, when)
    return old


# -- what the declarations say ------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """One declared table with content, and the SQL that removes it."""

    addon: str
    table: str
    redact_after: str  # quoted column
    ended: str  # SQL: the row's end (NULL while it goes on)
    pending: str  # SQL: the row still holds content
    sets: str  # SQL: the SET list that removes it


_shapes: dict[tuple[str, str], tuple[str, bool]] = {}
_shapes_lock = threading.Lock()


def _shape(table: str, column: str) -> tuple[str, bool]:
    """(data type, nullable) of a column of the current tenant's table (the same in every tenant)."""
    key = (table, column)
    with _shapes_lock:
        if key in _shapes:
            return _shapes[key]
    row = app_db.execute_sql(
        "SELECT data_type, is_nullable = 'YES' FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = %s AND column_name = %s", (table, column)).fetchone()
    if row is None:
        raise LookupError(f"the declared content column {table}.{column} does not exist")
    with _shapes_lock:
        _shapes[key] = row
    return row


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def target(declared) -> Target:
    """The SQL for one declared table (inside a tenant transaction: it reads the columns' types)."""
    p = declared.privacy
    table = quote_ident(declared.table)
    pending, sets = [], []
    for entry in p.content:
        column, _, key = entry.partition(".")
        col = f"{table}.{quote_ident(column)}"
        kind, nullable = _shape(declared.table, column)
        if key:
            if kind != "jsonb":
                raise TypeError(f"{declared.addon}: {declared.table}.{column} holds {kind}, not a JSON object; "
                                f"content {entry!r} names a key in it")
            path = _literal("{" + ",".join(key.split(".")) + "}")
            pending.append(f"({col} #>> {path}) IS NOT NULL")
            sets.append((column, f"jsonb_set({{v}}, {path}, 'null', false)"))  # only where the key is
        elif kind == "jsonb":
            pending.append(f"({col} IS NOT NULL AND {col} <> 'null'::jsonb)")
            sets.append((column, "NULL" if nullable else "'null'::jsonb"))
        elif kind in ("text", "character varying", "character"):
            pending.append(f"nullif({col}, '') IS NOT NULL")
            sets.append((column, "NULL" if nullable else "''"))
        else:
            raise TypeError(f"{declared.addon}: content column {declared.table}.{column} is {kind}; retention "
                            f"blanks text and JSON columns only")
    # Several keys of one JSON column: one assignment, the edits nested.
    merged: dict[str, str] = {}
    for column, expr in sets:
        inner = merged.get(column, f"{table}.{quote_ident(column)}")
        merged[column] = expr.replace("{v}", inner) if "{v}" in expr else expr
    assignments = [f"{quote_ident(c)} = {e}" for c, e in merged.items()]
    if p.redacted_at:
        assignments.append(f"{quote_ident(p.redacted_at)} = %(now)s")
        pending = [f"{table}.{quote_ident(p.redacted_at)} IS NULL"]
    after = f"{table}.{quote_ident(p.redact_after)}"
    return Target(declared.addon, table, after, p.ended or after, " OR ".join(pending) if len(pending) > 1
                  else pending[0], ", ".join(assignments))


def targets(models) -> list[Target]:
    """Every tenant table some addon declares content for (inside a tenant transaction)."""
    return [target(d) for d in models if d.scope == "tenant" and d.privacy.content]


# -- removing -------------------------------------------------------------------------

def redact_batch(t: Target, cutoff: dt.datetime, now: dt.datetime, limit: int,
                 after: dt.datetime | None) -> tuple[int, dt.datetime | None]:
    """Inside a tenant transaction: remove the content of up to ``limit`` rows of ``t`` that ended
    before ``cutoff``, oldest first from ``after`` on, skipping rows others hold. ``(rows, the
    latest redact_after done)``: the next batch starts there."""
    # Not waiting for the WAL flush at commit keeps the rows locked for the statement only; a removal
    # lost in a crash is simply done again by the next run.
    app_db.execute_sql("SET LOCAL synchronous_commit TO off")
    row = app_db.execute_sql(f"""
        WITH done AS (
            UPDATE {t.table} SET {t.sets}
             WHERE ctid = ANY (ARRAY(
                   SELECT ctid FROM {t.table}
                    WHERE {t.redact_after} < %(cutoff)s AND {t.redact_after} >= %(after)s AND ({t.pending})
                      AND ({t.ended}) < %(cutoff)s
                    ORDER BY {t.redact_after} LIMIT %(limit)s FOR NO KEY UPDATE SKIP LOCKED))
            RETURNING {t.redact_after} AS at)
        SELECT count(*), max(at) FROM done""",
        {"cutoff": cutoff, "now": now, "limit": limit, "after": after or dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc)}
    ).fetchone()
    return row[0], row[1]


@dataclass
class Progress:
    """What a :func:`redact` call did: rows, batches, each batch's transaction time (ms), per table."""

    rows: int = 0
    batches: int = 0
    longest_ms: float = 0.0
    by_table: dict = field(default_factory=dict)
    batch_ms: list = field(default_factory=list)


def redact(platform, tenant, now: dt.datetime | None = None, budget: float | None = None,
           models=None, batch: int | None = None, pause_ms: int | None = None) -> Progress:
    """Remove every content the workspace's retention makes due at ``now`` (default: the clock),
    in batches of at most ``batch`` rows (default ``SMSGW_RETENTION_BATCH``), each a transaction of
    its own, ``pause_ms`` apart (default ``SMSGW_RETENTION_PAUSE_MS``); stops after ``budget`` seconds
    (None: when done). ``models``: the declarations to walk (default: the platform's)."""
    settings = platform.settings
    ceiling = batch or settings.retention_batch
    size = min(ceiling, START_BATCH)  # grows while batches stay quick
    goal_ms = settings.retention_batch_ms
    pause = (settings.retention_pause_ms if pause_ms is None else pause_ms) / 1000
    models = platform.registry.models() if models is None else models
    with tenant_transaction(tenant.ref):
        days = keep_days()
        walk = targets(models)
    started = time.monotonic()
    out = Progress()
    last_log = started
    for t in walk:
        after = None
        while True:
            clock = now or utcnow()
            cutoff = clock - dt.timedelta(days=days)
            with tenant_transaction(tenant.ref):
                t0 = time.perf_counter()  # from the locking statement to the commit: what others may wait for
                n, latest = redact_batch(t, cutoff, clock, size, after)
            took = (time.perf_counter() - t0) * 1000
            out.longest_ms = max(out.longest_ms, took)
            out.batch_ms.append(took)
            out.batches += 1
            out.rows += n
            out.by_table[t.table.strip('"')] = out.by_table.get(t.table.strip('"'), 0) + n
            if took > goal_ms and size > 50:
                size = max(50, size // 2)
            elif took < goal_ms / 3 and size < ceiling and n == size:
                size = min(ceiling, size * 2)
            if n == 0:
                break
            after = latest
            if pause:
                time.sleep(pause)
            if time.monotonic() - last_log >= 5:
                last_log = time.monotonic()
                log.info("retention %s: %d texts removed so far (%s, batch %d rows, longest batch %.0f ms)",
                         tenant.slug, out.rows, t.table, size, out.longest_ms)
            if budget is not None and time.monotonic() - started > budget:
                log.info("retention %s: %d texts removed in %.1f s; the rest in the next run",
                         tenant.slug, out.rows, time.monotonic() - started)
                return out
    if out.rows:
        log.info("retention %s: removed the text of %d rows (%s) in %d batches, %.1f s, longest batch %.0f ms",
                 tenant.slug, out.rows, ", ".join(f"{k} {v}" for k, v in out.by_table.items() if v), out.batches,
                 time.monotonic() - started, out.longest_ms)
    return out


# -- due work -------------------------------------------------------------------------

_platform = None
RUN_BUDGET = 20.0  # seconds a run removes a backlog (in a thread of the due pool) before the next run goes on


def next_due(tenant, platform=None, now: dt.datetime | None = None) -> dt.datetime | None:
    """Inside a tenant transaction: when content next becomes due (past: due now), or None."""
    platform = platform or _platform
    now = now or utcnow()
    days = keep_days()
    cutoff = now - dt.timedelta(days=days)
    found = []
    for t in targets(platform.registry.models()):
        # Rows not yet past the cut-off: their start is the earliest their end can be.
        ahead = app_db.execute_sql(f"SELECT min({t.redact_after}) FROM {t.table} WHERE ({t.pending}) "
                                   f"AND {t.redact_after} >= %s", (cutoff,)).fetchone()[0]
        # Rows past it still holding content: those whose end came later (or that go on).
        behind, scanned = app_db.execute_sql(
            f"SELECT min(e), count(*) FROM (SELECT ({t.ended}) AS e FROM {t.table} WHERE ({t.pending}) "
            f"AND {t.redact_after} < %s ORDER BY {t.redact_after} LIMIT %s) x", (cutoff, NEXT_DUE_SCAN)).fetchone()
        found += [at + dt.timedelta(days=days) for at in (ahead, behind) if at is not None]
        if scanned >= NEXT_DUE_SCAN:
            found.append(now + dt.timedelta(minutes=1))  # more than it reads: look again in a minute
    if not found:
        return None
    when = min(found)
    if when > now:  # ahead: at the next whole minute, so a busy workspace runs at most once a minute
        when = when.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    return when


def run(tenant):
    """The due run, inside its transaction: what a minute brings (up to one first-size batch in all)
    goes here, so ``next_due`` then sees it gone; a backlog goes on after the commit, in batches
    of their own (``redact``), and the run after it comes a second later."""
    platform = _platform
    now = utcnow()
    cutoff = now - dt.timedelta(days=keep_days())
    removed: dict[str, int] = {}
    left = START_BATCH
    for t in targets(platform.registry.models()):
        n, _ = redact_batch(t, cutoff, now, left, None)
        if n:
            removed[t.table.strip('"')] = n
        left -= n
        if left <= 0:
            break

    def after_commit():
        rows = dict(removed)
        if left <= 0:  # a backlog: the rest in short transactions of their own
            for table, n in redact(platform, tenant, budget=RUN_BUDGET).by_table.items():
                if n:
                    rows[table] = rows.get(table, 0) + n
        if rows:
            emit(platform, AuditEvent("privacy.retention_applied", tenant.id, tenant.slug, actor="system",
                                      actor_name="retention",
                                      details={"rows": sum(rows.values()), "tables": rows}))
    return after_commit


def tasks(queue) -> None:
    global _platform
    _platform = queue.platform
    queue.due_job(JOB, run, next_due)


def configure(platform) -> None:
    global _platform
    _platform = platform


_armed: dict[int, dt.datetime] = {}  # tenant id -> the minute this process last armed (retention > 0)


def on_message_events(tenant, events) -> None:
    """Inside the transaction that ended messages or received SMS: arm the job for when their text is due.

    Arms the start of the earliest minute among them plus the retention: never later than a text is
    due (a run that finds nothing due yet reads the exact time from the rows). Once a minute per
    workspace and process at most: an earlier arm of the same minute covers these too."""
    times = [_event_time(data) for event, data in events if event in FINAL_EVENTS]
    if not times:
        return
    minute = min(times).replace(second=0, microsecond=0)
    if _armed.get(tenant.id) == minute:
        return
    row = app_db.execute_sql(
        "SELECT keep_days, " + due.arm_call("job", "%(at)s::timestamptz + make_interval(days => keep_days)")
        + " FROM privacy_retention", {"job": JOB, "at": minute}).fetchone()
    if row is not None and row[0] > 0:  # with 0 the run comes at once: the next minute's arm is not covered
        _armed[tenant.id] = minute


def _event_time(data: dict) -> dt.datetime:
    now = utcnow()
    raw = data.get("received_at")
    if raw:
        try:
            return min(now, dt.datetime.fromisoformat(raw))
        except (TypeError, ValueError):
            pass
    return now


# -- the API ----------------------------------------------------------------------------

def _audit(handler, old: int, new: int) -> AuditEvent:
    return AuditEvent("privacy.retention_changed", handler.tenant.id, handler.tenant.slug,
                      actor=handler.principal.actor, actor_name=handler.principal.email or handler.principal.name,
                      target="privacy:retention", ip=handler.request.remote_ip or "",
                      details={"keep_message_text_days": {"from": old, "to": new}})


class SettingsHandler(ApiHandler):
    permissions = {"GET": MANAGE, "PATCH": MANAGE}
    body_schemas = {"PATCH": "updatePrivacySettings"}

    async def get(self):
        self.write_json(await self.in_tenant(settings_json))

    async def patch(self):
        days = self.json_body()["keep_message_text_days"]  # the schema asks for it, 0 to MAX_DAYS

        def change():
            old = set_keep_days(days, self.platform)
            return old, settings_json()

        old, out = await self.in_tenant(change, audit=lambda done: _audit(self, done[0], days))
        self.write_json(out)


ROUTES = [(r"/api/v1/privacy/settings", SettingsHandler)]

TAG = "Privacy"
DAYS_SCHEMA = {"type": "integer", "minimum": 0, "maximum": MAX_DAYS,
               "description": "Days message text is kept after the message ended (every recipient delivered, "
                              "failed, expired or cancelled; an inbound SMS: after it arrived), then removed. "
                              "0 removes it as soon as the message is final. Numbers, states, times, error codes "
                              "and segment counts stay.",
               "x-message": f"must be a whole number of days from 0 to {MAX_DAYS}"}


def openapi() -> dict:
    return {
        "paths": {"/api/v1/privacy/settings": {
            "get": {
                "operationId": "getPrivacySettings", "tags": [TAG], "summary": "The workspace's privacy settings",
                "description": "How long message text is kept.",
                "security": security(MANAGE),
                "responses": responses({200: json_response("The settings.", ref("PrivacySettings"))}, api_errors()),
            },
            "patch": {
                "operationId": "updatePrivacySettings", "tags": [TAG], "summary": "Change the privacy settings",
                "description": "Changes what is sent. A shorter retention removes texts already past it within "
                               "a minute; the change is recorded in the audit trail.",
                "security": security(MANAGE),
                "requestBody": json_body(ref("PrivacySettingsPatch"),
                                         examples={"keep a day": {"keep_message_text_days": 1}}),
                "responses": responses({200: json_response("The settings as they are now.", ref("PrivacySettings"))},
                                       api_errors(write=True, body=True), VALIDATION),
            },
        }},
        "components": {"schemas": {
            "PrivacySettings": {
                "type": "object", "required": ["keep_message_text_days", "updated_at"],
                "properties": {"keep_message_text_days": DAYS_SCHEMA,
                               "updated_at": {"type": ["string", "null"], "format": "date-time",
                                              "description": "When the settings last changed."}}},
            "PrivacySettingsPatch": {
                "type": "object", "additionalProperties": False, "required": ["keep_message_text_days"],
                "properties": {"keep_message_text_days": DAYS_SCHEMA}},
        }},
        "tags": [{"name": TAG, "description": "The workspace's privacy settings: how long message text is kept."}],
    }


# -- Account → Privacy ----------------------------------------------------------------

async def load(handler) -> dict | None:
    if not handler.principal.can(MANAGE):
        return None
    out = await handler.in_tenant(settings_json)
    return {"days": out["keep_message_text_days"], "max_days": MAX_DAYS}


async def post(handler) -> dict | None:
    raw = handler.get_body_argument("keep_message_text_days", "").strip()
    if not raw.isdigit() or int(raw) > MAX_DAYS:
        _ = handler.gettext()[0]
        return {"keep_message_text_days": _("Give a whole number of days from 0 to 365.")}
    days = int(raw)

    def change():
        return set_keep_days(days, handler.platform)

    await handler.in_tenant(change, audit=lambda old: _audit(handler, old, days))
    _ = handler.gettext()[0]
    handler.flash("success", _("Message-text retention saved."))
    return None


SECTION = Section("retention", 30, "privacy/retention.html", load, post)
