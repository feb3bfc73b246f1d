"""The agent-scheduler service over a real registry: filters, fields, updates, bindings by
hand and their checks, the one handler shape for DHCP and L3."""

from __future__ import annotations

from typing import Any

import pytest

from ryu_sched import errors
from ryu_sched.registry.agent_rpc import AgentRpc
from ryu_sched.resources import agent_scheduler as service
from ryu_sched.resources.context import Context, admin_context
from ryu_sched.rpc import RpcStats
from tests.unit.registry.world import DHCP, L3, NETWORK, ROUTER, World

ADMIN = admin_context()


class Handle:
    def __init__(self, w: World) -> None:
        self.registry = w.reg
        self.stats = RpcStats()
        self.agent_rpc = AgentRpc(w.reg, service.DhcpPorts(w.services))
        self.reconciles = 0

    def request_reconcile(self) -> None:
        self.reconciles += 1


def world(**options: Any) -> tuple[World, Handle]:
    w = World(**options)
    handle = Handle(w)
    w.services.registry = handle
    return w, handle


def test_agents_are_listed_sorted_and_filtered_like_other_collections():
    w, _ = world()
    w.agents(2, L3, prefix="l")
    w.agents(2, DHCP, prefix="d")
    w.clock.advance(11)
    w.keep_alive([("d1", DHCP)])
    listed = service.list_agents(w.services, ADMIN)
    assert [(a["agent_type"], a["host"]) for a in listed] == [
        (DHCP, "d0"), (DHCP, "d1"), (L3, "l0"), (L3, "l1")]
    assert [a["host"] for a in service.list_agents(w.services, ADMIN, {"alive": "true"})] == [
        "d1"]
    assert [a["host"] for a in service.list_agents(
        w.services, ADMIN, {"agent_type": L3, "host": ["l1", "d0"]})] == ["l1"]
    # a map is not filterable: the filter is ignored, as Neutron does
    assert len(service.list_agents(w.services, ADMIN, {"configurations": "x"})) == 4


def test_agents_are_admin_only_and_unavailable_without_a_registry():
    w, _ = world()
    (a0,) = w.agents(1)
    member = Context("p1", is_admin=False)
    # As Neutron: the list is filtered by the admin-only show rule (empty, not 403) and a
    # refused show, update or delete is 404; the scheduler extension's calls are 403.
    assert service.list_agents(w.services, member) == []
    for call in (lambda: service.get_agent(w.services, member, a0),
                 lambda: service.update_agent(w.services, member, a0, {"description": "x"}),
                 lambda: service.delete_agent(w.services, member, a0)):
        with pytest.raises(errors.AgentNotFound):
            call()
    with pytest.raises(errors.PolicyNotAuthorized):
        service.list_hosted(w.services, member, NETWORK, a0)
    w.services.registry = None
    with pytest.raises(errors.ServiceUnavailable):
        service.list_agents(w.services, ADMIN)


def test_update_changes_admin_state_and_description_only_and_wakes_the_reconcile():
    w, handle = world()
    (a0,) = w.agents(1)
    w.reg.reconcile_requested = False
    view = service.update_agent(w.services, ADMIN, a0, {"admin_state_up": False,
                                                        "description": "x"})
    assert (view["admin_state_up"], view["description"]) == (False, "x")
    assert handle.reconciles == 1
    for body in ({"host": "other"}, {"admin_state_up": "maybe"}, {"project_id": "p"},
                 {"description": "x" * 1025}):
        with pytest.raises(errors.BadRequest):
            service.update_agent(w.services, ADMIN, a0, body)
    with pytest.raises(errors.AgentNotFound):
        service.update_agent(w.services, ADMIN, "nope", {"description": "y"})


@pytest.mark.parametrize("kind, agent_type, invalid", [
    (NETWORK, DHCP, errors.InvalidDHCPAgent), (ROUTER, L3, errors.InvalidL3Agent)])
def test_bind_checks_are_the_same_for_both_kinds(kind, agent_type, invalid):
    w, _ = world()
    (mine,) = w.agents(1, agent_type, prefix="mine")
    (other,) = w.agents(1, L3 if agent_type == DHCP else DHCP, prefix="other")
    obj = w.network() if kind == NETWORK else w.router()
    key = f"{kind.value}_id"
    with pytest.raises(errors.BadRequest):
        service.bind(w.services, ADMIN, kind, mine, {})
    with pytest.raises(invalid):
        service.bind(w.services, ADMIN, kind, other, {key: obj})
    with pytest.raises(errors.AgentNotFound):
        service.bind(w.services, ADMIN, kind, "nope", {key: obj})
    with pytest.raises(errors.ResourceNotFound):
        service.bind(w.services, ADMIN, kind, mine, {key: "nope"})
    service.update_agent(w.services, ADMIN, mine, {"admin_state_up": False})
    with pytest.raises(invalid):
        service.bind(w.services, ADMIN, kind, mine, {key: obj})
    service.update_agent(w.services, ADMIN, mine, {"admin_state_up": True})
    service.bind(w.services, ADMIN, kind, mine, {key: obj})
    with pytest.raises(errors.Conflict):
        service.bind(w.services, ADMIN, kind, mine, {key: obj})
    assert [a["id"] for a in service.list_hosting_agents(w.services, ADMIN, kind, obj)] == [
        mine]
    assert [o["id"] for o in service.list_hosted(w.services, ADMIN, kind, mine)] == [obj]
    with pytest.raises(invalid):
        service.list_hosted(w.services, ADMIN, kind, other)
    service.unbind(w.services, ADMIN, kind, mine, obj)
    with pytest.raises(errors.Conflict):
        service.unbind(w.services, ADMIN, kind, mine, obj)
    assert service.list_hosted(w.services, ADMIN, kind, mine) == []


def test_a_router_with_a_gateway_is_refused_by_hand_to_an_agent_without_external_port():
    w, _ = world(router_auto_schedule=False)
    (plain,) = w.agents(1, L3, prefix="plain")
    (gw,) = w.agents(1, L3, prefix="gw", configurations={"external_port": "ext0"})
    rid = w.router(gateway=True)
    with pytest.raises(errors.InvalidL3Agent, match="no external port"):
        service.bind(w.services, ADMIN, ROUTER, plain, {"router_id": rid})
    service.bind(w.services, ADMIN, ROUTER, gw, {"router_id": rid})
    assert w.hosts(ROUTER, rid) == {gw: 1}


def test_a_network_is_bound_by_hand_outside_its_hinted_zones_as_neutron_allows():
    w, _ = world(network_scheduler_driver="az_aware", network_auto_schedule=False)
    (a,) = w.agents(1, az="az2")
    net = w.network(hints=("az1",))
    service.bind(w.services, ADMIN, NETWORK, a, {"network_id": net})
    assert w.hosts(NETWORK, net) == {a: 1}


def test_rebalance_moves_and_stats():
    w, _ = world()
    (a0,) = w.agents(1)
    for _ in range(4):
        w.network()
    w.reg.reconcile()
    w.agents(1, prefix="new")
    with pytest.raises(errors.InvalidInput):
        service.rebalance(w.services, ADMIN, {"agent_type": "Toaster agent"})
    moves = service.rebalance(w.services, ADMIN, {"agent_type": DHCP})
    assert len(moves) == 2 and {m["resource"] for m in moves} == {"network"}
    assert len(service.list_moves(w.services, ADMIN, {"agent_id": [a0]})) == 2
    stats = service.stats(w.services, ADMIN)
    assert (stats["agents"], stats["network_bindings"], stats["router_bindings"]) == (2, 4, 0)
    assert stats["refused_reports"] == 0 and stats["refused_unauthorized"] == 0
