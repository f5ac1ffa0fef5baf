"""A throw-away PostgreSQL server: Debian's ``postgresql`` in a temporary folder, Unix socket only.

``postgres_server()`` runs ``initdb`` and ``pg_ctl start`` in a fresh folder and yields a
:class:`Postgres`; when the block ends the server is stopped and the folder removed. The
server listens on no TCP address at all (``listen_addresses = ''``): clients reach it
through the socket in that folder, which only its owner (and root) can open. PostgreSQL
refuses to run as root, so when the tests run as root the server runs as Debian's
``postgres`` account (created by the package); otherwise as the user running the tests.
Durability is switched off (``fsync``, ``synchronous_commit``): the data dies with the test.

The URLs it gives are SQLAlchemy's, with the psycopg 3 driver that ``requirements.txt``
pins: ``postgresql+psycopg://rnnlab@/<database>?host=<socket folder>``, the form
``CourseDirectory.db_url`` takes.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import unavailable

SUPERUSER = "rnnlab"          # the database role initdb creates
START_TIMEOUT = 120           # seconds for initdb and for the server to accept connections
STOP_TIMEOUT = 30


def server_binaries() -> Path:
    """The bin/ folder of the newest Debian PostgreSQL (``/usr/lib/postgresql/<major>/bin``)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        unavailable("Debian's postgresql is not installed (`apt-get install postgresql`; `make test` does it)")
    return found[-1].parent


def _server_account() -> pwd.struct_passwd | None:
    """The account the server runs as: ``postgres`` when we are root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        unavailable("running as root, PostgreSQL needs Debian's `postgres` account (made by the postgresql package)")


@dataclass
class Postgres:
    """A running server: its socket folder and the superuser role to connect as."""

    socket_dir: Path
    user: str = SUPERUSER

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` (psycopg 3 driver, Unix socket)."""
        return f"postgresql+psycopg://{self.user}@/{database}?host={self.socket_dir}"

    def connect(self, database: str = "postgres"):
        """A psycopg connection to ``database`` in autocommit mode."""
        import psycopg

        return psycopg.connect(host=str(self.socket_dir), user=self.user, dbname=database, autocommit=True)

    def create_database(self, name: str) -> str:
        """Create an empty database ``name``; return its SQLAlchemy URL."""
        if not name.isidentifier():
            raise ValueError(f"database name must be a plain identifier, got {name!r}")
        with self.connect() as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _run(command: list[str], account, timeout: float) -> None:
    """Run a server command as ``account`` (None: ourselves); fail with its output."""
    as_account = {} if account is None else {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd="/",
                          env={"PATH": "/usr/bin:/bin", "LC_ALL": "C"}, **as_account)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited with {done.returncode}:\n{done.stdout}{done.stderr}")


def _kill_postmaster(data: Path) -> None:
    """Last resort when ``pg_ctl stop`` failed: SIGKILL the postmaster named in its pid file."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)


@contextlib.contextmanager
def postgres_server():
    """Start a private PostgreSQL server; yield a :class:`Postgres`; stop it and delete its files."""
    binaries = server_binaries()
    account = _server_account()
    with tempfile.TemporaryDirectory(prefix="rnnlab-postgres-", ignore_cleanup_errors=True) as scratch:
        folder = Path(scratch)
        data, socket_dir, log = folder / "data", folder / "socket", folder / "server.log"
        socket_dir.mkdir()
        if account is not None:
            for path in (folder, socket_dir):
                os.chown(path, account.pw_uid, account.pw_gid)
        settings = {"listen_addresses": "''", "unix_socket_directories": f"'{socket_dir}'", "fsync": "off",
                    "synchronous_commit": "off", "full_page_writes": "off", "max_connections": "60"}
        options = " ".join(f"-c {name}={value}" for name, value in settings.items())
        pg_ctl = [str(binaries / "pg_ctl"), "-D", str(data)]
        started = False
        try:
            _run([str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8",
                  "--no-locale", "--no-instructions"], account, START_TIMEOUT)
            _run(pg_ctl + ["-l", str(log), "-o", options, "-w", "-t", str(START_TIMEOUT), "start"], account,
                 START_TIMEOUT + 10)
            started = True
            yield Postgres(socket_dir)
        finally:
            if started or (data / "postmaster.pid").exists():
                try:
                    _run(pg_ctl + ["-m", "fast", "-w", "-t", str(STOP_TIMEOUT), "stop"], account, STOP_TIMEOUT + 10)
                except (RuntimeError, subprocess.TimeoutExpired):
                    _kill_postmaster(data)
