"""The usage addon's part of the API contract: ``GET /api/v1/usage``."""

from __future__ import annotations

from core.openapi import api_errors, json_response, param, responses, security

from .service import COLUMNS, MAX_DAYS

TAG = "Usage"
COUNT = {"type": "integer", "minimum": 0}
PERCENTILES = {
    "type": "object", "required": ["count", "p50", "p95"],
    "properties": {"count": COUNT, "p50": {"type": ["number", "null"]}, "p95": {"type": ["number", "null"]}},
}
DAY = {"type": "string", "format": "date"}

SCHEMAS = {
    "UsageDay": {
        "type": "object",
        "required": ["day", "active_devices"] + [c for c, _m, _f in COLUMNS],
        "properties": {"day": DAY, "active_devices": COUNT, **{c: COUNT for c, _m, _f in COLUMNS}},
    },
    "Usage": {
        "type": "object",
        "required": ["from", "to", "granularity", "days", "totals", "devices", "api_calls", "performance"],
        "properties": {
            "from": DAY, "to": DAY, "granularity": {"enum": ["day"]},
            "days": {"type": "array", "items": {"$ref": "#/components/schemas/UsageDay"},
                     "description": "One entry per day, oldest first, days without activity included."},
            "totals": {"type": "object", "additionalProperties": COUNT},
            "devices": {"type": "array", "description": "Per phone and day: recipients submitted for it, "
                                                        "sent, delivered, failed (and their segments), inbound.",
                        "items": {"type": "object", "additionalProperties": {"type": ["integer", "string"]}}},
            "api_calls": {"type": "array", "description": "API calls per credential (`token:<id>`, `device:<id>`, "
                                                          "`user` for members' own sign-ins) and endpoint family.",
                          "items": {"type": "object", "required": ["credential", "family", "calls"],
                                    "properties": {"credential": {"type": "string"}, "family": {"type": "string"},
                                                   "calls": COUNT}}},
            "performance": {"type": "object", "required": ["api_latency_ms", "delivery_ms"],
                            "properties": {"api_latency_ms": PERCENTILES, "delivery_ms": PERCENTILES}},
        },
    },
}

INVALID = (400, "invalid-parameter", f"`from`/`to` is not a date (YYYY-MM-DD), `from` is after `to`, the range is "
                                     f"longer than {MAX_DAYS} days, `granularity` is not `day`, `format` is not "
                                     "`json` or `csv`, or a parameter is given twice.")

FIGURES = json_response("The figures (`format=csv`: the days as CSV, a header row, then one row per day "
                        "with the columns of `days`).", {"$ref": "#/components/schemas/Usage"})
FIGURES["content"]["text/csv"] = {"schema": {"type": "string"}}

PATHS = {
    "/api/v1/usage": {
        "get": {
            "operationId": "getUsage", "tags": [TAG], "summary": "Usage figures per day",
            "description": "Daily usage of this workspace (UTC days): messages and segments submitted, sent, "
                           "delivered and failed (also per phone), inbound messages, webhook deliveries and "
                           "failures, active phones, API calls per credential and endpoint family, dashboard "
                           "sign-ins, and p50/p95 of API latency and of delivery time (accepted to delivered). "
                           "Message figures are counted in the same transaction as the work; API calls are "
                           "written every few seconds by each server. `format=csv` answers the days as CSV.",
            "security": security("usage:read"),
            "parameters": [
                param("from", "query", DAY, "First day (default: 29 days before `to`)."),
                param("to", "query", DAY, "Last day, included (default and latest: today, UTC)."),
                param("granularity", "query", {"enum": ["day"]}, "Only `day`."),
                param("format", "query", {"enum": ["json", "csv"]}, "`json` (default) or `csv`."),
            ],
            "responses": responses({200: FIGURES}, api_errors(), INVALID),
        },
    },
}

TAGS = [{"name": TAG, "description": "What this workspace used, per day: the figures billing is based on."}]


def fragment() -> dict:
    return {"paths": PATHS, "components": {"schemas": SCHEMAS}, "tags": TAGS}
