"""A small cloud to test the pipeline on: three hosts, two tenants, overlapping CIDRs.

::

    switch 1 (dpid 1): uplink=1, ext0=2 (L3 agent: hosts router r1), taps from 10
    switch 2 (dpid 2): uplink=1, taps from 10
    switch 3 (dpid 3): uplink=1, taps from 10

    tenant A: net-a   vlan 100  10.0.0.0/24   vm-a1 (sw1), vm-a2 (sw2), vm-a3 (sw3), dhcp-a (sw3)
              net-a2  vlan 101  10.0.1.0/24   vm-a21 (sw2), vm-a22 (sw1)
              router r1 on sw1: 10.0.0.1 (net-a), 10.0.1.1 (net-a2), gateway 203.0.113.10
              floating IP 203.0.113.20 -> vm-a2 (10.0.0.12)
    tenant B: net-b   vlan 200  10.0.0.0/24   vm-b1 (sw1), vm-b2 (sw2, same IP as vm-a2),
                                              vm-b3 (sw2, no port security)
              net-bf  flat physnet1 (untagged) 10.9.0.0/24  vm-bf1 (sw1), vm-bf2 (sw3)
    external: ext     flat            203.0.113.0/24 upstream 203.0.113.1
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

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
from ryu_sched.flows.simulator import Fabric, SwitchSimulator
from ryu_sched.flows.spec import ETH_TYPE_ARP, ETH_TYPE_IP, IP_PROTO_ICMP, IP_PROTO_UDP

UPLINK = 1
EXT = 2
UPSTREAM_MAC = "52:54:00:ff:00:01"
UPSTREAM_IP = "203.0.113.1"
INTERNET_IP = "198.51.100.7"
GW_IP = "203.0.113.10"
GW_MAC = "fa:16:3e:00:ee:01"
FIP = "203.0.113.20"
BROADCAST = "ff:ff:ff:ff:ff:ff"


def uid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, name + ".ryu-sched.test"))


NET_A = Network(uid("net-a"), 1, "tenant-a", "vlan", "physnet1", 100, False)
NET_A2 = Network(uid("net-a2"), 2, "tenant-a", "vlan", "physnet1", 101, False)
NET_B = Network(uid("net-b"), 3, "tenant-b", "vlan", "physnet1", 200, False)
NET_BF = Network(uid("net-bf"), 4, "tenant-b", "flat", "physnet1", None, False)
NET_EXT = Network(uid("ext"), 5, "admin", "flat", "extnet", None, True)
NETWORKS = (NET_A, NET_A2, NET_B, NET_BF, NET_EXT)

SUB_A = Subnet(uid("sub-a"), NET_A.id, "10.0.0.0/24", "10.0.0.1")
SUB_A2 = Subnet(uid("sub-a2"), NET_A2.id, "10.0.1.0/24", "10.0.1.1")
SUB_B = Subnet(uid("sub-b"), NET_B.id, "10.0.0.0/24", "10.0.0.1")
SUB_BF = Subnet(uid("sub-bf"), NET_BF.id, "10.9.0.0/24", None)
SUB_EXT = Subnet(uid("sub-ext"), NET_EXT.id, "203.0.113.0/24", UPSTREAM_IP)
SUBNETS = (SUB_A, SUB_A2, SUB_B, SUB_BF, SUB_EXT)

# name: (network, subnet, ip, mac, dpid, port security, device owner)
_VMS: dict[str, tuple[Network, Subnet, str, str, int, bool, str]] = {
    "vm-a1": (NET_A, SUB_A, "10.0.0.11", "fa:16:3e:00:00:11", 1, True, "compute:nova"),
    "vm-a2": (NET_A, SUB_A, "10.0.0.12", "fa:16:3e:00:00:12", 2, True, "compute:nova"),
    "vm-a3": (NET_A, SUB_A, "10.0.0.13", "fa:16:3e:00:00:13", 3, True, "compute:nova"),
    "dhcp-a": (NET_A, SUB_A, "10.0.0.2", "fa:16:3e:00:00:02", 3, True, "network:dhcp"),
    "vm-a21": (NET_A2, SUB_A2, "10.0.1.21", "fa:16:3e:00:01:21", 2, True, "compute:nova"),
    "vm-a22": (NET_A2, SUB_A2, "10.0.1.22", "fa:16:3e:00:01:22", 1, True, "compute:nova"),
    "vm-b1": (NET_B, SUB_B, "10.0.0.11", "fa:16:3e:00:0b:11", 1, True, "compute:nova"),
    "vm-b2": (NET_B, SUB_B, "10.0.0.12", "fa:16:3e:00:0b:12", 2, True, "compute:nova"),
    "vm-b3": (NET_B, SUB_B, "10.0.0.13", "fa:16:3e:00:0b:13", 2, False, "compute:nova"),
    "vm-bf1": (NET_BF, SUB_BF, "10.9.0.11", "fa:16:3e:00:0f:11", 1, True, "compute:nova"),
    "vm-bf2": (NET_BF, SUB_BF, "10.9.0.12", "fa:16:3e:00:0f:12", 3, True, "compute:nova"),
}
VM_NAMES = tuple(_VMS)

PORTS: dict[str, Port] = {
    name: Port(uid(name), net.id, mac, ((sub.id, ip),), owner, uid("dev-" + name), ps, True)
    for name, (net, sub, ip, mac, _dpid, ps, owner) in _VMS.items()
}
LOCATION: dict[str, int] = {name: v[4] for name, v in _VMS.items()}

R1_IF_A = RouterInterface(uid("r1-if-a"), SUB_A.id, NET_A.id, "10.0.0.1",
                          "fa:16:3e:00:aa:01", SUB_A.cidr)
R1_IF_A2 = RouterInterface(uid("r1-if-a2"), SUB_A2.id, NET_A2.id, "10.0.1.1",
                           "fa:16:3e:00:aa:02", SUB_A2.cidr)
R1_GW = RouterGateway(uid("r1-gw"), NET_EXT.id, GW_IP, GW_MAC, SUB_EXT.cidr, UPSTREAM_IP,
                      UPSTREAM_MAC, True)
R1 = Router(uid("r1"), 7, "tenant-a", (R1_IF_A, R1_IF_A2), R1_GW, host_dpid=1)
FIP_A2 = FloatingIP(uid("fip-a2"), FIP, NET_EXT.id, R1.id, "10.0.0.12", PORTS["vm-a2"].id)

ROUTER_PORTS = (
    Port(R1_IF_A.port_id, NET_A.id, R1_IF_A.mac, ((SUB_A.id, R1_IF_A.ip),),
         "network:router_interface", R1.id),
    Port(R1_IF_A2.port_id, NET_A2.id, R1_IF_A2.mac, ((SUB_A2.id, R1_IF_A2.ip),),
         "network:router_interface", R1.id),
    Port(R1_GW.port_id, NET_EXT.id, GW_MAC, ((SUB_EXT.id, GW_IP),),
         "network:router_gateway", R1.id),
)


def ofport(name: str) -> int:
    """Taps are numbered from 10 in VM_NAMES order, on whichever switch hosts them."""
    return 10 + VM_NAMES.index(name)


def make_switches() -> tuple[Switch, ...]:
    switches = []
    for dpid in (1, 2, 3):
        ports = {"uplink": UPLINK}
        ports.update({tap_name(PORTS[n].id): ofport(n) for n in VM_NAMES if LOCATION[n] == dpid})
        ext = None
        if dpid == 1:
            ports["ext0"] = EXT
            ext = "ext0"
        switches.append(Switch(dpid, ports, {"physnet1": "uplink"}, ext))
    return tuple(switches)


def make_snapshot(**changes: Any) -> Snapshot:
    snap = Snapshot(
        networks=NETWORKS,
        subnets=SUBNETS,
        ports=(*PORTS.values(), *ROUTER_PORTS),
        routers=(R1,),
        floating_ips=(FIP_A2,),
        switches=make_switches(),
        port_locations={PORTS[n].id: LOCATION[n] for n in VM_NAMES},
    )
    return replace(snap, **changes) if changes else snap


def make_fabric(snapshot: Snapshot | None = None) -> Fabric:
    snapshot = snapshot or make_snapshot()
    dpids = [sw.dpid for sw in snapshot.switches]
    return Fabric({d: SwitchSimulator(desired_flows(snapshot, d)) for d in dpids},
                  {d: UPLINK for d in dpids})


# ---------------------------------------------------------------------- packets
def ip_of(name: str) -> str:
    return PORTS[name].fixed_ips[0][1]


def mac_of(name: str) -> str:
    return PORTS[name].mac


def endpoint(name: str) -> tuple[int, int]:
    return (LOCATION[name], ofport(name))


def udp(src: str, dst_ip: str, dst_mac: str, **overrides: Any) -> dict[str, Any]:
    pkt = dict(in_port=ofport(src), eth_src=mac_of(src), eth_dst=dst_mac,
               eth_type=ETH_TYPE_IP, ipv4_src=ip_of(src), ipv4_dst=dst_ip,
               ip_proto=IP_PROTO_UDP, udp_src=40000, udp_dst=5001, ip_ttl=64)
    pkt.update(overrides)
    return pkt


def icmp(src: str, dst_ip: str, dst_mac: str, **overrides: Any) -> dict[str, Any]:
    pkt = dict(in_port=ofport(src), eth_src=mac_of(src), eth_dst=dst_mac,
               eth_type=ETH_TYPE_IP, ipv4_src=ip_of(src), ipv4_dst=dst_ip,
               ip_proto=IP_PROTO_ICMP, icmpv4_type=8, icmpv4_code=0, icmp_id=77, ip_ttl=64)
    pkt.update(overrides)
    return pkt


def arp_request(src: str, target_ip: str, **overrides: Any) -> dict[str, Any]:
    pkt = dict(in_port=ofport(src), eth_src=mac_of(src), eth_dst=BROADCAST,
               eth_type=ETH_TYPE_ARP, arp_op=1, arp_sha=mac_of(src), arp_spa=ip_of(src),
               arp_tha="00:00:00:00:00:00", arp_tpa=target_ip)
    pkt.update(overrides)
    return pkt


def from_internet(dst_ip: str, **overrides: Any) -> dict[str, Any]:
    """A packet arriving on switch 1's external port from the upstream router."""
    pkt = dict(in_port=EXT, eth_src=UPSTREAM_MAC, eth_dst=GW_MAC, eth_type=ETH_TYPE_IP,
               ipv4_src=INTERNET_IP, ipv4_dst=dst_ip, ip_proto=IP_PROTO_UDP,
               udp_src=53, udp_dst=40000, ip_ttl=60)
    pkt.update(overrides)
    return pkt


def names_in(network: Network) -> list[str]:
    return [n for n in VM_NAMES if PORTS[n].network_id == network.id]


def network_of(name: str) -> Network:
    return next(n for n in NETWORKS if n.id == PORTS[name].network_id)


def endpoints_of(names: Iterable[str]) -> set[tuple[int, int]]:
    return {endpoint(n) for n in names}


def all_endpoints() -> Mapping[tuple[int, int], str]:
    return {endpoint(n): n for n in VM_NAMES}


# A second tenant's router on the same switch, with the *same* inside addresses as r1
# (10.0.0.1 on net-b, which overlaps net-a): metadata router bits and conntrack zones must
# keep the two apart.
GW2_IP = "203.0.113.11"
GW2_MAC = "fa:16:3e:00:ee:02"
R2_IF_B = RouterInterface(uid("r2-if-b"), SUB_B.id, NET_B.id, "10.0.0.1",
                          "fa:16:3e:00:bb:01", SUB_B.cidr)
R2_GW = RouterGateway(uid("r2-gw"), NET_EXT.id, GW2_IP, GW2_MAC, SUB_EXT.cidr, UPSTREAM_IP,
                      UPSTREAM_MAC, True)
R2 = Router(uid("r2"), 8, "tenant-b", (R2_IF_B,), R2_GW, host_dpid=1)
R2_PORTS = (
    Port(R2_IF_B.port_id, NET_B.id, R2_IF_B.mac, ((SUB_B.id, R2_IF_B.ip),),
         "network:router_interface", R2.id),
    Port(R2_GW.port_id, NET_EXT.id, GW2_MAC, ((SUB_EXT.id, GW2_IP),),
         "network:router_gateway", R2.id),
)


def make_two_router_snapshot() -> Snapshot:
    base = make_snapshot()
    return make_snapshot(routers=(R1, R2), ports=(*base.ports, *R2_PORTS))


# HA: r1 active on one gateway switch, on standby on others. Every gateway switch has the
# external port ext0 (ofport EXT); switch 3 hosts vm-a3 (net-a) and dhcp-a.
def make_ha_snapshot(active: int | None = 1, standby: tuple[int, ...] = (3,)) -> Snapshot:
    gateways = {*standby} | ({active} if active is not None else set())
    switches = tuple(replace(sw, ports={**sw.ports, "ext0": EXT}, external_port="ext0")
                     if sw.dpid in gateways else sw for sw in make_switches())
    return make_snapshot(switches=switches,
                         routers=(replace(R1, host_dpid=active, standby_dpids=standby),))


#: r1's addresses and MACs: what a switch without r1's active-only flows never answers for
#: nor emits.
R1_IPS = frozenset({R1_IF_A.ip, R1_IF_A2.ip, GW_IP, FIP})
R1_MACS = frozenset({R1_IF_A.mac, R1_IF_A2.mac, GW_MAC})
