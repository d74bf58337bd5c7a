"""Throttling of sign-ins (below) and of sign-ups (:class:`SignupThrottle`).

Sign-ins are throttled per account and per IP, without handing attackers a lock-out button:

* Every failure is recorded (in ``public.login_failure``) under the account
  (tenant + a hash of the email, whether or not such a user exists, so unknown
  users get exactly the same answers) and under the client IP.
* From the third recent failure on an account, answers are delayed, doubling
  each time up to a cap: guessing gets slow, a typo costs nothing.
* At most ``per_account`` failures per account per hour; beyond that, attempts
  are refused *unless the browser proves it signed in to that account before*
  (a signed "known device" cookie). An attacker can exhaust the budget for
  strangers, not for the real user on their own device.
* At most ``per_ip`` failures per IP per hour, whatever the account.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from .db import app_db, connection


@dataclass(frozen=True)
class ThrottlePolicy:
    per_account: int = 100
    per_ip: int = 300
    base_delay: float = 0.25
    max_delay: float = 5.0


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    delay: float
    retry_after: int = 0
    attempt_ids: tuple = ()


def account_key(tenant_slug: str, email: str) -> str:
    digest = hashlib.sha256(f"{tenant_slug}\0{(email or '').strip().lower()}".encode()).hexdigest()
    return "acct:" + digest


def ip_key(ip: str) -> str:
    return "ip:" + (ip or "unknown")


class LoginThrottle:
    def __init__(self, policy: ThrottlePolicy | None = None):
        self.policy = policy or ThrottlePolicy()

    def check(self, account: str, ip: str, trusted_device: bool) -> Verdict:
        with connection():
            acct_hour, acct_recent, ip_hour = app_db.execute_sql("""
                SELECT count(*) FILTER (WHERE key = %s),
                       count(*) FILTER (WHERE key = %s AND at > now() - interval '15 minutes'),
                       count(*) FILTER (WHERE key = %s)
                  FROM public.login_failure
                 WHERE key IN (%s, %s) AND at > now() - interval '1 hour'
            """, (account, account, ip_key(ip), account, ip_key(ip))).fetchone()
        p = self.policy
        if ip_hour >= p.per_ip:
            return Verdict(False, 0.0, 3600)
        if acct_hour >= p.per_account and not trusted_device:
            return Verdict(False, 0.0, 3600)
        delay = 0.0
        if acct_recent >= 3 and not trusted_device:
            delay = min(p.base_delay * (2 ** (acct_recent - 3)), p.max_delay)
        return Verdict(True, delay)

    def begin(self, account: str, ip: str, trusted_device: bool) -> Verdict:
        """Record this attempt *first*, then count: parallel guesses cannot all slip under a cap.

        The attempt counts as a failure unless :meth:`succeeded` clears it.
        """
        with connection():
            # Two statements, each committed on its own: every attempt's row is visible to
            # all attempts that count after it (one transaction would hide concurrent rows).
            ids = tuple(r[0] for r in app_db.execute_sql(
                "INSERT INTO public.login_failure (key) VALUES (%s), (%s) RETURNING id",
                (account, ip_key(ip))).fetchall())
            acct_hour, acct_recent, ip_hour = app_db.execute_sql("""
                SELECT count(*) FILTER (WHERE key = %s),
                       count(*) FILTER (WHERE key = %s AND at > now() - interval '15 minutes'),
                       count(*) FILTER (WHERE key = %s)
                  FROM public.login_failure
                 WHERE key IN (%s, %s) AND at > now() - interval '1 hour'
            """, (account, account, ip_key(ip), account, ip_key(ip))).fetchone()
        p = self.policy
        if ip_hour > p.per_ip:
            return Verdict(False, 0.0, 3600, ids)
        if acct_hour > p.per_account and not trusted_device:
            return Verdict(False, 0.0, 3600, ids)
        previous = acct_recent - 1
        delay = 0.0
        if previous >= 3 and not trusted_device:
            delay = min(p.base_delay * (2 ** (previous - 3)), p.max_delay)
        return Verdict(True, delay, 0, ids)

    def succeeded(self, account: str, verdict: Verdict) -> None:
        """A correct password: forget the account's failures and this attempt's IP entry."""
        with connection():
            app_db.execute_sql("DELETE FROM public.login_failure WHERE key = %s OR id = ANY(%s)",
                               (account, list(verdict.attempt_ids)))

    def record_failure(self, account: str, ip: str) -> None:
        with connection():
            app_db.execute_sql("INSERT INTO public.login_failure (key) VALUES (%s), (%s)", (account, ip_key(ip)))

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
