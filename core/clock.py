"""Time for the whole platform: now, in UTC, and the times clients send us, read one way.

Every stored time is an aware UTC ``datetime``. A client's time (an API's ``send_at``,
a filter's ``since``, a phone's report time) is read by :func:`parse_iso` alone, so all
endpoints accept and refuse the same text.
"""

from __future__ import annotations

import datetime as dt

# The longest ISO 8601 time a client needs: "2026-12-01T09:00:00.123456+01:00" is 32 characters.
MAX_ISO_LENGTH = 40


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def parse_iso(value) -> dt.datetime | None:
    """An ISO 8601 date or time from a client as an aware UTC ``datetime``; ``None`` when ``value``
    is not one (the caller answers with its own message).

    A time without an offset is UTC (what the clients we serve mean by it); ``Z`` means UTC.
    Refused: anything but a string, more than :data:`MAX_ISO_LENGTH` characters, any character
    that is not printable ASCII (``fromisoformat`` ignores a NUL after the offset), surrounding
    spaces, and times that leave the calendar once moved to UTC (year 1 at +01:00).
    """
    if not isinstance(value, str) or len(value) > MAX_ISO_LENGTH or not (value.isascii() and value.isprintable()):
        return None
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):
        return None
