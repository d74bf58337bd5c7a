"""Ids, counts and times in requests are read by one kernel function each, and hostile text is refused.

``core.web.params`` reads ids and counts, ``core.clock.parse_iso`` reads times; every endpoint
goes through them, so the native API, the compat API and the device protocol accept and refuse
the same text (checked over HTTP at the end).
"""

from __future__ import annotations

import datetime as dt

import pytest

from core.clock import MAX_ISO_LENGTH, parse_iso
from core.web.params import ID_DIGITS, is_digits, number_or_none, parse_id, whole_number
from core.web.problem import Problem
from tests.support.identity import client
from tests.support.messaging import row_counts
from tests.support.phones import api_client, api_token

UTC = dt.timezone.utc

# Text that is no id: other scripts' digits (str.isdigit takes them), signs, spaces, NUL, floats, too long.
NOT_IDS = ["", "abc", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "١٢", "²", "１", "1\x00", "\x00",
           "9" * (ID_DIGITS + 1), "1" * 10_000, None, 12, 1.5, True, b"12", ["1"]]


@pytest.mark.parametrize("value", NOT_IDS)
def test_text_that_is_no_id_is_refused_as_not_found_or_as_a_bad_filter(value):
    assert number_or_none(value) is None
    with pytest.raises(Problem) as found:
        parse_id(value, "message")
    assert (found.value.status, found.value.code, found.value.detail) == (
        404, "not-found", "There is no such message here.")
    with pytest.raises(Problem) as bad:
        parse_id(value, field="device_id")
    assert (bad.value.status, bad.value.code, bad.value.detail) == (
        400, "invalid-parameter", "device_id must be a number.")


def test_ids_up_to_eighteen_digits_are_read_and_always_fit_a_bigint():
    assert parse_id("0") == 0 and parse_id("007") == 7 and parse_id("42", "device") == 42
    longest = "9" * ID_DIGITS
    assert parse_id(longest) == int(longest) < 2**63
    assert is_digits("0123") and not is_digits("١٢") and not is_digits("") and not is_digits(5)


def test_counts_are_bounded_by_their_digits_and_their_range():
    assert whole_number("500", "bad", 3, 1, 500) == 500 and whole_number("0", "bad", 9) == 0
    for value in ("0", "501", "0500", "", "-1", "5 ", "١", "1\x00", None):
        with pytest.raises(Problem) as refused:
            whole_number(value, "limit must be from 1 to 500.", 3, 1, 500)
        assert (refused.value.status, refused.value.code, refused.value.detail) == (
            400, "invalid-parameter", "limit must be from 1 to 500.")


@pytest.mark.parametrize("value, expected", [
    ("2026-12-01T09:00:00Z", dt.datetime(2026, 12, 1, 9, tzinfo=UTC)),
    ("2026-12-01T10:30:00+01:30", dt.datetime(2026, 12, 1, 9, tzinfo=UTC)),
    ("2026-12-01T09:00:00.250-05:00", dt.datetime(2026, 12, 1, 14, 0, 0, 250000, tzinfo=UTC)),
    # No offset: UTC, what the clients we serve mean (the compat client sends such times).
    ("2026-12-01T09:00:00", dt.datetime(2026, 12, 1, 9, tzinfo=UTC)),
    ("2026-12-01", dt.datetime(2026, 12, 1, tzinfo=UTC)),
    ("9999-12-31T23:59:59Z", dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
])
def test_iso_times_are_read_as_aware_utc(value, expected):
    t = parse_iso(value)
    assert t == expected and t.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("value", [
    # garbage and near misses
    "", "yesterday", "now", "2026-13-01", "2026-02-30", "2026-12-01T24:00:00", "2026-12-01T09:00:00+25:00",
    "2026-12-01T09:00:00ZZ", "2026-12-01T09:00:00z", "١٢٠٢-12-01", "２０２６-12-01",
    # NUL and other control characters (fromisoformat stops reading at a NUL after the offset)
    "2026-12-01T09:00:00Z\x00", "2026-12-01T09:00:00+00:00\x00junk", "2026-12-01T09:00:00\x00", "\x00",
    "2026-12-01T09:00:00Z\n", "2026-12-01T09:00:00\t",
    # surrounding spaces (the compat API once stripped them; no endpoint takes them now)
    " 2026-12-01T09:00:00Z", "2026-12-01T09:00:00Z ",
    # huge years and times that leave the calendar once moved to UTC
    "10000-01-01T00:00:00Z", "99999999999-01-01", "0000-01-01", "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:30:00-01:00",
    # too long to be a time a client means, whatever it holds
    "2026-12-01T09:00:00." + "0" * MAX_ISO_LENGTH + "Z", "2" * 100_000,
    # not text
    None, 1_700_000_000, 1.5, True, b"2026-12-01", ["2026-12-01"], {"at": "2026-12-01"},
])
def test_hostile_or_malformed_times_are_refused(value):
    assert parse_iso(value) is None


def test_every_endpoint_reads_times_alike(live_server, make_tenant):
    """The native API's filter and body, and the compat API's body, refuse the same text."""
    tenant = make_tenant("isot")
    native = api_client(live_server, tenant.slug)
    compat = client(live_server, tenant.slug)
    compat.headers["Authorization"] = f"Bearer {api_token(tenant.slug)}"
    soon = (dt.datetime.now(UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    too_long = soon + "." + "0" * 30 + "Z"  # fromisoformat reads it; no client means it
    r = native.get("/api/v1/messages", params={"since": too_long})  # (Tornado strips a query's spaces)
    assert r.status_code == 400 and r.json()["code"] == "invalid-parameter", r.text
    before = row_counts(tenant)
    for bad in (f" {soon}Z", f"{soon}Z ", too_long):
        r = native.post("/api/v1/messages", json={"text": "hi", "to": ["+14155550123"], "send_at": bad})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "send_at", (bad, r.text)
        r = compat.post("/3rdparty/v1/messages", json={"phoneNumbers": ["+14155550123"],
                                                       "textMessage": {"text": "hi"}, "validUntil": bad})
        assert r.status_code == 400 and r.json()["data"]["errors"][0]["field"] == "validUntil", (bad, r.text)
    assert row_counts(tenant) == before
    # The same time, well formed, is taken by each.
    assert native.get("/api/v1/messages", params={"since": soon + "+01:00"}).status_code == 200
    r = native.post("/api/v1/messages", json={"text": "hi", "to": ["+14155550123"], "send_at": soon + "Z"})
    assert r.status_code == 202, r.text
    r = compat.post("/3rdparty/v1/messages", json={"phoneNumbers": ["+14155550123"], "textMessage": {"text": "hi"},
                                                   "validUntil": soon + "Z"})
    assert r.status_code == 202, r.text
