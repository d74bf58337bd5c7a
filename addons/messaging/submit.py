"""Accepting messages: validation, idempotency, and a durable write before the 202 answer."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass

from core import due
from core.bodyschema import invalid, iso_time, request_schemas
from core.clock import utcnow
from core.db import app_db, array_literal
from core.groupcommit import with_refusals
from core.i18n import N_, Said
from core.web.problem import Problem, field_error

from addons.devices.service import wake_key

from . import dispatch, runtime, text as smstext
from .models import IdempotencyKey
from .phones import PhoneError, normalise
from .transitions import emit_many

MAX_RECIPIENTS = 1000
MAX_BATCH = 1000
MAX_TOTAL_RECIPIENTS = 10_000
OPERATION = "sendMessages"  # the published operation whose request-body schema every send is checked against
IDEMPOTENCY_TTL = dt.timedelta(hours=24)


def validate_one(item: dict, region: str, prefix: str = "") -> tuple[dict | None, list, list]:
    """``(clean, errors, rejected)`` for one message its schema accepted: the checks a schema cannot
    make (segments, phone numbers, times against now and each other). Message-level errors refuse it;
    rejected recipients are reported."""
    errors, rejected = [], []
    text = item["text"]
    info = smstext.describe(text)
    if info["segments"] > smstext.MAX_SEGMENTS:
        errors.append(field_error(prefix + "text", N_("is too long: %(segments)s segments (%(encoding)s); the "
                                                      "maximum is %(max)s"),
                                  {"segments": info["segments"], "encoding": info["encoding"],
                                   "max": smstext.MAX_SEGMENTS}))
    to = item["to"]
    phones, seen = [], set()
    for i, raw in enumerate([to] if isinstance(to, str) else to):
        try:
            phone = normalise(raw, region)
        except PhoneError as exc:
            rejected.append({"input": raw if isinstance(raw, str) else repr(raw)[:40], "index": i,
                             "reason": Said(exc.msgid, exc.msg_args)})
            continue
        if phone not in seen:
            seen.add(phone)
            phones.append(phone)
    now = utcnow()
    valid_until, send_at = _times(item, now, prefix, errors)
    if not errors and not phones:
        errors.append(field_error(prefix + "to", N_("no valid recipient: %(reasons)s"),
                                  {"reasons": Said.joined([r["reason"] for r in rejected[:5]])}))
    if errors:
        return None, errors, rejected
    return {"text": text, "encoding": info["encoding"], "segments": info["segments"], "phones": phones,
            "device_id": item.get("device_id"), "sim_slot": item.get("sim_slot"), "priority": item.get("priority", 0),
            "valid_until": valid_until, "send_at": send_at if send_at and send_at > now else None,
            "delivery_report": item.get("delivery_report", True), "reference": item.get("reference")}, [], rejected


def _times(item: dict, now: dt.datetime, prefix: str, errors: list) -> tuple:
    """``(valid_until, send_at)`` of a message: ``ttl`` made a time, each checked against now and the other."""
    ttl, valid_until, send_at = item.get("ttl"), iso_time(item.get("valid_until")), iso_time(item.get("send_at"))
    if ttl is not None and valid_until is not None:
        errors.append({"field": prefix + "ttl", "message": N_("give ttl or valid_until, not both")})
    if ttl is not None and (send_at or now) < dt.datetime(9999, 1, 1, tzinfo=dt.timezone.utc):
        valid_until = (send_at or now) + dt.timedelta(seconds=ttl)
    if valid_until is not None and valid_until <= now:
        errors.append({"field": prefix + "valid_until", "message": N_("is in the past")})
    if send_at is not None and send_at > now + dt.timedelta(days=366):
        errors.append({"field": prefix + "send_at", "message": N_("is more than a year ahead")})
    if send_at is not None and valid_until is not None and valid_until <= send_at:
        errors.append({"field": prefix + "valid_until", "message": N_("must be after send_at")})
    return valid_until, send_at


def validate_request(body: dict, region: str) -> tuple[list[dict], list[list], bool]:
    """Clean messages and their rejected recipients; ``batch`` says which shape was sent.

    The body is checked against the published schema of ``POST /api/v1/messages`` first; the
    messages it accepts are then checked by :func:`validate_one`, so one answer lists every
    invalid field of every message."""
    errors = request_schemas(runtime.platform()).operation(OPERATION).errors(body)
    if any(e["keyword"] == "maxItems" and e["path"] == ("messages",) for e in errors):
        raise Problem(413, "batch-too-large", N_("Send at most %(MAX_BATCH)s messages per request."),
        args={"MAX_BATCH": MAX_BATCH})
    batch = "messages" in body
    # An error inside a message of a batch refuses that message (the others are still checked);
    # any other error refuses the request as it is.
    if errors and not (batch and all(len(e["path"]) >= 2 and e["path"][0] == "messages" for e in errors)):
        raise invalid(errors, N_("The request has invalid fields; nothing was sent."))
    refused = {e["path"][1] for e in errors}
    items = body["messages"] if batch else [body]
    clean, rejected_all, total = [], [], 0
    for i, item in enumerate(items):
        if i in refused:
            rejected_all.append([])
            continue
        c, e, rej = validate_one(item, region, f"messages[{i}]." if batch else "")
        errors += e
        rejected_all.append(rej)
        if c:
            total += len(c["phones"])
            clean.append(c)
    if total > MAX_TOTAL_RECIPIENTS:
        errors.append(field_error("messages", N_("at most %(max)s recipients per request"),
                                  {"max": MAX_TOTAL_RECIPIENTS}))
    if errors:
        raise invalid(sorted(errors, key=_order), N_("The request has invalid fields; nothing was sent."))
    return clean, rejected_all, batch


def _order(error: dict):
    """Errors of a batch in the order of its messages (schema errors and the others mixed)."""
    match = re.match(r"messages\[(\d+)\]", error["field"])
    return int(match.group(1)) if match else -1


def request_hash(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class Submission:
    """One request's validated messages, ready for :func:`accept_many`."""

    clean: list[dict]
    rejected: list[list]
    batch: bool
    source: str
    created_by: str
    idempotency_key: str | None = None
    body_hash: str | None = None


@dataclass
class ApiSend:
    """An API send request as received: validated in the transaction's thread (number parsing is
    CPU work, kept off the IOLoop)."""

    tenant: object
    body: dict
    created_by: str
    idempotency_key: str | None = None
    body_hash: str | None = None


def size_of(send: ApiSend) -> int:
    """About how many recipients a send request holds (for grouping; validation comes later)."""
    body = send.body
    items = body.get("messages") if isinstance(body.get("messages"), list) else [body]
    return sum(len(to) if isinstance(to := item.get("to") if isinstance(item, dict) else None, list) else 1
               for item in items) or 1


def accept_api_sends(sends: list[ApiSend]) -> list:
    """Group-commit work (:mod:`core.groupcommit`) for API sends of one tenant: validate each,
    then store them together. One outcome per send: ``(status, response, wake_keys)`` or its Problem."""
    def check(send: ApiSend) -> Submission:
        clean, rejected, batch = validate_request(send.body, send.tenant.default_region)
        return Submission(clean, rejected, batch, "api", send.created_by, send.idempotency_key, send.body_hash)

    return with_refusals(sends, check, lambda subs: accept_many(sends[0].tenant, subs))


def accept(tenant, clean: list[dict], rejected_all: list[list], batch: bool, *, source: str, created_by: str,
           idempotency_key: str | None = None, body_hash: str | None = None) -> tuple[int, dict, list[str]]:
    """Inside the tenant transaction: store one request's messages, or replay an idempotent answer.

    Returns ``(status, response, wake_keys)``; wake keys are for after the commit."""
    outcome = accept_many(tenant, [Submission(clean, rejected_all, batch, source, created_by, idempotency_key,
                                              body_hash)])[0]
    if isinstance(outcome, Problem):
        raise outcome
    return outcome


def accept_many(tenant, subs: list[Submission]) -> list:
    """Inside the tenant transaction: store the messages of several requests in one statement.

    One outcome per request, in order: ``(status, response, wake_keys)``, or the :class:`Problem`
    that refuses that request alone (decided before anything of it is written). The wake keys
    of the whole group come with each stored request's outcome."""
    if tenant.sending_paused:  # the cached tenant's field: nothing to look up on the send path
        return [paused(tenant)] * len(subs)
    outcomes: list = [None] * len(subs)
    keys_seen: set[str] = set()
    for i, sub in enumerate(subs):
        if sub.idempotency_key:
            outcomes[i] = _replay(tenant, sub, keys_seen)
    _check_devices(subs, outcomes)
    live = [i for i, outcome in enumerate(outcomes) if outcome is None]
    if not live:
        return outcomes
    all_phones = list({p for i in live for c in subs[i].clean for p in c["phones"]})
    # The opted-out recipients, the sticky-sender setting and (for work not scheduled for later)
    # the phones that could be woken for it: one round trip, which also starts the transaction.
    now_work = any(not c["send_at"] for i in live for c in subs[i].clean)
    sticky_sender, suppressed, candidates = app_db.execute_sql(
        "SELECT coalesce((SELECT sticky_sender FROM messaging_settings LIMIT 1), false), "
        "ARRAY(SELECT phone FROM suppressions WHERE phone = ANY (%s::text[])), "
        + (dispatch.WAKE_CANDIDATES if now_work else "NULL"), (array_literal(all_phones),)).fetchone()
    suppressed = set(suppressed)
    sticky = {}
    if sticky_sender and all_phones:
        sticky = dict(app_db.execute_sql("""
            SELECT DISTINCT ON (r.phone) r.phone, r.device_id FROM recipients r
              JOIN devices d ON d.id = r.device_id AND d.enabled AND d.online AND d.removed_at IS NULL
             WHERE r.phone = ANY (%s::text[]) AND r.device_id IS NOT NULL ORDER BY r.phone, r.id DESC
        """, (array_literal(all_phones),)).fetchall())
    plans = {}  # request -> [(clean, phones, rejected)]
    for i in live:
        sub, plan = subs[i], []
        for c, rejected in zip(sub.clean, sub.rejected):
            if suppressed:  # else two passes over a bulk send's phones for nothing
                rejected = list(rejected) + [{"input": p, "reason": "opted out (the recipient sent STOP)"}
                                             for p in c["phones"] if p in suppressed]
                phones = [p for p in c["phones"] if p not in suppressed]
            else:
                rejected, phones = list(rejected), list(c["phones"])
            plan.append((c, phones, rejected))
        if any(phones for _, phones, _ in plan):
            plans[i] = plan
        else:
            outcomes[i] = Problem(422, "no-recipients",
                                  N_("No recipient can receive this (invalid or opted out); nothing "
                                     "was sent."),
                                  errors=[{"field": "to", "message": r["reason"], "input": r["input"]}
                                          for _, _, rejected in plan for r in rejected][:200])
    _last_word(tenant, plans, outcomes)
    rows = [(c, phones, subs[i].source, subs[i].created_by) for i, plan in plans.items()
            for c, phones, _ in plan if phones]
    holds = _screen(tenant, rows) if rows else {}
    stored = iter(_insert(rows, sticky, holds)) if rows else iter(())
    now_iso = utcnow().isoformat()
    events, held_events, row_n = [], [], -1
    for i, plan in plans.items():
        sub, results = subs[i], []
        for c, phones, rejected in plan:
            if not phones:
                results.append({"id": None, "state": "rejected", "recipients": [], "rejected": rejected,
                                "encoding": c["encoding"], "segments": c["segments"], "reference": c["reference"]})
                continue
            message_id, created_at, ids = next(stored)
            row_n += 1
            event = {"message_id": message_id, "recipient_id": None, "phone": None, "state": "pending",
                     "device_id": None, "error_code": None, "reference": c["reference"], "at": now_iso}
            events += [("accepted", dict(event, recipient_id=rid, phone=p)) for rid, p in zip(ids, phones)]
            recipients = [{"id": rid, "phone": p, "state": "pending"} for rid, p in zip(ids, phones)]
            if holds:
                for r in recipients:
                    reason = holds.get((row_n, r["phone"]))
                    if reason is not None:
                        r.update(state="held", hold_reason=reason)
                        held_events.append(("held", dict(event, recipient_id=r["id"], phone=r["phone"],
                                                         state="held", hold_reason=reason)))
            results.append({"id": message_id, "state": "held" if any(r["state"] == "held" for r in recipients)
                            else "pending", "created_at": created_at.isoformat(),
                            "text": c["text"], "encoding": c["encoding"], "segments": c["segments"],
                            "reference": c["reference"],
                            "send_at": c["send_at"].isoformat() if c["send_at"] else None,
                            "valid_until": c["valid_until"].isoformat() if c["valid_until"] else None,
                            "recipients": recipients, "rejected": rejected})
        response = {"messages": results} if sub.batch else results[0]
        if sub.idempotency_key:
            IdempotencyKey.create(key=sub.idempotency_key, request_hash=sub.body_hash, status=202, response=response)
        outcomes[i] = (202, response, [])
    if held_events:
        app_db.execute_sql("INSERT INTO recipient_events (recipient_id, from_state, to_state, source) "
                           "SELECT unnest(%s::bigint[]), 'pending', 'held', 'screening'",
                           (array_literal([d["recipient_id"] for _, d in held_events]),))
    emit_many(tenant, events + held_events)
    stored_clean = [c for c, _, _, _ in rows]
    keys = _wake(tenant, stored_clean, sticky, sum(len(phones) for _, phones, _, _ in rows), candidates)
    for i in plans:  # every caller wakes them (waking an awake phone costs nothing)
        outcomes[i] = outcomes[i][:2] + (keys,)
    timed = [t for c in stored_clean for t in (c["send_at"], c["valid_until"]) if t]
    if timed:  # a plain send has neither, and pays nothing here
        from .lifecycle import JOB

        due.arm(JOB, min(timed))
    return outcomes


def _last_word(tenant, plans: dict, outcomes: list) -> None:
    """Ask the addons (``smsgw_messages_submitting``: quotas, a suspended workspace) about the
    requests still going, with the segments each would store; drop the ones refused."""
    order = list(plans)
    segments = [sum(len(phones) * c["segments"] for c, phones, _ in plans[i]) for i in order]
    recipients = [list(dict.fromkeys(p for _, phones, _ in plans[i] for p in phones)) for i in order]
    for refusals in runtime.platform().registry.hook.smsgw_messages_submitting(tenant=tenant, segments=segments,
                                                                               recipients=recipients):
        for n, refusal in enumerate(refusals or ()):
            if refusal is not None and segments[n]:
                outcomes[order[n]] = refusal
                segments[n] = 0
                del plans[order[n]]


def _screen(tenant, rows: list[tuple]) -> dict:
    """Ask the addons (``smsgw_messages_screening``: abuse monitoring) which recipients of the
    messages about to be stored to hold: ``{(row index, phone): reason}``."""
    messages = [{"text": c["text"], "phones": phones, "source": source, "created_by": created_by,
                 "send_at": c["send_at"], "valid_until": c["valid_until"]} for c, phones, source, created_by in rows]
    holds: dict = {}
    for result in runtime.platform().registry.hook.smsgw_messages_screening(tenant=tenant, messages=messages):
        for key, reason in (result or {}).items():
            holds.setdefault(key, str(reason)[:200])
    return holds


def paused(tenant) -> Problem:
    """The refusal of a send while the workspace's sending is paused (frozen, or its deletion scheduled)."""
    return Problem(409, "sending-paused",
                   N_("The workspace %(slug)s does not send messages now: %(sending_paused)s. "
                      "Nothing was stored; send again once sending is resumed."), title=N_("Sending is paused"),
                      args={"slug": tenant.slug, "sending_paused": tenant.sending_paused})


def _replay(tenant, sub: Submission, keys_seen: set[str]):
    """For a request with an Idempotency-Key: ``None`` to go on, the first answer to replay, or
    the Problem that refuses it."""
    key = sub.idempotency_key
    if key in keys_seen:  # the same key earlier in this group: that request is still in flight
        return _in_flight()
    # Advisory locks are database-wide: the tenant is part of the key. (A session may take its own
    # lock again, hence keys_seen for a key twice in one group.)
    if not app_db.execute_sql("SELECT pg_try_advisory_xact_lock(hashtext('idem:' || %s), hashtext(%s))",
                              (tenant.slug, key)).fetchone()[0]:
        return _in_flight()
    keys_seen.add(key)
    prior = IdempotencyKey.get_or_none((IdempotencyKey.key == key) &
                                       (IdempotencyKey.created_at > utcnow() - IDEMPOTENCY_TTL))
    if prior is not None:
        if prior.request_hash != sub.body_hash:
            return _reused()
        return prior.status, prior.response, []
    IdempotencyKey.delete().where(IdempotencyKey.key == key).execute()  # an expired one
    return None


def _reused() -> Problem:
    return Problem(422, "idempotency-key-reused",
                   N_("This Idempotency-Key was used with a different request body; use a new key."))


def _in_flight() -> Problem:
    return Problem(409, "idempotency-in-flight",
                   N_("A request with this Idempotency-Key is still being processed; retry in a "
                      "moment."))


def _check_devices(subs: list[Submission], outcomes: list) -> None:
    """Refuse the requests (still going) that ask for a device that does not exist or is disabled."""
    wanted = {i: {c["device_id"] for c in sub.clean if c["device_id"]}
              for i, sub in enumerate(subs) if outcomes[i] is None}
    device_ids = sorted(set().union(*wanted.values())) if wanted else []
    if not device_ids:
        return
    found = {r[0] for r in app_db.execute_sql(
        "SELECT id FROM devices WHERE id = ANY (%s) AND enabled AND removed_at IS NULL", (device_ids,))}
    for i, ids in wanted.items():
        missing = sorted(ids - found)
        if missing:
            outcomes[i] = Problem(422, "validation-failed", N_("A requested device does not exist or "
                                                               "is disabled."),
                                  errors=[field_error("device_id", N_("no enabled device %(id)s"), {"id": d})
                                          for d in missing])


def _insert(rows: list[tuple], sticky: dict, holds: dict | None = None) -> list[tuple]:
    """Store messages and their recipients in one statement, however many there are (through the
    ORM this cost more than the database work). A recipient's creation is the first entry of its
    history without a row of its own: its ``created_at`` and its message's ``source`` say it
    (:func:`addons.messaging.api.history`); a bulk send writes half the rows it would otherwise.
    ``rows`` are ``(clean, phones, source, created_by)``; ``holds`` ``{(row index, phone): reason}``
    are stored ``held`` (none: the state and reason arrays stay empty and unnest pads them); returns ``(message_id, created_at,
    recipient_ids)`` for each, the ids in the order of its phones."""
    cols = {k: [] for k in ("text", "enc", "seg", "prio", "vu", "nb", "dr", "ref", "dev", "sim", "src", "by",
                            "rn", "rphone", "rsticky", "rhold")}
    for n, (c, phones, source, created_by) in enumerate(rows, start=1):
        for k, v in (("text", c["text"]), ("enc", c["encoding"]), ("seg", c["segments"]), ("prio", c["priority"]),
                     ("vu", c["valid_until"]), ("nb", c["send_at"]), ("dr", c["delivery_report"]),
                     ("ref", c["reference"]), ("dev", c["device_id"]), ("sim", c["sim_slot"]), ("src", source),
                     ("by", created_by)):
            cols[k].append(v)
        cols["rn"] += [n] * len(phones)
        cols["rphone"] += phones
        cols["rsticky"] += [sticky.get(p) for p in phones] if sticky else [None] * len(phones)
        if holds:
            cols["rhold"] += [holds.get((n - 1, p)) for p in phones]
    cols = {k: array_literal(v) for k, v in cols.items()}
    message_ids, created_at, rids, rmids, rphones = app_db.execute_sql("""
        WITH src AS MATERIALIZED (
            SELECT nextval('messages_id_seq'::regclass) AS id, s.*
              FROM unnest(%(text)s::text[], %(enc)s::text[], %(seg)s::int[], %(prio)s::smallint[],
                          %(vu)s::timestamptz[], %(nb)s::timestamptz[], %(dr)s::boolean[], %(ref)s::text[],
                          %(dev)s::bigint[], %(sim)s::smallint[], %(src)s::text[], %(by)s::text[])
                   WITH ORDINALITY AS s (text, encoding, segments, priority, valid_until, send_at, delivery_report,
                                         reference, device_id, sim_slot, source, created_by, n)),
        m AS (
            INSERT INTO messages (id, text, encoding, segments, priority, valid_until, send_at, delivery_report,
                                  reference, device_id, sim_slot, source, created_by)
            SELECT id, text, encoding, segments, priority, valid_until, send_at, delivery_report, reference,
                   device_id, sim_slot, source, created_by FROM src
             RETURNING created_at),
        new AS (
            INSERT INTO recipients (message_id, phone, priority, not_before, valid_until, requested_device_id,
                                    requested_sim, state, hold_reason)
            SELECT src.id, p.phone, src.priority, src.send_at, src.valid_until, coalesce(src.device_id, p.sticky),
                   src.sim_slot, CASE WHEN p.hold IS NULL THEN 'pending' ELSE 'held' END, p.hold
              FROM unnest(%(rn)s::bigint[], %(rphone)s::text[], %(rsticky)s::bigint[], %(rhold)s::text[])
                   WITH ORDINALITY AS p (n, phone, sticky, hold, k)
              JOIN src ON src.n = p.n
             ORDER BY p.k
             RETURNING id, message_id, phone)
        SELECT (SELECT array_agg(id ORDER BY n) FROM src), (SELECT min(created_at) FROM m),
               (SELECT array_agg(id ORDER BY id) FROM new), (SELECT array_agg(message_id ORDER BY id) FROM new),
               (SELECT array_agg(phone ORDER BY id) FROM new)
    """, cols).fetchone()
    return [(mid, created_at, ids) for mid, ids in zip(message_ids, recipient_ids(
        [(mid, phones) for mid, (_, phones, _, _) in zip(message_ids, rows)], rids, rmids, rphones))]


def recipient_ids(messages: list[tuple[int, list[str]]], rids: list, rmids: list, rphones: list) -> list[list]:
    """Each message's recipient ids in the order of its phones, from the inserted rows
    ``(rids, rmids, rphones)``. The rows go in in that order and take their ids from a sequence
    as they go, so in id order they are usually in it already: checked, not assumed."""
    expected_mids = [mid for mid, phones in messages for _ in phones]
    if rmids == expected_mids and rphones == [p for _, phones in messages for p in phones]:
        out, at = [], 0
        for _, phones in messages:
            out.append(rids[at:at + len(phones)])
            at += len(phones)
        return out
    rid_of = {(mid, phone): rid for rid, mid, phone in zip(rids, rmids, rphones)}
    return [[rid_of[(mid, p)] for p in phones] for mid, phones in messages]


def _wake(tenant, stored: list[dict], sticky: dict, total_new: int, candidates: list | None) -> list[str]:
    """After storing: the phones to wake once the transaction commits. Work for a chosen (or
    sticky) phone wakes that phone; the rest wakes the least loaded (of ``candidates``, read
    before storing: the new recipients are pending, not counted in a phone's load)."""
    if not any(not c["send_at"] for c in stored):
        return []
    platform = runtime.platform()
    chosen = {c["device_id"] for c in stored if c["device_id"] and not c["send_at"]} | set(sticky.values())
    keys = []
    for device_id in sorted(chosen | set(dispatch.devices_to_wake(total_new, candidates))):
        key = wake_key(tenant.slug, device_id)
        platform.wake_on_commit(app_db, key)
        keys.append(key)
    return keys


