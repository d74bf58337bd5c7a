"""Cheap facts about E.164 numbers for the accept-time signals: the country calling code, the
regions it serves, and whether a number is in a premium-rate or shared-cost range.

``phonenumbers.parse`` + ``number_type`` costs tens of microseconds per number (tens of ms for a
1,000-recipient send), so this module reads the same metadata once per calling code and matches
the national number against the library's own patterns for those types (a precompiled regex, about
a few microseconds), and remembers the answer per block of 1,000 numbers (the number without its
last three digits, and its length): numbering plans allocate ranges in blocks at least that size, so
a bulk send to one range pays the match once. ``tests/test_abuse.py`` holds it to
``phonenumbers.number_type``.
"""

from __future__ import annotations

import functools
import re

import phonenumbers
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


_blocks: dict = {}
BLOCKS = _blocks  # number without its last 3 digits -> high-cost type or None, for callers' hot loops
MAX_BLOCKS = 200_000


def high_cost(e164: str, code: str | None = None) -> str | None:
    """``"premium_rate"`` or ``"shared_cost"`` for a number in such a range, else None (``code``: its
    calling code, when the caller has it)."""
    block = e164[:-3]
    found = _blocks.get(block, _blocks)
    if found is _blocks:
        if len(_blocks) >= MAX_BLOCKS:
            _blocks.clear()  # in place: BLOCKS stays the same dict
        found = _blocks[block] = _high_cost(e164, code or calling_code(e164))
    return found


def _high_cost(e164: str, code: str | None) -> str | None:
    if code is None:
        return None
    pattern = _high_cost_pattern(code)
    if pattern is None:
        return None
    m = pattern.fullmatch(e164[1 + len(code):])
    if m is None:
        return None
    return m.lastgroup
