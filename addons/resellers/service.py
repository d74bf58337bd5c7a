"""Resellers: accounts, their console's people, the workspaces they own, reasoned support access and
the addons available to them. Blocking functions (run off the IOLoop); the catalogue is ``public``.

Scoping lives here in one place: :func:`workspaces` is the only query that says which workspaces a
reseller may see; every console page and action reaches a workspace through it (or through
:func:`workspace`, which calls it), never through the tenant catalogue directly.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass

from core import passwords, tokenformat
from core.adminauth import GrantError, access_reason
from core.clock import utcnow
from core.db import app_db, connection
from core.permissions import Principal
from core.tenancy import SLUG_RE, TenantError, check_email, load_tenant
from core.i18n import N_
from core.web.problem import Refusal

ROLES = ("reseller_admin", "reseller_support")
ADMIN_PERMISSION = "reseller:manage"    # create, suspend and resume workspaces; people; addons
SUPPORT_PERMISSION = "reseller:support"  # see workspaces, their usage, open one for support
ROLE_PERMISSIONS = {"reseller_admin": frozenset({ADMIN_PERMISSION, SUPPORT_PERMISSION}),
                    "reseller_support": frozenset({SUPPORT_PERMISSION})}
SESSION_TTL = dt.timedelta(hours=12)
GRANT_TTL = dt.timedelta(hours=1)
ADDON_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class ResellerError(Refusal):
    """Refused; the message is for the person who asked."""


def passed_on(exc: Exception) -> "ResellerError":
    """Another service's refusal, as the reseller's (its msgid and arguments kept for translation)."""
    return ResellerError(exc.msgid, exc.msg_args) if isinstance(exc, Refusal) else ResellerError(str(exc))


class NotYours(ResellerError):
    """An addon or workspace the reseller may not reach: answered like one that does not exist."""


@dataclass(frozen=True)
class Reseller:
    id: int
    slug: str
    company: str
    contact_name: str
    contact_email: str
    pricing: str
    commission_bp: int
    wholesale_plan: str
    max_workspaces: int
    status: str
    created_at: dt.datetime
    status_reason: str = ""
    address: str = ""  # its billing details: the seller on its customers' invoices, the buyer on the platform's
    country: str = ""
    vat_id: str = ""

    @property
    def is_active(self) -> bool:
        return self.status == "active"


COLUMNS = ("id", "slug", "company", "contact_name", "contact_email", "pricing", "commission_bp",
           "wholesale_plan", "max_workspaces", "status", "created_at", "status_reason", "address", "country", "vat_id")
SELECT = f"SELECT {', '.join(COLUMNS)} FROM public.reseller"


def whole_number(raw, low: int, high: int, what: str) -> int:
    """``raw`` as an int in [low, high], else :class:`ResellerError` naming ``what``."""
    try:
        value = int(str(raw).strip())
    except (TypeError, ValueError):
        raise ResellerError(N_("%(what)s must be a whole number from %(low)s to %(high)s."),
                            {"what": what, "low": low, "high": high}) from None
    if not low <= value <= high:
        raise ResellerError(N_("%(what)s must be a whole number from %(low)s to %(high)s."),
                            {"what": what, "low": low, "high": high})
    return value


def validate(values: dict) -> dict:
    """The reseller's fields from a form or the command line, checked; :class:`ResellerError` otherwise."""
    slug = str(values.get("slug") or "").strip()
    if not SLUG_RE.match(slug) or "--" in slug:
        raise ResellerError(N_("The reseller's short name must be 3 to 40 lowercase letters, digits or hyphens."))
    company = str(values.get("company") or "").strip()
    if not 1 <= len(company) <= 200:
        raise ResellerError(N_("Give the company a name of 1 to 200 characters."))
    contact_name = str(values.get("contact_name") or "").strip()[:200]
    try:
        contact_email = check_email(str(values.get("contact_email") or ""))
    except TenantError as exc:
        raise passed_on(exc) from None
    pricing = str(values.get("pricing") or "")
    if pricing not in ("commission", "wholesale"):
        raise ResellerError(N_("Choose how the reseller pays: commission or wholesale."))
    commission_bp = wholesale_plan = None
    if pricing == "commission":
        commission_bp = round(whole_number(values.get("commission_percent", 0), 0, 100, "The commission (percent)") * 100)
        wholesale_plan = ""
    else:
        wholesale_plan = str(values.get("wholesale_plan") or "").strip()
        if not re.match(r"^[a-z0-9][a-z0-9-]{0,39}$", wholesale_plan):
            raise ResellerError(N_("Name the billing plan whose prices are the reseller's wholesale price list."))
        commission_bp = 0
    max_workspaces = whole_number(values.get("max_workspaces"), 0, 100000, "The most workspaces")
    return {"slug": slug, "company": company, "contact_name": contact_name, "contact_email": contact_email,
            "pricing": pricing, "commission_bp": commission_bp, "wholesale_plan": wholesale_plan,
            "max_workspaces": max_workspaces}


def create(values: dict) -> Reseller:
    fields = validate(values)
    if fields["pricing"] == "wholesale":
        from addons.billing import plans

        with connection():
            if plans.current(fields["wholesale_plan"]) is None:
                raise ResellerError(N_("There is no current billing plan “%(plan)s”."), {"plan": fields["wholesale_plan"]})
    with connection():
        with app_db.atomic():
            if app_db.execute_sql("SELECT 1 FROM public.reseller WHERE slug = %s", (fields["slug"],)).fetchone():
                raise ResellerError(N_("A reseller called “%(slug)s” exists already."), {"slug": fields["slug"]})
            names = list(fields)
            row = app_db.execute_sql(
                f"INSERT INTO public.reseller ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))}) "
                f"RETURNING {', '.join(COLUMNS)}", [fields[n] for n in names]).fetchone()
    return Reseller(*row)


def by_slug(slug: str) -> Reseller | None:
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        return None
    with connection():
        row = app_db.execute_sql(SELECT + " WHERE slug = %s", (slug,)).fetchone()
    return Reseller(*row) if row else None


def everyone() -> list[Reseller]:
    with connection():
        return [Reseller(*r) for r in app_db.execute_sql(SELECT + " ORDER BY slug").fetchall()]


def get(slug: str) -> Reseller:
    found = by_slug(slug)
    if found is None:
        raise ResellerError(N_("There is no reseller “%(slug)s”. `smsgw reseller list` shows them."), {"slug": slug[:60]})
    return found


def set_status(reseller: Reseller, suspended: bool, reason: str) -> Reseller:
    """Suspend (with the operator's written reason, 10 to 1000 characters) or resume a reseller.
    Suspending ends every console session of its people at once (each request reads the reseller's
    row and its session from PostgreSQL: every process sees it). Its workspaces keep running, with
    its brand: they are its customers' (README, "Suspending a reseller")."""
    reason = " ".join(str(reason or "").split())
    if suspended and not 10 <= len(reason) <= 1000:
        raise ResellerError(N_("Write why the reseller is suspended (10 to 1000 characters); its people see it."))
    with connection(), app_db.atomic():
        row = app_db.execute_sql(
            "UPDATE public.reseller SET status = %s, status_reason = %s, status_changed_at = now() WHERE id = %s "
            f"RETURNING {', '.join(COLUMNS)}",
            ("suspended" if suspended else "active", reason[:1000] if suspended else "", reseller.id)).fetchone()
        if suspended:
            app_db.execute_sql("UPDATE public.reseller_session SET revoked_at = now() WHERE revoked_at IS NULL "
                               "AND user_id IN (SELECT id FROM public.reseller_user WHERE reseller_id = %s)",
                               (reseller.id,))
    return Reseller(*row)


def save_billing_details(reseller: Reseller, form: dict) -> dict:
    """Its address, country and VAT id, checked as billing checks a workspace's
    (:func:`addons.billing.accounts.validate`); the errors by field (msgids), nothing stored if any."""
    from addons.billing import accounts

    values, errors = accounts.validate({k: form.get(k, "") for k in ("address", "country", "vat_id")}, ())
    if errors:
        return errors
    with connection():
        app_db.execute_sql("UPDATE public.reseller SET address = %s, country = %s, vat_id = %s WHERE id = %s",
                           (values["address"], values["country"], values["vat_id"], reseller.id))
    return {}


# -- the console's people --------------------------------------------------------------------------

def add_user(platform, reseller: Reseller, email: str, password: str, role: str, name: str = "") -> int:
    if role not in ROLES:
        raise ResellerError(N_("The role must be one of: %(roles)s."), {"roles": ", ".join(ROLES)})
    try:
        email = check_email(email)
        hashed = passwords.hash_password(password, platform.pepper, platform.bcrypt_cost)
    except (TenantError, passwords.PasswordPolicyError) as exc:
        raise passed_on(exc) from None
    with connection():
        with app_db.atomic():
            if app_db.execute_sql("SELECT 1 FROM public.reseller_user WHERE reseller_id = %s AND lower(email) = lower(%s)",
                                  (reseller.id, email)).fetchone():
                raise ResellerError(N_("%(email)s is already a member of this reseller's console."), {"email": email})
            return app_db.execute_sql(
                "INSERT INTO public.reseller_user (reseller_id, email, name, password_hash, role) "
                "VALUES (%s, %s, %s, %s, %s) RETURNING id",
                (reseller.id, email, (name or "").strip()[:200], hashed, role)).fetchone()[0]


def users(reseller: Reseller) -> list[dict]:
    with connection():
        rows = app_db.execute_sql("SELECT id, email, name, role, is_active, created_at FROM public.reseller_user "
                                  "WHERE reseller_id = %s ORDER BY id", (reseller.id,)).fetchall()
    return [dict(zip(("id", "email", "name", "role", "is_active", "created_at"), r)) for r in rows]


def check_password(reseller: Reseller, email: str, password: str, pepper: bytes, cost: int):
    """``(id, email, name, role)`` of the active member with this address and password, else ``None``
    (the same time spent either way: :func:`core.passwords.verify_password` hashes for nobody too)."""
    with connection():
        row = app_db.execute_sql(
            "SELECT id, email, name, role, password_hash FROM public.reseller_user "
            "WHERE reseller_id = %s AND lower(email) = lower(%s) AND is_active", (reseller.id, email or "")).fetchone()
    stored = row[4] if row else None
    return row[:4] if passwords.verify_password(password or "", stored, pepper, cost) and row else None


def create_session(user_id: int, ip: str, user_agent: str) -> str:
    token = secrets.token_urlsafe(32)
    with connection():
        app_db.execute_sql(
            "INSERT INTO public.reseller_session (token_hash, user_id, expires_at, ip, user_agent) "
            "VALUES (%s, %s, %s, %s, %s)",
            (tokenformat.digest(token), user_id, utcnow() + SESSION_TTL, ip[:64], (user_agent or "")[:300]))
    return token


def session_principal(token: str, reseller: Reseller) -> Principal | None:
    """Who a console session cookie speaks for, in this reseller's console only."""
    if not token or len(token) > 100:
        return None
    with connection():
        row = app_db.execute_sql("""
            SELECT u.id, u.name, u.email, u.role, s.id FROM public.reseller_session s
              JOIN public.reseller_user u ON u.id = s.user_id
             WHERE s.token_hash = %s AND s.revoked_at IS NULL AND s.expires_at > now() AND u.is_active
               AND u.reseller_id = %s
        """, (tokenformat.digest(token), reseller.id)).fetchone()
    if row is None:
        return None
    return Principal(kind="reseller", id=row[0], role=row[3], tenant=None, permissions=ROLE_PERMISSIONS[row[3]],
                     name=row[1], email=row[2], via="reseller_session", session_id=row[4])


def revoke_session(token: str) -> None:
    with connection():
        app_db.execute_sql("UPDATE public.reseller_session SET revoked_at = now() WHERE token_hash = %s",
                           (tokenformat.digest(token or ""),))


# -- the workspaces a reseller owns: the one scoping query -----------------------------------------

def workspaces(reseller_id: int, slug: str | None = None) -> list:
    """The workspaces of reseller ``reseller_id`` (:class:`core.tenancy.TenantInfo`), or the one
    called ``slug`` among them. THE place reseller scoping is enforced: nothing else in this addon
    turns a slug from a request into a workspace."""
    with connection():
        query = ("SELECT t.slug FROM public.tenant t JOIN public.reseller_tenant rt ON rt.tenant_id = t.id "
                 "WHERE rt.reseller_id = %s")
        params: list = [reseller_id]
        if slug is not None:
            query += " AND t.slug = %s"
            params.append(slug)
        slugs = [r[0] for r in app_db.execute_sql(query + " ORDER BY t.slug", params).fetchall()]
    return [info for info in (load_tenant(s) for s in slugs) if info is not None]


def workspace(reseller_id: int, slug: str):
    """One of the reseller's workspaces, or ``None`` (another's, or none at all: the same answer)."""
    found = workspaces(reseller_id, slug) if isinstance(slug, str) and SLUG_RE.match(slug) else []
    return found[0] if found else None


def create_workspace(platform, reseller: Reseller, slug: str, name: str, owner_email: str, owner_password: str,
                     **how):
    """A workspace for one of the reseller's customers, provisioned like any other
    (:meth:`core.tenancy.TenantService.create`, its own transaction and hooks), then recorded as the
    reseller's under a lock on the reseller's row that counts again: two created at once cannot
    both slip under the limit (the one over it is deleted again and refused). ``how``: the
    sign-up page's ``verified=False`` (and ``pending=True``), as the platform's sign-up passes them."""
    if not reseller.is_active:
        raise ResellerError(N_("This reseller account is suspended."))
    if _count(reseller.id) >= reseller.max_workspaces:
        raise ResellerError(N_("This reseller may have at most %(max)s workspaces."), {"max": reseller.max_workspaces})
    info = platform.tenants.create(slug, name, owner_email, owner_password, **how)  # how: verified, pending
    with connection():
        with app_db.atomic():
            app_db.execute_sql("SELECT 1 FROM public.reseller WHERE id = %s FOR UPDATE", (reseller.id,))
            over = _count(reseller.id) >= reseller.max_workspaces
            if not over:
                app_db.execute_sql("INSERT INTO public.reseller_tenant (tenant_id, reseller_id) VALUES (%s, %s)",
                                   (info.id, reseller.id))
    if over:
        platform.tenants.delete(info.slug)
        raise ResellerError(N_("This reseller may have at most %(max)s workspaces."), {"max": reseller.max_workspaces})
    platform.registry.hook.smsgw_reseller_workspace_created(reseller=reseller, tenant=info)
    return info


def _count(reseller_id: int) -> int:
    with connection():
        return app_db.execute_sql("SELECT count(*) FROM public.reseller_tenant WHERE reseller_id = %s",
                                  (reseller_id,)).fetchone()[0]


# -- support access: the Admins' rule (core.adminauth), for a reseller's people ---------------------

def open_grant(user_id: int, tenant_id: int, reason: str, ip: str) -> tuple[int, str]:
    try:
        reason = access_reason(reason)
    except GrantError as exc:
        raise passed_on(exc) from None
    with connection():
        grant = app_db.execute_sql(
            "INSERT INTO public.reseller_access_grant (user_id, tenant_id, reason, expires_at, ip) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id", (user_id, tenant_id, reason, utcnow() + GRANT_TTL, ip[:64]))
        return grant.fetchone()[0], reason


def active_grant(user_id: int, tenant_id: int):
    """``(id, reason, expires_at)`` of this person's open access to the workspace, or ``None``."""
    with connection():
        return app_db.execute_sql(
            "SELECT id, reason, expires_at FROM public.reseller_access_grant WHERE user_id = %s AND tenant_id = %s "
            "AND expires_at > now() ORDER BY created_at DESC LIMIT 1", (user_id, tenant_id)).fetchone()


# -- addons the operator makes available -----------------------------------------------------------

def available_addons(reseller: Reseller) -> list[str]:
    with connection():
        return [r[0] for r in app_db.execute_sql(
            "SELECT addon FROM public.reseller_addon WHERE reseller_id = %s ORDER BY addon", (reseller.id,)).fetchall()]


def set_available(platform, reseller: Reseller, addon: str, available: bool) -> None:
    if not isinstance(addon, str) or addon not in platform.registry.by_name:
        known = ", ".join(platform.registry.names()) or "none"
        raise ResellerError(N_("No addon called “%(addon)s” is installed (installed: %(known)s)."),
                            {"addon": str(addon)[:60], "known": known})
    with connection():
        if available:
            app_db.execute_sql("INSERT INTO public.reseller_addon (reseller_id, addon) VALUES (%s, %s) "
                               "ON CONFLICT DO NOTHING", (reseller.id, addon))
        else:
            app_db.execute_sql("DELETE FROM public.reseller_addon WHERE reseller_id = %s AND addon = %s",
                               (reseller.id, addon))


@dataclass(frozen=True)
class Outcome:
    """What enabling or disabling an addon did in one workspace: ``error`` is "" when it worked."""

    slug: str
    error: str = ""


def addon_request(reseller: Reseller, addon: str, slugs: list[str]) -> list:
    """The workspaces of a request to enable or disable ``addon`` in ``slugs``, all of them the
    reseller's and the addon available to it; :class:`NotYours` otherwise, before anything changed."""
    if addon not in available_addons(reseller):
        raise NotYours(N_("This addon is not available to you."))
    infos = [workspace(reseller.id, slug) for slug in dict.fromkeys(slugs)]
    if not infos or None in infos:
        raise NotYours(N_("There is no such workspace."))
    return infos


def set_addon(platform, reseller: Reseller, addon: str, slugs: list[str], enabled: bool, progress=None) -> list[Outcome]:
    """Enable (or disable) an available addon in some of the reseller's workspaces, one by one, the
    way ``smsgw addons enable`` does (:meth:`core.tenancy.TenantService.set_addon`: dependencies
    checked, the change announced to every process). A workspace that fails is reported with its
    error and the others go on; ``progress(index, total, outcome)`` hears each one."""
    infos = addon_request(reseller, addon, slugs)
    outcomes = []
    for index, info in enumerate(infos, 1):
        try:
            platform.tenants.set_addon(info.slug, addon, enabled)
            outcome = Outcome(info.slug)
        except TenantError as exc:
            outcome = Outcome(info.slug, str(exc))
        outcomes.append(outcome)
        if progress is not None:
            progress(index, len(infos), outcome)
    return outcomes
