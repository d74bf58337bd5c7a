"""JSON from clients: ``json.loads`` with its nesting bounded before it parses.

The standard library's parser recurses once per level: a body of 100,000 ``[`` raised
``RecursionError`` (a 500 and a traceback) on every JSON endpoint, signed in or not. Every
reader of client JSON uses :func:`loads` instead, which refuses more than :data:`MAX_DEPTH`
levels with a ``ValueError`` (what callers already answer as invalid JSON) before the parser
sees the text. No API body needs more than a few levels. ``NaN`` and ``Infinity`` (which
``json`` accepts, JSON does not) are refused too; whole numbers come back as ``int``.

The check costs nothing for most bodies (fewer brackets than the limit) and stays in C-speed
string operations for the rest: strings are cut out (their brackets are text), the brackets
left are turned into +1/-1 and the running sum's maximum is the depth.
"""

from __future__ import annotations

import array
import itertools
import json
import math
import re

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
    return json.loads(text, parse_float=_number, parse_constant=_not_json)


def _number(text: str):
    """A JSON number with a fraction or exponent: ``int`` when it is whole (``1.0``, ``1e3``), as
    JSON Schema counts it an integer (:mod:`core.bodyschema`), so handlers get the type it allowed."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is out of range")
    return int(value) if value.is_integer() else value


def _not_json(name: str):
    raise ValueError(f"{name} is not a JSON number")


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
