"""The elector's state machine against a scripted lease (the database side is tested on
real PostgreSQL in tests/integration/test_postgres_lease.py): callbacks, local demotion
when renewals fail or hang, release on stop."""

from __future__ import annotations

from collections.abc import Iterator

import eventlet
import eventlet.event
import pytest

from ryu_sched.leadership import FencedOut, LeaderElector, LeaseState
from tests.support.green_wait import green_wait_until

LEASE_TIME = 0.3


class ScriptedLease:
    """Answers as told: grant, someone else holds it, fail, or hang (even past timeouts)."""

    name = "controller"

    def __init__(self) -> None:
        self.mode = "grant"
        self.epoch = 7
        self.released: list[tuple[str, int]] = []
        self.hanging = 0
        self._unhang = eventlet.event.Event()

    def acquire_or_renew(self, holder: str, lease_time: float) -> LeaseState:
        if self.mode == "grant":
            return LeaseState(True, self.epoch, holder, lease_time)
        if self.mode == "other":
            return LeaseState(False, self.epoch + 1, "someone-else", lease_time)
        if self.mode == "fail":
            raise ConnectionError("database unreachable")
        self.hanging += 1
        try:
            while True:               # a call stuck for good: it even outlives timeouts
                try:
                    self._unhang.wait()
                    raise ConnectionError("gave up")
                except eventlet.Timeout:
                    continue
        finally:
            self.hanging -= 1

    def release(self, holder: str, epoch: int) -> bool:
        self.released.append((holder, epoch))
        return True


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, int | None]] = []

    def elected(self, epoch: int) -> None:
        self.events.append(("elected", epoch))

    def demoted(self) -> None:
        self.events.append(("demoted", None))


@pytest.fixture
def lease() -> ScriptedLease:
    return ScriptedLease()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def elector(lease: ScriptedLease, recorder: Recorder) -> Iterator[LeaderElector]:
    elector = LeaderElector(lease, LEASE_TIME, holder="me",  # type: ignore[arg-type]
                            on_elected=recorder.elected, on_demoted=recorder.demoted)
    elector.start()
    try:
        yield elector
    finally:
        elector.stop(release=False)
        lease._unhang.send()


def test_elected_once_and_renewals_call_nothing_more(elector: LeaderElector,
                                                     recorder: Recorder) -> None:
    green_wait_until(lambda: elector.attempts >= 4)
    assert elector.is_leader and elector.epoch == 7
    assert recorder.events == [("elected", 7)]


@pytest.mark.parametrize("mode", ["fail", "hang"])
def test_demoted_locally_when_renewals_stop_succeeding(elector: LeaderElector,
                                                       lease: ScriptedLease,
                                                       recorder: Recorder, mode: str) -> None:
    green_wait_until(lambda: elector.is_leader)
    lease.mode = mode
    green_wait_until(lambda: ("demoted", None) in recorder.events)
    assert not elector.is_leader
    assert recorder.events == [("elected", 7), ("demoted", None)]
    if mode == "hang":
        assert lease.hanging == 1     # the renewal never returned: the timer demoted us
    with pytest.raises(FencedOut):
        elector.fence(None)  # type: ignore[arg-type]


def test_a_lease_that_lapsed_while_the_process_was_frozen_is_not_acted_on(
        lease: ScriptedLease, recorder: Recorder) -> None:
    """A process frozen past its lease (SIGSTOP) must not act on its first step after
    waking, before its watchdog had a chance to run: leadership is read from the clock."""
    now = [100.0]
    elector = LeaderElector(lease, LEASE_TIME, holder="me",  # type: ignore[arg-type]
                            on_elected=recorder.elected, on_demoted=recorder.demoted,
                            clock=lambda: now[0])
    elector.start()
    try:
        green_wait_until(lambda: elector.is_leader)
        now[0] += 10 * LEASE_TIME          # frozen: no green thread ran meanwhile
        assert not elector.is_leader and elector.epoch is None
        with pytest.raises(FencedOut):
            elector.fence(None)  # type: ignore[arg-type]
    finally:
        elector.stop(release=False)
        lease._unhang.send()


def test_demoted_when_someone_else_holds_the_lease_then_elected_again(
        elector: LeaderElector, lease: ScriptedLease, recorder: Recorder) -> None:
    green_wait_until(lambda: elector.is_leader)
    lease.mode = "other"
    green_wait_until(lambda: not elector.is_leader)
    assert elector.last_state is not None
    assert (elector.last_state.holder, elector.last_state.epoch) == ("someone-else", 8)
    lease.mode, lease.epoch = "grant", 9
    green_wait_until(lambda: elector.is_leader)
    assert recorder.events == [("elected", 7), ("demoted", None), ("elected", 9)]


def test_a_new_epoch_while_leading_is_a_new_term(elector: LeaderElector,
                                                 lease: ScriptedLease,
                                                 recorder: Recorder) -> None:
    green_wait_until(lambda: elector.is_leader)
    lease.epoch = 8
    green_wait_until(lambda: elector.epoch == 8)
    assert recorder.events == [("elected", 7), ("demoted", None), ("elected", 8)]


def test_stop_demotes_and_releases_our_term(elector: LeaderElector, lease: ScriptedLease,
                                            recorder: Recorder) -> None:
    green_wait_until(lambda: elector.is_leader)
    elector.stop(release=True)
    assert not elector.is_leader
    assert lease.released == [("me", 7)]
    assert recorder.events == [("elected", 7), ("demoted", None)]


def test_stop_as_a_follower_releases_nothing(elector: LeaderElector, lease: ScriptedLease,
                                             recorder: Recorder) -> None:
    lease.mode = "other"
    green_wait_until(lambda: elector.attempts >= 2)
    elector.stop(release=True)
    assert lease.released == []
    assert recorder.events == []


def test_a_failing_callback_does_not_stop_the_elector(lease: ScriptedLease) -> None:
    def explode(_epoch: int) -> None:
        raise RuntimeError("callback bug")

    elector = LeaderElector(lease, LEASE_TIME, holder="me",  # type: ignore[arg-type]
                            on_elected=explode)
    elector.start()
    try:
        green_wait_until(lambda: elector.attempts >= 3)
        assert elector.is_leader
    finally:
        elector.stop(release=False)


# --- the role components see ------------------------------------------------------------

def test_elected_leadership_tells_its_watchers_in_order_and_remembers_the_newest_term(
        ) -> None:
    from ryu_sched.db import Database
    from ryu_sched.leadership import ElectedLeadership, LeaderElector, Lease, LeaseState

    elector = LeaderElector(Lease(Database("sqlite://")), 1.0, "me")
    role = ElectedLeadership(elector)
    heard: list[tuple[str, object]] = []
    role.watch(on_elected=lambda e: heard.append(("elected", e)),
               on_demoted=lambda: heard.append(("demoted", None)),
               on_term=lambda e: heard.append(("term", e)))
    elector.on_answer(LeaseState(False, 4, "other", 1.0))
    elector.on_answer(LeaseState(False, 4, "other", 0.5))      # same term: not news
    elector.on_elected(5)
    elector.on_demoted()
    assert heard == [("term", 4), ("term", 5), ("elected", 5), ("demoted", None)]
    assert role.known_epoch == 5 and role.contended


def test_sole_leadership_leads_from_start_and_fences_nothing() -> None:
    from ryu_sched.leadership import SoleLeadership

    role = SoleLeadership()
    heard: list[object] = []
    role.watch(on_elected=heard.append, on_demoted=lambda: heard.append("demoted"))
    assert not role.is_leader
    role.start()
    assert role.is_leader and role.epoch == 0 and not role.contended
    role.fence(None)   # type: ignore[arg-type]
    role.stop()
    assert heard == [0, "demoted"]
