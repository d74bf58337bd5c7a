"""The JSON Schema of a data export, ``schema_version`` 1 (see docs/privacy-export.md).

Every export carries it as ``schema.json``. A Python module, not a ``.json`` file, so it ships in
every installed copy with the code that writes the format it describes.
"""

TEXT = {"type": "string"}
TEXT_OR_NULL = {"type": ["string", "null"]}
# What a part's entry in the manifest and the part's own file both say about it.
ADDON = {**TEXT, "description": "Which part of the platform holds the data (core, messaging, devices, ...)."}
TABLE = {**TEXT_OR_NULL, "description": "The database table (public.<name> for shared ones); null for a part "
                                        "an addon added."}
COLUMNS = {"type": ["array", "null"], "items": TEXT,
           "description": "The exported columns, in order; null when an addon's rows say it themselves."}

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://smsgw.dev/schemas/privacy-export/1.json",
    "title": "SMS gateway data export, schema_version 1",
    "description": "A data export is a zip archive. manifest.json (the Manifest below) says whom it is about and "
                   "lists the parts; each part is one file <name>.json (a Part below), holding the rows of one "
                   "table (the columns the table's personal-data declaration exports) or the rows an addon adds. "
                   "This file is schema.json in every export. Times are ISO 8601 in UTC. Secrets, password and "
                   "token hashes and ciphertexts are never included.",
    "$defs": {
        "Manifest": {
            "type": "object",
            "required": ["format", "schema_version", "generated_at", "workspace", "subject", "parts"],
            "properties": {
                "format": {"const": "smsgw-privacy-export"},
                "schema_version": {"const": 1,
                                   "description": "Changes when the format changes in a way readers must know."},
                "generated_at": {"type": "string", "format": "date-time",
                                 "description": "The moment of the one database snapshot every part was read from."},
                "workspace": {"type": "object", "required": ["id", "slug", "name"], "properties": {
                    "id": {"type": "integer"}, "slug": TEXT, "name": TEXT}},
                "subject": {"type": "object", "required": ["kind", "user_id", "actors"], "properties": {
                    "kind": {"enum": ["workspace", "user"],
                             "description": "workspace: everything the platform holds about the workspace; "
                                            "user: one member's own data."},
                    "user_id": {"type": ["integer", "null"]},
                    "actors": {"type": "array", "items": TEXT,
                               "description": "How the audit trail and other tables name the member (user:<id>)."}}},
                "parts": {"type": "array", "items": {"$ref": "#/$defs/PartEntry"}},
            },
        },
        "PartEntry": {
            "type": "object",
            "required": ["name", "file", "addon", "table", "columns", "rows", "description"],
            "properties": {
                "name": {**TEXT, "pattern": "^[a-z0-9_]+$"},
                "file": {**TEXT, "description": "<name>.json in the archive."},
                "addon": ADDON, "table": TABLE, "columns": COLUMNS,
                "rows": {"type": "integer", "minimum": 0},
                "description": TEXT,
            },
        },
        "Part": {
            "type": "object",
            "required": ["schema_version", "part", "addon", "table", "columns", "rows"],
            "properties": {
                "schema_version": {"const": 1}, "part": TEXT, "addon": ADDON, "table": TABLE, "columns": COLUMNS,
                "rows": {"type": "array", "items": {
                    "type": "object", "description": "One row: column name to value (text, number, boolean, null, "
                                                     "ISO 8601 time, array or object)."}},
            },
        },
    },
    "$ref": "#/$defs/Manifest",
}
