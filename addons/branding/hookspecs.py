"""Hooks the branding addon offers (a reseller addon implements them).

Both are asked outside any tenant transaction, from the branding addon's cache loader (off the
IOLoop): a database lookup is fine. Their answers are cached with the brand; call
:func:`addons.branding.service.brand_changed` (every process hears it through NOTIFY) when what
you would answer changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

from core.hookspecs import every_addon

if TYPE_CHECKING:
    from core.tenancy import TenantInfo

    from .parts import BrandPart

hookspec = pluggy.HookspecMarker("smsgw")


@hookspec
@every_addon
def smsgw_brand_defaults(tenant: TenantInfo) -> BrandPart | None:
    """The brand ``tenant`` shows where its own settings say nothing: a reseller's name, logo,
    colours and theme for the workspaces it sells (:class:`addons.branding.parts.BrandPart`).

    :param tenant: the workspace.

    Result: collected: merged field by field, an earlier addon's value winning; the workspace's
        own settings win over all of them, the platform's settings fill what is left.
    Order: dependencies first.
    Reaches: every installed addon (``every_addon``): a workspace's seller decides, whichever
        addons the workspace enabled.
    """


@hookspec(firstresult=True)
@every_addon
def smsgw_brand_editable(tenant: TenantInfo) -> bool | None:
    """May ``tenant``'s own Customer change its brand and its host names? ``None`` leaves it to
    later addons; without any answer, yes (the workspace's owner may).

    :param tenant: the workspace.

    Result: first.
    Order: dependencies first.
    Reaches: every installed addon (``every_addon``): a reseller that sells a fixed brand says no.
    """


@hookspec(firstresult=True)
@every_addon
def smsgw_brand_default_logo(tenant: TenantInfo) -> tuple[bytes, str] | None:
    """The logo ``tenant`` shows when it uploaded none of its own: the one whose address an
    ``smsgw_brand_defaults`` answer gave as ``logo_url`` (``/brand/logo?v=...``), served by the
    branding addon at the workspace's own host.

    :param tenant: the workspace.

    Result: first: ``(data, content_type)``, a logo already checked by
        :func:`addons.branding.logo.check` (``image/png`` or ``image/svg+xml``), or ``None``.
    Order: dependencies first.
    Reaches: every installed addon (``every_addon``): a reseller's logo, whichever addons the
        workspace enabled.
    """


@hookspec
def smsgw_tls_allowed(host: str) -> bool | None:
    """May the operator's proxy get a certificate for ``host`` (the TLS ``ask`` endpoint,
    ``/tls/ask``), besides the workspaces' verified host names: a host name of your own that your
    pages answer at (a reseller's ``partners.acme.com``), proved by its owner.

    :param host: the host name asked about, lowercase, without trailing dot.

    Result: collected: any ``True`` allows it.
    Order: dependencies first.
    """
