"""What other addons add to the dashboard's messaging pages, through this addon's hooks
(:mod:`addons.messaging.hookspecs`): names for numbers, fields of the send and reply forms, and
the send request those fields make. Messaging itself knows nothing of contacts or templates."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import runtime


@dataclass(frozen=True)
class ContactLabel:
    """How a number is shown: a name, and a page about it (``url``, may be empty)."""

    name: str
    url: str = ""


@dataclass(frozen=True)
class SendFormPart:
    """A template included inside the send or reply form, with its own context (as ``part.context``)."""

    template: str
    context: dict = field(default_factory=dict)
    order: int = 100


def labels(tenant, phones) -> dict[str, ContactLabel]:
    """``{phone: ContactLabel}`` for the numbers some addon names (inside the tenant's transaction)."""
    wanted = list(dict.fromkeys(p for p in phones if p))
    out: dict[str, ContactLabel] = {}
    if not wanted:
        return out
    for found in runtime.platform().registry.hook.smsgw_contact_labels(tenant=tenant, phones=wanted):
        for phone, label in (found or {}).items():
            out.setdefault(phone, label)
    return out


def parts(tenant, principal, where: str, form: dict) -> list[SendFormPart]:
    found = runtime.platform().registry.hook.smsgw_send_form_parts(tenant=tenant, principal=principal,
                                                                    where=where, form=form)
    return sorted((p for group in found if group for p in group), key=lambda p: p.order)


def form_body(tenant, principal, form: dict, body: dict) -> dict:
    """The send request the form makes, once the addons' fields are applied (inside the tenant's
    transaction). A :class:`Problem` an addon raises (an unknown group) is the form's error."""
    made = runtime.platform().registry.hook.smsgw_send_form_body(tenant=tenant, principal=principal, form=form,
                                                                   body=body)
    return body if made is None else made


def rejected_of(response: dict) -> list[dict]:
    """The refused recipients of a send's answer, whether one message or a batch."""
    return [r for m in response.get("messages", [response]) for r in m.get("rejected", [])]


def landing(response: dict) -> str:
    """Where the dashboard goes after a send: the message, or the list for a batch."""
    return "/messages" if "messages" in response else f"/messages/{response['id']}"

