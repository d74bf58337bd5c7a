"""``smsgw``: the platform's command line. ``smsgw COMMAND --help`` explains each command."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .addons import AddonError, AddonRegistry, CommandError
from .admins import AdminError
from .backup import BackupError
from .config import ConfigError, Settings
from . import logformat
from .embedded_pg import EmbeddedPostgresError
from .migrations import MigrationError
from .placement import PlacementError
from .tenancy import TenantError

EPILOG = """\
Configuration comes from the environment: DATABASE_URL (external PostgreSQL;
unset = embedded PostgreSQL under SMSGW_DATA_DIR), REDIS_URL, SMSGW_BASE_DOMAIN
(default localhost), SMSGW_DATA_DIR (default ./var), SMSGW_PORT (default 8888),
SMSGW_BIND (default 127.0.0.1), SMSGW_HTTPS (1: served as HTTPS only, Secure cookies and HSTS),
SMSGW_METRICS_ADDRESS (HOST:PORT for Prometheus' /metrics; SMSGW_METRICS_TOKEN to require a
bearer token), SMSGW_LOG_FORMAT (text or json). docs/operations.md has the rest.
"""


def build_parser(registry: AddonRegistry | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="smsgw", description="Multi-tenant SMS gateway: run it, migrate it, manage tenants and addons.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    s = sub.add_parser("serve", help="run the web server (and optionally a worker)",
                       description="Serve the platform over HTTP. Applies pending migrations first.")
    s.add_argument("--port", type=int, default=None, help="port to listen on (default SMSGW_PORT or 8888)")
    s.add_argument("--host", default=None, metavar="ADDRESS",
                   help="address to listen on (default SMSGW_BIND or 127.0.0.1: this machine only; "
                        "0.0.0.0 or :: for every interface)")
    s.add_argument("--with-worker", action="store_true", help="also run a task consumer in this process")
    s.add_argument("--demo", action="store_true",
                   help="make sure the demo tenant and a platform admin exist and print their credentials")
    s.add_argument("--certfile", help="TLS certificate (PEM) to serve HTTPS")
    s.add_argument("--keyfile", help="TLS private key (PEM) for --certfile")

    w = sub.add_parser("worker", help="run a task consumer", description="Run background tasks (Huey consumer).")
    w.add_argument("--workers", type=int, default=2, help="worker threads (default 2)")

    m = sub.add_parser("migrate", help="apply pending migrations to the catalogue and every tenant",
                       description="Apply pending migrations: public first, then each tenant schema, "
                                   "several tenants at a time. Safe to re-run; resumes after interruption.")
    m.add_argument("--tenant", action="append", metavar="SLUG", help="only these tenants (repeatable)")
    m.add_argument("--jobs", type=int, default=None, help="tenants migrated in parallel (default 4)")

    t = sub.add_parser("tenant", help="create, list, suspend, resume, delete, export, import or move tenants")
    tsub = t.add_subparsers(dest="tenant_command", metavar="ACTION", required=True)
    tc = tsub.add_parser("create", help="create a tenant with its schema, role and owner",
                         description="Create a tenant: its PostgreSQL role and schema, all migrations, "
                                     "and its owner (Customer) account.")
    tc.add_argument("slug", help="subdomain: 3-40 lowercase letters, digits, hyphens")
    tc.add_argument("--name", required=True, help="company name")
    tc.add_argument("--owner-email", required=True, help="the owner's email (their login)")
    tc.add_argument("--owner-password", required=True, help="the owner's password (10+ characters)")
    tsub.add_parser("list", help="list tenants with status and enabled addons")
    for action, text in (("suspend", "refuse all access to a tenant (data is kept)"),
                         ("resume", "allow access to a suspended tenant again")):
        a = tsub.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        a.add_argument("slug")
    from .tenant_transfer import add_commands as add_transfer_commands

    add_transfer_commands(tsub)
    from .placement import add_commands as add_placement_commands

    add_placement_commands(tsub)
    d = tsub.add_parser("delete", help="delete a tenant: drops its schema, role and data",
                        description="Delete a tenant for good: its schema with all data and its role.")
    d.add_argument("slug")
    d.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    ad = sub.add_parser("admin", help="manage platform admins")
    adsub = ad.add_subparsers(dest="admin_command", metavar="ACTION", required=True)
    adc = adsub.add_parser("create", help="create a platform admin (operator) account")
    adc.add_argument("--email", required=True)
    adc.add_argument("--password", required=True, help="10+ characters")
    adc.add_argument("--name", default="")

    tk = sub.add_parser("token", help="create API tokens")
    tksub = tk.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    tkc = tksub.add_parser("create", help="create an API token for a tenant and print it once",
                           description="Create an API token. It is printed once; only its SHA-256 digest is stored.")
    tkc.add_argument("--tenant", required=True, metavar="SLUG")
    tkc.add_argument("--name", required=True)
    tkc.add_argument("--scope", action="append", metavar="SCOPE",
                     help="repeatable; default: the scopes the addons mark as default. "
                          "`smsgw permissions` lists them all")

    ky = sub.add_parser("keys", help="rotate token-signing and data-encryption keys")
    kysub = ky.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    kysub.add_parser("rotate", help="sign new access tokens with a new key; old keys stay published until "
                                    "their tokens expire")
    kr = kysub.add_parser("rotate-data-key", help="re-encrypt all secrets at rest under a new data key")
    kr.add_argument("--drop-old", action="store_true",
                    help="forget old data keys afterwards (only once every process has restarted)")

    sub.add_parser("permissions", help="the permission matrix: who holds what, and the API token scopes",
                   description="List every permission the kernel and the installed addons registered: the "
                               "roles that hold it, whether an API token may have it (scope, * = preselected), "
                               "whether it waits for a verified owner, and who registered it.")

    lg = sub.add_parser("language", help="start the translation of a new language",
                        description="Create locale/<CODE>/LC_MESSAGES/smsgw.po from the template (see locale/README.md).")
    lgsub = lg.add_subparsers(dest="language_command", metavar="ACTION", required=True)
    lga = lgsub.add_parser("add", help="create the catalogue of a new language (e.g. it, pt_BR)")
    lga.add_argument("code", help="the language code: it, pt_BR, zh_Hant ...")
    lga.add_argument("--locale-dir", type=Path, default=None, help="default: the project's locale/")

    a = sub.add_parser("addons", help="list installed addons; enable or disable them per tenant")
    asub = a.add_subparsers(dest="addons_command", metavar="ACTION", required=True)
    asub.add_parser("list", help="installed addons in load order")
    for action in ("enable", "disable"):
        x = asub.add_parser(action, help=f"{action} an addon for one tenant")
        x.add_argument("slug", help="the tenant")
        x.add_argument("name", help="the addon")
    from .backup import add_commands as add_backup_commands

    add_backup_commands(sub)
    if registry is not None:
        add_addon_commands(registry, sub)
    return p


def add_addon_commands(registry: AddonRegistry, sub) -> None:
    """The addons' commands (``smsgw_cli``), addon by addon so a clash names the addon."""
    for addon in registry.names():
        try:
            registry.call_one(addon, "smsgw_cli", subparsers=sub)
        except argparse.ArgumentError as exc:
            raise AddonError(f"addon {addon}: its command clashes with another one ({exc}); rename it") from None


def _platform(settings, registry: AddonRegistry | None = None):
    from .platform import Platform

    return Platform(settings, registry)


def main(argv=None) -> int:
    try:
        registry = AddonRegistry()
        parser = build_parser(registry)
    except AddonError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        logformat.configure(args.verbose, settings.log_format, settings.trust_proxy_headers)
        if not args.verbose:
            logging.getLogger("huey").setLevel(logging.WARNING)
        return dispatch(args, settings, registry)
    except (ConfigError, TenantError, AddonError, MigrationError, AdminError, EmbeddedPostgresError,
            CommandError, BackupError, PlacementError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def dispatch(args, settings, registry: AddonRegistry | None = None) -> int:
    from . import server

    if args.command == "serve":
        platform = _platform(settings, registry)
        server.serve(platform, args.port or settings.port, args.with_worker, args.demo,
                     args.certfile, args.keyfile, bind=args.host or settings.bind)
        return 0
    if args.command == "worker":
        server.run_worker(_platform(settings, registry), args.workers)
        return 0

    if args.command == "language":
        from .translations import LanguageError, add_language

        try:
            path = add_language(args.code, args.locale_dir or settings.locale_dir)
        except LanguageError as exc:
            raise CommandError(str(exc)) from None
        print(f"Created {path}. Translate it (Poedit, Weblate: see locale/README.md); the language menu offers "
              f"{args.code} after a restart.")
        return 0

    platform = _platform(settings, registry)
    try:
        if args.command in ("backup", "restore"):
            from . import backup

            return backup.command(platform, args)
        if args.command == "addons" and args.addons_command == "list":
            for addon in platform.registry.addons:
                deps = ", ".join(addon.depends) or "-"
                print(f"{addon.name:14} {addon.version:8} depends: {deps:20} {addon.summary}")
            if not platform.registry.addons:
                print("No addons installed.")
            return 0
        if args.command == "permissions":
            print_permissions(platform.registry.access)
            return 0
        platform.start_database(progress=lambda msg: print(msg, file=sys.stderr))
        if args.command == "migrate":
            from .progress import Progress

            applied, result = platform.migrate(only=args.tenant, jobs=args.jobs, progress=Progress())
            print(f"public: {len(applied)} migration(s) applied")
            if result.up_to_date:
                print(f"tenants: all up to date ({result.seconds:.2f} s)")
                return 0
            print(f"tenants: {len(result.migrated)} migrated, {len(result.failed)} failed "
                  f"({result.seconds:.2f} s)")
            for slug, err in sorted(result.failed.items()):
                print(f"  FAILED {slug}: {err}", file=sys.stderr)
            return 1 if result.failed else 0
        # Tenant commands need the schema in place.
        platform.migrate(tenants=False)
        if args.command == "tenant":
            return tenant_command(platform, args)
        if args.command in ("admin", "token", "keys"):
            return identity_command(platform, args)
        if args.command == "addons":
            info = platform.tenants.set_addon(args.slug, args.name, args.addons_command == "enable")
            print(f"{args.name} {'enabled' if args.addons_command == 'enable' else 'disabled'} for {info.slug}; "
                  f"enabled now: {', '.join(sorted(info.enabled_addons)) or 'none'}")
            return 0
        addon_command = getattr(args, "addon_command", None)
        if addon_command is not None:
            return addon_command(platform, args)
    finally:
        platform.close()
    return 0


def print_permissions(access) -> None:
    from .permissions import ROLES

    print(f"{'permission':20} {'customer':9}{'user':5}{'admin':6}{'scope':6}{'verified':9}{'by':10} what it allows")
    for p in access.permissions.values():
        marks = [("yes" if role in p.roles else "-") for role in ROLES]
        scope = ("yes*" if p.default_scope else "yes") if p.scope else "-"
        print(f"{p.name:20} {marks[0]:9}{marks[1]:5}{marks[2]:6}{scope:6}{'yes' if p.verified_only else '-':9}"
              f"{p.addon:10} {p.label}")


def identity_command(platform, args) -> int:
    if args.command == "admin":
        from .admins import create_admin

        admin = create_admin(platform, args.email, args.password, args.name)
        print(f"Created platform admin {admin.email}. Sign in at {platform.settings.public_url()}/admin")
        return 0
    if args.command == "token":
        from .db import tenant_transaction
        from .events import AuditEvent, emit
        from .identity import AuthError, create_api_token

        tenant = platform.tenants.get(args.tenant)
        scopes = args.scope or list(platform.registry.access.default_scopes)
        try:
            with tenant_transaction(tenant.ref):
                row, token = create_api_token(tenant.slug, args.name, scopes, None)
        except AuthError as exc:
            raise TenantError(str(exc)) from None
        emit(platform, AuditEvent("token.created", tenant.id, tenant.slug, actor="system:cli",
                                  target=f"token:{row.id}", details={"name": row.name, "scopes": scopes}))
        print(token)
        print(f"(API token '{row.name}' for {tenant.slug} with scopes {', '.join(row.scopes)}. "
              "It is shown only now; store it safely.)", file=sys.stderr)
        return 0
    if args.keys_command == "rotate":
        kid = platform.keyring.rotate()
        print(f"New signing key {kid}. Tokens signed with older keys stay valid until they expire (15 min).")
        return 0
    from .crypto import rotate_data_key
    from .progress import Progress

    counts = rotate_data_key(platform, drop_old=args.drop_old, progress=Progress())
    print(f"Re-encrypted {counts['public']} catalogue and {counts['tenant']} tenant value(s) under a new data key.")
    if not args.drop_old:
        print("Old keys still decrypt; run again with --drop-old once every process has restarted.")
    return 0


def tenant_command(platform, args) -> int:
    svc = platform.tenants
    cmd = args.tenant_command
    if cmd == "create":
        info = svc.create(args.slug, args.name, args.owner_email, args.owner_password)
        print(f"Created tenant {info.slug} ({info.name}) at {platform.settings.public_url(info.slug)}/")
        return 0
    if cmd == "list":
        tenants = svc.list()
        if not tenants:
            print("No tenants yet. Create one with: smsgw tenant create SLUG --name ... ")
        for t in tenants:
            print(f"{t.slug:24} {t.status:10} {t.plan:8} {t.database_alias:10} {t.name[:30]:30} addons: "
                  f"{', '.join(sorted(t.enabled_addons)) or '-'}")
        return 0
    if cmd == "suspend":
        svc.suspend(args.slug)
        print(f"Tenant {args.slug} suspended: its pages, API and devices are refused until resumed.")
        return 0
    if cmd == "resume":
        svc.resume(args.slug)
        print(f"Tenant {args.slug} is active again.")
        return 0
    if cmd in ("export", "import"):
        from . import tenant_transfer

        return tenant_transfer.command(platform, args)
    if cmd in ("move", "servers"):
        from . import placement

        return placement.command(platform, args)
    if cmd == "delete":
        svc.get(args.slug)
        if not args.yes:
            if not sys.stdin.isatty():
                print("error: refusing to delete without confirmation; pass --yes", file=sys.stderr)
                return 2
            answer = input(f"This drops all data of {args.slug}. Type the slug to confirm: ")
            if answer.strip() != args.slug:
                print("Not deleted.")
                return 1
        svc.delete(args.slug)
        print(f"Tenant {args.slug} deleted: schema and role dropped.")
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main())
