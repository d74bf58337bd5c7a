"""Phone health: the Overview's phones, and alerts when a phone needs a person.

An alert opens when a phone with waiting work goes offline (the offline sweep, a due job armed
when the phone went quiet) or reports a low battery (a heartbeat), and ends when the phone is
back (the contact that brings it online) or charged. Each alert is one row of ``device_alerts``;
nothing here runs on a poll that changes nothing: only the transactions that already change a
phone's state (going offline, coming back, a heartbeat with a battery level) touch the table.

Members hear of it as each chose (``device_alert_prefs``, both on by default, at
``/account/alerts``): a banner on every dashboard page while an alert is open, and e-mail, once
when it starts and once when it ends (if they were told it started). The e-mails go from a due
job (:data:`NOTICE_JOB`) armed by whatever opened or ended an alert, so no request waits for a
mail server and a mail is never sent for work that rolled back.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from peewee import BigAutoField, BigIntegerField, BooleanField, DateTimeField, IntegerField, TextField

from core import due
from core.clock import utcnow
from core.datamap import NO_PERSONAL_DATA, PersonalData
from core.db import app_db, tenant_transaction
from core.i18n import N_
from core.users import TenantModel
from core.web.base import PageHandler
from core.web.overview import Attention, FirstStep, OverviewPart

from . import metrics, service
from .models import Device

log = logging.getLogger(__name__)

BATTERY_LOW = 15  # % and not charging: an alert
BATTERY_OK = 25  # % or charging: the alert ends (apart from BATTERY_LOW, so a level near it does not flap)
NOTICE_JOB = "devices.alerts"
OVERVIEW_DEVICES = 50  # phones listed on the Overview (the Devices page lists all)


class DeviceAlert(TenantModel):
    id = BigAutoField()
    device_id = BigIntegerField()
    kind = TextField()
    started_at = DateTimeField(default=utcnow)
    waiting = IntegerField(default=0)
    battery_level = IntegerField(null=True)
    ended_at = DateTimeField(null=True)
    notified_at = DateTimeField(null=True)
    recovery_notified_at = DateTimeField(null=True)

    class Meta:
        table_name = "device_alerts"
        privacy = NO_PERSONAL_DATA


class DeviceAlertPref(TenantModel):
    user_id = BigIntegerField(primary_key=True)
    email = BooleanField(default=True)
    banner = BooleanField(default=True)
    updated_at = DateTimeField(default=utcnow)

    class Meta:
        table_name = "device_alert_prefs"
        privacy = PersonalData(subjects={"user": "user_id"}, export=("email", "banner", "updated_at"),
                               erase="delete")


MODELS = [DeviceAlert, DeviceAlertPref]

_platform = None


def configure(platform) -> None:
    global _platform
    _platform = platform


online_now = service.online_now


def waiting_work(registry, tenant) -> dict[int, int]:
    """``{device_id: n}`` of work only that phone may take, and ``{0: n}`` of work any phone may
    (``smsgw_device_waiting_work``, summed over the addons)."""
    out: dict[int, int] = {}
    for result in registry.hook.smsgw_device_waiting_work(tenant=tenant):
        for device_id, n in (result or {}).items():
            out[device_id] = out.get(device_id, 0) + int(n)
    return out


def waiting_for(device_id: int, waiting: dict[int, int], another_online: bool) -> int:
    """What waits because this phone is away: its own work, and anyone's if no other phone is online."""
    return waiting.get(device_id, 0) + (0 if another_online else waiting.get(0, 0))


# -- opening and ending alerts (inside the tenant transaction that changed the phone) ------------

def on_offline(platform, tenant, gone: list[Device]) -> int:
    """The sweep marked ``gone`` offline (their work handed back): open an alert for each that
    leaves work waiting. Returns how many were opened."""
    if not gone:
        return 0
    waiting = waiting_work(platform.registry, tenant)
    others = {r[0] for r in app_db.execute_sql(
        "SELECT id FROM devices WHERE online AND enabled AND removed_at IS NULL").fetchall()}
    opened = 0
    for device in gone:
        n = waiting_for(device.id, waiting, bool(others - {device.id}))
        if n <= 0 or device.removed_at is not None or not device.enabled:
            continue
        row = app_db.execute_sql(
            "INSERT INTO device_alerts (device_id, kind, waiting) VALUES (%s, 'offline', %s) "
            "ON CONFLICT (device_id, kind) WHERE ended_at IS NULL DO NOTHING RETURNING id",
            (device.id, n)).fetchone()
        opened += row is not None
    if opened:
        due.arm(NOTICE_JOB, utcnow())
    metrics.count_offline(len(gone), opened)
    return opened


def on_online(device_id: int) -> None:
    """The phone made contact after being offline: its offline alert ends (its notice goes out)."""
    _end(device_id, "offline")


def on_removed(device_id: int) -> None:
    """A removed phone needs nobody any more: its alerts end without a recovery notice."""
    app_db.execute_sql("UPDATE device_alerts SET ended_at = now(), recovery_notified_at = now(), "
                       "notified_at = coalesce(notified_at, now()) WHERE device_id = %s AND ended_at IS NULL",
                       (device_id,))


def note_battery(device_id: int, status: dict) -> None:
    """A heartbeat's battery level: opens the low-battery alert, or ends it once charged."""
    level, charging = status.get("battery_level"), status.get("charging")
    if level is None:
        return
    if level <= BATTERY_LOW and not charging:
        row = app_db.execute_sql(
            "INSERT INTO device_alerts (device_id, kind, battery_level) VALUES (%s, 'battery', %s) "
            "ON CONFLICT (device_id, kind) WHERE ended_at IS NULL DO NOTHING RETURNING id",
            (device_id, level)).fetchone()
        if row is not None:
            due.arm(NOTICE_JOB, utcnow())
    elif level >= BATTERY_OK or charging:
        _end(device_id, "battery")


def _end(device_id: int, kind: str) -> None:
    row = app_db.execute_sql(
        "UPDATE device_alerts SET ended_at = now() WHERE device_id = %s AND kind = %s AND ended_at IS NULL "
        "RETURNING notified_at IS NOT NULL", (device_id, kind)).fetchone()
    if row is not None and row[0]:
        due.arm(NOTICE_JOB, utcnow())


# -- telling the members (the due job) ------------------------------------------------------------

_UNTOLD = ("SELECT a.id, a.kind, d.id, d.name, a.waiting, a.battery_level, a.started_at, a.ended_at, "
           "a.notified_at IS NOT NULL FROM device_alerts a JOIN devices d ON d.id = a.device_id "
           "WHERE a.notified_at IS NULL OR (a.ended_at IS NOT NULL AND a.recovery_notified_at IS NULL) "
           "ORDER BY a.id LIMIT 200")


def notice_run(platform, tenant):
    """The due job: mark what is untold as told and return the mails to send after the commit."""
    rows = app_db.execute_sql(_UNTOLD).fetchall()
    if not rows:
        return None
    mails = []
    base = platform.settings.public_url(tenant.slug)
    for alert_id, kind, device_id, name, waiting, level, started, ended, told in rows:
        link = f"{base}/devices/{device_id}"
        if not told and ended is not None:  # over before anyone was told: nothing to say
            app_db.execute_sql("UPDATE device_alerts SET notified_at = now(), recovery_notified_at = now() "
                               "WHERE id = %s", (alert_id,))
            continue
        if not told:
            app_db.execute_sql("UPDATE device_alerts SET notified_at = now() WHERE id = %s", (alert_id,))
            if kind == "offline":
                mails.append(lambda _, ngettext, fmt, name=name, started=started, waiting=waiting, link=link: (
                    _("%(slug)s: phone “%(name)s” is offline", slug=tenant.slug, name=name),
                    ngettext("The phone “%(name)s” of the workspace %(slug)s has not been in touch since %(since)s "
                             "UTC, and %(num)d message waits for it.",
                             "The phone “%(name)s” of the workspace %(slug)s has not been in touch since %(since)s "
                             "UTC, and %(num)d messages wait for it.", waiting, name=name, slug=tenant.slug,
                             since=fmt.datetime(started, "short", tzinfo=dt.timezone.utc))
                    + "\n\n" + _("Check that the phone is on, connected and that the app runs. We tell you again "
                                  "when it is back.") + f"\n\n{link}\n"))
            else:
                mails.append(lambda _, ngettext, fmt, name=name, level=level, link=link: (
                    _("%(slug)s: phone “%(name)s” battery is low", slug=tenant.slug, name=name),
                    _("The phone “%(name)s” of the workspace %(slug)s reported %(level)s battery and is not "
                      "charging. Plug it in before it stops sending.", name=name, slug=tenant.slug,
                      level=fmt.percent(level / 100)) + f"\n\n{link}\n"))
        else:
            app_db.execute_sql("UPDATE device_alerts SET recovery_notified_at = now() WHERE id = %s", (alert_id,))
            if kind == "offline":
                mails.append(lambda _, ngettext, fmt, name=name, ended=ended, link=link: (
                    _("%(slug)s: phone “%(name)s” is back online", slug=tenant.slug, name=name),
                    _("The phone “%(name)s” of the workspace %(slug)s is back online since %(since)s UTC and takes "
                      "its waiting messages.", name=name, slug=tenant.slug,
                      since=fmt.datetime(ended, "short", tzinfo=dt.timezone.utc)) + f"\n\n{link}\n"))
            else:
                mails.append(lambda _, ngettext, fmt, name=name, link=link: (
                    _("%(slug)s: phone “%(name)s” is charging again", slug=tenant.slug, name=name),
                    _("The battery of the phone “%(name)s” of the workspace %(slug)s is no longer low.", name=name,
                      slug=tenant.slug) + f"\n\n{link}\n"))
    if not mails:
        return None
    to = [(r[0], r[1]) for r in app_db.execute_sql(
        "SELECT u.email, u.language FROM users u LEFT JOIN device_alert_prefs p ON p.user_id = u.id "
        "WHERE u.is_active AND coalesce(p.email, true) ORDER BY u.id").fetchall()]

    def with_footer(compose):
        def composed(_, ngettext, fmt):
            subject, body = compose(_, ngettext, fmt)
            return subject, body + "\n--\n" + _("You get these e-mails as a member of %(slug)s; choose at %(url)s",
                                                 slug=tenant.slug, url=f"{base}/account/alerts") + "\n"
        return composed

    def send():
        for compose in mails:
            for address, language in to:
                try:
                    platform.send_mail(address, with_footer(compose), language=language, tenant=tenant)
                except Exception:  # one address or a mail server hiccup must not stop the others
                    log.exception("could not send a phone alert to %s", address)

    return send


def notice_next_due(tenant=None):
    """Now while something is untold; otherwise ``None`` (nothing armed)."""
    row = app_db.execute_sql(
        "SELECT now() WHERE EXISTS (SELECT 1 FROM device_alerts WHERE notified_at IS NULL "
        "OR (ended_at IS NOT NULL AND recovery_notified_at IS NULL))").fetchone()
    return row[0] if row else None


# -- the dashboard banner (the ``page_notices`` slot) ----------------------------------------------

BANNER_SECONDS = 5.0  # how stale a process's copy of a workspace's open alerts may be
_open: dict[int, tuple[float, list]] = {}
_prefs: dict[tuple[int, int], tuple[float, tuple[bool, bool]]] = {}


def open_alerts(tenant) -> list[dict]:
    """The workspace's open alerts, from a copy at most :data:`BANNER_SECONDS` old."""
    cached = _open.get(tenant.id)
    now = time.monotonic()
    if cached and cached[0] > now:
        return cached[1]
    with tenant_transaction(tenant.ref):
        rows = app_db.execute_sql(
            "SELECT a.kind, d.id, d.name, a.waiting, a.battery_level, a.started_at FROM device_alerts a "
            "JOIN devices d ON d.id = a.device_id WHERE a.ended_at IS NULL AND d.removed_at IS NULL "
            "ORDER BY a.id LIMIT 10").fetchall()
    alerts = [{"kind": r[0], "device_id": r[1], "name": r[2], "waiting": r[3], "battery": r[4], "since": r[5]}
              for r in rows]
    _open[tenant.id] = (now + BANNER_SECONDS, alerts)
    return alerts


def prefs_of(tenant, user_id: int) -> tuple[bool, bool]:
    """``(email, banner)`` of a member (cached in this process a little while)."""
    key = (tenant.id, user_id)
    cached = _prefs.get(key)
    now = time.monotonic()
    if cached and cached[0] > now:
        return cached[1]
    with tenant_transaction(tenant.ref):
        row = app_db.execute_sql("SELECT email, banner FROM device_alert_prefs WHERE user_id = %s",
                                 (user_id,)).fetchone()
    value = (bool(row[0]), bool(row[1])) if row else (True, True)
    _prefs[key] = (now + 30.0, value)
    return value


def banner_context(handler) -> dict | None:
    tenant, principal = handler.tenant, handler.principal
    if (tenant is None or principal is None or principal.tenant != tenant.slug or principal.kind != "user"
            or not principal.can("devices:read")):
        return None
    ctx = {"account_links": [{"label": N_("Phone alerts"), "url": "/account/alerts"}]}
    try:
        if not prefs_of(tenant, principal.id)[1]:
            return ctx
        alerts = open_alerts(tenant)
    except Exception:  # a database hiccup must not take every page down with it
        log.exception("devices: could not read the phone alerts")
        return ctx
    if alerts:
        ctx["page_notices"] = ["devices/alert_notice.html"]
        ctx["device_alerts"] = alerts
    return ctx


# -- the member's choice ---------------------------------------------------------------------------

class AlertPrefsPage(PageHandler):
    """``/account/alerts``: how this member hears of phone alerts."""

    permissions = {"GET": "devices:read", "POST": "devices:read"}

    async def get(self):
        email, banner = await self.run_db(prefs_of, self.tenant, self.principal.id)
        self.render("devices/alert_prefs.html", email=email, banner=banner)

    async def post(self):
        email = self.get_body_argument("email", "") == "1"
        banner = self.get_body_argument("banner", "") == "1"
        user_id = self.principal.id
        await self.in_tenant(lambda: app_db.execute_sql(
            "INSERT INTO device_alert_prefs (user_id, email, banner) VALUES (%s, %s, %s) ON CONFLICT (user_id) "
            "DO UPDATE SET email = excluded.email, banner = excluded.banner, updated_at = now()",
            (user_id, email, banner)))
        _prefs.pop((self.tenant.id, user_id), None)
        self.flash("success", N_("Saved."))
        self.redirect("/account/alerts")


ROUTES = [(r"/account/alerts", AlertPrefsPage)]


# -- the Overview's phones (``smsgw_overview_parts``) ------------------------------------------

def overview_part(tenant, principal, gettext) -> OverviewPart | None:
    """Inside the Overview's transaction: two statements (the phones; the waiting work)."""
    if not principal.can("devices:read"):
        return None
    _ = gettext
    devices = list(Device.select(Device.id, Device.name, Device.enabled, Device.online, Device.last_seen_at,
                                 Device.battery_level, Device.charging, Device.signal)
                   .where(Device.removed_at.is_null()).order_by(Device.id).limit(OVERVIEW_DEVICES))
    waiting = waiting_work(_platform.registry, tenant)
    now = utcnow()
    online = {d.id for d in devices if d.enabled and online_now(d, now)}
    attention = []
    for d in devices:
        if not d.enabled:
            continue
        if d.id not in online:
            n = waiting_for(d.id, waiting, bool(online))
            if n:
                attention.append(Attention(_("Phone “%(name)s” is offline. Messages waiting for it: %(n)s.")
                                           % {"name": d.name, "n": n}, f"/devices/{d.id}", "error"))
        elif d.battery_level is not None and d.battery_level <= BATTERY_LOW and not d.charging:
            attention.append(Attention(_("Phone “%(name)s” has %(level)s %% battery left and is not charging.")
                                       % {"name": d.name, "level": d.battery_level}, f"/devices/{d.id}"))
    if not devices and waiting.get(0):
        attention.append(Attention(_("%(n)s messages wait, and no phone is paired to send them.")
                                   % {"n": waiting[0]}, "/devices/pair", "error"))
    steps = [FirstStep("phone", _("Pair a phone"), bool(devices), "/devices/pair", 10)]
    return OverviewPart("devices/overview_part.html", 10,
                        {"devices": devices, "online": online, "waiting": sum(waiting.values()),
                         "offline": sum(1 for d in devices if d.enabled and d.id not in online)},
                        attention, steps)
