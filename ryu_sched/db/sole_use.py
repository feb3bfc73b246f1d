"""One controller per SQLite file: an exclusive lock on ``<database>.lock`` beside it.

SQLite's own locking only serialises transactions; two controllers on one file would each
run the registry's monitor and scheduler and program the switches from their own memory.
So a controller takes an exclusive ``flock`` on a lock file next to the database and keeps
it (and its file descriptor) for as long as it uses the database; the kernel drops it when
the process ends, however it ends. A second controller finds the lock taken and refuses
to start, naming the process that holds it. Several controllers need PostgreSQL.
"""

from __future__ import annotations

import contextlib
import fcntl
import os

from ryu_sched.db.errors import DatabaseInUse


def lock_path(database_path: str) -> str:
    return database_path + ".lock"


class SoleUseLock:
    """The held lock; :meth:`release` (or process exit) lets another controller in."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, database_path: str) -> SoleUseLock:
        path = lock_path(os.path.abspath(database_path))
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise DatabaseInUse(
                f"the SQLite database {database_path} is in use by another ryu-sched "
                f"controller{holder} (lock file {path}); a SQLite database serves one "
                "controller: stop the other one, or use PostgreSQL to run several "
                "(docs/operations.md)") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)  # closing the descriptor drops the flock


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
