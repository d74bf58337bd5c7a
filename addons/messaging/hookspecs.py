"""Hooks the messaging addon offers: message events for webhooks, billing, abuse detection."""

import pluggy

hookspec = pluggy.HookspecMarker("smsgw")


@hookspec
def smsgw_message_event(tenant, event, data):
    """A message event happened. Called inside the tenant's transaction that made it happen,
    so subscribers can record their own work (e.g. webhook deliveries) atomically with it.

    :param tenant: the :class:`core.tenancy.TenantInfo`.
    :param event: ``accepted``, ``sent``, ``delivered``, ``failed``, ``cancelled``, ``expired``
        (per recipient) or ``received`` (an inbound SMS).
    :param data: a JSON-ready dict: ``message_id``, ``recipient_id``, ``phone``, ``state``,
        ``device_id``, ``error_code``, ``reference``, ``at`` (ISO 8601); for ``received``:
        ``inbound_id``, ``from``, ``body``, ``device_id``, ``received_at``.
    """
