"""A reseller's own host names (``partners.acme.com``): its console and sign-up page answer there
(``/<reseller>/...``, as at ``partners.<base-domain>``) once the reseller proved the host with the
branding addon's DNS TXT proof (:func:`addons.branding.domains.prove`, the same record
``_smsgw-challenge.<host>`` and resolver). A host a workspace verified is not a reseller's to take;
the TLS ``ask`` endpoint allows a certificate for a verified host of an active reseller
(``smsgw_tls_allowed``).
"""

from __future__ import annotations

import secrets

from addons.branding import domains
from addons.branding.domains import Domain, DomainError
from core.db import app_db, connection
from core.i18n import N_

from .service import Reseller

MAX_PER_RESELLER = 3


def of_reseller(reseller: Reseller) -> list[Domain]:
    with connection():
        rows = app_db.execute_sql("SELECT host, token, verified_at IS NOT NULL, last_error FROM public.reseller_domain "
                                  "WHERE reseller_id = %s ORDER BY created_at, host", (reseller.id,)).fetchall()
    return [Domain(*row) for row in rows]


def add(reseller: Reseller, host: str, base_domain: str) -> Domain:
    host = domains.normalise(host, base_domain)
    with connection(), app_db.atomic():
        app_db.execute_sql("SELECT 1 FROM public.reseller WHERE id = %s FOR UPDATE", (reseller.id,))
        count = app_db.execute_sql("SELECT count(*) FROM public.reseller_domain WHERE reseller_id = %s",
                                   (reseller.id,)).fetchone()[0]
        if count >= MAX_PER_RESELLER:
            raise DomainError(N_("You may have at most %(limit)s host names; remove one first."), limit=MAX_PER_RESELLER)
        token = secrets.token_urlsafe(24)
        inserted = app_db.execute_sql(
            "INSERT INTO public.reseller_domain (host, reseller_id, token) VALUES (%s, %s, %s) "
            "ON CONFLICT (host, reseller_id) DO NOTHING RETURNING token", (host, reseller.id, token)).fetchone()
        if inserted is None:
            raise DomainError(N_("%(host)s is already on your list."), host=host)
    return Domain(host, token, False, "")


def verify(reseller: Reseller, host: str, resolver) -> Domain:
    with connection():
        row = app_db.execute_sql("SELECT token FROM public.reseller_domain WHERE host = %s AND reseller_id = %s",
                                 (host, reseller.id)).fetchone()
    if row is None:
        raise DomainError(N_("%(host)s is not on your list."), host=host[:100])

    def note(error: str) -> None:
        with connection():
            app_db.execute_sql("UPDATE public.reseller_domain SET last_error = %s WHERE host = %s AND reseller_id = %s",
                               (error, host, reseller.id))

    domains.prove(host, row[0], resolver, note)
    with connection(), app_db.atomic():
        taken = app_db.execute_sql("SELECT 1 FROM public.reseller_domain WHERE host = %s AND reseller_id <> %s "
                                   "AND verified_at IS NOT NULL", (host, reseller.id)).fetchone()
        if taken or domains.verified_elsewhere(host):
            raise DomainError(N_("%(host)s is already in use by another workspace."), host=host)
        app_db.execute_sql("UPDATE public.reseller_domain SET verified_at = coalesce(verified_at, now()), "
                           "last_error = '' WHERE host = %s AND reseller_id = %s", (host, reseller.id))
    return Domain(host, row[0], True, "")


def remove(reseller: Reseller, host: str) -> bool:
    with connection():
        return app_db.execute_sql("DELETE FROM public.reseller_domain WHERE host = %s AND reseller_id = %s",
                                  (host, reseller.id)).rowcount > 0


def serves(host: str, reseller: Reseller) -> bool:
    """Is ``host`` a verified host name of this reseller (its console answers there)?"""
    with connection():
        return app_db.execute_sql("SELECT 1 FROM public.reseller_domain WHERE host = %s AND reseller_id = %s "
                                  "AND verified_at IS NOT NULL", (host, reseller.id)).fetchone() is not None


def tls_allowed(host: str) -> bool:
    """``smsgw_tls_allowed``: a verified host name of an active reseller."""
    with connection():
        return app_db.execute_sql("SELECT 1 FROM public.reseller_domain d JOIN public.reseller r ON r.id = d.reseller_id "
                                  "WHERE d.host = %s AND d.verified_at IS NOT NULL AND r.status = 'active'",
                                  (host,)).fetchone() is not None
