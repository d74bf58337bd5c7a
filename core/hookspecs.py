"""The one documented contract between the kernel and addons.

Every hook name starts with ``smsgw_``. An addon implements any subset with
``@core.hookimpl``; an implementation may accept fewer parameters than the
spec names. Parameters are only ever added, never changed.

Hooks that describe an addon's *parts* (migrations, routes, templates, ...)
are called once per addon by the loader, which therefore knows which addon
each part belongs to and can gate it per tenant.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("smsgw")


# ---------------------------------------------------------------------------
# Parts: models and migrations
# ---------------------------------------------------------------------------

@hookspec
def smsgw_migrations():
    """Return the directory holding this addon's migrations.

    Optional: without an implementation the addon's ``migrations/`` folder is used.

    The directory has ``public/`` and ``tenant/`` subdirectories of files
    named ``NNNN_description.sql`` (or ``.py`` with ``migrate(cursor, ctx)``).
    Tenant migrations run as the tenant's role with ``search_path`` set to its
    schema; public ones run as the administrative role.
    """


@hookspec
def smsgw_models():
    """Return the peewee model classes this addon defines.

    Used to check that migrations and models agree and by tooling such as
    privacy exports. Tenant models have no ``schema``; catalogue models say
    ``schema = "public"``.
    """


# ---------------------------------------------------------------------------
# Parts: web
# ---------------------------------------------------------------------------

@hookspec
def smsgw_routes(settings):
    """Return a list of ``(pattern, handler_class)`` or ``(pattern, handler_class, kwargs)``.

    Handlers derive from :class:`core.web.base.BaseHandler`; their ``scope``
    attribute says where they answer (``"tenant"``, ``"platform"`` or
    ``"any"``). Tenant routes answer only for tenants that enabled the addon.

    :param settings: the :class:`core.config.Settings` in force.
    """


@hookspec
def smsgw_template_dirs():
    """Return a list of directories with this addon's Jinja2 templates.

    Optional: without an implementation the addon's ``templates/`` folder is used.

    Lookup order is theme → addons → core; ``core/`` prefixed names always
    reach the core templates so a theme can extend the original.
    """


@hookspec
def smsgw_static_dirs():
    """Return the directory of this addon's static files, served at ``/static/addons/<name>/``.

    Optional: without an implementation the addon's ``static/`` folder is used.
    """


@hookspec
def smsgw_menu_items(tenant, user):
    """Return dashboard menu entries as a list of :class:`core.web.menu.MenuItem`.

    Called only for tenants that enabled the addon.

    :param tenant: the current :class:`core.catalogue.Tenant`.
    :param user: the signed-in user (or ``None``).
    """


@hookspec
def smsgw_template_context(handler):
    """Return a dict of extra variables for every template rendered by ``handler``."""


@hookspec
def smsgw_openapi():
    """Return this addon's part of the published API contract (OpenAPI 3.1), or ``None``.

    A dict with any of these keys, each merged into the document built by
    :func:`core.openapi.build_document` (served at ``/api/openapi.json`` and
    rendered at ``/api/docs``):

    * ``"paths"``: ``{"/api/v1/things/{id}": {"get": <Operation>, ...}}``, one
      entry per route the addon registers under ``/api/``, ``/3rdparty/``,
      ``/.well-known/`` or ``/health`` (tornado groups become ``{name}``);
      the test suite fails for a route that is not described here;
    * ``"components"``: ``{"schemas": {...}}`` (also ``securitySchemes``,
      ``headers``, ...); names are global, so prefix them when in doubt;
    * ``"tags"``: ``[{"name": ..., "description": ...}]``;
    * ``"webhooks"``: OpenAPI 3.1 top-level webhooks (requests *we* send).

    Describe errors with :func:`core.openapi.responses`, which answers in
    ``application/problem+json`` with the codes the handlers really raise.
    Two addons may not describe the same operation or the same component
    differently: building the document fails, naming both.
    """


@hookspec
def smsgw_settings_schema():
    """Return the tenant settings this addon adds, as a list of :class:`core.settings_schema.SettingField`."""


@hookspec
def smsgw_translations():
    """Return a ``locale/`` directory holding ``<lang>/LC_MESSAGES/*.po`` catalogues for this addon.

    Optional: without an implementation the addon's ``locale/`` folder is used.
    """


# ---------------------------------------------------------------------------
# Parts: tasks
# ---------------------------------------------------------------------------

@hookspec
def smsgw_tasks(queue):
    """Register this addon's background tasks on ``queue`` (a :class:`core.tasks.TaskQueue`).

    * ``queue.tenant_task(fn)``: work in one tenant, triggered now or at a time (it carries the
      tenant explicitly and refuses to run without it).
    * ``queue.due_job(name, run, next_due)``: per-workspace work with a time (a scheduled send,
      a retry, a lease that lapses, a retention date, a billing period's end). ``run(tenant)``
      runs for a workspace when its due time for ``name`` comes, inside the workspace's
      transaction (it may return a callable to call after the commit); ``next_due(tenant)``
      returns the earliest time of the workspace's work still ahead, or ``None``. A tenant
      transaction that creates timed work calls :func:`core.due.arm` ``(name, when)`` (the
      earlier time wins; :func:`core.due.disarm` withdraws it); the time is recorded in
      ``public.due_work`` with the work's commit. Idle workspaces cost nothing: no task, no
      transaction. Two workers never run one workspace's job at once; a run that dies leaves
      the entry, so the work runs again: make ``run`` idempotent. An hourly repair pass asks
      ``next_due`` of every workspace and arms what is missing, so work whose time may be late
      by an hour (purges) need not arm at all.
    * ``queue.periodic(schedule, fn, per_tenant=False)``: platform-wide work on a ``crontab``.
      There is no per-workspace fan-out any more (``per_tenant=True``, the old default, is
      refused at start-up): use a due job.

    Due jobs and tenant tasks declared with the default addon run only for workspaces that
    enabled it.
    """


# ---------------------------------------------------------------------------
# Identity and audit
# ---------------------------------------------------------------------------

@hookspec(firstresult=True)
def smsgw_principal_from_token(token, tenant):
    """Turn a bearer token the kernel does not know (e.g. a device token) into a principal.

    Stops at first non-None result. Called inside the tenant's transaction.

    :param token: the raw bearer token (its checksum already verified when it is prefixed).
    :param tenant: the :class:`core.tenancy.TenantInfo` the token names.
    :return: a :class:`core.permissions.Principal` or ``None``.
    """


@hookspec
def smsgw_encrypted_fields():
    """Return the columns this addon stores encrypted with :meth:`Platform.data_cipher`.

    A list of ``(scope, table, key_column, value_column)`` with scope
    ``"public"`` or ``"tenant"`` (tenant tables unqualified). ``smsgw keys
    rotate-data-key`` re-encrypts them all under a new key.
    """


@hookspec
def smsgw_admin_sections():
    """Return extra read-only views of a tenant's data for the Admin console.

    A dict ``{name: (label, function, in_tenant)}``: ``function(tenant)``
    returns a list of dicts (one table row each); with ``in_tenant`` it runs
    inside the tenant's transaction. Views are shown only under an access
    grant with a written reason, and each view is recorded in the audit trail.
    """


@hookspec
def smsgw_audit_event(event):
    """Record a security or access event (:class:`core.events.AuditEvent`).

    Called outside tenant transactions. Implementations must not swallow
    errors: an access that cannot be recorded must fail.
    """


# ---------------------------------------------------------------------------
# Lifecycle events
# ---------------------------------------------------------------------------

@hookspec
def smsgw_tenant_created(tenant):
    """Called after a tenant was created and migrated, inside no transaction.

    :param tenant: the new :class:`core.catalogue.Tenant`.
    """


@hookspec
def smsgw_tenant_deleted(tenant):
    """Called after a tenant's schema and role were dropped.

    :param tenant: the :class:`core.catalogue.Tenant` as it was before deletion.
    """


@hookspec
def smsgw_configure(platform):
    """Called once when a :class:`core.platform.Platform` is built (web, worker, CLI, tests).

    Addons that need the platform later (to emit events, wake phones, enqueue
    tasks) keep it here. Do no I/O: the database may not be reachable yet.
    """


@hookspec
def smsgw_worker_standin(tenant, since, until):
    """The worker is late (no heartbeat for a few seconds): do, for ``tenant``, the part of its
    time-driven work that must not wait for it, for what came due in ``(since, until]``
    (datetimes), e.g. wake phones when scheduled messages become due.

    Called inside the tenant's transaction, about once a second, by one web process at a time
    (:mod:`core.worker_watch`); keep it cheap and idempotent. Return the wake-up keys to send
    after the commit (or None).
    """


@hookspec
def smsgw_startup(app):
    """Called once when a web process has built its application, before it serves.

    :param app: the :class:`core.web.app.Application`.
    """


@hookspec
def smsgw_shutdown(app):
    """Called once when a web process stops serving, before the database closes."""
