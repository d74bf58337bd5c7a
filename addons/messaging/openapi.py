"""The messaging addon's part of the API contract: messages, inbox, suppressions."""

from __future__ import annotations

from core.i18n import N_
from core.openapi import (api_errors, date_time, json_body, json_response, no_content, param,
                          path_id, ref, responses, security)

from .states import STATES
from .submit import MAX_BATCH, MAX_RECIPIENTS, MAX_TOTAL_RECIPIENTS
from .text import MAX_SEGMENTS

MESSAGES, INBOX, SUPPRESSIONS = "Messages", "Inbox", "Opt-outs"
PHONE = {"type": "string", "minLength": 1, "maxLength": 32,
         "description": "A phone number: E.164 (`+14155550123`) or national in the workspace's default region."}
MESSAGE_ID = path_id("message_id", "message")
INVALID_PARAMETER = (400, "invalid-parameter", "A query parameter is malformed; the detail names it.")
NO_MESSAGE = (404, "not-found", "There is no such message.")
INVALID_CURSOR = (400, "invalid-cursor", "The cursor is not one this API gave out.")
LIMIT = param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
              "Page size.")
CURSOR = param("cursor", "query", {"type": "string"}, "The `next_cursor` of the previous page.")
NEXT_CURSOR = {"type": ["string", "null"], "description": "Pass as `cursor` for the next page; `null`: no more."}
ISO_PARAM = {"type": "string", "format": "date-time"}
REMOVABLE_TEXT = {"type": ["string", "null"],
                  "description": "`null` once the workspace's message-text retention removed it (see `redacted_at`)."}
REDACTED_AT = date_time("When retention removed the text; `null` while it is kept.", null=True)

SCHEMAS = {
    "SendMessage": {
        "type": "object", "required": ["text", "to"], "additionalProperties": False,
        "properties": {
            "text": {"type": "string", "minLength": 1, "maxLength": 1530, "pattern": "\\S",
                     "description": f"The SMS text, not blank. GSM-7 if every character allows it, else UCS-2; "
                                    f"at most {MAX_SEGMENTS} segments (1530 GSM-7 or 670 UCS-2 units).",
                     "x-message": {"minLength": N_("is required and must not be empty"),
                                   "pattern": N_("is required and must not be empty"),
                                   "maxLength": f"is too long: at most {MAX_SEGMENTS} segments (1530 GSM-7 or "
                                                "670 UCS-2 characters)"}},
            # Any text is a number to judge: invalid ones are listed in `rejected`, not refused.
            # Text or a list: keywords for lists apply to lists only (cheaper to check than a oneOf).
            "to": {"type": ["string", "array"], "minItems": 1, "maxItems": MAX_RECIPIENTS,
                   "items": {"description": "A phone number as text; entries that are not (valid) numbers are "
                                            "listed in `rejected`."},
                   "description": f"One number (text) or a list of up to {MAX_RECIPIENTS}. Duplicates are sent "
                                  "once; invalid numbers are listed in `rejected` while the others are sent.",
                   "x-message": {"type": N_("give one or more phone numbers"),
                                 "minItems": N_("give one or more phone numbers"),
                                 "maxItems": f"at most {MAX_RECIPIENTS} recipients per message"}},
            "device_id": {"type": "integer", "minimum": 1, "maximum": 2**62,
                          "description": "Send only through this (enabled) device."},
            "sim_slot": {"type": "integer", "minimum": 1, "maximum": 4, "description": "Send from this SIM."},
            "priority": {"type": "integer", "minimum": -100, "maximum": 100, "default": 0,
                         "description": "Higher goes first."},
            "ttl": {"type": "integer", "minimum": 1, "maximum": 30 * 86400,
                    "description": "Seconds (from `send_at`, or now) after which unsent SMS expire. Not with "
                                   "`valid_until`."},
            "valid_until": {"type": "string", "format": "date-time", "maxLength": 40,
                            "description": "Unsent SMS expire then; in the future and after `send_at`."},
            "send_at": {"type": "string", "format": "date-time", "maxLength": 40,
                        "description": "Schedule: not sent before this (at most a year ahead)."},
            "delivery_report": {"type": "boolean", "default": True,
                                "description": "Ask the network for delivery reports."},
            "reference": {"type": "string", "maxLength": 100,
                          "description": "Your own reference, returned in events and filterable."},
        },
    },
    "SendBatch": {
        "type": "object", "required": ["messages"], "additionalProperties": False,
        "properties": {"messages": {"type": "array", "minItems": 1, "maxItems": MAX_BATCH,
                                    "items": ref("SendMessage"),
                                    "description": f"Up to {MAX_BATCH} messages and {MAX_TOTAL_RECIPIENTS} "
                                                   "recipients in all; one invalid message refuses the batch."}},
    },
    "RejectedRecipient": {
        "type": "object", "required": ["input", "reason"],
        "properties": {"input": {"type": "string"}, "index": {"type": "integer", "description": "Its place in `to`."},
                       "reason": {"type": "string"}},
    },
    "AcceptedMessage": {
        "type": "object",
        "required": ["id", "state", "created_at", "text", "encoding", "segments", "recipients", "rejected"],
        "properties": {
            "id": {"type": "integer"}, "state": {"enum": ["pending", "held"],
                                                  "description": "`held` when a recipient is held for review."},
            "created_at": date_time(),
            "text": {"type": "string"}, "encoding": {"enum": ["GSM-7", "UCS-2"]},
            "segments": {"type": "integer", "minimum": 1},
            "reference": {"type": ["string", "null"]},
            "send_at": date_time(null=True), "valid_until": date_time(null=True),
            "recipients": {"type": "array", "items": {
                "type": "object", "required": ["id", "phone", "state"],
                "properties": {"id": {"type": "integer"}, "phone": {"type": "string"},
                               "state": {"enum": ["pending", "held"]},
                               "hold_reason": {"type": "string", "description": "Why it is held (abuse "
                                                                                 "monitoring)."}}}},
            "rejected": {"type": "array", "items": ref("RejectedRecipient"),
                         "description": "Numbers that were not accepted (invalid, or opted out)."},
        },
    },
    "RejectedMessage": {
        "type": "object", "required": ["id", "state", "recipients", "rejected"],
        "description": "In a batch: a message none of whose recipients can receive it.",
        "properties": {
            "id": {"type": "null"}, "state": {"const": "rejected"},
            "recipients": {"type": "array", "maxItems": 0},
            "rejected": {"type": "array", "items": ref("RejectedRecipient")},
            "encoding": {"enum": ["GSM-7", "UCS-2"]}, "segments": {"type": "integer"},
            "reference": {"type": ["string", "null"]},
        },
    },
    "AcceptedBatch": {
        "type": "object", "required": ["messages"],
        "properties": {"messages": {"type": "array", "items": {
            "oneOf": [ref("AcceptedMessage"), ref("RejectedMessage")]}}},
    },
    "RecipientEvent": {
        "type": "object", "required": ["at", "from", "to", "source"],
        "properties": {
            "at": date_time(), "from": {"type": ["string", "null"]}, "to": {"enum": list(STATES)},
            "source": {"type": "string", "description": "Who moved it: `api`, `claim`, `device`, `retry`, "
                                                        "`handback`, `unclaimed`, `sweeper`, ..."},
            "device_id": {"type": ["integer", "null"]}, "error_code": {"type": ["string", "null"]},
            "reported_at": date_time("When the phone says it happened.", null=True),
        },
    },
    "Recipient": {
        "type": "object",
        "required": ["id", "phone", "state", "attempts", "updated_at"],
        "properties": {
            "id": {"type": "integer"}, "phone": {"type": "string", "description": "E.164."},
            "state": {"enum": list(STATES), "description": "pending → processed (handed to a phone) → sent → "
                                                          "delivered; or failed, cancelled, expired. `held`: accepted "
                                                          "but kept from the phones for review "
                                                          "(`hold_reason` says why) until released "
                                                          "(then pending) or rejected (then failed "
                                                          "with `held-rejected`)."},
            "hold_reason": {"type": ["string", "null"], "description": "Why it is or was held."},
            "device_id": {"type": ["integer", "null"]}, "sim_slot": {"type": ["integer", "null"]},
            "attempts": {"type": "integer"}, "error_code": {"type": ["string", "null"]},
            "updated_at": date_time(), "sent_at": date_time(null=True), "delivered_at": date_time(null=True),
            "failed_at": date_time(null=True),
            "waiting_reason": {"type": ["string", "null"],
                               "description": "For pending recipients: why it is not on its way yet, in words."},
            "history": {"type": "array", "items": ref("RecipientEvent"),
                        "description": "Every state change (only when reading one message)."},
        },
    },
    "Message": {
        "type": "object",
        "required": ["id", "state", "created_at", "text", "encoding", "segments", "priority", "delivery_report",
                     "recipients"],
        "properties": {
            "id": {"type": "integer"},
            "state": {"enum": list(STATES), "description": "The least advanced state of its recipients."},
            "created_at": date_time(), "text": REMOVABLE_TEXT, "redacted_at": REDACTED_AT,
            "encoding": {"enum": ["GSM-7", "UCS-2"]},
            "segments": {"type": "integer"}, "priority": {"type": "integer"},
            "reference": {"type": ["string", "null"]}, "device_id": {"type": ["integer", "null"]},
            "sim_slot": {"type": ["integer", "null"]}, "send_at": date_time(null=True),
            "valid_until": date_time(null=True), "delivery_report": {"type": "boolean"},
            "campaign_id": {"type": ["integer", "null"],
                            "description": "The dashboard campaign (CSV upload, send to several numbers) it is part of."},
            "recipients": {"type": "array", "items": ref("Recipient")},
        },
    },
    "CancelledMessage": {
        "allOf": [ref("Message")],
        "required": ["cancelled"],
        "properties": {"cancelled": {"type": "integer", "description": "How many recipients were cancelled."},
                       "cancelling": {"type": "integer",
                                      "description": "How many recipients a phone holds and was asked to cancel "
                                                     "(phones on the Android app from version 1.67); they end "
                                                     "as the phone reports."}},
    },
    "MessagePage": {"type": "object", "required": ["messages", "next_cursor"], "properties": {
        "messages": {"type": "array", "items": ref("Message")}, "next_cursor": NEXT_CURSOR}},
    "InboxMessage": {
        "type": "object", "required": ["id", "from", "body", "device_id", "received_at"],
        "properties": {
            "id": {"type": "integer"}, "from": {"type": "string"}, "body": REMOVABLE_TEXT,
            "device_id": {"type": "integer"}, "sim_slot": {"type": ["integer", "null"]},
            "received_at": date_time(), "phone_message_id": {"type": "string"}, "redacted_at": REDACTED_AT,
        },
    },
    "InboxPage": {"type": "object", "required": ["messages", "next_cursor"], "properties": {
        "messages": {"type": "array", "items": ref("InboxMessage")}, "next_cursor": NEXT_CURSOR}},
    "Suppression": {
        "type": "object", "required": ["phone", "reason", "source", "created_at"],
        "properties": {"phone": {"type": "string"}, "reason": {"type": "string"},
                       "source": {"enum": ["manual", "keyword"],
                                  "description": "`keyword`: the number replied STOP (START removes it)."},
                       "created_at": date_time()},
    },
    "SuppressionList": {"type": "object", "required": ["suppressions"], "properties": {
        "suppressions": {"type": "array", "items": ref("Suppression")}}},
    "RetryMessage": {
        "type": "object", "additionalProperties": False,
        "properties": {"device_id": {"type": "integer", "minimum": 1,
                                     "description": "Send through this phone; without it, any phone."}},
    },
    "NewSuppression": {
        "type": "object", "required": ["phone"],
        "properties": {"phone": PHONE, "reason": {"type": "string", "maxLength": 200, "default": ""}},
    },
    "SuppressionAdded": {"type": "object", "required": ["phone", "reason"], "properties": {
        "phone": {"type": "string", "description": "E.164."}, "reason": {"type": "string"}}},
}

IDEMPOTENCY_KEY = param(
    "Idempotency-Key", "header", {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    "Makes retries safe: within 24 hours, the same key with the same body returns the first answer; with "
    "another body it is refused (422).")

PATHS = {
    "/api/v1/messages": {
        "post": {
            "operationId": "sendMessages", "tags": [MESSAGES], "summary": "Send SMS",
            "description": "Accepts one message (`SendMessage`) or a batch (`{\"messages\": [...]}`), stores it "
                           "durably and answers 202; phones pick it up at once (or at `send_at`). Follow it with "
                           "`GET /api/v1/messages/{message_id}` or the `sms:*` webhooks. Numbers that opted out "
                           "are rejected.",
            "security": security("messages:send"),
            "parameters": [IDEMPOTENCY_KEY],
            "requestBody": json_body({"oneOf": [ref("SendMessage"), ref("SendBatch")]}, examples={
                "one": {"text": "Your code is 123456", "to": "+14155550123"},
                "batch": {"messages": [{"text": "Hi Ann", "to": ["+14155550123"], "reference": "a-1"},
                                       {"text": "Hi Bob", "to": "+14155550124", "send_at": "2026-12-01T09:00:00Z"}]},
            }),
            "responses": responses(
                {202: json_response(
                    "Accepted: the message (or, for a batch, `{\"messages\": [...]}`), its recipients pending.",
                    {"oneOf": [ref("AcceptedMessage"), ref("AcceptedBatch")]},
                    {"Idempotency-Key": {"description": "Echoed when sent.", "schema": {"type": "string"}}})},
                api_errors(write=True, body=True),
                (400, "invalid-idempotency-key", "`Idempotency-Key` is not 1 to 255 printable characters."),
                (402, "quota-exceeded", "Refused before anything was stored by an addon that answers "
                                        "`smsgw_messages_submitting`: with billing, a hard-stop plan's included "
                                        "segments would be exceeded (`limit`, `included`, `used`, `requested`, "
                                        "`upgrade_url`), or the subscription is suspended or cancelled (codes "
                                        "`subscription-suspended`, `subscription-cancelled`)."),
                (409, "idempotency-in-flight", "A request with this key is still being processed; retry shortly."),
                (409, "sending-paused", "The workspace does not send now: its owner paused sending, or it is "
                                        "scheduled for deletion (`detail` says which); nothing was stored."),
                (413, "batch-too-large", f"More than {MAX_BATCH} messages in one batch."),
                (422, "validation-failed", "Invalid fields (each listed in `errors`, batch fields as "
                                           "`messages[i].field`), or a requested device is missing or disabled; "
                                           "nothing was sent."),
                (422, "no-recipients", "No recipient can receive it: all invalid or opted out."),
                (422, "idempotency-key-reused", "This key was used with a different body."),
            ),
        },
        "get": {
            "operationId": "listMessages", "tags": [MESSAGES], "summary": "List messages",
            "description": "Newest first, with their recipients.",
            "security": security("messages:read"),
            "parameters": [
                LIMIT, CURSOR,
                param("reference", "query", {"type": "string"}, "Only messages with this reference."),
                param("since", "query", ISO_PARAM, "Created at or after (ISO 8601; UTC without an offset)."),
                param("until", "query", ISO_PARAM, "Created before."),
                param("state", "query", {"enum": list(STATES)}, "Having a recipient in this state."),
                param("device_id", "query", {"type": "integer", "minimum": 0},
                      "Having a recipient handed to this device."),
                param("phone", "query", PHONE, "Having this recipient."),
                param("number", "query", {"type": "string", "maxLength": 200},
                      "Having a recipient whose number contains these digits (`+` first: starts with them)."),
                param("q", "query", {"type": "string", "maxLength": 100},
                      "Whose text contains this (case-insensitive; `%` and `_` are plain characters)."),
                param("campaign", "query", {"type": "integer", "minimum": 1},
                      "From this campaign (a CSV upload or a send to several numbers from the dashboard)."),
            ],
            "responses": responses({200: json_response("A page of messages.", ref("MessagePage"))},
                                   api_errors(), INVALID_PARAMETER, INVALID_CURSOR),
        },
    },
    "/api/v1/messages/{message_id}": {
        "parameters": [MESSAGE_ID],
        "get": {
            "operationId": "getMessage", "tags": [MESSAGES], "summary": "Get a message",
            "description": "With each recipient's state history and, while pending, why it waits.",
            "security": security("messages:read"),
            "responses": responses({200: json_response("The message.", ref("Message"))}, api_errors(), NO_MESSAGE),
        },
    },
    "/api/v1/messages/{message_id}/cancel": {
        "parameters": [MESSAGE_ID],
        "post": {
            "operationId": "cancelMessage", "tags": [MESSAGES], "summary": "Cancel a message",
            "description": "Cancels every recipient still pending (including scheduled ones). Those already "
                           "handed to a phone are called back only from a phone whose app can cancel (the Android app from "
                           "1.67: `cancelling` counts them); otherwise the refusal says why. Cancelling a cancelled message again "
                           "answers 200 with `cancelled: 0`. No body.",
            "security": security("messages:send"),
            "responses": responses(
                {200: json_response("The message after cancelling.", ref("CancelledMessage"))},
                api_errors(write=True), NO_MESSAGE,
                (409, "not-cancellable", "Nothing is pending any more (and the message is not cancelled): "
                                         "it was handed to a phone, sent or finished."),
            ),
        },
    },
    "/api/v1/messages/{message_id}/retry": {
        "parameters": [MESSAGE_ID],
        "post": {
            "operationId": "retryMessage", "tags": [MESSAGES], "summary": "Send a failed message again",
            "description": "Stores a new message with the same text, reference and priority to the recipients "
                           "that failed, on any phone or on `device_id` (the failed ones stay failed: their "
                           "history is kept). It is a send like any other: opt-outs, quotas and a paused "
                           "workspace refuse it the same way. The body is optional.",
            "security": security("messages:send"),
            "requestBody": json_body(ref("RetryMessage"), required=False),
            "responses": responses(
                {202: json_response("The new message.", ref("AcceptedMessage"))},
                api_errors(write=True, body=True), NO_MESSAGE,
                (409, "nothing-to-retry", "No recipient of the message failed."),
                (409, "text-removed", "Retention removed the text; it cannot be sent again."),
                (409, "sending-paused", "The workspace does not send now; nothing was stored."),
                (422, "validation-failed", "The requested device is missing or disabled; nothing was sent."),
            ),
        },
    },
    "/api/v1/inbox": {"get": {
        "operationId": "listInbox", "tags": [INBOX], "summary": "Received SMS",
        "description": "SMS your phones received, newest first.",
        "security": security("messages:read"),
        "parameters": [
            LIMIT, CURSOR,
            param("from", "query", {"type": "string"}, "Only from this sender (as sent, or normalised to E.164)."),
            param("device_id", "query", {"type": "integer", "minimum": 0}, "Only received by this device."),
            param("since", "query", ISO_PARAM, "Received at or after."),
        ],
        "responses": responses({200: json_response("A page of received SMS.", ref("InboxPage"))},
                               api_errors(), INVALID_PARAMETER, INVALID_CURSOR),
    }},
    "/api/v1/suppressions": {
        "get": {
            "operationId": "listSuppressions", "tags": [SUPPRESSIONS], "summary": "List opted-out numbers",
            "description": "Numbers no SMS is sent to: added by hand, or because they replied STOP.",
            "security": security("messages:read"),
            "responses": responses({200: json_response("The list, newest first.", ref("SuppressionList"))},
                                   api_errors()),
        },
        "post": {
            "operationId": "addSuppression", "tags": [SUPPRESSIONS], "summary": "Add an opted-out number",
            "description": "Adding a number already listed updates its reason.",
            "security": security("settings:write"),
            "requestBody": json_body(ref("NewSuppression")),
            "responses": responses({201: json_response("Added.", ref("SuppressionAdded"))},
                                   api_errors(write=True, body=True),
                                   (422, "validation-failed", "`phone` is not a valid number or `reason` is "
                                                              "longer than 200 characters.")),
        },
    },
    "/api/v1/suppressions/{phone}": {
        "parameters": [param("phone", "path", {"type": "string", "minLength": 1, "maxLength": 64},
                             "The number (URL-encoded; `+` as `%2B`).")],
        "delete": {
            "operationId": "removeSuppression", "tags": [SUPPRESSIONS], "summary": "Remove an opted-out number",
            "security": security("settings:write"),
            "responses": responses({204: no_content("Removed: SMS to it are sent again.")},
                                   api_errors(write=True),
                                   (404, "not-found", "The number is not on the list (or not a number).")),
        },
    },
}

TAGS = [
    {"name": MESSAGES, "description": "Send SMS through your phones and follow each recipient's state."},
    {"name": INBOX, "description": "SMS your phones received."},
    {"name": SUPPRESSIONS, "description": "Numbers that opted out (STOP) or that you blocked: nothing is sent to "
                                          "them."},
]

def fragment() -> dict:
    return {"paths": PATHS, "components": {"schemas": SCHEMAS}, "tags": TAGS}
