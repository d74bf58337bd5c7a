"""Identity services inside one tenant: passwords, sessions, refresh and API tokens, one-time links.

Every function here runs inside a tenant transaction (``tenant_transaction``),
so it sees only the current tenant's tables. Secrets (session ids, refresh and
API tokens) are returned once and stored only as SHA-256 digests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import uuid
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from peewee import fn

from . import passwords, tokenformat
from .i18n import N_
from .clock import utcnow
from .permissions import Principal, catalogue, role_permissions
from .users import ApiToken, OneTimeLink, RefreshToken, Session, User
from .web.params import number_or_none
from .web.problem import Refusal

SESSION_TTL = dt.timedelta(days=14)
REFRESH_FAMILY_TTL = dt.timedelta(days=30)
LINK_TTL = {"verify": 2 * 86400, "reset": 3600, "invite": 7 * 86400,
            # A new sign-in address, confirmed from that address; the old address may undo it for a week.
            "email": 86400, "email-undo": 7 * 86400,
            # From the sign-up form straight into the new workspace, signed in: a redirect, never mailed.
            "welcome": 120}


class AuthError(Refusal):
    """Authentication or token handling refused; the message is safe to show."""


class RefreshReuse(AuthError):
    """A spent refresh token came back: its whole family must be revoked (see :func:`refresh`)."""

    def __init__(self, family_id):
        super().__init__("The refresh token was already used; every sign-in of that family was revoked. "
                         "Sign in again.")
        self.family_id = family_id


def revoke_family(family_id) -> None:
    revoke_families([family_id])


def revoke_families(family_ids) -> None:
    """Revoke these refresh-token families and every family derived from them: a credential
    minted with another's access token dies with its source (``parent_family_id``)."""
    ids = [str(f) for f in family_ids]
    if not ids:
        return
    RefreshToken._meta.database.execute_sql(
        "WITH RECURSIVE doomed(id) AS ("
        " SELECT unnest(%s::uuid[])"
        " UNION SELECT r.family_id FROM refresh_tokens r JOIN doomed d ON r.parent_family_id = d.id)"
        " UPDATE refresh_tokens SET revoked_at = %s"
        " WHERE family_id IN (SELECT id FROM doomed) AND revoked_at IS NULL",
        (ids, utcnow()))


def family_alive(family_id) -> bool:
    """Whether a refresh family still has a usable token (not revoked, not deleted with its API token)."""
    return RefreshToken.select(RefreshToken.id).where(
        (RefreshToken.family_id == family_id) & RefreshToken.revoked_at.is_null()).exists()


def refresh(tenant_ref, token: str, tenant_slug: str):
    """Rotate a refresh token in its own transaction; on reuse, revoke the family in another
    (the first one rolls back with the error, the revocation must not)."""
    from .db import tenant_transaction

    try:
        with tenant_transaction(tenant_ref):
            return rotate_refresh(token, tenant_slug)
    except RefreshReuse as exc:
        with tenant_transaction(tenant_ref):
            revoke_family(exc.family_id)
        raise


# -- principals -----------------------------------------------------------------

def user_principal(user: User, tenant_slug: str, via: str, session_id=None) -> Principal:
    return Principal(kind="user", id=user.id, role=user.role, tenant=tenant_slug,
                     permissions=role_permissions(user.role), name=user.name, email=user.email, via=via,
                     session_id=session_id, time_zone=user.time_zone, language=user.language)


def api_token_row_principal(row: ApiToken, tenant_slug: str, via: str, scope=None, family=None) -> Principal:
    """An API token acting: exactly its scopes, narrowed by ``scope`` (a derived credential's)."""
    permissions = frozenset(row.scopes)
    if scope is not None:
        permissions &= frozenset(scope)
    return Principal(kind="token", id=row.id, role="token", tenant=tenant_slug, permissions=permissions,
                     name=row.name, via=via, family=family)


def jwt_principal(claims: dict, tenant_slug: str) -> Principal:
    """Inside the tenant transaction: who a verified access token speaks for, and with what rights.

    ``sub`` is ``user:<id>`` or ``token:<id>`` (minted from an API token: it acts as that token,
    never as its creator). An optional ``scope`` claim (space-separated permissions, or a list)
    narrows what the holder may do, never widens it. ``fam`` names the refresh family the token
    was minted with: once that family is revoked (logout, password change, a revoked API token,
    a replayed refresh token), its access tokens stop working at once, not 15 minutes later.
    """
    kind, _, raw_id = str(claims.get("sub", "")).partition(":")
    if kind not in ("user", "token") or number_or_none(raw_id) is None:
        raise AuthError(N_("The access token names no user or API token."))
    family = claims.get("fam")
    if family is not None:
        try:
            family = str(uuid.UUID(str(family)))
        except ValueError:
            raise AuthError(N_("The access token is malformed.")) from None
        if not family_alive(family):
            raise AuthError(N_("This access token's sign-in was revoked; sign in again."))
    scope = claims.get("scope")
    if scope is not None:
        scope = [str(p) for p in (scope.split() if isinstance(scope, str) else scope if isinstance(scope, list) else [])]
    if kind == "token":
        row = ApiToken.get_or_none((ApiToken.id == int(raw_id)) & ApiToken.revoked_at.is_null())
        if row is None:
            raise AuthError(N_("The API token behind this access token was revoked."))
        return api_token_row_principal(row, tenant_slug, "jwt", scope, family)
    user = User.get_or_none((User.id == int(raw_id)) & (User.is_active == True))  # noqa: E712
    if user is None:
        raise AuthError(N_("The account behind this token is disabled or gone."))
    principal = user_principal(user, tenant_slug, "jwt")
    permissions = principal.permissions if scope is None else principal.permissions & frozenset(scope)
    return dataclasses.replace(principal, permissions=permissions, family=family)


# -- passwords ------------------------------------------------------------------

def check_password(email: str, password: str, pepper: bytes, cost: int = passwords.DEFAULT_COST) -> User | None:
    """The active user with this email and password, or ``None``; same cost either way."""
    user = User.by_email(email or "") if email else None
    stored = user.password_hash if user is not None and user.is_active else None
    ok = passwords.verify_password(password or "", stored, pepper, cost)
    return user if ok else None


def set_password(user: User, new_password: str, pepper: bytes, cost: int, keep_session_id: int | None = None) -> None:
    """Store a new password; every other session and every refresh token of the user dies."""
    user.password_hash = passwords.hash_password(new_password, pepper, cost)
    user.password_changed_at = utcnow()
    user.updated_at = utcnow()
    user.save()
    revoke_user_credentials(user.id, keep_session_id)


def revoke_user_credentials(user_id: int, keep_session_id: int | None = None) -> None:
    """Password change, disabling, deletion, logout: refresh tokens (with their access tokens and
    whatever was derived from them) and other sessions die."""
    now = utcnow()
    revoke_families([f for (f,) in RefreshToken.select(RefreshToken.family_id).distinct().where(
        (RefreshToken.user_id == user_id) & RefreshToken.revoked_at.is_null()).tuples()])
    q = Session.update(revoked_at=now).where((Session.user_id == user_id) & Session.revoked_at.is_null())
    if keep_session_id:
        q = q.where(Session.id != keep_session_id)
    q.execute()


def revoke_workspace_credentials(platform, tenant, user_id: int | None = None) -> None:
    """Inside the tenant transaction: every credential of the workspace dies (``user_id`` ``None``),
    or every credential of one member: sessions, refresh tokens with their access tokens, the API
    tokens (a member's: those they created, whose secret they saw), and what addons issue
    (``smsgw_revoke_credentials``: device tokens ...). The caller tells every process afterwards
    (``platform.credentials_changed``)."""
    now = utcnow()
    tokens = ApiToken.select(ApiToken.id).where(ApiToken.revoked_at.is_null())
    users = User.select(User.id)
    if user_id is not None:
        tokens, users = tokens.where(ApiToken.created_by == user_id), users.where(User.id == user_id)
    for (token_id,) in tokens.tuples():
        revoke_api_token(token_id)
    for (uid,) in users.tuples():
        revoke_user_credentials(uid)
    if user_id is None:  # families of no user (an API token's) died with their token above; any left over too
        RefreshToken.update(revoked_at=now).where(RefreshToken.revoked_at.is_null()).execute()
    platform.registry.hook.smsgw_revoke_credentials(tenant=tenant, user_id=user_id)


# -- browser sessions ------------------------------------------------------------

def create_session(user: User, ip: str, user_agent: str) -> str:
    token = secrets.token_urlsafe(32)
    Session.create(token_hash=tokenformat.digest(token), user_id=user.id, expires_at=utcnow() + SESSION_TTL,
                   ip=ip[:64], user_agent=(user_agent or "")[:300])
    User.update(last_login_at=utcnow()).where(User.id == user.id).execute()
    return token


def session_user(token: str) -> tuple[Session, User] | None:
    if not token or len(token) > 100:
        return None
    row = (Session.select(Session, User).join(User, on=(Session.user_id == User.id), attr="user")
           .where((Session.token_hash == tokenformat.digest(token)) & Session.revoked_at.is_null()
                  & (Session.expires_at > utcnow()) & (User.is_active == True))  # noqa: E712
           .first())
    if row is None:
        return None
    if utcnow() - row.last_seen_at > dt.timedelta(minutes=5):
        Session.update(last_seen_at=utcnow()).where(Session.id == row.id).execute()
    return row, row.user


def revoke_session(token: str) -> int | None:
    """End one browser session; returns its user id."""
    s = Session.get_or_none(Session.token_hash == tokenformat.digest(token or ""))
    if s is None:
        return None
    Session.update(revoked_at=utcnow()).where(Session.id == s.id).execute()
    return s.user_id


# -- refresh tokens ----------------------------------------------------------------

@dataclass(frozen=True)
class Grant:
    """What a refresh-token family may mint: for whom (a user or an API token), with which
    permissions (``scope``, space-separated; ``None``: everything the user's role allows),
    in which family. Access tokens are made from it by :func:`access_claims`."""

    family_id: str
    user: User | None = None
    api_token: ApiToken | None = None
    scope: str | None = None

    @property
    def subject(self) -> str:
        return f"user:{self.user.id}" if self.user is not None else f"token:{self.api_token.id}"

    @property
    def role(self) -> str:
        return self.user.role if self.user is not None else "token"


def access_claims(grant: Grant) -> dict:
    """``subject``, ``role`` and ``extra`` claims for ``keyring.issue_access`` of an access token of ``grant``."""
    extra = {"fam": grant.family_id}
    if grant.scope is not None:
        extra["scope"] = grant.scope
    return {"subject": grant.subject, "role": grant.role, "extra": extra}


def issue_refresh(user_id: int | None, tenant_slug: str, family_id=None, family_expires_at=None, *,
                  api_token_id: int | None = None, scope: str | None = None, parent_family_id=None) -> str:
    """A new refresh token: of a new family, or the next of ``family_id``.

    A new family is held by a user or by an API token (never both). ``scope`` limits what its
    access tokens may do; ``parent_family_id`` names the family whose access token minted it: it
    dies with that family and does not outlive it."""
    token = tokenformat.generate("sgr", tenant_slug)
    expires = family_expires_at or utcnow() + REFRESH_FAMILY_TTL
    if parent_family_id is not None and family_id is None:
        parent_expires = RefreshToken.select(fn.max(RefreshToken.family_expires_at)).where(
            RefreshToken.family_id == parent_family_id).scalar()
        if parent_expires is not None:
            expires = min(expires, parent_expires)
    RefreshToken.create(family_id=family_id or uuid.uuid4(), token_hash=tokenformat.digest(token),
                        user_id=user_id, api_token_id=api_token_id, scope=scope,
                        parent_family_id=parent_family_id, family_expires_at=expires)
    return token


def sign_in_grant(user: User, tenant_slug: str) -> tuple[Grant, str]:
    """A sign-in with the password: a new family of the user's, with everything their role allows."""
    token = issue_refresh(user.id, tenant_slug)
    return Grant(_family_of(token), user=user), token


def issue_grant(principal: Principal, tenant_slug: str, permissions: frozenset | None = None) -> tuple[Grant, str]:
    """Inside the tenant transaction: a new refresh family for ``principal``, never carrying more
    than it does: the principal's permissions narrowed to ``permissions`` (``None``: all of them),
    held by the same user or API token, and a child of the principal's own family, if any."""
    wanted = principal.permissions if permissions is None else principal.permissions & frozenset(permissions)
    if principal.kind == "user":
        user = User.get_or_none((User.id == principal.id) & (User.is_active == True))  # noqa: E712
        if user is None:
            raise AuthError(N_("The account is disabled."))
        scope = " ".join(sorted(wanted & role_permissions(user.role)))
        token = issue_refresh(user.id, tenant_slug, scope=scope, parent_family_id=principal.family)
        return Grant(_family_of(token), user=user, scope=scope), token
    if principal.kind == "token":
        row = ApiToken.get_or_none((ApiToken.id == principal.id) & ApiToken.revoked_at.is_null())
        if row is None:
            raise AuthError(N_("The API token was revoked."))
        scope = " ".join(sorted(wanted & frozenset(row.scopes)))
        token = issue_refresh(None, tenant_slug, api_token_id=row.id, scope=scope,
                              parent_family_id=principal.family)
        return Grant(_family_of(token), api_token=row, scope=scope), token
    raise AuthError(N_("Only people and API tokens can get access tokens."))


def _family_of(token: str) -> str:
    return str(RefreshToken.select(RefreshToken.family_id).where(
        RefreshToken.token_hash == tokenformat.digest(token)).scalar())


def rotate_refresh(token: str, tenant_slug: str) -> tuple[Grant, str]:
    """Spend ``token`` and return what its family may mint and a new token of the same family.

    Presenting a token that was already spent revokes the whole family: either
    the client or a thief replayed it, and we cannot tell which. A family whose
    API token or parent family was revoked is refused.
    """
    parsed = tokenformat.parse(token or "", "sgr")
    if parsed is None or parsed[1] != tenant_slug:
        raise AuthError(N_("The refresh token is not valid."))
    row = (RefreshToken.select().where(RefreshToken.token_hash == tokenformat.digest(token))
           .for_update().first())
    if row is None:
        raise AuthError(N_("The refresh token is not valid."))
    now = utcnow()
    if row.used_at is not None:
        raise RefreshReuse(row.family_id)
    if row.revoked_at is not None:
        raise AuthError(N_("The refresh token was revoked; sign in again."))
    if row.family_expires_at <= now:
        raise AuthError(N_("The sign-in has expired; sign in again."))
    if row.parent_family_id is not None and not family_alive(row.parent_family_id):
        raise AuthError(N_("The sign-in this token was derived from was revoked; sign in again."))
    user = api_token = None
    if row.api_token_id is not None:
        api_token = ApiToken.get_or_none((ApiToken.id == row.api_token_id) & ApiToken.revoked_at.is_null())
        if api_token is None:
            raise AuthError(N_("The API token this sign-in came from was revoked."))
    else:
        user = User.get_or_none((User.id == row.user_id) & (User.is_active == True))  # noqa: E712
        if user is None:
            raise AuthError(N_("The account is disabled."))
    RefreshToken.update(used_at=now).where(RefreshToken.id == row.id).execute()
    new_token = issue_refresh(row.user_id, tenant_slug, row.family_id, row.family_expires_at,
                              api_token_id=row.api_token_id, scope=row.scope, parent_family_id=row.parent_family_id)
    return Grant(str(row.family_id), user=user, api_token=api_token, scope=row.scope), new_token


# -- API tokens ------------------------------------------------------------------

def create_api_token(tenant_slug: str, name: str, scopes: list[str], created_by: int | None) -> tuple[ApiToken, str]:
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise AuthError(N_("Give the token a name of 1 to 100 characters."))
    scopes = sorted(set(scopes or []))
    known = catalogue().api_scopes
    unknown = [s for s in scopes if s not in known]
    if unknown:
        raise AuthError(N_("Unknown scope(s): %(unknown)s. Known: %(known)s."),
                        {"unknown": ", ".join(unknown)[:200], "known": ", ".join(known)})
    if not scopes:
        raise AuthError(N_("Choose at least one scope."))
    token = tokenformat.generate("sgw", tenant_slug)
    row = ApiToken.create(name=name, token_hash=tokenformat.digest(token), hint=tokenformat.hint(token),
                          scopes=scopes, created_by=created_by)
    return row, token


def api_token_principal(token: str, tenant_slug: str) -> Principal | None:
    row = ApiToken.get_or_none((ApiToken.token_hash == tokenformat.digest(token)) & ApiToken.revoked_at.is_null())
    if row is None:
        return None
    now = utcnow()
    previous = row.last_used_at or row.created_at
    if row.last_used_at is None or now - row.last_used_at > dt.timedelta(minutes=1):
        ApiToken.update(last_used_at=now).where(ApiToken.id == row.id).execute()
    return dataclasses.replace(api_token_row_principal(row, tenant_slug, "api_token"), previous_use=previous)


def revoke_api_token(token_id: int) -> ApiToken | None:
    """Revoke an API token and every refresh family (with its access tokens) minted from it.
    The caller tells every process (``platform.credentials_changed``)."""
    row = ApiToken.get_or_none(ApiToken.id == token_id)
    if row is None:
        return None
    if row.revoked_at is None:
        ApiToken.update(revoked_at=utcnow()).where(ApiToken.id == token_id).execute()
    revoke_families([f for (f,) in RefreshToken.select(RefreshToken.family_id).distinct().where(
        RefreshToken.api_token_id == token_id).tuples()])
    return row


# -- one-time links (verify email, reset password, invitations) -------------------

class LinkSigner:
    """Signed, expiring, single-use links (itsdangerous); a nonce is burnt on use."""

    def __init__(self, secret: str):
        self.secret = secret

    def _s(self, purpose: str) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret, salt=f"smsgw-link-{purpose}")

    def make(self, purpose: str, tenant_slug: str, user_id: int, extra: dict | None = None) -> str:
        payload = {"t": tenant_slug, "u": user_id, "n": secrets.token_urlsafe(12), "p": _password_stamp(user_id)}
        if extra:
            payload.update(extra)
        return self._s(purpose).dumps(payload)

    def peek(self, purpose: str, token: str, tenant_slug: str) -> dict:
        """Check signature, age and tenant, without spending the link."""
        try:
            data = self._s(purpose).loads(token or "", max_age=LINK_TTL[purpose])
        except SignatureExpired:
            raise AuthError(N_("This link has expired. Ask for a new one.")) from None
        except BadSignature:
            raise AuthError(N_("This link is not valid. Copy the whole link from the email, or ask for a new one.")) from None
        if data.get("t") != tenant_slug:
            raise AuthError(N_("This link belongs to another workspace."))
        if OneTimeLink.get_or_none(OneTimeLink.nonce == data["n"]):
            raise AuthError(N_("This link was already used. Ask for a new one if you still need it."))
        if purpose == "reset" and data.get("p") != _password_stamp(data.get("u")):
            # The password changed since the link was made: it must not change it again.
            raise AuthError(N_("This link was already used. Ask for a new one if you still need it."))
        return data

    def spend(self, purpose: str, token: str, tenant_slug: str) -> dict:
        data = self.peek(purpose, token, tenant_slug)
        inserted = (OneTimeLink.insert(nonce=data["n"], purpose=purpose)
                    .on_conflict_ignore().execute())
        if not inserted:
            raise AuthError(N_("This link was already used. Ask for a new one if you still need it."))
        return data


def _password_stamp(user_id) -> str:
    user = User.get_or_none(User.id == user_id) if isinstance(user_id, int) else None
    return user.password_changed_at.isoformat() if user and user.password_changed_at else ""


def count_users() -> int:
    return User.select(fn.count(User.id)).scalar()
