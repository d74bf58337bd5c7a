"""Hooks the messaging addon offers: message events for webhooks, billing, abuse detection."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from core.permissions import Principal
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
        ``reference``, ``at`` (ISO 8601); ``held`` (per recipient, after its ``accepted``, or when a
        pending one is held later) adds ``hold_reason``; for ``received``: ``inbound_id``, ``from``, ``body``,
        ``device_id``, ``received_at``.

    Result: none.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec
def smsgw_messages_submitting(tenant: TenantInfo, segments: list[int], recipients: list[list[str]]) -> list | None:
    """Sends are about to be stored: the last word before anything of them is written (quotas,
    a suspended workspace). Called inside the tenant's transaction that will store them, after
    validation, idempotent replays and opt-outs, once per group of requests (group commit stores
    several requests in one transaction; each may be refused alone).

    An implementation that refuses must be exact at its boundary: what it lets through here is
    stored in this transaction unless the transaction fails, in which case each request comes
    back through this hook on its own. Keep the usual case free of database work (a cache); a
    statement here is paid by every send.

    :param tenant: the :class:`core.tenancy.TenantInfo`.
    :param segments: per request of the group, in order, the segments it would store: the sum over
        its messages of (recipients that will be stored) x (the message's segments).
    :param recipients: per request of the group, in order, the E.164 numbers it would store (each
        once), e.g. for a sandbox that allows only verified numbers.

    Result: collected: each result is ``None`` (nothing refused) or a list as long as ``segments``
        holding ``None`` or the :class:`core.web.problem.Problem` that refuses that request (nothing
        of it is stored; its client gets the problem). A request is refused when any addon refuses it.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """



@hookspec
def smsgw_messages_screening(tenant: TenantInfo, messages: list[dict]) -> dict | None:
    """Sends are about to be stored (after :func:`smsgw_messages_submitting` let them through): which
    recipients to hold for review instead of offering them to phones (abuse and fraud monitoring).
    Called inside the tenant's transaction that will store them, once per group of requests with all
    their messages, so an implementation can judge the batch as a whole (a burst to sequential
    numbers, a volume spike). Keep it cheap: it runs for every send (memory, or one statement over
    the batch; never a scan of history per call).

    :param tenant: the :class:`core.tenancy.TenantInfo`.
    :param messages: the messages to be stored, in order: dicts with ``text``, ``phones`` (E.164, the
        recipients to be stored), ``source`` (``api``, ``web``, ``csv``, ``retry`` ...), ``created_by``
        (the actor: ``user:<id>``, ``token:<id>`` ...), ``send_at`` and ``valid_until``. Read only.

    Result: collected: each result is ``None`` (hold nothing) or ``{(index, phone): reason}``: the
        recipient ``phone`` of ``messages[index]`` is stored ``held`` with ``reason`` (words for
        people, at most 200 characters) and a ``held`` event follows its ``accepted`` one. When
        several addons hold one recipient, the first reason (dependency order) is kept.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


# -- the dashboard: names for numbers, and what other addons add to the send form ---------------

@hookspec
def smsgw_contact_labels(tenant: TenantInfo, phones: list[str]) -> dict | None:
    """Names to show instead of bare numbers on the messaging pages (messages, inbox, conversations,
    opt-outs). Called inside the tenant's transaction, once per page with the numbers it shows.

    :param tenant: the :class:`core.tenancy.TenantInfo`.
    :param phones: E.164 numbers (no duplicates).

    Result: collected: each result is ``None`` or ``{phone: ContactLabel}`` (see
        :class:`addons.messaging.sendform.ContactLabel`); for a number several addons name, the first
        (in dependency order) wins.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec
def smsgw_send_form_parts(tenant: TenantInfo, principal: Principal, where: str, form: dict) -> list | None:
    """Fields another addon adds to the send form (``where="send"``) or to a conversation's reply
    form (``where="reply"``), e.g. a contact group or a template. Called inside the tenant's
    transaction each time the form is shown.

    :param tenant: the :class:`core.tenancy.TenantInfo`.
    :param principal: who is looking (:class:`core.permissions.Principal`).
    :param where: ``"send"`` or ``"reply"``.
    :param form: what the form holds now: ``{name: [values]}`` from the query (a link that fills the
        form) or from the posted form being shown again with its errors.

    Result: collected: each result is ``None`` or a list of
        :class:`addons.messaging.sendform.SendFormPart` (a template included inside the form, and its context).
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec(firstresult=True)
def smsgw_send_form_body(tenant: TenantInfo, principal: Principal, form: dict, body: dict) -> dict | None:
    """Turn the send form's extra fields (those of :func:`smsgw_send_form_parts`) into the send
    request: add a group's numbers to the recipients, fill a template's fields per recipient (a
    ``{"messages": [...]}`` batch then). Called inside the tenant's transaction, before the request
    is validated like any API request. Stops at first non-None result.

    :param tenant: the :class:`core.tenancy.TenantInfo`.
    :param principal: who sends (:class:`core.permissions.Principal`).
    :param form: the posted form, ``{name: [values]}`` (strings).
    :param body: the request the form's own fields make: ``text``, ``to`` (as typed), and
        ``device_id``/``send_at`` when given (the body of ``POST /api/v1/messages``).

    Result: first non-None: the body to send instead (``{"messages": [...]}`` or the shape of
        ``body``); ``None`` from every addon: ``body`` as it is.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """
