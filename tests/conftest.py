"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.controller import ControllerProcess
from tests.support.postgres import postgres_cluster, postgres_url  # noqa: F401 (fixtures)


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[ControllerProcess]:
    """A real controller process (noauth) on free ports."""
    with ControllerProcess(tmp_path / "controller") as proc:
        yield proc
