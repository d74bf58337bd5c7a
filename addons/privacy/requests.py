"""Privacy requests with a 30-day clock (``public.privacy_request``).

Every privacy request is recorded here, whoever handles it: the self-service ones (an export, an
account deletion) are opened and completed by the feature that does the work; the others wait
in the platform admin's queue, sorted by due date. Functions run as the serving role (inside a
tenant transaction, wrap the call in :func:`core.db.as_serving_role`).
"""

from __future__ import annotations

import json

from core.datamap import PersonalData, Table
from core.db import app_db
from core.i18n import N_

KINDS = ("export", "erasure", "rectification", "restriction", "objection", "contact")
# The kinds as a mail to the requester names them, translated (core.i18n N_ marks them for the catalogue).
KIND_WORDS = (N_("export"), N_("erasure"), N_("rectification"), N_("restriction"), N_("objection"), N_("contact"))
STATES = ("open", "in_progress", "done", "refused", "cancelled")
OPEN_STATES = ("open", "in_progress")
DUE_DAYS = 30

_COLUMNS = ("id", "tenant_id", "tenant_slug", "kind", "subject", "requested_by", "self_service", "state",
            "details", "outcome", "created_at", "due_at", "completed_at")

MODELS = [Table("privacy_request", "public", PersonalData(
    personal=("subject", "requested_by", "details"), subjects={"tenant": "tenant_id", "actor": "subject"},
    export=("kind", "subject", "state", "details", "outcome", "created_at", "due_at", "completed_at"),
    erase="pseudonymise"))]


def open_request(kind: str, subject: str, *, tenant=None, requested_by: str = "", self_service: bool = False,
                 details: dict | None = None, state: str = "open") -> int:
    """Record a request; its id. ``tenant``: a :class:`core.tenancy.TenantInfo` (or ``None`` for
    one that names no workspace, such as a mail to the privacy address)."""
    if kind not in KINDS or state not in STATES:
        raise ValueError(f"unknown privacy request kind or state: {kind!r}, {state!r}")
    row = app_db.execute_sql(
        "INSERT INTO public.privacy_request (tenant_id, tenant_slug, kind, subject, requested_by, self_service, "
        "state, details, due_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now() + make_interval(days => %s)) "
        "RETURNING id",
        (tenant.id if tenant else None, tenant.slug if tenant else "", kind, subject, requested_by, self_service,
         state, json.dumps(details or {}, default=str), DUE_DAYS)).fetchone()
    return row[0]


def set_state(request_id: int, state: str, outcome: str = "") -> bool:
    """Move a request on; ``done``, ``refused`` and ``cancelled`` stamp its completion. Whether it existed."""
    if state not in STATES:
        raise ValueError(f"unknown privacy request state: {state!r}")
    cur = app_db.execute_sql(
        "UPDATE public.privacy_request SET state = %s, outcome = %s, "
        "completed_at = CASE WHEN %s THEN now() END WHERE id = %s",
        (state, outcome, state not in OPEN_STATES, request_id))
    return cur.rowcount == 1


def for_tenant(tenant_id: int, limit: int = 200) -> list[dict]:
    """A workspace's requests, newest first."""
    rows = app_db.execute_sql(
        f"SELECT {', '.join(_COLUMNS)} FROM public.privacy_request WHERE tenant_id = %s "
        "ORDER BY created_at DESC, id DESC LIMIT %s", (tenant_id, limit)).fetchall()
    return [dict(zip(_COLUMNS, row)) for row in rows]


def open_queue(limit: int = 500) -> list[dict]:
    """Every open request, the one due first at the top (the platform admin's queue); ``overdue``
    says whether its due date has passed (the database's clock)."""
    rows = app_db.execute_sql(
        f"SELECT {', '.join(_COLUMNS)}, due_at < now() FROM public.privacy_request "
        "WHERE state IN ('open', 'in_progress') ORDER BY due_at, id LIMIT %s", (limit,)).fetchall()
    return [{**dict(zip(_COLUMNS, row)), "overdue": row[-1]} for row in rows]


def recently_closed(limit: int = 50) -> list[dict]:
    """The last requests closed (done, refused, cancelled), newest first."""
    rows = app_db.execute_sql(
        f"SELECT {', '.join(_COLUMNS)} FROM public.privacy_request WHERE completed_at IS NOT NULL "
        "ORDER BY completed_at DESC, id DESC LIMIT %s", (limit,)).fetchall()
    return [dict(zip(_COLUMNS, row)) for row in rows]


def get(request_id: int, lock: bool = False) -> dict | None:
    row = app_db.execute_sql(
        f"SELECT {', '.join(_COLUMNS)} FROM public.privacy_request WHERE id = %s{' FOR UPDATE' if lock else ''}",
        (request_id,)).fetchone()
    return dict(zip(_COLUMNS, row)) if row else None


def for_subject(tenant_id: int, subject: str, limit: int = 200) -> list[dict]:
    """One person's requests in a workspace (as subject or as the one who asked), newest first."""
    rows = app_db.execute_sql(
        f"SELECT {', '.join(_COLUMNS)} FROM public.privacy_request WHERE tenant_id = %s "
        "AND (subject = %s OR requested_by = %s) ORDER BY created_at DESC, id DESC LIMIT %s",
        (tenant_id, subject, subject, limit)).fetchall()
    return [dict(zip(_COLUMNS, row)) for row in rows]
