"""Cheap facts about E.164 numbers for the accept-time signals: the country calling code, the
regions it serves, and whether a number is in a premium-rate or shared-cost range.

``phonenumbers.parse`` + ``number_type`` costs tens of microseconds per number (tens of ms for a
1,000-recipient send), so this module reads the same metadata once per calling code and matches
the national number against the library's own patterns for those types (one regex per calling
code). A shortcut, exact: the first three national digits a high-cost number of that calling code
can start with are read from the parsed patterns (:func:`starts`), so most numbers cost one set
lookup and only the others meet the regex. ``tests/test_abuse.py`` holds the result to
``phonenumbers.number_type`` and the shortcut to the regex.
"""

from __future__ import annotations

import functools
import re

import phonenumbers
import re._constants as _c
import re._parser as _parser
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

HIGH_COST_TYPES = ("premium_rate", "shared_cost")


_codes: dict = {}
CODES = _codes  # "+CCC" (the first four characters) -> calling code, for callers' hot loops


def calling_code(e164: str) -> str | None:
    """``"44"`` for ``+447700900123``; None when no calling code matches."""
    head = e164[:4]
    try:
        return _codes[head]
    except KeyError:
        code = _codes[head] = _calling_code(head)
        return code


def _calling_code(e164: str) -> str | None:
    digits = e164[1:] if e164.startswith("+") else e164
    for n in (1, 2, 3):
        if digits[:n].isdigit() and int(digits[:n]) in COUNTRY_CODE_TO_REGION_CODE:
            return digits[:n]
    return None


def regions(code: str) -> tuple[str, ...]:
    return tuple(r for r in COUNTRY_CODE_TO_REGION_CODE.get(int(code), ()) if r != "001")


def code_of_region(region: str) -> str | None:
    code = phonenumbers.country_code_for_region((region or "").upper())
    return str(code) if code else None


@functools.lru_cache(maxsize=512)
def _high_cost_pattern(code: str):
    """One regex per calling code: per type, the distinct patterns of its regions (the 25 regions of
    +1 share three)."""
    kinds: dict = {}
    for region in regions(code):
        meta = PhoneMetadata.metadata_for_region(region)
        for kind in HIGH_COST_TYPES:
            desc = getattr(meta, kind, None) if meta else None
            if desc is not None and desc.national_number_pattern:
                kinds.setdefault(kind, {})[desc.national_number_pattern] = None
    parts = [f"(?P<{kind}>" + "|".join(f"(?:{p})" for p in patterns) + ")" for kind, patterns in kinds.items()]
    return re.compile("|".join(parts)) if parts else None


PREFIX = 3  # national digits the prefilter looks at
MAX_PREFIXES = 5000


def _charset(items) -> set | None:
    out = set()
    for op, arg in items:
        if op is _c.LITERAL:
            out.add(chr(arg))
        elif op is _c.RANGE:
            out.update(chr(c) for c in range(arg[0], arg[1] + 1))
        elif op is _c.CATEGORY and arg is _c.CATEGORY_DIGIT:
            out.update("0123456789")
        else:
            return None  # NEGATE and the rest: not worth knowing
    return out


def _extend(prefixes: set, item) -> set | None:
    """The ``PREFIX``-long starts (or whole strings, when shorter) after ``item``; None: unknown."""
    op, arg = item
    short = {p for p in prefixes if len(p) < PREFIX}
    done = prefixes - short
    if not short:
        return prefixes
    if op is _c.LITERAL:
        grown = {p + chr(arg) for p in short}
    elif op is _c.IN:
        chars = _charset(arg)
        if chars is None:
            return None
        grown = {p + ch for p in short for ch in chars}
    elif op is _c.SUBPATTERN:
        grown = _sequence(arg[-1], short)
    elif op is _c.BRANCH:
        grown = set()
        for alternative in arg[1]:
            more = _sequence(alternative, short)
            if more is None:
                return None
            grown |= more
    elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
        low, high, sub = arg
        grown, current = set(), short
        for n in range(min(high, low + PREFIX) + 1):
            if n >= low:
                grown |= current
            if n == min(high, low + PREFIX):
                break
            current = _sequence(sub, current)
            if current is None:
                return None
        if high > low + PREFIX:
            grown |= current
    else:
        return None
    if grown is None or len(grown) > MAX_PREFIXES:
        return None
    return done | grown


def _sequence(items, prefixes: set) -> set | None:
    for item in items:
        prefixes = _extend(prefixes, item)
        if prefixes is None:
            return None
    return prefixes


@functools.lru_cache(maxsize=512)
def starts(code: str) -> frozenset | None:
    """Every ``PREFIX``-digit start a high-cost national number of ``code`` can have (None: not
    known, check every number): numbers starting otherwise need no regex at all."""
    pattern = _high_cost_pattern(code)
    if pattern is None:
        return frozenset()
    try:
        found = _sequence(_parser.parse(pattern.pattern).data, {""})
    except Exception:
        return None
    return frozenset(found) if found is not None else None


_starts: dict = {}


def high_cost(e164: str, code: str | None = None) -> str | None:
    """``"premium_rate"`` or ``"shared_cost"`` for a number in such a range, else None (``code``: its
    calling code, when the caller has it). Most numbers are answered by one set lookup (their first
    national digits cannot start a high-cost number); the rest by the regex."""
    code = code or calling_code(e164)
    if code is None:
        return None
    possible = _starts.get(code, _starts)
    if possible is _starts:
        possible = _starts[code] = starts(code)
    if possible is not None:
        head = e164[1 + len(code):4 + len(code)]
        if len(head) == PREFIX and head not in possible:
            return None
    pattern = _high_cost_pattern(code)
    if pattern is None:
        return None
    m = pattern.fullmatch(e164[1 + len(code):])
    return m.lastgroup if m is not None else None
