"""One controller per SQLite file: the lock beside the database, from this process and
from another one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ryu_sched.db import Database, DatabaseInUse
from ryu_sched.db.sole_use import SoleUseLock, lock_path

HOLD_AND_REPORT = """
import sys
from ryu_sched.db import Database, DatabaseInUse
db = Database(sys.argv[1])
try:
    db.create_schema()
except DatabaseInUse as exc:
    print(exc)
    sys.exit(3)
print("claimed")
"""


def _other_process(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", HOLD_AND_REPORT, url], capture_output=True,
                          text=True, timeout=60, check=False)


def test_a_second_process_is_refused_while_the_first_uses_the_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ryu.sqlite"
    db = Database(url)
    db.create_schema()
    try:
        other = _other_process(url)
        assert other.returncode == 3, other.stderr
        assert "in use by another ryu-sched controller" in other.stdout
        assert f"pid {os.getpid()}" in other.stdout
        assert "PostgreSQL" in other.stdout
    finally:
        db.dispose()
    again = _other_process(url)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "claimed" in again.stdout


def test_the_lock_is_per_open_file_so_a_second_database_in_one_process_is_refused(
        tmp_path: Path) -> None:
    first = Database(f"sqlite:///{tmp_path}/ryu.sqlite")
    first.create_schema()
    second = Database(f"sqlite:///{tmp_path}/ryu.sqlite")
    with pytest.raises(DatabaseInUse):
        second.create_schema()
    first.dispose()
    second.create_schema()
    second.dispose()


def test_the_lock_file_sits_beside_the_database_and_names_its_holder(tmp_path: Path) -> None:
    database = tmp_path / "state" / "ryu.sqlite"
    database.parent.mkdir()
    lock = SoleUseLock.acquire(str(database))
    try:
        assert lock.path == lock_path(str(database)) == f"{database}.lock"
        assert Path(lock.path).read_text().strip() == str(os.getpid())
    finally:
        lock.release()
    assert not lock.held
    assert Path(lock.path).read_text() == ""


def test_an_in_memory_database_needs_no_lock(tmp_path: Path) -> None:
    db = Database("sqlite://")
    db.create_schema()
    assert db.sqlite_path is None
    db.dispose()
