"""The registry's history for operators: moves counted by kind and reason, failovers
measured from "judged dead" to "hosts nothing", the bounded timeline, and the page's two
actions (drain, move by hand) through the agent-scheduler service."""

from __future__ import annotations

from typing import Any

import pytest

from ryu_sched import errors
from ryu_sched.registry.history import History
from ryu_sched.registry.registry import Registry
from ryu_sched.resources import agent_scheduler as service
from ryu_sched.resources.context import Context, admin_context
from ryu_sched.services import NoMetrics
from tests.unit.registry.test_agent_scheduler_service import world
from tests.unit.registry.world import DHCP, L3, NETWORK, ROUTER, World

ADMIN = admin_context()
EXT = {"external_port": "ext0"}


class Sink:
    """Records what the registry reports to the metrics."""

    def __init__(self) -> None:
        self.moves: dict[tuple[str, str], int] = {}
        self.failovers: list[float] = []

    def moved(self, kind: str, reason: str, count: int = 1) -> None:
        self.moves[(kind, reason)] = self.moves.get((kind, reason), 0) + count

    def failed_over(self, seconds: float) -> None:
        self.failovers.append(seconds)


def recording(w: World) -> Sink:
    sink = Sink()
    w.reg.history.sink = sink
    return sink


def timeline(w: World) -> list[dict[str, Any]]:
    return [e.to_json() for e in w.reg.history.recent(1000)]


def test_a_failover_is_counted_per_kind_and_measured_once_its_agent_hosts_nothing():
    w = World()
    sink = recording(w)
    w.agents(2)
    w.agents(2, L3, prefix="l3-")
    nets = [w.network() for _ in range(4)]
    for _ in range(2):
        w.router()
    w.reg.reconcile()
    victim = w.rec("h0")
    lost_nets = len(w.reg.hosted_by(victim.id))
    lost_rtrs = len(w.reg.hosted_by(w.rec("l3-0", L3).id))
    w.clock.advance(11)
    w.keep_alive([("h1", DHCP), ("l3-1", L3)])
    w.reg.monitor_tick()
    assert sink.moves == {("network", "failover"): lost_nets, ("router", "failover"): lost_rtrs}
    assert sink.failovers == [0.0, 0.0]        # placed in the same tick (frozen clock)
    entries = timeline(w)
    assert {e["object_id"] for e in entries if e["kind"] == "network"} <= set(nets)
    failover = next(e for e in entries if e["kind"] == "failover"
                    and e["object_id"] == victim.id)
    assert failover["from_host"] == "h0" and failover["to_host"] == "h1"
    assert failover["moved"] == lost_nets and failover["duration"] == 0.0
    dead = [e for e in entries if e["kind"] == "agent" and e["reason"] == "dead"]
    assert {e["from_host"] for e in dead} == {"h0", "l3-0"}
    # newest first: the failover closes after its agent was judged dead
    assert entries.index(failover) < entries.index(
        next(e for e in dead if e["from_host"] == "h0"))
    assert w.reg.history.open_failovers == 0


def test_a_failover_without_a_candidate_stays_open_until_one_comes():
    w = World()
    sink = recording(w)
    w.agents(1)
    net = w.network()
    w.reg.reconcile()
    w.clock.advance(11)
    w.reg.monitor_tick()
    assert w.reg.history.open_failovers == 1 and sink.failovers == []
    w.clock.advance(4)
    w.agents(1, prefix="late")
    w.reg.monitor_tick()
    assert w.hosts(NETWORK, net) == {w.rec("late0").id: 1}
    assert sink.failovers == [4.0] and w.reg.history.open_failovers == 0


def test_an_agent_back_before_its_failover_finished_ends_it_unmeasured():
    w = World()
    sink = recording(w)
    w.agents(1)
    w.network()
    w.reg.reconcile()
    w.clock.advance(11)
    w.reg.monitor_tick()
    w.beat("h0")
    w.reg.monitor_tick()
    assert sink.failovers == [] and w.reg.history.open_failovers == 0
    assert [e["reason"] for e in timeline(w) if e["kind"] == "agent"] == ["revived", "dead"]


def test_an_agent_that_hosts_nothing_dies_without_a_failover():
    w = World()
    sink = recording(w)
    w.agents(2)
    w.clock.advance(11)
    w.reg.monitor_tick()
    assert sink.failovers == [] and w.reg.history.open_failovers == 0


def test_the_timeline_is_bounded_and_starts_from_the_move_log_after_a_restart():
    w = World()
    w.agents(1)
    for _ in range(6):
        w.network()
    w.reg.reconcile()
    w.agents(1, prefix="new")
    moved = {m.resource_id for m in w.reg.rebalance(DHCP)}
    assert len(moved) == 3
    again = Registry(w.services, clock=w.clock)
    again.history = History(again.clock, NoMetrics(), size=2)
    again.load()
    entries = [e.to_json() for e in again.history.recent(10)]
    assert len(entries) == 2 and {e["reason"] for e in entries} == {"rebalance"}
    assert {e["object_id"] for e in entries} <= moved
    assert all(e["from_host"] == "h0" and e["to_host"] == "new0" for e in entries)


def test_drain_moves_everything_it_can_now_and_is_admin_only():
    w, _ = world()
    sink = recording(w)
    (a0,) = w.agents(1)
    for _ in range(3):
        w.network()
    w.reg.reconcile()
    assert service.drain(w.services, ADMIN, a0) == []          # nowhere to go
    w.agents(2, prefix="new")
    moves = service.drain(w.services, ADMIN, a0)
    assert len(moves) == 3 and {m["reason"] for m in moves} == {"drain"}
    assert {m["from_host"] for m in moves} == {"h0"}
    assert w.reg.load_of(a0) == 0 and sink.moves == {("network", "drain"): 3}
    assert {m["reason"] for m in w.reg.moves()} == {"drain"}
    with pytest.raises(errors.PolicyNotAuthorized):
        service.drain(w.services, Context("p", False), a0)
    with pytest.raises(errors.AgentNotFound):
        service.drain(w.services, ADMIN, "nope")


def test_a_move_by_hand_is_logged_as_manual_and_checked_like_a_binding_by_hand():
    w, _ = world()
    sink = recording(w)
    plain, other = w.agents(2, L3, prefix="plain")
    gw_agent = w.beat("gw", L3, configurations=EXT)["agent_id"]
    w.reg.flush()
    (dhcp,) = w.agents(1)
    router = w.router()
    w.reg.bind(ROUTER, router, plain)
    move = service.move(w.services, ADMIN, ROUTER, router, plain, other)
    assert (move["reason"], move["from_host"], move["to_host"]) == ("manual", "plain0", "plain1")
    assert w.hosts(ROUTER, router) == {other: 1}
    assert sink.moves == {("router", "manual"): 1}
    assert w.reg.moves(resource_id=router)[0]["reason"] == "manual"
    with pytest.raises(errors.RouterNotHostedByL3Agent):
        service.move(w.services, ADMIN, ROUTER, router, plain, gw_agent)
    with pytest.raises(errors.RouterHostedByL3Agent):
        service.move(w.services, ADMIN, ROUTER, router, other, other)
    with pytest.raises(errors.InvalidL3Agent):                 # a DHCP agent
        service.move(w.services, ADMIN, ROUTER, router, other, dhcp)
    w.reg.update_agent(plain, admin_state_up=False)
    with pytest.raises(errors.InvalidL3Agent):                 # disabled
        service.move(w.services, ADMIN, ROUTER, router, other, plain)
    gw_router = w.router(gateway=True)
    w.reg.bind(ROUTER, gw_router, gw_agent)
    with pytest.raises(errors.InvalidL3Agent, match="external port"):
        service.move(w.services, ADMIN, ROUTER, gw_router, gw_agent, other)
    w.clock.advance(11)
    w.keep_alive([("plain1", L3)])
    with pytest.raises(errors.InvalidL3Agent, match="not alive"):
        service.move(w.services, ADMIN, ROUTER, router, other, gw_agent)
    with pytest.raises(errors.RouterNotFound):
        service.move(w.services, ADMIN, ROUTER, "nope", other, other)
    with pytest.raises(errors.PolicyNotAuthorized):
        service.move(w.services, Context("p", False), ROUTER, router, other, plain)
