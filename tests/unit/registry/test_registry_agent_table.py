"""Agents in memory: registration, batched heartbeats, liveness, validation of reports."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from ryu_sched.db import models
from ryu_sched.registry.model import from_datetime
from ryu_sched.registry.registry import Registry
from ryu_sched.rpc.protocol import BadParams
from tests.unit.registry.world import DHCP, Conn, World


def test_first_heartbeat_registers_and_is_persisted_by_the_flush():
    w = World()
    result = w.beat("h1")
    assert result["status"] == "registered"
    assert w.reg.agents.get(result["agent_id"]).host == "h1"
    with w.db.session() as s:
        assert s.scalar(select(func.count(models.Agent.id))) == 0
    w.reg.flush()
    with w.db.session() as s:
        assert s.scalar(select(func.count(models.Agent.id))) == 1


def test_heartbeats_are_written_in_batches_not_one_commit_each():
    w = World()
    agent_id = w.agents(1)[0]
    commits = []
    event.listen(w.db.engine, "commit", lambda conn: commits.append(1))
    for _ in range(100):
        w.clock.advance(0.01)
        w.beat("h0")
    assert commits == []
    w.reg.flush()
    assert len(commits) == 1
    with w.db.session() as s:
        stored = s.get(models.Agent, agent_id).heartbeat_timestamp
    assert abs(from_datetime(stored) - w.clock.now) < 1.0


def test_alive_means_heartbeat_younger_than_agent_down_time():
    w = World()
    rec = w.reg.agents.get(w.agents(1)[0])
    assert w.reg.is_alive(rec)
    w.clock.advance(9.9)
    assert w.reg.is_alive(rec)
    w.clock.advance(0.2)
    assert not w.reg.is_alive(rec)
    assert w.beat("h0")["status"] == "revived"
    assert w.reg.is_alive(rec)


def test_start_flag_updates_started_at_and_asks_the_agent_to_resync():
    w = World()
    w.agents(1)
    rec = w.rec("h0")
    w.clock.advance(5)
    w.beat("h0", start_flag=True)
    assert rec.started_at == w.clock.now
    assert w.conns[f"{DHCP}/h0"].sent[-1][0] == "resync"


@pytest.mark.parametrize("state", [
    None, [], {"agent_type": "Metering agent", "host": "h"}, {"agent_type": DHCP},
    {"agent_type": DHCP, "host": ""}, {"agent_type": DHCP, "host": ["x"]},
    {"agent_type": DHCP, "host": "h", "configurations": []},
    {"agent_type": DHCP, "host": "h", "configurations": {"datapath_id": "xyz"}},
    {"agent_type": DHCP, "host": "h", "start_flag": "yes"},
])
def test_malformed_agent_state_is_rejected_and_not_registered(state):
    w = World()
    with pytest.raises(BadParams):
        w.reg.report_state(Conn(), state)
    assert len(w.reg.agents) == 0


def test_bindings_and_agents_survive_a_reload():
    w = World()
    a0 = w.agents(1)[0]
    net = w.network()
    w.reg.reconcile()
    again = Registry(w.services, clock=w.clock)
    again.load()
    assert again.bindings.hosts_of("network", net) == {a0: 1}
    assert again.agents.get(a0).host == "h0"
