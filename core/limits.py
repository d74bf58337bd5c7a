"""Limits on what a workspace may add (members, phones, ...): the kernel asks the addons.

An addon that sells plans answers ``smsgw_limit_check`` (:mod:`core.hookspecs`); the code that adds a
member or pairs a phone calls :func:`check` first, inside the transaction that adds it.
"""

from __future__ import annotations

from .db import app_db


def check(platform, tenant, resource: str, count) -> None:
    """Inside ``tenant``'s transaction, before adding one ``resource``: serialize additions of that
    resource in the workspace (a transaction-level advisory lock: two invites cannot both pass a
    limit of one), count what there is (``count()``) and raise the Problem an addon refuses with."""
    app_db.execute_sql("SELECT pg_advisory_xact_lock(hashtext('limit:' || %s), hashtext(%s))",
                       (tenant.slug, resource))
    refusal = platform.registry.hook.smsgw_limit_check(tenant=tenant, resource=resource, current=count())
    if refusal is not None:
        raise refusal
