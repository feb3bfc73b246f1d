"""Extra routes: the router forwards a destination to the port holding the nexthop address,
by longest prefix among the routes and the attached subnets."""

from __future__ import annotations

from dataclasses import replace

from flows_testbed import (
    R1,
    R1_IF_A,
    R1_IF_A2,
    UPSTREAM_MAC,
    endpoint,
    icmp,
    ip_of,
    mac_of,
    make_fabric,
    make_snapshot,
    udp,
)

from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.flows.routing import PRIO_EXTRA_ROUTE, PRIO_EXTRA_ROUTE_IN_SUBNET, route_priority
from ryu_sched.flows.tables import Table

BEHIND = "192.168.50.0/24"   # behind vm-a22 (10.0.1.22), which forwards


def with_routes(*routes: tuple[str, str]):
    return make_snapshot(routers=(replace(R1, routes=routes),))


def test_a_route_goes_to_the_nexthop_ports_mac_on_its_subnet():
    fabric = make_fabric(with_routes((BEHIND, ip_of("vm-a22"))))
    # from vm-a1 (net-a, switch 1), through the router, to vm-a22 (net-a2, switch 1)
    result = fabric.send(1, icmp("vm-a1", "192.168.50.7", R1_IF_A.mac))
    assert result.endpoints == {endpoint("vm-a22")}
    [routed] = result.at(*endpoint("vm-a22"))
    assert routed["eth_src"] == R1_IF_A2.mac and routed["eth_dst"] == mac_of("vm-a22")
    assert routed["ipv4_dst"] == "192.168.50.7" and routed["ip_ttl"] == 63


def test_a_nexthop_on_another_host_is_reached_through_the_uplink():
    # vm-a21 is on switch 2: the router (switch 1) sends it there tagged with net-a2's VLAN
    fabric = make_fabric(with_routes((BEHIND, ip_of("vm-a21"))))
    result = fabric.send(2, udp("vm-a2", "192.168.50.9", R1_IF_A.mac))
    assert result.endpoints == {endpoint("vm-a21")}
    [routed] = result.at(*endpoint("vm-a21"))
    assert routed["eth_dst"] == mac_of("vm-a21") and routed["eth_src"] == R1_IF_A2.mac


def test_without_a_route_the_destination_leaves_through_the_gateway_and_with_one_it_does_not():
    plain = make_fabric().send(2, udp("vm-a2", "192.168.50.9", R1_IF_A.mac))
    assert [p["eth_dst"] for p in plain.at(1, 2)] == [UPSTREAM_MAC]   # SNAT, out of ext0
    routed = make_fabric(with_routes((BEHIND, ip_of("vm-a22")))).send(
        2, udp("vm-a2", "192.168.50.9", R1_IF_A.mac))
    assert routed.at(1, 2) == [] and routed.endpoints == {endpoint("vm-a22")}


def test_a_default_route_replaces_the_gateway_even_for_a_floating_ip():
    fabric = make_fabric(with_routes(("0.0.0.0/0", ip_of("vm-a22"))))
    # vm-a2 holds the floating IP; its traffic to the internet now goes to vm-a22
    result = fabric.send(2, udp("vm-a2", "198.51.100.7", R1_IF_A.mac))
    assert result.endpoints == {endpoint("vm-a22")} and result.at(1, 2) == []


def test_attached_subnets_win_over_wider_routes_and_narrower_routes_win_over_them():
    # 10.0.1.0/24 is attached: a /16 route around it does not capture its hosts...
    fabric = make_fabric(with_routes(("10.0.0.0/16", ip_of("vm-a22"))))
    result = fabric.send(2, udp("vm-a2", ip_of("vm-a21"), R1_IF_A.mac))
    assert result.endpoints == {endpoint("vm-a21")}
    # ...but a /28 inside it takes its addresses, also those of ports
    fabric = make_fabric(with_routes(("10.0.1.16/28", ip_of("vm-a22"))))
    result = fabric.send(2, udp("vm-a2", ip_of("vm-a21"), R1_IF_A.mac))   # 10.0.1.21
    assert result.endpoints == {endpoint("vm-a22")}


def test_longer_prefixes_win_among_routes():
    fabric = make_fabric(with_routes(("192.168.0.0/16", ip_of("vm-a21")),
                                     ("192.168.50.0/24", ip_of("vm-a22"))))
    assert fabric.send(1, udp("vm-a1", "192.168.50.1", R1_IF_A.mac)).endpoints == \
        {endpoint("vm-a22")}
    assert fabric.send(1, udp("vm-a1", "192.168.51.1", R1_IF_A.mac)).endpoints == \
        {endpoint("vm-a21")}


def test_an_unheld_nexthop_drops_instead_of_leaking_out_of_the_gateway():
    fabric = make_fabric(with_routes((BEHIND, "10.0.1.99")))
    result = fabric.send(1, udp("vm-a1", "192.168.50.1", R1_IF_A.mac))
    assert result.endpoints == set() and result.at(1, 2) == []


def test_routes_only_on_the_routers_switch_and_one_flow_per_destination():
    snap = with_routes((BEHIND, ip_of("vm-a22")), (BEHIND, ip_of("vm-a21")),
                       ("2001:db8::/64", "2001:db8::1"))
    routes = [f for f in desired_flows(snap, 1) if f.table == Table.ROUTING
              and f.priority == PRIO_EXTRA_ROUTE + 24]
    assert len(routes) == 1
    assert routes[0].actions[1].value == mac_of("vm-a21")  # the lowest nexthop
    assert not [f for dpid in (2, 3) for f in desired_flows(snap, dpid)
                if f.table == Table.ROUTING and f.priority > 0]


def test_route_priorities():
    import ipaddress

    attached = [ipaddress.IPv4Network("10.0.0.0/24")]
    assert route_priority(ipaddress.IPv4Network("0.0.0.0/0"), attached) == PRIO_EXTRA_ROUTE
    assert route_priority(ipaddress.IPv4Network("10.0.0.0/24"), attached) == \
        PRIO_EXTRA_ROUTE + 24
    assert route_priority(ipaddress.IPv4Network("10.0.0.128/25"), attached) == \
        PRIO_EXTRA_ROUTE_IN_SUBNET + 25
