"""What the registry does for the real agents: an L3 agent whose external link is down hosts
no routers, and a network leaving a DHCP agent takes that agent's DHCP port with it."""

from __future__ import annotations

from sqlalchemy import select

from ryu_sched.db import models
from ryu_sched.resources.context import admin_context
from ryu_sched.resources.ports import create_port
from ryu_sched.shared.vocabulary import DeviceOwner, dhcp_device_id
from tests.unit.registry.world import DHCP, L3, NETWORK, ROUTER, World

UP = {"external_port": "ext0", "external_link_up": True}
DOWN = {"external_port": "ext0", "external_link_up": False}


def test_l3_agent_with_external_link_down_is_no_candidate_for_routers():
    w = World()
    down = w.beat("g1", L3, configurations=DOWN)["agent_id"]
    w.reg.flush()
    routers = [w.router(gateway=True), w.router()]
    w.reg.reconcile()
    assert not any(w.hosted(ROUTER, r) for r in routers)
    up = w.beat("g2", L3, configurations=UP)["agent_id"]
    w.reg.flush()
    w.reg.reconcile()
    assert all(w.hosts(ROUTER, r) == {up: 1} for r in routers)
    assert w.reg.load_of(down) == 0


def test_routers_leave_an_agent_that_reports_its_external_link_down_and_stay_away():
    w = World()
    g1 = w.beat("g1", L3, configurations=UP)["agent_id"]
    w.reg.flush()
    rid = w.router(gateway=True)
    w.reg.reconcile()
    assert w.hosts(ROUTER, rid) == {g1: 1}
    g2 = w.beat("g2", L3, configurations=UP)["agent_id"]
    w.reg.flush()
    w.reg.reconcile_requested = False
    w.beat("g1", L3, configurations=DOWN)
    assert w.reg.reconcile_requested   # the flusher runs the reconcile at once
    w.reg.reconcile()
    assert w.hosts(ROUTER, rid) == {g2: 1}
    assert [m["reason"] for m in w.reg.moves(resource_id=rid)] == ["link_down"]
    # the link comes back: g1 is a candidate again, but the router does not flap back
    w.beat("g1", L3, configurations=UP)
    assert w.reg.reconcile_requested
    w.reg.reconcile()
    assert w.hosts(ROUTER, rid) == {g2: 1}
    assert g1 in {c.agent_id for c in w.reg.placement.candidates(L3)}


def test_router_stays_on_a_link_down_agent_when_no_other_can_take_it():
    w = World()
    g1 = w.beat("g1", L3, configurations=UP)["agent_id"]
    w.reg.flush()
    rid = w.router(gateway=True)
    w.reg.reconcile()
    w.beat("g1", L3, configurations=DOWN)
    w.reg.reconcile()
    assert w.hosts(ROUTER, rid) == {g1: 1}


def _dhcp_port(w: World, network_id: str, host: str) -> str:
    port = create_port(w.services, admin_context(), {
        "network_id": network_id, "device_owner": DeviceOwner.DHCP,
        "device_id": dhcp_device_id(network_id, host), "binding:host_id": host,
        "fixed_ips": []})
    return str(port["id"])


def _port_ids(w: World, network_id: str) -> set[str]:
    with w.db.session() as s:
        return set(s.scalars(select(models.Port.id).where(
            models.Port.network_id == network_id)))


def test_unbinding_a_network_deletes_the_dhcp_port_of_that_agent_only():
    w = World(dhcp_agents_per_network=2)
    a, b = w.agents(2, DHCP)
    net = w.network()
    w.reg.reconcile()
    port_a, port_b = _dhcp_port(w, net, "h0"), _dhcp_port(w, net, "h1")
    w.reg.unbind(NETWORK, net, a)
    assert w.release_dhcp_port(net, "h0") == 1
    assert _port_ids(w, net) == {port_b}
    assert w.release_dhcp_port(net, "h0") == 0   # idempotent
    assert port_a not in _port_ids(w, net)
    assert w.hosts(NETWORK, net) == {b: 2}


def test_dhcp_port_is_kept_when_the_network_is_bound_to_that_agent_again():
    w = World()
    (a,) = w.agents(1, DHCP)
    net = w.network()
    w.reg.reconcile()
    port = _dhcp_port(w, net, "h0")
    w.reg.unbind(NETWORK, net, a)
    w.reg.bind(NETWORK, net, a)
    assert w.release_dhcp_port(net, "h0") == 0
    assert _port_ids(w, net) == {port}
