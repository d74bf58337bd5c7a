"""Enabling or disabling an addon in many workspaces as a job recorded in PostgreSQL
(``public.reseller_addon_job`` and a row per workspace), so the console shows each workspace's
outcome while it happens: the page's script polls :func:`get`; a browser without JavaScript waits
for the same job and gets the result at the end.

The work is :func:`.service.set_addon` (the CLI's path, workspace by workspace); its ``progress``
callback writes each outcome as it comes. A job is its reseller's: :func:`get` answers only for it.
"""

from __future__ import annotations

from core.db import app_db, connection

from . import service
from .service import Outcome, Reseller


def create(reseller: Reseller, addon: str, slugs: list[str], enabled: bool) -> int:
    """Record the job (the request checked first: :func:`.service.addon_request`); its id."""
    infos = service.addon_request(reseller, addon, slugs)
    with connection(), app_db.atomic():
        job_id = app_db.execute_sql("INSERT INTO public.reseller_addon_job (reseller_id, addon, enabled) "
                                    "VALUES (%s, %s, %s) RETURNING id", (reseller.id, addon, enabled)).fetchone()[0]
        for position, info in enumerate(infos, 1):
            app_db.execute_sql("INSERT INTO public.reseller_addon_job_item (job_id, position, slug) VALUES (%s, %s, %s)",
                               (job_id, position, info.slug))
    return job_id


def run(platform, reseller: Reseller, job_id: int) -> list[Outcome]:
    """Do the job, each workspace's outcome written as soon as it is known."""
    job = get(reseller.id, job_id)

    def progress(index: int, _total: int, outcome: Outcome) -> None:
        with connection():
            app_db.execute_sql("UPDATE public.reseller_addon_job_item SET state = %s, error = %s "
                               "WHERE job_id = %s AND position = %s",
                               ("failed" if outcome.error else "done", outcome.error[:1000], job_id, index))

    try:
        return service.set_addon(platform, reseller, job["addon"], [i["slug"] for i in job["items"]], job["enabled"],
                                 progress)
    finally:
        with connection():
            app_db.execute_sql("UPDATE public.reseller_addon_job SET finished_at = now() WHERE id = %s", (job_id,))


def get(reseller_id: int, job_id: int) -> dict | None:
    """The job of this reseller (``None`` for another's or none): its addon, state and items."""
    with connection():
        row = app_db.execute_sql("SELECT id, addon, enabled, finished_at IS NOT NULL FROM public.reseller_addon_job "
                                 "WHERE id = %s AND reseller_id = %s", (job_id, reseller_id)).fetchone()
        if row is None:
            return None
        items = app_db.execute_sql("SELECT slug, state, error FROM public.reseller_addon_job_item WHERE job_id = %s "
                                   "ORDER BY position", (job_id,)).fetchall()
    listed = [{"slug": slug, "state": state, "error": error} for slug, state, error in items]
    return {"id": row[0], "addon": row[1], "enabled": row[2], "finished": row[3], "items": listed,
            "done": sum(i["state"] == "done" for i in listed), "failed": sum(i["state"] == "failed" for i in listed),
            "total": len(listed)}
