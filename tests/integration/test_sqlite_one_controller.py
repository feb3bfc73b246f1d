"""A SQLite database serves one controller: a second one on the same file stops at start
and says why; once the first has stopped, the file is free again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.controller import ControllerProcess

pytestmark = pytest.mark.integration


def test_a_second_controller_on_the_same_sqlite_file_refuses_to_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.sqlite"
    first = ControllerProcess(tmp_path / "first", {"connection": url})
    second = ControllerProcess(tmp_path / "second", {"connection": url})
    try:
        first.start()
        with pytest.raises(RuntimeError, match=r"controller exited with [1-9]"):
            second.start()
        log = second.log_text()
        assert f"the SQLite database {tmp_path}/shared.sqlite is in use by another " \
               "ryu-sched controller" in log
        assert f"(pid {first.proc.pid})" in log  # type: ignore[union-attr]
        assert "use PostgreSQL to run several" in log
        assert first.alive()
        status, _body = first.request("GET", "/v2.0/networks")
        assert status == 200

        first.stop()
        second.start()          # the lock went with the first controller
        status, _body = second.request("GET", "/v2.0/networks")
        assert status == 200
    finally:
        second.stop()
        first.stop()
