"""The abuse addon's rules in the test session.

The suite's other tests send bursts to sequential numbers, abroad, the same text to many, with a
fresh client address per request: what the abuse rules hold by default. Like an operator running a
known load test, the session's platform sets every abuse rule to ``record`` (:func:`record_only`):
checks still run on every send, nothing is held. The abuse tests switch back to the shipped
defaults for their own duration (:func:`shipped_defaults`)."""

from __future__ import annotations

from contextlib import contextmanager

from core.db import app_db, connection


def _tables_exist() -> bool:
    return bool(app_db.execute_sql("SELECT to_regclass('public.abuse_rules')").fetchone()[0])


def record_only() -> None:
    from addons.abuse import rules

    with connection():
        with app_db.atomic():
            if not _tables_exist():
                return
            app_db.execute_sql("DELETE FROM public.abuse_rules; DELETE FROM public.abuse_rule_overrides; "
                               "DELETE FROM public.abuse_aup_patterns")
            for rule in rules.DEFAULTS.values():
                if rule.action not in ("off", "record"):
                    app_db.execute_sql("INSERT INTO public.abuse_rules (rule, action, severity) VALUES (%s, 'record', %s)",
                                       (rule.name, rule.severity))
    rules.forget()


@contextmanager
def shipped_defaults():
    """The rules as shipped (no rows), for one test; the session's record-only rules afterwards."""
    from addons.abuse import rules

    with connection():
        with app_db.atomic():
            app_db.execute_sql("DELETE FROM public.abuse_rules; DELETE FROM public.abuse_rule_overrides; "
                               "DELETE FROM public.abuse_aup_patterns")
    rules.forget()
    try:
        yield
    finally:
        record_only()
