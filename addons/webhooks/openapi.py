"""The webhooks addon's part of the API contract: ``/api/v1/webhooks`` and the events we POST."""

from __future__ import annotations

from core.openapi import (NO_STORE, api_errors, date_time, json_body, json_response, no_content, param, path_id,
                          ref, responses, security)

from .sender import TIMEOUT, USER_AGENT
from .service import EVENTS, OVERLAP, SCHEDULE

TAG = "Webhooks"
EVENT_NAME = {"enum": list(EVENTS)}
WEBHOOK_ID = path_id("webhook_id", "webhook")
NO_WEBHOOK = (404, "not-found", "There is no such webhook.")
INVALID = (422, "validation-failed", "A field is invalid (each listed in `errors`): an unknown field, a URL that "
                                     "is not `http(s)://`, does not resolve or reaches a private, loopback or "
                                     "metadata address, or an unknown event. Nothing was saved.")
URL = {"type": "string", "format": "uri", "minLength": 8, "maxLength": 2000,
       "description": "Where to POST events: `https://` (or `http://`), no credentials in it, a public address."}

SCHEMAS = {
    "Webhook": {
        "type": "object",
        "required": ["id", "url", "description", "events", "enabled", "device_id", "disabled_reason",
                     "failing_since", "created_at", "secret_rotation_until"],
        "properties": {
            "id": {"type": "integer"}, "url": {"type": "string"}, "description": {"type": "string"},
            "events": {"type": "array", "items": EVENT_NAME},
            "enabled": {"type": "boolean"},
            "device_id": {"type": ["integer", "null"], "description": "Only events of this device."},
            "disabled_reason": {"type": ["string", "null"],
                                "description": "Why we disabled it (410 Gone, or failing for 5 days)."},
            "failing_since": date_time("Deliveries have failed since then.", null=True),
            "created_at": date_time(),
            "secret_rotation_until": date_time("During a rotation, the previous secret also signs until then.",
                                               null=True),
        },
    },
    "WebhookCreated": {
        "allOf": [ref("Webhook")], "required": ["secret"],
        "properties": {"secret": {"type": "string", "pattern": "^whsec_",
                                  "description": "The signing secret (`whsec_<base64>`), shown only now."}},
    },
    "WebhookList": {"type": "object", "required": ["webhooks"], "properties": {
        "webhooks": {"type": "array", "items": ref("Webhook")}}},
    "NewWebhook": {
        "type": "object", "required": ["url", "events"], "additionalProperties": False,
        "properties": {
            "url": URL,
            "events": {"type": "array", "minItems": 1, "items": EVENT_NAME, "description": "Duplicates count once."},
            "description": {"type": "string", "maxLength": 200, "default": ""},
            "device_id": {"type": ["integer", "null"], "minimum": 1,
                          "description": "Only events of this device (others always)."},
        },
    },
    "WebhookPatch": {
        "type": "object", "additionalProperties": False,
        "description": "Only what changes. Enabling clears `disabled_reason` and `failing_since`.",
        "properties": {
            "url": URL, "events": {"type": "array", "minItems": 1, "items": EVENT_NAME},
            "description": {"type": "string", "maxLength": 200}, "enabled": {"type": "boolean"},
        },
    },
    "SecretRotated": {
        "type": "object", "required": ["secret", "previous_secret_valid_for_hours"],
        "properties": {"secret": {"type": "string", "pattern": "^whsec_"},
                       "previous_secret_valid_for_hours": {"type": "integer"}},
    },
    "DeliveryQueued": {"type": "object", "required": ["delivery_id"], "properties": {
        "delivery_id": {"type": "integer"},
        "webhook_id": {"type": "string", "description": "The event's id: the `webhook-id` header of every attempt."}}},
    "Delivery": {
        "type": "object",
        "required": ["id", "webhook_id", "event", "state", "attempts", "next_attempt_at", "created_at", "history"],
        "properties": {
            "id": {"type": "integer"},
            "webhook_id": {"type": "string",
                           "description": "The event's id (`msg_…`), sent as the `webhook-id` header."},
            "event": EVENT_NAME,
            "state": {"enum": ["pending", "succeeded", "failed"]},
            "attempts": {"type": "integer"},
            "next_attempt_at": date_time("While pending.", null=True),
            "last_status": {"type": ["integer", "null"], "description": "The HTTP status of the last attempt."},
            "last_error": {"type": ["string", "null"]},
            "created_at": date_time(),
            "history": {"type": "array", "items": {
                "type": "object", "required": ["attempt", "trigger", "at"],
                "properties": {"attempt": {"type": "integer"}, "trigger": {"type": "string"}, "at": date_time(),
                               "status": {"type": ["integer", "null"]}, "duration_ms": {"type": ["integer", "null"]},
                               "error": {"type": ["string", "null"]}}}},
        },
    },
    "DeliveryList": {"type": "object", "required": ["deliveries"], "properties": {
        "deliveries": {"type": "array", "items": ref("Delivery"), "description": "The last 100, newest first."}}},
    # -- what we send --------------------------------------------------------------
    "MessageEventData": {
        "type": "object",
        "required": ["message_id", "recipient_id", "phone", "state", "device_id", "error_code", "reference", "at"],
        "properties": {
            "message_id": {"type": "integer"}, "recipient_id": {"type": "integer"},
            "phone": {"type": "string", "description": "E.164."}, "state": {"type": "string"},
            "device_id": {"type": ["integer", "null"]},
            "error_code": {"type": ["string", "null"], "description": "For `sms:failed`: why "
                                                                        "(`held-rejected`: held for review "
                                                                        "and rejected)."},
            "hold_reason": {"type": "string", "description": "For `sms:held`: why it is held."},
            "reference": {"type": ["string", "null"], "description": "The message's `reference`."},
            "at": date_time("When it happened (as the phone reported it, where it did)."),
        },
    },
    "ReceivedEventData": {
        "type": "object", "required": ["inbound_id", "from", "body", "device_id", "received_at", "at"],
        "properties": {
            "inbound_id": {"type": "integer", "description": "Its id in `GET /api/v1/inbox`."},
            "from": {"type": "string", "description": "E.164 where it could be normalised."},
            "body": {"type": ["string", "null"],
                     "description": "`null` in an event redelivered after the workspace's message-text retention "
                                    "removed the text."}, "device_id": {"type": "integer"},
            "sim_slot": {"type": ["integer", "null"]}, "received_at": date_time(),
            "keyword": {"enum": ["stop", "start", None],
                        "description": "`stop`: the sender opted out (added to the opt-outs); `start`: opted in."},
            "at": date_time(),
        },
    },
    "DeviceEventData": {"type": "object", "required": ["device_id", "name"], "properties": {
        "device_id": {"type": "integer"}, "name": {"type": "string"}}},
    "PingEventData": {"type": "object", "required": ["message", "webhook"], "properties": {
        "message": {"type": "string"}, "webhook": {"type": "integer", "description": "The webhook's id."}}},
}

EVENT_DOCS = {
    "sms:received": ("ReceivedEventData", "A phone received an SMS."),
    "sms:held": ("MessageEventData", "A recipient was held for review (abuse monitoring; `hold_reason` says "
                                     "why): it is sent after a release, or fails with `held-rejected`."),
    "sms:sent": ("MessageEventData", "A phone sent an SMS to one recipient."),
    "sms:delivered": ("MessageEventData", "The network confirmed delivery to one recipient."),
    "sms:failed": ("MessageEventData", "Sending to one recipient failed for good (after any retries on other "
                                       "phones)."),
    "sms:cancelled": ("MessageEventData", "A pending recipient was cancelled."),
    "sms:expired": ("MessageEventData", "A recipient was not sent before its `valid_until`."),
    "device:online": ("DeviceEventData", "A phone made contact after being offline."),
    "device:offline": ("DeviceEventData", "A phone missed its expected contact (two minutes); its unreported "
                                          "work goes to other phones."),
    "system:ping": ("PingEventData", "A test event (`POST /api/v1/webhooks/{webhook_id}/ping`); sent whatever "
                                     "the webhook subscribes to."),
}

for _event, (_data, _text) in EVENT_DOCS.items():
    SCHEMAS["Event_" + _event.replace(":", "_")] = {
        "type": "object", "required": ["type", "timestamp", "data"], "description": _text,
        "properties": {"type": {"const": _event}, "timestamp": date_time("When the event was recorded."),
                       "data": ref(_data)},
    }

SIGNATURE_HEADERS = [
    param("webhook-id", "header", {"type": "string", "pattern": "^msg_[0-9a-f]{32}$"},
          "The event's id, the same on every retry and redelivery: deduplicate on it.", required=True),
    param("webhook-timestamp", "header", {"type": "string", "pattern": "^[0-9]+$"},
          "Epoch seconds of this attempt; refuse ones too far from your clock (e.g. 5 minutes).", required=True),
    param("webhook-signature", "header", {"type": "string"},
          "`v1,<base64 HMAC-SHA256>` of `<webhook-id>.<webhook-timestamp>.<body>` keyed with the secret's bytes "
          "(base64 after `whsec_`). During a secret rotation two signatures are sent, separated by a space: "
          "accept the request if either matches.", required=True),
    param("User-Agent", "header", {"const": USER_AGENT}, "Who is calling."),
]

RETRY_TEXT = ("Anything else, or no complete answer within {timeout:g} seconds (connecting, sending and your "
              "whole answer together; an operator may set less), is retried about {schedule} later "
              "(with jitter; a `Retry-After` header is honoured up to a day). After the last attempt, or when "
              "every delivery has failed for 5 days, the delivery fails and the webhook is disabled.")


def _hours(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


WEBHOOKS = {
    event: {"post": {
        "operationId": "event_" + event.replace(":", "_"), "tags": [TAG], "summary": event,
        "description": text + " Sent as a signed POST (Standard Webhooks) to each enabled webhook subscribed to "
                              "it (and, with `device_id`, only for that device's events).",
        "parameters": SIGNATURE_HEADERS,
        "requestBody": json_body(ref("Event_" + event.replace(":", "_"))),
        "responses": {
            "2XX": {"description": "Received: the delivery succeeded. Answer quickly; work afterwards."},
            "410": {"description": "Gone: we disable the webhook and stop sending."},
            "default": {"description": RETRY_TEXT.format(timeout=TIMEOUT,
                                                         schedule=", ".join(_hours(s) for s in SCHEDULE))},
        },
    }}
    for event, (data, text) in EVENT_DOCS.items()
}

PATHS = {
    "/api/v1/webhooks": {
        "get": {
            "operationId": "listWebhooks", "tags": [TAG], "summary": "List webhooks",
            "security": security("webhooks:read"),
            "responses": responses({200: json_response("The webhooks.", ref("WebhookList"))}, api_errors()),
        },
        "post": {
            "operationId": "createWebhook", "tags": [TAG], "summary": "Create a webhook",
            "description": "Answers the signing secret once; store it to verify our signatures. The URL must "
                           "reach a public address (self-hosters may allow private ones).",
            "security": security("webhooks:write"),
            "requestBody": json_body(ref("NewWebhook"), examples={
                "received": {"url": "https://example.com/hooks/sms", "events": ["sms:received", "sms:failed"]}}),
            "responses": responses({201: json_response("Created.", ref("WebhookCreated"), NO_STORE)},
                                   api_errors(write=True, body=True), INVALID),
        },
    },
    "/api/v1/webhooks/{webhook_id}": {
        "parameters": [WEBHOOK_ID],
        "get": {
            "operationId": "getWebhook", "tags": [TAG], "summary": "Get a webhook",
            "security": security("webhooks:read"),
            "responses": responses({200: json_response("The webhook.", ref("Webhook"))}, api_errors(), NO_WEBHOOK),
        },
        "patch": {
            "operationId": "updateWebhook", "tags": [TAG], "summary": "Change or re-enable a webhook",
            "security": security("webhooks:write"),
            "requestBody": json_body(ref("WebhookPatch")),
            "responses": responses({200: json_response("The webhook as it is now.", ref("Webhook"))},
                                   api_errors(write=True, body=True), NO_WEBHOOK, INVALID),
        },
        "delete": {
            "operationId": "deleteWebhook", "tags": [TAG], "summary": "Delete a webhook",
            "description": "With its delivery log; nothing more is sent to it.",
            "security": security("webhooks:write"),
            "responses": responses({204: no_content("Deleted.")}, api_errors(write=True), NO_WEBHOOK),
        },
    },
    "/api/v1/webhooks/{webhook_id}/rotate-secret": {
        "parameters": [WEBHOOK_ID],
        "post": {
            "operationId": "rotateWebhookSecret", "tags": [TAG], "summary": "Rotate the signing secret",
            "description": f"A new secret, shown once. For {int(OVERLAP.total_seconds() // 3600)} hours both the "
                           "new and the previous secret sign each request (two signatures), so you can switch "
                           "without losing events. No body.",
            "security": security("webhooks:write"),
            "responses": responses({200: json_response("The new secret.", ref("SecretRotated"), NO_STORE)},
                                   api_errors(write=True), NO_WEBHOOK),
        },
    },
    "/api/v1/webhooks/{webhook_id}/ping": {
        "parameters": [WEBHOOK_ID],
        "post": {
            "operationId": "pingWebhook", "tags": [TAG], "summary": "Send a test event",
            "description": "Queues a `system:ping` to this webhook, whatever it subscribes to; follow it in the "
                           "deliveries. No body.",
            "security": security("webhooks:write"),
            "responses": responses({202: json_response("Queued.", ref("DeliveryQueued"))},
                                   api_errors(write=True), NO_WEBHOOK),
        },
    },
    "/api/v1/webhooks/{webhook_id}/deliveries": {
        "parameters": [WEBHOOK_ID],
        "get": {
            "operationId": "listWebhookDeliveries", "tags": [TAG], "summary": "Delivery log",
            "description": "The last 100 deliveries to this webhook with every attempt.",
            "security": security("webhooks:read"),
            "responses": responses({200: json_response("The deliveries.", ref("DeliveryList"))}, api_errors(),
                                   NO_WEBHOOK),
        },
    },
    "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver": {
        "parameters": [WEBHOOK_ID, path_id("delivery_id", "delivery")],
        "post": {
            "operationId": "redeliverWebhook", "tags": [TAG], "summary": "Deliver again",
            "description": "Queues another attempt now, with the same `webhook-id` (receivers deduplicate). "
                           "No body.",
            "security": security("webhooks:write"),
            "responses": responses({202: json_response("Queued.", ref("DeliveryQueued"))},
                                   api_errors(write=True), NO_WEBHOOK,
                                   (404, "not-found", "There is no such delivery to this webhook.")),
        },
    },
}

TAGS = [{"name": TAG, "description": "Get events POSTed to your URL, signed per Standard Webhooks "
                                     "(`webhook-id`, `webhook-timestamp`, `webhook-signature`), retried with "
                                     "backoff; manage endpoints, rotate secrets, read the delivery log. "
                                     "Webhooks registered through the compatibility API (when installed) get that "
                                     "API's own envelope instead."}]


def fragment() -> dict:
    return {"paths": PATHS, "components": {"schemas": SCHEMAS}, "tags": TAGS, "webhooks": WEBHOOKS}
