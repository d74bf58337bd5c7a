"""An alert's summary in the reader's language (issue 20).

The English summary a signal writes stays the record (logs, the API's ``hold_reason``); when the
alert is raised, its rule and evidence also give a msgid and its arguments, kept in the evidence as
``said`` (so the platform's queue, which holds a copy of the evidence, has it too). Pages and mails
show ``_(msgid, **args)`` in their reader's language (:func:`text`), like
:class:`core.i18n.Said`. Arguments are the evidence's values (numbers, ranges, names), never
translated and never read as a format.
"""

from __future__ import annotations

from core.i18n import N_

HIGH_COST_LABELS = {"premium_rate": N_("premium-rate"), "shared_cost": N_("shared-cost")}
WORDS = frozenset(HIGH_COST_LABELS.values())  # arguments that are our own words: translated too


def _failure(ev: dict) -> tuple:
    if "failed" in ev:
        return (N_("%(failed)s of %(total)s failed to %(prefix)s…"),
                {"failed": ev["failed"], "total": ev["failed"] + ev.get("ok", 0), "prefix": ev["prefix"]})
    return N_("Prefix %(prefix)s is failing"), {"prefix": ev["prefix"]}


RULES = {
    "sequential": lambda ev: (N_("%(distinct)s numbers in %(range)s"), {"distinct": ev["distinct"], "range": ev["range"]}),
    "new_country": lambda ev: (N_("First send to +%(code)s"), {"code": ev["calling_code"]}),
    "geo": lambda ev: (N_("Country code +%(code)s is not allowed"), {"code": ev["calling_code"]}),
    "premium": lambda ev: (N_("Numbers in the %(kind)s range %(range)s"),
                           {"kind": HIGH_COST_LABELS.get(ev["type"], ev["type"]), "range": ev["range"]}),
    "volume_spike": lambda ev: (N_("%(count)s recipients this hour; the usual most (7-day hourly p95) is %(p95)s"),
                                {"count": ev["this_hour"], "p95": ev["p95_7d"]}),
    "failure_spike": _failure,
    "identical_text": lambda ev: (N_("One text to %(count)s recipients"), {"count": ev["recipients"]}),
    "aup": lambda ev: (N_("Text against the acceptable-use rules: %(match)s"), {"match": ev["match"]}),
    "token_ips": lambda ev: (N_("API token %(token)s used from %(count)s addresses"),
                             {"token": ev["token"], "count": ev["count"]}),
    "token_idle": lambda ev: (N_("API token “%(name)s” used again after %(days)s days unused"),
                              {"name": ev["name"], "days": ev["days"]}),
    "token_hours": lambda ev: (N_("API token “%(name)s” used at %(hour)s UTC, outside its usual hours"),
                               {"name": ev["name"], "hour": f"{int(ev['hour_utc']):02d}:00"}),
    "signin_failures": lambda ev: (N_("Failed sign-ins to %(count)s accounts from %(address)s"),
                                   {"count": ev["count"], "address": (ev.get("addresses") or ["?"])[0]}),
    "new_device": lambda ev: (N_("%(person)s signed in from a new device"), {"person": ev["token"]}),
}


def said(rule: str, evidence: dict) -> dict | None:
    """``{"msgid", "args"}`` for an alert of ``rule`` with ``evidence``, or None (then its English)."""
    make = RULES.get(rule)
    if make is None:
        return None
    try:
        msgid, args = make(evidence)
    except (KeyError, TypeError, ValueError):
        return None
    return {"msgid": msgid, "args": {k: v if isinstance(v, (int, float)) else str(v)[:200] for k, v in args.items()}}


def text(gettext, alert: dict) -> str:
    """The alert's summary in the language of ``gettext``; its English summary when it has no msgid
    (an alert raised before summaries were kept so) or the msgid is not one of ours. An argument
that is one of our own words (:data:`WORDS`: a number type) is translated too; the others
(numbers, ranges, names) are shown as they are."""
    s = (alert.get("evidence") or {}).get("said")
    if isinstance(s, dict) and s.get("msgid") in MSGIDS and isinstance(s.get("args"), dict):
        args = {k: gettext(v) if v in WORDS else v for k, v in s["args"].items()}
        try:
            return gettext(s["msgid"], **args)
        except (KeyError, TypeError, ValueError):
            pass
    return alert.get("summary") or ""


def _msgids() -> frozenset:
    sample = {"distinct": 1, "range": "", "calling_code": "", "type": "", "this_hour": 1, "p95_7d": 1, "prefix": "",
              "recipients": 1, "match": "", "token": "", "count": 1, "name": "", "days": 1, "hour_utc": 1,
              "addresses": [""]}
    ids = {make(sample)[0] for make in RULES.values()}
    return frozenset(ids | {_failure({"prefix": "", "failed": 1})[0]})


MSGIDS = _msgids()
