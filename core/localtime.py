"""Times on pages in the reader's time zone, with the UTC time on hover.

Each member chooses a time zone on their account page (``users.time_zone``, an IANA name; empty:
UTC). Templates write a stored time as ``{{ when(t) }}``: a ``<time>`` element whose text is the
time in the member's zone and whose ``title`` (shown on hover) and ``datetime`` give it in UTC, so
two people in different zones can still compare what they see.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import lru_cache

from markupsafe import Markup, escape

from .clock import parse_iso

UTC = dt.timezone.utc


@lru_cache(maxsize=1)
def time_zones() -> tuple[str, ...]:
    """The IANA zone names a member can choose, sorted (``UTC`` included)."""
    return tuple(sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC"))


def valid_zone(name: str) -> bool:
    return name == "" or name in time_zones()


@lru_cache(maxsize=256)
def _zone(name: str) -> dt.tzinfo:
    return zoneinfo.ZoneInfo(name) if name and name in time_zones() else UTC


def as_utc(value) -> dt.datetime | None:
    """A stored time (an aware or naive-UTC ``datetime``, or an ISO 8601 string) as aware UTC."""
    if isinstance(value, str):
        return parse_iso(value)
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return None


def zone_name_or_utc(zone_name: str) -> str:
    """The zone a member reads and types times in, by its name (``UTC`` when none is chosen)."""
    return zone_name if zone_name and zone_name in time_zones() else "UTC"


def typed_to_utc(text: str, zone_name: str) -> str | None:
    """A time typed in a form (``2026-03-29T09:30``, a ``datetime-local`` field) as ISO 8601 UTC
    (``…Z``): without an offset it is read in the member's zone ``zone_name``; with one, as written.
    None for text that is not a time (the caller's validation names it)."""
    try:
        t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=_zone(zone_name))
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_text(value, zone_name: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``value`` as plain text in the zone ``zone_name``, the zone named (``14:30 CET``, ``14:30 UTC``):
    for a time inside a sentence, where no ``<time>`` element (and no hover) fits."""
    t = as_utc(value)
    if t is None:
        return ""
    return t.astimezone(_zone(zone_name)).strftime(fmt + " %Z")


def formatter(zone_name: str):
    """``when(value, fmt="%Y-%m-%d %H:%M")`` for templates: ``value`` in the zone ``zone_name``,
    marked up as ``<time datetime="…Z" title="… UTC">``; an empty string for no time."""
    zone = _zone(zone_name)

    def when(value, fmt: str = "%Y-%m-%d %H:%M") -> Markup:
        t = as_utc(value)
        if t is None:
            return Markup("")
        local = t.astimezone(zone)
        utc_text = t.strftime(fmt) + " UTC"
        return Markup('<time datetime="{}" title="{}">{}</time>').format(
            t.strftime("%Y-%m-%dT%H:%M:%SZ"), utc_text, escape(local.strftime(fmt)))

    return when
