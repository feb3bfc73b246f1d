"""A packet of a network reaches only ports of that network, on any host, whatever it claims."""

from __future__ import annotations

import itertools

import pytest
from flows_testbed import (
    BROADCAST,
    NET_A,
    NET_B,
    NET_BF,
    UPLINK,
    VM_NAMES,
    all_endpoints,
    arp_request,
    endpoint,
    ip_of,
    mac_of,
    make_fabric,
    names_in,
    network_of,
    udp,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from ryu_sched.flows.spec import ETH_TYPE_ARP, ETH_TYPE_IP, IP_PROTO_UDP, OFPVID_PRESENT

FABRIC = make_fabric()
PAIRS = list(itertools.permutations(VM_NAMES, 2))


def reached_names(result) -> set[str]:
    endpoints = all_endpoints()
    unexpected = result.endpoints - set(endpoints)
    assert not unexpected, f"delivered to ports that are no VM: {unexpected}"
    return {endpoints[e] for e in result.endpoints}


def same_network(a: str) -> set[str]:
    return set(names_in(network_of(a)))


@pytest.mark.parametrize(("src", "dst"), PAIRS)
def test_unicast_reaches_exactly_the_destination_in_the_same_network_and_nothing_else(src, dst):
    result = make_fabric().send(endpoint(src)[0], udp(src, ip_of(dst), mac_of(dst)))
    if network_of(src) == network_of(dst):
        assert result.endpoints == {endpoint(dst)}
        [delivered] = result.at(*endpoint(dst))
        assert delivered["eth_src"] == mac_of(src) and "vlan_vid" not in delivered
    else:  # a MAC unknown in the source network: flooded there, never delivered across
        assert reached_names(result) <= same_network(src) - {src}
        assert endpoint(dst) not in result.endpoints


@pytest.mark.parametrize("src", VM_NAMES)
def test_broadcast_floods_only_to_the_other_ports_of_the_network(src):
    result = FABRIC.send(endpoint(src)[0], udp(src, "255.255.255.255", BROADCAST))
    assert reached_names(result) == same_network(src) - {src}
    for dpid, port, _pkt in result.deliveries:
        assert len(result.at(dpid, port)) == 1, "flood must not duplicate"


@pytest.mark.parametrize("src", VM_NAMES)
def test_unknown_unicast_floods_within_the_network_only(src):
    result = FABRIC.send(endpoint(src)[0], udp(src, "10.0.0.99", "fa:16:3e:99:99:99"))
    assert reached_names(result) <= same_network(src) - {src}


def test_vm_cannot_reach_other_tenant_with_overlapping_cidr():
    # vm-a2 and vm-b2 share 10.0.0.12 on the same host; vm-a1 and vm-b1 share 10.0.0.11.
    assert ip_of("vm-a2") == ip_of("vm-b2")
    for dst_mac in (mac_of("vm-b2"), mac_of("vm-b1"), BROADCAST):
        result = FABRIC.send(endpoint("vm-a1")[0], udp("vm-a1", ip_of("vm-b2"), dst_mac))
        assert not reached_names(result) & set(names_in(NET_B))
    arp = FABRIC.send(endpoint("vm-a1")[0], arp_request("vm-a1", ip_of("vm-b2")))
    assert reached_names(arp) == same_network("vm-a1") - {"vm-a1"}


def test_cross_host_traffic_is_tagged_with_the_networks_vlan_on_the_wire():
    result = FABRIC.send(endpoint("vm-a1")[0], udp("vm-a1", ip_of("vm-a2"), mac_of("vm-a2")))
    assert [p["vlan_vid"] for _dpid, p in result.on_wire] == [OFPVID_PRESENT | 100]
    result = FABRIC.send(endpoint("vm-b3")[0], udp("vm-b3", ip_of("vm-b1"), mac_of("vm-b1")))
    assert [p["vlan_vid"] for _dpid, p in result.on_wire] == [OFPVID_PRESENT | 200]
    assert result.endpoints == {endpoint("vm-b1")}


def test_flat_network_crosses_hosts_untagged():
    result = FABRIC.send(endpoint("vm-bf1")[0],
                         udp("vm-bf1", ip_of("vm-bf2"), mac_of("vm-bf2")))
    assert result.endpoints == {endpoint("vm-bf2")}
    assert all("vlan_vid" not in p for _dpid, p in result.on_wire)


def test_unicast_to_a_remote_port_is_not_delivered_by_uninvolved_hosts():
    # The fabric floods the tagged frame to every host; only vm-a2's host delivers it.
    result = FABRIC.send(1, udp("vm-a1", ip_of("vm-a2"), mac_of("vm-a2")))
    assert result.endpoints == {endpoint("vm-a2")}


@pytest.mark.parametrize("vid", [1, 99, 102, 199, 201, 4094])
def test_unknown_vlan_from_the_uplink_is_dropped(vid):
    pkt = dict(in_port=UPLINK, vlan_vid=OFPVID_PRESENT | vid, eth_src="52:54:00:00:00:01",
               eth_dst=BROADCAST, eth_type=ETH_TYPE_IP, ipv4_src="10.0.0.50",
               ipv4_dst="10.0.0.255", ip_proto=IP_PROTO_UDP, udp_src=1, udp_dst=2)
    for dpid in (1, 2, 3):
        assert FABRIC.switches[dpid].process(pkt).dropped


def test_frames_from_the_uplink_go_only_to_the_tagged_networks_local_ports():
    for net in (NET_A, NET_B):
        pkt = dict(in_port=UPLINK, vlan_vid=OFPVID_PRESENT | net.segmentation_id,
                   eth_src="52:54:00:00:00:01", eth_dst=BROADCAST, eth_type=ETH_TYPE_ARP,
                   arp_op=1, arp_sha="52:54:00:00:00:01", arp_spa="10.0.0.50",
                   arp_tha="00:00:00:00:00:00", arp_tpa="10.0.0.51")
        for dpid in (1, 2, 3):
            result = FABRIC.switches[dpid].process(pkt)
            local = {n for n in names_in(net) if endpoint(n)[0] == dpid}
            assert result.ports == {endpoint(n)[1] for n in local}
            assert UPLINK not in result.ports, "never back out of the uplink"
            assert all("vlan_vid" not in p for _port, p in result.outputs)


def test_untagged_frames_from_the_uplink_belong_to_the_flat_network_only():
    pkt = dict(in_port=UPLINK, eth_src="52:54:00:00:00:01", eth_dst=BROADCAST,
               eth_type=ETH_TYPE_IP, ipv4_src="10.9.0.50", ipv4_dst="10.9.0.255",
               ip_proto=IP_PROTO_UDP, udp_src=1, udp_dst=2)
    for dpid in (1, 2, 3):
        local = {endpoint(n)[1] for n in names_in(NET_BF) if endpoint(n)[0] == dpid}
        assert FABRIC.switches[dpid].process(pkt).ports == local


def test_unknown_tap_is_dropped():
    pkt = dict(in_port=99, eth_src="52:54:00:00:00:01", eth_dst=BROADCAST,
               eth_type=ETH_TYPE_ARP, arp_op=1, arp_sha="52:54:00:00:00:01",
               arp_spa="10.0.0.50", arp_tha="00:00:00:00:00:00", arp_tpa="10.0.0.51")
    for dpid in (1, 2, 3):
        assert FABRIC.switches[dpid].process(pkt).dropped


def test_vm_sending_vlan_tagged_frames_is_dropped():
    pkt = udp("vm-b3", ip_of("vm-b2"), mac_of("vm-b2"), vlan_vid=OFPVID_PRESENT | 100)
    assert make_fabric().send(endpoint("vm-b3")[0], pkt).endpoints == set()


MACS = st.sampled_from([mac_of(n) for n in VM_NAMES] + [BROADCAST, "fa:16:3e:00:aa:01",
                                                        "fa:16:3e:00:aa:02",
                                                        "01:00:5e:00:00:01",
                                                        "52:54:00:12:34:56"])
IPS = st.sampled_from([ip_of(n) for n in VM_NAMES] + ["10.0.0.1", "10.0.1.1", "0.0.0.0",
                                                      "255.255.255.255", "8.8.8.8"])


@settings(max_examples=300, deadline=None)
@given(src=st.sampled_from(VM_NAMES), eth_src=MACS, eth_dst=MACS, ipv4_src=IPS, ipv4_dst=IPS,
       arp=st.booleans(), vid=st.one_of(st.none(), st.integers(1, 4094)))
def test_no_packet_from_a_vm_ever_leaves_its_tenant_network(src, eth_src, eth_dst, ipv4_src,
                                                            ipv4_dst, arp, vid):
    """Whatever a VM forges (only vm-b3 lacks port security), what it sends reaches ports of
    its own network, or, routed, other networks of the same router: never another tenant."""
    if arp:
        pkt = arp_request(src, ipv4_dst, eth_src=eth_src, eth_dst=eth_dst, arp_sha=eth_src,
                          arp_spa=ipv4_src)
    else:
        pkt = udp(src, ipv4_dst, eth_dst, eth_src=eth_src, ipv4_src=ipv4_src)
    if vid is not None:
        pkt["vlan_vid"] = OFPVID_PRESENT | vid
    result = make_fabric().send(endpoint(src)[0], pkt)
    tenant = network_of(src).tenant_id
    for name in reached_names(result):
        assert network_of(name).tenant_id == tenant
        if network_of(name) != network_of(src):
            assert pkt["eth_dst"] in ("fa:16:3e:00:aa:01", "fa:16:3e:00:aa:02"), "routed only"
    for _dpid, wire in result.on_wire:
        vlan = wire.get("vlan_vid")
        net_vids = {OFPVID_PRESENT | n.segmentation_id for n in (NET_A, NET_B)
                    if n.segmentation_id} | {None}
        assert vlan in net_vids | {OFPVID_PRESENT | 101}
