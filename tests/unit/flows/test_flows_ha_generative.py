"""Random clouds with routers active and on standby: the invariants the fence relies on.

* Without its ROUTER_ACTIVE flows, any switch's desired table answers no ARP for a router
  address and emits nothing with a router MAC as source (Ethernet or ARP), whatever it
  receives from its VMs, its uplink or its external port, and sends nothing to the
  controller.
* Moving a router's active role to one of its standbys changes, on every switch, only that
  router's ROUTER_ACTIVE flows; and the old active switch, fenced, is exactly a standby.
"""

from __future__ import annotations

from dataclasses import replace

from ha_probes import fenced, identity, probes, speaks_for_router
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ryu_sched.flows.cookies import CookieKind, cookie_for
from ryu_sched.flows.model import (
    FloatingIP,
    Network,
    Port,
    Router,
    RouterGateway,
    RouterInterface,
    Snapshot,
    Subnet,
    Switch,
    tap_name,
)
from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.flows.simulator import SwitchSimulator

UPLINK, EXT = 1, 2
EXT_NET = Network("ext", 99, "admin", "flat", "extnet", None, external=True)
EXT_SUBNET = Subnet("sub-ext", EXT_NET.id, "203.0.113.0/24", "203.0.113.1")


@st.composite
def ha_clouds(draw) -> Snapshot:
    dpids = list(range(1, draw(st.integers(1, 3)) + 1))
    n_networks = draw(st.integers(1, 3))
    flat_index = draw(st.one_of(st.none(), st.integers(0, n_networks - 1)))
    vlans = draw(st.lists(st.integers(1, 4094), min_size=n_networks, max_size=n_networks,
                          unique=True))
    networks, subnets = [], []
    for i, vid in enumerate(vlans):
        flat = i == flat_index
        networks.append(Network(f"net-{i}", i + 1, "t", "flat" if flat else "vlan",
                                "physnet1", None if flat else vid))
        subnets.append(Subnet(f"sub-{i}", f"net-{i}", f"10.{i}.0.0/24", f"10.{i}.0.1"))
    ports, locations = [], {}
    for j in range(draw(st.integers(0, 6))):
        i = draw(st.integers(0, n_networks - 1))
        pid = f"port-{j}"
        ports.append(Port(pid, f"net-{i}", f"fa:16:3e:00:00:{j:02x}",
                          ((f"sub-{i}", f"10.{i}.0.{10 + j}"),), "compute:nova", "vm",
                          draw(st.booleans())))
        locations[pid] = draw(st.sampled_from(dpids))
    routers, fips = [], []
    for k in range(draw(st.integers(1, 2))):
        attached = sorted(draw(st.sets(st.integers(0, n_networks - 1), max_size=n_networks)))
        interfaces = tuple(RouterInterface(f"r{k}-if{i}", f"sub-{i}", f"net-{i}",
                                           f"10.{i}.0.{1 + k}", f"fa:16:3e:{k:02x}:aa:{i:02x}",
                                           f"10.{i}.0.0/24") for i in attached)
        gateway = None
        if draw(st.booleans()):
            gateway = RouterGateway(f"r{k}-gw", EXT_NET.id, f"203.0.113.{10 + k}",
                                    f"fa:16:3e:{k:02x}:ee:01", EXT_SUBNET.cidr, "203.0.113.1",
                                    draw(st.sampled_from([None, "52:54:00:ff:00:01"])),
                                    draw(st.booleans()))
        order = draw(st.permutations(dpids))
        active = draw(st.one_of(st.none(), st.sampled_from(order)))
        standby = tuple(d for d in order[:draw(st.integers(0, len(order)))] if d != active)
        routes = ()
        if interfaces and draw(st.booleans()):
            routes = (("192.168.0.0/16", f"10.{attached[0]}.0.10"),)
        routers.append(Router(f"router-{k}", k + 1, "t", interfaces, gateway, active, routes,
                              standby))
        for port in ports:
            on_router = any(i.network_id == port.network_id for i in interfaces)
            if gateway is not None and on_router and draw(st.booleans()):
                fips.append(FloatingIP(f"fip-{len(fips)}", f"203.0.113.{100 + len(fips)}",
                                       EXT_NET.id, f"router-{k}", port.ips[0], port.id))
    switches = []
    for dpid in dpids:
        names = {"uplink": UPLINK}
        names.update({tap_name(p.id): 10 + j for j, p in enumerate(ports)
                      if locations[p.id] == dpid})
        gateway_host = draw(st.booleans())
        if gateway_host:
            names["ext0"] = EXT
        switches.append(Switch(dpid, names, {"physnet1": "uplink"},
                               "ext0" if gateway_host else None))
    return Snapshot(networks=(*networks, EXT_NET), subnets=(*subnets, EXT_SUBNET),
                    ports=tuple(ports), routers=tuple(routers), floating_ips=tuple(fips),
                    switches=tuple(switches), port_locations=locations)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cloud=ha_clouds())
def test_without_its_router_active_flows_a_switch_never_speaks_for_a_router(cloud):
    who = identity(cloud)
    for switch in cloud.switches:
        flows = desired_flows(cloud, switch.dpid)
        table, unfenced = SwitchSimulator(fenced(flows)), SwitchSimulator(flows)
        answered = set()
        for packet in probes(cloud, switch.dpid):
            result = table.process(packet)
            assert not speaks_for_router(result, who), (switch.dpid, packet)
            assert not result.to_controller, (switch.dpid, packet)
            if speaks_for_router(unfenced.process(packet), who):
                answered.add(packet.get("arp_tpa"))
        # Not vacuous: with its active-only flows, the switch answers ARP for the gateway of
        # every router active there, on its external port.
        for router in cloud.routers:
            if (router.host_dpid == switch.dpid and router.gateway is not None
                    and switch.external_port is not None):
                assert router.gateway.ip in answered


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cloud=ha_clouds(), data=st.data())
def test_a_switchover_changes_only_the_routers_active_only_flows(cloud, data):
    router = data.draw(st.sampled_from(cloud.routers))
    if not router.standby_dpids:
        return
    new = data.draw(st.sampled_from(router.standby_dpids))
    old = router.host_dpid
    rest = tuple(d for d in router.standby_dpids if d != new)
    moved = replace(router, host_dpid=new,
                    standby_dpids=rest + (() if old is None else (old,)))
    after = replace(cloud, routers=tuple(moved if r is router else r for r in cloud.routers))
    active = cookie_for(CookieKind.ROUTER_ACTIVE, router.id)
    for switch in cloud.switches:
        before_flows = desired_flows(cloud, switch.dpid)
        after_flows = desired_flows(after, switch.dpid)
        changed = set(before_flows) ^ set(after_flows)
        assert {f.cookie for f in changed} <= {active}, switch.dpid
        if switch.dpid not in (old, new):
            assert not changed
    if old is not None:
        gone = [f for f in desired_flows(cloud, old) if f.cookie != active]
        assert gone == desired_flows(after, old)
        # ... which is what the fence leaves, when the router was the only one active there.
        if not any(r.host_dpid == old for r in cloud.routers if r is not router):
            assert fenced(desired_flows(cloud, old)) == desired_flows(after, old)
