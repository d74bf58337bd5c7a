"""Hooks the devices addon offers to others (the messaging addon implements them).

All are called inside the tenant's transaction unless said otherwise.
"""

import pluggy

hookspec = pluggy.HookspecMarker("smsgw")


@hookspec
def smsgw_device_claim(tenant, device, limit):
    """Atomically claim up to ``limit`` outgoing SMS for ``device`` and return them.

    Claimed work must never be handed to two devices (use ``FOR UPDATE SKIP
    LOCKED``). Each item is a dict with at least ``id``, ``to`` (E.164),
    ``text`` and optionally ``sim_slot``, ``delivery_report``, ``valid_until``.

    :param tenant: the :class:`core.tenancy.TenantInfo`.
    :param device: the :class:`addons.devices.models.Device` row (locked for update).
    :param limit: the most items to return.
    """


@hookspec
def smsgw_device_unclaim(tenant, device_id, ids):
    """Items claimed for the device could not be handed over (the phone hung up while they were
    being claimed): put them back for any phone, at once, not after the claim timeout.

    :param ids: the ``id`` of each item :func:`smsgw_device_claim` returned.
    """


@hookspec
def smsgw_device_reports(tenant, batches):
    """Apply status reports; return one list of results per batch, each one result per report, in order.

    :param batches: ``[(device, reports)]``, the reports of one or several phones (a phone
        may appear more than once; apply its batches in the order given), done in one
        transaction. Each device is loaded with its id, name, enabled, online, last_seen_at
        and removed_at only (reading settings and SIMs for every report cost more than the rest).

    A report is ``{"message_id", "recipient" (optional), "state": sent|delivered|failed,
    "error_code" (optional), "at"}``. Results are ``{"message_id", "status": "applied" |
    "ignored" | "unknown", "state": <current state>}``. Repeated or late reports must never
    move a message backwards.
    """


@hookspec
def smsgw_device_inbound(tenant, device, message):
    """An inbound SMS was stored for the first time (never called for a duplicate upload).

    :param message: :class:`addons.devices.models.DeviceInbound`.
    """


@hookspec
def smsgw_device_online(tenant, device):
    """``device`` made contact after being offline. Called outside transactions."""


@hookspec
def smsgw_device_offline(tenant, device):
    """``device`` missed its expected contact. Called inside the tenant transaction of the sweep.

    The messaging addon hands the device's unreported work back to the queue here.
    """


@hookspec
def smsgw_device_waiting_reasons(tenant):
    """Return ``{device_id: reason}`` for devices that cannot take work now (rate limits ...)."""


@hookspec
def smsgw_device_counts(tenant):
    """Return ``{device_id: {"sent_today": n, ...}}`` for the devices page."""
