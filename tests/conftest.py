"""Fixtures: a real PostgreSQL (embedded, or TEST_DATABASE_URL), a platform, a live server.

Every test session gets a scratch database and a role prefix of its own, so
runs never collide, and drops both at the end.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core import dbsetup  # noqa: E402
from core.config import Settings  # noqa: E402
from core.embedded_pg import EmbeddedPostgres  # noqa: E402


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory):
    """An administrative URL of a PostgreSQL server for this session."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    pg = EmbeddedPostgres(tmp_path_factory.mktemp("pg"), fast=True)
    yield pg.start()
    pg.destroy()


@pytest.fixture(scope="session")
def test_env(pg_server_url, tmp_path_factory):
    """Names of this session's scratch database and role prefix, and its data dir."""
    token = secrets.token_hex(3)
    dbname = f"smsgw_test_{token}"
    prefix = f"tst{token}"
    data_dir = tmp_path_factory.mktemp("data")
    dbsetup.ensure_database(pg_server_url, dbname)
    env = {
        "DATABASE_URL": dbsetup.with_database(pg_server_url, dbname),
        "SMSGW_DB_ROLE_PREFIX": prefix,
        "SMSGW_DATA_DIR": str(data_dir),
        "SMSGW_BASE_DOMAIN": "localhost",
        # Workspaces without a subscription have no plan limits here; the billing tests give theirs
        # a plan (tests/test_billing_quotas.py), and one the shipped default (free).
        "SMSGW_BILLING_DEFAULT_PLAN": "",
        # The pseudo-locales (core/i18n.py): chosen by name only, so no other test sees them.
        "SMSGW_PSEUDO_LOCALES": "1",
    }
    yield env
    dbsetup.drop_database(pg_server_url, dbname, prefix)


def make_settings(test_env, **overrides) -> Settings:
    return Settings.from_env(dict(test_env), **overrides)


@pytest.fixture(scope="session")
def platform(test_env):
    from core.platform import Platform

    p = Platform(make_settings(test_env))
    p.bcrypt_cost = 4  # fast hashes in tests; the cost test checks the configured default separately
    p.start_database()
    p.migrate()
    from tests.support.abuse import record_only

    record_only()  # the abuse rules hold nothing in other tests' traffic (tests/support/abuse.py)
    yield p
    p.close()


@pytest.fixture(scope="session")
def live_server(platform):
    from tests.support.server import LiveServer

    server = LiveServer(platform).start()
    yield server
    server.stop()


@pytest.fixture
def make_tenant(platform):
    """Create tenants with unique slugs; returns a factory ``make_tenant(prefix='t') -> TenantInfo``."""
    created = []

    def factory(prefix: str = "t", **kwargs):
        slug = f"{prefix}-{secrets.token_hex(4)}"
        info = platform.tenants.create(
            slug, kwargs.pop("name", f"Company {slug}"), kwargs.pop("owner_email", f"owner@{slug}.example"),
            kwargs.pop("owner_password", "a long enough password"), **kwargs)
        created.append(slug)
        return info

    yield factory
    for slug in created:
        try:
            platform.tenants.delete(slug)
        except Exception:
            pass


@pytest.fixture
def cli_env(test_env):
    """Environment for running ``smsgw`` subprocesses against this session's database."""
    env = dict(os.environ)
    env.update(test_env)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env
