"""``smsgw devices enrollment-token``: an enrollment token for the Android app, from the command line."""

from __future__ import annotations

from core.addons import CommandError

from . import service

ACTOR = "system:cli"


def cli(subparsers) -> None:
    p = subparsers.add_parser("devices", help="phones: enrollment tokens for the SMS Gateway for Android app")
    sub = p.add_subparsers(dest="devices_command", metavar="ACTION", required=True)
    e = sub.add_parser("enrollment-token", help="create a token phones running the app join a workspace with",
                       description="Prints the token alone on its last line (shown only now; only its digest is "
                                   "stored). In the app: Settings, Cloud Server: API URL "
                                   "https://<workspace>.<base-domain>/api/mobile/v1, Private Token: this token, "
                                   "Notification channel: SSE Only.")
    e.add_argument("--tenant", required=True, metavar="SLUG", help="the workspace")
    e.add_argument("--name", default="", help="what the token is for (shown on the Devices page)")
    e.add_argument("--phones", type=int, default=1, metavar="N", help="how many phones may join with it (1)")
    e.add_argument("--expires-days", type=int, default=service.ENROLLMENT_DAYS, metavar="N",
                   help=f"days until it expires ({service.ENROLLMENT_DAYS})")
    e.set_defaults(addon_command=enrollment_token_command)


def enrollment_token_command(platform, args) -> int:
    from core.db import tenant_transaction
    from core.events import emit_with_work

    tenant = platform.tenants.get(args.tenant)
    try:
        with tenant_transaction(tenant.ref):
            token, row = service.create_enrollment(tenant.slug, ACTOR, args.name, args.phones, args.expires_days)
            emit_with_work(platform, enrollment_event("enrollment.created", tenant, ACTOR, row))
    except service.EnrollmentError as exc:
        raise CommandError(str(exc)) from None
    print(f"Enrollment token for {tenant.slug}: good for {row.phones} phone(s) until "
          f"{row.expires_at:%Y-%m-%d %H:%M} UTC. API URL: {platform.settings.public_url(tenant.slug)}/api/mobile/v1")
    print("Shown only now; store it safely:")
    print(token)
    return 0


def enrollment_event(action: str, tenant, actor: str, row, **extra):
    from core.events import AuditEvent

    return AuditEvent(action, tenant.id, tenant.slug, actor=actor, target=f"enrollment:{row.id}",
                      details={"name": row.name, "phones": row.phones, "expires_at": row.expires_at.isoformat(),
                               **extra})
