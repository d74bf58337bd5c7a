"""The dashboard's list filters: read from the query string, kept in every link of the list (next
page, export), and handed to :mod:`.search` (which checks them)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

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
    cursor, and a date-only ``until`` (the form's date field) meaning the whole of that day."""
    out = dict(args, _region=handler.tenant.default_region, cursor=handler.get_query_argument("cursor", None))
    until = out.get("until", "")
    if len(until) == 10:
        try:
            out["until"] = (dt.date.fromisoformat(until) + dt.timedelta(days=1)).isoformat()
        except (ValueError, OverflowError):
            pass  # search names it
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
