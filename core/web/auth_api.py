"""Token API: password → access JWT + refresh token, refresh rotation, JWKS, and ``/api/v1/me``."""

from __future__ import annotations

from ..events import emit
from ..identity import AuthError, Grant, access_claims, refresh, revoke_user_credentials, sign_in_grant
from ..jwtkeys import ACCESS_TTL
from ..permissions import AUTHENTICATED, PUBLIC
from .auth_pages import TOO_MANY, audit, login_attempt
from .base import ApiHandler
from .problem import Problem
from ..i18n import N_


def token_response(platform, grant: Grant, tenant_slug, refresh_token):
    """An access token of ``grant`` (its holder and scope, never more) and the refresh token beside it."""
    access, claims = platform.keyring.issue_access(tenant=tenant_slug, **access_claims(grant))
    return {"access_token": access, "token_type": "Bearer", "expires_in": ACCESS_TTL,
            "expires_at": claims["exp"], "refresh_token": refresh_token}


class TokenHandler(ApiHandler):
    """``POST /api/v1/auth/token``: sign in with email and password on the tenant's subdomain."""

    permission = PUBLIC
    token_tenant_ok = False

    async def post(self):
        body = self.json_body()
        email, password = body.get("email"), body.get("password")
        errors = [{"field": f, "message": N_("required, as a string")} for f, v in
                  (("email", email), ("password", password)) if not isinstance(v, str) or not v]
        if errors:
            raise Problem(422, "validation-failed", N_("Send email and password."), errors=errors)
        user, error = await login_attempt(self, email[:254], password[:2048])
        if user is None:
            if error == TOO_MANY:
                raise Problem(429, "too-many-attempts", error, headers={"Retry-After": "3600"})
            raise Problem(401, "invalid-credentials", error)
        grant, refresh = await self.in_tenant(sign_in_grant, user, self.tenant.slug)
        self.set_header("Cache-Control", "no-store")
        self.write_json(await self.run_db(token_response, self.platform, grant, self.tenant.slug, refresh))


class RefreshHandler(ApiHandler):
    """``POST /api/v1/auth/refresh``: spend a refresh token for a new pair."""

    permission = PUBLIC
    token_tenant_ok = False

    async def post(self):
        body = self.json_body()
        token = body.get("refresh_token")
        if not isinstance(token, str) or not token:
            raise Problem(422, "validation-failed", N_("Send refresh_token."),
                          errors=[{"field": "refresh_token", "message": N_("required")}])
        try:
            grant, new_token = await self.run_db(refresh, self.tenant.ref, token, self.tenant.slug)
        except AuthError as exc:
            await self.run_db(emit, self.platform, audit(self, "refresh.refused", detail=str(exc)))
            raise Problem.refused(401, "invalid-refresh-token", exc) from None
        self.set_header("Cache-Control", "no-store")
        self.write_json(await self.run_db(token_response, self.platform, grant, self.tenant.slug, new_token))


class RevokeHandler(ApiHandler):
    """``POST /api/v1/auth/logout``: revoke every refresh token and session of the caller.

    Signing a person out everywhere acts on their account: it needs ``profile:edit``, which a
    scoped access token (say ``messages:read``) does not carry."""

    permission = "profile:edit"

    async def post(self):
        if self.principal.kind != "user":
            raise Problem(400, "not-a-user", N_("Only a signed-in user can sign out; revoke API "
                                                "tokens instead."))
        await self.in_tenant(revoke_user_credentials, self.principal.id)
        await self.run_db(emit, self.platform, audit(self, "logout", actor=self.principal.actor))
        self.set_status(204)
        self.finish()


class JwksHandler(ApiHandler):
    scope = "any"
    permission = PUBLIC

    async def get(self):
        self.set_header("Cache-Control", "public, max-age=300")
        self.write_json(await self.run_db(self.platform.keyring.jwks))


class MeHandler(ApiHandler):
    """``GET /api/v1/me``: who the credentials belong to and what they allow."""

    permission = AUTHENTICATED

    def get(self):
        p = self.principal
        # The e-mail address is the person's, not the credential's: only credentials that may edit
        # the profile see it (a scoped access token or an API token does not).
        self.write_json({"kind": p.kind, "id": p.id, "role": p.role, "tenant": p.tenant, "name": p.name,
                         "email": p.email if p.can("profile:edit") else None,
                         "permissions": sorted(p.permissions), "via": p.via})
