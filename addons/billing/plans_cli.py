"""``smsgw plans list|create|update|retire``: the operator's plans from the command line."""

from __future__ import annotations

from core.addons import CommandError

from . import plans

ACTOR = "system:cli"
# option -> (field, help); "none" clears the limits that may be empty
OPTIONS = (
    ("--name", "name", "the name customers see (1-80 characters)"),
    ("--currency", "currency", "ISO 4217 code, e.g. EUR"),
    ("--monthly-price", "monthly_price", "price per month in minor units (990 = 9.90)"),
    ("--yearly-price", "yearly_price", "price per year in minor units"),
    ("--included-segments", "included_segments", "SMS segments included per month"),
    ("--max-devices", "max_devices", "phones the workspace may pair ('none': no limit)"),
    ("--max-members", "max_members", "members of the workspace ('none': no limit)"),
    ("--api-per-minute", "api_per_minute", "API requests per minute ('none': no limit)"),
    ("--overage-per-1000", "overage_per_1000",
     "price per 1,000 segments beyond the included ones, minor units ('none' or left out: hard stop)"),
    ("--trial-days", "trial_days", "days of free trial a new subscription starts with"),
    ("--addons", "addons", "comma-separated addons the plan unlocks"),
    ("--sort-order", "sort_order", "position on the Pricing page (smaller first)"),
)


def cli(subparsers) -> None:
    p = subparsers.add_parser("plans", help="list, create, change or retire the plans customers subscribe to",
                              description="Plans are versioned: changing a price or a limit makes a new version; "
                                          "subscriptions keep theirs until they renew. Amounts are integers in "
                                          "minor units of the plan's currency (cents for EUR).")
    sub = p.add_subparsers(dest="plans_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="the current plans (--all: every version)")
    ls.add_argument("--all", action="store_true", help="also the retired versions")
    ls.set_defaults(addon_command=list_command)
    for action, text in (("create", "create a plan"), ("update", "change a plan (a new version when terms change)")):
        a = sub.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        a.add_argument("code", help="the plan's code: lowercase letters, digits, hyphens (e.g. pro)")
        for option, field, help_text in OPTIONS:
            a.add_argument(option, dest=field, metavar="VALUE", help=help_text)
        visibility = a.add_mutually_exclusive_group()
        visibility.add_argument("--hidden", dest="public", action="store_const", const="false",
                                help="not listed on the Pricing page or at sign-up")
        visibility.add_argument("--public", dest="public", action="store_const", const="true",
                                help="listed on the Pricing page and at sign-up")
        a.set_defaults(addon_command=create_command if action == "create" else update_command)
    r = sub.add_parser("retire", help="stop selling a plan (its subscribers keep it)")
    r.add_argument("code")
    r.set_defaults(addon_command=retire_command)


def _values(args) -> dict:
    values = {}
    for _option, field, _help in OPTIONS + (("", "public", ""),):
        raw = getattr(args, field, None)
        if raw is not None:
            values[field] = "" if str(raw).strip().lower() in ("none", "unlimited") else raw
    return values


def _refused(exc: plans.PlanError) -> CommandError:
    names = {field: "--" + field.replace("_", "-") for _o, field, _h in OPTIONS}
    return CommandError("nothing changed: " + "; ".join(f"{names.get(f, f)}: {m}" for f, m in exc.errors.items()))


def describe(plan: plans.PlanVersion) -> str:
    def limit(value):
        return "unlimited" if value is None else str(value)

    overage = "hard stop" if plan.hard_stop else f"{plan.overage_per_1000}/1000"
    state = "retired" if plan.retired_at else ("public" if plan.public else "hidden")
    return (f"{plan.plan_code:14} v{plan.version:<3} {plan.name[:24]:24} {plan.currency} {plan.monthly_price:>9}/month "
            f"{plan.yearly_price:>10}/year  segments {plan.included_segments}  devices {limit(plan.max_devices)}  "
            f"members {limit(plan.max_members)}  api/min {limit(plan.api_per_minute)}  overage {overage}  "
            f"trial {plan.trial_days}d  addons {','.join(plan.addons) or '-'}  {state}")


def list_command(platform, args) -> int:
    from core.db import connection

    with connection():
        found = plans.versions() if args.all else plans.all_current()
    for plan in found:
        print(describe(plan))
    return 0


def create_command(platform, args) -> int:
    try:
        plan = plans.create(platform, {"plan_code": args.code, **_values(args)}, actor=ACTOR)
    except plans.PlanError as exc:
        raise _refused(exc) from None
    print("created " + describe(plan))
    return 0


def update_command(platform, args) -> int:
    try:
        plan = plans.update(platform, args.code, _values(args), actor=ACTOR)
    except plans.PlanError as exc:
        raise _refused(exc) from None
    print("now " + describe(plan))
    return 0


def retire_command(platform, args) -> int:
    try:
        plan = plans.retire(platform, args.code, actor=ACTOR)
    except plans.PlanError as exc:
        raise _refused(exc) from None
    print(f"retired {plan.plan_code} (version {plan.version}); its subscribers keep it")
    return 0
