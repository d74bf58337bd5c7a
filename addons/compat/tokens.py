"""``/3rdparty/v1/auth/token``: short-lived access JWTs with scopes, refresh rotation, revocation by jti.

Access tokens are our own RS256 tokens (``platform.keyring``), for the calling
user, with a ``scope`` claim the kernel intersects with the user's role; their
lifetime is at most our 900 s. Refresh tokens are ours too (``sgr_…``, rotated,
reuse revokes the family); the scope and lifetime a family was issued with are
kept in ``compat_token_families`` so refreshed tokens keep them. Revoking a jti
marks it in ``compat_access_tokens``, which the kernel consults for every JWT
(hook ``smsgw_access_token_revoked``), and revokes its refresh family.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid

from core import tokenformat
from core.catalogue import utcnow
from core.identity import AuthError, issue_refresh, rotate_refresh
from core.jwtkeys import ACCESS_TTL, LEEWAY
from core.permissions import role_permissions
from core.users import ApiToken, RefreshToken, User
from core.web.problem import Problem

from .models import AccessToken, TokenFamily

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
        raise Problem(400, "validation-failed", "scopes must be a non-empty list, e.g. [\"messages:send\"].",
                      errors=[{"field": "scopes", "message": "a non-empty list of scope names"}])
    unknown = sorted({s for s in scopes if s != ALL and s not in SCOPES})
    if unknown:
        raise Problem(400, "validation-failed", f"Unknown scope(s): {', '.join(unknown)[:200]}. Known: {ALL}, "
                      f"{', '.join(SCOPES)}.", errors=[{"field": "scopes", "message": "unknown scope"}])
    if ALL in scopes:
        return frozenset(caller_permissions)
    wanted = frozenset(p for s in scopes for p in SCOPES[s])
    if not wanted:
        raise Problem(400, "validation-failed", f"The scopes {', '.join(scopes)[:200]} give no access on this "
                      "gateway (settings and logs are not offered here); ask for e.g. messages:send.",
                      errors=[{"field": "scopes", "message": "grants nothing here"}])
    missing = sorted(wanted - caller_permissions)
    if missing:
        raise Problem(403, "forbidden", f"Your credentials do not allow {', '.join(missing)}; ask for less, "
                      "or ask the account owner.")
    return wanted


def parse_ttl(value) -> int:
    if value is None or value == 0:
        return ACCESS_TTL
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Problem(400, "validation-failed", "ttl must be a number of seconds (at most 900 here).",
                      errors=[{"field": "ttl", "message": "seconds, a whole number"}])
    return min(value, ACCESS_TTL)


def token_user(principal) -> int:
    """Whose token this is: the user, or for an API token the user who created it (inside the tenant)."""
    if principal.kind == "user":
        return principal.id
    if principal.kind == "token":
        row = ApiToken.get_or_none(ApiToken.id == principal.id)
        user = User.get_or_none((User.id == row.created_by) & (User.is_active == True)) if row and row.created_by else None  # noqa: E712
        if user is None:
            raise Problem(403, "forbidden", "This API token has no active owner to issue tokens for; sign in with "
                          "your email and password (Basic auth) instead.")
        return user.id
    raise Problem(403, "forbidden", "Only people and API tokens can get access tokens.")


def _plan(user: User, scope: str, ttl: int, issued_by: str, family_id) -> dict:
    """Record the access token about to be signed (the signing happens outside the tenant transaction)."""
    now = int(time.time())
    plan = {"user_id": user.id, "role": user.role, "scope": scope, "ttl": ttl, "jti": uuid.uuid4().hex,
            "iat": now, "exp": now + ttl}
    AccessToken.create(jti=plan["jti"], user_id=user.id, issued_by=issued_by, family_id=family_id, scope=scope,
                       expires_at=dt.datetime.fromtimestamp(plan["exp"], dt.timezone.utc))
    return plan


def plan_issue(tenant_slug: str, principal, scopes, ttl_value) -> dict:
    """Inside the tenant transaction: a refresh token, and the access token to sign for the caller."""
    permissions = requested_permissions(scopes, principal.permissions)
    ttl = parse_ttl(ttl_value)
    user = User.get_by_id(token_user(principal))
    scope = " ".join(sorted(permissions & role_permissions(user.role)))
    refresh_token = issue_refresh(user.id, tenant_slug)
    family = RefreshToken.get(RefreshToken.token_hash == tokenformat.digest(refresh_token))
    TokenFamily.create(family_id=family.family_id, scope=scope, ttl=ttl, expires_at=family.family_expires_at)
    plan = _plan(user, scope, ttl, principal.actor, family.family_id)
    plan["refresh"] = refresh_token
    return plan


def plan_refresh(tenant_slug: str, token: str) -> dict:
    """Inside the tenant transaction: spend a refresh token; the new pair keeps the family's scope.

    A refused token is answered as ``{"error": ...}`` rather than raised, so that this transaction
    commits: replaying a spent token revokes its whole family (``RefreshReuse`` names it), and
    an exception here would roll that revocation back.
    """
    try:
        user, new_refresh = rotate_refresh(token, tenant_slug)
    except AuthError as exc:
        family_id = getattr(exc, "family_id", None)
        if family_id is not None:
            RefreshToken.update(revoked_at=utcnow()).where(
                (RefreshToken.family_id == family_id) & RefreshToken.revoked_at.is_null()).execute()
        return {"error": str(exc)}
    family = RefreshToken.get(RefreshToken.token_hash == tokenformat.digest(new_refresh))
    kept = TokenFamily.get_or_none(TokenFamily.family_id == family.family_id)
    if kept is not None:
        scope, ttl = kept.scope, kept.ttl
    else:  # a refresh token from our native sign-in: the role's permissions, our usual lifetime
        scope, ttl = " ".join(sorted(role_permissions(user.role))), ACCESS_TTL
    plan = _plan(user, scope, ttl, f"user:{user.id}", family.family_id)
    plan["refresh"] = new_refresh
    return plan


def sign(platform, tenant_slug: str, plan: dict) -> dict:
    """Outside any tenant transaction (the key ring reads the catalogue): the response body."""
    access, claims = platform.keyring.issue_access(
        subject=f"user:{plan['user_id']}", tenant=tenant_slug, role=plan["role"], now=plan["iat"],
        extra={"scope": plan["scope"], "exp": plan["exp"], "jti": plan["jti"]})
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
        RefreshToken.update(revoked_at=now).where(
            (RefreshToken.family_id == row.family_id) & RefreshToken.revoked_at.is_null()).execute()
    return True


def is_revoked(jti) -> bool:
    if not isinstance(jti, str) or not jti:
        return False
    return AccessToken.select(AccessToken.jti).where(
        (AccessToken.jti == jti) & AccessToken.revoked_at.is_null(False)).exists()


def purge(now=None) -> int:
    now = now or utcnow()
    n = AccessToken.delete().where(AccessToken.expires_at < now - dt.timedelta(hours=1)).execute()
    n += TokenFamily.delete().where(TokenFamily.expires_at < now).execute()
    return n

