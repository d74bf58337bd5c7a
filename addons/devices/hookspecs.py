"""Hooks the devices addon offers to others (the messaging addon implements them).

All are called inside the tenant's transaction unless said otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from core.tenancy import TenantInfo

    from .models import Device, DeviceInbound

hookspec = pluggy.HookspecMarker("smsgw")


@hookspec
def smsgw_device_claim(tenant: TenantInfo, device: Device, limit: int) -> list[dict]:
    """Atomically claim up to ``limit`` outgoing SMS for ``device`` and return them.

    Claimed work must never be handed to two devices (use ``FOR UPDATE SKIP
    LOCKED``). Each item is a dict with at least ``id``, ``to`` (E.164),
    ``text`` and optionally ``sim_slot``, ``delivery_report``, ``valid_until``.

    :param tenant: the :class:`core.tenancy.TenantInfo`.
    :param device: the :class:`addons.devices.models.Device` row (locked for update).
    :param limit: the most items to return.

    Result: collected: the devices addon takes items from each list in turn, up to ``limit``
        (an addon called after the limit was reached is not asked).
    Order: dependencies first: an earlier addon's work goes out first.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec
def smsgw_device_unclaim(tenant: TenantInfo, device_id: int, ids: list[int]) -> None:
    """Items claimed for the device could not be handed over (the phone hung up while they were
    being claimed): put them back for any phone, at once, not after the claim timeout.

    :param ids: the ``id`` of each item :func:`smsgw_device_claim` returned.

    Result: none (an addon ignores ids it did not hand out).
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec
def smsgw_device_held(tenant: TenantInfo, device_id: int, ids: list[int]) -> list[dict]:
    """Of ``ids`` (items :func:`smsgw_device_claim` handed to ``device_id``), those the device still
    holds: claimed by it and since neither reported on, handed back, cancelled nor expired. A
    protocol whose phones acknowledge what they were given (the app's ``GET /message`` keeps
    offering a message until the phone reports on it) offers these again.

    :param ids: item ids, as :func:`smsgw_device_claim` returned them.

    Result: collected: each addon returns its own items, in the shape of a claimed item.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec
def smsgw_device_recall(tenant: TenantInfo, device_id: int, ids: list[int]) -> dict[int, str | None] | None:
    """Items claimed by ``device_id`` are to be cancelled: ask the phone not to send them, if its
    protocol can. Answer ``{id: None}`` for those the phone will be asked to cancel (they stay
    claimed until it reports on them), ``{id: reason}`` for those it cannot be asked (a reason for
    people, e.g. its app version does not know cancelling), ``None`` for a device that is not yours.

    Result: collected: the answers are merged; an id nobody answered for cannot be called back.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec(firstresult=True)
def smsgw_device_reports(tenant: TenantInfo, batches: list[tuple[Device, list[dict]]]) -> list[list[dict]] | None:
    """Apply status reports; return one list of results per batch, each one result per report, in order.

    :param batches: ``[(device, reports)]``, the reports of one or several phones (a phone
        may appear more than once; apply its batches in the order given), done in one
        transaction. Each device is loaded with its id, name, enabled, online, last_seen_at
        and removed_at only (reading settings and SIMs for every report cost more than the rest).

    A report is ``{"message_id", "recipient" (optional), "state": sent|delivered|failed,
    "error_code" (optional), "at"}``. Results are ``{"message_id", "status": "applied" |
    "ignored" | "unknown", "state": <current state>}``. Repeated or late reports must never
    move a message backwards.

    Result: first: stops at the first non-``None`` result (one addon owns the messages
        reported on); with none, every report is ``unknown``.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec
def smsgw_device_inbound(tenant: TenantInfo, device: Device, message: DeviceInbound) -> None:
    """An inbound SMS was stored for the first time (never called for a duplicate upload).

    :param message: :class:`addons.devices.models.DeviceInbound`.

    Result: none.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec
def smsgw_device_online(tenant: TenantInfo, device: Device) -> None:
    """``device`` made contact after being offline. Called inside the tenant transaction that
    recorded the contact (a poll's claim, a report, an upload, a heartbeat): record your own work
    there, so it commits with the contact or not at all, and keep it small (it is on a phone's path).

    Result: none.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec
def smsgw_device_offline(tenant: TenantInfo, device: Device) -> None:
    """``device`` missed its expected contact. Called inside the tenant transaction of the sweep.

    The messaging addon hands the device's unreported work back to the queue here.

    Result: none.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec
def smsgw_device_waiting_reasons(tenant: TenantInfo) -> dict[int, str]:
    """Return ``{device_id: reason}`` for devices that cannot take work now (rate limits ...).

    Result: collected: the devices page merges the dicts.
    Order: dependencies first; for a device two addons name, the later addon's reason wins.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec
def smsgw_device_counts(tenant: TenantInfo) -> dict[int, dict[str, int]]:
    """Return ``{device_id: {"sent_today": n, ...}}`` for the devices page.

    Result: collected: the devices page merges each device's counts.
    Order: dependencies first; for a count two addons give, the later addon's wins.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec
def smsgw_device_waiting_work(tenant: TenantInfo) -> dict[int, int]:
    """Return how much work waits for phones: ``{device_id: n}`` for work only that phone may
    take (sent to it, or claimed by it and not reported yet), ``{0: n}`` for work any phone may
    take. The Overview and the offline alerts use it to tell a phone that matters from an idle one.
    Keep it to an indexed count or two (it runs on every Overview).

    Result: collected: the devices addon adds up the counts.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """
