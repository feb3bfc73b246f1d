"""Bindings by hand: conflicts, unbinding, deleting an agent."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from ryu_sched import errors
from ryu_sched.db import models
from tests.unit.registry.world import L3, NETWORK, ROUTER, World


def test_manual_bind_twice_is_a_conflict_and_a_raced_row_is_not_a_crash():
    w = World()
    a0, a1 = w.agents(2)
    net = w.network()
    w.reg.bind(NETWORK, net, a0)
    with pytest.raises(errors.NetworkHostedByDHCPAgent):
        w.reg.bind(NETWORK, net, a0)
    # another controller inserted the row behind our back: IntegrityError -> Conflict
    with w.db.session() as s:
        s.execute(insert(models.NetworkDhcpAgentBinding),
                  [{"network_id": net, "dhcp_agent_id": a1, "binding_index": 2}])
    with pytest.raises(errors.Conflict):
        w.reg.bind(NETWORK, net, a1)


def test_router_can_only_be_bound_to_one_l3_agent():
    w = World()
    a0, a1 = w.agents(2, L3)
    rid = w.router()
    w.reg.bind(ROUTER, rid, a0)
    with pytest.raises(errors.RouterHostedByL3Agent):
        w.reg.bind(ROUTER, rid, a1)


def test_unbind_of_a_missing_binding_is_a_conflict():
    w = World()
    a0 = w.agents(1)[0]
    with pytest.raises(errors.NetworkNotHostedByDhcpAgent):
        w.reg.unbind(NETWORK, w.network(), a0)


def test_binding_to_an_unknown_agent_is_agent_not_found():
    w = World()
    with pytest.raises(errors.AgentNotFound):
        w.reg.bind(NETWORK, w.network(), "nope")


def test_delete_agent_removes_its_bindings_and_reschedules_its_networks():
    w = World()
    a0, a1 = w.agents(2)
    net = w.network()
    w.reg.bind(NETWORK, net, a0)
    w.reg.delete_agent(a0)
    assert a0 not in w.reg.agents and w.db_bindings() == []
    w.reg.reconcile()
    assert w.hosts(NETWORK, net) == {a1: 1}
