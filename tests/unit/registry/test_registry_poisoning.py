"""Failover cannot be poisoned: reports that could not be stored are refused on receipt, a
row the database refuses is isolated and dropped, an unreachable database loses nothing,
and liveness tracking never depends on a flush."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import msgpack
import pytest
from sqlalchemy import event, select

from ryu_sched.db import models
from ryu_sched.registry.agent_table import AgentLimitReached
from ryu_sched.registry.component import RegistryComponent
from ryu_sched.registry.model import from_datetime
from ryu_sched.resources.agent_scheduler import DhcpPorts, agent_view
from ryu_sched.rpc.protocol import BadParams
from tests.unit.registry.world import DHCP, L3, NETWORK, Conn, World


def deep(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


POISON = {
    "binary": {"blob": b"\x00\xff"},
    "binary key": {b"k": 1},
    "deep nesting": {"x": deep(1000)},
    "nine levels": {"x": deep(8)},
    "huge": {"x": "a" * (10 * 1024 * 1024)},
    "many small values": {"x": list(range(30_000))},
    "not a number": {"x": float("nan")},
    "infinity": {"x": [float("inf")]},
    "extension type": {"x": msgpack.ExtType(5, b"\x01")},
    "non-string key": {"x": {1: "a"}},
    "link state not a boolean": {"external_link_up": "no"},
}


def accepted_views(w: World) -> str:
    """What GET /v2.0/agents would encode."""
    now = w.clock()
    return json.dumps([agent_view(w.reg, rec, now) for rec in w.reg.agents])


@pytest.mark.parametrize("name", list(POISON))
def test_a_poisoned_report_is_refused_and_counted_and_failover_keeps_working(name):
    w = World()
    victim, survivor = w.agents(2)
    net = w.network()
    w.reg.reconcile()
    hosting = next(iter(w.hosts(NETWORK, net)))
    # a new agent, and an agent already known, both report the poison
    with pytest.raises(BadParams):
        w.beat("evil", configurations=POISON[name])
    with pytest.raises(BadParams):
        w.beat("h1", configurations=POISON[name])
    assert w.rec("evil") is None
    assert w.reg.agents.counters.refused_reports == 2
    assert w.reg.flush() >= 0 and w.reg.agents.counters.dropped_writes == 0
    json.loads(accepted_views(w))
    # the agent hosting the network dies: it still moves to the other one
    w.clock.advance(11)
    other = "h1" if hosting == victim else "h0"
    w.beat(other)
    w.reg.flush()
    summary = w.reg.monitor_tick()
    assert summary["dead"] == 1 and summary["moved"] == 1
    assert w.hosts(NETWORK, net) == {survivor if hosting == victim else victim: 1}


def test_configurations_within_the_limits_are_accepted():
    w = World()
    conf = {"a": deep(7), "b": [1, 2.5, True, None, "x"], "c": {"d": {}}, "e": "é" * 1000}
    w.beat("h0", configurations=conf)
    assert w.reg.flush() == 1
    with w.db.session() as s:
        assert s.scalar(select(models.Agent.configurations)) == conf


def poison_in_memory(w: World, host: str, agent_type: str = DHCP) -> None:
    """A value the validation let through (a gap we do not know of yet): the database
    refuses the row that carries it."""
    w.rec(host, agent_type).configurations = {"x": b"\x00"}
    w.reg.report_state(w.conns[f"{agent_type}/{host}"],
                       {"agent_type": agent_type, "host": host, "start_flag": True})


def test_a_row_the_database_refuses_is_isolated_dropped_and_the_rest_is_written():
    w = World()
    ids = w.agents(6)
    w.clock.advance(3)
    for i in range(6):
        w.beat(f"h{i}")
    poison_in_memory(w, "h3")
    assert w.reg.flush() == 5
    assert w.reg.agents.counters.dropped_writes == 1
    with w.db.session() as s:
        stored = {a.id: from_datetime(a.heartbeat_timestamp)
                  for a in s.scalars(select(models.Agent))}
    assert all(abs(stored[a] - w.clock.now) < 1 for i, a in enumerate(ids) if i != 3)
    assert w.reg.flush() == 0          # dropped, not retried forever
    # liveness is tracked from memory: the poisoned agent still dies and fails over
    net = w.network()
    w.reg.bind(NETWORK, net, ids[3])
    w.clock.advance(11)
    for i in (0, 1, 2, 4, 5):
        w.beat(f"h{i}")
    summary = w.reg.monitor_tick()
    assert summary["dead"] == 1 and summary["moved"] == 1
    assert ids[3] not in w.hosts(NETWORK, net)


def test_a_new_agent_that_cannot_be_stored_is_forgotten_until_it_reports_again():
    w = World()
    w.agents(2)
    w.beat("new")
    w.rec("new").configurations = {"x": b"\x00"}
    assert w.reg.flush() == 0 or w.rec("new") is None
    assert w.rec("new") is None and w.reg.agents.counters.dropped_writes == 1
    assert w.beat("new")["status"] == "registered"
    assert w.reg.flush() == 1 and w.rec("new").persisted


class Outage:
    """Every statement fails, as when the database server is gone."""

    def __init__(self, w: World) -> None:
        self.engine = w.db.engine

    def _fail(self, *args: Any) -> None:
        raise sqlite3.OperationalError("unable to open database file")

    def __enter__(self) -> Outage:
        event.listen(self.engine, "before_cursor_execute", self._fail)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._fail)


def test_an_unreachable_database_loses_no_write_and_they_are_written_when_it_is_back():
    w = World()
    w.agents(3)
    w.clock.advance(4)
    for i in range(3):
        w.beat(f"h{i}")
    w.beat("late")
    with Outage(w):
        assert w.reg.flush() == 0
        assert w.reg.agents.counters.dropped_writes == 0
        assert w.reg.monitor_tick()["dead"] == 0
    assert w.rec("late") is not None
    assert w.reg.flush() == 4
    with w.db.session() as s:
        beats = [from_datetime(a.heartbeat_timestamp) for a in s.scalars(select(models.Agent))]
    assert len(beats) == 4 and all(abs(b - w.clock.now) < 1 for b in beats)


def test_the_component_monitor_runs_when_the_flush_fails():
    w = World()
    component = RegistryComponent(w.services, DhcpPorts(w.services), serve_rpc=False)
    component.registry = w.reg
    w.agents(2)
    net = w.network()
    w.reg.reconcile()
    hosting = next(iter(w.hosts(NETWORK, net)))
    w.clock.advance(11)
    alive = "h1" if w.rec("h0").id == hosting else "h0"
    w.beat(alive)
    with Outage(w):
        w.reg.flush = _raise  # type: ignore[method-assign]
        summary = component.monitor_tick()
    assert summary["dead"] == 1 and w.reg.monitor_ticks == 1
    assert w.rec("h0" if alive == "h1" else "h1").judged_dead
    assert w.hosts(NETWORK, net) == {hosting: 1}
    # the database is back: the next tick moves what the dead agent hosted
    component.monitor_tick()
    assert w.hosts(NETWORK, net) == {w.rec(alive).id: 1}


def _raise() -> int:
    raise RuntimeError("flush failed")


def test_registrations_beyond_the_cap_per_type_are_refused():
    w = World(max_agents_per_type=3)
    w.agents(3)
    with pytest.raises(AgentLimitReached):
        w.beat("fourth")
    assert w.reg.agents.counters.refused_registrations == 1
    assert w.beat("h0")["status"] == "alive"          # known agents carry on
    w.agents(3, L3)                                     # per type
    w.reg.delete_agent(w.rec("h0").id)
    assert w.beat("fourth")["status"] == "registered"


def test_agents_silent_for_the_expiry_time_that_host_nothing_are_deleted():
    w = World(agent_expiry_time=100, allow_automatic_failover=False)
    gone, hosting, alive = w.agents(3)
    net = w.network()
    w.reg.bind(NETWORK, net, hosting)
    w.clock.advance(99)
    w.beat("h2")
    assert w.reg.monitor_tick()["expired"] == 0
    w.clock.advance(2)
    w.beat("h2")
    assert w.reg.monitor_tick()["expired"] == 1
    assert gone not in w.reg.agents and hosting in w.reg.agents and alive in w.reg.agents
    with w.db.session() as s:
        assert s.get(models.Agent, gone) is None
    assert w.beat("h0")["status"] == "registered"


def test_expiry_is_off_by_default():
    w = World()
    (a,) = w.agents(1)
    w.clock.advance(10 * 365 * 86400)
    w.reg.monitor_tick()
    assert a in w.reg.agents


def test_insecure_conn_is_unchanged_by_the_identity_checks():
    assert not hasattr(Conn(), "peer_identities")
