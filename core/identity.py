"""Identity services inside one tenant: passwords, sessions, refresh and API tokens, one-time links.

Every function here runs inside a tenant transaction (``tenant_transaction``),
so it sees only the current tenant's tables. Secrets (session ids, refresh and
API tokens) are returned once and stored only as SHA-256 digests.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from peewee import fn

from . import passwords, tokenformat
from .i18n import N_
from .catalogue import utcnow
from .permissions import API_SCOPES, Principal, role_permissions
from .users import ApiToken, OneTimeLink, RefreshToken, Session, User

SESSION_TTL = dt.timedelta(days=14)
REFRESH_FAMILY_TTL = dt.timedelta(days=30)
LINK_TTL = {"verify": 2 * 86400, "reset": 3600, "invite": 7 * 86400,
            # A new sign-in address, confirmed from that address; the old address may undo it for a week.
            "email": 86400, "email-undo": 7 * 86400}


class AuthError(ValueError):
    """Authentication or token handling refused; the message is safe to show."""


class RefreshReuse(AuthError):
    """A spent refresh token came back: its whole family must be revoked (see :func:`refresh`)."""

    def __init__(self, family_id):
        super().__init__("The refresh token was already used; every sign-in of that family was revoked. "
                         "Sign in again.")
        self.family_id = family_id


def revoke_family(family_id) -> None:
    RefreshToken.update(revoked_at=utcnow()).where(
        (RefreshToken.family_id == family_id) & RefreshToken.revoked_at.is_null()).execute()


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
                     session_id=session_id)


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
    """Password change, disabling, deletion, logout: refresh tokens and other sessions die."""
    now = utcnow()
    RefreshToken.update(revoked_at=now).where(
        (RefreshToken.user_id == user_id) & RefreshToken.revoked_at.is_null()).execute()
    q = Session.update(revoked_at=now).where((Session.user_id == user_id) & Session.revoked_at.is_null())
    if keep_session_id:
        q = q.where(Session.id != keep_session_id)
    q.execute()


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

def issue_refresh(user_id: int, tenant_slug: str, family_id=None, family_expires_at=None) -> str:
    token = tokenformat.generate("sgr", tenant_slug)
    RefreshToken.create(family_id=family_id or uuid.uuid4(), token_hash=tokenformat.digest(token),
                        user_id=user_id, family_expires_at=family_expires_at or utcnow() + REFRESH_FAMILY_TTL)
    return token


def rotate_refresh(token: str, tenant_slug: str) -> tuple[User, str]:
    """Spend ``token`` and return its user and a new token of the same family.

    Presenting a token that was already spent revokes the whole family: either
    the client or a thief replayed it, and we cannot tell which.
    """
    parsed = tokenformat.parse(token or "", "sgr")
    if parsed is None or parsed[1] != tenant_slug:
        raise AuthError("The refresh token is not valid.")
    row = (RefreshToken.select().where(RefreshToken.token_hash == tokenformat.digest(token))
           .for_update().first())
    if row is None:
        raise AuthError("The refresh token is not valid.")
    now = utcnow()
    if row.used_at is not None:
        raise RefreshReuse(row.family_id)
    if row.revoked_at is not None:
        raise AuthError("The refresh token was revoked; sign in again.")
    if row.family_expires_at <= now:
        raise AuthError("The sign-in has expired; sign in again.")
    user = User.get_or_none((User.id == row.user_id) & (User.is_active == True))  # noqa: E712
    if user is None:
        raise AuthError("The account is disabled.")
    RefreshToken.update(used_at=now).where(RefreshToken.id == row.id).execute()
    return user, issue_refresh(user.id, tenant_slug, row.family_id, row.family_expires_at)


# -- API tokens ------------------------------------------------------------------

def create_api_token(tenant_slug: str, name: str, scopes: list[str], created_by: int | None) -> tuple[ApiToken, str]:
    name = (name or "").strip()
    if not 1 <= len(name) <= 100:
        raise AuthError("Give the token a name of 1 to 100 characters.")
    scopes = sorted(set(scopes or []))
    unknown = [s for s in scopes if s not in API_SCOPES]
    if unknown:
        raise AuthError(f"Unknown scope(s): {', '.join(unknown)[:200]}. Known: {', '.join(API_SCOPES)}.")
    if not scopes:
        raise AuthError("Choose at least one scope.")
    token = tokenformat.generate("sgw", tenant_slug)
    row = ApiToken.create(name=name, token_hash=tokenformat.digest(token), hint=tokenformat.hint(token),
                          scopes=scopes, created_by=created_by)
    return row, token


def api_token_principal(token: str, tenant_slug: str) -> Principal | None:
    row = ApiToken.get_or_none((ApiToken.token_hash == tokenformat.digest(token)) & ApiToken.revoked_at.is_null())
    if row is None:
        return None
    now = utcnow()
    if row.last_used_at is None or now - row.last_used_at > dt.timedelta(minutes=1):
        ApiToken.update(last_used_at=now).where(ApiToken.id == row.id).execute()
    return Principal(kind="token", id=row.id, role="token",
                     tenant=tenant_slug, permissions=frozenset(row.scopes), name=row.name, via="api_token")


def revoke_api_token(token_id: int) -> ApiToken | None:
    row = ApiToken.get_or_none(ApiToken.id == token_id)
    if row is None:
        return None
    if row.revoked_at is None:
        ApiToken.update(revoked_at=utcnow()).where(ApiToken.id == token_id).execute()
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
