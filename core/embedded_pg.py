"""An embedded PostgreSQL under the data dir, from the binaries the ``pgserver`` package ships.

Used when ``DATABASE_URL`` is unset, so that ``make run`` needs nothing installed. ``pgserver``
comes with the ``embedded`` extra (``pip install 'smsgw[embedded]'``), which ``make`` installs.
Unlike ``pgserver.get_server`` we initialise with password authentication (a
generated superuser password in the secret store), so the serving role really
is limited to its own grants, and we listen only on a Unix socket.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote

from .secretstore import SecretStore

log = logging.getLogger(__name__)

PG_USER = "postgres"
SYSTEM_USER = "pgserver"  # PostgreSQL refuses to run as root; this user runs it then.


class EmbeddedPostgresError(RuntimeError):
    pass


def _pgserver_commands():
    import warnings

    with warnings.catch_warnings():
        # pgserver's package import probes XDG_RUNTIME_DIR, which we do not use.
        warnings.simplefilter("ignore")
        try:
            import pgserver._commands as commands
        except ModuleNotFoundError as exc:
            if exc.name != "pgserver":
                raise  # pgserver is there but broken: its own error says more than ours
            # An extra, so that hosts with a DATABASE_URL do not download PostgreSQL binaries.
            raise EmbeddedPostgresError(
                "DATABASE_URL is not set, so the platform would start its embedded PostgreSQL, but the "
                "pgserver package that ships it is not installed. Install it with pip install "
                "'smsgw[embedded]' (in the project folder: pip install '.[embedded]'; `make run` does "
                "this), or set DATABASE_URL to your PostgreSQL server."
            ) from None
    return commands


def _bin(name: str) -> str:
    return str(_pgserver_commands().POSTGRES_BIN_PATH / name)


class EmbeddedPostgres:
    """One PostgreSQL cluster in ``<data_dir>/pg``; ``start()`` reuses a running one."""

    def __init__(self, data_dir: Path, fast: bool = False):
        self.data_dir = Path(data_dir).resolve()
        self.pgdata = self.data_dir / "pg"
        self.logfile = self.data_dir / "pg.log"
        self.fast = fast
        self.secrets = SecretStore(self.data_dir)
        self.started_here = False
        self.stopped_here = False
        self._as_root = os.geteuid() == 0
        self._users_fd: int | None = None

    # -- paths and users -------------------------------------------------
    @property
    def socket_dir(self) -> Path:
        local = self.data_dir / "pg-run"
        # Unix socket paths are limited to ~107 bytes; fall back to /tmp.
        if len(str(local / ".s.PGSQL.5432")) < 100:
            return local
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"smsgw-pg-{digest}"

    def _run_kwargs(self):
        if not self._as_root:
            return {}
        return {"user": SYSTEM_USER}

    def _prepare_root(self, *paths: Path):
        if not self._as_root:
            return
        commands = _pgserver_commands()
        from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists
        import pwd
        import stat

        ensure_user_exists(SYSTEM_USER)
        pw = pwd.getpwnam(SYSTEM_USER)
        bin_path = commands.POSTGRES_BIN_PATH
        ensure_prefix_permissions(bin_path)
        rx = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
        ensure_folder_permissions(bin_path, rx)
        ensure_folder_permissions(bin_path.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        share = bin_path.parent / "share"
        if share.exists():
            ensure_folder_permissions(share, stat.S_IRGRP | stat.S_IROTH)
        for p in paths:
            ensure_prefix_permissions(p)
            os.chown(p, pw.pw_uid, pw.pw_gid)

    # -- lifecycle --------------------------------------------------------
    def password(self) -> str:
        return self.secrets.get("pg-superuser-password")

    def admin_url(self, database: str = "postgres") -> str:
        return (
            f"postgresql://{PG_USER}:{quote(self.password(), safe='')}@/{database}"
            f"?host={quote(str(self.socket_dir), safe='')}"
        )

    def is_running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        result = subprocess.run(
            [_bin("pg_ctl"), "-D", str(self.pgdata), "status"],
            capture_output=True, text=True, **self._run_kwargs(),
        )
        return result.returncode == 0

    def initdb(self):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(exist_ok=True)
        os.chmod(self.pgdata, 0o700)
        with tempfile.TemporaryDirectory() as tmp:
            pwfile = Path(tmp) / "pw"
            pwfile.write_text(self.password() + "\n")
            os.chmod(pwfile, 0o600)
            self._prepare_root(self.pgdata, Path(tmp), pwfile)
            result = subprocess.run(
                [_bin("initdb"), "-D", str(self.pgdata), "-U", PG_USER,
                 "--auth=scram-sha-256", f"--pwfile={pwfile}",
                 "--encoding=UTF8", "--locale=C", "--no-instructions"],
                capture_output=True, text=True, **self._run_kwargs(),
            )
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> str:
        """Start (or reuse) the cluster; return the superuser URL of database ``postgres``."""
        _pgserver_commands()  # without pgserver, say so before creating anything
        if not (self.pgdata / "PG_VERSION").exists():
            if self.pgdata.exists() and any(self.pgdata.iterdir()):
                raise EmbeddedPostgresError(
                    f"{self.pgdata} exists but holds no PostgreSQL cluster; move it away and retry"
                )
            log.info("initialising embedded PostgreSQL in %s", self.pgdata)
            self.initdb()
        if self.is_running():
            log.info("reusing the embedded PostgreSQL already running on %s", self.pgdata)
            return self.admin_url()
        sock = self.socket_dir
        sock.mkdir(parents=True, exist_ok=True)
        # The server's log names roles, databases and failing statements: for this account only,
        # like the secrets beside it (an older install's log is narrowed too).
        os.close(os.open(self.logfile, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        os.chmod(self.logfile, 0o600)
        self._prepare_root(sock, self.logfile)
        options = [
            "-c listen_addresses=''",
            f"-k {sock}",
            "-c max_connections=400",
            "-c shared_buffers=128MB",
            # Each autovacuum round looks at every table of every workspace (~30 each with their
            # TOAST tables): at 3,000 idle workspaces a round every minute cost 1.5 CPU-s, most of
            # what PostgreSQL spent doing nothing. Every 10 minutes instead: a busy table still gets
            # its vacuum, at most 10 minutes later than it would have (issue 25).
            "-c autovacuum_naptime=10min",
        ]
        if self.fast:
            # Tests and benchmarks throw their data away: durability buys nothing there.
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        result = subprocess.run(
            [_bin("pg_ctl"), "-D", str(self.pgdata), "-w", "-t", "60", "-l", str(self.logfile),
             "-o", " ".join(options), "start"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **self._run_kwargs(),
        )
        if result.returncode != 0:
            tail = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
            raise EmbeddedPostgresError(
                f"PostgreSQL did not start ({result.stderr.strip()}). Last lines of {self.logfile}:\n{tail}"
            )
        self.started_here = True
        return self.admin_url()

    def stop(self, mode: str = "fast"):
        """Stop the cluster: ``fast`` (clean), or ``immediate`` (no checkpoint: what a crash
        leaves; the next start recovers from the WAL)."""
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"unknown stop mode {mode!r}")
        if not self.is_running():
            return
        subprocess.run(
            [_bin("pg_ctl"), "-D", str(self.pgdata), "-m", mode, "-w", "stop"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **self._run_kwargs(),
        )

    # -- sharing: many processes of the platform, one cluster ---------------
    # Every process that uses the cluster holds a shared lock on ``pg.users.lock`` for as long as
    # it does; the last one out (it gets the lock exclusively) stops the cluster. So stopping one
    # `smsgw serve` never stops PostgreSQL under another, and a CLI command run beside a server
    # leaves it running, whoever started it.
    @property
    def users_lock(self) -> Path:
        return self.data_dir / "pg.users.lock"

    def attach(self) -> str:
        """Use the cluster: start it if needed; returns the superuser URL. Pair with :meth:`detach`."""
        if self._users_fd is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.users_lock, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_SH)  # waits while a last user is stopping the cluster
            self._users_fd = fd
        return self.start()

    def detach(self) -> bool:
        """Stop using the cluster; stop it if no other process of the platform uses it.
        Returns whether this process stopped it."""
        fd, self._users_fd = self._users_fd, None
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # another serve, worker or command still uses it
            if self.is_running():
                self.stop()
                self.stopped_here = True
            return self.stopped_here
        finally:
            os.close(fd)

    def postmaster_pid(self) -> int | None:
        """The pid ``postmaster.pid`` names, or None (not running, or the file being written)."""
        try:
            return int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def postmaster_alive(self) -> bool:
        """Cheap liveness (no subprocess): the pid in ``postmaster.pid`` is a live process."""
        pid = self.postmaster_pid()
        return pid is not None and process_running(pid)

    def destroy(self):
        self.stop()
        shutil.rmtree(self.pgdata, ignore_errors=True)


def process_running(pid: int) -> bool:
    """True while ``pid`` runs. A zombie (dead, not yet reaped) counts as gone: a postmaster killed
    with SIGKILL stays one where PID 1 does not reap orphans (some containers), and the pid file it
    leaves behind must not make it look alive to the supervisor."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: fall back to a signal probe
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True


class Supervisor:
    """Restarts the embedded cluster when it dies, in every long-running process that uses it.

    Each serve/worker process checks the postmaster every ``interval`` seconds; one that finds it
    gone restarts it (a lock file makes sure only one process tries at a time), says so in the
    log, and backs off (1 s doubling to 30 s) while starting fails. Database work meanwhile
    answers 503 (see :mod:`core.outage`) and recovers by itself once the cluster is back.
    """

    def __init__(self, pg: EmbeddedPostgres, interval: float = 1.0):
        self.pg, self.interval = pg, interval
        self.restarts = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Supervisor":
        self._thread = threading.Thread(target=self._run, name="pg-supervisor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.wait(self.interval):
            if self.pg.postmaster_alive():
                backoff = 1.0
                continue
            fd = os.open(self.pg.data_dir / "pg.supervisor.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # another process is restarting it
                if self.pg.postmaster_alive() or self._stop.is_set():
                    continue
                log.error("the embedded PostgreSQL in %s is not running; restarting it", self.pg.pgdata)
                try:
                    self.pg.start()
                    if not self.pg.postmaster_alive():
                        # pg_ctl counts a dead postmaster its parent has not reaped yet as running
                        raise EmbeddedPostgresError("the old postmaster has exited but is not reaped yet")
                    self.restarts += 1
                    log.warning("the embedded PostgreSQL is running again")
                    backoff = 1.0
                except Exception as exc:  # noqa: BLE001 - any failure: say it, wait, try again
                    log.error("restarting the embedded PostgreSQL failed (%s); next try in %.0f s",
                              str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__,
                              backoff)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, 30.0)
            finally:
                os.close(fd)
