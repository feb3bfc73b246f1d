"""SNAT through the router gateway, floating IPs, and ARP on the external network."""

from __future__ import annotations

from dataclasses import replace

from flows_testbed import (
    EXT,
    FIP,
    GW_IP,
    GW_MAC,
    INTERNET_IP,
    R1,
    R1_GW,
    R1_IF_A,
    R1_IF_A2,
    UPSTREAM_IP,
    UPSTREAM_MAC,
    endpoint,
    from_internet,
    icmp,
    ip_of,
    mac_of,
    make_fabric,
    make_snapshot,
    udp,
)

from ryu_sched.flows.spec import ETH_TYPE_ARP


def test_snat_leaves_with_the_gateway_ip_and_the_reply_comes_back_to_the_vm():
    fabric = make_fabric()
    out = fabric.send(1, udp("vm-a22", INTERNET_IP, R1_IF_A2.mac))
    [sent] = out.at(1, EXT)
    assert out.endpoints == {(1, EXT)}
    assert sent["ipv4_src"] == GW_IP and sent["ipv4_dst"] == INTERNET_IP
    assert sent["eth_src"] == GW_MAC and sent["eth_dst"] == UPSTREAM_MAC
    assert sent["ip_ttl"] == 63 and "vlan_vid" not in sent

    reply = fabric.send(1, from_internet(GW_IP, udp_src=5001, udp_dst=40000))
    assert reply.endpoints == {endpoint("vm-a22")}
    [back] = reply.at(*endpoint("vm-a22"))
    assert back["ipv4_src"] == INTERNET_IP and back["ipv4_dst"] == ip_of("vm-a22")
    assert back["eth_src"] == R1_IF_A2.mac and back["eth_dst"] == mac_of("vm-a22")
    assert back["ip_ttl"] == 59


def test_snat_reply_reaches_a_vm_on_another_host_through_the_uplink():
    fabric = make_fabric()
    fabric.send(3, udp("vm-a3", INTERNET_IP, R1_IF_A.mac))
    reply = fabric.send(1, from_internet(GW_IP, udp_src=5001, udp_dst=40000))
    assert reply.endpoints == {endpoint("vm-a3")}


def test_unsolicited_traffic_to_the_gateway_ip_is_dropped():
    result = make_fabric().send(1, from_internet(GW_IP, udp_src=5001, udp_dst=40000))
    assert result.endpoints == set() and result.on_wire == []


def test_no_snat_without_the_upstream_mac_or_with_snat_disabled():
    for gw in (replace(R1_GW, upstream_mac=None), replace(R1_GW, enable_snat=False)):
        snap = make_snapshot(routers=(replace(R1, gateway=gw),))
        result = make_fabric(snap).send(1, udp("vm-a22", INTERNET_IP, R1_IF_A2.mac))
        assert result.endpoints == set()


def test_floating_ip_dnat_in_and_reply_out_with_the_floating_ip():
    fabric = make_fabric()
    inbound = fabric.send(1, from_internet(FIP))
    assert inbound.endpoints == {endpoint("vm-a2")}
    [pkt] = inbound.at(*endpoint("vm-a2"))
    assert pkt["ipv4_dst"] == ip_of("vm-a2") and pkt["ipv4_src"] == INTERNET_IP
    assert pkt["eth_dst"] == mac_of("vm-a2") and pkt["eth_src"] == R1_IF_A.mac

    reply = fabric.send(2, udp("vm-a2", INTERNET_IP, R1_IF_A.mac, udp_src=40000, udp_dst=53))
    [out] = reply.at(1, EXT)
    assert out["ipv4_src"] == FIP and out["eth_src"] == GW_MAC


def test_floating_ip_vm_connects_out_with_its_floating_ip_not_the_gateway():
    fabric = make_fabric()
    out = fabric.send(2, icmp("vm-a2", INTERNET_IP, R1_IF_A.mac))
    [sent] = out.at(1, EXT)
    assert sent["ipv4_src"] == FIP
    back = fabric.send(1, from_internet(FIP, ip_proto=1, icmp_id=77, icmpv4_type=0,
                                        icmpv4_code=0, udp_src=None, udp_dst=None))
    [pkt] = back.at(*endpoint("vm-a2"))
    assert pkt["ipv4_dst"] == ip_of("vm-a2")


def test_overlapping_tenant_ip_is_not_reachable_through_the_floating_ip():
    inbound = make_fabric().send(1, from_internet(FIP))
    assert endpoint("vm-b2") not in inbound.endpoints


def arp_from_upstream(op: int, target: str) -> dict:
    return dict(in_port=EXT, eth_src=UPSTREAM_MAC,
                eth_dst="ff:ff:ff:ff:ff:ff" if op == 1 else GW_MAC,
                eth_type=ETH_TYPE_ARP, arp_op=op, arp_sha=UPSTREAM_MAC, arp_spa=UPSTREAM_IP,
                arp_tha="00:00:00:00:00:00" if op == 1 else GW_MAC, arp_tpa=target)


def test_gateway_and_floating_ips_answer_arp_on_the_external_port():
    fabric = make_fabric()
    for target in (GW_IP, FIP):
        result = fabric.switches[1].process(arp_from_upstream(1, target))
        [(port, reply)] = result.outputs
        assert port == EXT and reply["arp_op"] == 2
        assert reply["arp_sha"] == GW_MAC and reply["arp_spa"] == target
        assert reply["eth_dst"] == UPSTREAM_MAC


def test_arp_for_other_external_addresses_is_ignored():
    assert make_fabric().switches[1].process(arp_from_upstream(1, "203.0.113.99")).dropped


def test_upstream_arp_reply_for_the_gateway_goes_to_the_controller():
    result = make_fabric().switches[1].process(arp_from_upstream(2, GW_IP))
    assert result.to_controller and not result.outputs
    assert result.packet_ins[0]["arp_sha"] == UPSTREAM_MAC


def test_routing_between_subnets_is_not_natted():
    fabric = make_fabric()
    result = fabric.send(1, udp("vm-a1", ip_of("vm-a22"), R1_IF_A.mac))
    [pkt] = result.at(*endpoint("vm-a22"))
    assert pkt["ipv4_src"] == ip_of("vm-a1")
    assert fabric.switches[1].conntrack.connections == []


def test_gateway_answers_pings_from_the_outside():
    ping = from_internet(GW_IP, ip_proto=1, icmpv4_type=8, icmpv4_code=0, icmp_id=5,
                         udp_src=None, udp_dst=None)
    result = make_fabric().switches[1].process(ping)
    [(port, reply)] = result.outputs
    assert port == EXT and reply["icmpv4_type"] == 0
    assert reply["ipv4_src"] == GW_IP and reply["ipv4_dst"] == INTERNET_IP
