"""Request bodies are checked against the schemas the API publishes (core/bodyschema.py).

* The enforced contract is the published one: an addon's fragment changes, and what a request
  may send changes with it, with no handler code involved.
* Hostile bodies (deep nesting, huge or non-finite numbers, wrong types, unknown fields, NUL)
  get a 4xx problem+json on every endpoint that checks its body this way, never a 500, and
  change nothing.
"""

from __future__ import annotations

import types

import pytest

from core.addons import AddonRegistry, discover, read_manifest
from core.bodyschema import request_schemas
from core.openapi import published_document
from tests.fixtures.shape_addon import hooks as shape
from tests.support.devices import device_client, raw_device
from tests.support.phones import api_client
from tests.support.problems import problem


def shape_platform(settings):
    """A platform as far as the published document needs one: the shipped addons and the shape addon."""
    registry = AddonRegistry(discover() + [read_manifest("tests.fixtures.shape_addon")])
    return types.SimpleNamespace(registry=registry, settings=settings)


def test_changing_a_published_schema_changes_what_is_enforced(platform):
    body = {"count": 50}
    before = shape_platform(platform.settings)
    assert published_document(before)["components"]["schemas"]["ShapeCount"]["properties"]["count"]["maximum"] == 100
    assert request_schemas(before).operation("shapeCount").errors(body) == []
    try:
        shape.MAX_COUNT["value"] = 10  # the addon tightens its fragment
        after = shape_platform(platform.settings)
        errors = request_schemas(after).operation("shapeCount").errors(body)
    finally:
        shape.MAX_COUNT["value"] = 100
    assert [(e["field"], e["message"]) for e in errors] == [("count", "must be a whole number from 0 to 10")]
    # Compiled once per document: the first platform still enforces what it published.
    assert request_schemas(before).operation("shapeCount").errors(body) == []
    assert request_schemas(before).operation("shapeCount") is request_schemas(before).operation("shapeCount")


def test_every_refusal_names_the_field_and_what_it_expects(platform):
    check = request_schemas(platform).operation("deviceReports").errors
    errors = check({"reports": [{"message_id": "12", "state": "sent", "colour": 1},
                                {"message_id": 1.5, "state": "gone", "at": "soon"}, 7]})
    got = {e["field"]: e["message"] for e in errors}
    assert got == {"reports[1].message_id": "must be a message id",
                   "reports[1].state": "must be one of sent, delivered, failed",
                   "reports[1].at": "must be an ISO 8601 time or epoch milliseconds",
                   "reports[2]": "must be an object"}, got
    errors = request_schemas(platform).operation("sendMessages").errors(
        {"text": "hi", "to": "+14155550100", "sim_slot": "2", "colour": "red"})
    got = {e["field"]: e["message"] for e in errors}
    assert got["sim_slot"] == "must be a whole number from 1 to 4"
    assert got["colour"].startswith("unknown field; known: text, to,")


HOSTILE = [
    ("deep nesting", '{"x": ' + "[" * 5000 + "]" * 5000 + "}", (400,)),
    ("a huge integer", '{"%s": 1' + "0" * 4000 + "}", (422, 400)),
    ("a huge float", '{"%s": 1e400}', (400,)),
    ("NaN", '{"%s": NaN}', (400,)),
    ("a wrong type", '{"%s": {"a": [1, 2, {"b": null}]}}', (422,)),
    ("a NUL", '{"%s": "a\\u0000b"}', (400, 422)),
    ("an unknown field", '{"%s": 1, "zzz": true}', (422,)),
    ("a list for the body", '[1, 2]', (400,)),
]


@pytest.mark.parametrize("what, raw, statuses", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_bodies_get_a_problem_never_a_500(live_server, make_tenant, what, raw, statuses):
    t = make_tenant("hostile")
    api = api_client(live_server, t.slug)
    device_id, token = raw_device(live_server, t.slug, api, name="Kept")
    dev = device_client(live_server, t.slug, token)
    json_type = {"Content-Type": "application/json"}
    for client, method, path, field in (
            (api, "POST", "/api/v1/messages", "priority"),
            (api, "POST", "/api/v1/messages", "to"),
            (dev, "POST", "/api/device/v1/reports", "reports"),
            (api, "PATCH", f"/api/v1/devices/{device_id}", "name"),
            (api, "PATCH", f"/api/v1/devices/{device_id}", "settings")):
        body = raw.replace("%s", field) if "%s" in raw else raw
        if what == "an unknown field" and path.endswith("/reports"):
            body = '{"reports": [{"message_id": 1, "state": "sent"}], "zzz": true}'  # extra fields are allowed here
            r = client.request(method, path, data=body.encode(), headers=json_type)
            assert r.status_code == 200, r.text[:300]
            continue
        r = client.request(method, path, data=body.encode(), headers=json_type)
        p = problem(r, r.status_code)
        assert r.status_code in statuses, (what, path, field, r.status_code, r.text[:300])
        assert p["detail"], p
        if r.status_code == 422 and p["code"] == "validation-failed":
            assert all(e["field"] and e["message"] for e in p["errors"]), p
    assert api.get("/api/v1/messages").json()["messages"] == []
    assert api.get(f"/api/v1/devices/{device_id}").json()["name"] == "Kept"


def test_a_handler_naming_an_operation_the_document_lacks_fails_at_start_up(platform):
    from core.web.app import compile_body_schemas
    from core.web.base import ApiHandler

    class Typo(ApiHandler):
        body_schemas = {"POST": "sendMesages"}

    with pytest.raises(ValueError, match="Typo .*'sendMesages', which the OpenAPI document does not describe"):
        compile_body_schemas(platform, [(r"/api/v1/typo", Typo, {}, "typo")])


def test_item_names_are_not_built_for_checks_that_pass(platform):
    """The speed-up in core.bodyschema (no per-item name for fastjsonschema's messages) still
    applies to the generated code of the pinned fastjsonschema, and refusals are still explained."""
    import fastjsonschema

    from core.bodyschema import without_item_names

    schemas = request_schemas(platform)
    root = {"allOf": [schemas.bodies["deviceReports"]], "components": {"schemas": schemas.components}}
    code = fastjsonschema.compile_to_code(root, use_default=False, detailed_exceptions=False)
    assert ".format(**locals()))" in code and ".format(**locals()))" not in without_item_names(code)
    check = schemas.operation("deviceReports")
    assert check.errors({"reports": [{"message_id": 1, "state": "sent"}] * 3}) == []
    assert [e["field"] for e in check.errors({"reports": [{"message_id": 1, "state": "sent"}, {"state": 1}]})] == [
        "reports[1].message_id", "reports[1].state"]
