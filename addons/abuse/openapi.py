"""The abuse addon's part of the API contract: the sandbox's allowed numbers, and the problems a
send may get from it."""

from __future__ import annotations

from core.openapi import api_errors, date_time, json_body, json_response, ref, responses, security

TAG = "Abuse monitoring"

SCHEMAS = {
    "SandboxNumber": {
        "type": "object", "required": ["phone", "listed", "verified", "created_at"],
        "properties": {"phone": {"type": "string", "description": "E.164."}, "listed": {"type": "boolean"},
                       "verified": {"type": "boolean"}, "created_at": date_time()},
    },
    "SandboxNumberList": {
        "type": "object", "required": ["numbers"],
        "properties": {"numbers": {"type": "array", "items": ref("SandboxNumber")}},
    },
    "NewSandboxNumber": {
        "type": "object", "required": ["phone"], "additionalProperties": False,
        "properties": {"phone": {"type": "string", "maxLength": 40,
                                 "description": "As typed; read in the workspace's default country without `+`."}},
    },
    "ListedSandboxNumber": {
        "type": "object", "required": ["phone", "listed"],
        "properties": {"phone": {"type": "string"}, "listed": {"const": True}},
    },
    "NewSandboxCode": {
        "type": "object", "required": ["phone"], "additionalProperties": False,
        "properties": {"phone": {"type": "string", "maxLength": 40,
                                 "description": "The number to send a verification code to."}},
    },
    "SandboxCodeSent": {
        "type": "object", "required": ["phone", "expires_in", "attempts"],
        "properties": {"phone": {"type": "string"},
                       "expires_in": {"type": "integer", "description": "Seconds the code is valid."},
                       "attempts": {"type": "integer", "description": "Wrong codes allowed."}},
    },
    "SandboxCodeCheck": {
        "type": "object", "required": ["phone", "code"], "additionalProperties": False,
        "properties": {"phone": {"type": "string", "maxLength": 40},
                       "code": {"type": "string", "pattern": "^[0-9]{6}$"}},
    },
    "SandboxNumberVerified": {
        "type": "object", "required": ["phone", "verified"],
        "properties": {"phone": {"type": "string"}, "verified": {"const": True}},
    },
}

PATHS = {
    "/api/v1/abuse/sandbox/codes": {
        "post": {
            "operationId": "sendSandboxCode", "tags": [TAG], "summary": "Send a verification code to a number",
            "description": "Sends a 6-digit code to the number through the workspace's own phones (like any "
                           "message, exempt from the sandbox's list and cap). The code expires after 10 minutes, "
                           "is single-use and allows 5 wrong attempts; one code per number per minute "
                           "(`429 code-sent-recently`). Without a phone: `409 no-phone`, nothing sent.",
            "security": security("abuse:sandbox"),
            "requestBody": json_body(ref("NewSandboxCode")),
            "responses": responses({202: json_response("The code is on its way.", ref("SandboxCodeSent"))},
                                   api_errors(write=True, body=True)),
        },
    },
    "/api/v1/abuse/sandbox/verify": {
        "post": {
            "operationId": "verifySandboxNumber", "tags": [TAG], "summary": "Verify a number with its code",
            "description": "The code the number received verifies it: the sandbox then allows sends to it. A "
                           "wrong, expired or used code is `422 code-not-accepted` (the detail says which).",
            "security": security("abuse:sandbox"),
            "requestBody": json_body(ref("SandboxCodeCheck")),
            "responses": responses({200: json_response("The number, verified.", ref("SandboxNumberVerified"))},
                                   api_errors(write=True, body=True)),
        },
    },
    "/api/v1/abuse/sandbox/numbers": {
        "get": {
            "operationId": "listSandboxNumbers", "tags": [TAG], "summary": "List the sandbox's allowed numbers",
            "description": "While the workspace is in the new-workspace sandbox (an operator setting), it may "
                           "send only to these numbers, up to a daily cap; other sends get 403 "
                           "`sandbox-number-not-allowed` or `sandbox-daily-cap`.",
            "security": security("abuse:sandbox"),
            "responses": responses({200: json_response("The numbers.", ref("SandboxNumberList"))}, api_errors()),
        },
        "post": {
            "operationId": "addSandboxNumber", "tags": [TAG], "summary": "Allow a number in the sandbox",
            "security": security("abuse:sandbox"),
            "requestBody": json_body(ref("NewSandboxNumber")),
            "responses": responses({201: json_response("The number, listed.", ref("ListedSandboxNumber"))},
                                   api_errors(write=True, body=True)),
        },
    },
}

TAGS = [{"name": TAG, "description": "Accepted messages a rule holds for review have the state `held` (see "
                                     "Messages); this is the new-workspace sandbox's list of allowed numbers."}]


def fragment() -> dict:
    return {"paths": PATHS, "components": {"schemas": SCHEMAS}, "tags": TAGS}
