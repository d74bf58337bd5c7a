"""Restriction and objection (GDPR art. 18 and 21), *Account → Privacy* section ``objection``.

A person (User or Customer) objects to direct marketing (product-update mail) or to profiling
(usage analytics), or asks to restrict the processing of their data while a complaint about its
accuracy is checked. Each is a row of ``public.privacy_restriction`` in force until withdrawn,
recorded as a privacy request (objections complete at once; a restriction waits in the platform
admin's queue, and is lifted when the admin closes the request) and audited.

Features honour it through :func:`excluded`; marketing mail is vetoed by address
(``smsgw_mail_suppressed``, see :func:`mail_suppressed`), so no sender has to remember to ask.
"""

from __future__ import annotations

from core.datamap import PersonalData, Table
from core.db import app_db, run_sync
from core.events import emit
from core.hookspecs import AdminSection
from core.i18n import N_

from . import requests
from .page import SELF, Section

OBJECTIONS = ("marketing", "profiling")  # what a person can object to (art. 21)
PURPOSES = OBJECTIONS + ("restriction",)  # ... and the restriction of processing (art. 18)
# What a feature asks excluded() about, and which rows exclude a person from it: an objection to it,
# or a restriction of processing (a restricted account is left out of marketing and analytics alike).
EXCLUDING = {"marketing": ("marketing", "restriction"), "profiling": ("profiling", "restriction")}
REASON_MAX = 2000
REASON_MIN = 10  # a restriction says what is inaccurate

LABELS = {"marketing": N_("Direct marketing: product-update and newsletter e-mails"),
          "profiling": N_("Profiling: usage analytics about how you use the dashboard"),
          "restriction": N_("Restriction of processing while your complaint about accuracy is checked")}

MODELS = [Table("privacy_restriction", "public", PersonalData(
    personal=("subject", "email", "reason", "withdrawn_by"), subjects={"tenant": "tenant_id", "actor": "subject"},
    export=("purpose", "reason", "created_at", "withdrawn_at"), erase="pseudonymise"))]

_COLUMNS = ("id", "tenant_id", "tenant_slug", "subject", "email", "purpose", "reason", "request_id", "created_at",
            "withdrawn_at", "withdrawn_by")


class RestrictionError(ValueError):
    """The request cannot be recorded as asked; the message (an English msgid) says why, ``field`` where."""

    def __init__(self, message: str, field: str = "purpose"):
        super().__init__(message)
        self.field = field


def in_force(tenant_id: int, subject: str) -> list[dict]:
    """The person's objections and restriction that are in force, oldest first."""
    rows = app_db.execute_sql(
        f"SELECT {', '.join(_COLUMNS)} FROM public.privacy_restriction WHERE tenant_id = %s AND subject = %s "
        "AND withdrawn_at IS NULL ORDER BY created_at, id", (tenant_id, subject)).fetchall()
    return [dict(zip(_COLUMNS, row)) for row in rows]


def excluded(tenant_id: int, subject: str, purpose: str) -> bool:
    """Must ``purpose`` (``"marketing"`` or ``"profiling"``) leave this person out?

    The query every feature that markets to or analyses people asks (usage analytics of the
    consent issue included): true while they object to it or their processing is restricted.
    ``subject`` is an actor string, ``"user:<id>"``.
    """
    if purpose not in EXCLUDING:
        raise ValueError(f"excluded() answers for {', '.join(EXCLUDING)}, not {purpose!r}")
    row = app_db.execute_sql(
        "SELECT 1 FROM public.privacy_restriction WHERE tenant_id = %s AND subject = %s AND withdrawn_at IS NULL "
        "AND purpose = ANY(%s) LIMIT 1", (tenant_id, subject, list(EXCLUDING[purpose]))).fetchone()
    return row is not None


def excluded_subjects(tenant_id: int, purpose: str) -> set[str]:
    """Everyone in a workspace that ``purpose`` must leave out (for batch work such as analytics)."""
    if purpose not in EXCLUDING:
        raise ValueError(f"excluded_subjects() answers for {', '.join(EXCLUDING)}, not {purpose!r}")
    rows = app_db.execute_sql(
        "SELECT DISTINCT subject FROM public.privacy_restriction WHERE tenant_id = %s AND withdrawn_at IS NULL "
        "AND purpose = ANY(%s)", (tenant_id, list(EXCLUDING[purpose]))).fetchall()
    return {row[0] for row in rows}


def mail_suppressed(to: str, category: str) -> str | None:
    """Why ``category`` mail must not go to ``to`` (the ``smsgw_mail_suppressed`` answer), or ``None``."""
    if category != "marketing":
        return None
    row = app_db.execute_sql(
        "SELECT purpose FROM public.privacy_restriction WHERE lower(email) = lower(%s) AND withdrawn_at IS NULL "
        "AND purpose = ANY(%s) LIMIT 1", (to.strip(), list(EXCLUDING["marketing"]))).fetchone()
    if row is None:
        return None
    return ("the recipient objected to direct marketing" if row[0] == "marketing"
            else "the recipient's processing is restricted")


def check_reason(purpose: str, raw: str) -> str:
    reason = (raw or "").replace("\r\n", "\n").strip()
    if len(reason) > REASON_MAX:
        raise RestrictionError(N_("Keep the reason under 2,000 characters."), "reason")
    if purpose == "restriction" and len(reason) < REASON_MIN:
        raise RestrictionError(N_("Say what is inaccurate (at least 10 characters), so it can be checked."),
                               "reason")
    return reason


def record(tenant, subject: str, email: str, purpose: str, reason: str, *, requested_by: str) -> dict:
    """Put an objection or a restriction in force and record it as a privacy request (one transaction).

    An objection completes at once (self-service); a restriction waits in the admin's queue."""
    if purpose not in PURPOSES:
        raise RestrictionError(N_("Choose what you object to."))
    with app_db.atomic():
        taken = app_db.execute_sql(
            "SELECT 1 FROM public.privacy_restriction WHERE tenant_id = %s AND subject = %s AND purpose = %s "
            "AND withdrawn_at IS NULL FOR UPDATE", (tenant.id, subject, purpose)).fetchone()
        if taken:
            raise RestrictionError(N_("This is already in force."))
        objection = purpose in OBJECTIONS
        request_id = requests.open_request(
            "objection" if objection else "restriction", subject, tenant=tenant, requested_by=requested_by,
            self_service=objection, state="done" if objection else "open",
            details={"purpose": purpose, "reason": reason, "email": email})
        if objection:
            requests.set_state(request_id, "done", "In force from now on; withdraw it on Account → Privacy.")
        row = app_db.execute_sql(
            "INSERT INTO public.privacy_restriction (tenant_id, tenant_slug, subject, email, purpose, reason, "
            f"request_id) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {', '.join(_COLUMNS)}",
            (tenant.id, tenant.slug, subject, email, purpose, reason, request_id)).fetchone()
    return dict(zip(_COLUMNS, row))


def withdraw(tenant_id: int, subject: str, purpose: str, *, by: str) -> dict | None:
    """End what is in force for ``purpose``; the row, or ``None`` if nothing was. A withdrawn
    restriction's request, if still open, is closed as cancelled."""
    with app_db.atomic():
        row = app_db.execute_sql(
            "UPDATE public.privacy_restriction SET withdrawn_at = now(), withdrawn_by = %s WHERE tenant_id = %s "
            f"AND subject = %s AND purpose = %s AND withdrawn_at IS NULL RETURNING {', '.join(_COLUMNS)}",
            (by, tenant_id, subject, purpose)).fetchone()
        if row is None:
            return None
        found = dict(zip(_COLUMNS, row))
        if found["request_id"] and purpose == "restriction":
            app_db.execute_sql(
                "UPDATE public.privacy_request SET state = 'cancelled', completed_at = now(), "
                "outcome = 'Withdrawn by the person who asked.' WHERE id = %s AND state IN ('open', 'in_progress')",
                (found["request_id"],))
    return found


def lift_for_request(request_id: int, by: str) -> None:
    """The admin closed a restriction request (checked, done or refused): the restriction ends."""
    app_db.execute_sql(
        "UPDATE public.privacy_restriction SET withdrawn_at = now(), withdrawn_by = %s WHERE request_id = %s "
        "AND purpose = 'restriction' AND withdrawn_at IS NULL", (by, request_id))


def for_admin(tenant) -> list[dict]:
    """Admin console view (``smsgw_admin_sections``): everything recorded for a workspace."""
    rows = app_db.execute_sql(
        "SELECT subject, email, purpose, reason, created_at, withdrawn_at, withdrawn_by, request_id "
        "FROM public.privacy_restriction WHERE tenant_id = %s ORDER BY created_at DESC, id DESC LIMIT 500",
        (tenant.id,)).fetchall()
    return [{"person": r[0], "e-mail": r[1], "what": r[2], "reason": r[3], "since": r[4], "withdrawn": r[5],
             "withdrawn by": r[6], "request": r[7]} for r in rows]


# -- Account → Privacy -------------------------------------------------------------------------

def _audit(handler, action: str, row: dict):
    from core.web.auth_pages import audit

    return audit(handler, action, actor=handler.principal.actor, actor_name=handler.principal.email,
                 target=row["subject"], reason=row["reason"] or None, purpose=row["purpose"], request=row["request_id"])


async def load(handler) -> dict | None:
    principal = handler.principal
    if principal is None or principal.via != "session" or not principal.can(SELF):
        return None
    rows = await run_sync(_in_force, handler.tenant.id, principal.actor, principal.email)
    current = {row["purpose"]: row for row in rows}
    return {"current": current, "purposes": PURPOSES, "objections": OBJECTIONS, "labels": LABELS,
            "reason_max": REASON_MAX}


def _in_force(tenant_id, subject, email):
    from core.db import connection

    with connection():
        # The address marketing mail is checked against follows the person's current one.
        app_db.execute_sql("UPDATE public.privacy_restriction SET email = %s WHERE tenant_id = %s AND subject = %s "
                           "AND withdrawn_at IS NULL AND email <> %s", (email, tenant_id, subject, email))
        return in_force(tenant_id, subject)


async def post(handler) -> dict | None:
    _ = handler.gettext()[0]
    principal = handler.principal
    action = handler.get_body_argument("action", "")
    purpose = handler.get_body_argument("purpose", "")
    if purpose not in PURPOSES or action not in ("object", "withdraw"):
        return {"purpose": _("Choose what you object to.")}
    platform = handler.platform

    def work():
        from core.db import connection

        # The change and its audit record commit together, or neither does.
        with connection(), app_db.atomic():
            if action == "withdraw":
                row = withdraw(handler.tenant.id, principal.actor, purpose, by=principal.actor)
                if row is not None:
                    emit(platform, _audit(handler, "privacy.restriction_withdrawn", row))
                return row
            reason = check_reason(purpose, handler.get_body_argument("reason", ""))
            row = record(handler.tenant, principal.actor, principal.email, purpose, reason,
                         requested_by=principal.actor)
            emit(platform, _audit(handler, "privacy.restriction_recorded" if purpose == "restriction"
                                  else "privacy.objection_recorded", row))
            return row

    try:
        row = await run_sync(work)
    except RestrictionError as exc:
        return {exc.field: _(str(exc))}
    if action == "withdraw":
        handler.flash("success", _("Withdrawn.") if row else _("Nothing was in force."))
    elif purpose == "restriction":
        handler.flash("success", _("Recorded: we restrict the processing of your data until the check is done, "
                                   "and answer within 30 days."))
    else:
        handler.flash("success", _("Recorded: your objection is in force from now on."))
    return None


SECTION = Section("objection", 40, "privacy/restriction.html", load, post)
ADMIN_SECTIONS = {"privacy_restrictions": AdminSection(N_("Objections and restrictions"), for_admin, False)}
