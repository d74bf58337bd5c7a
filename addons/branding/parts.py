"""What another addon (a reseller's) may give a workspace's brand: :class:`BrandPart`."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class BrandPart:
    """A partial brand; ``""`` leaves a field to the next source. Sources, first wins per field:
    the workspace's own settings, then each ``smsgw_brand_defaults`` answer in addon order, then
    the platform's settings. Colours are ``#rrggbb``; ``logo_url`` is a path the workspace's own
    host serves (an ``<img>`` source: the page's CSP allows no other origin); ``theme`` names an
    installed ``themes/<name>``."""

    product_name: str = ""
    colour_brand: str = ""
    colour_text: str = ""
    mail_sender_name: str = ""
    support_email: str = ""
    theme: str = ""
    logo_url: str = ""


FIELDS = tuple(f.name for f in fields(BrandPart))


def merged(parts) -> BrandPart:
    """One part from several, the first non-empty value of each field winning."""
    values = {}
    for part in parts:
        for name in FIELDS:
            if not values.get(name):
                values[name] = getattr(part, name) or ""
    return BrandPart(**values)
