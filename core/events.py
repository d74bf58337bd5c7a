"""Security and access events, handed to whichever addon records them (``smsgw_audit_event``).

Core emits; it does not store. Call :func:`emit` outside any tenant
transaction (recorders write to the catalogue as the serving role), or
:func:`emit_with_work` inside one, so the work and its record commit together.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AuditEvent:
    action: str  # e.g. "login.success", "token.created", "admin.access"
    tenant_id: int | None = None
    tenant_slug: str | None = None
    actor: str = ""  # "user:12", "admin:3", "token:7", "system"
    actor_name: str = ""
    target: str = ""
    ip: str = ""
    user_agent: str = ""
    reason: str | None = None
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def emit(platform, event: AuditEvent) -> None:
    try:
        platform.registry.hook.smsgw_audit_event(event=event)
    except Exception:
        # Recording must never be silently skipped: log loudly, then re-raise.
        log.exception("recording audit event %s failed", event.action)
        raise


def emit_with_work(platform, event: AuditEvent) -> None:
    """Inside a tenant transaction: record ``event`` in it, so the work it records and the record
    commit together or not at all. A handler that recorded after its commit answered an error
    for work that was done when only the record failed (and a client retried it)."""
    from .db import as_serving_role

    with as_serving_role():
        emit(platform, event)
