"""core.web.routing.IndexedRouter answers exactly as Tornado's own router would, for every route
of the kernel and the installed addons, on every kind of host, and for hostile paths."""

from __future__ import annotations

import pytest
import tornado.web
from hypothesis import HealthCheck, given, settings, strategies as st
from tornado.httputil import HTTPHeaders, HTTPInputError, HTTPServerRequest, RequestStartLine
from tornado.routing import PathMatches, Rule

from core.web import routing


@pytest.fixture(scope="module")
def app(platform):
    from core.web.app import Application

    return Application(platform)


def plain(app, router):
    """The same rules under Tornado's own router (nested lists too), for comparison."""
    out = tornado.web._ApplicationRouter(app, [])
    out.rules = [Rule(rule.matcher, plain(app, rule.target) if isinstance(rule.target, tornado.web._ApplicationRouter)
                      else rule.target, rule.target_kwargs, rule.name) for rule in router.rules]
    return out


def path_patterns(router):
    for rule in router.rules:
        if isinstance(rule.target, tornado.web._ApplicationRouter):
            yield from path_patterns(rule.target)
        elif isinstance(rule.matcher, PathMatches):
            yield rule.matcher.regex.pattern


def hosts(platform):
    base = platform.settings.base_domain
    return [f"acme.{base}", base, f"partners.{base}", "sms.example.org", f"www.{base}", ""]


def answer(router, host: str, path: str):
    """What ``router`` hands the request to (``"refused"`` when Tornado would not even read it)."""
    try:
        request = HTTPServerRequest(start_line=RequestStartLine("GET", path, "HTTP/1.1"),
                                    headers=HTTPHeaders({"Host": host} if host else {}))
    except HTTPInputError:
        return "refused"
    delegate = router.find_handler(request)
    if delegate is None:
        return None
    return (getattr(delegate, "handler_class", None), getattr(delegate, "path_args", None),
            getattr(delegate, "path_kwargs", None), getattr(delegate, "handler_kwargs", None))


def test_every_route_is_indexed_and_found_as_tornado_finds_it(app, platform):
    assert isinstance(app.default_router, routing.IndexedRouter)
    reference = plain(app, app.wildcard_router)
    patterns = sorted(set(path_patterns(app.wildcard_router)))
    assert len(patterns) > 100  # the kernel's and the addons' routes are all there
    indexed = [p for p in patterns if routing.first_segment_of(PathMatches(p)) is not routing.WILDCARD]
    assert len(indexed) > 0.8 * len(patterns)  # the index does its job: few rules are tried everywhere
    for pattern in patterns:
        literal = routing.literal_prefix(pattern)
        for host in hosts(platform):
            for path in {literal, literal.rstrip("/"), literal + "x", literal + "1/2", literal + "/"}:
                if path.startswith("/"):
                    assert answer(app.wildcard_router, host, path) == answer(reference, host, path), (host, path)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_generated_paths_route_the_same(app, platform, data):
    patterns = sorted(set(path_patterns(app.wildcard_router)))
    pattern = data.draw(st.sampled_from(patterns))
    path = data.draw(st.from_regex(pattern, fullmatch=True).filter(lambda p: p.startswith("/") and "\n" not in p))
    host = data.draw(st.sampled_from(hosts(platform)))
    reference = plain(app, app.wildcard_router)
    assert answer(app.wildcard_router, host, path) == answer(reference, host, path)


@pytest.mark.parametrize("path", ["/", "//", "///api", "/api//v1/messages", "/%2e%2e/admin", "/API/v1/messages",
                                  "/api/v1/messages/../../admin", "/\u00e9", "/static/../core/app.py", "/x" * 300,
                                  "/api/v1/messages?x=/admin", "/admin%2Fabuse", "/.well-known/jwks.json",
                                  "/-", "/api/v1/messages/", "/health/live/"])
def test_hostile_paths_route_the_same(app, platform, path):
    reference = plain(app, app.wildcard_router)
    for host in hosts(platform):
        assert answer(app.wildcard_router, host, path) == answer(reference, host, path), host


@pytest.mark.parametrize("pattern,segment", [
    (r"/api/v1/messages", "api"), (r"/", ""), (r"/(.*)", None), (r"/\.well-known/jwks\.json", ".well-known"),
    (r"/messages/([0-9]+)", "messages"), (r"/a/x|/b/y", None), (r"/msg(s)?", None), (r"(?i)/api", None),
    (r"/api\d+/x", None), (r"/api/(a|b)", "api"), (r"/[a-z]+/x", None), (r"/inbox", "inbox"),
])
def test_first_segment_of_a_pattern(pattern, segment):
    assert routing.first_segment_of(PathMatches(pattern)) == segment
