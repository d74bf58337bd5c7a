"""The compat addon's part of the API contract: ``/3rdparty/v1``, the SMS Gateway for Android API.

Errors are documented twice per status: ``application/json`` in the clients' own
``ErrorResponse`` shape (what their clients get), and ``application/problem+json``
(what callers get with ``Accept: application/problem+json``); the codes are the same.
"""

from __future__ import annotations

import copy

from core.jwtkeys import ACCESS_TTL
from core.openapi import (JSON, NO_STORE, PUBLIC, WORKSPACE_ERRORS, date_time, header, json_body, json_response,
                          no_content, nullable, param, ref, responses, security)

from .api import EVENTS, INBOX_TYPES, PREFIX, UNSUPPORTED_EVENTS
from .messages import MAX_TTL, STATE_IN
from .tokens import ALL, SCOPES

TAG = "Compatibility (SMS Gateway for Android)"
P = PREFIX.replace("\\", "")
STATES = list(STATE_IN)

# -- errors ------------------------------------------------------------------------------------

AUTH = [
    (401, "unauthorized", "No credentials, or a scheme other than `Bearer` or `Basic`."),
    (401, "invalid-token", "The bearer token is malformed, unknown, revoked or expired, or names another "
                           "workspace."),
    (401, "invalid-credentials", "Basic auth: malformed, or an unknown email or wrong password (the same answer)."),
    (401, "basic-auth-needs-workspace", "Basic auth on the main host, which cannot tell the workspace: use the "
                                        "workspace's own address."),
    (403, "forbidden", "The credentials lack the permission this operation needs."),
    (403, "cross-site-request", "Basic auth on a request a browser made from another site's page (`Origin` or "
                                "`Sec-Fetch-Site` say so): refused before the password is checked."),
    (403, "xsrf-failed", "Called with a dashboard session cookie but without `X-XSRFToken` (writes only)."),
    (429, "too-many-attempts", "Basic auth: too many failed sign-ins for this account or address."),
]
BODY = [
    (400, "unsupported-media-type", "The body is not sent as `Content-Type: application/json` (or "
                                    "`application/<name>+json`)."),
    (400, "invalid-json", "The body is not a JSON object."),
    (400, "invalid-characters", "A string holds a NUL character or an unpaired surrogate."),
    (413, "body-too-large", "The body is larger than the server accepts."),
]
INVALID = (400, "validation-failed", "A field is invalid; `message` names it (and `data.errors` lists it).")
PAGING = (400, "invalid-parameter", "`limit` (1–500) or `offset` is not a whole number in range.")
NOT_SUPPORTED = (501, "not-supported", "This part of the original API is not offered here; `message` says what "
                                       "to use instead.")


def errors(*extra) -> list:
    return list(WORKSPACE_ERRORS) + AUTH + list(extra)


def compat_responses(success: dict, *problems) -> dict:
    """:func:`core.openapi.responses`, with each error also in the clients' JSON shape."""
    out = responses(success, *problems)
    for status, response in out.items():
        if status[0] in "45" and "x-problem-codes" in response:
            response["content"] = {JSON: {"schema": ref("CompatError")}, **response["content"]}
            response["description"] += ("\n\nAs `application/json` in the clients' `ErrorResponse` shape "
                                        "(`{code, message, data}`), or as problem details when asked for with "
                                        "`Accept: application/problem+json`.")
    return out


def who(*permissions: str) -> list:
    """An API token or access token (bearer), or email and password (Basic, on the workspace's host)."""
    return security(*permissions) + security(*permissions, scheme="basic")


# -- schemas ---------------------------------------------------------------------------------------

STR_ID = {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[^/\\s]+$"}
DEVICE_ID = nullable({"type": "string", "pattern": "^[0-9]{1,18}$",
                      "description": "One of your devices (`GET /devices`)."})
# A send's own id and device: what messages.translate accepts (control characters are not ids; a
# device may be given as a number, or as "" for none).
SEND_ID = dict(STR_ID, pattern="^[^/\\s\\x00-\\x1f\\x7f]+$")
SEND_DEVICE_ID = {"type": ["string", "integer", "null"], "pattern": "^[0-9]{0,18}$", "minimum": 1,
                  "maximum": 10**18 - 1, "description": "One of your devices (`GET /devices`), as text or a number.",
                  "x-message": "is not one of your devices (GET /devices lists them)"}
ID_WORDS = "must be 1 to 100 characters without '/', spaces or control characters"

SCHEMAS = {
    "CompatError": {
        "type": "object", "required": ["code", "message"],
        "description": "An error as the SMS Gateway for Android clients read it (`ErrorResponse`).",
        "properties": {
            "code": {"type": "integer", "description": "The HTTP status."},
            "message": {"type": "string", "description": "What went wrong and what to do (naming the field)."},
            "data": {"type": "object", "description": "Our problem details: `type`, `code`, `title`, `errors`.",
                     "properties": {"type": {"type": "string"}, "code": {"type": "string"},
                                    "title": {"type": "string"},
                                    "errors": {"type": "array", "items": ref("FieldError")}}},
        },
    },
    "CompatNewMessage": {
        "type": "object", "required": ["phoneNumbers"],
        "description": "Give the text as `textMessage.text` (or the legacy `message`). Unknown fields are ignored.",
        "properties": {
            "phoneNumbers": {"type": "array", "minItems": 1, "maxItems": 1000, "items": {"type": "string"},
                             "description": "Normalised to E.164 with the workspace's region; duplicates count "
                                            "once.",
                             "x-message": {"type": "must be a non-empty list of phone numbers",
                                           "minItems": "must be a non-empty list of phone numbers",
                                           "maxItems": "at most 1000 phoneNumbers per message"}},
            "textMessage": nullable({"type": "object", "required": ["text"],
                                     "properties": {"text": {"type": "string", "minLength": 1}},
                                     "x-message": {"type": "must be an object with a text string"}}),
            "message": nullable({"type": "string", "description": "Legacy form of `textMessage.text`."}),
            "dataMessage": {"type": "null", "description": "Data SMS are not supported (400).",
                            "x-message": "Data SMS (dataMessage) are not supported: send a textMessage"},
            "mmsMessage": {"type": "null", "description": "MMS are not supported (400).",
                           "x-message": "MMS (mmsMessage) are not supported: send a textMessage"},
            "priority": nullable({"type": "integer", "minimum": -128, "maximum": 127, "default": 0,
                                  "description": "Clamped to our −100…100; higher leaves first."}),
            "simNumber": nullable({"type": "integer", "minimum": 1, "maximum": 4,
                                   "description": "Left out: the phone's default."}),
            "withDeliveryReport": nullable({"type": "boolean", "default": True}),
            "isEncrypted": {"enum": [False, None], "description": "End-to-end encryption is not supported (400).",
                            "x-message": "Encrypted messages are not supported: send the text and numbers in clear "
                                         "over HTTPS (we encrypt stored secrets at rest) and leave isEncrypted false"},
            "ttl": nullable({"type": "integer", "minimum": 1, "maximum": MAX_TTL,
                             "description": "Seconds; not with `validUntil`."}),
            "validUntil": date_time("Not with `ttl`.", null=True),
            "id": nullable(dict(SEND_ID, **{"not": {"pattern": "^[0-9]+$"}},
                                description="Your own id for it, unique in the workspace; `GET /messages/{id}` "
                                            "finds it. Not digits only (400): those are our message numbers.",
                                **{"x-message": {
                                    "type": "must be text", "minLength": ID_WORDS, "maxLength": ID_WORDS,
                                    "pattern": ID_WORDS,
                                    "not": "must not be digits only: such ids are this gateway's own message numbers. "
                                           "Use another form (e.g. 'order-1001'), or leave id out to get a number"}})),
            "deviceId": SEND_DEVICE_ID,
        },
    },
    "CompatRecipientState": {
        "type": "object", "required": ["phoneNumber", "state", "error"],
        "properties": {"phoneNumber": {"type": "string"}, "state": {"enum": STATES},
                       "error": {"type": ["string", "null"],
                                 "description": "For Failed: the phone's error code, or that it expired."}},
    },
    "CompatMessageState": {
        "type": "object",
        "required": ["id", "deviceId", "state", "isHashed", "isEncrypted", "recipients", "states", "createdAt"],
        "properties": {
            "id": {"type": "string", "description": "Your id, or ours: a number as a string (digits only, which "
                                                    "no id of yours is)."},
            "deviceId": {"type": ["string", "null"], "description": "The phone that took it."},
            "state": {"enum": STATES, "description": "The least advanced recipient's state."},
            "isHashed": {"const": False}, "isEncrypted": {"const": False},
            "recipients": {"type": "array", "items": ref("CompatRecipientState")},
            "states": {"type": "object", "additionalProperties": {"type": "string", "format": "date-time"},
                       "description": "When the message first reached each state."},
            "createdAt": date_time(),
        },
    },
    "CompatIncomingMessage": {
        "type": "object", "required": ["id", "type", "sender", "contentPreview", "createdAt"],
        "properties": {
            "id": {"type": "string"}, "type": {"const": "SMS"}, "sender": {"type": "string"},
            "contentPreview": {"type": "string", "description": "The whole text."},
            "createdAt": date_time("When the phone received it."),
            "recipient": {"type": ["string", "null"], "description": "The receiving SIM's number, if known."},
            "simNumber": {"type": ["integer", "null"]}, "deviceId": {"type": "string"},
        },
    },
    "CompatWebhook": {
        "type": "object", "required": ["id", "url", "event", "deviceId"],
        "properties": {"id": {"type": "string"}, "url": {"type": "string"}, "event": {"enum": list(EVENTS)},
                       "deviceId": {"type": ["string", "null"]}},
    },
    "CompatNewWebhook": {
        "type": "object", "required": ["url", "event"],
        "properties": {
            "id": nullable(dict(STR_ID, description="Generated when left out; an existing id is replaced.")),
            "url": {"type": "string", "minLength": 8, "maxLength": 2000,
                    "description": "`https://` (or `http://`), reaching a public address."},
            "event": {"enum": list(EVENTS) + list(UNSUPPORTED_EVENTS),
                      "description": f"Not supported (400): {', '.join(UNSUPPORTED_EVENTS)}."},
            "deviceId": DEVICE_ID,
        },
    },
    "CompatWebhookCreated": {
        "allOf": [ref("CompatWebhook")],
        "properties": {"secret": {"type": "string", "pattern": "^whsec_",
                                  "description": "New webhooks only: the Standard Webhooks signing secret, shown "
                                                 "once."},
                       "signature": {"const": "standard-webhooks"}},
    },
    "CompatDevice": {
        "type": "object", "required": ["id", "name", "createdAt", "updatedAt", "deletedAt", "lastSeen"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "createdAt": date_time(),
                       "updatedAt": date_time(), "deletedAt": date_time(null=True),
                       "lastSeen": date_time(null=True)},
    },
    "CompatHealthCheck": {
        "type": "object", "required": ["status"],
        "properties": {"status": {"enum": ["pass", "warn", "fail"]}, "description": {"type": "string"},
                       "observedValue": {"type": "integer"}, "observedUnit": {"type": "string"}},
    },
    "CompatHealth": {
        "type": "object", "required": ["status", "version", "releaseId", "checks"],
        "properties": {"status": {"enum": ["pass", "fail"]}, "version": {"type": "string"},
                       "releaseId": {"type": "integer"},
                       "checks": {"type": "object", "additionalProperties": ref("CompatHealthCheck")}},
    },
    "CompatTokenRequest": {
        "type": "object", "required": ["scopes"],
        "properties": {
            "scopes": {"type": "array", "minItems": 1, "items": {"enum": [ALL, *SCOPES]},
                       "description": "Their scope names, mapped to our permissions (see the guide)."},
            "ttl": {"type": "integer", "minimum": 0, "description": f"Seconds; at most {ACCESS_TTL} (more is cut "
                                                                     f"to {ACCESS_TTL}; 0 or none: {ACCESS_TTL})."},
        },
    },
    "CompatTokenResponse": {
        "type": "object", "required": ["accessToken", "tokenType", "id", "expiresAt", "refreshToken"],
        "properties": {
            "accessToken": {"type": "string", "description": "RS256 JWT with a `scope` claim."},
            "tokenType": {"const": "Bearer"}, "id": {"type": "string", "description": "The token's jti."},
            "expiresAt": date_time(), "refreshToken": {"type": "string"},
            "access_token": {"type": "string"}, "token_type": {"const": "Bearer"},
            "expires_at": date_time(), "expires_in": {"type": "integer"}, "refresh_token": {"type": "string"},
        },
    },
}

# -- operations ------------------------------------------------------------------------------------

TOTAL = {"X-Total-Count": header("How many match, over all pages.", {"type": "string", "pattern": "^[0-9]+$"})}
LIMIT = param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "Page size.")
OFFSET = param("offset", "query", {"type": "integer", "minimum": 0, "default": 0}, "How many to skip.")
SINCE = param("from", "query", {"type": "string", "format": "date-time"}, "Created (received) at or after.")
UNTIL = param("to", "query", {"type": "string", "format": "date-time"}, "Created (received) before.")
DEVICE = param("deviceId", "query", {"type": "string"}, "Only this device's.")
MESSAGE_ID = param("id", "path", dict(STR_ID), "Digits only: our message number. Anything else: your id for "
                                                "the message. One rule, so an id names one message only.")


def _op(op_id: str, summary: str, description: str, sec: list, resp: dict, **extra) -> dict:
    out = {"operationId": op_id, "tags": [TAG], "summary": summary, "description": description, "security": sec,
           "responses": resp}
    out.update(extra)
    return out


def _not_offered(op_id: str, summary: str, instead: str) -> dict:
    return _op(op_id, summary, f"Not offered here (501). {instead}", who(),
               compat_responses({}, errors(NOT_SUPPORTED)))


def _health(op_id: str, summary: str, description: str) -> dict:
    return {"get": _op(op_id, summary, description + " Public on every host; credentials are ignored.", PUBLIC,
                       responses({200: json_response("Healthy.", ref("CompatHealth")),
                                  503: json_response("Unhealthy: the same object, `status: fail`.",
                                                     ref("CompatHealth"))}))}


PATHS = {
    f"{P}/messages": {
        "post": _op(
            "compatSendMessage", "Send a message",
            "Accepted (202) and queued for your phones; answers its MessageState.",
            who("messages:send"),
            compat_responses({202: json_response("Accepted.", ref("CompatMessageState"))}, errors(*BODY),
                             INVALID, (400, "invalid-parameter", "`deviceActiveWithin` is not a number of hours."),
                             (400, "no-active-device", "`deviceActiveWithin`: no phone was seen in that time."),
                             (400, "no-recipients", "Every number has opted out."),
                             (409, "duplicate-id", "A message with this `id` already exists.")),
            parameters=[
                param("skipPhoneValidation", "query", {"type": "boolean", "default": False},
                      "Accept numbers our validator refuses, as typed."),
                param("deviceActiveWithin", "query", {"type": "integer", "minimum": 0, "maximum": 24 * 366},
                      "Refuse (400) unless a phone was seen within this many hours."),
            ],
            requestBody=json_body(ref("CompatNewMessage"), examples={"text": {
                "phoneNumbers": ["+14155550100"], "textMessage": {"text": "Hello"}, "id": "order-1001"}})),
        "get": _op(
            "compatListMessages", "List messages", "Newest first unless `sort=created_at`.",
            who("messages:read"),
            compat_responses({200: json_response("A page of messages.",
                                                 {"type": "array", "items": ref("CompatMessageState")}, TOTAL)},
                             errors(), PAGING, INVALID),
            parameters=[SINCE, UNTIL, param("state", "query", {"enum": STATES}, "The message-level state."),
                        DEVICE, LIMIT, OFFSET,
                        param("sort", "query", {"enum": ["created_at", "-created_at"]}, "Order by creation.")]),
    },
    f"{P}/messages/{{id}}": {
        "parameters": [MESSAGE_ID],
        "get": _op("compatGetMessage", "A message's state",
                   "An id of digits only is our message number; any other id is the one you chose.",
                   who("messages:read"),
                   compat_responses({200: json_response("Its state.", ref("CompatMessageState"))}, errors(),
                                    (404, "not-found", "No such message in this workspace."))),
        "delete": _op("compatCancelMessage", "Cancel a message",
                      "Cancels the recipients no phone has taken yet; cancelling again is harmless.",
                      who("messages:send"),
                      compat_responses({204: no_content("Cancelled.")}, errors(),
                                       (404, "not-found", "No such message in this workspace."),
                                       (409, "not-cancellable", "Every recipient is already past Pending."))),
    },
    f"{P}/messages/inbox/export": {
        "post": _not_offered("compatExportInbox", "Export the inbox (not offered)",
                             "Phones upload every SMS as it arrives: use `GET /inbox` or `sms:received`."),
    },
    f"{P}/inbox": {
        "get": _op("compatListInbox", "Received SMS", "Newest first. Only `SMS` is ever received here.",
                   who("messages:read"),
                   compat_responses({200: json_response("A page of received SMS.",
                                                        {"type": "array", "items": ref("CompatIncomingMessage")},
                                                        TOTAL)},
                                    errors(), PAGING, INVALID,
                                    (400, "invalid-parameter", "`type` is not one of theirs.")),
                   parameters=[param("type", "query", {"enum": list(INBOX_TYPES)}, "Message type."),
                               SINCE, UNTIL, DEVICE, LIMIT, OFFSET,
                               param("includeAttachments", "query", {"type": "boolean"}, "Ignored (no MMS).")]),
    },
    f"{P}/inbox/refresh": {
        "post": _not_offered("compatRefreshInbox", "Refresh the inbox (not offered)",
                             "Phones upload every SMS as it arrives: use `GET /inbox` or `sms:received`."),
    },
    f"{P}/inbox/{{id}}/attachments/{{partId}}": {
        "parameters": [param("id", "path", {"type": "string"}, "The message."),
                       param("partId", "path", {"type": "string"}, "The attachment.")],
        "get": _not_offered("compatGetAttachment", "MMS attachment (not offered)", "Only SMS are received."),
    },
    f"{P}/webhooks": {
        "get": _op("compatListWebhooks", "List webhooks", "The webhooks created through this API.",
                   who("webhooks:read"),
                   compat_responses({200: json_response("The webhooks.", {"type": "array",
                                                                          "items": ref("CompatWebhook")})},
                                    errors())),
        "post": _op("compatCreateWebhook", "Create or replace a webhook",
                    "One event per webhook; the same `id` again replaces it. Signed the Standard Webhooks way: "
                    "the secret is in this answer, once.",
                    who("webhooks:write"),
                    compat_responses({201: json_response("Saved.", ref("CompatWebhookCreated"), NO_STORE)},
                                     errors(*BODY), INVALID),
                    requestBody=json_body(ref("CompatNewWebhook"))),
    },
    f"{P}/webhooks/{{id}}": {
        "parameters": [param("id", "path", dict(STR_ID), "The webhook's id.")],
        "delete": _op("compatDeleteWebhook", "Delete a webhook", "Nothing more is sent to it.", who("webhooks:write"),
                      compat_responses({204: no_content("Deleted.")}, errors(),
                                       (404, "not-found", "No such webhook."))),
    },
    f"{P}/devices": {
        "get": _op("compatListDevices", "List devices", "The paired phones.", who("devices:read"),
                   compat_responses({200: json_response("The devices.", {"type": "array",
                                                                         "items": ref("CompatDevice")})},
                                    errors())),
    },
    f"{P}/devices/{{id}}": {
        "parameters": [param("id", "path", {"type": "string", "pattern": "^[0-9]{1,18}$"}, "The device's id.")],
        "delete": _op("compatRemoveDevice", "Remove a device", "Its unsent work goes to your other phones.",
                      who("devices:write"),
                      compat_responses({204: no_content("Removed.")}, errors(),
                                       (404, "not-found", "No such device."))),
    },
    f"{P}/health": _health("compatHealth", "Health", "Readiness: database and migrations."),
    f"{P}/health/ready": _health("compatHealthReady", "Readiness", "Database and migrations."),
    f"{P}/health/startup": _health("compatHealthStartup", "Startup", "The same as readiness."),
    f"{P}/health/live": _health("compatHealthLive", "Liveness", "The process answers; no database work."),
    f"{P}/auth/token": {
        "post": _op("compatCreateToken", "Get an access token",
                    f"An RS256 access token (at most {ACCESS_TTL} s) limited to the scopes asked for, and a "
                    "refresh token. With Basic auth, an API token (issued for its creator, within its scopes) or "
                    "an access token that has `tokens:manage`.",
                    who(),
                    compat_responses({201: json_response("Issued.", ref("CompatTokenResponse"), NO_STORE)},
                                     errors(*BODY), INVALID),
                    requestBody=json_body(ref("CompatTokenRequest"))),
    },
    f"{P}/auth/token/refresh": {
        "post": _op("compatRefreshToken", "Refresh an access token",
                    "Send the refresh token as `Authorization: Bearer <refreshToken>`; it is spent. Replaying a "
                    "spent one revokes its whole family.",
                    security(),
                    compat_responses({200: json_response("A new pair.", ref("CompatTokenResponse"), NO_STORE)},
                                     list(WORKSPACE_ERRORS),
                                     (401, "invalid-refresh-token", "Not a refresh token, or unknown, spent, "
                                                                    "revoked or expired."),
                                     (401, "invalid-token", "The refresh token names another workspace."))),
    },
    f"{P}/auth/token/{{jti}}": {
        "parameters": [param("jti", "path", dict(STR_ID), "The access token's id (`id` when it was issued).")],
        "delete": _op("compatRevokeToken", "Revoke an access token",
                      "It stops working at once on every API, and its refresh family is revoked. Your own tokens; "
                      "`tokens:manage` (the Customer) may revoke any.",
                      who(),
                      compat_responses({204: no_content("Revoked.")}, errors(),
                                       (404, "not-found", "No such token that you may revoke."))),
    },
    f"{P}/settings": {
        method: _not_offered(f"compat{name}Settings", f"{name} settings (not offered)",
                             "Phone settings are per device: the dashboard, or `PATCH /api/v1/devices/{id}`.")
        for method, name in (("get", "Get"), ("put", "Replace"), ("patch", "Change"))
    },
    f"{P}/logs": {
        "get": _not_offered("compatGetLogs", "Device log (not offered)",
                            "Each message's history is in `GET /messages/{id}` (`states`) and the dashboard."),
    },
}

TAGS = [{"name": TAG, "description": "The third-party API of SMS Gateway for Android (sms-gate.app), so that "
                                     "existing code and its clients work by changing only the base URL to "
                                     "`…/3rdparty/v1`. Authenticate with an API token as the bearer token, or "
                                     "with email and password (Basic, sent unasked: no Basic challenge is ever "
                                     "sent, and browsers' requests from other sites are refused) on the "
                                     "workspace's own host. Bodies are `application/json`. A message id of "
                                     "digits only is our number, any other is yours. See `docs/compat.md` for "
                                     "what maps and what does not."}]


def fragment() -> dict:
    return copy.deepcopy({"paths": PATHS, "components": {"schemas": SCHEMAS}, "tags": TAGS})
