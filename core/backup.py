"""Encrypted rolling backups of the whole platform: ``smsgw backup``, ``smsgw restore FILE``.

A backup is one file, ``smsgw-<UTC time>.backup``, and its manifest beside it
(``.manifest.json``: time, size, SHA-256, schema versions, key id; nothing secret). The file is

* a preface (JSON, one line): the manifest's facts, the tenant roles the dump's objects belong
  to, and the platform's secrets from the data dir (data keys, the token pepper, the app role's
  password: without them a restored catalogue's encrypted values and token digests are noise),
* then ``pg_dump --format=custom`` of the platform's database, taken in a snapshot exported from
  the transaction that listed the roles (so both see the same tenants),

sealed with AES-256-GCM in chunks of 1 MiB (the STREAM construction: a per-file key from the
backup key by HKDF with a random salt; each chunk's nonce is a random prefix, its number and a
last-chunk flag; the file's header is every chunk's associated data). So memory stays bounded
whatever the database's size, and a changed, reordered, dropped or truncated chunk, or a changed
header, fails authentication. Restore reads the file twice: the first pass checks every chunk
and writes nothing; only a file that passed is restored.

The backup key is ``SMSGW_BACKUP_KEY`` (32 bytes, URL-safe base64) or ``secrets/backup-key`` in
the data dir (generated at the first backup). It is *not* in the backups: keep a copy away from
the machine, or the backups are unreadable when the machine is lost.

Retention (:func:`prune`) keeps the newest backup of each of the last N days, weeks and months
that have one (``--keep-daily 7 --keep-weekly 4 --keep-monthly 6``) and deletes the rest, so a
workspace erased today is gone from every kept backup once the oldest (monthly) one has aged out.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"SMSGW-BACKUP\x00v1\n"
CHUNK = 1 << 20
_LAST = 0x80000000
SUFFIX = ".backup"
# Secrets of the data dir that a backup does not carry: the embedded cluster's superuser (a fresh
# cluster has its own) and the backup key itself.
NOT_CARRIED = {"pg-superuser-password", "backup-key"}


class BackupError(RuntimeError):
    """A backup or restore cannot go on; the message says why and what to do."""


# -- the sealed stream --------------------------------------------------------------------------

def backup_key(secrets, create: bool = True) -> bytes:
    """The backup key; ``create=False`` (reading a backup) never makes one: a new key reads nothing."""
    if not create and not secrets.env.get("SMSGW_BACKUP_KEY") and not secrets.path("backup-key").exists():
        raise BackupError("no backup key here: set SMSGW_BACKUP_KEY to the key the backup was made with")
    raw = secrets.get("backup-key", "SMSGW_BACKUP_KEY",
                      generate=lambda: base64.urlsafe_b64encode(os.urandom(32)).decode())
    try:
        key = base64.urlsafe_b64decode(raw.strip().encode())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise BackupError("SMSGW_BACKUP_KEY (or secrets/backup-key) must be 32 bytes in URL-safe base64, e.g. "
                          "python -c 'import os,base64;print(base64.urlsafe_b64encode(os.urandom(32)).decode())'")
    return key


def key_id(key: bytes) -> str:
    """Names a key without revealing it: which key a backup needs."""
    return hashlib.sha256(b"smsgw backup key id\x00" + key).hexdigest()[:16]


def _file_key(key: bytes, salt: bytes) -> AESGCM:
    return AESGCM(HKDF(hashes.SHA256(), 32, salt, b"smsgw backup v1").derive(key))


class Sealer:
    """Writes a sealed stream to ``out`` (a binary file); :meth:`write` plaintext, then :meth:`close`."""

    def __init__(self, out, key: bytes):
        self.out = out
        salt, self.prefix = os.urandom(16), os.urandom(7)
        header = json.dumps({"key_id": key_id(key), "salt": salt.hex(), "nonce_prefix": self.prefix.hex(),
                             "chunk": CHUNK, "cipher": "AES-256-GCM/STREAM"}).encode()
        self.aad = MAGIC + header
        self.aead = _file_key(key, salt)
        self.counter = 0
        self.buffer = bytearray()
        out.write(MAGIC + struct.pack(">I", len(header)) + header)

    def write(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) > CHUNK:  # strictly more: the last chunk is never empty unless all is
            self._seal(bytes(self.buffer[:CHUNK]), last=False)
            del self.buffer[:CHUNK]

    def close(self) -> None:
        self._seal(bytes(self.buffer), last=True)
        self.buffer = bytearray()

    def _seal(self, chunk: bytes, last: bool) -> None:
        nonce = self.prefix + struct.pack(">I", self.counter) + (b"\x01" if last else b"\x00")
        sealed = self.aead.encrypt(nonce, chunk, self.aad)
        self.out.write(struct.pack(">I", len(sealed) | (_LAST if last else 0)) + sealed)
        self.counter += 1


def unseal(fh, key: bytes):
    """The plaintext of a sealed stream, chunk by chunk; raises :class:`BackupError` at the first
    chunk that fails authentication, at a truncation, or for the wrong key."""
    if fh.read(len(MAGIC)) != MAGIC:
        raise BackupError("this is not an smsgw backup (or not one this version reads)")
    (size,) = struct.unpack(">I", _exactly(fh, 4))
    if size > 4096:
        raise BackupError("the backup's header is damaged")
    raw = _exactly(fh, size)
    try:
        header = json.loads(raw)
        salt, prefix = bytes.fromhex(header["salt"]), bytes.fromhex(header["nonce_prefix"])
    except (ValueError, KeyError):
        raise BackupError("the backup's header is damaged") from None
    if header.get("key_id") != key_id(key):
        raise BackupError(f"this backup was made with another backup key (key id {header.get('key_id')}, ours "
                          f"{key_id(key)}): set SMSGW_BACKUP_KEY to the key it was made with")
    aead, aad, counter = _file_key(key, salt), MAGIC + raw, 0
    while True:
        (word,) = struct.unpack(">I", _exactly(fh, 4))
        last, length = bool(word & _LAST), word & ~_LAST
        if length > CHUNK + 16:
            raise BackupError("the backup is damaged or was altered (a chunk's length is wrong)")
        nonce = prefix + struct.pack(">I", counter) + (b"\x01" if last else b"\x00")
        try:
            yield aead.decrypt(nonce, _exactly(fh, length), aad)
        except InvalidTag:
            raise BackupError(f"the backup is damaged or was altered (chunk {counter} fails its check); "
                              "nothing was restored from it") from None
        counter += 1
        if last:
            if fh.read(1):
                raise BackupError("the backup is damaged or was altered (data after its end)")
            return


def _exactly(fh, n: int) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise BackupError("the backup is truncated (it ends early); nothing was restored from it")
    return data


class _Hashing:
    """A file wrapper that counts and hashes what is written."""

    def __init__(self, fh):
        self.fh, self.sha, self.size = fh, hashlib.sha256(), 0

    def write(self, data: bytes) -> None:
        self.fh.write(data)
        self.sha.update(data)
        self.size += len(data)


# -- PostgreSQL tools ------------------------------------------------------------------------------

def pg_tool(name: str) -> str:
    """``pg_dump``/``pg_restore``: the embedded PostgreSQL's (pgserver), else the one on PATH."""
    try:
        from .embedded_pg import _bin

        path = _bin(name)
        if Path(path).exists():
            return path
    except Exception:  # pgserver not installed: an external server's tools are on PATH
        pass
    found = shutil.which(name)
    if not found:
        raise BackupError(f"{name} was not found: install the PostgreSQL client tools (Debian: postgresql-client)")
    return found


def _libpq_args(url: str) -> tuple[list[str], dict]:
    """``--dbname`` for a URL, with its password moved to ``PGPASSWORD`` (not on a command line)."""
    parts = urlsplit(url)
    env = dict(os.environ)
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    if password:
        env["PGPASSWORD"] = unquote(password)
    netloc = (f"{user}@" if user else "") + host
    query = urlencode(parse_qsl(parts.query))
    return ["--dbname", urlunsplit((parts.scheme, netloc, parts.path, query, ""))], env


# -- backup --------------------------------------------------------------------------------------

@dataclass
class Written:
    path: Path
    manifest: dict


def backup(platform, directory: Path, progress=None, now: dt.datetime | None = None) -> Written:
    """One backup of the whole platform into ``directory`` (see the module's docstring)."""
    import psycopg2

    say = progress or (lambda msg: None)
    if not platform.admin_url:
        raise BackupError("a backup needs the administrative database URL (DATABASE_URL, or the embedded server)")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = backup_key(platform.secrets)
    now = now or dt.datetime.now(dt.timezone.utc)
    name = f"smsgw-{now.strftime('%Y%m%dT%H%M%SZ')}{SUFFIX}"
    path = directory / name
    conn = psycopg2.connect(platform.admin_url)
    try:
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        cur = conn.cursor()
        cur.execute("SELECT pg_export_snapshot(), current_setting('server_version'), current_database()")
        snapshot, server_version, dbname = cur.fetchone()
        cur.execute("SELECT slug, role_name FROM public.tenant ORDER BY id")
        tenants = cur.fetchall()
        cur.execute("SELECT addon, max(version) FROM public.smsgw_public_migration GROUP BY addon ORDER BY addon")
        public_versions = dict(cur.fetchall())
        cur.execute("SELECT addon, min(v), max(v) FROM (SELECT tenant_id, addon, max(version) AS v "
                    "FROM public.tenant_migration GROUP BY tenant_id, addon) x GROUP BY addon ORDER BY addon")
        tenant_versions = {addon: {"min": lo, "max": hi} for addon, lo, hi in cur.fetchall()}
        facts = {"format": 1, "kind": "platform", "created": now.isoformat(timespec="seconds"), "database": dbname,
                 "server_version": server_version, "role_prefix": platform.settings.role_prefix,
                 "tenants": len(tenants), "schema_versions": {"public": public_versions, "tenant": tenant_versions},
                 "key_id": key_id(key)}
        preface = dict(facts, tenant_roles=[role for _slug, role in tenants], secrets=_secrets(platform))
        say(f"Dumping database {dbname} ({len(tenants)} workspace(s)) to {path} ...")
        written = dump_sealed(platform.admin_url, snapshot, path, key, preface, progress=say)
    finally:
        conn.close()
    manifest = dict(facts, file=name, **written)
    _write_json(path.with_suffix(".manifest.json"), manifest)
    say(f"Backup written: {path} ({manifest['size'] / CHUNK:.1f} MiB, sha256 {manifest['sha256'][:16]}...)")
    return Written(path, manifest)


def _secrets(platform) -> dict:
    folder = platform.secrets.dir
    if not folder.is_dir():
        return {}
    return {p.name: p.read_text() for p in sorted(folder.iterdir())
            if p.is_file() and p.name not in NOT_CARRIED and not p.name.endswith(".tmp")}


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


# -- restore -------------------------------------------------------------------------------------

def verify(path: Path, key: bytes) -> dict:
    """Check every chunk (and the manifest's checksum, when it is there); the preface. Writes nothing."""
    path = Path(path)
    manifest_path = path.with_suffix(".manifest.json")
    if manifest_path.exists():
        manifest = json.loads(manifest_path.read_text())
        sha = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(CHUNK), b""):
                sha.update(block)
        if sha.hexdigest() != manifest.get("sha256"):
            raise BackupError("the backup's checksum differs from its manifest: it is damaged or was altered; "
                              "nothing was restored from it")
    preface = None
    with open(path, "rb") as fh:
        for chunk in _plaintext(unseal(fh, key)):
            if preface is None:
                preface = chunk
    return preface


def _plaintext(chunks):
    """The preface (dict) first, then the dump's bytes."""
    head = bytearray()
    for chunk in chunks:
        if head is not None:
            head += chunk
            if b"\n" not in head:
                if len(head) > 64 * CHUNK:
                    raise BackupError("the backup's preface is damaged")
                continue
            line, _, rest = bytes(head).partition(b"\n")
            head = None
            yield json.loads(line)
            if rest:
                yield rest
        else:
            yield chunk
    if head is not None:
        raise BackupError("the backup holds no database dump")


def restore(platform, path: Path, progress=None) -> dict:
    """Restore the backup ``path`` into the platform's database, which must be empty (a new data
    dir, or a new external database): secrets into the data dir, roles, then ``pg_restore``."""
    import psycopg2
    from psycopg2 import sql

    from . import dbsetup

    say = progress or (lambda msg: None)
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    key = backup_key(platform.secrets, create=False)
    say(f"Checking {path} (every chunk, before anything is written) ...")
    preface = verify(path, key)
    if preface.get("kind") != "platform":
        raise BackupError(f"{path.name} is the export of one workspace: bring it in with smsgw tenant import")
    if preface["role_prefix"] != platform.settings.role_prefix:
        raise BackupError(f"the backup is of a platform with role prefix {preface['role_prefix']!r}; set "
                          f"SMSGW_DB_ROLE_PREFIX={preface['role_prefix']} to restore it")
    _restore_secrets(platform, preface["secrets"])
    server_url, dbname = _server(platform)
    dbsetup.ensure_database(server_url, dbname)
    target = dbsetup.with_database(server_url, dbname)
    conn = psycopg2.connect(target)
    conn.autocommit = True
    try:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM pg_namespace WHERE nspname NOT IN ('public', 'information_schema') "
                    "AND nspname NOT LIKE 'pg\\_%'")
        cur.execute("SELECT to_regclass('public.tenant') IS NOT NULL OR %s > 0", (cur.fetchone()[0],))
        if cur.fetchone()[0]:
            raise BackupError(f"database {dbname} is not empty: restore goes into an empty database only "
                              "(a new SMSGW_DATA_DIR, or a new database for DATABASE_URL)")
        say("Creating the platform's roles ...")
        # The platform's own roles as start-up makes them: bootstrap on a scratch database (it also
        # creates objects, which must not be in the target before pg_restore), then dropped.
        scratch = f"{dbname}_restore_scratch"
        dbsetup.ensure_database(server_url, scratch)
        try:
            app_password = platform.secrets.get("db-app-password", "SMSGW_DB_APP_PASSWORD")
            dbsetup.bootstrap(dbsetup.with_database(server_url, scratch), platform.settings.role_prefix, app_password)
        finally:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(scratch)))
        create_tenant_roles(cur, platform.settings.role_prefix, preface["tenant_roles"])
    finally:
        conn.close()
    say(f"Restoring database {dbname} ({preface['tenants']} workspace(s)) ...")
    pg_restore(target, path, key)
    say("Restored. Start the platform as usual (smsgw serve); it applies any newer migrations.")
    return {k: v for k, v in preface.items() if k not in ("secrets", "tenant_roles")}


def create_tenant_roles(cur, prefix: str, role_names) -> None:
    """Workspaces' roles as the provisioning function makes them (``core/dbsetup.py``)."""
    from psycopg2 import sql

    from . import dbsetup

    roles = dbsetup.RoleNames(prefix)
    for role in role_names:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
        if not cur.fetchone():
            cur.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOINHERIT").format(sql.Identifier(role)))
        cur.execute(sql.SQL("GRANT {} TO {} WITH INHERIT FALSE, SET TRUE").format(
            sql.Identifier(role), sql.Identifier(roles.app)))
        cur.execute(sql.SQL("GRANT {} TO {} WITH INHERIT TRUE, SET FALSE").format(
            sql.Identifier(roles.tenants), sql.Identifier(role)))
        # What the provisioner holds on the roles it creates itself (createrole_self_grant = 'set'):
        # its drop function needs the admin option.
        cur.execute(sql.SQL("GRANT {} TO {} WITH ADMIN TRUE, INHERIT FALSE, SET TRUE").format(
            sql.Identifier(role), sql.Identifier(roles.provisioner)))


def pg_restore(url: str, path: Path, key: bytes) -> None:
    """Feed the dump in the sealed file ``path`` to ``pg_restore`` (one transaction, stops at the
    first error: all or nothing)."""
    args, env = _libpq_args(url)
    proc = subprocess.Popen([pg_tool("pg_restore"), "--exit-on-error", "--single-transaction", *args],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        with open(path, "rb") as fh:
            chunks = _plaintext(unseal(fh, key))
            next(chunks)
            for chunk in chunks:
                proc.stdin.write(chunk)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    err = proc.stderr.read().decode(errors="replace")
    if proc.wait() != 0:
        raise BackupError(f"pg_restore failed (nothing was restored: one transaction): {err.strip()[-800:]}")


def dump_sealed(admin_url: str, snapshot: str, out_path: Path, key: bytes, preface: dict, extra_args=(),
                progress=None) -> dict:
    """``pg_dump --format=custom`` in ``snapshot`` after ``preface``, sealed into ``out_path``
    (written as ``.partial`` and renamed when complete, mode 0600); its size and SHA-256."""
    say = progress or (lambda msg: None)
    tmp = out_path.with_name(out_path.name + ".partial")
    args, env = _libpq_args(admin_url)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw:
            out = _Hashing(raw)
            sealer = Sealer(out, key)
            sealer.write(json.dumps(preface).encode() + b"\n")
            proc = subprocess.Popen([pg_tool("pg_dump"), "--format=custom", f"--snapshot={snapshot}", *extra_args,
                                     *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            dumped, shown = 0, 0
            while True:
                piece = proc.stdout.read(CHUNK)
                if not piece:
                    break
                sealer.write(piece)
                dumped += len(piece)
                if dumped - shown >= 64 * CHUNK:
                    say(f"  {dumped / CHUNK:.0f} MiB dumped ...")
                    shown = dumped
            err = proc.stderr.read().decode(errors="replace")
            if proc.wait() != 0:
                raise BackupError(f"pg_dump failed: {err.strip()[-500:]}")
            sealer.close()
            raw.flush()
            os.fsync(raw.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out_path)
    return {"size": out.size, "sha256": out.sha.hexdigest()}


def _restore_secrets(platform, secrets: dict) -> None:
    """Into the data dir; a secret there already must be the same (else it is a platform of its own)."""
    folder = platform.secrets.dir
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    for name, value in secrets.items():
        target = folder / name
        if target.exists():
            if target.read_text() != value:
                raise BackupError(f"{target} exists and differs from the backup's: restore into a new data dir")
            continue
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)


def _server(platform) -> tuple[str, str]:
    """The server's administrative URL and the platform's database name."""
    from . import dbsetup
    from .platform import EMBEDDED_DB_NAME

    s = platform.settings
    if s.database_url:
        return s.database_url, dbsetup.database_name(s.database_url)
    from .embedded_pg import EmbeddedPostgres

    platform.embedded = EmbeddedPostgres(s.data_dir, fast=s.embedded_pg_fast)
    return platform.embedded.attach(), EMBEDDED_DB_NAME


# -- retention ------------------------------------------------------------------------------------

def backups_in(directory: Path) -> list[tuple[dt.datetime, Path]]:
    """The backups in ``directory`` with their times (from their names), newest first."""
    return sorted(((when, p) for p in Path(directory).glob(f"smsgw-*{SUFFIX}")
                   if (when := time_of(p.name)) is not None), reverse=True)


def time_of(name: str) -> dt.datetime | None:
    """When the backup named ``name`` was made (from its name), or ``None`` if it is not one of ours."""
    if not (name.startswith("smsgw-") and name.endswith(SUFFIX)):
        return None
    try:
        when = dt.datetime.strptime(name[len("smsgw-"):-len(SUFFIX)], "%Y%m%dT%H%M%SZ")
    except ValueError:
        return None
    return when.replace(tzinfo=dt.timezone.utc)


def to_keep(times: list[dt.datetime], daily: int, weekly: int, monthly: int) -> set[dt.datetime]:
    """The newest backup of each of the ``daily`` latest days that have one, of the ``weekly``
    latest ISO weeks and of the ``monthly`` latest months; the newest backup always."""
    keep = set(times[:1])
    for count, period in ((daily, lambda t: t.date()), (weekly, lambda t: t.isocalendar()[:2]),
                          (monthly, lambda t: (t.year, t.month))):
        seen = []
        for t in sorted(times, reverse=True):
            p = period(t)
            if p not in seen:
                if len(seen) == count:
                    break
                seen.append(p)
                keep.add(t)
    return keep


def prune(directory: Path, daily: int, weekly: int, monthly: int, progress=None) -> list[Path]:
    """Delete the backups (and their manifests) retention does not keep; the deleted files."""
    say = progress or (lambda msg: None)
    found = backups_in(directory)
    keep = to_keep([t for t, _ in found], daily, weekly, monthly)
    deleted = []
    for when, path in found:
        if when not in keep:
            path.unlink(missing_ok=True)
            path.with_suffix(".manifest.json").unlink(missing_ok=True)
            deleted.append(path)
            say(f"Deleted {path.name} (retention)")
    return deleted


def prune_bucket(bucket, daily: int, weekly: int, monthly: int, progress=None) -> list[str]:
    """:func:`prune` for an S3 target: delete the objects retention does not keep; their names."""
    say = progress or (lambda msg: None)
    found = sorted(((when, name) for name in bucket.names() if (when := time_of(name)) is not None), reverse=True)
    keep = to_keep([t for t, _ in found], daily, weekly, monthly)
    deleted = []
    for when, name in found:
        if when not in keep:
            bucket.delete(name)
            bucket.delete(name[:-len(SUFFIX)] + ".manifest.json")
            deleted.append(name)
            say(f"Deleted {name} from the bucket (retention)")
    return deleted


def backup_to_bucket(platform, target: str, progress=None) -> Written:
    """A backup staged in a temporary directory (bounded memory), then uploaded to ``target``
    (``s3://bucket/prefix``, :mod:`core.s3`) with its manifest; the local copy is removed."""
    import tempfile

    from .s3 import Bucket

    say = progress or (lambda msg: None)
    bucket = Bucket.from_env(target)
    with tempfile.TemporaryDirectory(prefix="smsgw-backup-") as tmp:
        written = backup(platform, Path(tmp), progress=progress)
        for path in (written.path, written.path.with_suffix(".manifest.json")):
            say(f"Uploading {path.name} to {target} ...")
            bucket.put(path.name, path)
    return written


# -- the command line ----------------------------------------------------------------------------

def add_commands(sub) -> None:
    """``smsgw backup`` and ``smsgw restore``."""
    b = sub.add_parser(
        "backup", help="write an encrypted backup of the whole platform, and delete old ones",
        description="Write an encrypted backup of the whole database (pg_dump, custom format) and the "
                    "platform's secrets to a directory, with a manifest beside it; then, with --keep-*, delete "
                    "the backups retention does not keep. The key: SMSGW_BACKUP_KEY or secrets/backup-key "
                    "(keep a copy elsewhere: without it no backup can be read).")
    b.add_argument("--dir", metavar="DIR", default=None, help="where backups go (default SMSGW_BACKUP_DIR)")
    b.add_argument("--to", metavar="s3://BUCKET/PREFIX", default=None,
                   help="an S3-compatible bucket instead of a directory (SMSGW_BACKUP_S3_ENDPOINT, _ACCESS_KEY, "
                        "_SECRET_KEY, _REGION); retention applies to the bucket")
    for period, unit, default in (("daily", "days", 7), ("weekly", "weeks", 4), ("monthly", "months", 6)):
        b.add_argument(f"--keep-{period}", type=int, default=None, metavar="N",
                       help=f"keep the newest backup of each of the last N {unit} that have one "
                            f"(default SMSGW_BACKUP_KEEP_{period.upper()} or {default})")
    b.add_argument("--no-prune", action="store_true", help="delete nothing")
    r = sub.add_parser(
        "restore", help="restore a backup into an empty database",
        description="Check every byte of a backup (nothing is written if one fails), then restore it into the "
                    "platform's database, which must be empty: a new SMSGW_DATA_DIR for the embedded server, or a "
                    "new database for DATABASE_URL. Needs the backup's key in SMSGW_BACKUP_KEY.")
    r.add_argument("file", help="the .backup file")
    r.add_argument("--verify-only", action="store_true", help="only check the file; restore nothing")


def command(platform, args) -> int:
    s = platform.settings
    if args.command == "backup" and not args.to and not args.dir and s.backup_dir.startswith("s3://"):
        args.to = s.backup_dir  # SMSGW_BACKUP_DIR may name a bucket
    if args.command == "backup" and args.to:
        from .s3 import Bucket, S3Error

        try:
            bucket = Bucket.from_env(args.to)  # checked before anything is dumped
            platform.start_database(progress=print)
            backup_to_bucket(platform, args.to, progress=print)
            if not args.no_prune:
                prune_bucket(bucket, _or(args.keep_daily, s.backup_keep_daily), _or(args.keep_weekly, s.backup_keep_weekly),
                             _or(args.keep_monthly, s.backup_keep_monthly), progress=print)
        except S3Error as exc:
            raise BackupError(str(exc)) from None
        return 0
    if args.command == "backup":
        directory = args.dir or s.backup_dir
        if not directory:
            raise BackupError("say where backups go: --dir DIR or SMSGW_BACKUP_DIR")
        platform.start_database(progress=print)
        backup(platform, Path(directory), progress=print)
        if not args.no_prune:
            prune(Path(directory), _or(args.keep_daily, s.backup_keep_daily), _or(args.keep_weekly, s.backup_keep_weekly),
                  _or(args.keep_monthly, s.backup_keep_monthly), progress=print)
        return 0
    if args.verify_only:
        facts = verify(Path(args.file), backup_key(platform.secrets, create=False))
        print(f"{args.file}: intact; made {facts['created']} of {facts['tenants']} workspace(s), "
              f"schema {json.dumps(facts['schema_versions']['public'])}")
        return 0
    facts = restore(platform, Path(args.file), progress=print)
    print(f"Restored the backup of {facts['created']} ({facts['tenants']} workspace(s)).")
    return 0


def _or(value, default):
    return default if value is None else value


def scheduled(platform) -> None:
    """The worker's nightly backup (``SMSGW_BACKUP_DIR`` set): one backup, then retention."""
    s = platform.settings
    if s.backup_dir.startswith("s3://"):  # a bucket (core/s3.py)
        from .s3 import Bucket

        backup_to_bucket(platform, s.backup_dir)
        prune_bucket(Bucket.from_env(s.backup_dir), s.backup_keep_daily, s.backup_keep_weekly, s.backup_keep_monthly)
        return
    backup(platform, Path(s.backup_dir))
    prune(Path(s.backup_dir), s.backup_keep_daily, s.backup_keep_weekly, s.backup_keep_monthly)
