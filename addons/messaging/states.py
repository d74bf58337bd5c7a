"""The per-recipient state machine. No other transitions exist; each is recorded with time and source.

    pending → processed (handed to a device) → sent → delivered
    pending | processed → failed (with an error code)      sent → failed (delivery failed)
    pending → cancelled                                    pending | processed → expired
    processed → pending (handed back: the phone went silent, or a retriable failure to retry elsewhere)
    pending → held (an addon's accept-time screening, e.g. abuse monitoring; or later, by review)
    held → pending (released: sent normally)   held → failed (rejected, error ``held-rejected``)
    held → cancelled | expired (the Customer cancels it; its valid_until passes while held)

A held recipient is accepted and durable but never offered to a phone: claims take ``pending`` only.

A report that arrives twice or out of order never moves a recipient backwards:
``delivered`` after ``sent`` applies, ``sent`` after ``delivered`` is ignored.
"""

from __future__ import annotations

TERMINAL = frozenset({"delivered", "failed", "cancelled", "expired"})
ALLOWED = {
    ("pending", "processed"), ("processed", "sent"), ("sent", "delivered"), ("processed", "delivered"),
    ("pending", "failed"), ("processed", "failed"), ("sent", "failed"),
    ("pending", "cancelled"), ("pending", "expired"), ("processed", "expired"),
    ("processed", "pending"),
    ("pending", "held"), ("held", "pending"), ("held", "failed"), ("held", "cancelled"), ("held", "expired"),
}
RANK = {"pending": 0, "held": 0, "processed": 1, "sent": 2, "delivered": 3, "failed": 3, "cancelled": 3, "expired": 3}
STATES = tuple(RANK)


def N_(message):  # marks the state names for the translators' catalogue
    return message


LABELS = (N_("pending"), N_("held"), N_("processed"), N_("sent"), N_("delivered"), N_("failed"), N_("cancelled"),
          N_("expired"))


# The error code of a held recipient that was rejected on review (documented in the API reference).
HELD_REJECTED = "held-rejected"


def allowed(from_state: str, to_state: str) -> bool:
    return (from_state, to_state) in ALLOWED


def is_forward(from_state: str, to_state: str) -> bool:
    return allowed(from_state, to_state) and (RANK[to_state] > RANK[from_state] or to_state == "failed")
