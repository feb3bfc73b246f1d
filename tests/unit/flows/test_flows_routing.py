"""Routers answer ARP for their interfaces and route between their subnets, on their host."""

from __future__ import annotations

from dataclasses import replace

from flows_testbed import (
    NET_A,
    R1,
    R1_IF_A,
    R1_IF_A2,
    UPLINK,
    arp_request,
    endpoint,
    icmp,
    ip_of,
    mac_of,
    make_fabric,
    make_snapshot,
    udp,
)

from ryu_sched.flows.cookies import CookieKind, kind_of
from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.flows.spec import OFPVID_PRESENT
from ryu_sched.flows.tables import Table


def test_router_answers_arp_for_its_interface_ip_from_a_local_vm():
    fabric = make_fabric()
    result = fabric.switches[1].process(arp_request("vm-a1", R1_IF_A.ip))
    assert [port for port, _ in result.outputs] == [endpoint("vm-a1")[1]]
    reply = result.outputs[0][1]
    assert reply["arp_op"] == 2
    assert reply["eth_src"] == reply["arp_sha"] == R1_IF_A.mac
    assert reply["eth_dst"] == reply["arp_tha"] == mac_of("vm-a1")
    assert reply["arp_spa"] == R1_IF_A.ip and reply["arp_tpa"] == ip_of("vm-a1")


def test_router_answers_arp_from_another_host_back_through_the_uplink_tagged():
    result = make_fabric().send(2, arp_request("vm-a2", R1_IF_A.ip))
    [reply] = result.at(*endpoint("vm-a2"))
    assert reply["arp_op"] == 2 and reply["arp_sha"] == R1_IF_A.mac
    answers = [p for dpid, p in result.on_wire if dpid == 1]
    assert [p["vlan_vid"] for p in answers] == [OFPVID_PRESENT | 100]


def test_no_switch_answers_arp_for_the_router_of_another_network():
    # 10.0.1.1 is the router's address on net-a2, not on net-a.
    result = make_fabric().send(1, arp_request("vm-a1", R1_IF_A2.ip))
    assert all(p["arp_op"] == 1 for _d, _o, p in result.deliveries)


def test_routing_rewrites_macs_and_decrements_ttl_on_the_same_host():
    pkt = icmp("vm-a1", ip_of("vm-a22"), R1_IF_A.mac)
    result = make_fabric().send(1, pkt)
    assert result.endpoints == {endpoint("vm-a22")}
    [routed] = result.at(*endpoint("vm-a22"))
    assert routed["eth_src"] == R1_IF_A2.mac and routed["eth_dst"] == mac_of("vm-a22")
    assert routed["ip_ttl"] == 63
    assert routed["ipv4_src"] == ip_of("vm-a1") and routed["ipv4_dst"] == ip_of("vm-a22")


def test_vm_on_another_host_is_routed_through_the_router_host_and_back_tagged():
    # vm-a2 (sw2, net-a) -> router on sw1 -> vm-a21 (sw2, net-a2)
    result = make_fabric().send(2, udp("vm-a2", ip_of("vm-a21"), R1_IF_A.mac))
    assert result.endpoints == {endpoint("vm-a21")}
    [routed] = result.at(*endpoint("vm-a21"))
    assert routed["eth_src"] == R1_IF_A2.mac and routed["ip_ttl"] == 63
    wire_vids = [(dpid, p["vlan_vid"]) for dpid, p in result.on_wire]
    assert wire_vids == [(2, OFPVID_PRESENT | 100), (1, OFPVID_PRESENT | 101)]


def test_router_mac_is_known_on_every_host_and_points_to_the_uplink():
    for dpid in (2, 3):
        l2 = [f for f in desired_flows(make_snapshot(), dpid)
              if f.table == Table.L2_FORWARD and f.match.get("eth_dst") == R1_IF_A.mac]
        assert len(l2) == 1 and kind_of(l2[0].cookie) is CookieKind.ROUTER
        assert l2[0].actions[-1].port == UPLINK


def test_packets_with_ttl_1_are_not_routed():
    result = make_fabric().send(1, icmp("vm-a1", ip_of("vm-a22"), R1_IF_A.mac, ip_ttl=1))
    assert result.endpoints == set()


def test_unknown_host_in_a_router_subnet_is_dropped_not_snatted():
    result = make_fabric().send(1, udp("vm-a1", "10.0.1.99", R1_IF_A.mac))
    assert result.endpoints == set()


def test_other_tenant_cannot_use_the_router_by_its_mac():
    result = make_fabric().send(1, udp("vm-b1", ip_of("vm-a22"), R1_IF_A.mac))
    assert endpoint("vm-a22") not in result.endpoints


def test_router_flows_exist_only_on_the_hosting_switch():
    snap = make_snapshot()
    for dpid in (2, 3):
        tables = {f.table for f in desired_flows(snap, dpid)
                  if kind_of(f.cookie) is CookieKind.ROUTER}
        assert tables == {Table.L2_FORWARD}
    moved = make_snapshot(routers=(replace(R1, host_dpid=2),))
    result = make_fabric(moved).send(1, udp("vm-a1", ip_of("vm-a22"), R1_IF_A.mac))
    assert result.endpoints == {endpoint("vm-a22")}
    assert {dpid for dpid, _ in result.on_wire} == {1, 2}


def test_unscheduled_router_has_no_flows_and_routes_nothing():
    snap = make_snapshot(routers=(replace(R1, host_dpid=None),))
    for dpid in (1, 2, 3):
        assert not any(kind_of(f.cookie) is CookieKind.ROUTER for f in desired_flows(snap, dpid))
    result = make_fabric(snap).send(1, udp("vm-a1", ip_of("vm-a22"), R1_IF_A.mac))
    assert endpoint("vm-a22") not in result.endpoints


def test_router_interface_network_is_present_on_the_router_host_without_local_ports():
    # Move every net-a VM away from sw1: sw1 still classifies net-a's VLAN for the router.
    flows = desired_flows(make_snapshot(), 1)
    assert any(f.table == Table.CLASSIFY and f.match.get("vlan_vid") == OFPVID_PRESENT | 101
               for f in flows)
    assert NET_A.segmentation_id == 100


def test_router_answers_pings_to_its_interface_from_a_local_vm():
    result = make_fabric().send(1, icmp("vm-a1", R1_IF_A.ip, R1_IF_A.mac))
    [reply] = result.at(*endpoint("vm-a1"))
    assert reply["icmpv4_type"] == 0
    assert reply["ipv4_src"] == R1_IF_A.ip and reply["ipv4_dst"] == ip_of("vm-a1")
    assert reply["eth_src"] == R1_IF_A.mac and reply["eth_dst"] == mac_of("vm-a1")


def test_router_answers_pings_from_another_host_back_through_the_uplink():
    result = make_fabric().send(3, icmp("vm-a3", R1_IF_A.ip, R1_IF_A.mac))
    [reply] = result.at(*endpoint("vm-a3"))
    assert reply["icmpv4_type"] == 0 and reply["ipv4_src"] == R1_IF_A.ip
    assert [(d, p["vlan_vid"]) for d, p in result.on_wire] == [
        (3, OFPVID_PRESENT | 100), (1, OFPVID_PRESENT | 100)]


def test_ping_to_the_other_interface_of_the_router_is_not_answered():
    # Only the address behind the MAC the VM talks to answers; 10.0.1.1 is not a host.
    result = make_fabric().send(1, icmp("vm-a1", R1_IF_A2.ip, R1_IF_A.mac))
    assert result.endpoints == set()
