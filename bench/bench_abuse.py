"""The abuse addon's accept-time checks: server CPU per send, measured in-process (no HTTP, less noise).

Run with ``.venv/bin/python bench/bench_abuse.py``. In one workspace (default rules, no overrides),
:func:`addons.abuse.service.screen` (what ``smsgw_messages_screening`` runs inside the send's
transaction) is called the way a send calls it, each call in its own tenant transaction, and the
CPU time of that transaction (the after-commit update of the windows included) less that of an
empty one is taken with ``time.thread_time`` (this thread only: what the checks cost the server,
not what the database does). Cases: a 1,000-recipient send to scattered valid numbers (the usual
case: nothing found), a single-recipient send, and, for information, a 1,000-recipient burst to
sequential numbers (alerts written, everything held). Target: ≤ 2 ms for the usual 1,000.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _benchlib import make_tenant, run_main, say, section  # noqa: E402

AREAS = ["212", "312", "415", "617", "646", "702", "713", "305", "206", "404"]


def scattered(rng, n):
    return list({f"+1{rng.choice(AREAS)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}" for _ in range(n)})[:n]


def body(scratch) -> int:
    scratch.start()
    from addons.abuse import service
    from core.db import app_db, connection, tenant_transaction

    tenant = make_tenant(scratch.platform, "abusebench")
    with connection():
        with app_db.atomic():
            app_db.execute_sql("DELETE FROM public.abuse_rule_overrides WHERE tenant_id = %s", (tenant.id,))
            # An established workspace (a month old): a new one's 1,000-recipient send of one text is
            # itself the identical-text signal (measured below, for information).
            app_db.execute_sql("UPDATE public.tenant SET created_at = now() - interval '30 days' WHERE id = %s",
                               (tenant.id,))
    young = make_tenant(scratch.platform, "abusebench-new")
    with connection():
        with app_db.atomic():
            app_db.execute_sql("DELETE FROM public.abuse_rule_overrides WHERE tenant_id = %s", (young.id,))
    from addons.abuse import rules

    rules.forget()  # no listener in this process: read the rules again
    rng = random.Random(7)

    texts = iter(range(10**9))

    def one(phones, text=None, who=tenant) -> tuple[float, int]:
        """The CPU of one transaction that screens (the after-commit window update included), less
        that of an empty transaction (measured alike, below)."""
        text = text or f"Your appointment #{next(texts)} is tomorrow at 10:00"  # not one text to all
        start = time.thread_time()
        with tenant_transaction(who.ref):
            holds = service.screen(who, [{"text": text, "phones": phones, "source": "api",
                                             "created_by": "token:1", "send_at": None, "valid_until": None}])
        return (time.thread_time() - start) * 1000 - empty_ms, len(holds)

    def empty() -> float:
        start = time.thread_time()
        with tenant_transaction(tenant.ref):
            pass
        return (time.thread_time() - start) * 1000

    empty_ms = 0.0
    empty_ms = statistics.median(empty() for _ in range(300))

    one(scattered(rng, 1000))  # seeds the window (first use in a process) and warms caches
    cases = {
        "1,000 scattered numbers (usual)": (lambda: scattered(rng, 1000), 60),
        "1 number": (lambda: scattered(rng, 1), 300),
        "1,000 sequential numbers (burst: alerts, all held)": (
            lambda: (lambda x: [f"+1415{x}{i:04d}" for i in range(1000)])(rng.randint(200, 999)), 20),
        "new workspace, one text to 1,000 (alert, all held)": (lambda: scattered(rng, 1000), 20),
    }
    if "--profile" in sys.argv:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        for _ in range(30):
            one(scattered(rng, 1000))
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)
    section(f"CPU time of the checks per send (time.thread_time of the transaction less an empty one's, "
            f"{empty_ms:.3f} ms; median)")
    for label, (make, n) in cases.items():
        times, held = [], 0
        who = young if label.startswith("new workspace") else tenant
        for _ in range(n):
            phones = make()
            ms, h = one(phones, "Sale! 20% off today" if who is young else None, who)
            times.append(ms)
            held += h
        say(f"  {label:52s} median {statistics.median(times):6.3f} ms  p90 "
            f"{sorted(times)[int(0.9 * len(times))]:6.3f} ms  (held {held} over {n} sends)")
    return 0


if __name__ == "__main__":
    sys.exit(run_main("abuse", "--fast" in sys.argv, body))
