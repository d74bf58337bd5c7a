"""The operator's rules, as every process holds them in memory.

Each rule has an action (``off``, ``record``, ``notify``, ``hold``, ``suspend``), a severity (1 low,
2 medium, 3 high; a Customer may release what a low-severity rule held) and parameters. The
defaults are below; ``public.abuse_rules`` overrides them platform-wide and
``public.abuse_rule_overrides`` per workspace (a false positive tunes a rule that way). The
acceptable-use patterns are ``public.abuse_aup_patterns``.

The send path reads this module's :class:`Book` only (no statement). Any change to those tables
NOTIFYs ``smsgw_abuse_rules`` at commit (a trigger, whoever writes: the admin console, the CLI,
plain SQL); each process reloads on it (:func:`forget`), and a process that missed notifications
(a reconnect) is told to reload too by the listener.

Regular expressions are RE2 (``google-re2``): matching takes time linear in the text whatever
the pattern, so an operator's (or an intruder's) catastrophic pattern cannot stall a process; RE2
refuses what it cannot run that way (backreferences, lookaround), and such a pattern is refused when
it is saved, with RE2's reason. Patterns are at most 500 characters, texts are at most a few KB.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field, replace

import re2

from core.db import app_db, connection

log = logging.getLogger(__name__)

CHANNEL = "smsgw_abuse_rules"
ACTIONS = ("off", "record", "notify", "hold", "suspend")
KINDS = ("keyword", "domain", "regex")
LOW, MEDIUM, HIGH = 1, 2, 3


def N_(message):
    return message


@dataclass(frozen=True)
class Rule:
    name: str
    action: str
    severity: int
    params: dict = field(default_factory=dict)
    label: str = ""


DEFAULTS = {r.name: r for r in (
    Rule("sequential", "hold", HIGH, {"numbers": 20, "range": 100, "minutes": 10},
         N_("Burst to sequential numbers")),
    Rule("new_country", "record", LOW, {}, N_("First send to a new country")),
    Rule("geo", "hold", MEDIUM, {"allow": []}, N_("Country outside the allowed list")),
    Rule("premium", "hold", HIGH, {}, N_("Premium-rate or shared-cost number")),
    Rule("volume_spike", "notify", MEDIUM, {"factor": 5, "minimum": 200}, N_("Volume spike")),
    Rule("failure_spike", "notify", MEDIUM, {"ratio": 0.5, "minimum": 20, "minutes": 60},
         N_("Failure ratio spike per prefix")),
    Rule("identical_text", "hold", MEDIUM, {"recipients": 100, "minutes": 60, "new_days": 7},
         N_("Identical text to many recipients from a new workspace")),
    Rule("aup", "hold", HIGH, {}, N_("Text against the acceptable-use rules")),
    # Notify, not hold, by default: a fleet of servers behind changing addresses looks the same.
    Rule("token_ips", "notify", HIGH, {"ips": 5, "minutes": 60}, N_("API token used from many addresses")),
    # API tokens (addons/abuse/tokens.py): used again after a long idle time, outside their usual hours.
    Rule("token_idle", "notify", MEDIUM, {"days": 30}, N_("API token used after a long idle time")),
    Rule("token_hours", "notify", LOW, {"minimum": 200, "share": 0.01}, N_("API token used outside its usual hours")),
    # Unauthorized access (addons/abuse/access.py): from the kernel's sign-in audit events.
    Rule("new_device", "notify", LOW, {}, N_("Sign-in from a new device")),
    Rule("signin_failures", "notify", MEDIUM, {"accounts": 5, "minutes": 15},
         N_("Failed sign-ins across accounts from one address")),
    # Not a signal: any action but "off" sandboxes young or unpaid workspaces (sends only to listed
    # or verified numbers, up to a daily cap); a workspace override "off" is the operator's approval.
    Rule("sandbox", "off", LOW, {"days": 14, "daily_cap": 50, "paid_plans_exempt": True},
         N_("New-workspace sandbox")),
)}


class PatternError(ValueError):
    pass


_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def check_pattern(kind: str, pattern: str) -> str:
    """The pattern as stored, or :class:`PatternError` saying what is wrong with it."""
    pattern = (pattern or "").strip()
    if kind not in KINDS:
        raise PatternError(f"kind must be one of {', '.join(KINDS)}")
    if not pattern or len(pattern) > 500:
        raise PatternError("give a pattern of 1 to 500 characters")
    if kind == "domain":
        pattern = pattern.lower().lstrip(".")
        if not _DOMAIN.match(pattern):
            raise PatternError("not a domain name (e.g. example.com)")
    elif kind == "regex":
        try:
            re2.compile(pattern)
        except Exception as exc:  # re2.error: what RE2 cannot run in linear time, or bad syntax
            raise PatternError(f"not a pattern RE2 can run: {exc}") from None
    return pattern.casefold() if kind == "keyword" else pattern


@dataclass
class Book:
    rules: dict
    overrides: dict  # tenant_id -> {rule: (action | None, params)}
    keywords: tuple = ()
    domains: frozenset = frozenset()
    regex: object = None  # one RE2 set of all patterns, or None
    loaded_at: float = 0.0

    def rule(self, tenant_id: int, name: str) -> Rule:
        base = self.rules[name]
        own = self.overrides.get(tenant_id, {}).get(name)
        if own is None:
            return base
        action, params = own
        return replace(base, action=action or base.action, params={**base.params, **params})


_URL_HOST = re.compile(r"(?:https?://)?((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})(?=[/:?#\s]|$)", re.I)


def aup_match(book: Book, text: str) -> str | None:
    """What in ``text`` the acceptable-use patterns name (for the evidence), or None."""
    if book.keywords:
        folded = text.casefold()
        for k in book.keywords:
            if k in folded:
                return f"keyword {k!r}"
    if book.domains:
        for m in _URL_HOST.finditer(text):
            host = m.group(1).lower()
            parts = host.split(".")
            for i in range(len(parts) - 1):
                if ".".join(parts[i:]) in book.domains:
                    return f"domain {host}"
    if book.regex is not None:
        m = book.regex.search(text)
        if m is not None:
            return f"pattern match {m.group(0)[:40]!r}"
    return None


def check_params(name: str, params) -> list[str]:
    """What is wrong with a rule's parameters as stored (empty: nothing): each must be one the rule
    has, of the type of its default (a number: not negative)."""
    if not isinstance(params, dict):
        return [f"{name}: params must be a JSON object"]
    problems = []
    for key, value in params.items():
        default = DEFAULTS[name].params.get(key, _UNKNOWN)
        if default is _UNKNOWN:
            problems.append(f"{name}: unknown parameter {str(key)[:40]!r}")
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                problems.append(f"{name}.{key}: must be true or false")
        elif isinstance(default, (int, float)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != value:
                problems.append(f"{name}.{key}: must be a number, 0 or more")
        elif isinstance(default, list):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                problems.append(f"{name}.{key}: must be a list of texts")
    return problems


_UNKNOWN = object()


class RuleSetError(ValueError):
    """The stored rule set has mistakes (``problems``); ``book`` is what of it is usable."""

    def __init__(self, problems: list[str], book: "Book"):
        super().__init__("; ".join(problems))
        self.problems, self.book = problems, book


def load() -> Book:
    """Read the rules as the serving role (outside any tenant transaction). A rule set with
    mistakes (an unknown rule, a parameter of the wrong type, a pattern RE2 refuses) raises
    :class:`RuleSetError`: the caller keeps the rules it has."""
    rules = dict(DEFAULTS)
    overrides: dict = {}
    keywords, domains, regexes = [], set(), []
    problems: list[str] = []
    with connection():
        for name, action, severity, params in app_db.execute_sql(
                "SELECT rule, action, severity, params FROM public.abuse_rules ORDER BY rule"):
            params = _json_or_none(params)
            if name not in rules:
                problems.append(f"unknown rule {name!r}")
            elif not (wrong := check_params(name, params)):
                rules[name] = replace(rules[name], action=action, severity=severity,
                                      params={**DEFAULTS[name].params, **params})
            else:
                problems += wrong
        for tenant_id, name, action, params in app_db.execute_sql(
                "SELECT tenant_id, rule, action, params FROM public.abuse_rule_overrides ORDER BY tenant_id, rule"):
            params = _json_or_none(params)
            if name not in rules:
                problems.append(f"workspace {tenant_id}: unknown rule {name!r}")
            elif not (wrong := check_params(name, params)):
                overrides.setdefault(tenant_id, {})[name] = (action, params)
            else:
                problems += [f"workspace {tenant_id}: {w}" for w in wrong]
        for pid, kind, pattern in app_db.execute_sql("SELECT id, kind, pattern FROM public.abuse_aup_patterns ORDER BY id"):
            try:
                pattern = check_pattern(kind, pattern)
            except PatternError as exc:
                problems.append(f"acceptable-use pattern {pid}: {exc}")
                continue
            {"keyword": keywords.append, "domain": domains.add, "regex": regexes.append}[kind](pattern)
    regex = re2.compile("|".join(f"(?:{p})" for p in regexes)) if regexes else None
    book = Book(rules, overrides, tuple(keywords), frozenset(domains), regex, time.monotonic())
    if problems:
        raise RuleSetError(problems, book)
    return book


def _json_or_none(value):
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return None
    return value


def _json(value) -> dict:
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


_book: Book | None = None
_lock = threading.Lock()  # held while a load runs
# Generations: forget() asks for a newer one; a book is as new as the generation asked for when its
# load began. A caller arriving during a load that began before the latest forget() waits for the
# next load, never for (nor with) the old book: a false positive's tuning applies to the next send.
_asked = [1]
_loaded = [0]
_failed_at = [0.0]
RETRY_SECONDS = 5.0  # after a failed load, the previous rules serve this long before the next try
_gen_lock = threading.Lock()


def forget(_payload=None) -> None:
    """A rule changed (NOTIFY, or a reconnect that may have missed one): reload before next use."""
    with _gen_lock:
        _asked[0] += 1


def stale() -> bool:
    """Whether a change was announced since the rules in use were loaded (or none are loaded)."""
    return _book is None or _loaded[0] != _asked[0]


def book() -> Book:
    """The current rules. Loaded (in a thread of its own, with its own connection: the caller may be
    inside a tenant transaction) on first use and after a change was announced. A rule set with
    mistakes is not taken: the rules this process had stay (the first time: the usable part of it),
    the mistakes are logged and kept for the platform admins' rules page (:func:`failure`)."""
    global _book
    if not stale():
        return _book
    with _lock:
        retry_later = _book is not None and time.monotonic() - _failed_at[0] < RETRY_SECONDS
        if stale() and not retry_later:
            generation = _asked[0]
            result: list = []
            worker = threading.Thread(target=lambda: result.append(_safe_load()), name="abuse-rules")
            worker.start()
            worker.join()
            if result and isinstance(result[0], Book):
                _book, _loaded[0] = result[0], generation
            elif result and isinstance(result[0], RuleSetError):  # kept until the next change
                _loaded[0] = generation
                if _book is None:
                    _book = result[0].book
            else:  # the database did not answer: still stale, tried again after RETRY_SECONDS
                _failed_at[0] = time.monotonic()
                if _book is None:
                    _book = Book(dict(DEFAULTS), {})
    return _book


def peek() -> Book:
    """The rules as loaded, never waiting for a load (for the IOLoop): the defaults until then."""
    if stale() and not _lock.locked():
        threading.Thread(target=book, name="abuse-rules-reload", daemon=True).start()
    return _book or Book(dict(DEFAULTS), {})


_failure: dict = {}


def failure() -> dict | None:
    """The last reload's mistakes in this process (``at``: when, UTC; ``problems``), or None when
    the last reload took the stored rules."""
    return dict(_failure) if _failure else None


def _safe_load():
    from core.clock import utcnow

    try:
        loaded = load()
    except RuleSetError as exc:
        log.error("abuse: the stored rule set has mistakes; the rules in use stay: %s", str(exc)[:2000])
        _failure.clear()
        _failure.update(at=utcnow(), problems=exc.problems[:50])
        return exc
    except Exception:
        log.exception("abuse: could not load the rules; the previous ones (or the defaults) stay")
        return None
    _failure.clear()
    return loaded
