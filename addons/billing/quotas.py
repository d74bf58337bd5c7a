"""Quotas: what a workspace's plan allows, answered where the work is asked for.

* **Segments** (``included_segments``): on a hard-stop plan (``overage_per_1000`` NULL) a send
  beyond the included segments is refused *at submit* with ``402`` problem+json naming the limit,
  the usage and where to upgrade (``/billing``); nothing of it is stored. On other plans it is
  accepted and the overage accrues (:mod:`addons.billing.metering` counts it).
* **Status**: a suspended (unpaid) or cancelled workspace signs in, reads, exports and pays, but
  every send is refused with ``402`` saying why and what to do.
* **Devices and members** (``max_devices``, ``max_members``): pairing a new phone (making its code,
  and spending it) and inviting a member are refused with ``402`` of the same shape (kernel hook
  ``smsgw_limit_check``, serialized per workspace by :func:`core.limits.check`).
* **API rate** (``api_per_minute``): ``429`` with ``Retry-After`` and the IETF draft's
  ``RateLimit-Limit`` / ``RateLimit-Remaining`` / ``RateLimit-Reset`` / ``RateLimit-Policy``
  headers (on every counted answer, not only the refusal). Counted: requests under ``/api/`` and
  ``/3rdparty/`` made with a workspace credential other than a phone's (phones hold long polls and
  report; the dashboard's own calls with a browser session are not API use either). Counted **in
  each web process**, in fixed windows of 60 s per workspace: with P server processes behind a load
  balancer a workspace gets up to P x its limit per minute (spread evenly, about its limit per
  process). No database work on the request: a workspace not cached yet is loaded in the background,
  and the requests before it is are not counted.
* **Warnings** at 80 % and 100 % of the included segments: a banner on every dashboard page (the
  ``page_notices`` slot) while it holds, and one e-mail to the workspace's owner per level and
  period, recorded in ``public.billing_quota_notices`` so a restart never sends it again.

A workspace without a subscription is on the plan ``SMSGW_BILLING_DEFAULT_PLAN`` (``free``; empty:
no limits) for the current UTC calendar month.

**No database round trip per send.** Each web process caches, per workspace, its plan and
subscription (invalidated by ``NOTIFY smsgw_billing_changed``, which a trigger on the plan and
subscription tables sends at commit, whoever changes them) and its usage: the exact figure read
at most ``SMSGW_BILLING_REFRESH_SECONDS`` ago plus what this process let through since. A send whose
workspace stays at least ``SMSGW_BILLING_EXACT_MARGIN`` segments below its limit by that estimate
passes without a statement (the usual case, and every send on a plan with overage).

**Exact at the boundary.** Closer than the margin, a send takes the exact path inside its submit
transaction: one statement (``billing_usage(..., lock)``) takes a per-workspace transaction-level
advisory lock and sums the period's usage in a fresh snapshot, so sends near the limit are
serialized and each sees every send committed before it; the requests of a group are then let
through in order while they fit, the rest refused. Sends this process let through on the fast path
and not committed yet are added to that sum (each is counted in flight until its transaction ends:
:func:`core.db.after_transaction`). Entering the margin tells the other processes (the same NOTIFY,
``near:<id>``), which then take the exact path as well. With several processes the guarantee holds as long as the
other processes together let through fewer than the margin's segments on their fast path between
two of this process's exact reads; with one process it always holds.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field

from core.clock import utcnow
from core.datamap import NO_PERSONAL_DATA, Table
from core.db import (after_transaction, app_db, as_serving_role, connection, current_tenant, executor, run_sync,
                     tenant_transaction)
from core.i18n import N_
from core.web.problem import Problem

from . import metering, plans, subscriptions

log = logging.getLogger(__name__)

MODELS = [Table("billing_quota_notices", "public", NO_PERSONAL_DATA)]  # levels and counts, no addresses
CHANNEL = "smsgw_billing_changed"
LEVELS = (80, 100)
RATE_WINDOW = 60
RATE_PATHS = ("/api/", "/3rdparty/")
LOCK_SPACE = 0x42494C4C  # "BILL": the advisory lock key's high half; the workspace id is the low half

_platform = None


@dataclass
class View:
    """One workspace's limits and usage as this process knows them."""

    tenant_id: int
    slug: str
    plan: plans.PlanVersion | None  # None: no limits
    status: str | None  # None: no subscription
    period_start: dt.datetime
    period_end: dt.datetime
    loaded: float
    used: int | None = None  # exact usage of the period, read at ``read_at``
    read_at: float = 0.0
    local: int = 0  # segments this process let through since that read
    near: bool = False  # within the margin (or another process said so): exact path
    queued: set = field(default_factory=set)  # warning levels handed to the notice sender
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def estimate(self) -> int:
        return (self.used or 0) + self.local

    @property
    def hard_stop(self) -> bool:
        return self.plan is not None and self.plan.hard_stop


class Cache:
    """Each workspace's :class:`View`, dropped by NOTIFY when its plan or subscription changes.

    A view read from the catalogue is kept only if no change was announced while it was read:
    :meth:`mark` before the read, :meth:`put` with that mark after it. Otherwise a read that began
    before a change and ended after its NOTIFY would keep the old plan until the next change."""

    def __init__(self):
        self._views: dict[int, View] = {}
        self._changes: dict[int, int] = {}  # tenant id -> changes announced for it
        self._all = 0  # changes announced for every workspace (or a reconnect)
        self._lock = threading.Lock()
        # Segments this process let through without the lock, not committed yet, per workspace. Kept
        # apart from the views: a view forgotten (a plan change's NOTIFY) while such sends are in
        # flight must not take them out of the next view's exact sums.
        self._inflight: dict[int, int] = {}
        self._inflight_lock = threading.Lock()

    def inflight(self, tenant_id: int) -> int:
        return self._inflight.get(tenant_id, 0)

    def add_inflight(self, tenant_id: int, n: int) -> None:
        with self._inflight_lock:
            left = self._inflight.get(tenant_id, 0) + n
            if left:
                self._inflight[tenant_id] = left
            else:
                self._inflight.pop(tenant_id, None)

    def mark(self, tenant_id: int) -> tuple[int, int]:
        return self._all, self._changes.get(tenant_id, 0)

    def forget(self, payload: str | None) -> None:
        """A NOTIFY: ``*`` or ``None`` (a reconnect) forgets every workspace, a number the one named;
        ``near:<id>``: that workspace came within the margin of its limit (its view stays, with what
        this process let through lately, and takes the exact path from now on)."""
        with self._lock:
            if not payload or payload == "*":
                self._views.clear()
                self._all += 1
            elif payload.isdigit():
                tenant_id = int(payload)
                self._views.pop(tenant_id, None)
                if len(self._changes) > 100_000:
                    self._changes.clear()
                    self._all += 1  # every mark taken before is stale now
                self._changes[tenant_id] = self._changes.get(tenant_id, 0) + 1
            elif payload.startswith("near:") and payload[5:].isdigit():
                view = self._views.get(int(payload[5:]))
                if view is not None:
                    view.near = True

    def get(self, tenant_id: int) -> View | None:
        return self._views.get(tenant_id)

    def put(self, view: View, mark: tuple[int, int] | None = None) -> View:
        """Keep ``view`` (read after ``mark`` was taken) unless a change was announced since."""
        with self._lock:
            if mark is not None and mark != (self._all, self._changes.get(view.tenant_id, 0)):
                return view  # used for this request only; the next one reads the catalogue again
            if len(self._views) > 100_000:
                self._views.clear()
            return self._views.setdefault(view.tenant_id, view)


cache = Cache()
_pending_notices: dict[int, object] = {}  # tenant id -> TenantInfo, for the notice sender
_rates: dict[int, list] = {}  # tenant id -> [window start (monotonic), requests]


def configure(platform) -> None:
    global _platform
    _platform = platform


def _settings():
    return _platform.settings


def _calendar_month(now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    start = now.astimezone(dt.timezone.utc).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return start, (start + dt.timedelta(days=32)).replace(day=1)


def _period(sub, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The subscription's current period; one not renewed yet rolls on by its own length."""
    if sub is None:
        return _calendar_month(now)
    start, end = sub.period_start, sub.period_end
    while end <= now:
        start, end = end, end + (end - start)
    return start, end


def _read_plan(tenant_id: int):
    """``(plan, subscription)`` from the catalogue (inside an open connection, not as a tenant)."""
    sub = subscriptions.get(tenant_id)
    if sub is not None:
        return sub.plan, sub
    code = _settings().billing_default_plan
    return (plans.current(code) if code else None), None


def view_of(tenant) -> View:
    """The workspace's cached view; loaded from the catalogue on a miss (inside the tenant's
    transaction: as the serving role for that one read; outside: on a pooled connection)."""
    view = cache.get(tenant.id)
    if view is not None and view.period_end > utcnow():
        return view
    if view is not None:  # its period ended: the next one (a renewal also tells us by NOTIFY)
        cache.forget(str(tenant.id))
    mark = cache.mark(tenant.id)
    if app_db.in_transaction() and current_tenant.get() is not None:
        with as_serving_role():
            plan, sub = _read_plan(tenant.id)
    else:
        with connection():
            plan, sub = _read_plan(tenant.id)
    start, end = _period(sub, utcnow())
    return cache.put(View(tenant.id, tenant.slug, plan, sub.status if sub else None, start, end, time.monotonic()),
                     mark)


# -- answers ---------------------------------------------------------------------------------------

def billing_url(slug: str) -> str:
    return f"{_platform.settings.public_url(slug)}/billing"


def _period_text(view: View) -> str:
    return f"{view.period_start:%Y-%m-%d %H:%M} to {view.period_end:%Y-%m-%d %H:%M} UTC"


def quota_refusal(view: View, used: int, requested: int) -> Problem:
    plan = view.plan
    return Problem(
        402, "quota-exceeded",
        N_("This send needs %(requested)s segments, but the %(name)s plan includes "
           "%(included_segments)s segments from %(period)s and %(used)s are used, so nothing was sent. "
           "Upgrade to a plan with more segments (or one that bills overage) at %(url)s, or wait "
           "for the next period on %(period_end)s."),
        title=N_("Plan limit reached"), limit="included_segments", plan=plan.plan_code,
        included=plan.included_segments, used=used, requested=requested, period_start=view.period_start.isoformat(),
        period_end=view.period_end.isoformat(), upgrade_url=billing_url(view.slug),
        args={"requested": requested, "name": plan.name, "included_segments": plan.included_segments,
              "period": _period_text(view), "used": used, "url": billing_url(view.slug),
              "period_end": format(view.period_end, '%Y-%m-%d')})


def status_refusal(view: View) -> Problem:
    if view.status == "cancelled":
        detail = N_("The workspace %(slug)s cannot send messages: its subscription is cancelled. Nothing was "
                    "sent; choose a plan at %(url)s to send again. You can still sign in, read and export "
                    "everything.")
    else:
        detail = N_("The workspace %(slug)s cannot send messages: its subscription is suspended for an unpaid "
                    "invoice. Nothing was sent; pay the open invoice at %(url)s; sending resumes as soon as it "
                    "is paid. You can still sign in, read and export everything.")
    return Problem(402, f"subscription-{view.status}", detail,
                   title=N_("Sending is stopped"), limit="subscription_status", status_value=view.status,
                   upgrade_url=billing_url(view.slug), args={"slug": view.slug, "url": billing_url(view.slug)})


def limit_refusal(view: View, resource: str, limit: int, current: int) -> Problem:
    detail = {"device": N_("The %(name)s plan allows %(limit)s phones, and this workspace has %(current)s. "
                           "Nothing was added. Upgrade at %(url)s, or remove one first."),
              "member": N_("The %(name)s plan allows %(limit)s members, and this workspace has %(current)s. "
                           "Nothing was added. Upgrade at %(url)s, or remove one first.")}[resource]
    return Problem(402, "plan-limit", detail,
                   title=N_("Plan limit reached"), limit=f"max_{resource}s", plan=view.plan.plan_code,
                   allowed=limit, current=current, upgrade_url=billing_url(view.slug),
                   args={"name": view.plan.name, "limit": limit, "current": current, "url": billing_url(view.slug)})


# -- sends -----------------------------------------------------------------------------------------

def messages_submitting(tenant, segments: list[int]) -> list | None:
    """``smsgw_messages_submitting``: inside the submit transaction (see the module's docstring)."""
    view = view_of(tenant)
    if view.status in ("suspended", "cancelled"):
        refusal = status_refusal(view)
        return [refusal] * len(segments)
    if view.plan is None:
        return None
    settings = _settings()
    total = sum(segments)
    included = view.plan.included_segments
    margin = settings.billing_exact_margin
    with view.lock:
        now = time.monotonic()
        fresh = view.used is not None and now - view.read_at < settings.billing_refresh_seconds
        if fresh and (not view.hard_stop or (not view.near and view.estimate + total <= included - margin)):
            return _let_through(tenant, view, total)
        if not fresh:  # re-read what is committed; this process's sends still in flight are on top
            view.used, view.local, view.read_at = _exact(view, None) + cache.inflight(view.tenant_id), 0, now
            if not view.hard_stop or (not view.near and view.estimate + total <= included - margin):
                return _let_through(tenant, view, total)
        was_near = view.near
        # Within the margin: serialized with every other send of the workspace near its limit until this
        # transaction ends; what this process let through without the lock and is not committed yet is
        # not in the sum, so it is added.
        base = _exact(view, LOCK_SPACE << 32 | tenant.id) + cache.inflight(tenant.id)
        refusals, granted = [], 0
        for n in segments:
            if n and base + granted + n > included:
                refusals.append(quota_refusal(view, base + granted, n))
            else:
                granted += n
                refusals.append(None)
        view.used, view.local, view.read_at = base, granted, now
        view.near = included - (base + granted) < margin
        if view.near and not was_near:  # the other processes: take the exact path too
            app_db.execute_sql("SELECT pg_notify(%s, %s)", (CHANNEL, f"near:{tenant.id}"))
        _note_level(tenant, view)
        return refusals if any(refusals) else None


def _let_through(tenant, view: View, total: int) -> None:
    """A send passes without the lock (with ``view.lock`` held): counted as in flight until its
    transaction ends (:func:`core.db.after_transaction`)."""
    view.local += total
    if view.hard_stop and total:
        cache.add_inflight(view.tenant_id, total)
        after_transaction(lambda _committed: cache.add_inflight(view.tenant_id, -total))
    _note_level(tenant, view)
    return None


def _exact(view: View, lock: int | None) -> int:
    return metering.usage_here(view.period_start, view.period_end, lock)


def _note_level(tenant, view: View) -> None:
    """Hand the workspace to the notice sender when it reached a warning level not handed yet."""
    included = view.plan.included_segments if view.plan else 0
    if included <= 0:
        return
    for level in LEVELS:
        if level not in view.queued and view.estimate * 100 >= level * included:
            view.queued.add(level)
            _pending_notices[tenant.id] = tenant


# -- warnings: the e-mail (once per level and period) and the banner -------------------------------

def send_pending_notices() -> int:
    """Off the request path (every second in each web process): for each workspace that reached a
    level, record and mail the levels it has reached and not been told about. Returns mails sent."""
    sent = 0
    for tenant_id in list(_pending_notices):
        tenant = _pending_notices.pop(tenant_id, None)
        if tenant is None:
            continue
        try:
            sent += send_notices(tenant)
        except Exception:  # a warning, not the work: the next crossing (or restart) tries again
            log.exception("billing: could not send the usage warnings of %s", tenant.slug)
            view = cache.get(tenant_id)
            if view is not None:
                view.queued.clear()
    return sent


def send_notices(tenant) -> int:
    """Record and mail each warning level ``tenant`` reached in its period and was not told of."""
    from core.users import ROLE_CUSTOMER, User

    view = view_of(tenant)
    if view.plan is None or view.plan.included_segments <= 0:
        return 0
    included = view.plan.included_segments
    with tenant_transaction(tenant.ref):
        used = metering.usage_here(view.period_start, view.period_end)
        owners = [(u.email, u.language) for u in
                  User.select(User.email, User.language).where((User.role == ROLE_CUSTOMER) & User.is_active)]
    sent = 0
    for level in LEVELS:
        if used * 100 < level * included:
            view.queued.discard(level)  # not yet: a later send hands it over again
            continue
        with connection(), app_db.atomic():
            fresh = app_db.execute_sql(
                "INSERT INTO public.billing_quota_notices (tenant_id, period_start, level, used, included, sent_to) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                (tenant.id, view.period_start, level, used, included, len(owners))).fetchone()
            if not fresh:
                continue
            for email, language in owners:  # in the transaction: a mail that fails leaves no record, and is retried
                _platform.send_mail(email, lambda _, ngettext, fmt: _notice_mail(_, ngettext, fmt, view, level, used),
                                    language=language, tenant=tenant)
                sent += 1
    return sent


def _notice_mail(_, ngettext, fmt, view: View, level: int, used: int) -> tuple[str, str]:
    """A usage warning's ``(subject, body)`` in the language of ``_``/``ngettext``/``fmt``."""
    plan = view.plan
    included = plan.included_segments
    if level >= 100:
        subject = ngettext("%(slug)s: the %(count)s included segment is used",
                           "%(slug)s: all %(count)s included segments are used",
                           included, slug=view.slug, count=fmt.number(included))
        after = (_("New sends are refused until the next period or an upgrade.") if plan.hard_stop else
                 _("Further segments are billed as overage."))
    else:
        subject = _("%(slug)s: %(percent)s of the included segments are used", slug=view.slug,
                    percent=fmt.percent(level / 100))
        after = (_("When all are used, new sends are refused until the next period or an upgrade.") if plan.hard_stop
                 else _("Segments beyond the included ones are billed as overage."))
    body = (ngettext("Your workspace %(slug)s has used %(used)s of the %(included)s segment its %(plan)s plan "
                     "includes from %(start)s to %(end)s.",
                     "Your workspace %(slug)s has used %(used)s of the %(included)s segments its %(plan)s plan "
                     "includes from %(start)s to %(end)s.", included, slug=view.slug, used=fmt.number(used),
                     included=fmt.number(included), plan=plan.name,
                     start=fmt.datetime(view.period_start, "short", tzinfo=dt.timezone.utc) + " UTC",
                     end=fmt.datetime(view.period_end, "short", tzinfo=dt.timezone.utc) + " UTC")
            + f"\n\n{after}\n\n" + _("See your usage or change your plan:") + f" {billing_url(view.slug)}\n")
    return subject, body


def notice_context(handler) -> dict | None:
    """The dashboard banner (``page_notices``) for a signed-in member, from the cached view."""
    tenant, principal = handler.tenant, handler.principal
    if tenant is None or principal is None or principal.tenant != tenant.slug or principal.kind == "device":
        return None
    view = view_of(tenant)
    _ = handler.gettext()[0]
    if view.status in ("suspended", "cancelled"):
        text = (_("Sending is stopped: this workspace's subscription is cancelled. Choose a plan to send again.")
                if view.status == "cancelled" else
                _("Sending is stopped: this workspace's subscription is suspended for an unpaid invoice. Pay it to "
                  "send again; you can still read and export everything."))
        return {"page_notices": ["billing/quota_notice.html"],
                "quota_notice": {"kind": "error", "text": text, "id": "quota-notice", "link": "/billing",
                                 "link_label": _("Open billing")}}
    if view.plan is None or view.plan.included_segments <= 0:
        return None
    if view.used is None or time.monotonic() - view.read_at >= _settings().billing_refresh_seconds:
        with tenant_transaction(tenant.ref):
            used = metering.usage_here(view.period_start, view.period_end)
        with view.lock:
            view.used, view.local, view.read_at = used + cache.inflight(view.tenant_id), 0, time.monotonic()
    used, included = view.estimate, view.plan.included_segments
    if used * 100 < LEVELS[0] * included:
        return None
    percent = min(100, used * 100 // included)
    if used >= included:
        text = (_("All %(included)s segments of your plan are used for this period: new sends are refused until "
                  "%(end)s UTC or an upgrade.") if view.plan.hard_stop else
                _("All %(included)s segments of your plan are used for this period: further segments are billed "
                  "as overage.")) % {"included": included, "end": f"{view.period_end:%Y-%m-%d %H:%M}"}
    else:
        text = _("You have used %(percent)s %% of your plan's %(included)s segments (%(used)s) for this period.") % {
            "percent": percent, "included": included, "used": used}
    return {"page_notices": ["billing/quota_notice.html"],
            "quota_notice": {"kind": "error" if used >= included else "warning", "text": text,
                             "id": "quota-notice", "link": "/billing", "link_label": _("See plans")}}


def overview_part(tenant, principal, gettext):
    """The Overview's *Needs attention*: sending stopped, or the plan's segments used from 80 %
    (inside the Overview's transaction: the cached view, or one statement for the exact usage)."""
    from core.web.overview import Attention, OverviewPart

    if principal.kind == "device":
        return None
    view = view_of(tenant)
    if view.status in ("suspended", "cancelled"):
        return OverviewPart(attention=[Attention(gettext("Sending is stopped: see your subscription."), "/billing",
                                                 "error")])
    if view.plan is None or view.plan.included_segments <= 0:
        return None
    used = view.estimate if view.used is not None else metering.usage_here(view.period_start, view.period_end)
    included = view.plan.included_segments
    if used * 100 < LEVELS[0] * included:
        return None
    text = gettext("You have used %(percent)s %% of your plan's %(included)s segments (%(used)s) for this period.") % {
        "percent": min(100, used * 100 // included), "included": included, "used": used}
    return OverviewPart(attention=[Attention(text, "/billing", "error" if used >= included else "warning")])


# -- devices and members ---------------------------------------------------------------------------

def limit_check(tenant, resource: str, current: int) -> Problem | None:
    """``smsgw_limit_check``: the plan's ``max_devices`` / ``max_members``."""
    view = view_of(tenant)
    if view.plan is None:
        return None
    limit = {"device": view.plan.max_devices, "member": view.plan.max_members}.get(resource)
    if limit is not None and current >= limit:
        return limit_refusal(view, resource, limit, current)
    return None


# -- the API rate -----------------------------------------------------------------------------------

def request_check(tenant, handler) -> None:
    """``smsgw_request_check``: the plan's API requests per minute, counted in this process."""
    principal = handler.principal
    if (principal is None or principal.kind == "device" or principal.via == "session"
            or not handler.request.path.startswith(RATE_PATHS)):
        return
    view = cache.get(tenant.id)
    if view is None:  # on the IOLoop: never wait for the database; count from when it is loaded
        _load_soon(tenant)
        return
    limit = view.plan.api_per_minute if view.plan else None
    if not limit:
        return
    now = time.monotonic()
    window = _rates.get(tenant.id)
    if window is None or now - window[0] >= RATE_WINDOW:
        window = _rates[tenant.id] = [now, 0]
    window[1] += 1
    reset = max(1, int(window[0] + RATE_WINDOW - now + 0.999))
    headers = {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(max(0, limit - window[1])),
               "RateLimit-Reset": str(reset), "RateLimit-Policy": f"{limit};w={RATE_WINDOW}"}
    if window[1] > limit:
        raise Problem(429, "rate-limited",
                      N_("The %(name)s plan allows %(limit)s API requests per minute; try again in "
                         "%(reset)s seconds, or upgrade at %(url)s."),
                      headers=dict(headers, **{"Retry-After": str(reset)}), limit="api_per_minute", allowed=limit,
                      upgrade_url=billing_url(tenant.slug),
                      args={"name": view.plan.name, "limit": limit, "reset": reset, "url": billing_url(tenant.slug)})
    for name, value in headers.items():
        handler.set_header(name, value)


_loading: set[int] = set()


def _load_soon(tenant) -> None:
    """Load a workspace's view off the IOLoop (the requests before it is loaded are not counted)."""
    if tenant.id in _loading:
        return
    _loading.add(tenant.id)

    def load():
        try:
            view_of(tenant)
        except Exception:
            log.exception("billing: could not load the plan of %s", tenant.slug)
        finally:
            _loading.discard(tenant.id)

    executor().submit(load)


# -- wiring (hooks.py collects) ---------------------------------------------------------------------

def template_context(handler) -> dict | None:
    try:
        return notice_context(handler)
    except Exception:  # a database hiccup must not take every page down with it
        log.exception("billing: could not compute the usage banner")
        return None


def startup(app) -> None:
    """Per web process: forget cached plans on NOTIFY; send warnings every second, off the requests."""
    import tornado.ioloop

    platform = app.platform
    if platform.listener is not None:
        platform.listener.subscribe(CHANNEL, cache.forget)
    busy = False

    async def notices():
        nonlocal busy
        if busy or not _pending_notices:
            return
        busy = True
        try:
            await run_sync(send_pending_notices)
        finally:
            busy = False

    tornado.ioloop.PeriodicCallback(notices, 1000).start()
