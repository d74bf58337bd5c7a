"""Migrations: versioned, per tenant, resumable after a kill, failures isolated per tenant."""

import os
import signal
import subprocess
import sys
import time

import psycopg2
import pytest

from core.migrations import MigrationError, collect, latest_versions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def ledger(platform, tenant_id):
    conn = psycopg2.connect(platform.app_url)
    with conn.cursor() as cur:
        cur.execute("SELECT addon, version FROM public.tenant_migration WHERE tenant_id = %s", (tenant_id,))
        rows = set(cur.fetchall())
    conn.close()
    return rows


def table_exists(platform, schema, table):
    conn = psycopg2.connect(platform.admin_url)
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}".{table}',))
        exists = cur.fetchone()[0]
    conn.close()
    return exists


def test_new_tenant_is_at_current_version(platform, make_tenant):
    t = make_tenant("ver")
    expected = {(m.addon, m.version) for m in platform.tenant_migrations}
    assert expected and ledger(platform, t.id) == expected


def test_noop_migrate_reports_up_to_date(platform, make_tenant):
    make_tenant("noop")
    applied, result = platform.migrate()
    assert applied == []
    assert result.up_to_date and result.migrated == [] and result.failed == {}


def test_file_naming_is_checked(tmp_path):
    (tmp_path / "tenant").mkdir()
    (tmp_path / "tenant" / "1_bad.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match="NNNN_description"):
        collect([("x", tmp_path)])


def test_duplicate_versions_are_refused(tmp_path):
    (tmp_path / "tenant").mkdir()
    (tmp_path / "tenant" / "0001_a.sql").write_text("SELECT 1")
    (tmp_path / "tenant" / "0001_b.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match="two tenant migrations numbered 0001"):
        collect([("x", tmp_path)])


def run_migrator(cli_env, extra_dir, jobs=2, **popen):
    return subprocess.Popen([sys.executable, "-m", "tests.support.migrate_with", str(extra_dir), str(jobs)],
                            cwd=ROOT, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **popen)


def test_failure_in_one_tenant_is_reported_and_others_are_intact(platform, make_tenant, cli_env, tmp_path):
    good = [make_tenant("good") for _ in range(3)]
    bad = make_tenant("bad")
    (tmp_path / "tenant").mkdir()
    (tmp_path / "tenant" / "0001_extra.sql").write_text(f"""
        CREATE TABLE extra_table (id serial PRIMARY KEY);
        DO $$ BEGIN
          IF current_schema() = '{bad.schema_name}' THEN RAISE EXCEPTION 'boom in this tenant'; END IF;
        END $$;
    """)
    proc = run_migrator(cli_env, tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    assert f"FAILED {bad.slug}" in out and "boom in this tenant" in out
    for t in good:
        assert table_exists(platform, t.schema_name, "extra_table")
        assert ("extra", 1) in ledger(platform, t.id)
    # The failing tenant is exactly as before: no table, no ledger row.
    assert not table_exists(platform, bad.schema_name, "extra_table")
    assert ("extra", 1) not in ledger(platform, bad.id)


@pytest.mark.slow
def test_migrate_killed_midway_then_rerun_ends_consistent(platform, make_tenant, cli_env, tmp_path):
    tenants = [make_tenant("kill") for _ in range(12)]
    (tmp_path / "tenant").mkdir()
    # Each tenant's migration takes a while, so the kill lands in the middle of the run.
    (tmp_path / "tenant" / "0001_slow.sql").write_text(
        "CREATE TABLE slow_one (id serial PRIMARY KEY); SELECT pg_sleep(0.25); "
        "CREATE TABLE slow_two (id serial PRIMARY KEY);")
    proc = run_migrator(cli_env, tmp_path, jobs=2, start_new_session=True)
    # Wait until some, but not all, tenants are done; then SIGKILL.
    deadline = time.time() + 60
    done = 0
    while time.time() < deadline:
        done = sum(("extra", 1) in ledger(platform, t.id) for t in tenants)
        if done >= 2:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    states = []
    for t in tenants:
        one = table_exists(platform, t.schema_name, "slow_one")
        two = table_exists(platform, t.schema_name, "slow_two")
        recorded = ("extra", 1) in ledger(platform, t.id)
        # Each tenant is all-or-nothing: both tables and the ledger row, or none of them.
        assert one == two == recorded, (t.slug, one, two, recorded)
        states.append(recorded)
    assert any(states) and not all(states), f"kill did not land mid-way: {states}"
    proc = run_migrator(cli_env, tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    for t in tenants:
        assert table_exists(platform, t.schema_name, "slow_two")
        assert ("extra", 1) in ledger(platform, t.id)
    # And a third run has nothing to do.
    proc = run_migrator(cli_env, tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "migrated=0 failed=0" in out


def test_concurrent_migrators_apply_each_version_once(platform, make_tenant, cli_env, tmp_path):
    tenants = [make_tenant("conc") for _ in range(4)]
    (tmp_path / "tenant").mkdir()
    # A non-idempotent migration: running it twice in one tenant would fail.
    (tmp_path / "tenant" / "0001_once.sql").write_text("CREATE TABLE once_only (id int); SELECT pg_sleep(0.05);")
    procs = [run_migrator(cli_env, tmp_path) for _ in range(3)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    for t in tenants:
        assert table_exists(platform, t.schema_name, "once_only")


def test_latest_versions():
    class M:
        def __init__(self, addon, version):
            self.addon, self.version = addon, version
    assert latest_versions([M("a", 1), M("a", 3), M("b", 2)]) == {"a": 3, "b": 2}
