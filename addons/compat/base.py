"""The compat base handler: Basic auth inside the tenant, and errors in the client's shape.

Errors: the ``android-sms-gateway`` clients decide by the HTTP status alone (400
→ ``BadRequestError``, 401 → ``UnauthorizedError``, ...) and keep the JSON body
as ``response``; their ``ErrorResponse`` type reads ``{"code": int, "message":
str, "data": any}``. So compat answers errors as ``application/json`` in that
shape (our problem details under ``data``), and as ``application/problem+json``
(RFC 9457) when the caller asks for it with ``Accept: application/problem+json``.
Validation failures that our native API answers with 422 (and 415) are 400 here,
as the original server answers them.

Basic auth (email and password) is for scripts, never for browsers: we send no
``Basic`` challenge (a browser would prompt, then attach the credentials to every
request to this API by itself, from any site's page), refuse Basic-authenticated
requests a browser made from another site's page, and parse bodies only when they
are declared JSON (a cross-site form can send ``text/plain``, not
``application/json``).
"""

from __future__ import annotations

import json
import logging

from core.bodyschema import public
from core.permissions import AUTHENTICATED
from core.web.auth_pages import TOO_MANY, login_attempt
from core.web import jsonin
from core.web.base import ApiHandler
from core.web.mediatype import is_json
from core.web.params import whole_number
from core.web.problem import PROBLEM_CONTENT_TYPE, Problem

from . import basic_auth
from core.i18n import N_, Said

log = logging.getLogger(__name__)

AS_BAD_REQUEST = {415, 422}


class CompatHandler(ApiHandler):
    """Base of every ``/3rdparty/v1`` handler."""

    # -- authentication ---------------------------------------------------------
    async def principal_from_other_scheme(self, scheme: str, credential: str):
        if scheme.lower() != "basic":
            return await super().principal_from_other_scheme(scheme, credential)
        if self.from_another_site():
            raise Problem(403, "cross-site-request",
                          N_("Email and password (Basic auth) are not accepted from another site's page: a browser "
                             "attaches them by itself, so that page would act in your name. Call this API from your "
                             "own server or script, or send an API token as 'Authorization: Bearer <token>'."))
        if self.tenant is None:
            raise Problem(401, "basic-auth-needs-workspace",
                          N_("Email and password (Basic auth) work only on your workspace's address, "
                             "https://<your-workspace>.%(domain)s/3rdparty/v1, because the main domain cannot tell "
                             "which workspace the account belongs to. Use that address, or send an API token as "
                             "'Authorization: Bearer <token>' here."), args={"domain": self.settings_.base_domain},
                          headers={"WWW-Authenticate": "Bearer"})
        try:
            email, password = basic_auth.parse(credential)
        except basic_auth.BadCredentials as exc:
            raise Problem.refused(401, "invalid-credentials", exc, headers=self._challenge()) from None
        key = basic_auth.cache_key(self.tenant.slug, email, password)
        hit = basic_auth.lookup(key)
        if hit is not None:
            user_id, password_hash = hit
            user = await self.in_tenant(_active_user, user_id)
            if user is not None and (user.password_hash or "") == password_hash:
                return _principal(user, self.tenant.slug)
            basic_auth.forget(key)
        user, error = await login_attempt(self, email, password)  # throttled, audited, bcrypt off the IOLoop
        if user is None:
            if error == TOO_MANY:
                raise Problem(429, "too-many-attempts", error, headers={"Retry-After": "3600"})
            raise Problem(401, "invalid-credentials", error, headers=self._challenge())
        basic_auth.remember(key, user.id, user.password_hash)
        return _principal(user, self.tenant.slug)

    def _challenge(self) -> dict:
        # Never a Basic challenge: clients send Basic credentials unasked, and a browser answering a
        # challenge would keep the password and attach it to requests other sites' pages make here.
        return {"WWW-Authenticate": 'Bearer realm="smsgw"'}

    def from_another_site(self) -> bool:
        """Whether a browser sent this request from a page of another origin (another workspace included).

        Browsers say so in ``Sec-Fetch-Site`` and ``Origin``; scripts and their clients send neither.
        """
        site = self.request.headers.get("Sec-Fetch-Site")
        if site is not None and site.strip().lower() not in ("same-origin", "none"):
            return True
        origin = self.request.headers.get("Origin")
        if origin is None:
            return False
        own = {f"{self.request.protocol}://{self.request.host}".lower()}
        if self.tenant is not None:
            own.add(self.settings_.public_url(self.tenant.slug).lower())
        return origin.strip().lower() not in own

    def unauthenticated(self):
        raise Problem(401, "unauthorized",
                      N_("Send an API token as 'Authorization: Bearer <token>', or your email and password "
                         "as Basic auth on your workspace's address."),
                      headers=self._challenge())

    # -- requests ------------------------------------------------------------------
    def json_body(self, required: bool = True) -> dict:
        raw = self.request.body or b""
        if not raw.strip():
            if required:
                raise Problem(400, "invalid-json", N_("Send a JSON object as the request body."))
            return {}
        if not is_json(self.request.headers.get("Content-Type")):
            raise Problem(415, "unsupported-media-type",
                          N_("Send the body as JSON, with the header 'Content-Type: application/json'."))
        body = jsonin.parse_object(raw)
        bad = jsonin.unstorable(body, raw)
        if bad:
            raise Problem(400, "invalid-characters", N_("The body holds text that cannot be stored (%(bad)s); remove "
                                                        "NUL characters and unpaired surrogates."), args={"bad": bad})
        return self.check_body(body)

    def invalid_body(self, errors: list[dict]) -> Problem:
        # Their clients show only the message: it names the first invalid field (the others follow).
        first = errors[0]
        return Problem(400, "validation-failed", N_("%(field)s: %(message)s."),
                       args={"field": first["field"],
                             "message": Said(first["msgid"], first["args"]) if "msgid" in first else first["message"]},
                       errors=public(errors))

    def paging(self, default: int = 50, maximum: int = 500) -> tuple[int, int]:
        limit = whole_number(self.get_query_argument("limit", str(default)),
                             N_("limit must be a whole number from 1 to %(max)s."), 6, 1, maximum, {"max": maximum})
        offset = whole_number(self.get_query_argument("offset", "0"),
                              N_("offset must be a whole number of 0 or more."), 9)
        return limit, offset

    def write_list(self, items: list, total: int | None = None):
        if total is not None:
            self.set_header("X-Total-Count", str(total))
        self.write_json(items)

    # -- errors ----------------------------------------------------------------------
    def write_error(self, status_code, **kwargs):
        problem = self.problem_for_error(status_code, **kwargs)
        status = 400 if problem.status in AS_BAD_REQUEST else problem.status
        if status != problem.status:
            self.set_status(status)
        for k, v in problem.headers.items():
            self.set_header(k, v)
        if PROBLEM_CONTENT_TYPE in self.request.headers.get("Accept", ""):
            body = problem.to_dict(self.request.path)
            body["status"] = status
            self.set_header("Content-Type", PROBLEM_CONTENT_TYPE)
            self.finish(json.dumps(body))
            return
        message = problem.detail
        for e in (problem.to_dict().get("errors") or [])[:5]:  # their clients show the message only: name the fields in it
            said = str(e.get("message", ""))
            if said and said not in message:
                message += f" {e.get('field', '')}: {said}." if e.get("field") else f" {said}."
        english = problem.to_dict()
        data = {"type": english["type"], "code": problem.code, "title": problem.title}
        if problem.errors:
            data["errors"] = english["errors"]
        data.update(problem.extra)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.finish(json.dumps({"code": status, "message": message, "data": data}, default=str))


class NotImplementedHandler(CompatHandler):
    """Parts of the original API we do not offer: a clear 501, after authentication.

    Subclasses bind :meth:`refuse` to exactly the methods the original API has there
    (``get = NotImplementedHandler.refuse``); other methods answer 405.
    """

    permission = AUTHENTICATED
    refusal = N_("This endpoint is not supported by this gateway.")  # what is not, and what to do instead

    def refuse(self, *args):
        raise Problem(501, "not-supported", self.refusal)


def _active_user(user_id: int):
    from core.users import User

    return User.get_or_none((User.id == user_id) & (User.is_active == True))  # noqa: E712


def _principal(user, slug):
    from core.identity import user_principal

    return user_principal(user, slug, "basic")
