"""Hooks the billing addon offers: payment providers (resellers add theirs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .payments import PaymentProvider

hookspec = pluggy.HookspecMarker("smsgw")


@hookspec
def smsgw_billing_payment_providers() -> list[PaymentProvider]:
    """Payment providers a workspace can pay its invoices with. The billing addon ships ``manual``
    (bank transfer, marked paid by an Admin) and ``stripe``; a reseller's addon returns its own
    :class:`addons.billing.payments.PaymentProvider` objects (each with a unique ``name``). A
    provider reports outcomes through :func:`addons.billing.payments.record_outcome`, which marks
    the invoice and tells the subscription.

    Result: collected: every addon's providers; of two with one name the first (dependency
    order) wins and the other is ignored, with an error logged.
    Order: dependencies first.
    """
