"""The published API contract: ``/api/openapi.json`` and the reference page ``/api/docs``.

Both come from the one document :func:`core.openapi.build_document` builds (the
kernel's part and every installed addon's), built once per application. The
page is rendered on the server from that document: no scripts, no external
assets, nothing the Content-Security-Policy would refuse.
"""

from __future__ import annotations

import json
import re

from markupsafe import Markup, escape

from ..openapi import HTTP_METHODS, PROBLEM, STATUS_TITLES, published_document, ref
from ..permissions import PUBLIC
from .base import ApiHandler, PageHandler
from .params import is_digits

MAX_DEPTH = 8
LINKED_OPERATIONS = 8  # an error code used by more operations shows a count instead of links


def document(application) -> dict:
    """The application's OpenAPI document, built on first use."""
    return published_document(application.platform)


# ---------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------

class OpenApiHandler(ApiHandler):
    """``GET /api/openapi.json``: the contract, public, on every host."""

    scope = "any"
    permission = PUBLIC

    async def prepare_user(self):
        pass  # the same document for everyone: credentials are not even looked at

    def get(self):
        cached = self.application.__dict__.get("_openapi_json")
        if cached is None:
            cached = json.dumps(document(self.application), separators=(",", ":"))
            self.application.__dict__["_openapi_json"] = cached
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "public, max-age=300")
        self.set_header("Access-Control-Allow-Origin", "*")  # public and credential-free: tools may fetch it
        self.finish(cached)


class ApiDocsHandler(PageHandler):
    """``GET /api/docs``: the contract as a readable reference page."""

    scope = "any"
    permission = PUBLIC

    async def prepare_user(self):
        pass  # a public page: no session lookups, no user box

    def get(self):
        view = self.application.__dict__.get("_openapi_view")
        if view is None:
            view = reference_view(document(self.application))
            self.application.__dict__["_openapi_view"] = view
        # No shared caching: the page carries the language form's per-browser XSRF token.
        self.render("api_docs.html", api=view)


# ---------------------------------------------------------------------------
# From the document to what the page shows
# ---------------------------------------------------------------------------

_CODE = re.compile(r"`([^`]+)`")
_STRONG = re.compile(r"\*\*([^*]+)\*\*")


def inline(text: str) -> Markup:
    """Escape ``text``, then `code` and **strong** (the only markup our descriptions use)."""
    out = str(escape(text))
    out = _CODE.sub(r"<code>\1</code>", out)
    out = _STRONG.sub(r"<strong>\1</strong>", out)
    return Markup(out)


def md(text: str | None) -> Markup:
    """Paragraphs and ``- `` lists of a description, safely escaped."""
    if not text:
        return Markup("")
    blocks = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if lines and all(line.startswith("- ") for line in lines):
            items = "".join(f"<li>{inline(line[2:])}</li>" for line in lines)
            blocks.append(f"<ul>{items}</ul>")
        else:
            blocks.append(f"<p>{inline(' '.join(lines))}</p>")
    return Markup("".join(blocks))


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def constraints(schema: dict) -> list[str]:
    out = []
    if "format" in schema:
        out.append(f"format {schema['format']}")
    if "minLength" in schema and "maxLength" in schema:
        out.append(f"{schema['minLength']} to {schema['maxLength']} characters")
    elif "minLength" in schema:
        out.append(f"at least {schema['minLength']} characters")
    elif "maxLength" in schema:
        out.append(f"at most {schema['maxLength']} characters")
    if "minimum" in schema and "maximum" in schema:
        out.append(f"{schema['minimum']} to {schema['maximum']}")
    elif "minimum" in schema:
        out.append(f"at least {schema['minimum']}")
    elif "maximum" in schema:
        out.append(f"at most {schema['maximum']}")
    if "exclusiveMinimum" in schema:
        out.append(f"above {schema['exclusiveMinimum']:g}")
    if "exclusiveMaximum" in schema:
        out.append(f"below {schema['exclusiveMaximum']:g}")
    if "minItems" in schema:
        out.append(f"at least {schema['minItems']} items")
    if "maxItems" in schema:
        out.append(f"at most {schema['maxItems']} items")
    if "pattern" in schema:
        out.append(f"matching {schema['pattern']}")
    if "default" in schema:
        out.append(f"default {_json(schema['default'])}")
    if schema.get("additionalProperties") is False:
        out.append("no other fields")
    return out


def schema_node(schema: dict | None, depth: int = 0) -> dict:
    """A uniform tree for the template: type label or link, constraints, fields, items, variants."""
    node = {"ref": None, "anchor": None, "type": "", "constraints": [], "enum": None, "description": Markup(""),
            "properties": [], "item_node": None, "variants": [], "variant_kind": ""}
    if not schema:
        node["type"] = "any"
        return node
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        node.update(ref=name, anchor="schema-" + slug(name), type=name)
        return node
    types = schema.get("type")
    if isinstance(types, list):
        node["type"] = " or ".join(types)
    elif types:
        node["type"] = types
    if "const" in schema:
        node["enum"] = [_json(schema["const"])]
        node["type"] = node["type"] or "constant"
    elif "enum" in schema:
        node["enum"] = [_json(v) for v in schema["enum"]]
        node["type"] = node["type"] or "enum"
    node["constraints"] = constraints(schema)
    node["description"] = md(schema.get("description"))
    if depth >= MAX_DEPTH:
        return node
    for kind, label in (("oneOf", "one of"), ("anyOf", "any of"), ("allOf", "all of")):
        if kind in schema:
            node["variant_kind"] = label
            node["variants"] = [schema_node(s, depth + 1) for s in schema[kind]]
            node["type"] = node["type"] or label
            break
    required = set(schema.get("required", []))
    for name, sub in schema.get("properties", {}).items():
        node["properties"].append({"name": name, "required": name in required,
                                   "node": schema_node(sub, depth + 1)})
    if "items" in schema:
        node["item_node"] = schema_node(schema["items"], depth + 1)
        node["type"] = node["type"] or "array"
    if node["properties"] and not node["type"]:
        node["type"] = "object"
    node["type"] = node["type"] or "any"
    return node


def security_view(requirements, schemes: dict) -> list[dict]:
    out = []
    for requirement in requirements:
        for name, roles in requirement.items():
            scheme = schemes.get(name, {})
            out.append({"scheme": name, "anchor": "auth-" + slug(name),
                        "label": scheme.get("bearerFormat") or scheme.get("scheme", name), "roles": list(roles)})
    return out


def parameter_view(p: dict) -> dict:
    return {"name": p["name"], "where": p["in"], "required": bool(p.get("required")),
            "description": md(p.get("description")), "node": schema_node(p.get("schema"))}


def response_view(status: str, response: dict) -> dict:
    codes = response.get("x-problem-codes", [])
    content = []
    for media, body in response.get("content", {}).items():
        # A problem's schema is Problem narrowed to the codes listed beside it: show it as Problem.
        node = schema_node(ref("Problem")) if codes and media == PROBLEM else schema_node(body.get("schema"))
        content.append({"media_type": media, "node": node})
    numeric = is_digits(status)
    description = (md(STATUS_TITLES.get(int(status), "Error") + ".") if codes and numeric
                   else md(response.get("description")))
    return {"status": status, "error": status[:1] in "45", "description": description,
            "codes": [{"code": c["code"], "description": inline(c["description"])} for c in codes],
            "content": content,
            "headers": [{"name": name, "description": md(h.get("description")), "node": schema_node(h.get("schema"))}
                        for name, h in response.get("headers", {}).items()]}


def body_view(body: dict | None) -> dict | None:
    if not body:
        return None
    return {"required": bool(body.get("required")), "description": md(body.get("description")),
            "content": [{"media_type": media, "node": schema_node(m.get("schema")),
                         "examples": [{"name": k, "json": json.dumps(v["value"], indent=2, ensure_ascii=False)}
                                      for k, v in m.get("examples", {}).items()]}
                        for media, m in body.get("content", {}).items()]}


def operation_view(path: str, method: str, op: dict, path_params: list, schemes: dict, prefix: str = "op-") -> dict:
    params = {(p["name"], p["in"]): p for p in path_params}
    params.update({(p["name"], p["in"]): p for p in op.get("parameters", [])})
    security = op.get("security")
    return {
        "anchor": prefix + slug(op.get("operationId") or f"{method}-{path}"),
        "method": method.upper(), "path": path, "summary": op.get("summary", ""),
        "operation_id": op.get("operationId", ""), "addon": op.get("x-smsgw-addon"),
        "description": md(op.get("description")),
        "public": security == [], "security": security_view(security or [], schemes),
        "parameters": [parameter_view(p) for p in params.values()],
        "body": body_view(op.get("requestBody")),
        "responses": [response_view(status, r) for status, r in op.get("responses", {}).items()],
    }


def reference_view(doc: dict) -> dict:
    """Everything ``api_docs.html`` shows, from the OpenAPI document."""
    schemes = doc.get("components", {}).get("securitySchemes", {})
    tag_order = [t["name"] for t in doc.get("tags", [])]
    tag_text = {t["name"]: t.get("description", "") for t in doc.get("tags", [])}
    groups: dict[str, list] = {}
    errors: dict[tuple, dict] = {}
    for path, item in doc.get("paths", {}).items():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            view = operation_view(path, method, op, item.get("parameters", []), schemes)
            tag = (op.get("tags") or ["Other"])[0]
            groups.setdefault(tag, []).append(view)
            for response in view["responses"]:
                for c in response["codes"]:
                    entry = errors.setdefault((c["code"], response["status"]), {
                        "code": c["code"], "status": response["status"], "descriptions": [], "operations": []})
                    if c["description"] not in entry["descriptions"]:
                        entry["descriptions"].append(c["description"])
                    entry["operations"].append({"anchor": view["anchor"], "label": f"{view['method']} {path}"})
    for tag in groups:
        if tag not in tag_order:
            tag_order.append(tag)
    webhooks = []
    for name, item in doc.get("webhooks", {}).items():
        for method, op in item.items():
            if method in HTTP_METHODS:
                view = operation_view(name, method, op, item.get("parameters", []), schemes, prefix="event-")
                view["name"] = name
                webhooks.append(view)
    error_list = sorted(errors.values(), key=lambda e: (e["code"], e["status"]))
    for entry in error_list:
        entry["count"] = len(entry["operations"])
        if entry["count"] > LINKED_OPERATIONS:
            entry["operations"] = []
    info = doc.get("info", {})
    return {
        "title": info.get("title", "API"), "version": info.get("version", ""),
        "openapi": doc.get("openapi", ""), "description": md(info.get("description")),
        "servers": [{"url": s["url"], "description": s.get("description", ""),
                     "variables": [{"name": k, "default": v.get("default", ""),
                                    "description": v.get("description", "")}
                                   for k, v in s.get("variables", {}).items()]}
                    for s in doc.get("servers", [])],
        "schemes": [{"name": name, "anchor": "auth-" + slug(name),
                     "kind": f"HTTP {s.get('scheme', '')}" if s.get("type") == "http" else s.get("type", ""),
                     "format": s.get("bearerFormat", ""), "description": md(s.get("description"))}
                    for name, s in schemes.items()],
        "groups": [{"tag": tag, "anchor": "tag-" + slug(tag), "description": md(tag_text.get(tag, "")),
                    "operations": groups[tag]} for tag in tag_order if tag in groups],
        "webhooks": webhooks,
        "errors": error_list,
        "schemas": [{"name": name, "anchor": "schema-" + slug(name), "node": schema_node(schema)}
                    for name, schema in sorted(doc.get("components", {}).get("schemas", {}).items())],
    }
