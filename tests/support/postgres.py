"""A throwaway PostgreSQL cluster for tests.

``PostgresCluster`` runs ``initdb`` and ``pg_ctl`` (as the ``postgres`` OS user when we are
root, PostgreSQL refuses to run as root) in a fresh temporary directory: the data directory
and the Unix socket directory both live there. The server listens on 127.0.0.1 on a free
port, with ``trust`` authentication and ``fsync=off`` (data survives a server crash, not an
OS crash; commits stay synchronous so that ``stop(mode="immediate")`` loses nothing). At
the end it is stopped with ``pg_ctl stop`` on its own data directory (and, should that
fail, its postmaster is killed by the pid in its own ``postmaster.pid``) and the directory
removed.

Fixtures (imported into tests/conftest.py):

- ``postgres_cluster``: one cluster per test session;
- ``postgres_url``: a fresh, empty database in it for one test, dropped afterwards;
  a SQLAlchemy URL ``postgresql+psycopg://postgres@127.0.0.1:PORT/NAME``.

Without PostgreSQL (no ``initdb``) the tests that use them are skipped, except under
``CI=true``, where that is a failure.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.controller import free_port

PG_OS_USER = "postgres"
SUPERUSER = "postgres"
BIN_GLOB = "/usr/lib/postgresql/*/bin"
ENV_BIN = "RYU_SCHED_PG_BIN"   # override: directory holding initdb and pg_ctl


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries, or no OS user to run them as."""


def find_bindir() -> Path:
    """The directory of ``initdb``/``pg_ctl``: $RYU_SCHED_PG_BIN, else the newest
    /usr/lib/postgresql/N/bin (Debian's layout)."""
    candidates = [os.environ[ENV_BIN]] if os.environ.get(ENV_BIN) else sorted(
        glob.glob(BIN_GLOB), key=lambda p: int(Path(p).parent.name)
        if Path(p).parent.name.isdigit() else 0, reverse=True)
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    raise PostgresUnavailable(
        f"no PostgreSQL server binaries (initdb, pg_ctl) in {BIN_GLOB} or ${ENV_BIN}: "
        "apt-get install postgresql")


class PostgresCluster:
    """One private PostgreSQL server; :meth:`start` then :meth:`stop` (or use ``with``)."""

    def __init__(self, bindir: Path | None = None, timeout: float = 60.0) -> None:
        self.bindir = bindir or find_bindir()
        self.timeout = timeout
        self.as_root = os.geteuid() == 0
        if self.as_root:
            try:
                self._pg_user = pwd.getpwnam(PG_OS_USER)
            except KeyError:
                raise PostgresUnavailable(f"no {PG_OS_USER!r} OS user to run PostgreSQL "
                                          "as (we are root)") from None
        self.host = "127.0.0.1"
        self.port = 0
        self.root: Path | None = None
        self._names = itertools.count(1)

    # --- paths ----------------------------------------------------------------------

    @property
    def datadir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def socketdir(self) -> Path:
        assert self.root is not None
        return self.root / "sockets"

    @property
    def logfile(self) -> Path:
        assert self.root is not None
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def socket_url(self, url: str) -> str:
        """``url`` through the server's Unix socket instead of TCP on 127.0.0.1: for a
        process in another network namespace (a controller in the test topology), whose
        loopback is not ours."""
        database = url.rsplit("/", 1)[1]
        return (f"postgresql+psycopg://{SUPERUSER}@/{database}"
                f"?host={self.socketdir}&port={self.port}")

    # --- lifecycle ------------------------------------------------------------------

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        argv = list(args)
        if self.as_root:
            argv = ["runuser", "-u", PG_OS_USER, "--", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout,
                              check=False, cwd=self.root, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}:\n"
                               f"{proc.stdout}{proc.stderr}{self.log_text()[-2000:]}")
        return proc

    def start(self) -> None:
        # As root the server runs as postgres, which must reach the directory: /tmp, not a
        # $TMPDIR that may sit under a private home.
        self.root = Path(tempfile.mkdtemp(prefix="ryu-sched-pg-",
                                          dir="/tmp" if self.as_root else None))
        try:
            self.socketdir.mkdir()
            if self.as_root:
                for path in (self.root, self.socketdir):
                    os.chown(path, self._pg_user.pw_uid, self._pg_user.pw_gid)
            self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", SUPERUSER,
                      "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
            self.port = free_port(self.host)
            self._pg_ctl_start()
        except BaseException:
            self.stop()
            raise

    def pid(self) -> int | None:
        """The postmaster's pid, from its own ``postmaster.pid``."""
        try:
            return int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``pg_ctl stop -m MODE``) without removing anything."""
        if self.root is None or not self.datadir.exists():
            return
        if self.running():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", mode,
                      "-w", "-t", "20", "stop", check=False)
        pid = self.pid()
        if pid is not None and self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while self.running() and time.monotonic() < deadline:
                time.sleep(0.05)

    def destroy(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def restart(self) -> None:
        """Start the stopped server again on the same port and data directory."""
        self._pg_ctl_start()

    def _pg_ctl_start(self) -> None:
        options = (f"-c listen_addresses={self.host} -p {self.port} "
                   f"-c unix_socket_directories={self.socketdir} "
                   "-c fsync=off -c full_page_writes=off "
                   "-c max_connections=200")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-l",
                  str(self.logfile), "-o", options, "-w", "-t", str(int(self.timeout)),
                  "start")

    def log_text(self) -> str:
        try:
            return self.logfile.read_text(errors="replace") if self.root else ""
        except FileNotFoundError:
            return ""

    # --- databases ------------------------------------------------------------------

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(host=self.host, port=self.port, user=SUPERUSER,
                             dbname="postgres", autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)

    def create_database(self, prefix: str = "test") -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL test cannot run under CI: {reason}")
    pytest.skip(reason)


def start_cluster() -> PostgresCluster:
    """A started cluster, or skip (fail under CI=true) when PostgreSQL is not installed."""
    try:
        cluster = PostgresCluster()
    except PostgresUnavailable as exc:
        _unavailable(str(exc))
        raise
    cluster.start()
    return cluster


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    cluster = start_cluster()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    url = postgres_cluster.create_database()
    try:
        yield url
    finally:
        postgres_cluster.drop_database(url)
