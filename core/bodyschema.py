"""Request bodies checked against the schemas the API publishes (``/api/openapi.json``).

A handler names the operation whose ``requestBody`` it serves (``body_schemas`` on
:class:`core.web.base.ApiHandler`); its body is checked against that operation's JSON
schema, taken from the published document (``$ref`` resolved into its components), before
the handler's own logic. So the contract clients read and the one the server enforces are
one text and cannot drift; handlers keep only what a schema cannot say (phone numbers,
time zones, fields that depend on each other or on settings).

Two parts, for speed and for people:

* the gate: the schema compiled once (lazily, per operation) by ``fastjsonschema`` into
  Python code; a valid body costs one call of a few microseconds;
* the explanation, only for a refused body: a walk over the schema that lists every invalid
  field as ``{"field": "messages[2].text", "message": "..."}`` in words made from the schema
  (``must be a whole number from 1 to 4``). A schema node may say it better with
  ``x-message`` (a string, or a dict from keyword to string).

Numbers: JSON Schema counts ``1.0`` as an integer; :func:`core.web.jsonin.loads` reads whole
numbers as ``int`` and refuses ``NaN``/``Infinity``, so handlers see what the schema allowed.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import operator
import re
import threading

import fastjsonschema

from .clock import parse_iso
from .i18n import N_
from .web.problem import Problem

MAX_ERRORS = 200
SCHEMAS_POINTER = "#/components/schemas/"


def iso_time(value) -> dt.datetime | None:
    """The UTC time an ISO 8601 string names (UTC when it has no offset), or None: the kernel's one
    parser (:func:`core.clock.parse_iso`), so what the ``date-time`` format accepts is what the
    handlers read."""
    return parse_iso(value)


def _is_time(value) -> bool:
    return iso_time(value) is not None


FORMATS = {"date-time": _is_time}
FORMAT_WORDS = {"date-time": N_("must be an ISO 8601 time, e.g. 2026-12-01T09:00:00Z")}


class BodySchema:
    """One request-body schema: compiled once, checked per request."""

    def __init__(self, schema: dict, components: dict):
        self.schema = schema
        self.components = components
        self._gate = self._compile(schema)
        # A oneOf of objects told apart by a property (a send or a batch): the property picks the one
        # option to check, which is the same verdict without trying (and failing) the others.
        self._by_key = {key: self._compile(option) for key, option in _discriminators(schema, components)}

    def _compile(self, schema: dict):
        root = {"allOf": [schema], "components": {"schemas": self.components}}
        code = fastjsonschema.compile_to_code(root, formats=FORMATS, use_default=False, detailed_exceptions=False)
        namespace: dict = {}
        exec(without_item_names(code), namespace)  # noqa: S102 - code generated from our own document
        return functools.partial(namespace["validate"], custom_formats=FORMATS)

    def gate(self, value):
        """The compiled check for ``value``; raises ``JsonSchemaValueException`` if it is invalid."""
        if self._by_key and isinstance(value, dict):
            for key, gate in self._by_key.items():
                if key in value:
                    return gate(value)
        return self._gate(value)

    def errors(self, value) -> list[dict]:
        """Every invalid field of ``value`` as ``{"field", "message"}`` (and ``path``, ``keyword``);
        ``[]`` when it is valid."""
        try:
            self.gate(value)
            return []
        except fastjsonschema.JsonSchemaValueException as exc:
            found = _Walk(self.components).node(self.schema, value, ())
            if not found:  # the walk and the gate disagree: the gate's own words, never a silent pass
                path = tuple(exc.path[1:]) if exc.path else ()
                found = [_error(path, exc.message.replace(str(exc.name), field_name(path) or "body", 1),
                                exc.rule or "")]
            return found[:MAX_ERRORS]


# fastjsonschema names each list item (``data.reports[7]``) for its own error messages before it
# checks it, with ``str.format(**locals())``: 45 % of the cost of a report. Refusals are explained
# by the walk below, never by those messages, so the checks of ``$ref`` items (a call per item) get
# no name; names built inside a ``raise`` stay. (Generated text of fastjsonschema 2.x, pinned in
# setup.py; tests/test_bodyschema.py holds it to this. If it stops matching, checks only get slower.)
_ITEM_NAME = re.compile(r'\(name_prefix or "data"\) \+ "[^"]*"\.format\(\*\*locals\(\)\)(?=\))')


def without_item_names(code: str) -> str:
    return _ITEM_NAME.sub("name_prefix", code)


def _discriminators(schema: dict, components: dict) -> list[tuple[str, dict]]:
    """``[(property, option)]`` for a top-level ``oneOf`` whose every option requires a property
    that no other option allows (``additionalProperties: false`` without it); else ``[]``."""
    def resolve(s):
        return components[s["$ref"][len(SCHEMAS_POINTER):]] if "$ref" in s else s

    options = schema.get("oneOf") if set(schema) <= {"oneOf", "description"} else None
    out = []
    for option in options or ():
        others = [resolve(o) for o in options if o is not option]
        key = next((k for k in resolve(option).get("required", ())
                    if all(o.get("additionalProperties") is False and k not in o.get("properties", {})
                           for o in others)), None)
        if key is None:
            return []
        out.append((key, option))
    return out


def field_name(path: tuple) -> str:
    """``("messages", 2, "text")`` → ``messages[2].text`` (the way ``errors`` name fields)."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _error(path: tuple, message: str, keyword: str, msgid: str | None = None, args: dict | None = None,
           **extra) -> dict:
    """An invalid field. ``message`` is the English text; ``msgid`` and ``args``, when a catalogue can
    translate it (``N_("must be a whole number from %(min)s to %(max)s")``), what the answer translates."""
    error = {"field": field_name(path) or "body", "message": message, "path": path, "keyword": keyword, **extra}
    if msgid is not None:
        error["msgid"], error["args"] = msgid, args or {}
    return error


def _msg(path: tuple, msgid: str, keyword: str, **args) -> dict:
    """An invalid field whose message is the translatable ``msgid`` with ``args``."""
    return _error(path, msgid % args if args else msgid, keyword, msgid, args)


def public(errors: list[dict]) -> list[dict]:
    """Errors as answered: ``field`` and ``message`` (and, for translation, ``msgid`` and ``args``:
    :class:`~core.web.problem.Problem` answers the message in the caller's language)."""
    return [{"field": e["field"], "message": e["message"], **({"msgid": e["msgid"], "args": e["args"]}
                                                               if "msgid" in e else {})} for e in errors]


def _is_type(value, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool) or (
            isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, {"string": str, "object": dict, "array": list, "boolean": bool,
                              "null": type(None)}[name])


TYPE_WORDS = {"string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
              "object": "an object", "array": "a list", "null": "null"}


def describe(schema: dict) -> str:
    """What a value of ``schema`` is, in words (for messages)."""
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    if "const" in schema:
        return _json(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(_json(v) for v in schema["enum"])
    words = []
    for t in [t for t in types if t != "null"]:
        word = TYPE_WORDS[t]
        if t in ("integer", "number") and "minimum" in schema and "maximum" in schema:
            word += f" from {_num(schema['minimum'])} to {_num(schema['maximum'])}"
        elif t == "string" and "maxLength" in schema:
            low = schema.get("minLength", 0)
            word = (f"text of {low} to {schema['maxLength']} characters" if low
                    else f"text of at most {schema['maxLength']} characters")
        elif t == "string" and schema.get("format") in FORMAT_WORDS:
            word = "an ISO 8601 time"
        words.append(word)
    if "null" in types:
        words.append("null")
    return " or ".join(words) or "valid"


# What a value of a simple schema is, as whole translatable sentences (:func:`_said`).
_TYPE_SAID = {"string": N_("must be text"), "integer": N_("must be a whole number"), "number": N_("must be a number"),
              "boolean": N_("must be true or false"), "object": N_("must be an object"), "array": N_("must be a list")}


def _said(schema: dict) -> tuple[str, dict] | None:
    """``must be …`` for a schema of one type, as ``(msgid, args)``; ``None`` for the others
    (several types, ``const``/``enum``), which :func:`describe` words in English."""
    types = schema.get("type")
    if not isinstance(types, str) or "const" in schema or "enum" in schema or types not in _TYPE_SAID:
        return None
    if types in ("integer", "number") and "minimum" in schema and "maximum" in schema:
        args = {"min": _num(schema["minimum"]), "max": _num(schema["maximum"])}
        return (N_("must be a whole number from %(min)s to %(max)s") if types == "integer" else
                N_("must be a number from %(min)s to %(max)s")), args
    if types == "string" and "maxLength" in schema:
        low = schema.get("minLength", 0)
        if low:
            return N_("must be text of %(min)s to %(max)s characters"), {"min": low, "max": schema["maxLength"]}
        return N_("must be text of at most %(max)s characters"), {"max": schema["maxLength"]}
    if types == "string" and schema.get("format") in FORMAT_WORDS:
        return N_("must be an ISO 8601 time"), {}
    return _TYPE_SAID[types], {}


def _json(value) -> str:
    return {True: "true", False: "false", None: "null"}.get(value, str(value)) if not isinstance(
        value, (int, float)) or isinstance(value, bool) else _num(value)


def _num(value) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


BOUNDS = (("minimum", operator.lt, "at least"), ("maximum", operator.gt, "at most"),
          ("exclusiveMinimum", operator.le, "more than"), ("exclusiveMaximum", operator.ge, "less than"))


class _Walk:
    """The explanation: every error of a value against a schema, with the field it concerns."""

    def __init__(self, components: dict):
        self.components = components

    def resolve(self, schema: dict) -> dict:
        while "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith(SCHEMAS_POINTER):
                raise ValueError(f"only {SCHEMAS_POINTER}… references are supported, not {ref!r}")
            schema = {**self.components[ref[len(SCHEMAS_POINTER):]],
                      **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema

    def node(self, schema: dict, value, path: tuple) -> list[dict]:
        schema = self.resolve(schema)
        errors = self.here(schema, value, path)
        if errors:
            custom = schema.get("x-message")
            if isinstance(custom, str):
                return [_error(path, custom, errors[0]["keyword"], custom)]
            if isinstance(custom, dict):
                for e in errors:
                    if e["path"] == path and e["keyword"] in custom:
                        e["message"] = e["msgid"] = custom[e["keyword"]]
                        e["args"] = {}
        return errors

    def here(self, schema: dict, value, path: tuple) -> list[dict]:
        wrong = _wrong_kind(schema, value)
        if wrong:
            said = _said(schema)
            return [_msg(path, said[0], wrong, **said[1]) if said else
                    _error(path, f"must be {describe(schema)}", wrong)]
        errors = []
        for sub in schema.get("allOf", ()):
            errors += self.node(sub, value, path)
        if "oneOf" in schema or "anyOf" in schema:
            errors += self.choice(schema.get("oneOf") or schema["anyOf"], value, path, "oneOf" in schema)
        if "not" in schema and not self.node(schema["not"], value, path):
            errors.append(_msg(path, N_("is not allowed in this form"), "not"))
        check = (self.text if isinstance(value, str) else self.array if isinstance(value, list)
                 else self.object if isinstance(value, dict) else self.number if _is_type(value, "number")
                 else None)
        return errors + (check(schema, value, path) if check else [])

    def choice(self, options: list, value, path: tuple, exactly_one: bool) -> list[dict]:
        results = [self.node(option, value, path) for option in options]
        passed = sum(1 for r in results if not r)
        if passed == 1 or (passed and not exactly_one):
            return []
        if passed > 1:
            return [_msg(path, N_("is ambiguous: it matches more than one form"), "oneOf")]
        # The option the value was most likely meant for: fewest errors at this level, then in all.
        depth = len(path) + 1
        best = min(results, key=lambda r: (sum(1 for e in r if len(e["path"]) <= depth), len(r)))
        if len(options) > 1 and all(e["path"] == path and e["keyword"] == "type" for e in best):
            return [_error(path, "must be " + " or ".join(describe(self.resolve(o)) for o in options), "oneOf")]
        return best

    @staticmethod
    def text(schema: dict, value: str, path: tuple) -> list[dict]:
        low, high = schema.get("minLength", 0), schema.get("maxLength")
        if len(value) < low or (high is not None and len(value) > high):
            if high is None:
                return [_msg(path, N_("must not be empty"), "minLength") if low == 1 else
                        _msg(path, N_("must be at least %(min)s characters"), "minLength", min=low)]
            said = _said(dict(schema, type="string"))
            keyword = "maxLength" if len(value) > high else "minLength"
            return [_msg(path, said[0], keyword, **said[1]) if said else
                    _error(path, f"must be {describe(dict(schema, type='string'))}", keyword)]
        if "pattern" in schema and not _pattern(schema["pattern"]).search(value):
            return [_error(path, f"must match {schema['pattern']}", "pattern")]
        if schema.get("format") in FORMATS and not FORMATS[schema["format"]](value):
            return [_msg(path, FORMAT_WORDS[schema["format"]], "format")]
        return []

    @staticmethod
    def number(schema: dict, value, path: tuple) -> list[dict]:
        if isinstance(value, float) and not math.isfinite(value):
            return [_msg(path, N_("must be a finite number"), "type")]
        if not any(key in schema and broken(value, schema[key]) for key, broken, _ in BOUNDS):
            return []
        if "minimum" in schema and "maximum" in schema:
            words = f"from {_num(schema['minimum'])} to {_num(schema['maximum'])}"
        else:
            words = ", ".join(f"{word} {_num(schema[key])}" for key, _, word in BOUNDS if key in schema)
        types = schema.get("type") or ()
        if "minimum" in schema and "maximum" in schema:
            low, high = _num(schema["minimum"]), _num(schema["maximum"])
            return [_msg(path, N_("must be a whole number from %(min)s to %(max)s"), "minimum", min=low, max=high)
                    if "integer" in types else
                    _msg(path, N_("must be a number from %(min)s to %(max)s"), "minimum", min=low, max=high)]
        kind = "a whole number " if "integer" in types else "a number " if "number" in types else ""
        return [_error(path, f"must be {kind}{words}", "minimum")]

    def array(self, schema: dict, value: list, path: tuple) -> list[dict]:
        low, high = schema.get("minItems", 0), schema.get("maxItems")
        if len(value) < low:
            return [_msg(path, N_("must be a non-empty list"), "minItems") if low == 1 else
                    _msg(path, N_("must hold at least %(min)s items"), "minItems", min=low)]
        if high is not None and len(value) > high:
            error = _msg(path, N_("must hold at most %(max)s items"), "maxItems", max=high)
            error["limit"] = high
            return [error]
        errors = []
        if "items" in schema:
            for i, item in enumerate(value):
                errors += self.node(schema["items"], item, path + (i,))
                if len(errors) >= MAX_ERRORS:
                    break
        return errors

    def object(self, schema: dict, value: dict, path: tuple) -> list[dict]:
        properties = schema.get("properties", {})
        errors = [_msg(path + (name,), N_("is required"), "required")
                  for name in schema.get("required", ()) if name not in value]
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in properties:
                errors += self.node(properties[name], item, path + (name,))
            elif extra is False:
                known = ", ".join(properties)
                errors.append(_msg(path + (name,), N_("unknown field; known: %(known)s"), "additionalProperties",
                                   known=known))
            elif isinstance(extra, dict):
                errors += self.node(extra, item, path + (name,))
            if len(errors) >= MAX_ERRORS:
                break
        return errors


@functools.lru_cache(maxsize=256)
def _pattern(pattern: str) -> re.Pattern:
    """A schema's pattern as ECMA-262 reads it (what the gate does too): ``$`` is the end of the text,
    not also the place before a final newline."""
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


def _wrong_kind(schema: dict, value) -> str | None:
    """The keyword (``type``, ``const``, ``enum``) ``value`` breaks, if any."""
    types = schema.get("type")
    if types is not None and not any(_is_type(value, t) for t in ([types] if isinstance(types, str) else types)):
        return "type"
    if "const" in schema and not _same(value, schema["const"]):
        return "const"
    if "enum" in schema and not any(_same(value, v) for v in schema["enum"]):
        return "enum"
    return None


def _same(a, b) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


class RequestSchemas:
    """The request-body schemas of one published document, compiled on first use (once)."""

    def __init__(self, document: dict):
        self.components = document.get("components", {}).get("schemas", {})
        self.bodies = {}
        for item in document.get("paths", {}).values():
            for operation in item.values():
                if isinstance(operation, dict) and "operationId" in operation:
                    media = operation.get("requestBody", {}).get("content", {}).get("application/json")
                    if media and "schema" in media:
                        self.bodies[operation["operationId"]] = media["schema"]
        self._compiled: dict[str, BodySchema] = {}
        self._lock = threading.Lock()

    def operation(self, operation_id: str) -> BodySchema:
        """The body schema of the operation ``operation_id`` (KeyError: it has no JSON body)."""
        return self._get("op:" + operation_id, lambda: self.bodies[operation_id])

    def component(self, name: str) -> BodySchema:
        """``#/components/schemas/<name>`` on its own."""
        return self._get("component:" + name, lambda: {"$ref": SCHEMAS_POINTER + name})

    def _get(self, key: str, schema) -> BodySchema:
        compiled = self._compiled.get(key)
        if compiled is None:
            with self._lock:
                compiled = self._compiled.get(key)
                if compiled is None:
                    compiled = self._compiled[key] = BodySchema(schema(), self.components)
        return compiled


def request_schemas(platform) -> RequestSchemas:
    """The platform's compiled request schemas, from the document ``/api/openapi.json`` serves."""
    schemas = platform.__dict__.get("_request_schemas")
    if schemas is None:
        from .openapi import published_document

        schemas = platform.__dict__["_request_schemas"] = RequestSchemas(published_document(platform))
    return schemas


def invalid(errors: list[dict], detail: str, status: int = 422) -> Problem:
    return Problem(status, "validation-failed", detail, errors=public(errors))
