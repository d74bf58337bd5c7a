"""API token anomalies (issue 20, items 1 and 5): a token used from many addresses, outside its
usual hours, or again after a long idle time. Alerts go to the same queue as the sending signals.

The web process hears of each request of an API token in ``smsgw_request_finished`` (on the
IOLoop: memory only). A token's first request of a minute, or its first from an address this
process has not seen it use in that minute, starts one small tenant transaction off the IOLoop
(:func:`note_use`):

* **many addresses** (rule ``token_ips``): the address is written to ``abuse_token_ips`` (one row
  per token and address, pruned past the window), so every web process counts the same addresses;
  at ``ips`` within ``minutes`` the token is flagged: in this process at once and in the others
  through ``NOTIFY smsgw_abuse_tokens`` (its next sends are held while the rule holds). A process
  that starts afresh learns it again from the table at the token's next request.
* **outside its usual hours** (rule ``token_hours``): ``abuse_token_hours`` keeps, per token, how
  many minutes it was used in each hour of the day (UTC): 24 counters, bounded whatever the
  traffic. Once a token has a profile (``minimum`` minutes of use), a use in an hour where it (with
  the hours either side) had less than ``share`` of its use is an alert. A new token has no profile
  and raises nothing.
* **after a long idle time** (rule ``token_idle``): the kernel hands the token's previous use on
  the principal (``previous_use``, read with the token anyway); at ``days`` or more since it, an
  alert names the token, its last use and the address. No history is read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import threading
import time

from core.clock import utcnow
from core.db import app_db, run_in_tenant

from . import rules, service, signals

log = logging.getLogger(__name__)

CHANNEL = "smsgw_abuse_tokens"
_ticks: dict = {}  # (workspace, token actor) -> (minute, {addresses noted in it})
_idle_told: dict = {}  # (workspace, token actor) -> the previous use an idle alert was raised for
_lock = threading.Lock()


def on_request(tenant, principal, ip: str, book: rules.Book) -> None:
    """On the IOLoop, for each request of an API token: decide in memory whether to note it."""
    actor, key = principal.actor, (tenant.id, principal.actor)
    idle = _idle_days(tenant, principal, book)
    minute = int(time.time() // 60)
    with _lock:
        tick = _ticks.get(key)
        fresh = tick is None or tick[0] != minute
        if fresh:
            if len(_ticks) > 50_000:
                _ticks.clear()
            tick = _ticks[key] = (minute, set())
        new_ip = ip not in tick[1] and len(tick[1]) < 64
        if new_ip:
            tick[1].add(ip)
        if idle is not None:
            if _idle_told.get(key) == principal.previous_use:
                idle = None
            else:
                if len(_idle_told) > 50_000:
                    _idle_told.clear()
                _idle_told[key] = principal.previous_use
    if not (fresh or new_ip or idle is not None):
        return
    job = asyncio.ensure_future(run_in_tenant(tenant.ref, note_use, tenant, actor, principal.name, ip,
                                              dt.datetime.now(dt.timezone.utc).hour if fresh else None, idle,
                                              principal.previous_use))
    job.add_done_callback(_log_failure)


def _log_failure(job) -> None:
    if not job.cancelled() and job.exception() is not None:
        log.error("abuse: could not note an API token's use", exc_info=job.exception())


def _idle_days(tenant, principal, book: rules.Book) -> float | None:
    previous = principal.previous_use
    rule = book.rule(tenant.id, "token_idle")
    if previous is None or rule.action == "off":
        return None
    if previous.tzinfo is None:
        previous = previous.replace(tzinfo=dt.timezone.utc)
    days = (utcnow().replace(tzinfo=dt.timezone.utc) - previous).total_seconds() / 86400
    return days if days >= float(rule.params.get("days", 30)) else None


def note_use(tenant, actor: str, name: str, ip: str, hour: int | None, idle: float | None, previous) -> None:
    """Inside the tenant transaction: the token's use, recorded and checked (see the module)."""
    book = rules.book()
    if idle is not None:
        rule = book.rule(tenant.id, "token_idle")
        last = previous.isoformat() if previous is not None else ""
        service.raise_alert(tenant, rule, signals.Finding(
            "token_idle", f"{actor}:{last[:19]}", f"API token {name} used after {int(idle)} days unused",
            {"token": actor, "name": name, "last_use": last, "addresses": [ip], "days": int(idle)}))
    if hour is not None:
        _hours(tenant, book, actor, name, ip, hour)
    _addresses(tenant, book, actor, ip)


def _hours(tenant, book: rules.Book, actor: str, name: str, ip: str, hour: int) -> None:
    rule = book.rule(tenant.id, "token_hours")
    if rule.action == "off":
        return
    counts = list(app_db.execute_sql(
        "INSERT INTO abuse_token_hours AS h (token, counts) SELECT %(token)s, array_agg((i = %(slot)s)::int ORDER BY i) "
        "FROM generate_series(1, 24) i ON CONFLICT (token) DO UPDATE SET counts[%(slot)s] = h.counts[%(slot)s] + 1, "
        "updated_at = now() RETURNING counts", {"token": actor, "slot": hour + 1}).fetchone()[0])
    counts[hour] -= 1  # the profile before this use
    total = sum(counts)
    if total < int(rule.params.get("minimum", 200)):
        return  # no profile yet: a new token raises nothing
    near = counts[hour] + counts[(hour - 1) % 24] + counts[(hour + 1) % 24]
    if near > float(rule.params.get("share", 0.01)) * total:
        return
    usual = sorted(h for h in range(24) if counts[h] > 0.02 * total)
    service.raise_alert(tenant, rule, signals.Finding(
        "token_hours", f"{actor}:{hour:02d}", f"API token {name} used at {hour:02d}:00 UTC, outside its usual hours",
        {"token": actor, "name": name, "hour_utc": hour, "usual_hours_utc": usual, "addresses": [ip],
         "profile": counts}))


def _addresses(tenant, book: rules.Book, actor: str, ip: str) -> None:
    rule = book.rule(tenant.id, "token_ips")
    if rule.action == "off":
        return
    minutes = float(rule.params.get("minutes", 60))
    recent = [a for (a,) in app_db.execute_sql("""
        WITH seen AS (
            INSERT INTO abuse_token_ips AS t (token, ip) VALUES (%(token)s, %(ip)s)
            ON CONFLICT (token, ip) DO UPDATE SET seen_at = now()),
        pruned AS (DELETE FROM abuse_token_ips WHERE token = %(token)s AND seen_at < now() - %(span)s * interval '1 minute')
        SELECT ip FROM abuse_token_ips WHERE token = %(token)s AND seen_at > now() - %(span)s * interval '1 minute'
    """, {"token": actor, "ip": ip[:100], "span": minutes}).fetchall()]
    addresses = sorted(set(recent) | {ip[:100]})  # the statement's snapshot does not see its own insert
    if len(addresses) < int(rule.params.get("ips", 5)):
        return
    evidence = {"token": actor, "addresses": addresses[:50], "count": len(addresses)}
    service.raise_alert(tenant, rule, signals.Finding(
        "token_ips", actor, f"{actor} used from many addresses", evidence))
    app_db.execute_sql("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps({"tenant": tenant.id, "evidence": evidence})))
    signals.flagged_tokens[(tenant.id, actor)] = evidence


def on_notify(payload) -> None:
    """``smsgw_abuse_tokens``: another process flagged (or a review cleared) a token."""
    if payload is None:  # (re)connected: what was missed is learnt again at the token's next request
        with _lock:
            _ticks.clear()
        return
    try:
        data = json.loads(payload)
        key = (int(data["tenant"]), str(data["evidence"]["token"]))
    except (ValueError, KeyError, TypeError):
        return
    if data.get("cleared"):
        signals.flagged_tokens.pop(key, None)
    else:
        signals.flagged_tokens[key] = data["evidence"]


def clear(tenant_id: int, actor: str) -> None:
    """Inside the tenant transaction: a review ended the token's alert; count its addresses afresh
    (here and, through the channel, in every process)."""
    app_db.execute_sql("DELETE FROM abuse_token_ips WHERE token = %s", (actor,))
    app_db.execute_sql("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps({"tenant": tenant_id, "cleared": True,
                                                                          "evidence": {"token": actor}})))
    signals.flagged_tokens.pop((tenant_id, actor), None)
    with _lock:
        _ticks.pop((tenant_id, actor), None)
