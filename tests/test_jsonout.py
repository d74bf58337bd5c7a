"""API answers are written by orjson; they must read back exactly as the json module wrote them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json
import uuid

import pytest

from core.web.jsonout import json_bytes


@dataclasses.dataclass
class Point:
    x: int


CASES = {
    "recipients": {"id": 7, "state": "pending", "recipients": [{"id": i, "phone": f"+1415555{i:04d}"} for i in range(50)]},
    "datetimes go through str": {"at": dt.datetime(2026, 11, 27, 5, 6, 7, 123456, tzinfo=dt.timezone.utc),
                                  "naive": dt.datetime(2026, 1, 2, 3, 4), "day": dt.date(2026, 2, 3)},
    "keys that are not text": {1: "one", 2.5: "x", None: "n", True: "t"},
    "non-ASCII and escapes": {"text": "Grüße 👋 \"quoted\" back\\slash\nline\ttab \u2028 \x00"},
    "integers beyond 64 bits": {"big": 2 ** 70, "neg": -(2 ** 65)},
    "unpaired surrogate": {"text": "a\ud800b"},
    "other types through str": {"dec": decimal.Decimal("1.10"), "uuid": uuid.UUID(int=5), "point": Point(3)},
    "scalars and empties": [None, True, False, 0, -1, 1.5, "", [], {}],
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_reads_back_as_the_json_module_wrote_it(name):
    data = CASES[name]
    out = json_bytes(data)
    assert isinstance(out, bytes)
    assert json.loads(out) == json.loads(json.dumps(data, default=str))


def test_the_answer_is_compact_utf8():
    assert json_bytes({"t": "é", "n": [1, 2]}) == '{"t":"é","n":[1,2]}'.encode()
