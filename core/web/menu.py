"""Dashboard menu entries contributed by core and addons (``smsgw_menu_items``).

The menu is grouped: entries without a group are the main ones (shown first, without a heading);
the others are shown under their group's heading, groups in their ``order``. Core offers the
groups below; an addon may declare a group of its own the same way (a :class:`MenuGroup`).
Entries of groups with the same label are shown together.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..i18n import N_


@dataclass(frozen=True)
class MenuGroup:
    label: str  # English msgid; translated when rendered
    order: int = 100


@dataclass(frozen=True)
class MenuItem:
    label: str  # English msgid; translated when rendered
    url: str
    permission: str = "dashboard:view"
    order: int = 100
    group: MenuGroup | None = None  # None: a main entry (Messages, Inbox, Devices ...)


INSIGHTS = MenuGroup(N_("Insights"), 50)  # figures and records: statistics, usage, audit
SETTINGS = MenuGroup(N_("Settings"), 70)  # how the workspace works: team, tokens, webhooks, billing
ACCOUNT = MenuGroup(N_("Your account"), 90)  # the signed-in person's own pages


def grouped(items: list[MenuItem]) -> list[tuple[MenuGroup | None, list[MenuItem]]]:
    """``items`` in groups: the main entries first, then each group by its order; within a group
    by the entries' order, then label."""
    groups: dict[str, tuple[MenuGroup | None, list[MenuItem]]] = {}
    for item in sorted(items, key=lambda i: (i.order, i.label)):
        key = item.group.label if item.group else ""
        groups.setdefault(key, (item.group, []))[1].append(item)
    return sorted(groups.values(), key=lambda g: (g[0] is not None, g[0].order if g[0] else 0,
                                                  g[0].label if g[0] else ""))
