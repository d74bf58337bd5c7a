"""Hooks the resellers addon offers (a branding addon implements them to carry a reseller's look)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

from core.hookspecs import every_addon

if TYPE_CHECKING:
    from core.tenancy import TenantInfo

    from .service import Reseller

hookspec = pluggy.HookspecMarker("smsgw")


@every_addon
@hookspec
def smsgw_reseller_workspace_created(reseller: Reseller, tenant: TenantInfo) -> None:
    """A reseller created a workspace for one of its customers (the workspace exists and is recorded
    as the reseller's). A branding addon gives it the reseller's brand here.

    :param reseller: the :class:`addons.resellers.service.Reseller` that created it.
    :param tenant: the new workspace.

    Result: none.
    Order: dependencies first.
    Reaches: every installed addon (the event is the reseller's; the new workspace enabled only its defaults).
    """
