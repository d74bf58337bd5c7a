"""First-party analytics of the public pages: views, referrers, unique visitors, sign-up conversion.

Counted only for browsers whose consent cookie says *analytics* for the cookie policy in force
(:mod:`.consent`), on the base domain's public pages (:data:`PUBLIC_PAGES`), for visitors who are not
signed in as platform admins; nothing is loaded from elsewhere and no request is added: the page's
own request writes its row (``public.analytics_view``, one per view, so counts are exact) before the
page is answered. A row holds the path, the referrer's host (another site) or path (our own site),
the time and the random id of the analytics cookie ``smsgw_analytics`` (set only after consent,
deleted when it is withdrawn; it names no one and is never sent anywhere else). No IP address, no
user agent. A browser whose signed-in member objected to profiling is left out, and its rows are
deleted (:func:`.consent.enforce_objection`). Rows are kept thirteen months (:func:`purge`, nightly).

The platform admin's page ``/admin/analytics`` shows the last 30 days as charts.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from urllib.parse import urlsplit

from core.datamap import NO_PERSONAL_DATA, Table
from core.db import app_db, connection, run_sync
from core.i18n import N_
from core.web.admin_pages import AdminHandler

from . import consent

log = logging.getLogger(__name__)

COOKIE = "smsgw_analytics"
_VISITOR = re.compile(r"[A-Za-z0-9_-]{16}")
# The public pages of the base domain that are counted: landing, sign-up, API docs, privacy policy
# (and pricing, once the platform has one).
PUBLIC_PAGES = frozenset({"/", "/signup", "/api/docs", "/privacy", "/pricing"})
DAYS = 30
TOP = 10
KEEP_DAYS = 395  # thirteen months: rows older than this are deleted every night (purge)

# The visitor id is random, set only after consent, and tied to no account, workspace or address:
# there is nobody an export or an erasure could find it for (an objection deletes a browser's rows).
MODELS = [Table("analytics_view", "public", NO_PERSONAL_DATA), Table("analytics_signup", "public", NO_PERSONAL_DATA)]
ADMIN_LINKS = [{"label": N_("Analytics"), "url": "/admin/analytics"}]


def visitor(handler) -> str | None:
    raw = handler.get_cookie(COOKIE)
    return raw if raw and len(raw) == 16 and _VISITOR.fullmatch(raw) else None


def ensure_cookie(handler) -> str:
    """The browser's analytics id, set now if it has none (only ever called after consent)."""
    found = visitor(handler)
    if found is None:
        found = secrets.token_urlsafe(12)
        handler.set_cookie(COOKIE, found, max_age=consent.MAX_AGE, **consent.cookie_kwargs(handler))
    return found


def clear_cookie(handler) -> None:
    """Withdrawal: the analytics cookie goes (when the browser has one)."""
    if handler.get_cookie(COOKIE) is not None:
        kwargs = consent.cookie_kwargs(handler)
        handler.clear_cookie(COOKIE, path="/", domain=kwargs["domain"])


def forget(visitor_id: str) -> None:
    """Delete everything analytics holds about one browser (inside a connection)."""
    app_db.execute_sql("DELETE FROM public.analytics_view WHERE visitor = %s", (visitor_id,))
    app_db.execute_sql("DELETE FROM public.analytics_signup WHERE visitor = %s", (visitor_id,))


def referrer(handler) -> tuple[str, str]:
    """``(host, path)`` of the page that led here: another site's host only, our own site's path only."""
    raw = handler.request.headers.get("Referer", "")[:2000]
    try:
        parts = urlsplit(raw)
        host = (parts.hostname or "").lower()
    except ValueError:
        return "", ""
    if not host:
        return "", ""
    if host == handler.request.host_name.lower():
        return "", parts.path[:300] or "/"
    return host[:253], ""


def counted(handler) -> bool:
    """Is this answer a view of a public page that analytics counts (consent aside)?"""
    return (handler.tenant is None and handler.request.method == "GET" and handler.get_status() == 200
            and handler.request.path in PUBLIC_PAGES and handler.principal is None)


def page_view(handler) -> None:
    """Record this view (the browser consented to analytics). A failure is logged, never shown."""
    try:
        visitor_id = ensure_cookie(handler)
        host, path = referrer(handler)
        with connection():
            app_db.execute_sql(
                "INSERT INTO public.analytics_view (path, referrer_host, referrer_path, visitor) VALUES (%s, %s, %s, %s)",
                (handler.request.path, host, path, visitor_id))
    except Exception:
        log.exception("could not record a page view")


def signed_up(handler) -> None:
    """``smsgw_signed_up``: a visitor who consented signed up (the conversion of the sign-up page)."""
    chosen = consent.current(handler)
    visitor_id = visitor(handler)
    if chosen is None or chosen.choice != "analytics" or visitor_id is None:
        return
    with connection():
        app_db.execute_sql("INSERT INTO public.analytics_signup (visitor) VALUES (%s)", (visitor_id,))


def purge(keep_days: int = KEEP_DAYS) -> int:
    """Delete views and sign-ups older than ``keep_days``; how many rows went (a nightly task)."""
    with connection():
        gone = app_db.execute_sql("DELETE FROM public.analytics_view WHERE viewed_at < now() - %s * interval '1 day'",
                                  (keep_days,)).rowcount
        gone += app_db.execute_sql("DELETE FROM public.analytics_signup WHERE signed_up_at < now() - %s * "
                                   "interval '1 day'", (keep_days,)).rowcount
    return gone


def tasks(queue) -> None:
    from core.tasks import crontab

    queue.periodic(crontab(hour="3", minute="41"), purge, name="cookies.purge_analytics", per_tenant=False)


# -- figures -------------------------------------------------------------------------------------

def figures(days: int = DAYS, today: dt.date | None = None) -> dict:
    """The admin page's numbers over the last ``days`` days (UTC), today included."""
    today = today or dt.datetime.now(dt.timezone.utc).date()
    first = today - dt.timedelta(days=days - 1)
    since = dt.datetime.combine(first, dt.time(), dt.timezone.utc)
    per_day = {row[0]: (row[1], row[2]) for row in app_db.execute_sql(
        "SELECT (viewed_at AT TIME ZONE 'UTC')::date, count(*), count(DISTINCT visitor) FROM public.analytics_view "
        "WHERE viewed_at >= %s GROUP BY 1", (since,)).fetchall()}
    dates = [first + dt.timedelta(days=i) for i in range(days)]
    pages = app_db.execute_sql(
        "SELECT path, count(*) FROM public.analytics_view WHERE viewed_at >= %s GROUP BY path "
        "ORDER BY count(*) DESC, path LIMIT %s", (since, TOP)).fetchall()
    referrers = app_db.execute_sql(
        "SELECT referrer_host, referrer_path, count(*) FROM public.analytics_view WHERE viewed_at >= %s "
        "AND (referrer_host <> '' OR referrer_path <> '') GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2 LIMIT %s",
        (since, TOP)).fetchall()
    viewed, converted = app_db.execute_sql(
        "WITH s AS (SELECT visitor, min(viewed_at) AS first FROM public.analytics_view "
        "WHERE path = '/signup' AND viewed_at >= %s GROUP BY visitor) "
        "SELECT count(*), count(*) FILTER (WHERE EXISTS (SELECT 1 FROM public.analytics_signup u "
        "WHERE u.visitor = s.visitor AND u.signed_up_at >= s.first)) FROM s", (since,)).fetchone()
    return {
        "labels": [d.isoformat()[5:] for d in dates],
        "views": [per_day.get(d, (0, 0))[0] for d in dates],
        "visitors": [per_day.get(d, (0, 0))[1] for d in dates],
        "pages": [(path, n) for path, n in pages],
        "referrers": [(host or path, n) for host, path, n in referrers],
        "signup_viewed": viewed, "signed_up": converted,
        "conversion": round(100.0 * converted / viewed, 1) if viewed else 0.0,
        "days": days,
    }


class AdminAnalyticsHandler(AdminHandler):
    """``/admin/analytics``: views per day, top pages, top referrers, sign-up conversion."""

    async def get(self):
        def load():
            with connection():
                return figures()

        self.render("cookies/admin_analytics.html", figures=await run_sync(load))


ROUTES = [(r"/admin/analytics", AdminAnalyticsHandler)]
