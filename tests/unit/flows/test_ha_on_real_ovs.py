"""Active and standby routers on a real Open vSwitch 3.1, next to the simulator.

Uses the private OVS and the real-frame twin of test_security_groups_on_real_ovs.py: every
frame goes through the real bridge (userspace datapath and conntrack) and the simulator, and
both must transmit the same frames on the same ports. The standby switch answers nothing for
the router and drops what the fabric sends to its MACs; the active one, fenced with the very
``ovs-ofctl del-flows`` filter the L3 agent uses, is left with exactly a standby's flows and
behaves as one, conntrack entries of its old connections notwithstanding. Needs root and OVS
(a failure under CI=true without them).
"""

from __future__ import annotations

from flows_testbed import (
    EXT,
    FIP,
    GW_IP,
    GW_MAC,
    INTERNET_IP,
    R1_IF_A,
    R1_IF_A2,
    UPLINK,
    UPSTREAM_IP,
    UPSTREAM_MAC,
    arp_request,
    endpoint,
    from_internet,
    icmp,
    ip_of,
    mac_of,
    make_ha_snapshot,
    udp,
)
from ha_probes import fenced
from test_ofctl_on_real_ovs import sandbox
from test_security_groups_on_real_ovs import Twin, twin_of

from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.flows.spec import OFPVID_PRESENT
from ryu_sched.shared.vocabulary import ROUTER_ACTIVE_COOKIE_MATCH

__all__ = ["sandbox", "twin_of"]  # the module-scoped private OVS and the twin fixture

HA = make_ha_snapshot()                          # r1 active on switch 1, standby on 3
SWAPPED = make_ha_snapshot(active=3, standby=(1,))
A1, A3 = endpoint("vm-a1")[1], endpoint("vm-a3")[1]
DHCP_A = endpoint("dhcp-a")[1]


def from_uplink(packet: dict, vlan: int) -> dict:
    return {**packet, "in_port": UPLINK, "vlan_vid": OFPVID_PRESENT | vlan}


def upstream_arp(op: int, target: str, eth_dst: str = "ff:ff:ff:ff:ff:ff") -> dict:
    return dict(in_port=EXT, eth_src=UPSTREAM_MAC, eth_dst=eth_dst, eth_type=0x0806,
                arp_op=op, arp_sha=UPSTREAM_MAC, arp_spa=UPSTREAM_IP,
                arp_tha="00:00:00:00:00:00" if op == 1 else GW_MAC, arp_tpa=target)


def fence(twin: Twin, flows: list) -> None:
    """What the L3 agent does when its lease lapses, on the real bridge and the twin."""
    box = twin.bridge.sandbox
    box.run("ovs-ofctl", "-O", "OpenFlow13", "del-flows", twin.bridge.name,
            ROUTER_ACTIVE_COOKIE_MATCH)
    box.appctl("revalidator/purge")
    twin.sim.replace_flows(fenced(flows))


def test_real_standby_answers_nothing_and_drops_what_the_fabric_sends_the_router(twin_of):
    sw = twin_of(HA, 3)
    assert len(sw.bridge.dump_flows()) == len(desired_flows(HA, 3))
    # Its VMs' requests for the router are flooded as any broadcast, never answered here.
    assert set(sw.send(arp_request("vm-a3", R1_IF_A.ip))) == {UPLINK, DHCP_A}
    assert set(sw.send(from_uplink(arp_request("vm-a2", R1_IF_A.ip), 100))) == {A3, DHCP_A}
    # Nothing for the router's addresses or MACs from the external port or the uplink.
    for packet in (upstream_arp(1, GW_IP), upstream_arp(1, FIP), upstream_arp(2, GW_IP, GW_MAC),
                   from_internet(GW_IP), from_internet(FIP),
                   from_uplink(icmp("vm-a2", R1_IF_A.ip, R1_IF_A.mac), 100),
                   from_uplink(udp("vm-a21", INTERNET_IP, R1_IF_A2.mac), 101)):
        assert sw.send(packet) == {}, packet
    # Its VMs' packets for the router go up the uplink, unrouted, to the active switch.
    [up] = sw.send(udp("vm-a3", ip_of("vm-a22"), R1_IF_A.mac))[UPLINK]
    assert (up["eth_src"], up["eth_dst"], up["ip_ttl"]) == (mac_of("vm-a3"), R1_IF_A.mac, 64)


def test_real_fence_leaves_the_active_exactly_a_standby(twin_of):
    flows = desired_flows(HA, 1)
    sw = twin_of(HA, 1)
    a22 = endpoint("vm-a22")[1]
    # Active: answers, routes, SNATs (a connection in its conntrack).
    [reply] = sw.send(arp_request("vm-a1", R1_IF_A.ip))[A1]
    assert (reply["arp_sha"], reply["arp_spa"]) == (R1_IF_A.mac, R1_IF_A.ip)
    [answer] = sw.send(upstream_arp(1, GW_IP))[EXT]
    assert answer["arp_sha"] == GW_MAC
    [out] = sw.send(udp("vm-a22", INTERNET_IP, R1_IF_A2.mac))[EXT]
    assert (out["eth_src"], out["ipv4_src"]) == (GW_MAC, GW_IP)
    assert list(sw.send(from_internet(GW_IP, udp_src=5001, udp_dst=40000))) == [a22]

    fence(sw, flows)
    remaining = sw.bridge.dump_flows()
    assert len(remaining) == len(desired_flows(SWAPPED, 1))
    assert not [line for line in remaining if "cookie=0x08" in line]
    # Fenced: nothing answered or emitted for the router, not even the established
    # connection's reply; its VMs' packets for the router leave for the new active switch.
    assert set(sw.send(arp_request("vm-a1", R1_IF_A.ip))) == {UPLINK}
    for packet in (upstream_arp(1, GW_IP), upstream_arp(1, FIP),
                   from_internet(GW_IP, udp_src=5001, udp_dst=40000), from_internet(FIP),
                   icmp("vm-a1", R1_IF_A.ip, R1_IF_A.mac) | {"in_port": UPLINK,
                                                             "vlan_vid": OFPVID_PRESENT | 100}):
        assert sw.send(packet) == {}, packet
    [up] = sw.send(udp("vm-a22", INTERNET_IP, R1_IF_A2.mac))[UPLINK]
    assert (up["eth_src"], up["ipv4_src"]) == (mac_of("vm-a22"), ip_of("vm-a22"))
