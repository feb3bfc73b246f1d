"""The test bed of flows_testbed.py with security groups on every VM port.

::

    a-default  (tenant A's default group): egress any; ingress from members of a-default
    b-default  (tenant B's default group): the same for tenant B
    web        ingress tcp 8080 from 0.0.0.0/0
    admin      ingress tcp 22 and udp 5000-5003 from 198.51.100.0/24 (the "internet" host is
               198.51.100.7), ingress icmp echo request from 192.0.2.0/24 (not the internet
               host)
    out-only   egress any, no ingress rule

    vm-a1 (sw1), vm-a3 (sw3), vm-a21 (sw2)   a-default
    vm-a2 (sw2, floating IP 203.0.113.20)    a-default, web, admin
    vm-a22 (sw1, net-a2)                     out-only: tenant A, but not in a-default
    vm-b1 (sw1), vm-b2 (sw2), vm-bf1 (sw1), vm-bf2 (sw3)   b-default
    vm-bf1 also holds allowed address pairs 10.9.0.100 (its own MAC) and 10.9.0.128/25 with
    MAC fa:16:3e:00:99:99
    vm-b3 (sw2)                              no port security: no groups, never filtered
    dhcp-a                                   trusted network:dhcp port: never filtered

:class:`Cloud` is a fabric that can be reprogrammed with a new snapshot while every switch
keeps its conntrack, as a real switch does when the controller changes its flows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from flows_testbed import (
    FIP_A2,
    NET_EXT,
    PORTS,
    R1,
    UPLINK,
    from_internet,
    mac_of,
    make_snapshot,
    ofport,
    uid,
)

from ryu_sched.flows.model import (
    Direction,
    FloatingIP,
    Port,
    SecurityGroup,
    SecurityGroupRule,
    Snapshot,
)
from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.flows.simulator import Fabric, FabricResult, SwitchSimulator
from ryu_sched.flows.spec import ETH_TYPE_IP, IP_PROTO_ICMP, IP_PROTO_TCP, IP_PROTO_UDP

EGRESS, INGRESS = Direction.EGRESS, Direction.INGRESS
SYN, ACK, SYN_ACK, PSH_ACK = 0x002, 0x010, 0x012, 0x018


def rule(name: str, direction: Direction, **fields: Any) -> SecurityGroupRule:
    return SecurityGroupRule(uid("rule-" + name), direction, **fields)


def default_group(name: str) -> SecurityGroup:
    gid = uid(name)
    return SecurityGroup(gid, (rule(name + "-out", EGRESS),
                               rule(name + "-in", INGRESS, remote_group_id=gid)))


SG_A = default_group("a-default")
SG_B = default_group("b-default")
SG_WEB = SecurityGroup(uid("web"), (
    rule("web-8080", INGRESS, protocol=IP_PROTO_TCP, port_range_min=8080, port_range_max=8080,
         remote_ip_prefix="0.0.0.0/0"),))
SG_ADMIN = SecurityGroup(uid("admin"), (
    rule("admin-ssh", INGRESS, protocol=IP_PROTO_TCP, port_range_min=22, port_range_max=22,
         remote_ip_prefix="198.51.100.0/24"),
    rule("admin-udp", INGRESS, protocol=IP_PROTO_UDP, port_range_min=5000, port_range_max=5003,
         remote_ip_prefix="198.51.100.0/24"),
    rule("admin-ping", INGRESS, protocol=IP_PROTO_ICMP, port_range_min=8,
         remote_ip_prefix="192.0.2.0/24"),))
SG_OUT = SecurityGroup(uid("out-only"), (rule("out-only-out", EGRESS),))
GROUPS = (SG_A, SG_B, SG_WEB, SG_ADMIN, SG_OUT)

MEMBERSHIP: dict[str, tuple[SecurityGroup, ...]] = {
    "vm-a1": (SG_A,), "vm-a2": (SG_A, SG_WEB, SG_ADMIN), "vm-a3": (SG_A,),
    "vm-a21": (SG_A,), "vm-a22": (SG_OUT,),
    "vm-b1": (SG_B,), "vm-b2": (SG_B,), "vm-bf1": (SG_B,), "vm-bf2": (SG_B,),
}


PAIRS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "vm-bf1": (("10.9.0.100", None), ("10.9.0.128/25", "fa:16:3e:00:99:99")),
}


def secured_ports(**changes: Port) -> tuple[Port, ...]:
    """Every port of the test bed, VMs with their groups; ``changes`` replace ports by name."""
    base = make_snapshot()
    by_id = {p.id: p for p in base.ports}
    for name, groups in MEMBERSHIP.items():
        port = PORTS[name]
        by_id[port.id] = replace(port, security_group_ids=tuple(g.id for g in groups),
                                 allowed_address_pairs=PAIRS.get(name, ()))
    for name, port in changes.items():
        by_id[PORTS[name].id] = port
    return tuple(by_id.values())


def secured_port(name: str) -> Port:
    return next(p for p in secured_ports() if p.id == PORTS[name].id)


def make_secured_snapshot(groups: Iterable[SecurityGroup] = GROUPS,
                          **changes: Port) -> Snapshot:
    return make_snapshot(ports=secured_ports(**changes), security_groups=tuple(groups))


LOCAL_FIP = "203.0.113.21"


def make_local_fip_snapshot() -> Snapshot:
    """vm-a1, on the router's own switch, also in web, behind floating IP 203.0.113.21."""
    a1 = replace(secured_port("vm-a1"), security_group_ids=(SG_A.id, SG_WEB.id))
    fip = FloatingIP(uid("fip-a1"), LOCAL_FIP, NET_EXT.id, R1.id, "10.0.0.11",
                     PORTS["vm-a1"].id)
    return replace(make_secured_snapshot(**{"vm-a1": a1}), floating_ips=(FIP_A2, fip))


class Cloud:
    """The three switches of the test bed, reprogrammable, conntrack kept."""

    def __init__(self, snapshot: Snapshot | None = None) -> None:
        snapshot = snapshot or make_secured_snapshot()
        dpids = [sw.dpid for sw in snapshot.switches]
        self.fabric = Fabric({d: SwitchSimulator(desired_flows(snapshot, d)) for d in dpids},
                             {d: UPLINK for d in dpids})

    def program(self, snapshot: Snapshot) -> None:
        for dpid, sim in self.fabric.switches.items():
            sim.replace_flows(desired_flows(snapshot, dpid))

    def send(self, dpid: int, packet: dict[str, Any]) -> FabricResult:
        return self.fabric.send(dpid, packet)


# ------------------------------------------------------------------------ packets
def tcp(src: str, src_ip: str, dst_ip: str, dst_mac: str, sport: int, dport: int,
        flags: int, **overrides: Any) -> dict[str, Any]:
    """A TCP segment sent by VM ``src`` (from its tap)."""
    pkt = dict(in_port=ofport(src), eth_src=mac_of(src), eth_dst=dst_mac, eth_type=ETH_TYPE_IP,
               ipv4_src=src_ip, ipv4_dst=dst_ip, ip_proto=IP_PROTO_TCP, tcp_src=sport,
               tcp_dst=dport, tcp_flags=flags, ip_ttl=64)
    pkt.update(overrides)
    return pkt


def internet_tcp(dst_ip: str, sport: int, dport: int, flags: int,
                 **overrides: Any) -> dict[str, Any]:
    """A TCP segment from the internet host, arriving on switch 1's external port."""
    pkt = from_internet(dst_ip, ip_proto=IP_PROTO_TCP, tcp_src=sport, tcp_dst=dport,
                        tcp_flags=flags, **overrides)
    del pkt["udp_src"], pkt["udp_dst"]
    return pkt


def internet_ping(dst_ip: str, **overrides: Any) -> dict[str, Any]:
    """An ICMP echo request from the internet host, arriving on switch 1's external port."""
    pkt = from_internet(dst_ip, ip_proto=IP_PROTO_ICMP, icmpv4_type=8, icmpv4_code=0,
                        icmp_id=9, **overrides)
    del pkt["udp_src"], pkt["udp_dst"]
    return pkt
