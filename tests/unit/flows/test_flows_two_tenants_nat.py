"""Two tenants' routers on one switch, with identical inside addresses, never mix."""

from __future__ import annotations

from flows_testbed import (
    EXT,
    GW2_IP,
    GW2_MAC,
    GW_IP,
    INTERNET_IP,
    R1_IF_A,
    R2_IF_B,
    arp_request,
    endpoint,
    from_internet,
    ip_of,
    make_fabric,
    make_two_router_snapshot,
    udp,
)


def test_same_inside_address_behind_two_routers_is_snatted_to_each_routers_gateway():
    fabric = make_fabric(make_two_router_snapshot())
    assert ip_of("vm-a1") == ip_of("vm-b1")
    out_a = fabric.send(1, udp("vm-a1", INTERNET_IP, R1_IF_A.mac))
    out_b = fabric.send(1, udp("vm-b1", INTERNET_IP, R2_IF_B.mac))
    assert out_a.at(1, EXT)[0]["ipv4_src"] == GW_IP
    assert out_b.at(1, EXT)[0]["ipv4_src"] == GW2_IP
    assert out_b.at(1, EXT)[0]["eth_src"] == GW2_MAC

    back_b = fabric.send(1, from_internet(GW2_IP, eth_dst=GW2_MAC, udp_src=5001,
                                          udp_dst=40000))
    back_a = fabric.send(1, from_internet(GW_IP, udp_src=5001, udp_dst=40000))
    assert back_b.endpoints == {endpoint("vm-b1")}
    assert back_a.endpoints == {endpoint("vm-a1")}


def test_each_router_answers_arp_for_its_own_interface_in_its_own_network():
    fabric = make_fabric(make_two_router_snapshot())
    [reply_a] = fabric.switches[1].process(arp_request("vm-a1", "10.0.0.1")).outputs
    [reply_b] = fabric.switches[1].process(arp_request("vm-b1", "10.0.0.1")).outputs
    assert reply_a[1]["arp_sha"] == R1_IF_A.mac
    assert reply_b[1]["arp_sha"] == R2_IF_B.mac


def test_a_tenant_cannot_route_through_the_other_tenants_router():
    fabric = make_fabric(make_two_router_snapshot())
    result = fabric.send(1, udp("vm-b1", ip_of("vm-a22"), R1_IF_A.mac))
    assert endpoint("vm-a22") not in result.endpoints
    assert result.at(1, EXT) == []
