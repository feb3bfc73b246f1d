"""The leader lease on real PostgreSQL: terms and takeovers, the fence, electors in one
process and in two, a leader frozen by SIGSTOP, a database that goes away.

Deadlines below are generous bounds for polling, not measurements: each takeover must
happen, and it is allowed lease time + renewal period + plenty of slack for a loaded
machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from ryu_sched.db import Database
from ryu_sched.leadership import FencedOut, LeaderElector, Lease, fenced_write
from tests.support.controller import wait_until
from tests.support.green_wait import green_wait_until
from tests.support.postgres import PostgresCluster, start_cluster

pytestmark = pytest.mark.integration

LEASE_TIME = 1.0
TAKEOVER_DEADLINE = 20.0


@pytest.fixture
def db(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)
    database.create_schema()
    yield database
    database.dispose()


@pytest.fixture
def other_db(postgres_url: str, db: Database) -> Iterator[Database]:
    """A second controller's view of the same database (its own engine and pool)."""
    database = Database(postgres_url)
    yield database
    database.dispose()


def take_over(lease: Lease, holder: str) -> Any:
    """Keep trying, as an elector would, until ``holder`` gets the lease."""
    def attempt() -> Any:
        try:
            state = lease.acquire_or_renew(holder, LEASE_TIME)
        except DBAPIError:          # lock_timeout while another transaction holds the row
            return None
        return state if state.is_leader else None
    return wait_until(attempt, TAKEOVER_DEADLINE, 0.1, f"{holder} to take the lease")


# --- the lease, call by call ----------------------------------------------------------

def test_renewals_keep_the_term_and_a_lapsed_lease_goes_to_the_next_term(
        db: Database, other_db: Database) -> None:
    a, b = Lease(db), Lease(other_db)
    first = a.acquire_or_renew("A", LEASE_TIME)
    assert (first.is_leader, first.epoch, first.holder) == (True, 1, "A")
    assert 0 < first.expires_in <= LEASE_TIME
    refused = b.acquire_or_renew("B", LEASE_TIME)
    assert (refused.is_leader, refused.epoch, refused.holder) == (False, 1, "A")
    assert refused.expires_in > 0
    renewed = a.acquire_or_renew("A", LEASE_TIME)
    assert (renewed.is_leader, renewed.epoch) == (True, 1)

    taken = take_over(b, "B")                      # A stopped renewing
    assert taken.epoch == 2
    assert a.acquire_or_renew("A", LEASE_TIME).holder == "B"
    current = a.current()
    assert current is not None and (current.holder, current.epoch) == ("B", 2)

    assert b.release("B", 2)
    again = a.acquire_or_renew("A", LEASE_TIME)    # released: no need to wait
    assert (again.is_leader, again.epoch) == (True, 3)
    assert not b.release("B", 2)                   # not ours any more


def test_the_fence_admits_only_the_current_epoch(db: Database, other_db: Database) -> None:
    Lease(db).acquire_or_renew("A", LEASE_TIME)
    with db.session() as session:
        fenced_write(session, 1)
        session.execute(text("CREATE TABLE written (epoch int)"))
        session.execute(text("INSERT INTO written VALUES (1)"))
    take_over(Lease(other_db), "B")
    with pytest.raises(FencedOut) as refused, db.session() as session:
        session.execute(text("INSERT INTO written VALUES (1)"))
        fenced_write(session, 1)
    assert (refused.value.ours, refused.value.stored, refused.value.holder) == (1, 2, "B")
    with db.session() as session:
        assert session.scalars(text("SELECT epoch FROM written")).all() == [1]


def test_a_takeover_waits_for_a_fenced_transaction_to_end(db: Database,
                                                          other_db: Database) -> None:
    """The fence share-locks the lease row: a write that passed it commits before any new
    term can begin."""
    Lease(db).acquire_or_renew("A", LEASE_TIME)
    contender = Lease(other_db)
    with db.session() as session:
        fenced_write(session, 1)
        # A's lease lapses while its write is open; B is kept out until it ends.
        wait_until(lambda: (Lease(other_db).current() or Lease(db).current()).expires_in < 0,
                   TAKEOVER_DEADLINE, 0.1, "A's lease to lapse")
        with pytest.raises(DBAPIError, match="lock"):
            contender.acquire_or_renew("B", LEASE_TIME)
    assert take_over(contender, "B").epoch == 2


def test_a_leader_frozen_inside_a_fenced_transaction_is_cut_off_by_the_server(
        db: Database, other_db: Database) -> None:
    """idle_timeout: the server ends a fenced transaction left idle (its process frozen),
    which frees the row for the next leader; the frozen write never commits."""
    Lease(db).acquire_or_renew("A", LEASE_TIME)
    with pytest.raises(DBAPIError), db.session() as session:
        fenced_write(session, 1, idle_timeout=LEASE_TIME)
        session.execute(text("CREATE TABLE frozen_write (x int)"))
        assert take_over(Lease(other_db), "B").epoch == 2   # "A" sleeps meanwhile
        # A wakes up and tries to commit: its session is gone.
    with other_db.session() as session:
        assert session.scalar(text("SELECT to_regclass('frozen_write')")) is None


# --- electors in one process ------------------------------------------------------------

class Events:
    def __init__(self, name: str) -> None:
        self.name = name
        self.log: list[tuple[str, int | None]] = []

    def elected(self, epoch: int) -> None:
        self.log.append(("elected", epoch))

    def demoted(self) -> None:
        self.log.append(("demoted", None))


def make_elector(db: Database, name: str) -> tuple[LeaderElector, Events]:
    events = Events(name)
    return LeaderElector(Lease(db), LEASE_TIME, holder=name, on_elected=events.elected,
                         on_demoted=events.demoted), events


@pytest.mark.parametrize("release", [False, True], ids=["crash", "clean-stop"])
def test_two_electors_one_leader_and_a_takeover_with_a_higher_epoch(
        db: Database, other_db: Database, release: bool) -> None:
    first, first_events = make_elector(db, "first")
    second, second_events = make_elector(other_db, "second")
    electors = {"first": first, "second": second}
    first.start()
    second.start()
    try:
        green_wait_until(lambda: first.attempts >= 3 and second.attempts >= 3,
                         TAKEOVER_DEADLINE, "both electors to have tried")
        green_wait_until(lambda: first.is_leader or second.is_leader, TAKEOVER_DEADLINE,
                         "a leader")
        leaders = [e for e in electors.values() if e.is_leader]
        assert len(leaders) == 1
        leader = leaders[0]
        follower = second if leader is first else first
        old_epoch = leader.epoch
        assert old_epoch is not None
        assert follower.last_state is not None
        assert (follower.last_state.holder, follower.last_state.epoch) == \
            (leader.holder, old_epoch)

        leader.stop(release=release)    # release=False: it just stops renewing
        green_wait_until(lambda: follower.is_leader, TAKEOVER_DEADLINE, "the takeover")
        assert follower.epoch is not None and follower.epoch > old_epoch
        assert not leader.is_leader
        with pytest.raises(FencedOut), db.session() as session:
            fenced_write(session, old_epoch)
        with pytest.raises(FencedOut), db.session() as session:
            leader.fence(session)
        with other_db.session() as session:
            assert follower.fence(session) == follower.epoch
        logs = {first_events.name: first_events.log, second_events.name: second_events.log}
        assert logs[leader.holder] == [("elected", old_epoch), ("demoted", None)]
        assert logs[follower.holder] == [("elected", follower.epoch)]
    finally:
        first.stop(release=False)
        second.stop(release=False)


def test_a_leader_that_loses_the_database_steps_down_by_itself() -> None:
    """Its own cluster: the server is stopped under a leading elector, which demotes
    itself once its lease may have lapsed; when the server is back it leads again."""
    cluster: PostgresCluster = start_cluster()
    try:
        url = cluster.create_database()
        database = Database(url)
        database.create_schema()
        elector, events = make_elector(database, "alone")
        elector.start()
        try:
            green_wait_until(lambda: elector.is_leader, TAKEOVER_DEADLINE, "election")
            epoch = elector.epoch
            assert epoch is not None
            cluster.stop(mode="immediate")
            # (is_leader turns false as soon as the lease's deadline passes on the local
            # clock; the demotion callback follows from the elector's own thread)
            green_wait_until(lambda: ("demoted", None) in events.log, TAKEOVER_DEADLINE,
                             "local demotion")
            assert not elector.is_leader
            assert events.log == [("elected", epoch), ("demoted", None)]
            cluster.restart()
            green_wait_until(lambda: elector.is_leader, TAKEOVER_DEADLINE, "re-election")
            assert elector.epoch is not None and elector.epoch >= epoch
        finally:
            elector.stop(release=False)
            database.dispose()
    finally:
        cluster.destroy()


# --- electors in two processes ----------------------------------------------------------

class LeaseProcess:
    """tests/support/lease_holder.py in a subprocess; its JSON lines collected."""

    def __init__(self, url: str, holder: str) -> None:
        self.holder = holder
        self.events: list[dict[str, Any]] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.support.lease_holder", url, holder,
             str(LEASE_TIME)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.stderr = ""

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e["event"] == event]

    def wait_for(self, predicate: Any, message: str) -> Any:
        def check() -> Any:
            if self.proc.poll() is not None and self.proc.returncode != 0:
                raise RuntimeError(f"{self.holder} exited {self.proc.returncode}: "
                                   f"{self.proc.stderr.read() if self.proc.stderr else ''}")
            return predicate()
        return wait_until(check, TAKEOVER_DEADLINE, 0.05, f"{self.holder}: {message}")

    def signal(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode


def probes(db: Database) -> list[tuple[int, str, int]]:
    with db.session() as session:
        return [tuple(r) for r in session.execute(  # type: ignore[misc]
            text("SELECT id, holder, epoch FROM lease_probe ORDER BY id"))]


def test_two_processes_a_frozen_leader_is_replaced_and_cannot_write_when_it_wakes(
        db: Database, postgres_url: str) -> None:
    with db.session() as session:
        session.execute(text("CREATE TABLE lease_probe (id serial PRIMARY KEY, "
                             "holder text NOT NULL, epoch bigint NOT NULL)"))
    a = LeaseProcess(postgres_url, "A")
    b: LeaseProcess | None = None
    try:
        first_epoch = a.wait_for(lambda: a.named("elected"), "election")[0]["epoch"]
        a.wait_for(lambda: a.named("wrote"), "a fenced write")
        b = LeaseProcess(postgres_url, "B")
        b.wait_for(lambda: len(b.named("attempt")) >= 3, "three attempts")
        # Exactly one leader: B saw A's lease and was not elected.
        assert b.named("elected") == []
        assert b.named("attempt")[-1]["lease_holder"] == "A"
        assert a.named("demoted") == []

        a.signal(signal.SIGSTOP)          # frozen: no renewals, no writes, sockets open
        second_epoch = b.wait_for(lambda: b.named("elected"), "the takeover")[0]["epoch"]
        assert second_epoch > first_epoch
        b.wait_for(lambda: b.named("wrote"), "a fenced write")

        a.signal(signal.SIGCONT)          # wakes up believing it leads
        a.wait_for(lambda: a.named("demoted"), "demotion")
        a.wait_for(lambda: any(e["lease_holder"] == "B" and e["lease_epoch"] == second_epoch
                               for e in a.named("attempt")), "learning the new epoch")
        rows = probes(db)
        first_term = [row_id for row_id, holder, epoch in rows if epoch == first_epoch]
        second_term = [row_id for row_id, holder, epoch in rows if epoch == second_epoch]
        assert {holder for _id, holder, epoch in rows if epoch == first_epoch} == {"A"}
        assert first_term and second_term
        assert max(first_term) < min(second_term)   # no write of the old term after
        demoted_at = a.events.index(a.named("demoted")[0])
        assert [e for e in a.events[demoted_at:] if e["event"] == "wrote"] == []
        assert b.named("demoted") == []

        # A clean stop hands over at once: the lease is released, A takes the next term.
        assert b.stop() == 0
        assert b.named("stopped")
        third = a.wait_for(lambda: [e for e in a.named("elected")
                                    if e["epoch"] > second_epoch], "the handover")
        assert third[0]["epoch"] == second_epoch + 1
    finally:
        assert a.stop() == 0
        if b is not None:
            b.stop()
