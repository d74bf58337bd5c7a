"""The brand a page or a mail shows: product name, logo, colours, mail sender, support address, theme.

The kernel knows one brand of its own, the platform's (``SMSGW_PRODUCT_NAME``,
``SMSGW_SUPPORT_EMAIL``, ``SMSGW_THEME``). A workspace may show another: the hook
``smsgw_brand(tenant, default)`` (first answer wins) gives it; the branding addon implements it.
Templates get it as ``brand`` (and ``brand_name``), mails through :meth:`Platform.send_mail`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Brand:
    """What a reader sees of who runs the service. ``""`` means "none of its own": a page then
    shows the theme's look and no logo; a mail goes out from the platform's sender."""

    product_name: str
    support_email: str = ""
    theme: str = ""
    logo_url: str = ""  # served from the workspace's own host; shown only as <img>
    stylesheet_url: str = ""  # the brand's colours as CSS variables (no inline styles: the CSP refuses them)
    mail_sender_name: str = ""  # "" keeps SMSGW_MAIL_FROM's name
    # True when someone other than the platform chose this brand (a workspace, its reseller): a
    # theme's own product name then gives way to it.
    custom: bool = False


def default_brand(settings) -> Brand:
    """The platform's own brand, from its settings."""
    # No theme of its own: a workspace's theme column, then SMSGW_THEME, decide (BaseHandler.render).
    return Brand(product_name=settings.product_name, support_email=settings.support_email)


BRAND_CHANNEL = "smsgw_brand_changed"  # NOTIFY payload: a tenant id whose brand changed; "" for all


class BrandCache:
    """tenant id → :class:`Brand`, for ``ttl`` seconds or until :meth:`forget` (which
    :meth:`core.platform.Platform.brand_changed` calls here and, through NOTIFY, in every process).
    A page asks :meth:`peek` on the IOLoop; only a miss goes to the addons, off it."""

    def __init__(self, ttl: float = 60.0):
        self.ttl = ttl
        self._entries: dict[int, tuple[float, Brand]] = {}
        self._lock = threading.Lock()

    def peek(self, tenant) -> Brand | None:
        entry = self._entries.get(tenant.id)
        return entry[1] if entry is not None and entry[0] > time.monotonic() else None

    def store(self, tenant, brand: Brand) -> None:
        with self._lock:
            if len(self._entries) > 100_000:
                self._entries.clear()
            self._entries[tenant.id] = (time.monotonic() + self.ttl, brand)

    def forget(self, tenant_id: int | None = None) -> None:
        with self._lock:
            if tenant_id is None:
                self._entries.clear()
            else:
                self._entries.pop(tenant_id, None)


def brand_for(platform, tenant) -> Brand:
    """The brand of ``tenant`` (``None``: the main site): an addon's answer, else the platform's.
    Cached; a miss asks the addons (database work: call it off the IOLoop unless :meth:`BrandCache.peek`
    answered)."""
    default = default_brand(platform.settings)
    if tenant is None:
        return default
    cached = platform.brand_cache.peek(tenant)
    if cached is not None:
        return cached
    found = platform.registry.hook.smsgw_brand(tenant=tenant, default=default)
    brand = found if found is not None else default
    platform.brand_cache.store(tenant, brand)
    return brand
