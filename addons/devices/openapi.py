"""The devices addon's part of the API contract: the device protocol and ``/api/v1/devices``."""

from __future__ import annotations

from core.openapi import (AUTH_ERRORS, JSON_BODY_ERRORS, NO_STORE, PUBLIC, STRAY_AUTH_ERRORS, VALIDATION,
                          WORKSPACE_ERRORS, api_errors, date_time, json_body, json_response, no_content, param,
                          path_id, ref, responses, security)

from .protocol import MAX_BATCH, REPORT_STATES
from .settings import DEFAULTS, SIM_MODES

PROTOCOL = "Device protocol"
DEVICES = "Devices"
DEVICE = security("device:protocol", scheme="deviceToken")
SERVER_TIME = date_time("The server's clock, to correct the phone's.")
DEVICE_ERRORS = WORKSPACE_ERRORS + AUTH_ERRORS
BATCH_TOO_LARGE = (413, "batch-too-large", f"More than {MAX_BATCH} items in one request.")
DEVICE_ID = path_id("device_id", "device")
NO_DEVICE = (404, "not-found", "There is no such device (or it was removed).")
LOOSE_TIME = {
    # Keywords for text apply to text only, those for numbers to numbers (cheaper than a oneOf).
    "type": ["string", "number", "null"], "maxLength": 40, "format": "date-time", "exclusiveMinimum": 0,
    "exclusiveMaximum": 4e12,
    "description": "When it happened: ISO 8601 (without an offset it is UTC), or epoch seconds, or milliseconds "
                   "(values above 10^11) as Android reports them; omitted or `null` means now.",
    "x-message": "must be an ISO 8601 time or epoch milliseconds",
}
TIMESTAMP_TEXT = ("Date and time in UTC as `YYYY-MM-DD HH:MM:SS[.ffffff]+00:00` (a space, not `T`, between date "
                  "and time).")


def _int(low: int, high: int, description: str = "") -> dict:
    out = {"type": "integer", "minimum": low, "maximum": high}
    if description:
        out["description"] = description
    return out


TIME = {"type": "string", "pattern": "^([01][0-9]|2[0-3]):[0-5][0-9]$", "description": "`HH:MM`, 24-hour.",
        "x-message": "must be a time like 08:30"}
SETTINGS_SECTIONS = {
    "limits": {"type": "object", "description": "Sending limits; 0 means no limit. Android itself asks the user "
                                                "beyond 30 SMS a minute.",
               "properties": {k: _int(0, 100_000) for k in DEFAULTS["limits"]}},
    "delay": {"type": "object", "description": "A random pause between two SMS, in milliseconds; "
                                               "`min_ms` may not exceed `max_ms`.",
              "properties": {k: _int(0, 3_600_000) for k in DEFAULTS["delay"]}},
    "working_hours": {"type": "object", "description": "Send only inside these hours; outside them work waits.",
                      "properties": {
                          "enabled": {"type": "boolean"}, "start": TIME, "end": TIME,
                          "timezone": {"type": "string", "description": "An IANA time zone, e.g. `Europe/Berlin`."},
                          "days": {"type": "array", "minItems": 1, "items": _int(0, 6),
                                   "description": "Weekdays, 0 (Monday) to 6 (Sunday).",
                                   "x-message": "must be a non-empty list of weekdays 0 (Monday) to 6 (Sunday)"}}},
    "sim": {"type": "object", "description": "Which SIM sends.",
            "properties": {"mode": {"enum": list(SIM_MODES)},
                           "slot": dict(_int(1, 4, "For mode `fixed`."), **{"x-message": "must be a SIM slot from 1 to 4"})}},
}


def _settings_schema(required: bool) -> dict:
    out = {"type": "object", "additionalProperties": False, "properties": {}}
    for name, section in SETTINGS_SECTIONS.items():
        section = dict(section, additionalProperties=False)
        if required:
            section["required"] = list(DEFAULTS[name])
        out["properties"][name] = section
    if required:
        out["required"] = list(DEFAULTS)
        out["description"] = "The device's settings, defaults filled in."
    else:
        out["description"] = ("Only the sections and keys to change; the others keep their values. Unknown "
                              "sections or keys are refused.")
    return out


SCHEMAS = {
    "DeviceSettings": _settings_schema(True),
    "DeviceSettingsPatch": _settings_schema(False),
    "Sim": {"type": "object", "required": ["slot"], "properties": {
        "slot": _int(1, 4), "operator": {"type": "string", "maxLength": 60},
        "number": {"type": "string", "maxLength": 30}}},
    "Device": {
        "type": "object",
        "required": ["id", "name", "device_uid", "enabled", "online", "created_at", "settings", "settings_version"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "device_uid": {"type": "string", "description": "The phone's own stable identifier."},
            "model": {"type": "string"}, "os_version": {"type": "string"}, "app_version": {"type": "string"},
            "sims": {"type": "array", "items": ref("Sim")},
            "enabled": {"type": "boolean", "description": "A disabled device takes no work."},
            "online": {"type": "boolean", "description": "It made contact within the last two minutes."},
            "created_at": {"type": "string", "description": TIMESTAMP_TEXT},
            "last_seen_at": {"type": ["string", "null"], "description": TIMESTAMP_TEXT},
            "battery_level": {"type": ["integer", "null"], "minimum": 0, "maximum": 100},
            "charging": {"type": ["boolean", "null"]},
            "signal": {"type": ["integer", "null"], "description": "Signal strength as the phone reports it (dBm)."},
            "queue_length": {"type": "integer", "description": "SMS waiting on the phone."},
            "settings": ref("DeviceSettings"),
            "settings_version": {"type": "integer", "description": "Raised by each settings change."},
            "token_hint": {"type": "string", "description": "The end of its token, to tell tokens apart."},
        },
    },
    "DeviceList": {"type": "object", "required": ["devices"],
                   "properties": {"devices": {"type": "array", "items": ref("Device")}}},
    "DevicePatch": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "name": {"type": ["string", "null"], "minLength": 1, "maxLength": 100,
                     "description": "1 to 100 characters (surrounding spaces removed); `null` keeps it."},
            "enabled": {"type": ["boolean", "null"], "description": "`null` keeps it."},
            "settings": ref("DeviceSettingsPatch"),
        },
    },
    "DeviceToken": {"type": "object", "required": ["token"], "properties": {
        "token": {"type": "string", "description": "The new device token (`sgd_…`); the old one stopped working."},
        "note": {"type": "string"}}},
    "PairingCode": {
        "type": "object", "required": ["code", "expires_at", "server_url", "pairing_uri", "qr_svg", "command"],
        "properties": {
            "code": {"type": "string", "pattern": "^[2-9A-HJ-NP-Z]{8}$",
                     "description": "8 characters to type on the phone; valid for 10 minutes, once."},
            "expires_at": date_time(),
            "server_url": {"type": "string", "format": "uri", "description": "The workspace's URL."},
            "pairing_uri": {"type": "string", "description": "`smsgw://pair?url=…&code=…`, the QR code's content."},
            "qr_svg": {"type": "string", "description": "The QR code as an SVG `data:` URI."},
            "command": {"type": "string", "description": "The companion's command line to pair."},
        },
    },
    "RegisterRequest": {
        "type": "object", "required": ["code", "device"],
        "properties": {
            "code": {"type": "string", "minLength": 8, "maxLength": 8,
                     "description": "The pairing code (case-insensitive; surrounding spaces ignored)."},
            "device": {
                "type": "object", "required": ["device_uid"],
                "description": "The phone. A code pairs a new device whatever `device_uid` says; only a code "
                               "made with \"Re-pair this phone\" on a device's dashboard page re-pairs that "
                               "device: it keeps its history and settings, and its old token stops working.",
                "properties": {
                    "device_uid": {"type": "string", "minLength": 1, "maxLength": 200},
                    "name": {"type": "string", "maxLength": 100,
                             "description": "For a new device; defaults to the model."},
                    "model": {"type": "string", "maxLength": 100},
                    "os_version": {"type": "string", "maxLength": 50},
                    "app_version": {"type": "string", "maxLength": 50},
                    "sims": {"type": "array", "maxItems": 4, "items": ref("Sim"),
                             "description": "Entries that are not a SIM with a slot from 1 to 4 are ignored."},
                },
            },
        },
    },
    "Registered": {
        "type": "object", "required": ["device_id", "token", "name", "settings", "settings_version", "server_time"],
        "properties": {
            "device_id": {"type": "integer"},
            "token": {"type": "string", "description": "The device token (`sgd_…`), shown only here."},
            "name": {"type": "string"}, "settings": ref("DeviceSettings"),
            "settings_version": {"type": "integer"}, "server_time": SERVER_TIME,
        },
    },
    "OutgoingSms": {
        "type": "object", "required": ["id", "message_id", "to", "text", "delivery_report"],
        "description": "One recipient of one message, now handed to this phone (state `processed`).",
        "properties": {
            "id": {"type": "integer", "description": "The id to report on (`message_id` in reports)."},
            "message_id": {"type": "integer", "description": "The message it belongs to."},
            "to": {"type": "string", "description": "E.164 phone number."},
            "text": {"type": "string"},
            "delivery_report": {"type": "boolean", "description": "Ask the network for a delivery report."},
            "sim_slot": _int(1, 4, "Send from this SIM; absent: the device's SIM setting decides."),
            "valid_until": date_time("Do not send after this; report `failed` instead."),
        },
    },
    "Work": {
        "type": "object", "required": ["messages", "settings_version", "settings_changed", "server_time"],
        "properties": {
            "messages": {"type": "array", "items": ref("OutgoingSms")},
            "settings_version": {"type": "integer"},
            "settings_changed": {"type": "boolean",
                                 "description": "The settings differ from `settings_version` sent: fetch them."},
            "server_time": SERVER_TIME,
        },
    },
    "Report": {
        "type": "object", "required": ["message_id", "state"],
        "properties": {
            "message_id": {"type": ["integer", "string"], "minimum": 1, "maximum": 2**63 - 1,
                           "pattern": "^[0-9]{1,18}$",
                           "description": "The `id` of the fetched item (a whole number, or its digits as text).",
                           "x-message": "must be a message id"},
            "state": {"enum": list(REPORT_STATES)},
            "error_code": {"type": ["string", "integer", "null"], "maxLength": 50,
                           "minimum": -10**49 + 1, "maximum": 10**50 - 1,
                           "x-message": "must be a short code",
                           "description": "For `failed`: Android's result code, e.g. `RADIO_OFF`. Some codes "
                                          "(GENERIC_FAILURE, RADIO_OFF, NO_SERVICE, LIMIT_EXCEEDED) make another "
                                          "phone retry."},
            "recipient": {"type": ["string", "null"], "maxLength": 32, "x-message": "must be a phone number"},
            "at": LOOSE_TIME,
        },
    },
    "ReportBatch": {"type": "object", "required": ["reports"], "properties": {
        "reports": {"type": "array", "maxItems": MAX_BATCH, "items": ref("Report"),
                    "description": "One malformed report refuses the batch."}}},
    "ReportResults": {
        "type": "object", "required": ["accepted", "results"],
        "properties": {
            "accepted": {"type": "integer"},
            "results": {"type": "array", "description": "One per report, in order.", "items": {
                "type": "object", "required": ["message_id", "status", "state"],
                "properties": {
                    "message_id": {"type": ["integer", "null"]},
                    "status": {"enum": ["applied", "ignored", "unknown", "retrying"],
                               "description": "`ignored`: repeated or late (states never move backwards); "
                                              "`unknown`: not this phone's work (any more); `retrying`: handed "
                                              "to another phone."},
                    "state": {"type": ["string", "null"], "description": "The recipient's state now."}}}},
        },
    },
    "InboundSms": {
        "type": "object", "required": ["id", "from", "body"],
        "properties": {
            "id": {"oneOf": [{"type": "string", "minLength": 1, "maxLength": 200}, {"type": "integer"}],
                   "description": "The phone's own id of the SMS: uploading it again is harmless."},
            "from": {"type": "string", "minLength": 1, "maxLength": 64},
            "body": {"type": "string", "maxLength": 10_000},
            "sim_slot": {"type": ["integer", "null"], "minimum": 1, "maximum": 4},
            "received_at": LOOSE_TIME,
        },
    },
    "InboundBatch": {"type": "object", "required": ["messages"], "properties": {
        "messages": {"type": "array", "maxItems": MAX_BATCH, "items": ref("InboundSms")}}},
    "InboundStored": {"type": "object", "required": ["stored", "duplicates"], "properties": {
        "stored": {"type": "integer"}, "duplicates": {"type": "integer", "description": "Already uploaded before."}}},
    "Heartbeat": {
        "type": "object", "description": "Any subset; `null` or absent fields are left unchanged, others ignored.",
        "properties": {
            "battery_level": {"type": ["integer", "null"], "minimum": 0, "maximum": 100},
            "charging": {"type": ["boolean", "null"]},
            "signal": {"type": ["integer", "null"], "minimum": -200, "maximum": 100},
            "queue_length": {"type": ["integer", "null"], "minimum": 0, "maximum": 1_000_000},
            "app_version": {"type": ["string", "null"], "maxLength": 50},
        },
    },
    "HeartbeatAck": {"type": "object", "required": ["settings_version", "server_time"], "properties": {
        "settings_version": {"type": "integer", "description": "Fetch the settings when it changed."},
        "server_time": SERVER_TIME}},
    "DeviceOwnSettings": {"type": "object", "required": ["settings", "settings_version", "name"], "properties": {
        "settings": ref("DeviceSettings"), "settings_version": {"type": "integer"}, "name": {"type": "string"}}},
}


def _wait_param(name, default, low, high, description):
    return param(name, "query", {"type": "integer", "minimum": low, "maximum": high, "default": default},
                 f"{description} Values outside {low}–{high} count as the nearest bound; anything but up to 10 "
                 "digits is refused (400).")


INVALID_PARAMETER = (400, "invalid-parameter", "A query parameter is not a whole number.")

PATHS = {
    "/api/device/v1/register": {"post": {
        "operationId": "deviceRegister", "tags": [PROTOCOL], "summary": "Pair a phone",
        "description": "Spend a pairing code (from `POST /api/v1/devices/pairing-codes`) and receive the device "
                       "token. Wrong codes are throttled per workspace and client address.",
        "security": PUBLIC,
        "requestBody": json_body(ref("RegisterRequest")),
        "responses": responses(
            {201: json_response("Paired.", ref("Registered"), NO_STORE)},
            WORKSPACE_ERRORS, STRAY_AUTH_ERRORS, JSON_BODY_ERRORS,
            (400, "invalid-code", "The code is not 8 characters or not valid."),
            (400, "code-used", "The code was already used."),
            (400, "code-expired", "The code expired (they last 10 minutes)."),
            (400, "device-removed", "The code re-pairs a device that was removed since."),
            (422, "validation-failed", "`device.device_uid` is missing or longer than 200 characters."),
            (429, "too-many-attempts", "Too many wrong codes; wait and try again."),
        ),
    }},
    "/api/device/v1/messages": {"get": {
        "operationId": "deviceFetch", "tags": [PROTOCOL], "summary": "Long-poll for SMS to send",
        "description": "Claims up to `limit` SMS for this phone. Without work it waits up to `wait` seconds for "
                       "some (answering at once when work arrives) and then answers an empty list. Claimed work "
                       "is this phone's until it reports it, or until the phone goes silent for two minutes and "
                       "it is handed to another. Also records contact (the device is online). A device has "
                       "one waiting poll: a newer one answers the older at once with an empty list.",
        "security": DEVICE,
        "parameters": [
            _wait_param("wait", 30, 0, 60, "Seconds to wait for work."),
            _wait_param("limit", 10, 1, 100, "The most SMS to take."),
            _wait_param("settings_version", 0, 0, 2**31 - 1,
                        "The settings version the phone has; a different one answers at once with "
                        "`settings_changed`. 0: do not compare."),
        ],
        "responses": responses(
            {200: json_response("Work (possibly none).", ref("Work"))},
            DEVICE_ERRORS, INVALID_PARAMETER,
            (403, "device-disabled", "The device was disabled or removed; pair it again."),
        ),
    }},
    "/api/device/v1/reports": {"post": {
        "operationId": "deviceReports", "tags": [PROTOCOL], "summary": "Report sent, delivered, failed",
        "description": "A batch of status reports. All are checked first: one malformed report refuses the "
                       "batch. Repeated or late reports are harmless (states never move backwards).",
        "security": DEVICE,
        "requestBody": json_body(ref("ReportBatch")),
        "responses": responses(
            {200: json_response("Applied; one result per report.", ref("ReportResults"))},
            DEVICE_ERRORS, JSON_BODY_ERRORS, BATCH_TOO_LARGE, VALIDATION,
        ),
    }},
    "/api/device/v1/inbound": {"post": {
        "operationId": "deviceInbound", "tags": [PROTOCOL], "summary": "Upload received SMS",
        "description": "Stores received SMS, deduplicated by the phone's own id, and raises `sms:received` for "
                       "new ones (opt-out keywords such as STOP are applied).",
        "security": DEVICE,
        "requestBody": json_body(ref("InboundBatch")),
        "responses": responses(
            {200: json_response("Stored.", ref("InboundStored"))},
            DEVICE_ERRORS, JSON_BODY_ERRORS, BATCH_TOO_LARGE, VALIDATION,
        ),
    }},
    "/api/device/v1/heartbeat": {"post": {
        "operationId": "deviceHeartbeat", "tags": [PROTOCOL], "summary": "Heartbeat",
        "description": "Battery, charging, signal, queue length and app version; records contact.",
        "security": DEVICE,
        "requestBody": json_body(ref("Heartbeat")),
        "responses": responses(
            {200: json_response("Recorded.", ref("HeartbeatAck"))},
            DEVICE_ERRORS, JSON_BODY_ERRORS,
            (422, "validation-failed", "A field is out of range or of the wrong type."),
        ),
    }},
    "/api/device/v1/settings": {"get": {
        "operationId": "deviceSettings", "tags": [PROTOCOL], "summary": "The phone's settings",
        "security": DEVICE,
        "responses": responses({200: json_response("The settings.", ref("DeviceOwnSettings"))}, DEVICE_ERRORS),
    }},
    "/api/device/v1/token": {"post": {
        "operationId": "deviceRotateToken", "tags": [PROTOCOL], "summary": "Rotate the device token",
        "description": "A new token for this phone; the one used for this call stops working at once. "
                       "No body.",
        "security": DEVICE,
        "responses": responses({200: json_response("The new token.", ref("DeviceToken"), NO_STORE)},
                               DEVICE_ERRORS),
    }},
    "/api/v1/devices": {"get": {
        "operationId": "listDevices", "tags": [DEVICES], "summary": "List devices",
        "description": "Every paired device that was not removed, oldest first.",
        "security": security("devices:read"),
        "responses": responses({200: json_response("The devices.", ref("DeviceList"))}, api_errors()),
    }},
    "/api/v1/devices/pairing-codes": {"post": {
        "operationId": "createPairingCode", "tags": [DEVICES], "summary": "Create a pairing code",
        "description": "A single-use code, valid for 10 minutes, to pair a phone (with the companion app, by "
                       "typing it or scanning the QR code). No body.",
        "security": security("devices:write"),
        "responses": responses({201: json_response("The code.", ref("PairingCode"), NO_STORE)},
                               api_errors(write=True)),
    }},
    "/api/v1/devices/{device_id}": {
        "parameters": [DEVICE_ID],
        "get": {
            "operationId": "getDevice", "tags": [DEVICES], "summary": "Get a device",
            "security": security("devices:read"),
            "responses": responses({200: json_response("The device.", ref("Device"))}, api_errors(), NO_DEVICE),
        },
        "patch": {
            "operationId": "updateDevice", "tags": [DEVICES], "summary": "Rename, enable or disable, change settings",
            "description": "Changes only what is sent. A settings change raises `settings_version` and wakes the "
                           "phone so it fetches them.",
            "security": security("devices:write"),
            "requestBody": json_body(ref("DevicePatch"), examples={
                "rename": {"name": "Office phone"},
                "limits": {"settings": {"limits": {"per_minute": 10}, "sim": {"mode": "fixed", "slot": 2}}}}),
            "responses": responses({200: json_response("The device as it is now.", ref("Device"))},
                                   api_errors(write=True, body=True), NO_DEVICE, VALIDATION),
        },
        "delete": {
            "operationId": "removeDevice", "tags": [DEVICES], "summary": "Remove a device",
            "description": "Its token stops working and its unreported work goes back to the queue for other "
                           "phones. Its history stays.",
            "security": security("devices:write"),
            "responses": responses({204: no_content("Removed.")}, api_errors(write=True), NO_DEVICE),
        },
    },
    "/api/v1/devices/{device_id}/token": {
        "parameters": [DEVICE_ID],
        "post": {
            "operationId": "rotateDeviceToken", "tags": [DEVICES], "summary": "Rotate a device's token",
            "description": "For a phone whose token leaked: the old token stops working at once; set the new "
                           "one on the phone. No body.",
            "security": security("devices:write"),
            "responses": responses({200: json_response("The new token.", ref("DeviceToken"), NO_STORE)},
                                   api_errors(write=True), NO_DEVICE),
        },
    },
}

TAGS = [
    {"name": DEVICES, "description": "Your paired phones: list, rename, enable or disable, settings (limits, "
                                     "delays, working hours, SIM), removal, token rotation and pairing codes."},
    {"name": PROTOCOL, "description": "What the phones speak (the companion app implements it): pair, long-poll "
                                      "for SMS to send, report their fate, upload received SMS, heartbeat. "
                                      "Authenticated with the device token."},
]


def fragment() -> dict:
    return {"paths": PATHS, "components": {"schemas": SCHEMAS}, "tags": TAGS}
