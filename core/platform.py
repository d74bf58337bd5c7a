"""The composition root: settings + database + addons + migrations + services, built once.

CLI commands, the web process, the worker and the tests all start from a
:class:`Platform`, so they agree on what is installed and where data lives.
"""

from __future__ import annotations

import logging
from pathlib import Path

from . import db as dbmod
from . import dbsetup, passwords, permissions
from .addons import AddonRegistry
from .config import Settings
from .embedded_pg import EmbeddedPostgres
from .i18n import Catalogues
from .migrations import collect, migrate_public, migrate_tenants, public_pending, latest_versions
from .secretstore import SecretStore
from .tenancy import TenantCache, TenantService

log = logging.getLogger(__name__)

CORE_MIGRATIONS = Path(__file__).parent / "migrations"
EMBEDDED_DB_NAME = "smsgw"


class Platform:
    def __init__(self, settings: Settings, registry: AddonRegistry | None = None):
        self.settings = settings
        self.secrets = SecretStore(settings.data_dir)
        self.registry = registry or AddonRegistry()
        permissions.install(self.registry.access)
        self.embedded: EmbeddedPostgres | None = None
        self.pg_supervisor = None
        self.admin_url: str | None = None
        self.app_url: str | None = None
        self.tenant_cache = TenantCache(ttl=settings.tenant_cache_ttl)
        # A workspace's own host name (``sms.acme.com``) → its slug, through ``smsgw_tenant_for_host``;
        # cached like the tenants, forgotten in every process by hosts_changed().
        self.host_cache = TenantCache(ttl=settings.tenant_cache_ttl, loader=self._slug_for_custom_host)
        from .brand import BrandCache

        self.brand_cache = BrandCache(ttl=settings.tenant_cache_ttl)
        self.tenants = TenantService(self)
        self.bcrypt_cost = passwords.DEFAULT_COST
        sources = [("core", CORE_MIGRATIONS)] + [
            (name, path) for name, path in self.registry.folders("smsgw_migrations", "migrations")]
        found = collect(sources)
        self.public_migrations = found["public"]
        self.tenant_migrations = found["tenant"]
        roles = dbsetup.RoleNames(settings.role_prefix)
        self.roles = roles
        self.migration_context = {
            "app_role": roles.app, "maintenance_role": roles.maintenance, "role_prefix": roles.prefix,
            "tenants_role": roles.tenants,
        }
        from . import due

        due.configure(roles.prefix)
        self.registry.hook.smsgw_configure(platform=self)
        self._catalogues = None
        self._cipher = None
        self._keyring = None
        self._mailer = None
        self.huey = None
        self.queue = None
        from .throttle import LoginThrottle

        self.throttle = LoginThrottle()
        from .throttle import ThrottlePolicy

        # Password-reset mails: a few per account and hour from all sources together, so nobody can flood an inbox.
        self.reset_throttle = LoginThrottle(ThrottlePolicy(per_account=5, per_ip=50, base_delay=0.0, per_source=False))
        from .wakeups import WakeupHub

        self.wakeups = WakeupHub()
        # Bearer token → principal, briefly: saves a transaction per API call. Any credential
        # change in a tenant clears its entries here and, through NOTIFY, in every process.
        self.principal_cache: dict[tuple[str, str], tuple[float, object]] = {}
        self.listener = None
        self.redis_wakeups = None
        # The other database servers (SMSGW_DATABASES; core/placement.py): alias -> admin URL, and
        # alias -> the serving role's URL there.
        self.server_admin_urls: dict[str, str] = {}
        self.server_app_urls: dict[str, str] = {}
        self.tenant_cache.on_invalidate = dbmod.forget_placement

    @property
    def servers(self) -> dict[str, str]:
        """Every database server a workspace may live on: alias -> administrative URL."""
        return {dbmod.DEFAULT: self.admin_url, **self.server_admin_urls}

    # -- secrets ------------------------------------------------------------
    @property
    def pepper(self) -> bytes:
        return self.secrets.get("password-pepper", "SMSGW_PASSWORD_PEPPER").encode()

    @property
    def cookie_secret(self) -> str:
        return self.secrets.get("cookie-secret", "SMSGW_COOKIE_SECRET")

    @property
    def link_secret(self) -> str:
        return self.secrets.get("link-secret", "SMSGW_LINK_SECRET")

    def data_cipher(self):
        from .crypto import DataKeyStore

        if self._cipher is None:
            self._cipher = DataKeyStore(self.secrets).cipher()
        return self._cipher

    def reset_data_cipher(self) -> None:
        self._cipher = None

    @property
    def keyring(self):
        from .jwtkeys import KeyRing

        if self._keyring is None:
            self._keyring = KeyRing(self)
        return self._keyring

    @property
    def mailer(self):
        from .mailer import Mailer

        if self._mailer is None:
            mailer = Mailer.from_env(self.settings.data_dir, self.settings.base_domain)
            mailer.veto = self.mail_vetoes
            self._mailer = mailer
        return self._mailer

    def mail_vetoes(self, to: str, category: str) -> list[str]:
        """Why the addons will not have ``category`` mail sent to ``to`` (empty: send it)."""
        return [reason for reason in self.registry.hook.smsgw_mail_suppressed(to=to, category=category) if reason]

    @property
    def links(self):
        from .identity import LinkSigner

        return LinkSigner(self.link_secret)

    def language_for(self, own: str = "", tenant=None) -> str:
        """The language of what we write to a person: their own setting, else their workspace's
        default language, else the platform's (``SMSGW_DEFAULT_LANGUAGE``)."""
        return self.catalogues.resolve(own, getattr(tenant, "language", "") if tenant is not None else "",
                                       self.settings.default_language)

    def send_mail(self, to: str, compose, *, language: str = "", tenant=None, category: str = "service"):
        """Mail ``to`` in their language (:meth:`language_for` of ``language``, their own setting, and
        ``tenant``): ``compose(_, ngettext, fmt)`` gives ``(subject, body)`` written with that
        language's gettext and Babel formats (:class:`core.i18n.Formats`); the text part and the
        HTML part made from it are both in it. A mail for ``tenant`` comes from the name of its brand
        (:meth:`brand_for`)."""
        lang = self.language_for(language, tenant)
        _, ngettext = self.catalogues.gettext_for(lang)
        subject, body = compose(_, ngettext, self.catalogues.formats(lang))
        return self.mailer.send(to, subject, body, category=category, lang=lang,
                                direction=self.catalogues.direction(lang),
                                sender_name=self.brand_for(tenant).mail_sender_name)

    def brand_for(self, tenant=None):
        """The :class:`core.brand.Brand` of ``tenant``'s pages and mails (``None``: the platform's own)."""
        from .brand import brand_for

        return brand_for(self, tenant)

    def brand_changed(self, tenant_id: int | None = None) -> None:
        """What ``smsgw_brand`` answers for ``tenant_id`` (``None``: for every workspace) changed: every
        process forgets its cached brand (NOTIFY)."""
        from .brand import BRAND_CHANNEL
        from .db import app_db, connection

        self.brand_cache.forget(tenant_id)
        with connection():
            app_db.execute_sql("SELECT pg_notify(%s, %s)", (BRAND_CHANNEL, "" if tenant_id is None else str(tenant_id)))

    # -- hosts of their own -------------------------------------------------------
    def _slug_for_custom_host(self, host: str) -> str | None:
        return self.registry.hook.smsgw_tenant_for_host(host=host)

    def hosts_changed(self, host: str | None = None) -> None:
        """A workspace's own host name was added, proved or removed: no process may keep routing
        it by an old answer (``None``: forget every host)."""
        from .db import app_db, connection
        from .web.hosts import HOST_CHANNEL

        self.host_cache.invalidate(host)
        with connection():
            app_db.execute_sql("SELECT pg_notify(%s, %s)", (HOST_CHANNEL, host or ""))

    @property
    def catalogues(self) -> Catalogues:
        if self._catalogues is None:
            dirs = [self.settings.locale_dir] + [
                p for _, p in self.registry.folders("smsgw_translations", "locale")]
            self._catalogues = Catalogues(dirs, self.settings.default_language, self.settings.pseudo_locales)
        return self._catalogues

    # -- database -------------------------------------------------------------
    def start_database(self, progress=print) -> None:
        """Find the database: ``DATABASE_URL``, or start the embedded one. Bootstrap roles."""
        s = self.settings
        if s.database_url:
            self.admin_url = s.database_url
        elif s.app_database_url:
            self.admin_url = None  # operator runs migrations elsewhere
        else:
            self.embedded = EmbeddedPostgres(s.data_dir, fast=s.embedded_pg_fast)
            if not (self.embedded.pgdata / "PG_VERSION").exists():
                progress(f"Creating an embedded PostgreSQL in {self.embedded.pgdata} ...")
            server_url = self.embedded.attach()  # shared with the platform's other processes
            dbsetup.ensure_database(server_url, EMBEDDED_DB_NAME)
            self.admin_url = dbsetup.with_database(server_url, EMBEDDED_DB_NAME)
        app_password = self.secrets.get("db-app-password", "SMSGW_DB_APP_PASSWORD")
        if self.admin_url:
            dbsetup.bootstrap(self.admin_url, s.role_prefix, app_password)
        self.app_url = s.app_database_url or dbsetup.with_credentials(
            self.admin_url, self.roles.app, app_password)
        dbmod.configure(self.app_url, s.db_pool_size, s.db_schemas_per_connection)
        for alias, url in s.databases:
            # Another server for workspaces: bootstrapped like the default one (its own roles and
            # provisioning functions), with a pool of the serving role there.
            dbsetup.ensure_database(url, dbsetup.database_name(url))
            dbsetup.bootstrap(url, s.role_prefix, app_password)
            self.server_admin_urls[alias] = url
            self.server_app_urls[alias] = dbsetup.with_credentials(url, self.roles.app, app_password)
            dbmod.configure_server(alias, self.server_app_urls[alias], s.db_pool_size, s.db_schemas_per_connection)

    def migrate(self, tenants: bool = True, only: list[str] | None = None, progress=None, jobs=None):
        """Apply public migrations (needs the admin URL) then tenant migrations."""
        applied = []
        if self.admin_url:
            applied = migrate_public(self.admin_url, self.public_migrations, self.migration_context,
                                     progress=progress and (lambda i, n, label: progress("public", i, n, label)))
        for alias, url in self.server_admin_urls.items():  # every server has the public schema too
            migrate_public(url, self.public_migrations, self.migration_context,
                           progress=progress and (lambda i, n, label, a=alias: progress(f"public@{a}", i, n, label)))
        result = None
        if tenants:
            # Each server migrates the workspaces that live on it, from its own copy of their ledger.
            for alias, url in {dbmod.DEFAULT: self.app_url, **self.server_app_urls}.items():
                label = "tenants" if alias == dbmod.DEFAULT else f"tenants@{alias}"
                part = migrate_tenants(
                    url, self.tenant_migrations, self.migration_context,
                    jobs=jobs or self.settings.migrate_jobs, only=only, alias=alias,
                    progress=progress and (lambda i, n, slug, label=label: progress(label, i, n, slug)))
                result = part if result is None else result.merged(part)
        return applied, result

    def migration_status(self) -> dict:
        """Readiness: are public migrations applied and every tenant current? One query each."""
        import psycopg2

        conn = psycopg2.connect(self.app_url)
        try:
            pending_public = public_pending(conn, self.public_migrations)
            latest = latest_versions(self.tenant_migrations)
            with conn.cursor() as cur:
                # Workspaces on other servers (SMSGW_DATABASES) keep their ledger there.
                cur.execute("""
                    SELECT count(*) FROM public.tenant t
                     WHERE (SELECT count(*) FROM public.tenant_migration m WHERE m.tenant_id = t.id) < %s
                       AND t.database_alias = 'default'
                """, (len(self.tenant_migrations),))
                lagging = cur.fetchone()[0]
            return {"public_pending": [m.label for m in pending_public], "tenants_lagging": lagging,
                    "tenant_versions": latest}
        finally:
            conn.close()

    def setup_tasks(self):
        """Build the Huey instance and let each addon register its tasks on it."""
        from .tasks import TaskQueue, make_huey

        if self.queue is None:
            self.huey = make_huey(self.settings, self.app_url)
            self.queue = TaskQueue(self.huey, self)
            for addon in self.registry.names():
                self.registry.call_one(addon, "smsgw_tasks", queue=self.queue.for_addon(addon))
        return self.queue

    def start_runtime(self, loop) -> None:
        """Per web process: bind wake-ups to the IOLoop and listen for cross-process changes."""
        from .notify import listener_for

        self.setup_tasks()  # web processes enqueue (e.g. scheduled releases) even without a consumer
        from .tenancy import TENANT_CHANNEL
        from .wakeups import CHANNEL, RedisWakeups

        self.wakeups.bind(loop)
        self.listener = listener_for([self.app_url, *self.server_app_urls.values()])
        self.listener.subscribe(TENANT_CHANNEL, self._tenant_changed)
        from .web.hosts import HOST_CHANNEL

        self.listener.subscribe(HOST_CHANNEL, lambda host: self.host_cache.invalidate(host or None))
        from .brand import BRAND_CHANNEL

        self.listener.subscribe(BRAND_CHANNEL, lambda tenant_id: self.brand_cache.forget(
            int(tenant_id) if tenant_id and tenant_id.isdigit() else None))
        # A payload of None: the listener (re)connected and may have missed wake-ups meanwhile.
        self.listener.subscribe(CHANNEL, lambda key: self.wakeups.wake_threadsafe(key) if key
                                else self.wakeups.wake_all_threadsafe())
        self.listener.start()
        if self.settings.redis_url:
            self.redis_wakeups = RedisWakeups(self.settings.redis_url, self.wakeups,
                                              on_connect=self.wakeups.wake_all_threadsafe)
            self.redis_wakeups.start()

    def _tenant_changed(self, slug) -> None:
        self.tenant_cache.invalidate(slug or None)
        self.forget_principals(slug or None)

    def forget_principals(self, slug: str | None = None) -> None:
        if slug is None:
            self.principal_cache.clear()
        else:
            for key in [k for k in list(self.principal_cache) if k[0] == slug]:
                self.principal_cache.pop(key, None)

    def credentials_changed(self, slug: str) -> None:
        """A token was revoked or a device disabled/rotated: no process may keep it cached."""
        from .db import app_db, connection
        from .tenancy import TENANT_CHANNEL

        self.forget_principals(slug)
        with connection():
            app_db.execute_sql("SELECT pg_notify(%s, %s)", (TENANT_CHANNEL, slug))

    def stop_runtime(self) -> None:
        if self.listener:
            self.listener.stop()
            self.listener = None
        if self.redis_wakeups:
            self.redis_wakeups.stop()
            self.redis_wakeups = None

    def wake_on_commit(self, db, key: str) -> None:
        """Inside a transaction: wake ``key`` in every process once the change is committed.

        With PostgreSQL wake-ups this is a ``NOTIFY`` (delivered at commit, to
        this process too). With Redis, :meth:`wake_now` after the commit does it.
        """
        from .wakeups import notify_sql

        if not (self.redis_wakeups and self.redis_wakeups.healthy):  # Redis down: NOTIFY carries it
            notify_sql(db, key)

    def wake_now(self, *keys: str) -> None:
        """After a commit: wake waiters on ``keys`` in this process at once (and via Redis elsewhere).

        Never raises: the work is committed, and its answer must be the success answer. A
        wake-up Redis could not take goes through PostgreSQL ``NOTIFY`` from the executor; if
        that fails too, phones find the work at their next poll or the sweep."""
        for key in keys:
            self.wakeups.wake_threadsafe(key)
        redis = self.redis_wakeups
        if redis is not None and keys:
            missed = [key for key in keys if not redis.publish(key)]
            if missed:
                from .db import executor

                try:
                    executor().submit(self._notify_now, missed)
                except RuntimeError:  # the executor is shutting down: the sweep will do
                    pass

    def _notify_now(self, keys) -> None:
        from .db import connection
        from .wakeups import notify_sql

        try:
            with connection():
                for key in keys:
                    notify_sql(dbmod.app_db, key)
        except Exception as exc:  # best effort: polls and the sweep still find the work
            log.warning("could not send wake-ups through NOTIFY either (%s)", exc.__class__.__name__)

    def wakeup_status(self) -> dict:
        """Readiness: which cross-process wake-up channels work now."""
        status = {"notify": "ok" if self.listener is None or self.listener.connected.is_set() else "down"}
        if self.redis_wakeups is not None:
            status["redis"] = "ok" if self.redis_wakeups.healthy else "down"
        return status

    def supervise_database(self) -> None:
        """In a long-running process on the embedded cluster: restart it if it dies."""
        if self.embedded is not None and self.pg_supervisor is None:
            from .embedded_pg import Supervisor

            self.pg_supervisor = Supervisor(self.embedded).start()

    def close(self) -> None:
        if self.pg_supervisor is not None:
            self.pg_supervisor.stop()
            self.pg_supervisor = None
        if self.app_url:
            dbmod.app_db.close_all()
        dbmod.close_servers()
        if self.embedded:
            self.embedded.detach()  # stops the cluster only if no other process uses it
