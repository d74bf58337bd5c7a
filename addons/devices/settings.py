"""Per-device settings: sending limits, random delay, working hours, SIM selection."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, available_timezones
from core.i18n import N_

DEFAULTS = {
    # Android itself allows 30 SMS per minute per app before it asks the user.
    "limits": {"per_minute": 30, "per_hour": 0, "per_day": 0},  # 0 = no limit
    "delay": {"min_ms": 0, "max_ms": 0},
    "working_hours": {"enabled": False, "start": "08:00", "end": "20:00", "timezone": "UTC",
                      "days": [0, 1, 2, 3, 4, 5, 6]},
    "sim": {"mode": "default", "slot": 1},
}
SIM_MODES = ("default", "round_robin", "fixed")


SCHEMA = "DeviceSettingsPatch"  # the published schema a settings patch is checked against


class SettingsError(ValueError):
    def __init__(self, errors: list[dict]):
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors


def merged(settings: dict | None) -> dict:
    out = {k: dict(v) for k, v in DEFAULTS.items()}
    for section, values in (settings or {}).items():
        if section in out and isinstance(values, dict):
            out[section].update(values)
    return out


def validate(patch: dict, current: dict | None = None) -> dict:
    """Apply ``patch`` onto ``current`` (or the defaults); return the new settings or raise.

    ``patch`` has the shape the published ``DeviceSettingsPatch`` schema allows (callers check it
    with :mod:`core.bodyschema`); here is what a schema cannot say."""
    result = merged(current)
    for section, values in patch.items():
        result[section].update(values)
    errors = []
    zone = patch.get("working_hours", {}).get("timezone")
    if zone is not None and zone not in _zones():
        errors.append({"field": "working_hours.timezone", "message": N_("must be an IANA time zone such as Europe/Berlin")})
    if result["delay"]["min_ms"] > result["delay"]["max_ms"]:
        errors.append({"field": "delay.min_ms", "message": N_("must not exceed delay.max_ms")})
    if errors:
        raise SettingsError(errors)
    return result


_ZONES = None


def _zones():
    global _ZONES
    if _ZONES is None:
        _ZONES = available_timezones()
    return _ZONES


def within_working_hours(settings: dict, now: dt.datetime | None = None) -> tuple[bool, dt.datetime | None]:
    """``(inside, next_opening_utc)`` for the device's working hours."""
    wh = merged(settings)["working_hours"]
    if not wh["enabled"]:
        return True, None
    tz = ZoneInfo(wh["timezone"])
    now = (now or dt.datetime.now(dt.timezone.utc)).astimezone(tz)
    start = dt.time.fromisoformat(wh["start"])
    end = dt.time.fromisoformat(wh["end"])

    def open_at(day: dt.date) -> bool:
        return day.weekday() in wh["days"]

    t = now.time()
    inside = (start <= t < end) if start <= end else (t >= start or t < end)
    if inside and open_at(now.date() if (start <= end or t >= start) else (now - dt.timedelta(days=1)).date()):
        return True, None
    for offset in range(0, 8):
        day = (now + dt.timedelta(days=offset)).date()
        candidate = dt.datetime.combine(day, start, tzinfo=tz)
        if candidate > now and open_at(day):
            return False, candidate.astimezone(dt.timezone.utc)
    return False, None
