"""Two registries on one database, as two controllers: the leader decides, the follower reads
what it decided (and what other controllers received), and tells the agents connected to it.

Both run on one SQLite file here (the logic is the database's, not the backend's); the
leader-only parts (scheduling, failover) ask the leadership, and its writes go through its
fence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from ryu_sched.config import Settings
from ryu_sched.db import Database, models
from ryu_sched.events import Action, BindingChanged, Event, EventBus, NetworkChanged
from ryu_sched.leadership import FencedOut, SoleLeadership
from ryu_sched.registry.reactions import Reactions
from ryu_sched.registry.registry import Registry
from ryu_sched.services import Services
from tests.unit.registry.world import DHCP, NETWORK, Clock, Conn, World


class Following:
    """Leadership of a controller that follows: never leads, every fenced write refused."""

    contended = True
    is_leader = False
    epoch = None
    known_epoch = 1

    def fence(self, session: Any) -> None:
        raise FencedOut("controller", -1, 1, "the leader")

    def watch(self, *args: Any, **kwargs: Any) -> None:
        return None


class Controller:
    def __init__(self, db: Database, clock: Clock, leadership: Any) -> None:
        self.services = Services(settings=Settings(agent_down_time=10), db=db,
                                 leadership=leadership)
        self.events: list[Event] = []
        self.services.bus.subscribe(self.events.append)
        self.reg = Registry(self.services, clock=clock)
        self.reactions = Reactions(self.reg)
        self.conns: dict[str, Conn] = {}

    def beat(self, host: str, agent_type: str = DHCP) -> str:
        conn = self.conns.setdefault(host, Conn())
        state = {"agent_type": agent_type, "host": host, "binary": "x", "topic": "t",
                 "availability_zone": "nova", "configurations": {}}
        return str(self.reg.report_state(conn, state)["agent_id"])

    def sent(self, host: str, method: str) -> list[Any]:
        return [params[0] for name, params in self.conns[host].sent if name == method]


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Controller, Controller, World]:
    url = f"sqlite:///{tmp_path}/shared.sqlite"
    world = World()                      # only for its object factories, on our database
    db = Database(url)
    db.create_schema()
    world.db = db
    clock = Clock()
    leader = Controller(db, clock, SoleLeadership(leading=True))
    follower = Controller(Database(url), clock, Following())
    return leader, follower, world


def test_heartbeats_a_follower_received_keep_the_agent_alive_on_the_leader(
        pair: tuple[Controller, Controller, World]) -> None:
    leader, follower, _world = pair
    clock: Clock = leader.reg.clock  # type: ignore[assignment]
    agent_id = follower.beat("h1")
    follower.reg.flush()
    assert leader.reg.refresh_agents().added == (agent_id,)
    for _ in range(5):                   # 25 s: well past agent_down_time, beating at 5 s
        clock.advance(5)
        follower.beat("h1")
        follower.reg.flush()
        leader.reg.refresh_agents()
        assert leader.reg.monitor_tick()["dead"] == 0
    rec = leader.reg.agents.get(agent_id)
    assert leader.reg.is_alive(rec)
    clock.advance(11)
    leader.reg.refresh_agents()
    assert leader.reg.monitor_tick()["dead"] == 1


def test_what_the_leader_binds_reaches_the_agent_on_the_follower(
        pair: tuple[Controller, Controller, World]) -> None:
    leader, follower, world = pair
    agent_id = follower.beat("h1")
    follower.reg.flush()
    leader.reg.refresh_agents()
    network_id = world.network()
    leader.reactions.handle(NetworkChanged(Action.CREATE, network_id))
    assert leader.reg.bindings.hosts_of(NETWORK, network_id) == {agent_id: 1}
    # the leader has no connection to the agent: only the follower can tell it
    assert follower.sent("h1", "network_bound") == []
    assert follower.reg.hosted_by(agent_id) == []
    changes = follower.reg.refresh_object(NETWORK, network_id)
    assert [(c.agent_id, c.bound) for c in changes] == [(agent_id, True)]
    assert follower.sent("h1", "network_bound") == [{"network_id": network_id}]
    assert follower.reg.hosted_by(agent_id) == [network_id]
    assert follower.reg.refresh_object(NETWORK, network_id) == []   # nothing new: silent


def test_a_follower_does_not_schedule_and_its_fenced_writes_are_refused(
        pair: tuple[Controller, Controller, World]) -> None:
    leader, follower, world = pair
    follower.beat("h1")
    follower.reg.flush()
    network_id = world.network()
    follower.reactions.handle(NetworkChanged(Action.CREATE, network_id))
    assert follower.reg.monitor_tick()["scheduled"] == 0
    with pytest.raises(FencedOut):
        follower.reg.schedule(NETWORK, [network_id])
    with leader.services.db.session() as session:
        assert session.scalar(select(func.count()).select_from(
            models.NetworkDhcpAgentBinding)) == 0


def test_a_resync_after_missed_events_matches_the_database_and_tells_local_agents(
        pair: tuple[Controller, Controller, World]) -> None:
    leader, follower, world = pair
    a1, a2 = follower.beat("h1"), follower.beat("h2")
    follower.reg.flush()
    leader.reg.refresh_agents()
    network_id = world.network()
    leader.reg.bind(NETWORK, network_id, a1)
    follower.reg.resync()
    assert follower.sent("h1", "network_bound") == [{"network_id": network_id}]
    # the leader moves it while the follower hears nothing
    leader.reg.unbind(NETWORK, network_id, a1)
    leader.reg.bind(NETWORK, network_id, a2)
    changes = follower.reg.resync()
    assert sorted((c.agent_id, c.bound) for c in changes) == sorted([(a1, False), (a2, True)])
    assert follower.sent("h1", "network_unbound") == [{"network_id": network_id}]
    assert follower.sent("h2", "network_bound") == [{"network_id": network_id}]
    assert follower.reg.bindings.hosts_of(NETWORK, network_id) == \
        leader.reg.bindings.hosts_of(NETWORK, network_id)


def test_an_agent_deleted_elsewhere_is_forgotten_with_its_bindings(
        pair: tuple[Controller, Controller, World]) -> None:
    leader, follower, world = pair
    agent_id = follower.beat("h1")
    follower.reg.flush()
    leader.reg.refresh_agents()
    network_id = world.network()
    leader.reg.bind(NETWORK, network_id, agent_id)
    follower.reg.refresh_object(NETWORK, network_id)
    leader.reg.delete_agent(agent_id)
    result = follower.reg.refresh_agents()
    assert result.removed == (agent_id,)
    assert follower.reg.agents.find(agent_id) is None
    assert follower.reg.bindings.hosts_of(NETWORK, network_id) == {}
    # it reports again: registered anew
    assert follower.beat("h1") != agent_id


def test_fields_changed_by_another_controller_are_taken_unless_ours_are_pending(
        pair: tuple[Controller, Controller, World]) -> None:
    leader, follower, _world = pair
    agent_id = follower.beat("h1")
    follower.reg.flush()
    leader.reg.refresh_agents()
    leader.reg.update_agent(agent_id, admin_state_up=False, description="maintenance")
    result = follower.reg.refresh_agents()
    assert result.placement_changed
    rec = follower.reg.agents.get(agent_id)
    assert (rec.admin_state_up, rec.description) == (False, "maintenance")


def test_the_bus_keeps_local_and_relayed_events_apart() -> None:
    bus = EventBus()
    heard: dict[str, list[Event]] = {"both": [], "local": [], "remote": []}
    bus.subscribe(heard["both"].append)
    bus.subscribe(heard["local"].append, remote=False)
    bus.subscribe_remote(heard["remote"].append)
    ours = NetworkChanged(Action.CREATE, "n1")
    theirs = BindingChanged(NETWORK, "n1", "a1", "h1", True)
    bus.publish(ours)
    bus.publish_remote(theirs)
    assert heard == {"both": [ours, theirs], "local": [ours], "remote": [theirs]}
