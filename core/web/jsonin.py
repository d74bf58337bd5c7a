"""JSON from clients: parsed with its nesting bounded, and checked for text PostgreSQL cannot store.

The standard library's parser recurses once per level: a body of 100,000 ``[`` raised
``RecursionError`` (a 500 and a traceback) on every JSON endpoint, signed in or not. Every
reader of client JSON uses :func:`loads` instead, which refuses more than :data:`MAX_DEPTH`
levels with a ``ValueError`` (what callers already answer as invalid JSON) before the parser
sees the text. No API body needs more than a few levels. ``NaN`` and ``Infinity`` (which
``json`` accepts, JSON does not) are refused too; whole numbers come back as ``int``.

The check costs nothing for most bodies (fewer brackets than the limit) and stays in C-speed
string operations for the rest: strings are cut out (their brackets are text), the brackets
left are turned into +1/-1 and the running sum's maximum is the depth.

A request body must then be an object (:func:`parse_object`), and hold no NUL character or
unpaired surrogate (:func:`unstorable`), which PostgreSQL refuses to store (a 500 after
part of the work was done, had it reached the database).
"""

from __future__ import annotations

import array
import itertools
import json
import math
import re

from .problem import Problem
from ..i18n import N_

MAX_DEPTH = 64

# A JSON string, unrolled so the regex engine does not backtrack per character.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# Brackets become the bytes 1 and 255 (-1 as a signed byte); every other byte is dropped. UTF-8
# puts no ASCII byte inside a multi-byte character, so the brackets of the encoded text are exact.
_TO_SIGNS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[{]}")


class TooDeep(ValueError):
    pass


def loads(raw: bytes | str):
    """Parse client JSON like ``json.loads``; raise ``ValueError`` for invalid or too deeply nested text."""
    text = raw.decode(json.detect_encoding(raw), "surrogatepass") if isinstance(raw, (bytes, bytearray)) else raw
    if depth_exceeds(text, MAX_DEPTH):
        raise TooDeep(f"it nests deeper than {MAX_DEPTH} levels")
    return _DECODER.decode(text)


def _number(text: str):
    """A JSON number with a fraction or exponent: ``int`` when it is whole (``1.0``, ``1e3``), as
    JSON Schema counts it an integer (:mod:`core.bodyschema`), so handlers get the type it allowed."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range")
    return int(value) if value.is_integer() else value


def _not_json(name: str):
    raise ValueError(f"{name} is not a JSON number")


# One decoder for every body (``json.loads`` with these options would build a new one per call).
_DECODER = json.JSONDecoder(parse_float=_number, parse_constant=_not_json)


def depth_exceeds(text: str, limit: int) -> bool:
    """Whether ``text`` (JSON, valid or not) opens more than ``limit`` arrays or objects at once.

    For invalid text the answer may be a false ``True`` (an unclosed string counts its brackets),
    never a false ``False`` for the part a parser reads before it fails."""
    if text.count("[") + text.count("{") <= limit:
        return False
    if '"' in text:
        text = _STRING.sub("", text)
    signs = array.array("b", text.encode("utf-8", "surrogatepass").translate(_TO_SIGNS, _NOT_BRACKETS))
    return max(itertools.accumulate(signs), default=0) > limit


def parse_object(raw: bytes | None) -> dict:
    """A request body that must be a JSON object; 400 ``invalid-json`` otherwise (no body: ``null``)."""
    try:
        body = loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise Problem(400, "invalid-json", N_("The body is not valid JSON: %(exc)s."), args={"exc": exc}) from None
    if not isinstance(body, dict):
        raise Problem(400, "invalid-json", N_("The body must be a JSON object."))
    return body


def unstorable(value, raw: bytes | None) -> str | None:
    """What in ``value`` (parsed from ``raw``) PostgreSQL could not store, if anything; the walk
    is made only when ``raw`` could hold such text."""
    return unstorable_text(value) if _may_hold_unstorable(raw or b"") else None


def _may_hold_unstorable(raw: bytes) -> bool:
    """Whether parsed JSON from ``raw`` could hold text PostgreSQL cannot store (most bodies cannot,
    and need no walk). Strict JSON allows no raw control character in a string, so a NUL can
    only come from a ``\\u`` escape; a lone surrogate from an escape too, or from the bytes
    ``ED A0``-``ED BF`` (``json.loads`` decodes bytes with ``surrogatepass``). A NUL byte
    means UTF-16 or UTF-32, where escapes do not look like ``\\u`` bytes: walk then too."""
    return b"\\u" in raw or b"\xed" in raw or b"\x00" in raw


def unstorable_text(value, depth: int = 0) -> str | None:
    """Describe the first string (or key) in parsed JSON that PostgreSQL could not store, if any."""
    if depth > 64:
        return "nesting too deep"
    if isinstance(value, str):
        if "\x00" in value:
            return "a NUL character"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "an unpaired surrogate"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            found = unstorable_text(k, depth + 1) or unstorable_text(v, depth + 1)
            if found:
                return found
    elif isinstance(value, list):
        for v in value:
            found = unstorable_text(v, depth + 1)
            if found:
                return found
    return None
