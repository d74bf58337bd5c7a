"""Accept-time signals: per-workspace windows in this process's memory, seeded from the database.

Each workspace's :class:`Window` holds what the signals need: the numbers sent to in the last
minutes per block of 100 (sequential bursts), recipients per hour for the last 7 days (volume
baseline), the countries it has sent to, its allowed countries, identical texts (new workspaces),
outcomes per destination prefix (failure spikes). It is keyed by the workspace, filled only from that
workspace's own schema and its own sends: another workspace's traffic cannot enter it.

Seeding costs a few statements the first time a process sees the workspace. The hourly volume,
counted by a statement trigger (``abuse_hourly``), is read again every :data:`RESYNC` seconds, so
sends through other processes count for the volume; the numbers of the sequential window are
this process's own after seeding, and where a block has a few of them the other processes' are
read from ``recipients`` too (:func:`_shared`), so a burst spread over several web processes is
seen whole. A
send's own recipients enter the windows once its transaction commits (``after_transaction``), so a
refused or retried group counts once. The checks per recipient are dictionary and set lookups;
:func:`screen` never reads history.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field

from core.db import after_transaction, app_db

from . import numbers, rules

RESYNC = 60.0
WEEK_HOURS = 168


@dataclass
class Finding:
    rule: str
    key: str
    summary: str
    evidence: dict
    holds: list = field(default_factory=list)  # [(message index, phone)]


@dataclass
class Window:
    tenant_id: int
    seeded_at: float = 0.0
    blocks: dict = field(default_factory=dict)  # block (number without last 2 digits) -> {phone: time}
    hours: dict = field(default_factory=dict)  # hour number (epoch // 3600) -> recipients
    countries: set = field(default_factory=set)  # calling codes sent to, ever
    home: set = field(default_factory=set)  # calling codes of its phones' SIMs and default country
    texts: dict = field(default_factory=dict)  # text digest -> ({phone: time}, pruned at) (new workspaces)
    blocked_prefixes: dict = field(default_factory=dict)  # prefix -> alert id (a failure spike on hold)
    p95: tuple = (-1, 0)  # (hour it was computed for, value)
    shared_at: dict = field(default_factory=dict)  # block -> when the other processes' numbers were read
    pruned_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


_windows: dict[int, Window] = {}
_windows_lock = threading.Lock()
# Per (workspace, token actor): the evidence of a token used from many addresses (see .tokens: the
# addresses are counted in the database by every process; a flag reaches every process by NOTIFY).
flagged_tokens: dict = {}


def window(tenant) -> Window:
    with _windows_lock:
        w = _windows.get(tenant.id)
        if w is None:
            w = _windows[tenant.id] = Window(tenant.id)
    if time.monotonic() - w.seeded_at > RESYNC:
        seed(tenant, w)
    return w


def forget(tenant_id: int | None = None) -> None:
    with _windows_lock:
        if tenant_id is None:
            _windows.clear()
        else:
            _windows.pop(tenant_id, None)


def seed(tenant, w: Window) -> None:
    """Inside the tenant transaction: (re)read the windows from the workspace's own tables. The
    first time: the numbers sent to in the last 10 minutes (the newest 20,000), the countries, the
    phones' SIMs, 7 days of hourly counts; then every :data:`RESYNC` seconds only this hour's count
    (every process's sends, from the counter rows) and the SIMs."""
    first = not w.seeded_at
    recent = app_db.execute_sql(
        "SELECT r.phone, extract(epoch FROM m.created_at) FROM messages m JOIN recipients r ON r.message_id = m.id "
        "WHERE m.created_at > now() - interval '10 minutes' ORDER BY m.id DESC LIMIT 20000").fetchall() if first else ()
    hours = app_db.execute_sql(
        "SELECT (extract(epoch FROM hour)::bigint / 3600), sum(n) FROM abuse_hourly WHERE hour > now() - %s::interval "
        "GROUP BY 1", ("169 hours" if first else "1 hour",)).fetchall()
    countries = [c for (c,) in app_db.execute_sql("SELECT calling_code FROM abuse_countries")] if first else []
    sims = [s for (s,) in app_db.execute_sql("SELECT sims FROM devices WHERE removed_at IS NULL")]
    home = {numbers.code_of_region(tenant.default_region)}
    for slots in sims:
        for sim in slots or ():
            number = (sim or {}).get("number") or ""
            if number.startswith("+"):
                home.add(numbers.calling_code(number))
    with w.lock:
        for phone, at in recent:
            w.blocks.setdefault(phone[:-2], {})[phone] = float(at)
        for hour, n in hours:
            w.hours[int(hour)] = int(n)
        w.countries |= set(countries)
        w.home = {c for c in home if c}
        w.countries |= w.home  # its own country is not a "new" one
        w.seeded_at = time.monotonic()


def _p95(w: Window, hour: int) -> int:
    if w.p95[0] != hour:
        counts = sorted(w.hours.get(h, 0) for h in range(hour - WEEK_HOURS, hour))
        w.p95 = (hour, counts[int(0.95 * (len(counts) - 1))])
    return w.p95[1]


def screen(tenant, messages: list[dict], book: rules.Book) -> list[Finding]:
    """The findings of one batch of messages about to be stored (inside the tenant transaction)."""
    w = window(tenant)
    rule = {name: book.rule(tenant.id, name) for name in book.rules}
    on = {name for name, r in rule.items() if r.action != "off"}
    now = time.time()
    findings: dict = {}
    total = 0
    new_codes: dict = {}
    batch_blocks: dict = {}
    allowed = _allowed(w, rule["geo"]) if "geo" in on else None
    seq_on, premium_on, new_on = "sequential" in on, "premium" in on, "new_country" in on
    young = "identical_text" in on and _is_new(tenant, rule["identical_text"])

    def finding(name, key, summary, evidence) -> Finding:
        f = findings.get((name, key))
        if f is None:
            f = findings[(name, key)] = Finding(name, key, summary, evidence)
        return f

    for index, m in enumerate(messages):
        phones = m["phones"]
        total += len(phones)
        whole = None
        if "aup" in on:
            what = rules.aup_match(book, m["text"])
            if what:
                whole = finding("aup", hashlib.sha256(m["text"].encode()).hexdigest()[:16], what,
                                {"match": what, "text": m["text"][:160]})
        if "token_ips" in on and (tenant.id, m["created_by"]) in flagged_tokens:
            whole = finding("token_ips", m["created_by"], f"{m['created_by']} used from many addresses",
                            flagged_tokens[(tenant.id, m["created_by"])])
        if whole is not None:
            whole.holds += [(index, p) for p in phones]
        if young:
            _identical(w, m, index, rule["identical_text"], now, finding)
        # The hot loop (every recipient): local names, dictionary and set lookups only; a check
        # whose answer is "fine" for the whole calling code or 1,000-block is not repeated.
        codes = numbers.CODES
        countries, blocked = w.countries, w.blocked_prefixes
        for p in phones:
            code = codes.get(p[:4]) or numbers.calling_code(p)
            if code not in countries:
                new_codes.setdefault(code, p)
                if allowed is not None and code not in allowed:
                    f = finding("geo", code or "?", f"country code +{code} is not allowed",
                                {"calling_code": code, "allowed": sorted(allowed), "numbers": []})
                    f.holds.append((index, p))
            elif allowed is not None and code not in allowed:  # known, but not (or no longer) allowed
                f = finding("geo", code or "?", f"country code +{code} is not allowed",
                            {"calling_code": code, "allowed": sorted(allowed), "numbers": []})
                f.holds.append((index, p))
            if premium_on:
                kind = numbers.high_cost(p, code)
                if kind:
                    f = finding("premium", p[:-3], f"{kind.replace('_', ' ')} range {p[:-3]}xxx",
                                {"type": kind, "range": p[:-3] + "xxx", "numbers": []})
                    f.holds.append((index, p))
            if seq_on:
                block = p[:-2]
                items = batch_blocks.get(block)
                if items is None:
                    batch_blocks[block] = [(index, p)]
                else:
                    items.append((index, p))
            if blocked and p[:6] in blocked:
                f = finding("failure_spike", p[:6], f"prefix {p[:6]} is failing", {"prefix": p[:6]})
                f.holds.append((index, p))
    if seq_on:
        _sequential(tenant, w, batch_blocks, rule["sequential"], now, finding)
    new_codes.pop(None, None)
    if new_codes:  # rare (a first send to a country): remembered across restarts
        app_db.execute_sql("INSERT INTO abuse_countries (calling_code) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
                           (sorted(new_codes),))
    if new_on:
        for code, example in new_codes.items():
            finding("new_country", code or "?", f"first send to +{code}", {"calling_code": code, "example": example})
    if "volume_spike" in on:
        _volume(tenant, w, total, rule["volume_spike"], now, messages, finding)
    for f in findings.values():
        if "numbers" in f.evidence and not f.evidence["numbers"]:
            f.evidence["numbers"] = sorted({p for _, p in f.holds})[:50]
            f.evidence["count"] = len(f.holds)
    after_transaction(lambda committed: committed and _commit(w, messages, new_codes, now, young))
    return list(findings.values())


def _allowed(w: Window, rule: rules.Rule) -> set:
    listed = rule.params.get("allow") or []
    codes = {numbers.code_of_region(r) for r in listed if isinstance(r, str)}
    return {c for c in codes if c} or w.home


def _is_new(tenant, rule: rules.Rule) -> bool:
    from . import service

    return service.is_new_workspace(tenant.id, float(rule.params.get("new_days", 7)))


def _identical(w: Window, m: dict, index: int, rule: rules.Rule, now: float, finding) -> None:
    digest = hashlib.sha256(m["text"].encode()).hexdigest()[:16]
    span = 60 * float(rule.params.get("minutes", 60))
    with w.lock:
        seen = w.texts.get(digest)
        if seen is not None and now - seen[1] > span / 4:  # drop what left the window, now and then
            seen = w.texts[digest] = ({p: t for p, t in seen[0].items() if t > now - span}, now)
        phones = seen[0] if seen is not None else {}
        count = len(phones) + sum(1 for p in m["phones"] if p not in phones)
    if count >= int(rule.params.get("recipients", 100)):
        f = finding("identical_text", digest, f"one text to {count} recipients",
                    {"text": m["text"][:160], "recipients": count, "numbers": []})
        f.holds += [(index, p) for p in m["phones"]]


SHARED_SHARE = 4  # from a 1/4 of the threshold seen here, a block's numbers of other processes are read
SHARED_EVERY = 5.0  # a block where no other process sent lately is read again after this many seconds


def _shared(wanted: list, horizon: float) -> dict:
    """The numbers every web process sent to lately in the blocks ``wanted`` (one statement, an
    index range per block). ``{block: {phone: time}}``."""
    out: dict = {}
    for phone, at in app_db.execute_sql(
            "SELECT r.phone, extract(epoch FROM r.created_at) FROM unnest(%s::text[]) AS b(block) "
            "CROSS JOIN LATERAL (SELECT phone, created_at FROM recipients WHERE phone BETWEEN b.block || '00' "
            "AND b.block || '99' AND length(phone) = length(b.block) + 2 AND created_at > to_timestamp(%s) "
            "ORDER BY phone LIMIT 200) AS r", (wanted[:500], horizon)):
        out.setdefault(phone[:-2], {})[phone] = float(at)
    return out


def _sequential(tenant, w: Window, batch_blocks: dict, rule: rules.Rule, now: float, finding) -> None:
    """Blocks of 100 that reach the threshold with this send. A block this process has seen a
    quarter of the threshold of (at least 2), but not all, is read again with the other
    processes' numbers (:func:`_shared`; none in the usual send): a burst spread over up to
    :data:`SHARED_SHARE` web processes leaves a quarter in each, so the one that gets its last
    numbers counts them all. A block where that read found no other process's numbers is read
    again only after :data:`SHARED_EVERY` seconds (one web process: a statement per block every few
    seconds, not per send); one where it found some, at every send until it is decided."""
    from .service import recently_raised

    threshold = int(rule.params.get("numbers", 20))
    horizon = now - 60 * float(rule.params.get("minutes", 10))
    floor = max(2, threshold // SHARED_SHARE)
    maybe = []
    with w.lock:
        for block, items in batch_blocks.items():
            seen = w.blocks.get(block, {})
            n = len(seen) + len(items)
            if n < threshold:  # the usual case: this block cannot reach the threshold here
                if n >= floor and now - w.shared_at.get(block, 0.0) > SHARED_EVERY:
                    maybe.append(block)
                continue
            if recently_raised(tenant.id, rule, block):
                continue  # an alert that holds nothing, just written: the evidence would be dropped
            _burst(block, seen, items, threshold, horizon, now, finding)
    if maybe:
        shared = _shared(maybe, horizon)
        with w.lock:
            for block in maybe:
                mine = w.blocks.get(block, {})
                if set(shared.get(block, ())) <= set(mine) | {p for _, p in batch_blocks[block]}:
                    w.shared_at[block] = now  # no other process sends there: not read again for a while
                else:
                    w.shared_at.pop(block, None)  # others do: read at every send until it is decided
                if block in shared:
                    _burst(block, {**shared[block], **w.blocks.get(block, {})}, batch_blocks[block], threshold,
                           horizon, now, finding)


def _burst(block: str, seen: dict, items: list, threshold: int, horizon: float, now: float, finding) -> None:
    recent = {p: t for p, t in seen.items() if t > horizon}
    together = set(recent) | {p for _, p in items}
    if len(together) < threshold:
        return
    minutes: dict = {}
    for t in list(recent.values()) + [now] * len(items):
        minutes[int(t // 60) * 60] = minutes.get(int(t // 60) * 60, 0) + 1
    f = finding("sequential", block, f"{len(together)} numbers in {block}00-{block}99",
                {"range": f"{block}00-{block}99", "distinct": len(together), "numbers": [],
                 "series": sorted(minutes.items())})
    f.holds += items


def _volume(tenant, w: Window, total: int, rule: rules.Rule, now: float, messages: list, finding) -> None:
    from .service import recently_raised

    hour = int(now // 3600)
    if recently_raised(tenant.id, rule, str(hour)):
        return  # this hour's spike was just recorded and holds nothing
    with w.lock:
        current = w.hours.get(hour, 0) + total
        p95 = _p95(w, hour)
    limit = max(float(rule.params.get("factor", 5)) * p95, float(rule.params.get("minimum", 200)))
    if current > limit:
        f = finding("volume_spike", str(hour), f"{current} recipients this hour, baseline p95 {p95}",
                    {"this_hour": current, "p95_7d": p95, "limit": limit})
        f.holds += [(i, p) for i, m in enumerate(messages) for p in m["phones"]]


def _commit(w: Window, messages: list, new_codes: dict, now: float, young: bool) -> None:
    hour = int(now // 3600)
    with w.lock:
        for m in messages:
            w.hours[hour] = w.hours.get(hour, 0) + len(m["phones"])
            blocks = w.blocks
            for p in m["phones"]:
                block = blocks.get(p[:-2])
                if block is None:
                    block = blocks[p[:-2]] = {}
                block[p] = now
            if young:  # identical texts matter for new workspaces only
                digest = hashlib.sha256(m["text"].encode()).hexdigest()[:16]
                seen = w.texts.get(digest)
                if seen is None:
                    seen = w.texts[digest] = ({}, now)
                seen[0].update(dict.fromkeys(m["phones"], now))
        w.countries |= set(new_codes)
        if now - w.pruned_at > PRUNE_EVERY:
            _prune(w, now)


PRUNE_EVERY = 60.0
MAX_BLOCKS = 200_000  # blocks of 100 numbers remembered per workspace (memory bound; see _prune)


def _prune(w: Window, now: float) -> None:
    """Forget numbers older than the longest window (once a minute, under the window's lock). A
    workspace sending to more than :data:`MAX_BLOCKS` blocks in that time starts its sequential
    window afresh (bursts within one send are still seen): memory stays bounded."""
    w.pruned_at = now
    horizon = now - 1800
    w.blocks = {b: kept for b, seen in w.blocks.items() if (kept := {p: t for p, t in seen.items() if t > horizon})}
    if len(w.blocks) > MAX_BLOCKS:
        w.blocks = {}
    w.shared_at = {b: t for b, t in w.shared_at.items() if t > now - SHARED_EVERY}
    w.texts = {d: (kept, now) for d, (seen, _) in w.texts.items()
               if (kept := {p: t for p, t in seen.items() if t > now - 3600})}
    if len(w.texts) > 10_000:
        w.texts = {}


_outcomes: dict = {}  # workspace -> {prefix: [ok, failed, since]}
_outcomes_lock = threading.Lock()


def note_outcomes(tenant, events: list, book: rules.Book) -> list[Finding]:
    """Sent/delivered/failed events: failure ratio per destination prefix (the calling code and the
    first digits: pumped ranges often do not deliver). Memory only; no statement on the report path."""
    rule = book.rule(tenant.id, "failure_spike")
    if rule.action == "off":
        return []
    now = time.time()
    span = 60 * float(rule.params.get("minutes", 60))
    minimum, ratio = int(rule.params.get("minimum", 20)), float(rule.params.get("ratio", 0.5))
    blocked = _windows.get(tenant.id).blocked_prefixes if tenant.id in _windows else {}
    out = []
    with _outcomes_lock:
        mine = _outcomes.setdefault(tenant.id, {})
        for event, data in events:
            if event not in ("sent", "delivered", "failed") or not data.get("phone"):
                continue
            prefix = data["phone"][:6]
            counts = mine.get(prefix)
            if counts is None or now - counts[2] > span:
                if len(mine) > 10_000:
                    mine.clear()
                counts = mine[prefix] = [0, 0, now]
            counts[1 if event == "failed" else 0] += 1
            if event != "failed" or prefix in blocked:
                continue
            ok, failed = counts[0], counts[1]
            if failed >= minimum and failed / (ok + failed) >= ratio:
                out.append(Finding("failure_spike", prefix, f"{failed} of {ok + failed} failed to {prefix}…",
                                   {"prefix": prefix, "failed": failed, "ok": ok}))
    return out
