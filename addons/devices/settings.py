"""Per-device settings: sending limits, random delay, working hours, SIM selection."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo, available_timezones

DEFAULTS = {
    # Android itself allows 30 SMS per minute per app before it asks the user.
    "limits": {"per_minute": 30, "per_hour": 0, "per_day": 0},  # 0 = no limit
    "delay": {"min_ms": 0, "max_ms": 0},
    "working_hours": {"enabled": False, "start": "08:00", "end": "20:00", "timezone": "UTC",
                      "days": [0, 1, 2, 3, 4, 5, 6]},
    "sim": {"mode": "default", "slot": 1},
}
SIM_MODES = ("default", "round_robin", "fixed")
TIME_RE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]\Z")


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
    """Apply ``patch`` onto ``current`` (or the defaults); return the new settings or raise."""
    if not isinstance(patch, dict):
        raise SettingsError([{"field": "settings", "message": "must be an object"}])
    result = merged(current)
    errors = []
    for section, values in patch.items():
        if section not in DEFAULTS:
            errors.append({"field": section, "message": f"unknown section; known: {', '.join(DEFAULTS)}"})
            continue
        if not isinstance(values, dict):
            errors.append({"field": section, "message": "must be an object"})
            continue
        for key, value in values.items():
            field = f"{section}.{key}"
            if key not in DEFAULTS[section]:
                errors.append({"field": field, "message": "unknown setting"})
                continue
            message = _check(section, key, value)
            if message:
                errors.append({"field": field, "message": message})
            else:
                result[section][key] = value
    if not errors:
        d = result["delay"]
        if d["min_ms"] > d["max_ms"]:
            errors.append({"field": "delay.min_ms", "message": "must not exceed delay.max_ms"})
    if errors:
        raise SettingsError(errors)
    return result


def _check(section, key, value):
    if section in ("limits", "delay"):
        top = {"limits": 100_000, "delay": 3_600_000}[section]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
            return f"must be a whole number from 0 to {top}"
    elif section == "working_hours":
        if key == "enabled" and not isinstance(value, bool):
            return "must be true or false"
        if key in ("start", "end") and (not isinstance(value, str) or not TIME_RE.match(value)):
            return "must be a time like 08:30"
        if key == "timezone" and (not isinstance(value, str) or value not in _zones()):
            return "must be an IANA time zone such as Europe/Berlin"
        if key == "days" and (not isinstance(value, list) or not value or
                              any(not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= 6 for d in value)):
            return "must be a non-empty list of weekdays 0 (Monday) to 6 (Sunday)"
    elif section == "sim":
        if key == "mode" and value not in SIM_MODES:
            return f"must be one of {', '.join(SIM_MODES)}"
        if key == "slot" and (not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 4):
            return "must be a SIM slot from 1 to 4"
    return None


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
