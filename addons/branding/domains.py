"""Custom domains: a workspace's own host name (``sms.acme.com``), proved by a DNS TXT record.

The flow: the workspace's Customer adds a host and gets a token; they publish
``_smsgw-challenge.<host> TXT "smsgw-verify=<token>"`` and point the host at the platform (CNAME
to their workspace's address); *Check* asks DNS through a :class:`Resolver`. Once the record is
seen the host is verified: requests with that ``Host`` reach the workspace (the kernel asks
``smsgw_tenant_for_host``, caches the answer and forgets it on :meth:`Platform.hosts_changed`), and
the TLS ``ask`` endpoint (:func:`tls_allowed`) lets the operator's proxy get a certificate for it.

Several workspaces may claim the same host; the first to prove it gets it, and a verified host
is nobody else's (a unique index). Removing a host stops its routing in every process at once.

:class:`DnsResolver` is the production resolver (dnspython: the standard library resolves
addresses only, not TXT records). Tests point it at a DNS server of their own on loopback
(``tests/support/dns_standin.py``) through ``SMSGW_DNS_NAMESERVERS``, so the code that asks is
the code that runs in production.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from typing import Protocol

from core.db import app_db, connection
from core.i18n import N_

from .service import catalogue, platform as catalogue_platform

CHALLENGE = "_smsgw-challenge"
PREFIX = "smsgw-verify="
MAX_PER_WORKSPACE = 5
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")

log = logging.getLogger(__name__)


class DomainError(ValueError):
    """A refused change: ``msgid`` (``N_()``) and ``args``, for the person who asked."""

    def __init__(self, msgid: str, **args):
        super().__init__(msgid % args if args else msgid)
        self.msgid, self.args_ = msgid, args


class LookupFailed(RuntimeError):
    """DNS did not answer (timeout, SERVFAIL): say so, and let the person try again."""


class Resolver(Protocol):
    def txt(self, name: str) -> list[str]:
        """The TXT strings published at ``name`` (``[]`` when there are none or the name does not
        exist); :class:`LookupFailed` when DNS gives no answer."""


class DnsResolver:
    """TXT lookups through DNS (dnspython): the system's name servers, or ``nameservers``
    (``"host[:port]"`` strings, e.g. from ``SMSGW_DNS_NAMESERVERS``)."""

    def __init__(self, nameservers: list[str] | None = None, timeout: float = 5.0):
        import dns.resolver

        self._resolver = dns.resolver.Resolver(configure=not nameservers)
        if nameservers:
            hosts, port = [], 53
            for entry in nameservers:
                host, _, given = entry.strip().rpartition(":") if entry.count(":") == 1 else (entry.strip(), "", "")
                hosts.append(host)
                port = int(given) if given.isdigit() else port
            self._resolver.nameservers = hosts
            self._resolver.port = port
        self._resolver.lifetime = timeout
        self._resolver.cache = None  # a record just published must be seen on the next check

    def txt(self, name: str) -> list[str]:
        import dns.exception
        import dns.resolver

        try:
            answer = self._resolver.resolve(name, "TXT", raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout) as exc:
            raise LookupFailed(type(exc).__name__) from None
        return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


def resolver_from(settings) -> Resolver:
    servers = [s for s in settings.dns_nameservers.split(",") if s.strip()]
    return DnsResolver(servers or None)


@dataclass(frozen=True)
class Domain:
    host: str
    token: str
    verified: bool
    last_error: str

    @property
    def record_name(self) -> str:
        return f"{CHALLENGE}.{self.host}"

    @property
    def record_value(self) -> str:
        return PREFIX + self.token


def normalise(host: str, base_domain: str) -> str:
    """``host`` as stored (lowercase, no trailing dot), or :class:`DomainError`."""
    host = (host or "").strip().lower().rstrip(".")
    if host.startswith(("http://", "https://")):
        host = host.split("://", 1)[1].split("/", 1)[0]
    labels = host.split(".")
    if (len(host) > 253 or len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels)
            or labels[-1].isdigit()):
        raise DomainError(N_("Enter a host name such as sms.example.com (letters, digits, hyphens and dots)."))
    if host == base_domain or host.endswith("." + base_domain):
        raise DomainError(N_("%(host)s is already one of the platform's own addresses; add a host name of "
                             "your own domain."), host=host)
    return host


def of_workspace(tenant_id: int) -> list[Domain]:
    with connection():
        rows = app_db.execute_sql("SELECT host, token, verified_at IS NOT NULL, last_error FROM public.custom_domain "
                                  "WHERE tenant_id = %s ORDER BY created_at, host", (tenant_id,)).fetchall()
    return [Domain(*row) for row in rows]


def add(tenant_id: int, host: str, base_domain: str) -> Domain:
    host = normalise(host, base_domain)
    with connection(), app_db.atomic():
        count = app_db.execute_sql("SELECT count(*) FROM public.custom_domain WHERE tenant_id = %s",
                                   (tenant_id,)).fetchone()[0]
        if count >= MAX_PER_WORKSPACE:
            raise DomainError(N_("A workspace may have at most %(limit)s host names; remove one first."),
                              limit=MAX_PER_WORKSPACE)
        token = secrets.token_urlsafe(24)
        inserted = app_db.execute_sql(
            "INSERT INTO public.custom_domain (host, tenant_id, token) VALUES (%s, %s, %s) "
            "ON CONFLICT (host, tenant_id) DO NOTHING RETURNING token", (host, tenant_id, token)).fetchone()
        if inserted is None:
            raise DomainError(N_("%(host)s is already on this workspace's list."), host=host)
    return Domain(host, token, False, "")


def verify(tenant_id: int, host: str, resolver: Resolver) -> Domain:
    """Look for the workspace's token at ``_smsgw-challenge.<host>``; the host is verified when it is there."""
    with connection():
        row = app_db.execute_sql("SELECT token FROM public.custom_domain WHERE host = %s AND tenant_id = %s",
                                 (host, tenant_id)).fetchone()
    if row is None:
        raise DomainError(N_("%(host)s is not on this workspace's list."), host=host[:100])
    token = row[0]
    prove(host, token, resolver, lambda error: _note(tenant_id, host, error))
    with connection(), app_db.atomic():
        taken = app_db.execute_sql("SELECT 1 FROM public.custom_domain WHERE host = %s AND tenant_id <> %s "
                                   "AND verified_at IS NOT NULL", (host, tenant_id)).fetchone()
        if taken:
            raise DomainError(N_("%(host)s is already in use by another workspace."), host=host)
        app_db.execute_sql("UPDATE public.custom_domain SET verified_at = coalesce(verified_at, now()), "
                           "checked_at = now(), last_error = '' WHERE host = %s AND tenant_id = %s", (host, tenant_id))
    return Domain(host, token, True, "")


def prove(host: str, token: str, resolver: Resolver, note=lambda _error: None) -> None:
    """The proof of a host: its ``_smsgw-challenge`` TXT record holds ``smsgw-verify=<token>``;
    :class:`DomainError` otherwise (``note`` hears why, to keep with the host). Also a reseller's
    host names' proof (addons.resellers)."""
    name = f"{CHALLENGE}.{host}"
    try:
        found = resolver.txt(name)
    except LookupFailed as exc:
        log.info("TXT lookup of %s failed: %s", name, exc)
        note("DNS did not answer")
        raise DomainError(N_("DNS did not answer for %(name)s. Try again in a few minutes."), name=name) from None
    if PREFIX + token not in [value.strip() for value in found]:
        note("record not found")
        raise DomainError(N_("The TXT record %(name)s does not hold %(value)s yet. DNS changes can take a while "
                             "to show; check again later."), name=name, value=PREFIX + token)


def _note(tenant_id: int, host: str, error: str) -> None:
    with connection():
        app_db.execute_sql("UPDATE public.custom_domain SET checked_at = now(), last_error = %s "
                           "WHERE host = %s AND tenant_id = %s", (error, host, tenant_id))


def remove(tenant_id: int, host: str) -> bool:
    with connection():
        cursor = app_db.execute_sql("DELETE FROM public.custom_domain WHERE host = %s AND tenant_id = %s",
                                    (host, tenant_id))
    return cursor.rowcount > 0


def slug_for(host: str) -> str | None:
    """``smsgw_tenant_for_host``: the workspace that proved ``host``."""
    with catalogue():
        row = app_db.execute_sql("SELECT t.slug FROM public.custom_domain d JOIN public.tenant t ON t.id = d.tenant_id "
                                 "WHERE d.host = %s AND d.verified_at IS NOT NULL", (host,)).fetchone()
    return row[0] if row else None


def tls_allowed(host: str) -> bool:
    """May the proxy get a certificate for ``host``: a verified host of an active workspace, or one
    another addon serves (``smsgw_tls_allowed``: a reseller's own host name)."""
    with connection():
        row = app_db.execute_sql("SELECT 1 FROM public.custom_domain d JOIN public.tenant t ON t.id = d.tenant_id "
                                 "WHERE d.host = %s AND d.verified_at IS NOT NULL AND t.status = 'active'",
                                 (host,)).fetchone()
    return row is not None or any(catalogue_platform().registry.hook.smsgw_tls_allowed(host=host))


def verified_elsewhere(host: str) -> bool:
    """Is ``host`` a verified host name of some workspace (so nobody else may prove it)?"""
    with connection():
        return app_db.execute_sql("SELECT 1 FROM public.custom_domain WHERE host = %s AND verified_at IS NOT NULL",
                                  (host,)).fetchone() is not None
