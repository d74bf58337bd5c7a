"""The published API contract: one OpenAPI 3.1 document for the kernel and every installed addon.

The kernel describes its own routes (health, JWKS, the token API, ``/api/v1/me``
and the documentation itself); each addon adds its part through the
``smsgw_openapi`` hook. The result is served at ``/api/openapi.json`` and
rendered for people at ``/api/docs`` (:mod:`core.web.docs`).

Addons build their fragments with the helpers here so that every operation
answers errors the same way: ``application/problem+json`` (RFC 9457) with a
stable ``code``, listed per status in ``x-problem-codes`` and constrained in the
schema, so a test can hold the handlers to what this document promises.
"""

from __future__ import annotations

import copy
import json

from . import __version__

OPENAPI_VERSION = "3.1.0"
JSON = "application/json"
PROBLEM = "application/problem+json"
FRAGMENT_KEYS = ("paths", "components", "tags", "webhooks")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

STATUS_TITLES = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
    409: "Conflict", 413: "Payload too large", 415: "Unsupported media type", 422: "Unprocessable content",
    429: "Too many requests", 500: "Internal server error", 503: "Service unavailable",
}


# ---------------------------------------------------------------------------
# Helpers for fragments (used by the kernel and by addons)
# ---------------------------------------------------------------------------

def ref(name: str) -> dict:
    """A reference to ``#/components/schemas/<name>``."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict) -> dict:
    """``schema`` or JSON ``null`` (OpenAPI 3.1 has no ``nullable``)."""
    if "$ref" in schema:
        return {"oneOf": [schema, {"type": "null"}]}
    out = dict(schema)
    types = out.get("type")
    if isinstance(types, str):
        out["type"] = [types, "null"]
    elif isinstance(types, list) and "null" not in types:
        out["type"] = [*types, "null"]
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    return out


def date_time(description: str = "", null: bool = False) -> dict:
    schema = {"type": "string", "format": "date-time"}
    if description:
        schema["description"] = description
    return nullable(schema) if null else schema


def param(name: str, where: str, schema: dict, description: str, required: bool = False, **extra) -> dict:
    """A parameter object (``where`` is ``path``, ``query`` or ``header``)."""
    out = {"name": name, "in": where, "required": True if where == "path" else required,
           "description": description, "schema": schema}
    out.update(extra)
    return out


def path_id(name: str, what: str) -> dict:
    """A numeric id in the path; anything else is answered 404 like an unknown id."""
    return param(name, "path", {"type": "integer", "minimum": 1, "maximum": 999_999_999_999_999_999},
                 f"The {what}'s id. Anything that is not such an id is answered like an unknown one (404).")


def json_body(schema: dict, description: str = "", required: bool = True, examples: dict | None = None) -> dict:
    """A request body sent as ``application/json``."""
    media = {"schema": schema}
    if examples:
        media["examples"] = {k: {"value": v} for k, v in examples.items()}
    out = {"required": required, "content": {JSON: media}}
    if description:
        out["description"] = description
    return out


def json_response(description: str, schema: dict, headers: dict | None = None, example=None) -> dict:
    media = {"schema": schema}
    if example is not None:
        media["example"] = example
    out = {"description": description, "content": {JSON: media}}
    if headers:
        out["headers"] = headers
    return out


def no_content(description: str) -> dict:
    return {"description": description}


def header(description: str, schema: dict | None = None, required: bool = False) -> dict:
    return {"description": description, "required": required, "schema": schema or {"type": "string"}}


NO_STORE = {"Cache-Control": header("`no-store`: the answer holds a secret shown only once.")}


def security(*permissions: str, scheme: str = "bearer") -> list:
    """A security requirement: ``scheme`` with the permissions (OpenAPI 3.1 roles) the call needs."""
    return [{scheme: list(permissions)}]


PUBLIC: list = []  # no credentials needed

# Errors every kind of route can answer. Each entry: (status, code, when).
HOST_ERRORS = [
    (404, "tenant-not-found", "No workspace answers at this host name."),
    (403, "tenant-suspended", "The workspace is suspended."),
]
WORKSPACE_ERRORS = HOST_ERRORS + [
    (404, "not-found", "The addon behind this route is not enabled for the workspace, or the route was called "
                       "on the main host without a token that names a workspace."),
]
AUTH_ERRORS = [
    (401, "unauthorized", "No credentials were sent, or not as `Authorization: Bearer <token>`."),
    (401, "invalid-token", "The token is malformed (its checksum does not match), unknown, revoked or expired, "
                           "or names another workspace."),
    (403, "forbidden", "The credentials lack the permission this operation needs, or belong to another "
                       "workspace."),
]
SESSION_WRITE_ERRORS = [
    (403, "xsrf-failed", "Called with a browser session cookie but without a valid `X-XSRFToken` header."),
]
STRAY_AUTH_ERRORS = [
    (401, "unauthorized", "An `Authorization` header that is not `Bearer` was sent; this operation needs none."),
    (401, "invalid-token", "An `Authorization` header with an unknown or malformed token was sent; this "
                           "operation needs none."),
]
JSON_BODY_ERRORS = [
    (400, "invalid-json", "The body is not valid JSON, or not a JSON object."),
    (400, "invalid-characters", "A string in the body holds a NUL character or an unpaired surrogate, which "
                                "cannot be stored."),
    (413, "body-too-large", "The body is larger than the server accepts."),
    (415, "unsupported-media-type", "The body was not sent as `application/json`."),
]
VALIDATION = (422, "validation-failed",
              "Some fields are invalid; `errors` lists each as `{field, message}` and nothing was changed.")

ERROR_HEADERS = {
    401: {"WWW-Authenticate": header("`Bearer`, with `error=\"invalid_token\"` for a token that was refused.")},
    429: {"Retry-After": header("Seconds to wait before trying again.", {"type": "string", "pattern": "^[0-9]+$"})},
}


def problem_response(status: int, codes: dict[str, str]) -> dict:
    """One error response: ``application/problem+json`` whose ``code`` is one of ``codes``."""
    lines = "\n".join(f"- `{code}`: {why}" for code, why in codes.items())
    out = {
        "description": f"{STATUS_TITLES.get(status, 'Error')}, as `application/problem+json`.\n\n{lines}",
        "content": {PROBLEM: {"schema": {"allOf": [ref("Problem")],
                                         "properties": {"code": {"enum": list(codes)}}}}},
        "x-problem-codes": [{"code": code, "description": why} for code, why in codes.items()],
    }
    if status in ERROR_HEADERS:
        out["headers"] = copy.deepcopy(ERROR_HEADERS[status])
    return out


def responses(success: dict, *errors) -> dict:
    """The responses of an operation: ``success`` (status → response) plus its problems.

    ``errors`` are ``(status, code, when)`` tuples or lists of them (such as
    :data:`AUTH_ERRORS`); codes are grouped per status, and the explanations of a
    code given twice for one status are joined.
    """
    by_status: dict[int, dict[str, str]] = {}
    for item in errors:
        for status, code, why in ([item] if isinstance(item, tuple) else item):
            codes = by_status.setdefault(status, {})
            if code not in codes:
                codes[code] = why
            elif why not in codes[code]:
                codes[code] += " Or: " + why
    out = {str(k): v for k, v in success.items()}
    for status in sorted(by_status):
        if str(status) in out:
            raise ValueError(f"status {status} is both a success and a problem")
        out[str(status)] = problem_response(status, by_status[status])
    return out


def api_errors(*permissions, write: bool = False, body: bool = False) -> list:
    """The usual problems of a workspace API call that needs a token (and maybe a JSON body)."""
    out = WORKSPACE_ERRORS + AUTH_ERRORS
    if write:
        out = out + SESSION_WRITE_ERRORS
    if body:
        out = out + JSON_BODY_ERRORS
    return out


# ---------------------------------------------------------------------------
# The kernel's own part
# ---------------------------------------------------------------------------

CORE_TAGS = [
    {"name": "Authentication", "description": "Sign in for a short-lived access token (an RS256 JWT), "
                                              "refresh it, sign out, and see who a credential belongs to."},
    {"name": "Health", "description": "Liveness and readiness probes for load balancers and orchestrators."},
    {"name": "Documentation", "description": "This contract, as JSON and as a page."},
]

SECURITY_SCHEMES = {
    "bearer": {
        "type": "http", "scheme": "bearer", "bearerFormat": "API token or JWT",
        "description": "`Authorization: Bearer <token>` with either an API token (`sgw_<workspace>_…`, created "
                       "on the API tokens page, holding the scopes it was given) or an access token from "
                       "`POST /api/v1/auth/token` (an RS256 JWT valid for 15 minutes, verifiable with "
                       "`/.well-known/jwks.json`, carrying the user's role). The permissions an operation "
                       "lists are the scopes or role rights it needs. Tokens name their workspace, so they "
                       "also work on the main host. A browser session of the dashboard works too, with an "
                       "`X-XSRFToken` header on anything but GET.",
    },
}
# The kernel's own; addons register the schemes of the credentials they add (smsgw_security_schemes).

CORE_SCHEMAS = {
    "Problem": {
        "type": "object",
        "description": "An error, as RFC 9457 problem details (`application/problem+json`) with a stable "
                       "machine-readable `code`.",
        "required": ["type", "title", "status", "code", "detail"],
        "properties": {
            "type": {"type": "string", "format": "uri",
                     "description": "`https://smsgw.dev/problems/<code>`."},
            "title": {"type": "string", "description": "The status in words."},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "code": {"type": "string", "description": "Stable code to act on; see each response's list."},
            "detail": {"type": "string", "description": "What went wrong and what to do, for a person."},
            "instance": {"type": "string", "description": "The path that was called."},
            "errors": {"type": "array", "items": ref("FieldError"),
                       "description": "For validation problems: one entry per invalid field."},
        },
        "additionalProperties": True,
    },
    "FieldError": {
        "type": "object", "required": ["field", "message"],
        "properties": {
            "field": {"type": "string", "description": "The field, e.g. `to` or `messages[2].text`."},
            "message": {"type": "string"},
            "input": {"type": "string", "description": "The refused input, where it helps."},
        },
        "additionalProperties": True,
    },
    "TokenRequest": {
        "type": "object", "required": ["email", "password"],
        "properties": {"email": {"type": "string", "minLength": 1, "maxLength": 254},
                       "password": {"type": "string", "minLength": 1}},
    },
    "RefreshRequest": {
        "type": "object", "required": ["refresh_token"],
        "properties": {"refresh_token": {"type": "string", "minLength": 1,
                                         "description": "The `refresh_token` of the last token pair."}},
    },
    "TokenPair": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "expires_at", "refresh_token"],
        "properties": {
            "access_token": {"type": "string", "description": "RS256 JWT; send as `Authorization: Bearer`."},
            "token_type": {"const": "Bearer"},
            "expires_in": {"type": "integer", "description": "Seconds the access token is valid (900)."},
            "expires_at": {"type": "integer", "description": "When it expires, in epoch seconds."},
            "refresh_token": {"type": "string",
                              "description": "Single use: spend it at `/api/v1/auth/refresh` for a new pair."},
        },
    },
    "Me": {
        "type": "object", "required": ["kind", "id", "role", "tenant", "permissions", "via"],
        "properties": {
            "kind": {"enum": ["user", "token", "device", "admin"]},
            "id": {"type": "integer"},
            "role": {"type": "string", "description": "`customer`, `user`, `token`, `device` or `admin`."},
            "tenant": {"type": ["string", "null"], "description": "The workspace's slug."},
            "name": {"type": "string"},
            "email": {"type": ["string", "null"],
                      "description": "The person's address; `null` for credentials that may not edit the profile "
                                     "(API tokens, scoped access tokens, devices)."},
            "permissions": {"type": "array", "items": {"type": "string"}},
            "via": {"enum": ["session", "jwt", "api_token", "device_token", "admin_grant"]},
        },
    },
    "Liveness": {"type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}},
    "Readiness": {
        "type": "object", "required": ["status"],
        "properties": {
            "status": {"enum": ["ok", "migrations-pending", "unavailable"]},
            "database": {"enum": ["ok", "unreachable"]},
            "public_pending": {"type": "array", "items": {"type": "string"},
                               "description": "Platform migrations not applied yet."},
            "tenants_lagging": {"type": "integer", "description": "Workspaces whose migrations lag behind."},
            "error": {"type": "string", "description": "When the database is unreachable: the error's class."},
            "worker": {"enum": ["ok", "late", "unknown"],
                       "description": "`late`: no worker heartbeat for 5 s or more (none running, or stuck). Never "
                                      "a 503 by itself: web processes then release due scheduled messages in its "
                                      "place; webhooks and other background work wait for it."},
            "worker_last_seen_s": {"type": ["number", "null"],
                                   "description": "Seconds since the last worker heartbeat; null if none ever."},
        },
    },
    "JWKS": {
        "type": "object", "required": ["keys"],
        "properties": {"keys": {"type": "array", "items": {
            "type": "object", "required": ["kty", "kid", "n", "e"],
            "properties": {"kty": {"const": "RSA"}, "use": {"const": "sig"}, "alg": {"const": "RS256"},
                           "kid": {"type": "string"}, "n": {"type": "string"}, "e": {"type": "string"}}}}},
    },
}


def core_paths(any_credential: list) -> dict:
    return {
        "/health/live": {"get": {
            "operationId": "healthLive", "tags": ["Health"], "summary": "Liveness",
            "description": "The process answers. No database work; any host.",
            "security": PUBLIC,
            "responses": responses({200: json_response("Alive.", ref("Liveness"))}),
        }},
        "/health/ready": {"get": {
            "operationId": "healthReady", "tags": ["Health"], "summary": "Readiness",
            "description": "The database answers and every migration is applied (cached for 2 seconds). "
                           "Unlike the API's errors, a 503 here is the same JSON object as a 200, not a "
                           "problem document, so probes read one shape.",
            "security": PUBLIC,
            "responses": responses({
                200: json_response("Ready to serve.", ref("Readiness")),
                503: json_response("Not ready: the database is unreachable or migrations are pending.",
                                   ref("Readiness")),
            }),
        }},
        "/.well-known/jwks.json": {"get": {
            "operationId": "getJwks", "tags": ["Authentication"], "summary": "Public keys for access tokens",
            "description": "The RSA public keys (JWK Set) that verify access tokens; keys in rotation are listed "
                           "until every token they signed has expired. Cacheable for 5 minutes.",
            "security": PUBLIC,
            "responses": responses({200: json_response("The key set.", ref("JWKS"))},
                                   HOST_ERRORS, STRAY_AUTH_ERRORS),
        }},
        "/api/v1/auth/token": {"post": {
            "operationId": "createToken", "tags": ["Authentication"], "summary": "Sign in for a token pair",
            "description": "Exchange a user's email and password for an access token (15 minutes) and a "
                           "refresh token, on the workspace's own host. Failures are throttled per account and "
                           "per client address; repeated failures slow down, then answer 429.",
            "security": PUBLIC,
            "requestBody": json_body(ref("TokenRequest")),
            "responses": responses(
                {200: json_response("Signed in.", ref("TokenPair"), NO_STORE)},
                WORKSPACE_ERRORS, STRAY_AUTH_ERRORS, JSON_BODY_ERRORS, VALIDATION,
                (401, "invalid-credentials", "Unknown email or wrong password (the same answer for both)."),
                (429, "too-many-attempts", "Too many failed sign-ins for this account or address."),
            ),
        }},
        "/api/v1/auth/refresh": {"post": {
            "operationId": "refreshToken", "tags": ["Authentication"], "summary": "Spend a refresh token",
            "description": "Returns a new token pair; the refresh token sent is spent. Spending one twice "
                           "revokes the whole chain (it was stolen or replayed).",
            "security": PUBLIC,
            "requestBody": json_body(ref("RefreshRequest")),
            "responses": responses(
                {200: json_response("A new token pair.", ref("TokenPair"), NO_STORE)},
                WORKSPACE_ERRORS, STRAY_AUTH_ERRORS, JSON_BODY_ERRORS, VALIDATION,
                (401, "invalid-refresh-token", "The refresh token is unknown, expired, spent or revoked."),
            ),
        }},
        "/api/v1/auth/logout": {"post": {
            "operationId": "logout", "tags": ["Authentication"], "summary": "Sign out everywhere",
            "description": "Revokes every refresh token and dashboard session of the calling user, and with "
                           "them every access token minted from those sign-ins (refused at once, not when they "
                           "expire). Needs `profile:edit`: a scoped access token or an API token gets 403.",
            "security": list(any_credential),
            "responses": responses(
                {204: no_content("Signed out.")},
                api_errors(write=True),
                (400, "not-a-user", "The credentials are not a user's (an API or device token): revoke those "
                                    "on their own pages instead."),
            ),
        }},
        "/api/v1/me": {"get": {
            "operationId": "getMe", "tags": ["Authentication"], "summary": "Who am I",
            "description": "Who the credentials belong to and what they allow.",
            "security": list(any_credential),
            "responses": responses({200: json_response("The caller.", ref("Me"))}, api_errors()),
        }},
        "/api/openapi.json": {"get": {
            "operationId": "getOpenApi", "tags": ["Documentation"], "summary": "This document",
            "description": "The OpenAPI 3.1 description of every API this installation serves, kernel and "
                           "addons. Public; the same on every host.",
            "security": PUBLIC,
            "responses": responses({200: json_response("The OpenAPI document.", {"type": "object"})},
                                   HOST_ERRORS),
        }},
        "/api/docs": {"get": {
            "operationId": "getApiDocs", "tags": ["Documentation"], "summary": "API reference page",
            "description": "This document rendered as a page: every operation, its parameters, bodies, "
                           "responses, permissions and error codes.",
            "security": PUBLIC,
            "responses": responses({200: {"description": "The reference page.",
                                          "content": {"text/html": {"schema": {"type": "string"}}}}},
                                   HOST_ERRORS),
        }},
    }


def description(settings) -> str:
    return f"""The HTTP API of the SMS gateway: send and receive SMS through your own Android phones.

**Hosts.** Each workspace has its own host, `{settings.public_scheme}://<workspace>.{settings.base_domain}`. \
Workspace operations answer there, and also on the main host when the token names the workspace (every token \
does). Health checks, JWKS and this document answer on any host.

**Authentication.** Send `Authorization: Bearer <token>`: an API token (scoped), an access token from \
`/api/v1/auth/token`, or for the device protocol a phone's device token. Each operation lists the permission \
it needs.

**Errors.** Every error is `application/problem+json` (RFC 9457) with a stable `code`; validation problems \
list each invalid field in `errors`. Each response below lists the codes it can carry.

**Lists** are newest first and paginated with an opaque `cursor`: pass the `next_cursor` of one page to get \
the next; `null` means there is no more.

**Retries.** `POST /api/v1/messages` takes an `Idempotency-Key` header: a retry with the same key and body \
within 24 hours returns the first answer instead of sending again.

**Webhooks** are signed per Standard Webhooks; the events and their payloads are listed under Webhooks."""


def servers(settings) -> list:
    default_port = 443 if settings.public_scheme == "https" else 80
    base = settings.base_domain + ("" if settings.port == default_port else f":{settings.port}")
    return [
        {"url": settings.public_url(), "description": "The main host."},
        {"url": "{scheme}://{tenant}.{base}", "description": "A workspace's own host.",
         "variables": {
             "scheme": {"default": settings.public_scheme, "enum": sorted({"https", settings.public_scheme})},
             "tenant": {"default": "your-workspace", "description": "The workspace's slug."},
             "base": {"default": base, "description": "The platform's base domain (and port)."},
         }},
    ]


# ---------------------------------------------------------------------------
# Building the document
# ---------------------------------------------------------------------------

class OpenApiError(ValueError):
    """Fragments disagree or are malformed; the message names the addon."""


def merge_fragment(doc: dict, addon: str, fragment: dict) -> None:
    """Merge one addon's fragment into ``doc``; refuse anything it would silently overwrite."""
    if not isinstance(fragment, dict):
        raise OpenApiError(f"addon {addon!r}: smsgw_openapi must return a dict, not {type(fragment).__name__}")
    unknown = sorted(set(fragment) - set(FRAGMENT_KEYS))
    if unknown:
        raise OpenApiError(f"addon {addon!r}: unknown OpenAPI fragment keys {unknown}; use {list(FRAGMENT_KEYS)}")
    fragment = copy.deepcopy(fragment)
    for path, item in fragment.get("paths", {}).items():
        if not path.startswith("/"):
            raise OpenApiError(f"addon {addon!r}: path {path!r} must start with /")
        target = doc["paths"].setdefault(path, {})
        for method, operation in item.items():
            if method in target:
                raise OpenApiError(f"addon {addon!r}: {method.upper()} {path} is already described "
                                   f"(by {target[method].get('x-smsgw-addon', 'the kernel')})")
            if method in HTTP_METHODS:
                operation["x-smsgw-addon"] = addon
            target[method] = operation
    for section, entries in fragment.get("components", {}).items():
        target = doc["components"].setdefault(section, {})
        for name, value in entries.items():
            if name in target and target[name] != value:
                raise OpenApiError(f"addon {addon!r}: components.{section}.{name} is already defined differently")
            target[name] = value
    names = {t["name"] for t in doc["tags"]}
    for tag in fragment.get("tags", []):
        if tag["name"] not in names:
            doc["tags"].append(tag)
            names.add(tag["name"])
    for name, item in fragment.get("webhooks", {}).items():
        if name in doc["webhooks"]:
            raise OpenApiError(f"addon {addon!r}: webhook {name!r} is already described")
        for method, operation in item.items():
            if method in HTTP_METHODS:
                operation["x-smsgw-addon"] = addon
        doc["webhooks"][name] = item


def build_document(registry, settings) -> dict:
    """The full OpenAPI 3.1 document: the kernel's part and every installed addon's fragment."""
    access = registry.access
    doc = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": "SMS Gateway API", "version": __version__, "description": description(settings)},
        "servers": servers(settings),
        "tags": copy.deepcopy(CORE_TAGS),
        "paths": core_paths(security() + [s for name in access.kernel_endpoint_schemes()
                                          for s in security(scheme=name)]),
        "webhooks": {},
        "components": {"schemas": copy.deepcopy(CORE_SCHEMAS),
                       "securitySchemes": copy.deepcopy(access.openapi_schemes())},
    }
    for addon, fragment in registry.call_each("smsgw_openapi"):
        merge_fragment(doc, addon, fragment)
    if not doc["webhooks"]:
        del doc["webhooks"]
    json.dumps(doc)  # fail here, naming nothing else, if a fragment is not JSON-ready
    return doc


def published_document(platform) -> dict:
    """The platform's document, built on first use: what ``/api/openapi.json`` serves and what
    request bodies are checked against (:mod:`core.bodyschema`)."""
    doc = platform.__dict__.get("_openapi_document")
    if doc is None:
        doc = platform.__dict__["_openapi_document"] = build_document(platform.registry, platform.settings)
    return doc
