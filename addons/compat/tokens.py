"""``/3rdparty/v1/auth/token``: short-lived access JWTs with scopes, refresh rotation, revocation by jti.

Access tokens are our own RS256 tokens (``platform.keyring``), for the caller
(a user, or an API token acting as itself, never as its creator), with a
``scope`` claim the kernel intersects with what the caller holds; their
lifetime is at most our 900 s. Refresh tokens are ours too (``sgr_…``, rotated,
reuse revokes the family, ``core.identity.issue_grant``): the kernel keeps each
family's holder and scope, so refreshing here or at ``/api/v1/auth/refresh``
never widens it; ``compat_token_families`` keeps the lifetime. Revoking a jti
marks it in ``compat_access_tokens``, which the kernel consults for every JWT
(hook ``smsgw_access_token_revoked``), and revokes its refresh family.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

from core import tokenformat
from core.clock import utcnow
from core.db import app_db
from core.identity import AuthError, Grant, access_claims, issue_grant, revoke_family, rotate_refresh
from core.jwtkeys import ACCESS_TTL, LEEWAY
from core.users import RefreshToken
from core.web.problem import Problem

from .models import AccessToken, TokenFamily
from core.i18n import N_

# Their scope names (and ours, accepted as they are) → our permissions.
SCOPES = {
    "messages:send": {"messages:send"},
    "messages:read": {"messages:read"},
    "messages:list": {"messages:read"},
    "messages:export": {"messages:read"},
    "inbox:list": {"messages:read"},
    "inbox:read": {"messages:read"},
    "devices:list": {"devices:read"},
    "devices:read": {"devices:read"},
    "devices:delete": {"devices:write"},
    "devices:write": {"devices:write"},
    "webhooks:list": {"webhooks:read"},
    "webhooks:read": {"webhooks:read"},
    "webhooks:write": {"webhooks:write"},
    "webhooks:delete": {"webhooks:write"},
    "settings:read": set(),  # settings are not offered through compat; accepted, grants nothing
    "settings:write": {"settings:write"},
    "logs:read": set(),  # logs are not offered through compat; accepted, grants nothing
    "tokens:manage": {"tokens:manage"},
}
ALL = "all:any"


def requested_permissions(scopes, caller_permissions: frozenset) -> frozenset:
    """Our permissions for their ``scopes``; refuses unknown scopes and scopes the caller lacks."""
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise Problem(400, "validation-failed", N_("scopes must be a non-empty list, e.g. [\"messages:send\"]."),
                      errors=[{"field": "scopes", "message": N_("a non-empty list of scope names")}])
    unknown = sorted({s for s in scopes if s != ALL and s not in SCOPES})
    if unknown:
        raise Problem(400, "validation-failed", N_("Unknown scope(s): %(unknown)s. Known: %(known)s."),
                      args={"unknown": ", ".join(unknown)[:200], "known": ", ".join((ALL, *SCOPES))},
                      errors=[{"field": "scopes", "message": N_("unknown scope")}])
    if ALL in scopes:
        return frozenset(caller_permissions)
    wanted = frozenset(p for s in scopes for p in SCOPES[s])
    if not wanted:
        raise Problem(400, "validation-failed", N_("The scopes %(scopes)s give no access on this gateway (settings "
                                                   "and logs are not offered here); ask for e.g. messages:send."),
                      args={"scopes": ", ".join(scopes)[:200]},
                      errors=[{"field": "scopes", "message": N_("grants nothing here")}])
    missing = sorted(wanted - caller_permissions)
    if missing:
        raise Problem(403, "forbidden", N_("Your credentials do not allow %(missing)s; ask for less, or ask the "
                                           "account owner."), args={"missing": ", ".join(missing)})
    return wanted


def parse_ttl(value) -> int:
    if value is None or value == 0:
        return ACCESS_TTL
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Problem(400, "validation-failed", N_("ttl must be a number of seconds (at most 900 here)."),
                      errors=[{"field": "ttl", "message": N_("seconds, a whole number")}])
    return min(value, ACCESS_TTL)


def _plan(grant: Grant, ttl: int, issued_by: str) -> dict:
    """Record the access token about to be signed (the signing happens outside the tenant transaction)."""
    now = int(time.time())
    plan = {"claims": access_claims(grant), "ttl": ttl, "jti": uuid.uuid4().hex, "iat": now, "exp": now + ttl}
    AccessToken.create(jti=plan["jti"], user_id=grant.user.id if grant.user is not None else None,
                       issued_by=issued_by, family_id=grant.family_id, scope=grant.scope or "",
                       expires_at=dt.datetime.fromtimestamp(plan["exp"], dt.timezone.utc))
    return plan


def plan_issue(tenant_slug: str, principal, scopes, ttl_value) -> dict:
    """Inside the tenant transaction: a refresh token, and the access token to sign for the caller.

    The new family is the caller's own (an API token's stays that token's, never its creator's)
    and carries at most the caller's permissions; one minted with an access token dies with
    that token's family."""
    permissions = requested_permissions(scopes, principal.permissions)
    ttl = parse_ttl(ttl_value)
    try:
        grant, refresh_token = issue_grant(principal, tenant_slug, permissions)
    except AuthError as exc:
        raise Problem.refused(403, "forbidden", exc) from None
    TokenFamily.create(family_id=grant.family_id, ttl=ttl,
                       expires_at=RefreshToken.get(RefreshToken.token_hash == tokenformat.digest(refresh_token))
                       .family_expires_at)
    plan = _plan(grant, ttl, principal.actor)
    plan["refresh"] = refresh_token
    plan["scope"] = grant.scope
    return plan


def plan_refresh(tenant_slug: str, token: str) -> dict:
    """Inside the tenant transaction: spend a refresh token; the new pair keeps the family's scope.

    A refused token is answered as ``{"error": ...}`` rather than raised, so that this transaction
    commits: replaying a spent token revokes its whole family (``RefreshReuse`` names it), and
    an exception here would roll that revocation back.
    """
    try:
        grant, new_refresh = rotate_refresh(token, tenant_slug)
    except AuthError as exc:
        family_id = getattr(exc, "family_id", None)
        if family_id is not None:
            revoke_family(family_id)
        return {"error": exc}
    kept = TokenFamily.get_or_none(TokenFamily.family_id == grant.family_id)
    ttl = kept.ttl if kept is not None else ACCESS_TTL  # a family of our native sign-in: our usual lifetime
    plan = _plan(grant, ttl, grant.subject)
    plan["refresh"] = new_refresh
    plan["scope"] = grant.scope
    return plan


def sign(platform, tenant_slug: str, plan: dict) -> dict:
    """Outside any tenant transaction (the key ring reads the catalogue): the response body."""
    made = plan["claims"]
    access, claims = platform.keyring.issue_access(
        subject=made["subject"], tenant=tenant_slug, role=made["role"], now=plan["iat"],
        extra={**made["extra"], "exp": plan["exp"], "jti": plan["jti"]})
    expires = dt.datetime.fromtimestamp(claims["exp"], dt.timezone.utc).isoformat()
    return {"accessToken": access, "tokenType": "Bearer", "id": claims["jti"], "expiresAt": expires,
            "refreshToken": plan["refresh"],
            # The same, spelled as parts of their documentation spell it:
            "access_token": access, "token_type": "Bearer", "expires_at": expires, "expires_in": plan["ttl"],
            "refresh_token": plan["refresh"]}


def revoke(principal, jti: str) -> bool:
    """Inside the tenant transaction: revoke ``jti`` (and its refresh family). False: not found for you."""
    row = AccessToken.select().where(AccessToken.jti == jti).for_update().first()
    manager = principal.can("tokens:manage")
    if row is None:
        if not manager:
            return False
        # A jti we did not issue here (e.g. from /api/v1/auth/token): remember it as revoked until it expires.
        AccessToken.insert(jti=jti, issued_by=principal.actor, expires_at=utcnow() + dt.timedelta(
            seconds=ACCESS_TTL + LEEWAY), revoked_at=utcnow()).on_conflict_ignore().execute()
        return True
    own = (principal.kind == "user" and row.user_id == principal.id) or row.issued_by == principal.actor
    if not (own or manager):
        return False
    now = utcnow()
    if row.revoked_at is None:
        AccessToken.update(revoked_at=now).where(AccessToken.jti == jti).execute()
    if row.family_id is not None:
        revoke_family(row.family_id)
    return True


def is_revoked(jti) -> bool:
    if not isinstance(jti, str) or not jti:
        return False
    return AccessToken.select(AccessToken.jti).where(
        (AccessToken.jti == jti) & AccessToken.revoked_at.is_null(False)).exists()


PURGE_JOB = "compat.purge_tokens"


def next_purge_due(tenant=None):
    """Inside the tenant transaction: when :func:`purge` next has something to drop."""
    return app_db.execute_sql(
        "SELECT least((SELECT min(expires_at) FROM compat_access_tokens) + interval '1 hour' + interval '1 second', "
        "(SELECT min(expires_at) FROM compat_token_families) + interval '1 second')").fetchone()[0]


def purge(now=None) -> int:
    now = now or utcnow()
    n = AccessToken.delete().where(AccessToken.expires_at < now - dt.timedelta(hours=1)).execute()
    n += TokenFamily.delete().where(TokenFamily.expires_at < now).execute()
    return n

