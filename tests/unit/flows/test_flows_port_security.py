"""A port with port security may only send from its own MAC and fixed IPs (ARP included)."""

from __future__ import annotations

import pytest
from flows_testbed import (
    BROADCAST,
    arp_request,
    endpoint,
    ip_of,
    mac_of,
    make_fabric,
    udp,
)

from ryu_sched.flows.spec import IP_PROTO_UDP

FORGED_MAC = "fa:16:3e:66:66:66"


def send(src: str, pkt: dict):
    return make_fabric().send(endpoint(src)[0], pkt)


def test_vm_with_its_own_mac_and_ip_is_forwarded():
    assert send("vm-a1", udp("vm-a1", ip_of("vm-a2"), mac_of("vm-a2"))).endpoints == {
        endpoint("vm-a2")}


@pytest.mark.parametrize("forgery", [
    {"eth_src": FORGED_MAC},
    {"eth_src": mac_of("vm-a3")},
    {"ipv4_src": "10.0.0.99"},
    {"ipv4_src": ip_of("vm-a3")},
    {"eth_src": mac_of("vm-a3"), "ipv4_src": ip_of("vm-a3")},
])
def test_spoofed_mac_or_ip_is_dropped(forgery):
    pkt = udp("vm-a1", ip_of("vm-a2"), mac_of("vm-a2"), **forgery)
    result = send("vm-a1", pkt)
    assert result.endpoints == set() and result.on_wire == []


@pytest.mark.parametrize("forgery", [
    {"arp_sha": FORGED_MAC},
    {"arp_spa": "10.0.0.99"},
    {"arp_spa": ip_of("vm-a3")},
    {"eth_src": FORGED_MAC, "arp_sha": FORGED_MAC},
    {"arp_spa": "0.0.0.0"},
])
def test_spoofed_arp_is_dropped(forgery):
    result = send("vm-a1", arp_request("vm-a1", ip_of("vm-a2"), **forgery))
    assert result.endpoints == set() and result.on_wire == []


def test_honest_arp_is_flooded_in_the_network():
    result = send("vm-a1", arp_request("vm-a1", ip_of("vm-a2")))
    assert endpoint("vm-a2") in result.endpoints


def dhcp_discover(src: str, **overrides):
    fields = dict(ipv4_src="0.0.0.0", udp_src=68, udp_dst=67) | overrides
    return udp(src, "255.255.255.255", BROADCAST, **fields)


def test_dhcp_discover_from_0_0_0_0_reaches_the_dhcp_port_on_another_host():
    result = send("vm-a1", dhcp_discover("vm-a1"))
    assert endpoint("dhcp-a") in result.endpoints


def test_dhcp_discover_with_a_forged_mac_is_dropped():
    assert send("vm-a1", dhcp_discover("vm-a1", eth_src=FORGED_MAC)).endpoints == set()


def test_traffic_from_0_0_0_0_other_than_dhcp_is_dropped():
    assert send("vm-a1", dhcp_discover("vm-a1", udp_dst=53)).endpoints == set()


def test_vm_cannot_act_as_dhcp_server_but_the_dhcp_port_can():
    offer = udp("vm-a1", "255.255.255.255", BROADCAST, udp_src=67, udp_dst=68)
    assert send("vm-a1", offer).endpoints == set()
    offer = udp("dhcp-a", "255.255.255.255", BROADCAST, udp_src=67, udp_dst=68)
    assert endpoint("vm-a1") in send("dhcp-a", offer).endpoints


@pytest.mark.parametrize("eth_type", [0x86DD, 0x88CC, 0x8035])
def test_ipv6_and_other_ethertypes_are_dropped(eth_type):
    pkt = dict(in_port=endpoint("vm-a1")[1], eth_src=mac_of("vm-a1"), eth_dst=BROADCAST,
               eth_type=eth_type)
    assert send("vm-a1", pkt).endpoints == set()


def test_port_without_port_security_may_send_anything_but_only_in_its_network():
    forged = udp("vm-b3", ip_of("vm-b1"), mac_of("vm-b1"), eth_src=FORGED_MAC,
                 ipv4_src="192.0.2.1", ip_proto=IP_PROTO_UDP)
    assert send("vm-b3", forged).endpoints == {endpoint("vm-b1")}
    forged_to_a = udp("vm-b3", ip_of("vm-a1"), mac_of("vm-a1"), eth_src=mac_of("vm-a3"))
    assert endpoint("vm-a1") not in send("vm-b3", forged_to_a).endpoints
