"""Core pages: platform landing, tenant home, health checks, language switch."""

from __future__ import annotations

import time

from ..db import connection, app_db
from ..permissions import PUBLIC
from ..worker_watch import worker_status
from .base import ApiHandler, PageHandler
from .problem import Problem
from ..i18n import N_


def safe_next(target: str) -> str:
    """A local path to go back to; anything that could leave the site becomes ``/``."""
    if (not target.startswith("/") or target.startswith("//") or "\\" in target
            or any(ord(c) < 32 or c.isspace() for c in target)):
        return "/"
    return target


class LiveHandler(ApiHandler):
    """``/health/live``: the process answers. No database work."""

    scope = "any"
    permission = PUBLIC

    async def prepare(self):  # liveness must not depend on tenant lookups or the DB
        pass

    def get(self):
        self.write_json({"status": "ok"})


class ReadyHandler(ApiHandler):
    """``/health/ready``: the database answers and every migration is applied (503 otherwise);
    ``degraded`` (still 200) while a cross-process wake-up channel is down. ``worker`` says
    whether a worker's heartbeat is recent (``late`` never makes this a 503: web processes
    release due scheduled work in its place)."""

    scope = "any"
    permission = PUBLIC
    _cache: dict = {}

    async def prepare(self):
        pass

    async def get(self):
        cached = self._cache.get("ready")
        if cached and cached[0] > time.monotonic():
            status = cached[1]
        else:
            try:
                status = await self.run_db(self._check)
            except Exception as exc:  # database down: not ready, and say so
                status = {"status": "unavailable", "database": "unreachable", "error": exc.__class__.__name__}
            self._cache["ready"] = (time.monotonic() + 2.0, status)
        code = 200 if status["status"] == "ok" else 503
        # A wake-up channel down degrades this process (phones learn of work later) but it still
        # serves: say so, and stay in the load balancer.
        wakeups = self.platform.wakeup_status()
        status = {**status, "wakeups": wakeups}
        if code == 200 and "down" in wakeups.values():
            status["status"] = "degraded"
        self.write_json(status, code)

    def _check(self):
        with connection():
            app_db.execute_sql("SELECT 1")
        m = self.platform.migration_status()
        ok = not m["public_pending"] and m["tenants_lagging"] == 0
        worker = worker_status() if ok else {"worker": "unknown"}  # (its table may be a pending migration)
        return {"status": "ok" if ok else "migrations-pending", "database": "ok",
                "public_pending": m["public_pending"], "tenants_lagging": m["tenants_lagging"], **worker}


class PlatformHomeHandler(PageHandler):
    scope = "platform"
    permission = PUBLIC

    def get(self):
        self.render("platform_home.html")


class LanguageHandler(PageHandler):
    """``POST /lang``: remember the chosen language in a cookie and go back."""

    scope = "any"
    permission = PUBLIC

    def post(self):
        lang = self.get_body_argument("lang", "")
        if not self.platform.catalogues.known(lang):
            raise Problem(400, "unknown-language", N_("We do not ship the language %(lang)s."),
            args={"lang": repr(lang[:20])})
        self.set_cookie("lang", lang, max_age=365 * 86400, httponly=True, samesite="Lax",
                        secure=self.request.protocol == "https")
        self.redirect(safe_next(self.get_body_argument("next", "/")))
