"""Operations (issue 21, item 2): encrypted backups of the whole platform, restored into a fresh
data dir; a tampered backup refuses to restore; retention keeps exactly the right files."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from core import backup
from tests.support.devices import fetch, raw_device, submit
from tests.support.phones import api_token
from tests.support.serve import ROOT, start_serve, stop_serve

KEY = base64.urlsafe_b64encode(b"k" * 32).decode()


def smsgw(env: dict, *args, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.cli", *args], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def backed_up(live_server, test_env, tmp_path_factory):
    """A populated workspace (an API token, a phone, two messages waiting for it), then one backup."""
    from core.tenancy import TenantService  # noqa: F401  (the session platform made the tenant)

    platform = live_server.platform
    slug = f"bk-{os.urandom(3).hex()}"
    platform.tenants.create(slug, "Backed Up Ltd", f"owner@{slug}.example", "a long enough password")
    token = api_token(slug)
    api = live_server.client(slug)
    api.headers["Authorization"] = f"Bearer {token}"
    device_id, device_token = raw_device(live_server, slug, api=api)
    sent = [submit(api, "+14155550101", text=f"before the backup {i}") for i in range(2)]
    directory = tmp_path_factory.mktemp("backups")
    env = dict(os.environ, **test_env, PYTHONPATH=str(ROOT), SMSGW_BACKUP_KEY=KEY)
    done = smsgw(env, "backup", "--dir", str(directory))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Backup written:" in done.stdout and "Dumping database" in done.stdout  # progress on the way
    (path,) = directory.glob("*.backup")
    yield {"slug": slug, "token": token, "device_id": device_id, "device_token": device_token, "sent": sent,
           "path": path, "env": env}
    platform.tenants.delete(slug)


def test_backup_is_encrypted_with_a_manifest(backed_up):
    path = backed_up["path"]
    manifest = json.loads(path.with_suffix(".manifest.json").read_text())
    assert manifest["file"] == path.name and manifest["size"] == path.stat().st_size
    import hashlib

    assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["schema_versions"]["public"]["core"] >= 1 and "messaging" in manifest["schema_versions"]["tenant"]
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    body = path.read_bytes()
    # Neither the dump's contents nor the secrets are readable in the file.
    for plain in (backed_up["slug"].encode(), b"before the backup", b"PGDMP", b"db-app-password"):
        assert plain not in body


def test_restore_into_a_fresh_data_dir_serves_the_same_messages_tokens_and_devices(backed_up, tmp_path):
    env = {k: v for k, v in backed_up["env"].items() if k != "DATABASE_URL"}
    env.update(SMSGW_DATA_DIR=str(tmp_path / "restored"), SMSGW_EMBEDDED_PG_FAST="1")
    done = smsgw(env, "restore", str(backed_up["path"]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Checking" in done.stdout and "Restored" in done.stdout
    again = smsgw(env, "restore", str(backed_up["path"]))  # never over a database that has data
    assert again.returncode == 2 and "not empty" in again.stderr
    proc, port, _ = start_serve(env)
    try:
        base, slug = f"http://127.0.0.1:{port}", backed_up["slug"]
        host = {"Host": f"{slug}.localhost"}
        api = dict(host, Authorization=f"Bearer {backed_up['token']}")
        for message in backed_up["sent"]:
            r = requests.get(f"{base}/api/v1/messages/{message['id']}", headers=api, timeout=10)
            assert r.status_code == 200, r.text
            assert r.json()["text"] == message["text"]
        # The phone keeps working: its token is known and it gets the messages that waited for it.
        dev = requests.Session()
        dev.headers.update(host, Authorization=f"Bearer {backed_up['device_token']}")
        dev.get = _with_base(dev.get, base)
        r = fetch(dev)
        assert r.status_code == 200, r.text
        texts = sorted(m["text"] for m in r.json()["messages"])
        assert texts == ["before the backup 0", "before the backup 1"]
        # And the restored platform takes new work.
        r = requests.post(f"{base}/api/v1/messages", headers=api, json={"to": "+14155550102", "text": "after"},
                          timeout=10)
        assert r.status_code == 202, r.text
    finally:
        stop_serve(proc)
    # Its roles are the platform's as if it had made them: a restored workspace can be deleted.
    done = smsgw(env, "tenant", "delete", backed_up["slug"], "--yes")
    assert done.returncode == 0, done.stdout + done.stderr


def _with_base(get, base):
    return lambda path, **kw: get(base + path, **kw)


def test_a_tampered_backup_refuses_to_restore(backed_up, tmp_path):
    original = backed_up["path"]
    data = bytearray(original.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy = tmp_path / "copy" / original.name
    copy.parent.mkdir()
    copy.write_bytes(bytes(data))
    copy.with_suffix(".manifest.json").write_text(original.with_suffix(".manifest.json").read_text())
    env = {k: v for k, v in backed_up["env"].items() if k != "DATABASE_URL"}
    env.update(SMSGW_DATA_DIR=str(tmp_path / "data"), SMSGW_EMBEDDED_PG_FAST="1")
    done = smsgw(env, "restore", str(copy))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "checksum differs from its manifest" in done.stderr
    # Without the key it is refused too (a key made up now would read nothing).
    keyless = {k: v for k, v in env.items() if k != "SMSGW_BACKUP_KEY"}
    done = smsgw(keyless, "restore", str(original))
    assert done.returncode == 2 and "set SMSGW_BACKUP_KEY" in done.stderr
    # Nothing was written: no database cluster, no secrets.
    assert not (tmp_path / "data" / "pg").exists() and not (tmp_path / "data" / "secrets").exists()

    # Without the manifest, the changed chunk fails its authentication; so do a truncated file, a
    # reordered one, and the wrong key. (restore() runs verify() before it writes anything.)
    key = base64.urlsafe_b64decode(KEY)
    copy.with_suffix(".manifest.json").unlink()
    with pytest.raises(backup.BackupError, match="damaged or was altered"):
        backup.verify(copy, key)
    copy.write_bytes(original.read_bytes()[:-20])
    with pytest.raises(backup.BackupError, match="truncated"):
        backup.verify(copy, key)
    with pytest.raises(backup.BackupError, match="another backup key"):
        backup.verify(original, b"x" * 32)
    assert backup.verify(original, key)["kind"] == "platform"  # the original is intact


def test_sealed_chunks_cannot_be_reordered_or_dropped(tmp_path):
    import io

    key = os.urandom(32)
    sink = io.BytesIO()
    sealer = backup.Sealer(sink, key)
    payload = os.urandom(backup.CHUNK * 2 + 100)  # three chunks
    sealer.write(payload)
    sealer.close()
    sealed = sink.getvalue()
    assert b"".join(backup.unseal(io.BytesIO(sealed), key)) == payload
    head = len(backup.MAGIC) + 4 + int.from_bytes(sealed[len(backup.MAGIC):len(backup.MAGIC) + 4], "big")
    chunk = 4 + backup.CHUNK + 16
    first, second, rest = sealed[head:head + chunk], sealed[head + chunk:head + 2 * chunk], sealed[head + 2 * chunk:]
    for forged in (sealed[:head] + second + first + rest,  # reordered
                   sealed[:head] + first + rest,  # a chunk dropped
                   sealed[:head] + first + second):  # the last chunk dropped: ends early
        with pytest.raises(backup.BackupError):
            b"".join(backup.unseal(io.BytesIO(forged), key))


def test_retention_keeps_the_newest_of_each_day_week_and_month(tmp_path):
    start = dt.datetime(2026, 1, 1, 3, 0, tzinfo=dt.timezone.utc)
    times = [start + dt.timedelta(days=d) for d in range(400)]  # one a night for 400 days ...
    times += [start + dt.timedelta(days=399, hours=h) for h in (5, 9)]  # ... and three on the last day
    for t in times:
        (tmp_path / f"smsgw-{t.strftime('%Y%m%dT%H%M%SZ')}.backup").write_bytes(b"x")
        (tmp_path / f"smsgw-{t.strftime('%Y%m%dT%H%M%SZ')}.manifest.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("not a backup")
    deleted = backup.prune(tmp_path, daily=7, weekly=4, monthly=6)
    kept = sorted(p.name[6:22] for p in tmp_path.glob("*.backup"))

    def night(y, m, d, h=3):
        return dt.datetime(y, m, d, h, tzinfo=dt.timezone.utc)

    # The last day is Thursday 2027-02-04, with backups at 03:00, 08:00 and 12:00.
    daily = {night(2027, 2, 4, 12), night(2027, 2, 3), night(2027, 2, 2), night(2027, 2, 1), night(2027, 1, 31),
             night(2027, 1, 30), night(2027, 1, 29)}
    weekly = {night(2027, 2, 4, 12), night(2027, 1, 31), night(2027, 1, 24), night(2027, 1, 17)}  # ISO weeks' Sundays
    monthly = {night(2027, 2, 4, 12), night(2027, 1, 31), night(2026, 12, 31), night(2026, 11, 30), night(2026, 10, 31),
               night(2026, 9, 30)}
    expected = daily | weekly | monthly
    assert kept == sorted(t.strftime("%Y%m%dT%H%M%SZ") for t in expected)
    assert len(deleted) == len(times) - len(expected)
    # Manifests go with their backups; other files stay.
    assert sorted(p.name[6:22] for p in tmp_path.glob("*.manifest.json")) == kept
    assert (tmp_path / "notes.txt").exists()
    assert backup.prune(tmp_path, daily=7, weekly=4, monthly=6) == []  # a second run deletes nothing


def test_one_workspace_exported_deleted_and_imported_serves_as_before(backed_up, live_server, tmp_path):
    slug, env = backed_up["slug"], backed_up["env"]
    out = tmp_path / f"{slug}.workspace"
    done = smsgw(env, "tenant", "export", slug, "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert slug.encode() not in out.read_bytes()
    live_server.platform.tenants.delete(slug)
    api = live_server.client(slug)
    api.headers["Authorization"] = f"Bearer {backed_up['token']}"
    assert api.get(f"/api/v1/messages/{backed_up['sent'][0]['id']}").status_code == 404  # gone

    done = smsgw(env, "tenant", "import", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    for message in backed_up["sent"]:
        r = api.get(f"/api/v1/messages/{message['id']}")
        assert r.status_code == 200, r.text
        assert r.json()["text"] == message["text"]
    dev = live_server.client(slug)
    dev.headers["Authorization"] = f"Bearer {backed_up['device_token']}"
    r = fetch(dev)
    assert r.status_code == 200, r.text
    assert sorted(m["text"] for m in r.json()["messages"]) == ["before the backup 0", "before the backup 1"]
    # Its slug is taken now: a second import changes nothing.
    again = smsgw(env, "tenant", "import", str(out))
    assert again.returncode == 2 and "exists here already" in again.stderr
    assert api.get(f"/api/v1/messages/{backed_up['sent'][0]['id']}").status_code == 200
