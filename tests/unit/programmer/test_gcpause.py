"""The garbage collector is off exactly while some bulk work holds it off."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from ryu_sched.programmer.gcpause import GcPause


@pytest.fixture(autouse=True)
def gc_enabled_again() -> Iterator[None]:
    assert gc.isenabled()
    yield
    gc.enable()


def test_off_while_any_holder_holds() -> None:
    pause = GcPause()
    pause.hold("read-1")
    pause.hold("read-2")
    assert not gc.isenabled()
    pause.release("read-1")
    assert not gc.isenabled()
    pause.release("read-2")
    assert gc.isenabled() and not pause.holding


def test_released_when_the_block_ends_even_on_error() -> None:
    pause = GcPause()
    with pytest.raises(RuntimeError), pause.held("sync"):
        assert not gc.isenabled()
        raise RuntimeError
    assert gc.isenabled()


def test_an_abandoned_hold_expires() -> None:
    pause = GcPause()
    pause.hold("switch that went silent")
    pause.expire(max_age=3600)
    assert not gc.isenabled()
    pause.expire(max_age=0)
    assert gc.isenabled() and not pause.holding


def test_a_collector_disabled_by_someone_else_stays_disabled() -> None:
    gc.disable()
    pause = GcPause()
    with pause.held("sync"):
        pass
    assert not gc.isenabled()
