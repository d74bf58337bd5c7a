"""The one documented contract between the kernel and addons.

Every hook name starts with ``smsgw_``. An addon implements any subset with
``@core.hookimpl``; an implementation may accept fewer parameters than the
spec names. Parameters are only ever added, never changed.

Hooks that describe an addon's *parts* (migrations, routes, templates, ...)
are called once per addon by the loader, which therefore knows which addon
each part belongs to and can gate it per tenant.
"""

from __future__ import annotations

from collections.abc import Callable

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

    Use ``queue.tenant_task(fn)`` for work in one tenant (it carries the tenant
    explicitly and refuses to run without it) and ``queue.periodic(...)`` for
    scheduled work, which fans out per tenant that enabled the addon.
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


# ---------------------------------------------------------------------------
# Registrations: what an addon adds to the kernel's registries
# ---------------------------------------------------------------------------
# Each is called once per addon, in load order (dependencies first), after the kernel registered
# its own, when the addons are loaded (every process, before anything is served). ``register``
# knows which addon is calling; the kernel validates every call and refuses to start, naming the
# addon, on a malformed name, missing documentation, an unknown role or option, or a clash (a name
# another addon, or the kernel, registered differently; registering the very same thing twice is
# allowed). The return value is ignored.

@hookspec
def smsgw_permissions(register: Callable[..., None]) -> None:
    """Register the permissions this addon's handlers require (:mod:`core.permissions`).

    ``register(name, label, roles=(), *, scope=False, default_scope=False, verified_only=False)``:

    * ``name``: ``"area:action"`` in lower case, e.g. ``"hello:read"``; what a handler names in
      ``permission`` / ``permissions`` and a menu entry in its permission;
    * ``label``: one line saying what it allows, shown in the permission matrix (``smsgw permissions``);
    * ``roles``: the roles that hold it, of ``"customer"``, ``"user"`` and ``"admin"`` (an Admin's
      access is read-only, under an access grant with a written reason); none for a permission
      only the addon's own principals hold (e.g. phones through ``smsgw_principal_from_token``);
    * ``scope``: an API token may be created with it (it then holds it whatever its creator's role);
    * ``default_scope``: preselected for a new API token (needs ``scope``);
    * ``verified_only``: refused until a self-service workspace's owner confirmed their address
      (for anything that reaches third parties or mints credentials).

    :param register: the callable above, bound to this addon.
    """


@hookspec
def smsgw_security_schemes(register: Callable[..., None]) -> None:
    """Register the OpenAPI security schemes of the credentials this addon accepts.

    ``register(name, scheme, *, accepted_by_kernel=False)``: ``scheme`` is an OpenAPI 3.1 Security
    Scheme Object (a dict with ``type`` and a ``description`` saying who sends it and where it
    works), published under ``components.securitySchemes.<name>``, which the addon's operations then
    name in their ``security``. ``accepted_by_kernel``: the credential becomes a principal of the
    workspace (through ``smsgw_principal_from_token``), so the kernel's endpoints that any credential
    may call (``/api/v1/me``, ``/api/v1/auth/logout``) list the scheme too.

    :param register: the callable above, bound to this addon.
    """


# ---------------------------------------------------------------------------
# API tokens
# ---------------------------------------------------------------------------

@hookspec
def smsgw_access_token_revoked(tenant, claims: dict) -> bool | None:
    """Return ``True`` when the access token (JWT) with these verified ``claims`` was revoked.

    Called by the kernel for every access token it accepts, inside the tenant's transaction, on
    every addon (installed, whatever the tenant enabled: a token may be revoked by an addon the
    tenant switched off since); one ``True`` refuses the token (401). ``None``/``False`` mean "not
    revoked by me". Called on every API request made with a JWT: keep it to one indexed lookup.

    :param tenant: the :class:`core.tenancy.TenantInfo` the token names.
    :param claims: the verified JWT claims (``jti``, ``sub``, ``exp``, ...).
    """
