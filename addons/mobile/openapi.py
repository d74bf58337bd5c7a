"""The mobile addon's part of the API contract: what the *SMS Gateway for Android* app speaks."""

from __future__ import annotations

from core.openapi import (AUTH_ERRORS, JSON_BODY_ERRORS, NO_STORE, PUBLIC, WORKSPACE_ERRORS, api_errors, json_body,
                          json_response, no_content, param, path_id, ref, responses, security)

from .service import APP_STATES, INGEST_EVENTS

MOBILE = "Android app"
DEVICE = security("device:protocol", scheme="deviceToken")
ERRORS = WORKSPACE_ERRORS + AUTH_ERRORS
NOT_APP = (403, "not-an-app-device", "The device token belongs to a phone paired with the companion.")
BAD_INPUT = (400, "validation-failed", "A field is missing or of the wrong type; `errors` lists each.")
GSON_TIME = {"type": "string", "format": "date-time",
             "description": "As the app's Gson writes it: `2026-08-01T10:00:00.123+02:00`."}


def _obj(properties: dict, required: tuple = (), **extra) -> dict:
    out = {"type": "object", "properties": properties, **extra}
    if required:
        out["required"] = list(required)
    return out


SIM_CARD = _obj({"slotIndex": {"type": "integer"}, "simNumber": {"type": "integer"},
                 "phoneNumber": {"type": "string"}, "carrierName": {"type": "string"}, "iccid": {"type": "string"}})

SCHEMAS = {
    "AppDeviceRegister": _obj({"name": {"type": "string", "minLength": 1, "maxLength": 100},
                               "pushToken": {"type": ["string", "null"], "maxLength": 4096},
                               "simCards": {"type": ["array", "null"], "items": SIM_CARD, "maxItems": 8}},
                              ("name",)),
    "AppDeviceRegistered": _obj({"id": {"type": "string"}, "token": {"type": "string"},
                                 "login": {"type": "string"}, "password": {"type": "string"}},
                                ("id", "token", "login")),
    "InboxRefresh": _obj({"since": {"type": "string", "format": "date-time"},
                          "until": {"type": "string", "format": "date-time"}}, ("since", "until")),
    "InboxRefreshRequested": _obj({"id": {"type": "integer"}, "device_id": {"type": "integer"},
                                   "since": {"type": "string", "format": "date-time"},
                                   "until": {"type": "string", "format": "date-time"},
                                   "requested_at": {"type": "string", "format": "date-time"}},
                                  ("id", "device_id", "since", "until", "requested_at")),
    "AppUserCode": _obj({"code": {"type": "string", "pattern": "^[0-9]{8}$"}, "validUntil": GSON_TIME},
                        ("code", "validUntil")),
    "AppPasswordChange": _obj({"currentPassword": {"type": "string"},
                               "newPassword": {"type": "string", "minLength": 10, "maxLength": 1024}},
                              ("currentPassword", "newPassword")),
    "AppDevicePatch": _obj({"id": {"type": "string", "maxLength": 40},
                            "pushToken": {"type": ["string", "null"], "maxLength": 4096},
                            "simCards": {"type": ["array", "null"], "items": SIM_CARD, "maxItems": 8}}, ("id",)),
    "AppDevice": _obj({"id": {"type": "string"}, "name": {"type": "string"}, "externalIp": {"type": "string"}},
                      ("id",)),
    "AppMessage": _obj({
        "id": {"type": "string", "description": "Our recipient id: one message per phone number."},
        "textMessage": _obj({"text": {"type": "string"}}, ("text",)),
        "phoneNumbers": {"type": "array", "items": {"type": "string"}},
        "simNumber": {"type": "integer"}, "withDeliveryReport": {"type": "boolean"},
        "isEncrypted": {"type": "boolean"}, "validUntil": GSON_TIME,
        "state": {"enum": ["Pending", "Cancelling"],
                  "description": "`Cancelling` only to apps from 1.67, which know it."},
        "createdAt": GSON_TIME}, ("id", "phoneNumbers", "state", "createdAt")),
    "AppMessageState": _obj({
        "id": {"type": "string"}, "state": {"enum": list(APP_STATES)},
        "recipients": {"type": "array", "items": _obj({"phoneNumber": {"type": "string"},
                                                       "state": {"type": "string"},
                                                       "error": {"type": ["string", "null"]}})},
        "states": {"type": "object", "additionalProperties": GSON_TIME}}, ("id", "state")),
    "AppSettings": _obj({"messages": {"type": "object"}, "ping": {"type": "object"}, "webhooks": {"type": "object"},
                         "gateway": {"type": "object"}}),
    "AppWebhook": _obj({"id": {"type": "string"}, "deviceId": {"type": "string"}, "url": {"type": "string"},
                        "event": {"enum": list(INGEST_EVENTS)}}, ("id", "url", "event")),
    "AppWebhookCall": _obj({"id": {"type": "string"}, "webhookId": {"type": "string"},
                            "event": {"type": "string"}, "deviceId": {"type": "string"},
                            "payload": {"type": "object"}}, ("event", "payload")),
}

PATHS = {
    "/api/v1/devices/{device_id}/inbox-refresh": {
        "parameters": [path_id("device_id", "device")],
        "post": {
            "operationId": "refreshDeviceInbox", "tags": ["Devices"],
            "summary": "Ask a phone on the Android app to send its received SMS again",
            "description": "The phone is told on its event stream (`MessagesExportRequested`) at once, or when it "
                           "next connects, and posts the SMS it received in the window to us again; ones already "
                           "stored are not stored twice. For app 1.68 and later; at most 31 days at once.",
            "security": security("devices:write"),
            "requestBody": json_body(ref("InboxRefresh")),
            "responses": responses(
                {202: json_response("Asked.", ref("InboxRefreshRequested"))}, api_errors(write=True, body=True),
                BAD_INPUT, (404, "not-found", "No phone on the Android app with this id."),
                (409, "app-too-old", "The phone's app is older than 1.68.")),
        },
    },
    "/api/mobile/v1/device": {
        "post": {
            "operationId": "appRegisterDevice", "tags": [MOBILE], "summary": "Enroll a phone running the app",
            "description": "`Authorization: Bearer <enrollment token>` (the app's *Private Token*, made on "
                           "Devices → Connect the Android app or by `smsgw devices enrollment-token`): the answer "
                           "also carries a `login` and `password`. With `Authorization: Basic <login:password>`, "
                           "or `Authorization: Code <one-time code>` from `GET /user/code`, another phone joins "
                           "on the same enrollment token (one of its uses, while it is valid). Each registration "
                           "is a new device; one that may replace an older one is shown to the Customer to "
                           "confirm.",
            "security": [{"enrollmentToken": []}, {"appLogin": []}],
            "requestBody": json_body(ref("AppDeviceRegister")),
            "responses": responses(
                {201: json_response("Enrolled: the device token the app uses from now on.",
                                    ref("AppDeviceRegistered"), NO_STORE)},
                WORKSPACE_ERRORS, JSON_BODY_ERRORS, BAD_INPUT,
                (401, "invalid-token", "No enrollment token, login or code, or one that is unknown here, "
                                       "wrong, revoked, expired or used by as many phones as it allows."),
                (402, "limit-reached", "The workspace's plan allows no more phones."),
                (429, "too-many-attempts", "Too many wrong tokens from this address; wait."),
            ),
        },
        "patch": {
            "operationId": "appUpdateDevice", "tags": [MOBILE], "summary": "Update the phone's push token and SIMs",
            "description": "Without `pushToken` the phone has none: it is told of work over `GET /events`.",
            "security": DEVICE,
            "requestBody": json_body(ref("AppDevicePatch")),
            "responses": responses({204: no_content("Updated.")}, ERRORS, JSON_BODY_ERRORS, BAD_INPUT, NOT_APP,
                                   (403, "forbidden", "`id` is not the device the token belongs to.")),
        },
        "get": {
            "operationId": "appGetDevice", "tags": [MOBILE], "summary": "The phone as the server sees it",
            "security": DEVICE,
            "responses": responses({200: json_response("The device.", ref("AppDevice"))}, ERRORS),
        },
    },
    "/api/mobile/v1/user/code": {"get": {
        "operationId": "appUserCode", "tags": [MOBILE], "summary": "A one-time code that adds one more phone",
        "description": "Eight digits, valid for 5 minutes, for `Authorization: Code <code>` on `POST /device`. "
                       "It spends one use of the enrollment token the login came from.",
        "security": [{"appLogin": []}],
        "responses": responses(
            {200: json_response("The code.", ref("AppUserCode"), NO_STORE)}, WORKSPACE_ERRORS,
            (401, "invalid-token", "Wrong login or password, a removed phone, or a token that can enroll no "
                                   "more phones."),
            (429, "too-many-attempts", "Too many wrong passwords from this address; wait.")),
    }},
    "/api/mobile/v1/user/password": {"patch": {
        "operationId": "appChangePassword", "tags": [MOBILE], "summary": "Change the app's password",
        "description": "From a phone that joined with this login. Open one-time codes stop working.",
        "security": DEVICE,
        "requestBody": json_body(ref("AppPasswordChange")),
        "responses": responses({204: no_content("Changed.")}, ERRORS, JSON_BODY_ERRORS, BAD_INPUT,
                               (401, "invalid-password", "The current password is wrong.")),
    }},
    "/api/mobile/v1/message": {
        "get": {
            "operationId": "appPullMessages", "tags": [MOBILE], "summary": "SMS for the phone to send",
            "description": "Up to 100; a message is offered again until the app reports a state for it.",
            "security": DEVICE,
            "parameters": [param("order", "query", {"enum": ["lifo", "fifo"]}, "The order of the list.")],
            "responses": responses({200: json_response("The messages.", {"type": "array",
                                                                           "items": ref("AppMessage")})},
                                   ERRORS, NOT_APP, BAD_INPUT),
        },
        "patch": {
            "operationId": "appReportMessages", "tags": [MOBILE], "summary": "What became of the messages",
            "description": "Unknown ids are ignored; `Pending` and `Processed` acknowledge; states never move "
                           "backwards.",
            "security": DEVICE,
            "requestBody": json_body({"type": "array", "items": ref("AppMessageState"), "maxItems": 500}),
            "responses": responses({204: no_content("Applied.")}, ERRORS, JSON_BODY_ERRORS, BAD_INPUT,
                                   (413, "batch-too-large", "More than 500 states in one request.")),
        },
    },
    "/api/mobile/v1/events": {"get": {
        "operationId": "appEvents", "tags": [MOBILE], "summary": "Server-sent events",
        "description": "`text/event-stream`: `MessageEnqueued`, `SettingsUpdated`, `MessageCancelled` "
                       "(`{messageId}`), `MessagesExportRequested` (`{since, until}`, RFC 3339, to apps from 1.68), "
                       "and a `:keepalive` comment every 15 seconds.",
        "security": DEVICE,
        "responses": responses({200: {"description": "The stream.",
                                      "content": {"text/event-stream": {"schema": {"type": "string"}}}}},
                               ERRORS, NOT_APP),
    }},
    "/api/mobile/v1/settings": {"get": {
        "operationId": "appSettings", "tags": [MOBILE], "summary": "The phone's settings, as the app imports them",
        "security": DEVICE,
        "responses": responses({200: json_response("The settings.", ref("AppSettings"), NO_STORE)}, ERRORS,
                               NOT_APP),
    }},
    "/api/mobile/v1/webhooks": {"get": {
        "operationId": "appWebhooks", "tags": [MOBILE], "summary": "Where the app posts received SMS and states",
        "security": DEVICE,
        "responses": responses({200: json_response("The webhooks.", {"type": "array", "items": ref("AppWebhook")})},
                               ERRORS, NOT_APP),
    }},
    "/api/mobile/v1/ingest/{device_id}": {
        "parameters": [path_id("device_id", "device")],
        "post": {
            "operationId": "appIngest", "tags": [MOBILE], "summary": "The app's signed webhooks",
            "description": "`X-Signature: hex(HMAC-SHA256(signing key, body + X-Timestamp))`, `X-Timestamp` in "
                           "epoch seconds within 5 minutes. `sms:received` is stored once per message id.",
            "security": PUBLIC,
            "requestBody": json_body(ref("AppWebhookCall")),
            "responses": responses({204: no_content("Taken.")}, WORKSPACE_ERRORS, JSON_BODY_ERRORS, BAD_INPUT,
                                   (404, "not-found", "The device id is not a number."),
                                   (401, "invalid-token", "Unsigned, badly signed or stale, or no such app device.")),
        },
    },
}

TAGS = [{"name": MOBILE, "description": "The private-server API of the *SMS Gateway for Android* app (Settings → "
                                        "Cloud Server, API URL `https://<workspace>.<base-domain>/api/mobile/v1`)."}]


def fragment() -> dict:
    return {"paths": PATHS, "components": {"schemas": SCHEMAS}, "tags": TAGS}
