"""Path routing that does not try every rule: rules indexed by their first path segment.

Tornado's router tries its rules one after the other, each a regular expression, until one matches.
With the kernel's and every addon's routes (150 and more per host) that was about 5 % of the server's
CPU on a single-recipient send (``bench/bench_messaging.py --profile``). :class:`IndexedRouter`
answers exactly as Tornado's would — the first rule, in the order given, that matches — but only
tries the rules that can match the request's first path segment: a rule whose pattern starts with a
literal first segment (``/api/...``, ``/messages``) is filed under it; any other rule (a pattern
whose first segment is not a plain literal, a host or any-matcher) is tried for every request, in
its place in the order.
"""

from __future__ import annotations

import tornado.web
from tornado.routing import PathMatches

_SPECIAL = set("^$.|?*+()[]{}\\")
WILDCARD = None


def literal_prefix(pattern: str) -> str:
    """The literal text every match of ``pattern`` starts with (``\\.`` and the like read as the
    character they escape; stops at the first other special character)."""
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and not pattern[i + 1].isalnum():
            out.append(pattern[i + 1])
            i += 2
            continue
        if ch in _SPECIAL:
            break
        out.append(ch)
        i += 1
    return "".join(out)


def top_level_alternation(pattern: str) -> bool:
    """Whether ``pattern`` has a ``|`` outside every group and character class (``/a|/b``)."""
    depth, in_class, i = 0, False, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            return True
        i += 1
    return False


def first_segment_of(matcher) -> str | None:
    """The first path segment every path the matcher accepts has, or :data:`WILDCARD`."""
    if not isinstance(matcher, PathMatches):
        return WILDCARD
    pattern = matcher.regex.pattern  # Tornado appends "$" when the pattern has none
    prefix = literal_prefix(pattern)
    whole = prefix + "$" == pattern or prefix == pattern
    if not prefix.startswith("/") or top_level_alternation(pattern):
        return WILDCARD
    segment, slash, _rest = prefix[1:].partition("/")
    if slash or whole:  # the segment ends inside the literal part (or the pattern is all literal)
        return segment
    return WILDCARD


def segment_of(path: str) -> str:
    return path[1:].partition("/")[0] if path.startswith("/") else ""


class IndexedRouter(tornado.web._ApplicationRouter):
    """Tornado's application router with its rules indexed by first path segment (see the module)."""

    _index: dict | None = None
    _wild: list = []

    def process_rule(self, rule):
        rule = super().process_rule(rule)
        if isinstance(rule.target, tornado.web._ApplicationRouter) and not isinstance(rule.target, IndexedRouter):
            rule.target = IndexedRouter(self.application, rule.target.rules)
        return rule

    def add_rules(self, rules) -> None:
        super().add_rules(rules)
        self._index = None

    def _build(self) -> dict:
        keyed: dict[str, list[int]] = {}
        wild: list[int] = []
        for n, rule in enumerate(self.rules):
            segment = first_segment_of(rule.matcher)
            if segment is WILDCARD:
                wild.append(n)
            else:
                keyed.setdefault(segment, []).append(n)
        self._wild = [self.rules[n] for n in wild]
        self._index = {segment: [self.rules[n] for n in sorted(ns + wild)] for segment, ns in keyed.items()}
        return self._index

    def find_handler(self, request, **kwargs):
        index = self._index if self._index is not None else self._build()
        for rule in index.get(segment_of(request.path or ""), self._wild):
            target_params = rule.matcher.match(request)
            if target_params is not None:
                if rule.target_kwargs:
                    target_params["target_kwargs"] = rule.target_kwargs
                delegate = self.get_target_delegate(rule.target, request, **target_params)
                if delegate is not None:
                    return delegate
        return None


def install(application: tornado.web.Application, rules: list) -> None:
    """Route ``application`` through :class:`IndexedRouter` (call after ``Application.__init__``,
    with the rules it was given)."""
    from tornado.routing import AnyMatches, Rule

    application.wildcard_router = IndexedRouter(application, rules)
    application.default_router = IndexedRouter(application, [Rule(AnyMatches(), application.wildcard_router)])


