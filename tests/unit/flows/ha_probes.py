"""Probes for the active/standby split: packets that would make a switch answer for, or emit
from, a router, and the check that it did neither.

``probes(snapshot, dpid)`` builds, for one switch, what its VMs, its uplink (every VLAN and
flat network) and its external port could send to the routers of the snapshot: ARP requests
(broadcast and unicast) for every router address, ARP replies to the gateways (as the
upstream router's), IPv4 and pings to every router MAC for router addresses, VMs and the
internet. ``speaks_for_router`` says whether a switch's output claims a router's identity: a
router MAC as Ethernet or ARP source, or an ARP reply for a router address.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ryu_sched.flows.cookies import CookieKind, kind_of
from ryu_sched.flows.model import Network, Snapshot, tap_name
from ryu_sched.flows.simulator import SimResult
from ryu_sched.flows.spec import (
    ARP_REPLY,
    ARP_REQUEST,
    ETH_TYPE_ARP,
    ETH_TYPE_IP,
    IP_PROTO_ICMP,
    IP_PROTO_UDP,
    OFPVID_PRESENT,
    FlowSpec,
)

Packet = dict[str, Any]
BROADCAST = "ff:ff:ff:ff:ff:ff"
FABRIC_MAC = "52:54:00:aa:00:01"   # some host behind the uplink
UPSTREAM = ("52:54:00:ff:00:01", "203.0.113.1")
INTERNET_IP = "198.51.100.7"


@dataclass(frozen=True)
class Identity:
    """Every address and MAC of the snapshot's routers."""

    ips: frozenset[str]
    macs: frozenset[str]


def identity(snapshot: Snapshot) -> Identity:
    ips: set[str] = set()
    macs: set[str] = set()
    for router in snapshot.routers:
        for iface in router.interfaces:
            ips.add(iface.ip)
            macs.add(iface.mac)
        if router.gateway is not None:
            ips.add(router.gateway.ip)
            macs.add(router.gateway.mac)
    ips.update(f.floating_ip for f in snapshot.floating_ips)
    return Identity(frozenset(ips), frozenset(macs))


def fenced(flows: list[FlowSpec]) -> list[FlowSpec]:
    """What is left on a switch after ``del-flows cookie=0x08.../0xff...``."""
    return [f for f in flows if kind_of(f.cookie) is not CookieKind.ROUTER_ACTIVE]


def speaks_for_router(result: SimResult, who: Identity) -> list[Packet]:
    """The outputs of ``result`` that claim a router's identity (none is the invariant)."""
    return [out for _port, out in result.outputs
            if out.get("eth_src") in who.macs or out.get("arp_sha") in who.macs
            or (out.get("arp_op") == ARP_REPLY and out.get("arp_spa") in who.ips)]


def _senders(snapshot: Snapshot, dpid: int) -> Iterator[tuple[dict[str, Any], str]]:
    """(fields identifying the sender, its own IP) of everything that can send to ``dpid``."""
    switch = snapshot.switch(dpid)
    assert switch is not None
    for port in snapshot.ports:
        ofport = switch.ports.get(tap_name(port.id))
        if snapshot.port_locations.get(port.id) == dpid and ofport is not None and port.ips:
            yield {"in_port": ofport, "eth_src": port.mac}, port.ips[0]
    uplinks = {physnet: switch.ports.get(name) for physnet, name in switch.uplinks.items()}
    for network in snapshot.networks:
        if network.external or uplinks.get(network.physical_network) is None:
            continue
        yield ({"in_port": uplinks[network.physical_network], "eth_src": FABRIC_MAC,
                **_tag(network)}, "10.250.0.1")
    ext = switch.ports.get(switch.external_port) if switch.external_port else None
    if ext is not None:
        yield {"in_port": ext, "eth_src": UPSTREAM[0]}, UPSTREAM[1]


def _tag(network: Network) -> dict[str, int]:
    if network.network_type == "vlan" and network.segmentation_id is not None:
        return {"vlan_vid": OFPVID_PRESENT | network.segmentation_id}
    return {}


def probes(snapshot: Snapshot, dpid: int) -> list[Packet]:
    who = identity(snapshot)
    vm_ips = sorted({ip for p in snapshot.ports for ip in p.ips})[:2]
    packets: list[Packet] = []
    for sender, own_ip in _senders(snapshot, dpid):
        mac = sender["eth_src"]
        arp = dict(sender, eth_type=ETH_TYPE_ARP, arp_sha=mac, arp_spa=own_ip,
                   arp_tha="00:00:00:00:00:00")
        for ip in sorted(who.ips):
            packets.append(dict(arp, eth_dst=BROADCAST, arp_op=ARP_REQUEST, arp_tpa=ip))
        for router_mac in sorted(who.macs):
            for ip in sorted(who.ips):
                packets.append(dict(arp, eth_dst=router_mac, arp_op=ARP_REQUEST, arp_tpa=ip))
                packets.append(dict(arp, eth_dst=router_mac, arp_op=ARP_REPLY, arp_tpa=ip,
                                    arp_tha=router_mac))
            ip_packet = dict(sender, eth_dst=router_mac, eth_type=ETH_TYPE_IP,
                             ipv4_src=own_ip, ip_ttl=64)
            for dst in (*sorted(who.ips), *vm_ips, INTERNET_IP):
                packets.append(dict(ip_packet, ipv4_dst=dst, ip_proto=IP_PROTO_UDP,
                                    udp_src=40000, udp_dst=53))
                packets.append(dict(ip_packet, ipv4_dst=dst, ip_proto=IP_PROTO_ICMP,
                                    icmpv4_type=8, icmpv4_code=0, icmp_id=7))
    return packets
