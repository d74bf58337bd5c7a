"""Hooks the messaging addon offers: message events for webhooks, billing, abuse detection."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from core.tenancy import TenantInfo

hookspec = pluggy.HookspecMarker("smsgw")


@hookspec
def smsgw_message_events(tenant: TenantInfo, events: list[tuple[str, dict]]) -> None:
    """Message events happened. Called inside the tenant's transaction that made them happen,
    so subscribers can record their own work (e.g. webhook deliveries) atomically with it.

    Events come in batches (one call per request or sweep: a 1,000-recipient send is one
    call with 1,000 ``accepted`` events), so a subscriber can do its work set-based.

    :param tenant: the :class:`core.tenancy.TenantInfo`.
    :param events: a list of ``(event, data)`` pairs, in the order they happened. ``event``
        is ``accepted``, ``sent``, ``delivered``, ``failed``, ``cancelled``, ``expired`` (per
        recipient) or ``received`` (an inbound SMS). ``data`` is a JSON-ready dict:
        ``message_id``, ``recipient_id``, ``phone``, ``state``, ``device_id``, ``error_code``,
        ``reference``, ``at`` (ISO 8601); for ``received``: ``inbound_id``, ``from``, ``body``,
        ``device_id``, ``received_at``.

    Result: none.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """
