"""The dashboard's list filters: read from the query string, kept in every link of the list (next
page, export), and handed to :mod:`.search` (which checks them)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from core import localtime

from addons.devices.models import Device

from .models import Campaign

MAX_LENGTH = 200  # longer values are cut here; search refuses what it cannot use


def read(handler, names: tuple[str, ...]) -> dict:
    """The filters of ``names`` in the request, as typed (stripped), empty ones left out."""
    out = {}
    for name in names:
        value = (handler.get_query_argument(name, "") or "").strip()[:MAX_LENGTH]
        if value:
            out[name] = value
    return out


def query_args(handler, args: dict) -> dict:
    """``args`` as :mod:`.search` takes them: the workspace's region for national numbers, the
    cursor, and date-only ``since``/``until`` (the form's date fields) as whole days of the member's
    own time zone (``until`` includes its day)."""
    out = dict(args, _region=handler.tenant.default_region, cursor=handler.get_query_argument("cursor", None))
    zone = handler.principal.time_zone if handler.principal else ""
    for name, days_after in (("since", 0), ("until", 1)):
        value = out.get(name, "")
        if len(value) == 10:
            try:
                day = dt.date.fromisoformat(value) + dt.timedelta(days=days_after)
            except (ValueError, OverflowError):
                continue  # search names it
            out[name] = localtime.typed_to_utc(f"{day.isoformat()}T00:00", zone)
    return out


def kept(args: dict) -> str:
    """The filters as a query string, for the links of the list (next page, CSV export)."""
    return urlencode(sorted(args.items()))


def choices() -> dict:
    """Inside the tenant transaction: the phones and the latest campaigns to choose from."""
    return {"devices": list(Device.select(Device.id, Device.name).where(Device.removed_at.is_null())
                            .order_by(Device.name)),
            "campaigns": list(Campaign.select(Campaign.id, Campaign.name, Campaign.created_at)
                              .order_by(Campaign.id.desc()).limit(50))}
