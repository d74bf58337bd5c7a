"""Dashboard menu entries contributed by core and addons (``smsgw_menu_items``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MenuItem:
    label: str  # English msgid; translated when rendered
    url: str
    permission: str = "dashboard:view"
    order: int = 100
