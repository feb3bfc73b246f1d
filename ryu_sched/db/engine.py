"""Engine and unit-of-work sessions, on SQLite (the default) or PostgreSQL.

SQLite runs under the eventlet hub: every SQLite call blocks the whole process, so a writer
waiting on SQLite's file lock would block the green thread holding it forever. We therefore
serialise sessions with one (green) re-entrant lock on SQLite, over one shared connection.
A SQLite file serves one controller process: :meth:`Database.create_schema` takes an
exclusive lock beside it (``db/sole_use.py``) that a second controller cannot get.

PostgreSQL (``postgresql+psycopg://``, psycopg 3) uses a real connection pool and the
server's own locking; under eventlet psycopg's waits are made green (``db/green.py``) so
that a query in progress does not stop the other green threads.

The schema is managed by migrations (``db/migrations``): :meth:`Database.create_schema`
brings the database to the code's newest revision, or refuses one migrated by newer code.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from ryu_sched.db import green, migrations
from ryu_sched.db.migrations import SchemaStatus
from ryu_sched.db.sole_use import SoleUseLock

POSTGRES_POOL_SIZE = 10
POSTGRES_MAX_OVERFLOW = 10


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Database:
    """Owns the engine; hands out sessions, one per unit of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = make_url(url)
        self.backend = parsed.get_backend_name()
        self.is_sqlite = self.backend == "sqlite"
        # The file of a SQLite database; None in memory.
        self.sqlite_path: str | None = (
            parsed.database if self.is_sqlite and parsed.database
            and parsed.database != ":memory:" and not parsed.database.startswith("file:")
            else None)
        if self.is_sqlite:
            self.engine: Engine = create_engine(
                url, connect_args={"check_same_thread": False}, poolclass=StaticPool)
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            green.prepare_driver(self.backend, parsed.get_driver_name())
            self.engine = create_engine(url, pool_pre_ping=True,
                                        pool_size=POSTGRES_POOL_SIZE,
                                        max_overflow=POSTGRES_MAX_OVERFLOW)
        self._lock = threading.RLock()
        self._factory = sessionmaker(self.engine, expire_on_commit=False)
        self._sole_use: SoleUseLock | None = None

    @property
    def display_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def claim_sole_use(self) -> None:
        """On a SQLite file: take (and keep until :meth:`dispose`) the lock that keeps a
        second controller off it; raises :class:`~ryu_sched.db.errors.DatabaseInUse` when
        another process has it. Nothing on PostgreSQL or in memory."""
        if self.sqlite_path is not None and self._sole_use is None:
            self._sole_use = SoleUseLock.acquire(self.sqlite_path)

    def create_schema(self) -> SchemaStatus:
        """Make the database ready for this code, at start: claim a SQLite file for this
        process, then migrate to the newest schema revision (creating it in an empty
        database, adopting one made before migrations). Raises
        :class:`~ryu_sched.db.errors.UnknownSchemaRevision` for a database migrated by a
        newer ryu-sched. Returns the status found before migrating."""
        self.claim_sole_use()
        with self._lock:
            return migrations.upgrade(self.engine, url_for_messages=self.display_url)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends, rolled back on an exception."""
        lock = self._lock if self.is_sqlite else contextlib.nullcontext()
        with lock:
            session = self._factory()
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()

    def dispose(self) -> None:
        self.engine.dispose()
        if self._sole_use is not None:
            self._sole_use.release()
            self._sole_use = None
