"""Compat addon hooks: the /3rdparty/v1 routes and their contract, revocation checks, housekeeping.

Its tenant migrations (``migrations/tenant``) are found by convention."""

from core.addons import hookimpl

from . import api, tokens
from .models import MODELS


@hookimpl
def smsgw_models():
    return MODELS


@hookimpl
def smsgw_routes():
    return api.ROUTES


@hookimpl
def smsgw_openapi():
    from . import openapi

    return openapi.fragment()


@hookimpl
def smsgw_security_schemes(register):
    register("basic", {
        "type": "http", "scheme": "basic",
        "description": "HTTP Basic credentials, used only by the compatibility API for existing SMS gateway "
                       "clients (when that addon is installed).",
    })


@hookimpl
def smsgw_access_token_revoked(tenant, claims):
    # Checked for every JWT of every tenant (a jti may be revoked here whatever issued it),
    # inside the tenant's transaction: one primary-key lookup.
    return tokens.is_revoked(claims.get("jti"))


def purge_job(tenant):
    """The due job (inside the workspace's transaction): drop expired tokens and families."""
    return tokens.purge()


@hookimpl
def smsgw_tasks(queue):
    # Nothing arms it when a token is made (that would cost every token a statement): the due-work
    # repair pass does, within the hour, long before a token's purge is due.
    queue.due_job(tokens.PURGE_JOB, purge_job, tokens.next_purge_due)
