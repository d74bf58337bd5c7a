"""The workspace's Overview (``/``): the kernel's own figures, plus the parts addons give it.

The kernel knows no phone or message: each addon that has something to show on the home page
implements ``smsgw_overview_parts`` and returns :class:`OverviewPart` objects. The page calls the
hook once, inside the one tenant transaction it opens, so the whole page costs one transaction and
the few indexed statements its parts run (keep a part cheap: read counters, not message tables).

A part may add items to two shared lists the kernel renders above the parts:

* *Needs attention* (:class:`Attention`): what the workspace should act on now;
* *First steps* (:class:`FirstStep`): a new workspace's checklist, which ticks itself from what
  exists; it is shown until every step is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attention:
    """One line of *Needs attention*: already translated ``text``, where to act (``url``) and how
    urgent (``level``: ``error`` or ``warning``)."""

    text: str
    url: str = ""
    level: str = "warning"


@dataclass(frozen=True)
class FirstStep:
    """One step of the first-steps checklist: an already translated ``label``, whether it is
    ``done``, where to do it (``url``); steps are sorted by ``order``."""

    key: str
    label: str
    done: bool
    url: str
    order: int = 50


@dataclass(frozen=True)
class OverviewPart:
    """A section of the Overview: ``template`` is included with this part as ``part`` (its
    ``data`` for the figures); parts are sorted by ``order``. ``template=None`` gives only
    attention items or steps."""

    template: str | None = None
    order: int = 50
    data: dict = field(default_factory=dict)
    attention: list[Attention] = field(default_factory=list)
    steps: list[FirstStep] = field(default_factory=list)


def collect(results) -> tuple[list[OverviewPart], list[Attention], list[FirstStep]]:
    """The hook's results (each a part, a list of parts or ``None``) as the page shows them."""
    parts: list[OverviewPart] = []
    for result in results:
        if result is None:
            continue
        parts.extend(result if isinstance(result, (list, tuple)) else [result])
    attention = [a for p in parts for a in p.attention]
    attention.sort(key=lambda a: a.level != "error")  # errors first, otherwise in the parts' order
    steps = sorted((s for p in parts for s in p.steps), key=lambda s: (s.order, s.key))
    shown = sorted((p for p in parts if p.template), key=lambda p: p.order)
    return shown, attention, steps
