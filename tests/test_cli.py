"""The smsgw command line, run as a real subprocess against the test database."""

import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

ROOT = Path(__file__).resolve().parent.parent


def smsgw(cli_env, *args, input=None):
    return subprocess.run([sys.executable, "-m", "core.cli", *args], env=cli_env, cwd=ROOT,
                          capture_output=True, text=True, input=input, timeout=120)


def test_help_is_clear(cli_env):
    r = smsgw(cli_env, "--help")
    assert r.returncode == 0
    for command in ("serve", "worker", "migrate", "tenant", "addons"):
        assert command in r.stdout
    assert "DATABASE_URL" in r.stdout
    r = smsgw(cli_env, "tenant", "create", "--help")
    assert r.returncode == 0 and "--owner-email" in r.stdout and "3-40 lowercase" in r.stdout
    r = smsgw(cli_env, "serve", "--help")
    assert "--with-worker" in r.stdout and "--port" in r.stdout


def test_tenant_lifecycle_through_cli(platform, cli_env):
    slug = "cli-lifecycle"
    r = smsgw(cli_env, "tenant", "create", slug, "--name", "CLI Co", "--owner-email", "o@cli.example",
              "--owner-password", "a long enough password")
    assert r.returncode == 0, r.stderr
    assert f"http://{slug}.localhost:8888/" in r.stdout
    r = smsgw(cli_env, "tenant", "list")
    assert slug in r.stdout and "active" in r.stdout
    r = smsgw(cli_env, "tenant", "suspend", slug)
    assert r.returncode == 0 and "suspended" in r.stdout
    assert platform.tenants.get(slug).status == "suspended"
    r = smsgw(cli_env, "tenant", "resume", slug)
    assert r.returncode == 0 and platform.tenants.get(slug).status == "active"
    # Without --yes and without a terminal, delete refuses.
    r = smsgw(cli_env, "tenant", "delete", slug)
    assert r.returncode == 2 and "--yes" in r.stderr
    assert platform.tenants.get(slug)
    r = smsgw(cli_env, "tenant", "delete", slug, "--yes")
    assert r.returncode == 0, r.stderr
    conn = psycopg2.connect(platform.admin_url)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname = 't_cli_lifecycle'")
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", (platform.roles.tenant_role(slug),))
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM public.tenant WHERE slug = %s", (slug,))
        assert cur.fetchone()[0] == 0
    conn.close()


@pytest.mark.parametrize("slug, message", [("www", "reserved"), ("Bad_Slug", "lowercase"), ("x", "3 to 40")])
def test_cli_refuses_bad_slug_with_message(cli_env, slug, message):
    r = smsgw(cli_env, "tenant", "create", slug, "--name", "X", "--owner-email", "a@b.example",
              "--owner-password", "a long enough password")
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr


def test_cli_unknown_tenant_is_clear(cli_env):
    r = smsgw(cli_env, "tenant", "suspend", "no-such-tenant")
    assert r.returncode == 2 and "There is no workspace “no-such-tenant”" in r.stderr


def test_cli_migrate_noop(cli_env):
    r = smsgw(cli_env, "migrate")
    assert r.returncode == 0, r.stderr
    assert "all up to date" in r.stdout


def test_bad_configuration_is_explained(cli_env):
    env = dict(cli_env, SMSGW_PORT="eighty")
    r = subprocess.run([sys.executable, "-m", "core.cli", "migrate"], env=env, cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "SMSGW_PORT must be a whole number" in r.stderr
