"""The workspace owners' e-mail about alerts that notify (issue 20, item 2: "notify workspace owners
by e-mail").

Raising a new alert whose rule does more than record arms the due job :data:`JOB`, no earlier than
:data:`QUIET` after the last mail: a burst of alerts gives one mail listing them all, and the next
one waits. The job marks the alerts told (``notified_at``) and returns the mails to send after its
commit, one per owner (the workspace's Customers), in each owner's language, to those whose phone
alert preference (``device_alert_prefs.email``, *Account → Phone alerts*; on by default) allows it.
"""

from __future__ import annotations

import logging

from core import due
from core.db import app_db
from core.i18n import N_

from . import rules, summaries

log = logging.getLogger(__name__)

JOB = "abuse.mail"
QUIET = "interval '15 minutes'"  # at most one mail per workspace in this time (code's own SQL)
MAX_LISTED = 20
SEVERITY = {1: N_("Low"), 2: N_("Medium"), 3: N_("High")}
_LAST = "(SELECT max(notified_at) FROM abuse_alerts)"


def arm() -> None:
    """Inside the tenant transaction that raised a new alert that notifies."""
    due.arm_at(JOB, f"greatest(now(), coalesce({_LAST} + {QUIET}, now()))")


def next_due(tenant=None):
    row = app_db.execute_sql(
        f"SELECT greatest(now(), coalesce({_LAST} + {QUIET}, now())) WHERE EXISTS (SELECT 1 FROM abuse_alerts "
        "WHERE notified_at IS NULL AND action <> 'record')").fetchone()
    return row[0] if row else None


def run(platform, tenant):
    """The due job: mark the untold alerts told; the mail to send after the commit, or None."""
    quiet = app_db.execute_sql(f"SELECT coalesce({_LAST} + {QUIET} > now(), false)").fetchone()[0]
    if quiet:
        return None  # next_due arms it again when the quiet time is over
    rows = app_db.execute_sql(
        "UPDATE abuse_alerts SET notified_at = now() WHERE notified_at IS NULL AND action <> 'record' "
        "RETURNING id, rule, severity, summary, evidence, status").fetchall()
    alerts = sorted(({"id": r[0], "rule": r[1], "severity": r[2], "summary": r[3], "evidence": rules._json(r[4]),
                      "status": r[5]} for r in rows), key=lambda a: (-a["severity"], a["id"]))
    if not alerts:
        return None
    owners = app_db.execute_sql(
        "SELECT u.email, u.language FROM users u LEFT JOIN device_alert_prefs p ON p.user_id = u.id "
        "WHERE u.is_active AND u.role = 'customer' AND coalesce(p.email, true) ORDER BY u.id").fetchall()
    if not owners:
        return None
    base = platform.settings.public_url(tenant.slug)

    def compose(_, ngettext, fmt):
        lines = [f"* [{_(SEVERITY.get(a['severity'], SEVERITY[1]))}] "
                 f"{_(rules.DEFAULTS[a['rule']].label) if a['rule'] in rules.DEFAULTS else a['rule']}: "
                 f"{summaries.text(_, a)} (#{a['id']})" for a in alerts[:MAX_LISTED]]
        if len(alerts) > MAX_LISTED:
            lines.append(_("… and %(num)s more.", num=len(alerts) - MAX_LISTED))
        return (ngettext("%(slug)s: %(num)s security alert", "%(slug)s: %(num)s security alerts", len(alerts),
                         slug=tenant.slug),
                ngettext("We noticed something in the sending of the workspace %(slug)s that you should look at:",
                         "We noticed things in the sending of the workspace %(slug)s that you should look at:",
                         len(alerts), slug=tenant.slug) + "\n\n" + "\n".join(lines) + "\n\n"
                + _("Details, held messages and what you can do: %(url)s", url=f"{base}/security") + "\n\n--\n"
                + _("You get these e-mails as an owner of %(slug)s; choose at %(url)s", slug=tenant.slug,
                    url=f"{base}/account/alerts") + "\n")

    def send():
        for address, language in owners:
            try:
                platform.send_mail(address, compose, language=language, tenant=tenant)
            except Exception:  # one address or a mail server hiccup must not stop the others
                log.exception("abuse: could not mail an alert notice")

    return send
