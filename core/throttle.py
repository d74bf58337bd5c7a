"""Throttling of sign-ins (below) and of sign-ups (:class:`SignupThrottle`).

Sign-ins are throttled per account *and source*, without handing attackers a lock-out button:

* Every failure is recorded (in ``public.login_failure``) three times: under the
  account (tenant + a hash of the email, whether or not such a user exists, so
  unknown users get exactly the same answers), under the account *from this
  source*, and under the source alone. A source is the client's IPv4 address or
  its IPv6 /64 (one subscriber's allocation: an attacker there has billions of
  addresses, not billions of sources).
* From the third recent failure on an account from one source, that source's
  answers are delayed, doubling each time up to a cap: guessing gets slow, a typo
  costs nothing, and nobody else is slowed down.
* At most ``per_account`` failures per account and source per hour; beyond that
  the source is refused for that account *unless the browser proves it signed in
  to that account before* (a signed "known device" cookie).
* At most ``per_ip`` failures per source per hour, whatever the account.
* An account that collects ``account_alarm`` failures in an hour from all sources
  together is under a distributed attack: then each source gets only
  ``alarm_per_source`` failures on it. A source that has not failed (the owner's
  script on its own server, the owner's browser at home) still signs in: a
  stranger can exhaust budgets for the sources they control, never the account's.
* Valid API tokens never pass through here: nothing can lock them.

``per_source=False`` restores a cap per account from all sources together, for
forms where every attempt costs the account holder (password-reset mails).
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from .db import app_db, connection


@dataclass(frozen=True)
class ThrottlePolicy:
    per_account: int = 100  # failures per hour on one account from one source (from all, if not per_source)
    per_ip: int = 300  # failures per hour from one source, on any accounts
    base_delay: float = 0.25
    max_delay: float = 5.0
    account_alarm: int = 300  # failures per hour on one account from all sources: a distributed attack ...
    alarm_per_source: int = 3  # ... during which each source may fail this often on it per hour
    per_source: bool = True


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    delay: float
    retry_after: int = 0
    attempt_ids: tuple = ()
    account_source: str = ""  # the (account, source) key a success clears


def account_key(tenant_slug: str, email: str) -> str:
    digest = hashlib.sha256(f"{tenant_slug}\0{(email or '').strip().lower()}".encode()).hexdigest()
    return "acct:" + digest


def source_of(ip: str) -> str:
    """The source an address counts for: IPv4 as is, IPv6 by its /64 (IPv4-mapped as IPv4)."""
    try:
        addr = ipaddress.ip_address((ip or "").split("%", 1)[0])
    except ValueError:
        return ip or "unknown"
    if addr.version == 6:
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


def ip_key(ip: str) -> str:
    return "ip:" + source_of(ip)


def account_source_key(account: str, ip: str) -> str:
    digest = hashlib.sha256(f"{account}\0{source_of(ip)}".encode()).hexdigest()
    return "as:" + digest


_COUNTS = """
    SELECT count(*) FILTER (WHERE key = %(account)s),
           count(*) FILTER (WHERE key = %(account)s AND at > now() - interval '15 minutes'),
           count(*) FILTER (WHERE key = %(pair)s),
           count(*) FILTER (WHERE key = %(pair)s AND at > now() - interval '15 minutes'),
           count(*) FILTER (WHERE key = %(source)s)
      FROM public.login_failure
     WHERE key IN (%(account)s, %(pair)s, %(source)s) AND at > now() - interval '1 hour'
"""


class LoginThrottle:
    def __init__(self, policy: ThrottlePolicy | None = None):
        self.policy = policy or ThrottlePolicy()

    def _verdict(self, counts, trusted_device: bool, ids: tuple, pair: str) -> Verdict:
        """Decide from the failures recorded *before* this attempt."""
        acct_hour, acct_recent, pair_hour, pair_recent, source_hour = counts
        p = self.policy
        refused = Verdict(False, 0.0, 3600, ids, pair)
        if source_hour >= p.per_ip:
            return refused
        if trusted_device:
            return Verdict(True, 0.0, 0, ids, pair)
        if p.per_source:
            if pair_hour >= p.per_account or (acct_hour >= p.account_alarm and pair_hour >= p.alarm_per_source):
                return refused
            recent = pair_recent
        else:
            if acct_hour >= p.per_account:
                return refused
            recent = acct_recent
        delay = min(p.base_delay * (2 ** (recent - 3)), p.max_delay) if recent >= 3 else 0.0
        return Verdict(True, delay, 0, ids, pair)

    def check(self, account: str, ip: str, trusted_device: bool) -> Verdict:
        keys = {"account": account, "pair": account_source_key(account, ip), "source": ip_key(ip)}
        with connection():
            counts = app_db.execute_sql(_COUNTS, keys).fetchone()
        return self._verdict(counts, trusted_device, (), keys["pair"])

    def begin(self, account: str, ip: str, trusted_device: bool) -> Verdict:
        """Record this attempt *first*, then count: parallel guesses cannot all slip under a cap.

        The attempt counts as a failure unless :meth:`succeeded` clears it.
        """
        keys = {"account": account, "pair": account_source_key(account, ip), "source": ip_key(ip)}
        with connection():
            # Two statements, each committed on its own: every attempt's rows are visible to
            # all attempts that count after it (one transaction would hide concurrent rows).
            ids = tuple(r[0] for r in app_db.execute_sql(
                "INSERT INTO public.login_failure (key) VALUES (%(account)s), (%(pair)s), (%(source)s) RETURNING id",
                keys).fetchall())
            counts = app_db.execute_sql(_COUNTS, keys).fetchone()
        acct_hour, acct_recent, pair_hour, pair_recent, source_hour = counts
        before = (acct_hour - 1, acct_recent - 1, pair_hour - 1, pair_recent - 1, source_hour - 1)
        return self._verdict(before, trusted_device, ids, keys["pair"])

    def succeeded(self, account: str, verdict: Verdict) -> None:
        """A correct password: forget this source's failures on the account, and this attempt.

        The account's failures from other sources stay: the owner signing in (a script does,
        every minute) must not reset the count a distributed attack is measured by.
        """
        key = verdict.account_source if self.policy.per_source and verdict.account_source else account
        with connection():
            app_db.execute_sql("DELETE FROM public.login_failure WHERE key = %s OR id = ANY(%s)",
                               (key, list(verdict.attempt_ids)))

    def record_failure(self, account: str, ip: str) -> None:
        with connection():
            app_db.execute_sql("INSERT INTO public.login_failure (key) VALUES (%s), (%s), (%s)",
                               (account, account_source_key(account, ip), ip_key(ip)))

    def record_success(self, account: str) -> None:
        with connection():
            app_db.execute_sql("DELETE FROM public.login_failure WHERE key = %s", (account,))

    @staticmethod
    def purge() -> int:
        with connection():
            cur = app_db.execute_sql("DELETE FROM public.login_failure WHERE at < now() - interval '1 day'")
            return cur.rowcount


def client_network(ip: str) -> str:
    """The unit one client is counted in: its IPv4 address, or its IPv6 /64 (one subscriber's
    usual allocation; counting single IPv6 addresses would give each client billions of budgets)."""
    try:
        address = ipaddress.ip_address((ip or "").strip())
    except ValueError:
        return ip or "unknown"
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


class SignupThrottle:
    """How many workspaces may be created per client address and platform-wide per hour.

    Counted in ``public.signup_attempt``, so every web process shares one budget. Like
    :meth:`LoginThrottle.begin`, an attempt is recorded *before* it counts, so parallel
    sign-ups cannot all slip under a cap; an attempt that is refused, or whose workspace
    could not be created (a taken subdomain), gives its place back with :meth:`release`.
    A limit of 0 refuses everything.
    """

    def __init__(self, per_ip: int, total: int, scope: str = "signup"):
        self.per_ip = per_ip
        self.total = total
        self.scope = scope

    def _keys(self, ip: str) -> tuple[str, str]:
        return f"{self.scope}:{ip_key(client_network(ip))}", f"{self.scope}:all"

    def begin(self, ip: str) -> Verdict:
        mine, everyone = self._keys(ip)
        with connection():
            # Two statements, each committed on its own (see LoginThrottle.begin).
            ids = tuple(r[0] for r in app_db.execute_sql(
                "INSERT INTO public.signup_attempt (key) VALUES (%s), (%s) RETURNING id",
                (mine, everyone)).fetchall())
            per_ip, total = app_db.execute_sql("""
                SELECT count(*) FILTER (WHERE key = %s), count(*) FILTER (WHERE key = %s)
                  FROM public.signup_attempt
                 WHERE key IN (%s, %s) AND at > now() - interval '1 hour'
            """, (mine, everyone, mine, everyone)).fetchone()
        allowed = per_ip <= self.per_ip and total <= self.total
        verdict = Verdict(allowed, 0.0, 0 if allowed else 3600, ids)
        if not verdict.allowed:
            self.release(verdict)
        return verdict

    @staticmethod
    def release(verdict: Verdict) -> None:
        with connection():
            app_db.execute_sql("DELETE FROM public.signup_attempt WHERE id = ANY(%s)", (list(verdict.attempt_ids),))

    @staticmethod
    def purge() -> int:
        with connection():
            cur = app_db.execute_sql("DELETE FROM public.signup_attempt WHERE at < now() - interval '1 day'")
            return cur.rowcount
