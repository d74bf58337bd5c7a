"""Addons that come with a retail plan: a reseller attaches addons the operator made available to
it to one of its retail plans; every workspace on that plan gets them enabled, and loses them when
it moves off the plan (or the addon is taken off the plan).

Each change goes through :func:`.service.set_addon`, the console's enable path, which is the CLI's
(:meth:`core.tenancy.TenantService.set_addon`: dependencies checked, every process told), workspace
by workspace; what failed where is answered, not hidden.
"""

from __future__ import annotations

from core.db import app_db, connection
from core.i18n import N_

from . import service
from .service import Outcome, Reseller


def of_plan(plan_id: int) -> list[str]:
    with connection():
        return [r[0] for r in app_db.execute_sql("SELECT addon FROM public.reseller_plan_addon WHERE plan_id = %s "
                                                 "ORDER BY addon", (plan_id,)).fetchall()]


def by_plan(reseller: Reseller) -> dict[int, list[str]]:
    """Each of the reseller's plans' addons, by plan id."""
    with connection():
        rows = app_db.execute_sql("SELECT a.plan_id, a.addon FROM public.reseller_plan_addon a JOIN public.reseller_plan p "
                                  "ON p.id = a.plan_id WHERE p.reseller_id = %s ORDER BY a.addon", (reseller.id,)).fetchall()
    found: dict[int, list[str]] = {}
    for plan_id, addon in rows:
        found.setdefault(plan_id, []).append(addon)
    return found


def _on_plan(reseller: Reseller, plan_id: int) -> list[str]:
    with connection():
        return [r[0] for r in app_db.execute_sql(
            "SELECT t.slug FROM public.reseller_tenant rt JOIN public.tenant t ON t.id = rt.tenant_id "
            "WHERE rt.reseller_id = %s AND rt.retail_plan_id = %s ORDER BY t.slug", (reseller.id, plan_id)).fetchall()]


def attach(platform, reseller: Reseller, plan, addon: str, attached: bool) -> list[Outcome]:
    """Attach ``addon`` (available to the reseller) to ``plan`` (one of its own) or take it off; the
    workspaces on the plan get it enabled or disabled. The outcome per workspace."""
    if addon not in service.available_addons(reseller):
        raise service.NotYours(N_("This addon is not available to you."))
    with connection():
        if attached:
            app_db.execute_sql("INSERT INTO public.reseller_plan_addon (plan_id, addon) VALUES (%s, %s) "
                               "ON CONFLICT DO NOTHING", (plan.id, addon))
        else:
            app_db.execute_sql("DELETE FROM public.reseller_plan_addon WHERE plan_id = %s AND addon = %s",
                               (plan.id, addon))
    slugs = _on_plan(reseller, plan.id)
    return service.set_addon(platform, reseller, addon, slugs, attached) if slugs else []


def moved(platform, reseller: Reseller, slug: str, old_plan_id: int | None,
          new_plan_id: int | None) -> list[tuple[str, bool, str]]:
    """A workspace moved from one plan to another (either may be ``None``): the old plan's addons
    that the new plan has not are disabled, the new plan's enabled. ``(addon, enabled, error)`` for
    each change (``error`` "" when it worked)."""
    old = set(of_plan(old_plan_id)) if old_plan_id else set()
    new = set(of_plan(new_plan_id)) if new_plan_id else set()
    changes = []
    for addon, enabled in [(a, False) for a in sorted(old - new)] + [(a, True) for a in sorted(new)]:
        try:
            error = service.set_addon(platform, reseller, addon, [slug], enabled)[0].error
        except service.NotYours as exc:  # the operator withdrew it since
            error = str(exc)
        changes.append((addon, enabled, error))
    return changes
