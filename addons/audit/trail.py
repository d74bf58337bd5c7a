"""Writing and reading the audit trail (public.audit_event)."""

from __future__ import annotations

import datetime as dt
import json

from core.db import app_db, connection

RETENTION_DAYS = 90
COLUMNS = ("id", "at", "tenant_slug", "actor", "actor_name", "action", "target", "ip", "user_agent", "reason",
           "details")


def record(event) -> None:
    with connection():
        app_db.execute_sql(
            "INSERT INTO public.audit_event (tenant_id, tenant_slug, actor, actor_name, action, target, ip, "
            "user_agent, reason, details) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (event.tenant_id, event.tenant_slug, event.actor, event.actor_name[:254], event.action, event.target,
             event.ip, event.user_agent, event.reason, json.dumps(event.details, default=str)))


def query(tenant_id: int | None, *, action: str = "", actor: str = "", since: dt.datetime | None = None,
          until: dt.datetime | None = None, admin_only: bool = False, limit: int = 200,
          before_id: int | None = None) -> list[dict]:
    """Newest first. ``tenant_id=None`` means every tenant (platform admins only)."""
    clauses, params = [], []
    if tenant_id is not None:
        clauses.append("tenant_id = %s")
        params.append(tenant_id)
    if action:
        clauses.append("action LIKE %s")
        params.append(action.replace("%", r"\%").replace("_", r"\_") + "%")
    if actor:
        clauses.append("(actor = %s OR actor_name ILIKE %s)")
        params += [actor, "%" + actor.replace("%", r"\%").replace("_", r"\_") + "%"]
    if since:
        clauses.append("at >= %s")
        params.append(since)
    if until:
        clauses.append("at < %s")
        params.append(until)
    if admin_only:
        clauses.append("actor LIKE 'admin:%%'")
    if before_id:
        clauses.append("id < %s")
        params.append(before_id)
    where = " AND ".join(clauses) or "true"
    with connection():
        rows = app_db.execute_sql(
            f"SELECT {', '.join(COLUMNS)} FROM public.audit_event WHERE {where} ORDER BY id DESC LIMIT %s",
            (*params, min(max(limit, 1), 1000))).fetchall()
    return [dict(zip(COLUMNS, r)) for r in rows]


def purge(role_prefix: str) -> int:
    """Delete rows older than the retention period, through the maintenance role's function."""
    if not role_prefix.replace("_", "").isalnum():
        raise ValueError("bad role prefix")
    with connection():
        return app_db.execute_sql(f"SELECT public.{role_prefix}_purge_audit()").fetchone()[0]
