"""Secrets: from the environment, or generated once with 0600 permissions; never logged."""

import logging
import stat
import time

from core.secretstore import SecretStore
from core.web.access_log import redact_query


def test_generated_once_with_0600(tmp_path):
    store = SecretStore(tmp_path, env={})
    first = store.get("cookie-secret")
    assert len(first) >= 40
    assert store.get("cookie-secret") == first
    mode = stat.S_IMODE((tmp_path / "secrets" / "cookie-secret").stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE((tmp_path / "secrets").stat().st_mode) == 0o700


def test_environment_wins_and_writes_nothing(tmp_path):
    store = SecretStore(tmp_path, env={"SMSGW_COOKIE_SECRET": "from-env"})
    assert store.get("cookie-secret", "SMSGW_COOKIE_SECRET") == "from-env"
    assert not (tmp_path / "secrets" / "cookie-secret").exists()


def test_platform_secrets_are_private(platform):
    for name in ("db-app-password", "password-pepper"):
        platform.secrets.get(name)
        path = platform.secrets.path(name)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_access_log_redacts_secrets_in_query(live_server, make_tenant, caplog):
    t = make_tenant("log")
    with caplog.at_level(logging.INFO, logger="smsgw.access"):
        live_server.client(t.slug).get("/?token=SUPERSECRET123&page=2&api_key=K3Y&code=C0DE")
        # The server logs just after it answers, on its own thread: wait for the line.
        deadline = time.time() + 5
        while time.time() < deadline and not any("page=2" in r.getMessage() for r in caplog.records):
            time.sleep(0.02)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "page=2" in text
    for secret in ("SUPERSECRET123", "K3Y", "C0DE"):
        assert secret not in text


def test_redact_query():
    assert redact_query("password=x&q=1") == "password=%5Bredacted%5D&q=1"
    assert redact_query("") == ""
    # Most queries hold nothing sensitive and are logged as they came (the shortcut) ...
    assert redact_query("wait=30&limit=10") == "wait=30&limit=10"
    # ... but not when a name is disguised by encoding, or nested in a value.
    for query, secret in (("%74oken=S3CRET", "S3CRET"), ("to%6Ben=S3CRET", "S3CRET"),
                          ("next=/x%3Ftoken%3DS3CRET", "S3CRET"), ("next=/x?Token=S3CRET", "S3CRET"),
                          ("a+key=S3CRET", "S3CRET")):
        assert secret not in redact_query(query), query
