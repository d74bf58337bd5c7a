"""Hooks the privacy addon offers to others: what each addon adds to a data export.

Called inside the tenant's transaction unless said otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import pluggy

if TYPE_CHECKING:
    from core.tenancy import TenantInfo

    from .exporter import ExportSubject

hookspec = pluggy.HookspecMarker("smsgw")


@hookspec
def smsgw_privacy_export(tenant: TenantInfo, subject: ExportSubject) -> dict[str, Iterable[dict]] | None:
    """Add parts to a data export: personal data the addon's declared tables do not already give
    (the export walks every table's ``PersonalData.export`` columns by itself), such as rows of
    tables declared without personal data that still belong to the subject's history.

    :param tenant: the :class:`core.tenancy.TenantInfo` the export is for.
    :param subject: an :class:`addons.privacy.exporter.ExportSubject`: ``kind`` is ``"workspace"``
        (everything of the workspace) or ``"user"`` (one member: ``user_id``, and ``actors``, the
        actor strings that name them, e.g. ``["user:7"]``). Its ``query(sql, params)`` streams
        the rows of a ``SELECT`` as dicts through a server-side cursor (bounded memory); use it
        for anything that can be large.

    Return ``{part name: rows}``: each name (``[a-z0-9_]``, unique in the export; prefix it with
    your addon's name) becomes one file ``<name>.json`` of the export; ``rows`` is an iterable
    of JSON-ready dicts, consumed inside this transaction. Never include secrets, password or
    token hashes or ciphertexts. Return ``None`` (or ``{}``) when you hold nothing about the subject.

    Result: collected: every addon's parts go into the export, after the declared tables.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """
