"""``smsgw reseller ...``: the operator's commands for resellers."""

from __future__ import annotations

from core.addons import CommandError

from . import service
from .service import ResellerError


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("reseller", help="create and list resellers; their console users and addons")
    sub = p.add_subparsers(dest="reseller_command", required=True)
    create = sub.add_parser("create", help="create a reseller (partner) account")
    create.add_argument("slug", help="its short name: partners.<base-domain>/<slug>")
    create.add_argument("--company", required=True)
    create.add_argument("--contact-email", required=True)
    create.add_argument("--contact-name", default="")
    create.add_argument("--commission", type=str, help="percent of its customers' invoices")
    create.add_argument("--wholesale-plan", default="", help="billing plan code: its wholesale price list")
    create.add_argument("--max-workspaces", required=True)
    sub.add_parser("list", help="list resellers")
    user = sub.add_parser("user-add", help="add a person to a reseller's console (password from SMSGW_RESELLER_PASSWORD)")
    user.add_argument("slug")
    user.add_argument("email")
    user.add_argument("--role", choices=service.ROLES, default="reseller_admin")
    for name, text in (("addon-allow", "make an installed addon available to a reseller"),
                       ("addon-withdraw", "make an addon unavailable to a reseller")):
        a = sub.add_parser(name, help=text)
        a.add_argument("slug")
        a.add_argument("addon")
    inv = sub.add_parser("invoice", help="issue a month's invoices: the reseller's to its customers on retail "
                                         "plans, then the platform's wholesale invoice to the reseller")
    inv.add_argument("slug")
    inv.add_argument("month", help="YYYY-MM")
    p.set_defaults(addon_command=run)


def run(platform, args) -> int:
    import os

    try:
        command = args.reseller_command
        if command == "list":
            for r in service.everyone():
                terms = f"commission {r.commission_bp / 100:g}%" if r.pricing == "commission" else f"wholesale {r.wholesale_plan}"
                print(f"{r.slug:20} {r.status:10} {terms:24} max {r.max_workspaces:<6} {r.company}")
            return 0
        if command == "create":
            pricing = "wholesale" if args.wholesale_plan else "commission"
            r = service.create({"slug": args.slug, "company": args.company, "contact_email": args.contact_email,
                                "contact_name": args.contact_name, "pricing": pricing,
                                "commission_percent": args.commission or "0", "wholesale_plan": args.wholesale_plan,
                                "max_workspaces": args.max_workspaces})
            print(f"Reseller {r.slug} created; its console: {platform.settings.public_url('partners')}/{r.slug}")
            return 0
        reseller = service.get(args.slug)
        if command == "invoice":
            from . import invoicing

            for invoice in invoicing.invoice_customers(reseller, args.month):
                print(f"{invoice.number}  {invoice.total:>12} {invoice.currency}  to workspace {invoice.tenant_id}")
            wholesale = invoicing.invoice_wholesale(reseller, args.month)
            segments = sum(line["segments"] for line in wholesale.lines)
            print(f"{wholesale.number}  {wholesale.total:>12} {wholesale.currency}  to {reseller.slug} "
                  f"({len(wholesale.lines)} workspaces, {segments} segments)")
            return 0
        if command == "user-add":
            password = os.environ.get("SMSGW_RESELLER_PASSWORD", "")
            if not password:
                raise CommandError("set SMSGW_RESELLER_PASSWORD to the new person's password (never on the command line)")
            service.add_user(platform, reseller, args.email, password, args.role)
            print(f"{args.email} can sign in at {platform.settings.public_url('partners')}/{reseller.slug}/login")
            return 0
        service.set_available(platform, reseller, args.addon, command == "addon-allow")
        print(f"{args.addon} is {'now' if command == 'addon-allow' else 'no longer'} available to {reseller.slug}")
        return 0
    except ResellerError as exc:
        raise CommandError(str(exc)) from None
