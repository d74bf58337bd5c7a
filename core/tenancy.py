"""Tenants: slug rules, provisioning (role + schema + migrations), lifecycle, and the host cache.

Provisioning runs on the *serving* role: it calls the SECURITY DEFINER function
``<prefix>_create_tenant_space`` (see :mod:`core.dbsetup`) that creates the
tenant's role and schema, then becomes that role to run the tenant migrations.
Everything, including the catalogue row and the owner account, happens in one
transaction: a tenant exists completely or not at all.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from dataclasses import dataclass, field

from peewee import fn

from . import passwords
from .catalogue import ReservedSlug, Tenant, TenantAddon
from .clock import utcnow
from .db import TenantRef, app_db, connection, enter_tenant, routed
from .dbsetup import RoleNames
from .migrations import apply_tenant_in_transaction
from .i18n import N_
from .web.problem import Refusal

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$")
RESERVED_SLUGS = frozenset({
    "www", "admin", "api", "static", "app", "mail", "smtp", "imap", "pop", "ftp", "ns1", "ns2",
    "dashboard", "status", "help", "support", "docs", "blog", "billing", "auth", "login", "signup",
    "register", "account", "accounts", "root", "system", "health", "assets", "cdn", "media", "dev",
    "test", "staging", "public", "internal", "webhook", "webhooks", "device", "devices", "3rdparty",
    "partners",  # hosts that addons serve with handlers of scope "host" (core.web.app.host_rules)
})
TENANT_CHANNEL = "smsgw_tenant_changed"

log = logging.getLogger(__name__)


class TenantError(Refusal):
    """A tenant operation was refused; the message is written for the person who asked."""


def validate_slug(slug: str) -> str:
    if not isinstance(slug, str) or not slug:
        raise TenantError(N_("Choose a subdomain: 3 to 40 lowercase letters, digits or hyphens."))
    if len(slug) < 3 or len(slug) > 40:
        raise TenantError(N_("The subdomain “%(slug)s” must be 3 to 40 characters long."), {"slug": slug[:60]})
    if not SLUG_RE.match(slug):
        raise TenantError(N_("The subdomain “%(slug)s” may use only lowercase letters a-z, digits and hyphens, "
                             "and must start and end with a letter or digit."), {"slug": slug})
    if "--" in slug:
        raise TenantError(N_("The subdomain “%(slug)s” may not contain two hyphens in a row."), {"slug": slug})
    if slug in RESERVED_SLUGS:
        raise TenantError(N_("The subdomain “%(slug)s” is reserved; please choose another."), {"slug": slug})
    return slug


@dataclass(frozen=True)
class TenantInfo:
    """An immutable snapshot of a tenant, safe to share between threads and requests."""

    id: int
    slug: str
    name: str
    status: str
    plan: str
    schema_name: str
    role_name: str
    theme: str | None
    default_region: str
    enabled_addons: frozenset = field(default_factory=frozenset)
    # False until the owner of a self-service sign-up confirms their address: such a workspace may
    # not use the permissions registered verified_only (core.permissions; checked in BaseHandler.check_permission).
    verified: bool = True
    # Sending paused for the whole workspace: the reason, in words for people ("" while it sends). Set
    # by its Customer (``sending_paused_at``) or implied by a scheduled deletion; whoever sends or
    # hands messages to phones refuses while it is set (read from this cached snapshot: no query).
    sending_paused: str = ""
    deletion_scheduled_at: dt.datetime | None = None
    # The workspace's default language (its pages, mails to its members); "" for the platform's.
    language: str = ""
    # The PostgreSQL server its schema lives on: "default" (the catalogue's) or an alias of
    # SMSGW_DATABASES (core/placement.py).
    database_alias: str = "default"

    @property
    def ref(self) -> TenantRef:
        return TenantRef(self.id, self.slug, self.schema_name, self.role_name)

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def is_pending(self) -> bool:
        return self.status == "pending"

    @classmethod
    def from_model(cls, t: Tenant, enabled) -> "TenantInfo":
        return cls(t.id, t.slug, t.name, t.status, t.plan, t.schema_name, t.role_name, t.theme,
                   t.default_region, frozenset(enabled), t.verified_at is not None,
                   sending_paused_reason(t), t.deletion_scheduled_at, t.language, t.database_alias)


def sending_paused_reason(t: Tenant) -> str:
    """Why a workspace may not send now ("" when it may): its deletion is scheduled, or its Customer paused it."""
    if t.deletion_scheduled_at is not None:
        return (f"the workspace is scheduled for deletion on {t.deletion_scheduled_at:%Y-%m-%d}; its owner can "
                "cancel the deletion on the Privacy page until then")
    if t.sending_paused_at is not None:
        reason = (t.sending_paused_reason or "").strip()
        return "its owner paused sending" + (f" ({reason})" if reason else "") + \
            "; the owner can resume it on the Privacy page"
    return ""


def load_tenant(slug: str) -> TenantInfo | None:
    """Catalogue lookup of one tenant and its enabled addons (blocking; run off the IOLoop). Always
    on the catalogue's server, also from a thread routed to another one (core/placement.py)."""
    with routed(None), connection():
        t = Tenant.get_or_none(Tenant.slug == slug)
        if t is None:
            return None
        enabled = [a.addon for a in TenantAddon.select(TenantAddon.addon)
                   .where((TenantAddon.tenant == t.id) & (TenantAddon.enabled == True))]  # noqa: E712
        return TenantInfo.from_model(t, enabled)


class TenantCache:
    """Host → tenant lookups, cached with a TTL and invalidated on change.

    Changes in this process invalidate directly; other processes learn through
    ``NOTIFY smsgw_tenant_changed`` (see :mod:`core.notify`). The TTL is a
    backstop should a notification be missed. Unknown slugs are cached too
    (briefly), so a flood of random subdomains cannot hammer the catalogue.
    """

    def __init__(self, ttl: float = 60.0, negative_ttl: float = 5.0, loader=load_tenant):
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.loader = loader
        self._entries: dict[str, tuple[float, TenantInfo | None]] = {}
        self._lock = threading.Lock()

    def peek(self, slug: str):
        """``(hit, value)`` without touching the database."""
        entry = self._entries.get(slug)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def get(self, slug: str) -> TenantInfo | None:
        hit, value = self.peek(slug)
        if hit:
            return value
        value = self.loader(slug)
        ttl = self.ttl if value is not None else self.negative_ttl
        with self._lock:
            if len(self._entries) > 100_000:
                self._entries.clear()
            self._entries[slug] = (time.monotonic() + ttl, value)
        return value

    on_invalidate = None  # called with the slug (None: all) after each invalidation

    def invalidate(self, slug: str | None = None) -> None:
        with self._lock:
            if slug is None:
                self._entries.clear()
            else:
                self._entries.pop(slug, None)
        if self.on_invalidate is not None:
            self.on_invalidate(slug)


def _notify_change(slug: str) -> None:
    app_db.execute_sql("SELECT pg_notify(%s, %s)", (TENANT_CHANNEL, slug))


def check_email(email: str) -> str:
    """``email`` stripped, or :class:`TenantError` when it does not look like an address."""
    email = (email or "").strip()
    if not re.match(r"^[^@\s]{1,64}@[^@\s]{1,189}\.[^@\s]{2,}$", email):
        raise TenantError(N_("“%(email)s” does not look like an email address."), {"email": email[:80]})
    return email


def _slug_unavailable(slug: str) -> TenantError | None:
    if Tenant.select().where(Tenant.slug == slug).exists():
        return TenantError(N_("The subdomain “%(slug)s” is already taken; please choose another."), {"slug": slug})
    if ReservedSlug.select().where((ReservedSlug.slug == slug) & (ReservedSlug.reserved_until > utcnow())).exists():
        return TenantError(N_("The subdomain “%(slug)s” belonged to a workspace deleted recently and cannot be "
                              "taken yet; please choose another."), {"slug": slug})
    return None


class TenantService:
    """Creates, suspends, resumes and deletes tenants; used by the CLI, sign-up and admin."""

    def __init__(self, platform):
        self.platform = platform
        self.roles = RoleNames(platform.settings.role_prefix)

    def create(self, slug: str, name: str, owner_email: str, owner_password: str,
               plan: str = "free", default_region: str = "US", *, verified: bool = True,
               pending: bool = False) -> TenantInfo:
        """Provision a tenant. The operator's and the CLI's tenants are ``verified``; self-service
        sign-ups pass ``verified=False`` (and ``pending=True`` when an Admin must approve them)."""
        validate_slug(slug)
        name = (name or "").strip()
        if not name or len(name) > 200:
            raise TenantError(N_("Give the company a name of 1 to 200 characters."))
        owner_email = check_email(owner_email)
        try:
            password_hash = passwords.hash_password(owner_password, self.platform.pepper,
                                                    self.platform.bcrypt_cost)
        except passwords.PasswordPolicyError as exc:
            raise TenantError(exc.msgid, exc.msg_args) from None
        migrations = self.platform.tenant_migrations
        addons = self.platform.registry.addons
        with connection():
            with app_db.atomic():
                taken = _slug_unavailable(slug)
                if taken:
                    raise taken
                from . import placement

                settings = self.platform.settings
                alias = placement.choose(settings, placement.load(app_db), default_region) if settings.databases \
                    else "default"
                t = Tenant.create(
                    slug=slug, name=name, plan=plan, default_region=default_region,
                    schema_name=self.roles.tenant_schema(slug), role_name=self.roles.tenant_role(slug),
                    status="pending" if pending else "active", verified_at=utcnow() if verified else None,
                    database_alias=alias)
                enabled = [{"tenant": t.id, "addon": a.name, "enabled": a.default_enabled} for a in addons]
                if enabled:
                    TenantAddon.insert_many(enabled).execute()
                if alias == "default":
                    self._provision(t, migrations, owner_email, password_hash)
                else:
                    # Another server: its own copy of the catalogue rows, role, schema and owner, in a
                    # transaction there that commits just before this one (docs/scaling.md).
                    with routed(alias), connection(), app_db.atomic():
                        Tenant.insert(**t.__data__).execute()
                        if enabled:
                            TenantAddon.insert_many(enabled).execute()
                        self._provision(t, migrations, owner_email, password_hash)
                _notify_change(slug)
        info = load_tenant(slug)
        self.platform.tenant_cache.invalidate(slug)
        self.platform.registry.hook.smsgw_tenant_created(tenant=info)
        return info

    def _provision(self, t: Tenant, migrations, owner_email: str, password_hash: str) -> None:
        """Inside a transaction on the workspace's server: its role and schema, migrations, owner."""
        cur = app_db.cursor()
        cur.execute(f"SELECT public.{self.roles.prefix}_create_tenant_space(%s)", (t.slug,))
        apply_tenant_in_transaction(cur, t.ref, migrations, self.platform.migration_context)
        enter_tenant(app_db, t.ref)
        from .users import ROLE_CUSTOMER, User
        User.create(email=owner_email, name="", password_hash=password_hash, role=ROLE_CUSTOMER)
        app_db.execute_sql("RESET ROLE")
        app_db.execute_sql("SET LOCAL search_path TO ''")

    def slug_unavailable(self, slug: str) -> TenantError | None:
        """Why ``slug`` cannot be taken now (taken, or reserved after a deletion), or ``None``: sign-up
        asks before creating, to show this with its other errors; :meth:`create` checks it again."""
        with connection():
            return _slug_unavailable(slug)

    def get(self, slug: str) -> TenantInfo:
        info = load_tenant(slug)
        if info is None:
            raise TenantError(N_("There is no workspace “%(slug)s”. `smsgw tenant list` shows them."), {"slug": slug})
        return info

    def list(self) -> list[TenantInfo]:
        with connection():
            tenants = list(Tenant.select().order_by(Tenant.slug))
            enabled: dict[int, list[str]] = {}
            for row in TenantAddon.select().where(TenantAddon.enabled == True):  # noqa: E712
                enabled.setdefault(row.tenant_id, []).append(row.addon)
        return [TenantInfo.from_model(t, enabled.get(t.id, [])) for t in tenants]

    def _set_status(self, slug: str, status: str) -> TenantInfo:
        self.get(slug)
        with connection():
            with app_db.atomic():
                Tenant.update(status=status, updated_at=utcnow(),
                              suspended_at=utcnow() if status == "suspended" else None
                              ).where(Tenant.slug == slug).execute()
                _notify_change(slug)
        self.platform.tenant_cache.invalidate(slug)
        return self.get(slug)

    def suspend(self, slug: str) -> TenantInfo:
        return self._set_status(slug, "suspended")

    def resume(self, slug: str) -> TenantInfo:
        return self._set_status(slug, "active")

    def approve(self, slug: str) -> TenantInfo:
        """An Admin accepts a sign-up that waited for approval (``SMSGW_SIGNUP=approval``)."""
        with connection():
            with app_db.atomic():
                n = (Tenant.update(status="active", approved_at=utcnow(), updated_at=utcnow())
                     .where((Tenant.slug == slug) & (Tenant.status == "pending")).execute())
                if n == 0:
                    self.get(slug)
                    raise TenantError(N_("The workspace “%(slug)s” is not waiting for approval."), {"slug": slug})
                _notify_change(slug)
        self.platform.tenant_cache.invalidate(slug)
        return self.get(slug)

    def pause_sending(self, slug: str, reason: str | None) -> TenantInfo:
        """Pause the workspace's sending with ``reason`` (its Customer's words), or resume it (``None``)."""
        self._update(slug, sending_paused_at=utcnow() if reason is not None else None,
                     sending_paused_reason=(reason or "").strip()[:500])
        return self.get(slug)

    def rename(self, slug: str, name: str) -> TenantInfo:
        """Correct the company's name (its Customer, on the Privacy page)."""
        name = (name or "").strip()
        if not name or len(name) > 200:
            raise TenantError(N_("Give the company a name of 1 to 200 characters."))
        self._update(slug, name=name)
        return self.get(slug)

    def set_default_region(self, slug: str, region: str) -> TenantInfo:
        """The workspace's default country: numbers without ``+`` are read in it (its Customer, on the
        Workspace page)."""
        from .regions import valid_region

        if not valid_region(region):
            raise TenantError(N_("“%(region)s” is not a country we can read phone numbers in; choose one from the list."),
                              {"region": region[:8]})
        self._update(slug, default_region=region)
        return self.get(slug)

    def schedule_deletion(self, slug: str, at: dt.datetime | None) -> TenantInfo:
        """Mark the workspace for deletion at ``at`` (its sending pauses meanwhile), or cancel that (``None``)."""
        self._update(slug, deletion_scheduled_at=at)
        return self.get(slug)

    def _update(self, slug: str, **fields) -> None:
        self.get(slug)
        with connection():
            with app_db.atomic():
                Tenant.update(updated_at=utcnow(), **fields).where(Tenant.slug == slug).execute()
                _notify_change(slug)
        self.platform.tenant_cache.invalidate(slug)

    def set_language(self, slug: str, language: str) -> TenantInfo:
        """The workspace's default language (``""``: the platform's), for its pages and its members' mails."""
        self._update(slug, language=language)
        return self.get(slug)

    def reserve_slug(self, slug: str, until: dt.datetime, reason: str = "") -> None:
        """No sign-up may take ``slug`` before ``until``."""
        with connection():
            (ReservedSlug.insert(slug=slug, reserved_until=until, reason=reason)
             .on_conflict(conflict_target=[ReservedSlug.slug],
                          update={ReservedSlug.reserved_until: until, ReservedSlug.reason: reason}).execute())

    def mark_verified(self, slug: str) -> bool:
        """The owner confirmed their address: lift the unverified workspace's limits. True if it changed."""
        with connection():
            with app_db.atomic():
                n = (Tenant.update(verified_at=utcnow(), updated_at=utcnow())
                     .where((Tenant.slug == slug) & Tenant.verified_at.is_null()).execute())
                if n:
                    _notify_change(slug)
        if n:
            self.platform.tenant_cache.invalidate(slug)
        return bool(n)

    def delete(self, slug: str, *, unverified_before: dt.datetime | None = None) -> TenantInfo | None:
        """Delete a tenant, its role and schema. With ``unverified_before``, only if it is still
        unverified and was created (or approved) before then; ``None`` if that no longer holds."""
        info = self.get(slug)
        with connection():
            with app_db.atomic():
                query = Tenant.delete().where(Tenant.slug == slug)
                if unverified_before is not None:
                    # Checked in the deleting statement itself: an owner who confirms meanwhile keeps it.
                    query = query.where(Tenant.verified_at.is_null()
                                        & (fn.COALESCE(Tenant.approved_at, Tenant.created_at) < unverified_before))
                if query.execute() == 0:
                    return None
                if info.database_alias != "default":  # its server's copy of the rows, role and schema
                    with routed(info.database_alias), connection(), app_db.atomic():
                        Tenant.delete().where(Tenant.id == info.id).execute()
                        app_db.execute_sql(f"SELECT public.{self.roles.prefix}_drop_tenant_space(%s)", (slug,))
                app_db.execute_sql(f"SELECT public.{self.roles.prefix}_drop_tenant_space(%s)", (slug,))
                _notify_change(slug)
        self.platform.tenant_cache.invalidate(slug)
        self.platform.registry.hook.smsgw_tenant_deleted(tenant=info)
        return info

    def remove_unverified(self, older_than: dt.timedelta | None = None) -> list[TenantInfo]:
        """Delete self-service workspaces whose owner never confirmed their address in time
        (``SMSGW_UNVERIFIED_TTL_DAYS``, counted from sign-up or approval), each recorded in the audit trail."""
        from .events import AuditEvent, emit

        older_than = older_than or dt.timedelta(days=self.platform.settings.unverified_ttl_days)
        cutoff = utcnow() - older_than
        with connection():
            slugs = [t.slug for t in Tenant.select(Tenant.slug).where(
                Tenant.verified_at.is_null() & (fn.COALESCE(Tenant.approved_at, Tenant.created_at) < cutoff))]
        removed = []
        for slug in slugs:
            try:
                info = self.delete(slug, unverified_before=cutoff)
            except TenantError:
                continue  # deleted meanwhile
            if info is None:
                continue
            removed.append(info)
            log.info("removed workspace %s: its owner did not confirm their address within %s", slug, older_than)
            emit(self.platform, AuditEvent(
                action="tenant.removed_unverified", tenant_id=info.id, tenant_slug=info.slug, actor="system",
                target=f"tenant:{info.slug}",
                details={"unconfirmed_for_days": older_than.days, "status": info.status}))
        return removed

    def set_addon(self, slug: str, addon: str, enabled: bool) -> TenantInfo:
        info = self.get(slug)
        if addon not in self.platform.registry.by_name:
            known = ", ".join(self.platform.registry.names()) or "none"
            raise TenantError(N_("No addon called “%(addon)s” is installed (installed: %(known)s)."),
                              {"addon": addon, "known": known})
        if enabled:
            missing = [d for d in self.platform.registry.by_name[addon].depends
                       if d not in info.enabled_addons]
            if missing:
                raise TenantError(N_("Enable %(missing)s first: %(addon)s depends on it."),
                                  {"missing": ", ".join(missing), "addon": addon})
        else:
            dependants = [a.name for a in self.platform.registry.addons
                          if addon in a.depends and a.name in info.enabled_addons]
            if dependants:
                raise TenantError(N_("Disable %(dependants)s first: it depends on %(addon)s."),
                                  {"dependants": ", ".join(dependants), "addon": addon})
        with connection():
            with app_db.atomic():
                (TenantAddon.insert(tenant=info.id, addon=addon, enabled=enabled, updated_at=utcnow())
                 .on_conflict(conflict_target=[TenantAddon.tenant, TenantAddon.addon],
                              update={TenantAddon.enabled: enabled, TenantAddon.updated_at: utcnow()})
                 .execute())
                _notify_change(slug)
        self.platform.tenant_cache.invalidate(slug)
        return self.get(slug)

    def count(self) -> int:
        with connection():
            return Tenant.select(fn.count(Tenant.id)).scalar()
