"""The one documented contract between the kernel and addons.

Every hook name starts with ``smsgw_``. An addon implements any subset with
``@core.hookimpl``; an implementation may accept fewer parameters than the
spec names. Parameters are only ever added, never changed.

Hooks that describe an addon's *parts* (migrations, routes, templates, ...)
are called once per addon by the loader, which therefore knows which addon
each part belongs to and can gate it per tenant.

Every spec (here and in ``addons/*/hookspecs.py``) types its parameters and
ends its docstring with the same lines, checked by ``tests/test_hookspecs.py``:

* ``Result:`` what the caller gets. ``first`` — the first non-``None`` result
  (the spec says ``firstresult=True``; later addons are not called).
  ``collected`` — a list of every non-``None`` result, in call order.
  ``per addon`` — the kernel calls addon by addon (``call_each``/``call_one``/
  ``folders``) and knows which addon gave which part. ``none`` — an event;
  results are ignored.
* ``Order:`` always ``dependencies first``: an addon is called after the addons
  it ``depends`` on, ties by name, on every path (``registry.hook``,
  ``call_each``, ``folders``). Hooks with results to merge say what wins.
* ``Reaches:`` on every hook that takes a ``tenant``. Such a hook reaches only
  the addons that tenant enabled (the registry filters, see
  :class:`core.addons.TenantHookCaller`; an addon never checks
  ``tenant.enabled_addons`` itself), unless the spec is marked
  :func:`every_addon`: lifecycle and security hooks that an installed addon
  must hear whether or not the tenant uses it now.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:
    import argparse
    import datetime as dt
    from pathlib import Path

    from .brand import Brand
    from .config import Settings
    from .datamap import Table
    from .events import AuditEvent
    from .i18n import Formats
    from .permissions import Principal
    from .platform import Platform
    from .tasks import TaskQueue
    from .tenancy import TenantInfo
    from .web.app import Application
    from .web.base import BaseHandler
    from .web.menu import MenuItem
    from .web.overview import OverviewPart
    from .web.problem import Problem

hookspec = pluggy.HookspecMarker("smsgw")

EVERY_ADDON = "smsgw_every_addon"


def every_addon(spec):
    """Mark a spec that takes a ``tenant`` but reaches every installed addon, enabled or not."""
    setattr(spec, EVERY_ADDON, True)
    return spec


@dataclass(frozen=True)
class EncryptedField:
    """A column stored encrypted with :meth:`Platform.data_cipher` (``smsgw_encrypted_fields``)."""

    scope: str  # "public" or "tenant" (tenant tables unqualified)
    table: str
    key_column: str
    value_column: str


@dataclass(frozen=True)
class AdminSection:
    """A read-only view of a tenant's data in the Admin console (``smsgw_admin_sections``)."""

    label: str  # English msgid; translated when rendered
    function: Callable[[Any], list[dict]]  # function(tenant) -> rows (dicts)
    in_tenant: bool  # run inside the tenant's transaction


# ---------------------------------------------------------------------------
# Parts: models and migrations
# ---------------------------------------------------------------------------

@hookspec
def smsgw_migrations() -> str | Path | list[str | Path] | None:
    """Return the directory holding this addon's migrations.

    Optional: without an implementation the addon's ``migrations/`` folder is used.

    The directory has ``public/`` and ``tenant/`` subdirectories of files
    named ``NNNN_description.sql`` (or ``.py`` with ``migrate(cursor, ctx)``).
    Tenant migrations run as the tenant's role with ``search_path`` set to its
    schema; public ones run as the administrative role.

    Result: per addon (``registry.folders``).
    Order: dependencies first (an addon's migrations run after those of the addons it depends on).
    """


@hookspec
def smsgw_models() -> list[type | Table]:
    """Return every table this addon's migrations create, each with its privacy declaration.

    A peewee model class carries it as ``Meta.privacy``; a table without a model (raw SQL) is
    given as a :class:`core.datamap.Table`. The declaration
    (:class:`core.datamap.PersonalData`) says whether the rows hold personal data or message
    content, whom they are about, and how to export, redact and erase them: the privacy
    addon's export, retention and erasure walk :meth:`core.addons.AddonRegistry.models`, so a
    table nobody declares is a table they miss. The loader validates every declaration at
    start-up; the test suite checks that every declared table and column exists and that every
    table in the database is declared. Tenant models have no ``schema``; catalogue models say
    ``schema = "public"``.

    Result: per addon (``call_each``).
    Order: dependencies first.
    """


# ---------------------------------------------------------------------------
# Parts: web
# ---------------------------------------------------------------------------

@hookspec
def smsgw_routes(settings: Settings) -> list[tuple]:
    """Return a list of ``(pattern, handler_class)`` or ``(pattern, handler_class, kwargs)``.

    These stay tuples: it is the shape Tornado's ``Application`` takes, and what every Tornado
    reader expects. Handlers derive from :class:`core.web.base.BaseHandler`; their ``scope``
    attribute says where they answer (``"tenant"``, ``"platform"``, ``"any"``, or ``"host"``:
    only on ``<handler.host_label>.<base-domain>``, a reserved slug, with no tenant resolved; with
    ``custom_hosts = True`` also at hosts of someone's own where no workspace route matched, which
    the handler must prove itself: ``core.web.app.custom_host_routes``).
    Tenant routes answer only for tenants that enabled the addon.

    :param settings: the :class:`core.config.Settings` in force.

    Result: per addon (``call_each``): the kernel tags each handler with its addon.
    Order: dependencies first; a pattern of an earlier addon matches first.
    """


@hookspec
def smsgw_template_dirs() -> str | Path | list[str | Path] | None:
    """Return a list of directories with this addon's Jinja2 templates.

    Optional: without an implementation the addon's ``templates/`` folder is used.

    Lookup order is theme → addons → core; ``core/`` prefixed names always
    reach the core templates so a theme can extend the original.

    Result: per addon (``registry.folders``).
    Order: dependencies first; for a name two addons hold, the earlier addon's template wins.
    """


@hookspec
def smsgw_static_dirs() -> str | Path | None:
    """Return the directory of this addon's static files, served at ``/static/addons/<name>/``.

    Optional: without an implementation the addon's ``static/`` folder is used.

    Result: per addon (``registry.folders``).
    Order: dependencies first (each addon has its own URL prefix: nothing overlaps).
    """


@hookspec
def smsgw_menu_items(tenant: TenantInfo, user: Principal | None) -> list[MenuItem]:
    """Return dashboard menu entries as a list of :class:`core.web.menu.MenuItem`.

    An entry's ``group`` (a :class:`core.web.menu.MenuGroup`: core's ``INSIGHTS``, ``SETTINGS``,
    ``ACCOUNT`` or one the addon declares) puts it under that heading; without one it is a main
    entry, shown first.

    :param tenant: the current :class:`core.tenancy.TenantInfo`.
    :param user: the signed-in principal (or ``None``).

    Result: per addon (``call_each``); the kernel groups the entries (main entries first, then
    groups by their ``order``) and sorts each group by ``order``, then label.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec
def smsgw_template_context(handler: BaseHandler) -> dict | None:
    """Return a dict of extra variables for every template rendered by ``handler``.

    Slots of the kernel's templates are lists every addon may add to: ``page_notices`` (template
    names included above the page's content), ``body_start`` (template names included first in the
    page's body, before the header: what keyboard and screen-reader users must meet first, such as
    a cookie banner, which places itself on screen with its own CSS), ``footer_links``,
    ``admin_links``, ``home_links`` (beside the landing page's sign-up button), ``signup_parts``
    and ``account_links`` (``{"label", "url"}``: the account
    pages' own navigation, after the kernel's *Details*).

    Result: per addon (``call_each``); the dicts are merged into the context, lists joined.
    Order: dependencies first; for a name two addons set (not a list), the later addon's value wins.
    """


@hookspec(firstresult=True)
@every_addon
def smsgw_brand(tenant: TenantInfo, default: Brand) -> Brand | None:
    """The brand ``tenant``'s pages and mails show: product name, logo, colours, mail sender,
    support address and theme (:class:`core.brand.Brand`); ``None`` leaves it to later addons and
    then to ``default``, the platform's own brand from its settings.

    Called off the IOLoop (a database read is fine) when the kernel's cache of the workspace's brand
    misses; call :meth:`core.platform.Platform.brand_changed` when your answer changes, and every
    process asks again.

    :param tenant: the workspace the page or mail is for.
    :param default: the platform's brand (``SMSGW_PRODUCT_NAME`` ...): fill what you do not set from it.

    Result: first.
    Order: dependencies first.
    Reaches: every installed addon (``every_addon``): a workspace's look must not fall back to the
        platform's because the workspace switched off the addon whose settings page made it.
    """


@hookspec(firstresult=True)
def smsgw_tenant_for_host(host: str) -> str | None:
    """The slug of the workspace a host name of its own (``sms.acme.com``) belongs to, or ``None``.

    Asked only for a host that is neither the base domain nor one of its subdomains, off the IOLoop
    (a database lookup is fine); the kernel caches the answer (also "none") and forgets it when
    :meth:`core.platform.Platform.hosts_changed` is called in any process. Answer only for hosts
    whose owner proved control of them.

    :param host: the request's host name, lowercase, without port or trailing dot.

    Result: first.
    Order: dependencies first.
    """


@hookspec
def smsgw_overview_parts(tenant: TenantInfo, principal: Principal, gettext: Callable[[str], str],
                         params: dict[str, str], formats: Formats) -> OverviewPart | list[OverviewPart] | None:
    """Return what this addon shows on the workspace's Overview (``/``), as
    :class:`core.web.overview.OverviewPart` objects: a section (a template included with the part
    as ``part``), lines for *Needs attention* and steps of the first-steps checklist.

    Called inside the Overview's tenant transaction: run only a few indexed statements (read
    counters such as the usage addon's, never scan message tables). Show only what ``principal``
    may see (``principal.can(permission)``).

    :param tenant: the current :class:`core.tenancy.TenantInfo`.
    :param principal: the signed-in member.
    :param gettext: translates a message id into the member's language (for attention lines and steps).
    :param params: the page's query arguments (e.g. ``days`` for a chart's range), as strings.
    :param formats: :class:`core.i18n.Formats` of the member's language (dates and numbers, e.g. a
        chart's day labels: ``formats.day(date)``).

    Result: collected; the kernel sorts sections by ``order`` and steps by ``order``.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec
def smsgw_openapi() -> dict | None:
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

    Result: per addon (``call_each``).
    Order: dependencies first (a clash is an error, so order never decides a winner).
    """


@hookspec
def smsgw_translations() -> str | Path | None:
    """Return a ``locale/`` directory holding ``<lang>/LC_MESSAGES/*.po`` catalogues for this addon.

    Optional: without an implementation the addon's ``locale/`` folder is used.

    Result: per addon (``registry.folders``).
    Order: dependencies first.
    """


# ---------------------------------------------------------------------------
# Parts: tasks
# ---------------------------------------------------------------------------

@hookspec
def smsgw_tasks(queue: TaskQueue) -> None:
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

    Result: none (per addon, ``call_one``: each addon gets a queue that knows its name).
    Order: dependencies first.
    """


# ---------------------------------------------------------------------------
# Parts: command line
# ---------------------------------------------------------------------------

@hookspec
def smsgw_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add this addon's commands to ``smsgw`` (:mod:`core.cli`).

    ``subparsers`` is the ``smsgw COMMAND`` group: ``subparsers.add_parser(name, help=...)`` adds a
    command with its arguments. Each command's parser names what runs it with
    ``set_defaults(addon_command=run)``: ``run(platform, args) -> int`` (the exit status) is called
    with the database started and the catalogue migrated, outside any transaction. Refuse bad input
    by raising :class:`core.addons.CommandError` with a message for people: ``smsgw`` prints it and
    exits with status 2. Name commands after what they manage (``plans``), not after the addon.

    :param subparsers: the argparse sub-parser group of ``smsgw``'s commands.

    Result: none.
    Order: dependencies first; a name taken already (by the kernel or an earlier addon) stops
    ``smsgw`` with an error naming the addon.
    """


# ---------------------------------------------------------------------------
# Identity and audit
# ---------------------------------------------------------------------------

@hookspec(firstresult=True)
def smsgw_principal_from_token(token: str, tenant: TenantInfo) -> Principal | None:
    """Turn a bearer token the kernel does not know (e.g. a device token) into a principal.

    Called inside the tenant's transaction.

    :param token: the raw bearer token (its checksum already verified when it is prefixed).
    :param tenant: the :class:`core.tenancy.TenantInfo` the token names.
    :return: a :class:`core.permissions.Principal` or ``None``.

    Result: first: stops at the first non-``None`` result.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant`` (a disabled addon's tokens sign nobody in).
    """


@hookspec
def smsgw_encrypted_fields() -> list[EncryptedField]:
    """Return the columns this addon stores encrypted with :meth:`Platform.data_cipher`.

    A list of :class:`EncryptedField` (tenant tables unqualified). ``smsgw keys
    rotate-data-key`` re-encrypts them all under a new key.

    Result: per addon (``call_each``).
    Order: dependencies first.
    """


@hookspec
def smsgw_admin_sections() -> dict[str, AdminSection]:
    """Return extra read-only views of a tenant's data for the Admin console.

    A dict ``{name: AdminSection}`` (:class:`AdminSection`): ``function(tenant)``
    returns a list of dicts (one table row each); with ``in_tenant`` it runs
    inside the tenant's transaction. Views are shown only under an access
    grant with a written reason, and each view is recorded in the audit trail.

    Result: per addon (``call_each``); a name two addons use: the later addon's view wins.
    Order: dependencies first.
    """


@hookspec
def smsgw_audit_event(event: AuditEvent) -> None:
    """Record a security or access event (:class:`core.events.AuditEvent`).

    Called outside tenant transactions. Implementations must not swallow
    errors: an access that cannot be recorded must fail.

    Result: none.
    Order: dependencies first; an error stops the call (later addons do not hear the event).
    """


# ---------------------------------------------------------------------------
# Lifecycle events
# ---------------------------------------------------------------------------

@hookspec
@every_addon
def smsgw_tenant_created(tenant: TenantInfo) -> None:
    """Called after a tenant was created and migrated, inside no transaction.

    :param tenant: the new :class:`core.tenancy.TenantInfo`.

    Result: none.
    Order: dependencies first.
    Reaches: every installed addon (every addon's tables exist in the new schema, enabled or not).
    """


@hookspec
@every_addon
def smsgw_tenant_deleted(tenant: TenantInfo) -> None:
    """Called after a tenant's schema and role were dropped.

    :param tenant: the :class:`core.tenancy.TenantInfo` as it was before deletion.

    Result: none.
    Order: dependencies first.
    Reaches: every installed addon (one disabled after it stored data must still clean up).
    """


@hookspec
@every_addon
def smsgw_revoke_credentials(tenant: TenantInfo, user_id: int | None) -> None:
    """Revoke, inside the tenant's transaction, the credentials this addon issues (device tokens ...).

    The kernel revokes its own (sessions, refresh tokens with their access tokens, API tokens) and
    then calls this: for the whole workspace (``user_id`` ``None``: it is being deleted) or for one
    member (their account is being deleted). The caller tells every process afterwards
    (``platform.credentials_changed``), so nothing stays cached.

    :param tenant: the :class:`core.tenancy.TenantInfo` whose credentials die.
    :param user_id: the member whose credentials die, or ``None`` for every credential of the workspace.

    Result: none.
    Order: dependencies first.
    Reaches: every installed addon (a credential of an addon the tenant disabled must die too).
    """


@hookspec
def smsgw_configure(platform: Platform) -> None:
    """Called once when a :class:`core.platform.Platform` is built (web, worker, CLI, tests).

    Addons that need the platform later (to emit events, wake phones, enqueue
    tasks) keep it here. Do no I/O: the database may not be reachable yet.

    Result: none.
    Order: dependencies first.
    """


@hookspec
def smsgw_worker_standin(tenant: TenantInfo, since: dt.datetime, until: dt.datetime) -> list[str] | None:
    """The worker is late (no heartbeat for a few seconds): do, for ``tenant``, the part of its
    time-driven work that must not wait for it, for what came due in ``(since, until]``
    (datetimes), e.g. wake phones when scheduled messages become due.

    Called inside the tenant's transaction, about once a second, by one web process at a time
    (:mod:`core.worker_watch`); keep it cheap and idempotent. Return the wake-up keys to send
    after the commit (or None).

    Result: collected: the kernel wakes every key of every list.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec
def smsgw_startup(app: Application) -> None:
    """Called once when a web process has built its application, before it serves.

    :param app: the :class:`core.web.app.Application`.

    Result: none.
    Order: dependencies first.
    """


@hookspec
def smsgw_shutdown(app: Application) -> None:
    """Called once when a web process stops serving, before the database closes.

    :param app: the :class:`core.web.app.Application`.

    Result: none.
    Order: dependencies first (the same order as start-up).
    """


@hookspec
def smsgw_request_finished(tenant: TenantInfo, handler: BaseHandler, elapsed_ms: float) -> None:
    """Called when a web process finished answering a request of ``tenant`` (as it logs it), on the
    IOLoop: implementations only note something in memory (metering, latency) and return at once.

    :param tenant: the request's workspace (requests without one are not reported).
    :param handler: the finished handler (``handler.principal``, ``handler.request``, status).
    :param elapsed_ms: the time from the request's arrival to its answer, in milliseconds.

    Result: none.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec
def smsgw_request_check(tenant: TenantInfo, handler: BaseHandler) -> None:
    """Called for every request of ``tenant`` once its caller is known and its permission checked,
    before the handler's method runs, on the IOLoop: implementations decide from memory (a rate
    limit, a cached flag) and return at once, or raise a :class:`core.web.problem.Problem` to refuse
    the request. They may set answer headers on ``handler`` (they are kept on the refusal too).

    :param tenant: the request's workspace (requests without one are not checked).
    :param handler: the handler about to run (``handler.principal`` may be ``None`` on public pages).

    Result: none (a raised Problem refuses the request; the first addon to raise wins).
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


@hookspec(firstresult=True)
def smsgw_limit_check(tenant: TenantInfo, resource: str, current: int) -> Problem | None:
    """One more ``resource`` is about to be added to the workspace, which has ``current`` of them:
    return the :class:`core.web.problem.Problem` that refuses it (a plan's limit: ``402``), or ``None``.

    Called inside the tenant's transaction that adds it, which holds a lock that serializes additions of
    that resource in the workspace (so two additions cannot both pass a limit of one). Resources: ``"member"``
    (a member invited: :class:`core.web.account_pages.TeamHandler`), ``"device"`` (a pairing code for a new
    phone made, or spent: ``addons/devices``); addons may ask about resources of their own.

    :param tenant: the :class:`core.tenancy.TenantInfo`.
    :param resource: what is added.
    :param current: how many the workspace has now (without the one being added).

    Result: first: stops at the first non-``None`` result (the refusal).
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


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

    Result: none (what counts is what was registered).
    Order: dependencies first, after the kernel's own.
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

    Result: none (what counts is what was registered).
    Order: dependencies first.
    """


# ---------------------------------------------------------------------------
# API tokens
# ---------------------------------------------------------------------------

@hookspec
@every_addon
def smsgw_access_token_revoked(tenant: TenantInfo, claims: dict) -> bool | None:
    """Return ``True`` when the access token (JWT) with these verified ``claims`` was revoked.

    Called by the kernel for every access token it accepts, inside the tenant's transaction, on
    every addon (installed, whatever the tenant enabled: a token may be revoked by an addon the
    tenant switched off since); one ``True`` refuses the token (401). ``None``/``False`` mean "not
    revoked by me". Called on every API request made with a JWT: keep it to one indexed lookup.

    :param tenant: the :class:`core.tenancy.TenantInfo` the token names.
    :param claims: the verified JWT claims (``jti``, ``sub``, ``exp``, ...).

    Result: collected: the token is revoked when any result is true.
    Order: dependencies first.
    Reaches: every installed addon (a tenant that disables compat must not bring its revoked tokens back).
    """


# ---------------------------------------------------------------------------
# Mail and sign-up
# ---------------------------------------------------------------------------

@hookspec
def smsgw_mail_suppressed(to: str, category: str) -> str | None:
    """Return a reason not to send a mail of ``category`` to the address ``to``, or ``None``.

    Asked by :meth:`core.mailer.Mailer.send` for every mail that is not ``service`` mail
    (``marketing``: product updates, newsletters); service mail (sign-in, confirmations, security
    notices, answers to a person's own request) is never asked about. The privacy addon answers
    for people who objected to direct marketing or asked to restrict processing. Called outside
    tenant transactions: one indexed lookup in the catalogue.

    :param to: the recipient's address, as given to ``send``.
    :param category: the mail's category (:data:`core.mailer.CATEGORIES`, never ``service``).

    Result: collected: the mail is not sent when any addon gives a reason (the reasons are logged).
    Order: dependencies first.
    """


@hookspec
def smsgw_signup_check(handler: BaseHandler) -> dict | None:
    """Check the sign-up form's fields this addon added before a workspace is made.

    An addon adds fields to the form by giving template names in the ``signup_parts`` list of
    ``smsgw_template_context``; the form includes each one.

    Return ``{field: message}`` (in the request's language, ``handler.gettext()``; shown beside
    the field) to refuse the sign-up, or ``None``. Nothing is created when any addon refuses. Read the form with
    ``handler.get_body_argument``; do no writes here (the workspace may still be refused).

    :param handler: the sign-up page's request handler (base domain, no tenant yet).

    Result: collected: the refusals of every addon are merged and shown together.
    Order: dependencies first.
    """


@hookspec
def smsgw_signed_up(handler: BaseHandler, tenant: TenantInfo) -> None:
    """Called after the sign-up form created ``tenant`` (its owner is user 1), before the answer.

    For what the owner agreed to on the form (the privacy addon records the policy version
    accepted). Not called for workspaces created otherwise (``smsgw tenant create``, tests).

    :param handler: the sign-up page's request handler (form arguments, client address).
    :param tenant: the new :class:`core.tenancy.TenantInfo`.

    Result: none.
    Order: dependencies first.
    Reaches: addons enabled for ``tenant``.
    """


# ---------------------------------------------------------------------------
# Operations
# ---------------------------------------------------------------------------

@hookspec
def smsgw_metrics(register: Callable[[Any], None]) -> None:
    """Give the metrics listener (``SMSGW_METRICS_ADDRESS``, :mod:`core.metrics`) collectors that
    read this addon's state when Prometheus scrapes.

    ``register(collector)`` takes a ``prometheus_client`` custom collector: an object whose
    ``collect()`` yields metric families. It runs in a database thread at every scrape (every
    15 s or so): keep it to a few catalogue queries whatever the number of workspaces, never a
    loop over them, and give no label a workspace's name. Counters an addon keeps as things
    happen it creates with ``prometheus_client`` itself (they work across processes with
    ``PROMETHEUS_MULTIPROC_DIR``); they need no registration here.

    :param register: takes one collector; called any number of times.

    Result: none.
    Order: dependencies first.
    """
