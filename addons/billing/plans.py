"""Plans: what the operator sells. A plan is a code with versions; a changed price or limit is a
new version, and subscriptions keep theirs until renewal (public.billing_plan_versions)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, fields
from decimal import Decimal

from babel.numbers import format_currency, get_currency_precision, list_currencies

from core.datamap import NO_PERSONAL_DATA, Table
from core.db import app_db, connection
from core.events import AuditEvent, emit
from core.i18n import N_

MODELS = [Table("billing_plan_versions", "public", NO_PERSONAL_DATA)]


@dataclass(frozen=True)
class PlanVersion:
    id: int
    plan_code: str
    version: int
    name: str
    currency: str
    monthly_price: int
    yearly_price: int
    included_segments: int
    max_devices: int | None
    max_members: int | None
    api_per_minute: int | None
    overage_per_1000: int | None  # None: hard stop at included_segments
    trial_days: int
    addons: tuple[str, ...]
    public: bool
    sort_order: int
    created_at: dt.datetime
    retired_at: dt.datetime | None

    @property
    def hard_stop(self) -> bool:
        return self.overage_per_1000 is None

    def price(self, interval: str) -> int:
        return self.yearly_price if interval == "year" else self.monthly_price


COLUMNS = tuple(f.name for f in fields(PlanVersion))
SELECT = f"SELECT {', '.join(COLUMNS)} FROM public.billing_plan_versions"


def _row(row) -> PlanVersion:
    values = dict(zip(COLUMNS, row))
    values["addons"] = tuple(values["addons"] or ())
    return PlanVersion(**values)


def by_id(version_id: int, db=app_db) -> PlanVersion | None:
    """A plan version, current or retired (inside an open connection)."""
    row = db.execute_sql(SELECT + " WHERE id = %s", (version_id,)).fetchone()
    return _row(row) if row else None


def current(plan_code: str, db=app_db) -> PlanVersion | None:
    """The version of ``plan_code`` new subscriptions get, or None (inside an open connection)."""
    row = db.execute_sql(SELECT + " WHERE plan_code = %s AND retired_at IS NULL", (plan_code,)).fetchone()
    return _row(row) if row else None


def all_current(only_public: bool = False, db=app_db) -> list[PlanVersion]:
    """Every plan's current version, in the operator's order (inside an open connection)."""
    where = " WHERE retired_at IS NULL" + (" AND public" if only_public else "")
    return [_row(r) for r in db.execute_sql(SELECT + where + " ORDER BY sort_order, monthly_price, plan_code")]


# -- the operator's changes (admin console, ``smsgw plans``) ----------------------------------------

CODE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
DEFAULT_PLAN = "free"  # what a workspace gets when nobody chose (``smsgw tenant create``, sign-up default)
# The terms a subscription is sold on: a change to any of them is a new version (subscriptions keep
# theirs until renewal). The others only present the plan and change the current version in place.
TERMS = ("currency", "monthly_price", "yearly_price", "included_segments", "max_devices", "max_members",
         "api_per_minute", "overage_per_1000", "trial_days", "addons")
PRESENTATION = ("name", "public", "sort_order")
# Upper bounds that catch a typo (a price in cents typed as thousands) before it reaches a customer.
MAX_PRICE = 10**10  # minor units: 100,000,000.00 in a 2-decimal currency
MAX_COUNT = 10**9
MAX_SMALL = 1_000_000
MAX_TRIAL_DAYS = 365
# field: (lower bound, upper bound, may be empty (None = no limit / hard stop))
NUMBERS = {
    "monthly_price": (0, MAX_PRICE, False), "yearly_price": (0, MAX_PRICE, False),
    "included_segments": (0, MAX_COUNT, False), "max_devices": (0, MAX_SMALL, True),
    "max_members": (0, MAX_SMALL, True), "api_per_minute": (1, MAX_SMALL, True),
    "overage_per_1000": (0, MAX_PRICE, True), "trial_days": (0, MAX_TRIAL_DAYS, False),
    "sort_order": (-MAX_SMALL, MAX_SMALL, False),
}


class PlanError(ValueError):
    """Refused plan input. ``messages`` maps each field to what is wrong with it as ``(msgid, params)``
    (pages translate it, :meth:`translated`); ``errors`` gives the same in English."""

    def __init__(self, messages: dict[str, tuple[str, dict]]):
        self.messages = messages
        self.errors = {field: msgid % params if params else msgid for field, (msgid, params) in messages.items()}
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.errors.items()))

    def translated(self, gettext) -> dict[str, str]:
        return {field: gettext(msgid) % params if params else gettext(msgid)
                for field, (msgid, params) in self.messages.items()}


def _m(msgid: str, **params) -> tuple[str, dict]:
    return msgid, params


def currencies() -> frozenset[str]:
    return frozenset(list_currencies())


def _integer(raw, low: int, high: int, optional: bool, money: bool) -> tuple[int | None, tuple | None]:
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return (None, None) if optional else (None, _m(N_("Enter a whole number.")))
    if isinstance(raw, bool):
        return None, _m(N_("Enter a whole number."))
    if isinstance(raw, int):
        value = raw
    else:
        text = str(raw).strip()
        if not re.fullmatch(r"[+-]?\d{1,19}", text):
            return None, _m(N_("Enter a whole number (amounts in minor units, e.g. cents: 990 for 9.90)."))
        value = int(text)
    if value < low:
        return None, _m(N_("Must be at least %(low)s."), low=low) if low else _m(N_("Must not be negative."))
    if value > high:
        if money:
            return None, _m(N_("Must be at most %(high)s: check the amount (prices are in minor units, e.g. cents)."),
                            high=f"{high:,}")
        return None, _m(N_("Must be at most %(high)s."), high=f"{high:,}")
    return value, None


def validate(values: dict, *, partial: bool = False, installed_addons=None) -> dict:
    """The plan fields of ``values`` checked and converted, or :class:`PlanError` naming every bad
    field. Text (from a form or the command line) and Python values are both accepted. With
    ``partial`` only the fields given are checked (a change); otherwise every required one must be
    there (a new plan). ``installed_addons``: the names a plan may unlock (None: any valid name)."""
    out: dict = {}
    errors: dict[str, tuple] = {}
    if "plan_code" in values or not partial:
        code = str(values.get("plan_code") or "").strip()
        if not CODE_RE.match(code):
            errors["plan_code"] = _m(N_("Use 1-40 lowercase letters, digits and hyphens, starting with a letter or "
                                        "digit."))
        out["plan_code"] = code
    if "name" in values or not partial:
        name = " ".join(str(values.get("name") or "").split())
        if not 1 <= len(name) <= 80:
            errors["name"] = _m(N_("Enter a name of 1 to 80 characters."))
        out["name"] = name
    if "currency" in values or not partial:
        currency = str(values.get("currency") or "").strip().upper()
        if currency not in currencies():
            errors["currency"] = _m(N_("Enter an ISO 4217 currency code such as EUR, USD or GBP."))
        out["currency"] = currency
    for field, (low, high, optional) in NUMBERS.items():
        if field not in values and (partial or optional or field in ("trial_days", "sort_order")):
            continue
        value, error = _integer(values.get(field), low, high, optional, high == MAX_PRICE)
        if error:
            errors[field] = error
        out[field] = value
    if "addons" in values:
        raw = values["addons"]
        names = [a.strip() for a in (raw.split(",") if isinstance(raw, str) else raw or []) if a.strip()]
        bad = [a for a in names if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", a)
               or (installed_addons is not None and a not in installed_addons)]
        if bad:
            errors["addons"] = _m(N_("Not an installed addon: %(names)s."), names=", ".join(sorted(bad))[:200])
        out["addons"] = sorted(set(names))
    if "public" in values:
        out["public"] = str(values["public"]).lower() in ("1", "true", "yes", "on")
    if errors:
        raise PlanError(errors)
    return out


_PUBLIC_TTL = 30.0  # seconds another process's plan change may take to show on the Pricing and sign-up pages
_public_cache: tuple[float, list[PlanVersion]] | None = None


def public_cached() -> list[PlanVersion]:
    """The plans on the Pricing page and the sign-up form, read at most every 30 s per process (their
    templates are rendered on the event loop; a change made in this process shows at once)."""
    global _public_cache
    import time

    now = time.monotonic()
    if _public_cache is None or now - _public_cache[0] > _PUBLIC_TTL:
        with connection():
            _public_cache = (now, all_current(only_public=True))
    return _public_cache[1]


def _forget_public() -> None:
    global _public_cache
    _public_cache = None


def versions(plan_code: str | None = None, db=app_db) -> list[PlanVersion]:
    """Every version (current and retired), newest first per plan (inside an open connection)."""
    where, params = ("", ()) if plan_code is None else (" WHERE plan_code = %s", (plan_code,))
    return [_row(r) for r in db.execute_sql(SELECT + where + " ORDER BY sort_order, plan_code, version DESC",
                                            params)]


def _insert(values: dict, version: int, db=app_db) -> PlanVersion:
    columns = ("plan_code", "version", "name", "currency", "monthly_price", "yearly_price", "included_segments",
               "max_devices", "max_members", "api_per_minute", "overage_per_1000", "trial_days", "addons",
               "public", "sort_order")
    row = dict(values, version=version)
    new_id = db.execute_sql(
        f"INSERT INTO public.billing_plan_versions ({', '.join(columns)}) VALUES "
        f"({', '.join(['%s'] * len(columns))}) RETURNING id", [row[c] for c in columns]).fetchone()[0]
    return by_id(new_id, db)


def _audit(platform, action: str, plan: PlanVersion, actor: str, actor_name: str, **details) -> None:
    emit(platform, AuditEvent(action, actor=actor, actor_name=actor_name, target=f"plan:{plan.plan_code}",
                              details={"version": plan.version, "version_id": plan.id, **details}))


def create(platform, values: dict, *, actor: str, actor_name: str = "") -> PlanVersion:
    """A new plan (version 1) from ``values``; :class:`PlanError` when a field is wrong or the code is
    taken. Audited as ``billing.plan_created`` in the same transaction."""
    clean = validate(values, installed_addons=_addon_names(platform))
    clean.setdefault("addons", [])
    clean.setdefault("public", True)
    clean = {**{f: None for f in ("max_devices", "max_members", "api_per_minute", "overage_per_1000")},
             "trial_days": 0, "sort_order": 0, **clean}
    with connection():
        with app_db.atomic():
            app_db.execute_sql("LOCK TABLE public.billing_plan_versions IN SHARE ROW EXCLUSIVE MODE")
            if app_db.execute_sql("SELECT 1 FROM public.billing_plan_versions WHERE plan_code = %s",
                                  (clean["plan_code"],)).fetchone():
                raise PlanError({"plan_code": _m(N_("A plan %(code)s exists already: change it instead."),
                                                 code=clean["plan_code"])})
            plan = _insert(clean, 1)
            _audit(platform, "billing.plan_created", plan, actor, actor_name,
                   terms={t: _comparable(getattr(plan, t)) for t in TERMS})
    _forget_public()
    return plan


def update(platform, plan_code: str, values: dict, *, actor: str, actor_name: str = "") -> PlanVersion:
    """Change a plan. A changed term (price, currency, limit, trial, addons) makes a new version and
    retires the current one: subscriptions on it keep it until they renew. Name, visibility and order
    change the current version in place. :class:`PlanError` when a field is wrong or there is no such
    current plan; nothing changes then. Audited as ``billing.plan_changed``."""
    values = {k: v for k, v in values.items() if k in TERMS + PRESENTATION}
    clean = validate(values, partial=True, installed_addons=_addon_names(platform))
    with connection():
        with app_db.atomic():
            row = app_db.execute_sql(SELECT + " WHERE plan_code = %s AND retired_at IS NULL FOR UPDATE",
                                     (plan_code,)).fetchone()
            if row is None:
                raise PlanError({"plan_code": _m(N_("There is no current plan %(code)s."), code=str(plan_code)[:40])})
            old = _row(row)
            terms = {t: v for t, v in clean.items() if t in TERMS and _comparable(v) != _comparable(getattr(old, t))}
            shown = {f: v for f, v in clean.items() if f in PRESENTATION and v != getattr(old, f)}
            if not terms and not shown:
                return old
            if terms:
                app_db.execute_sql("UPDATE public.billing_plan_versions SET retired_at = now() WHERE id = %s",
                                   (old.id,))
                base = {c: getattr(old, c) for c in COLUMNS if c not in ("id", "version", "created_at", "retired_at")}
                base["addons"] = list(old.addons)
                plan = _insert({**base, **terms, **shown}, old.version + 1)
            else:
                sets = ", ".join(f"{f} = %s" for f in shown)
                app_db.execute_sql(f"UPDATE public.billing_plan_versions SET {sets} WHERE id = %s",
                                   [*shown.values(), old.id])
                plan = by_id(old.id)
            _audit(platform, "billing.plan_changed", plan, actor, actor_name, previous_version=old.version,
                   changed={k: _comparable(v) for k, v in {**terms, **shown}.items()},
                   new_version=bool(terms))
    _forget_public()
    return plan


def retire(platform, plan_code: str, *, actor: str, actor_name: str = "") -> PlanVersion:
    """Stop selling a plan: its current version is retired and no version replaces it. Subscriptions
    on it keep it (they renew on the version they have). The default plan cannot be retired: a new
    workspace needs it. Audited as ``billing.plan_retired``."""
    if plan_code == DEFAULT_PLAN:
        raise PlanError({"plan_code": _m(N_("The %(code)s plan is what new workspaces get; change it instead."),
                                         code=DEFAULT_PLAN)})
    with connection():
        with app_db.atomic():
            row = app_db.execute_sql("UPDATE public.billing_plan_versions SET retired_at = now() WHERE plan_code = %s "
                                     "AND retired_at IS NULL RETURNING id", (plan_code,)).fetchone()
            if row is None:
                raise PlanError({"plan_code": _m(N_("There is no current plan %(code)s."), code=str(plan_code)[:40])})
            plan = by_id(row[0])
            _audit(platform, "billing.plan_retired", plan, actor, actor_name)
    _forget_public()
    return plan


def _comparable(value):
    return list(value) if isinstance(value, (tuple, list)) else value


def _addon_names(platform):
    registry = getattr(platform, "registry", None)
    return None if registry is None else frozenset(registry.names())


def format_price(amount: int, currency: str, locale: str = "en") -> str:
    """``amount`` minor units of ``currency`` for people, in ``locale`` (``990 EUR`` -> ``€9.90``)."""
    try:
        return format_currency(Decimal(amount).scaleb(-get_currency_precision(currency)), currency,
                               locale=locale.replace("-", "_"))
    except Exception:  # an unknown locale: the plain form
        return f"{Decimal(amount).scaleb(-get_currency_precision(currency))} {currency}"
