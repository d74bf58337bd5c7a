"""Hostile JSON and unstorable path text: a 4xx problem answer and one log line, never a 500 or a traceback.

A body nested thousands of levels deep made ``json.loads`` raise ``RecursionError`` on every
JSON endpoint (signed in or not), and a NUL in a conversation's address reached PostgreSQL:
both answered 500 with a traceback in the log. Every JSON route the OpenAPI document lists is
tried here, so a route added later is covered without editing this file.
"""

from __future__ import annotations

import logging
import re
import time

import pytest

from tests.support.devices import raw_device
from tests.support.phones import api_client, api_token
from tests.support.problems import PROBLEM

NESTED = {
    "arrays": b"[" * 100_000 + b"]" * 100_000,
    "objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "unclosed": b"[" * 100_000,
    "in an object": b'{"text": "hi", "to": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
}


def _fill(path: str, ids: dict) -> str:
    return re.sub(r"\{([^}]+)\}", lambda m: str(ids.get(m.group(1), "1")), path)


def _json_routes(live_server) -> list[tuple[str, str]]:
    doc = live_server.client(None).get("/api/openapi.json").json()
    routes = []
    for path, item in doc["paths"].items():
        for method in ("post", "put", "patch"):
            if method in item:
                routes.append((method.upper(), path))
    return routes


@pytest.fixture
def server_errors(caplog):
    """The server's error records and any record carrying a traceback."""
    caplog.set_level(logging.INFO)

    def read():
        time.sleep(0.1)  # the server logs on its own thread just after it answers
        return [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()
                or (r.levelno >= logging.ERROR and r.name != "smsgw.access")]  # the access log lists 5xx as errors
    return read


def test_every_json_route_answers_a_nested_body_with_a_problem(live_server, make_tenant, server_errors):
    t = make_tenant("deepjson")
    api = api_client(live_server, t.slug)
    device_id, device_token = raw_device(live_server, t.slug, api)
    routes = _json_routes(live_server)
    assert len(routes) >= 15, routes  # the document lists the JSON routes: a short list means a broken lookup
    ids = {"id": device_id, "device_id": device_id}
    token = api_token(t.slug)
    answered = {}
    for method, path in routes:
        url = _fill(path, ids)
        for signed in (False, True):
            for name, body in NESTED.items():
                headers = {"Content-Type": "application/json", "Accept": PROBLEM}
                if signed:
                    headers["Authorization"] = f"Bearer {device_token if path.startswith('/api/device/') else token}"
                r = live_server.client(t.slug).request(method, url, data=body, headers=headers)
                what = (method, url, "signed" if signed else "anonymous", name, r.status_code, r.text[:200])
                # 501: the compat API's documented "not supported" for what the original app cannot do.
                assert r.status_code < 500 or (r.status_code == 501 and r.json()["code"] == "not-supported"), what
                if r.status_code >= 400:
                    assert r.headers["Content-Type"].startswith(PROBLEM), what
                    assert r.json()["status"] == r.status_code, what
                    answered.setdefault(r.json()["code"], set()).add((method, path))
                elif r.json().get("token", "").startswith("sgd_"):
                    device_token = r.json()["token"]  # a route that reads no body rotated the phone's token
    # Most routes read the body once signed in: they refused it as JSON, not for anything else. (Not
    # counted: routes that refuse this token or these ids before any body, e.g. a scope it lacks.)
    before_body = set().union(*(answered.get(code, set()) for code in ("forbidden", "not-found", "not-supported")))
    readers = len(routes) - len(before_body - answered["invalid-json"])
    assert readers >= 15 and len(answered["invalid-json"]) >= readers // 2, answered
    assert server_errors() == []


def test_a_nested_body_is_refused_as_invalid_json_where_the_body_is_read(live_server, make_tenant, server_errors):
    t = make_tenant("deepjson2")
    api = api_client(live_server, t.slug)
    for name, body in NESTED.items():
        r = api.post("/api/v1/messages", data=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (name, r.status_code, r.text[:300])
        assert r.headers["Content-Type"].startswith(PROBLEM)
        assert r.json()["code"] == "invalid-json", (name, r.json())
    # The compat API reads its bodies with the same parser.
    r = api.post("/3rdparty/v1/messages", data=NESTED["arrays"], headers={"Content-Type": "application/json",
                                                                          "Accept": PROBLEM})
    assert r.status_code == 400 and r.json()["code"] == "invalid-json", r.text[:300]
    # Unauthenticated endpoints too.
    anon = live_server.client(t.slug)
    r = anon.post("/api/v1/auth/token", data=NESTED["objects"], headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "invalid-json", r.text[:300]
    assert server_errors() == []


def test_a_body_within_the_depth_limit_is_read_as_before(live_server, make_tenant):
    from core.web.jsonin import MAX_DEPTH

    t = make_tenant("deepjson3")
    api = api_client(live_server, t.slug)
    # A nested value where a plain one is expected is a validation error, not a parse error.
    nested_text = b'{"text": ' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b', "to": ["+14155550100"]}'
    r = api.post("/api/v1/messages", data=nested_text, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["code"] != "invalid-json", r.text[:300]
    r = api.post("/api/v1/messages", json={"text": "still fine", "to": ["+14155550100"]})
    assert r.status_code in (201, 202), r.text[:300]


def test_the_shared_parser_bounds_depth_exactly():
    from core.web.jsonin import MAX_DEPTH, loads

    assert loads(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH) is not None
    with pytest.raises(ValueError, match="deeper"):
        loads(b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1))
    # Brackets inside strings are text, not nesting; escaped quotes do not end a string.
    text = '"' + "[" * 10_000 + '\\"' + "{" * 10_000 + '"'
    assert loads(("[" + text + "]").encode()) == ["[" * 10_000 + '"' + "{" * 10_000]
    # Closing brackets in a string cannot hide the opening ones after it.
    with pytest.raises(ValueError):
        loads(b'["' + b"]" * 10_000 + b'", ' + b"[" * 10_000 + b"]" * 10_000 + b"]")
    # Many shallow containers are fine however many there are.
    many = b"[" + b",".join([b'{"a": [1, {"b": []}]}'] * 20_000) + b"]"
    assert len(loads(many)) == 20_000
    # Other encodings JSON allows are read as json.loads reads them.
    assert loads('{"a": ["\u00e9"]}'.encode("utf-16")) == {"a": ["\u00e9"]}
    with pytest.raises(ValueError):
        loads(("[" * 5000 + "]" * 5000).encode("utf-16"))


@pytest.mark.parametrize("raw_path", ["/inbox/%00", "/inbox/+1415%00555", "/inbox/%2500"])
def test_nul_in_a_conversation_address_is_refused_not_a_500(live_server, make_tenant, server_errors, raw_path):
    from tests.support.identity import sign_in

    t = make_tenant("nulpath")
    c = sign_in(live_server, t.slug, f"owner@{t.slug}.example")
    r = c.get(raw_path)
    assert r.status_code == 404, (r.status_code, r.text[:300])
    assert "NUL character" in r.text or "no conversation with this number" in r.text, r.text[:500]
    r = c.get(raw_path, headers={"Accept": "application/json"})
    assert r.status_code == 404 and r.headers["Content-Type"].startswith(PROBLEM), r.text[:300]
    assert r.json()["code"] == "not-found"
    assert server_errors() == []


def test_a_nested_paging_cursor_is_an_invalid_cursor(live_server, make_tenant, server_errors):
    import base64

    t = make_tenant("deepcursor")
    api = api_client(live_server, t.slug)
    cursor = base64.urlsafe_b64encode(b"[" * 3000 + b"]" * 3000).decode().rstrip("=")
    r = api.get("/api/v1/messages", params={"cursor": cursor})
    assert r.status_code == 400 and r.json()["code"] == "invalid-cursor", r.text[:300]
    assert server_errors() == []
