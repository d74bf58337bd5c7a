"""The platform and task handles the webhooks addon uses (set by its hooks at start-up)."""

from __future__ import annotations

import logging
import os
import socket
import threading

log = logging.getLogger(__name__)

_platform = None
_deliver_task = None
_pool = None
_pool_lock = threading.Lock()


def set_platform(platform) -> None:
    global _platform
    _platform = platform


def platform():
    if _platform is None:
        raise RuntimeError("the webhooks addon was used before the platform started")
    return _platform


def set_deliver_task(task) -> None:
    global _deliver_task
    _deliver_task = task


def delivery_pool():
    """The pool of this (worker) process that makes deliveries, sized by the settings."""
    global _pool
    with _pool_lock:
        if _pool is None:
            from .pool import DeliveryPool

            s = platform().settings
            _pool = DeliveryPool(s.webhook_workers, s.webhook_tenant_concurrency, s.webhook_timeout,
                                 lease=s.webhook_lease)
        return _pool


def lease_seconds() -> float:
    """How long a delivery's claim holds unless renewed (SMSGW_WEBHOOK_LEASE)."""
    return float(platform().settings.webhook_lease)


_boot_id = None


def process_id() -> str:
    """``host:pid:boot id``: names the process holding a claim (a pid alone repeats across hosts
    and reboots); read per call, so a forked child is not taken for its parent."""
    global _boot_id
    if _boot_id is None:
        try:
            with open("/proc/sys/kernel/random/boot_id") as f:
                _boot_id = f.read().strip()[:8]
        except OSError:
            _boot_id = "-"
    return f"{socket.gethostname()}:{os.getpid()}:{_boot_id}"


def after_commit_deliver(delivery_ids: list[int]) -> None:
    """Trigger attempts soon. The task retries briefly until the recording transaction has
    committed; if nothing triggers at all, the due job (armed by the recording transaction) still
    finds the work due."""
    from core.db import current_tenant

    tenant = current_tenant.get()
    if _deliver_task is None or tenant is None:
        return
    for delivery_id in delivery_ids:
        try:
            _deliver_task.schedule(tenant.slug, delivery_id, delay=0.2)
        except Exception:  # the queue being down must not undo the recorded delivery
            log.exception("could not enqueue webhook delivery %s; the sweeper will pick it up", delivery_id)


def disabled_notices(url: str, reason: str) -> list[tuple[str, str, str, str, str]]:
    """Inside the tenant transaction: the mails ``(to, language, workspace, url, reason)`` that tell
    the workspace's Customers an endpoint was disabled. :func:`send_notices` sends them after the
    commit, each in its recipient's language (their own, else the workspace's)."""
    from core.db import current_tenant
    from core.users import ROLE_CUSTOMER, User

    slug = current_tenant.get().slug
    return [(user.email, user.language, slug, url, reason)
            for user in User.select().where((User.role == ROLE_CUSTOMER) & (User.is_active == True))]  # noqa: E712


def send_notices(notices: list[tuple[str, str, str, str, str]]) -> None:
    """After the commit, never inside a transaction: SMTP is a network call that may be slow."""
    for to, language, slug, url, reason in notices:
        try:
            tenant = platform().tenant_cache.get(slug) if slug else None
            platform().send_mail(to, lambda _, ngettext, fmt: (
                _("A webhook endpoint was disabled"),
                _("We stopped sending webhooks to %(url)s.", url=url) + "\n" + _("Reason: %(reason)s", reason=reason)
                + "\n\n" + _("Fix the receiver, then enable the endpoint again in the dashboard (Webhooks).") + "\n"),
                language=language, tenant=tenant)
        except Exception:
            log.exception("could not send the webhook-disabled notice")
