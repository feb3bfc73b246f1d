"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.controller import ControllerProcess


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[ControllerProcess]:
    """A real controller process (noauth) on free ports."""
    with ControllerProcess(tmp_path / "controller") as proc:
        yield proc
