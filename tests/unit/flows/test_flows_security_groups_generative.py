"""Random groups and rules: the compiled firewall admits a new connection exactly when a plain
reading of the rules does (the sender's egress rules and the receiver's ingress rules)."""

from __future__ import annotations

import ipaddress
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ryu_sched.flows.model import (
    Direction,
    Network,
    Port,
    SecurityGroup,
    SecurityGroupRule,
    Snapshot,
    Subnet,
    Switch,
    tap_name,
)
from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.flows.simulator import Fabric, SwitchSimulator
from ryu_sched.flows.spec import ETH_TYPE_IP, IP_PROTO_ICMP, IP_PROTO_TCP, IP_PROTO_UDP

UPLINK = 1
N_PORTS = 5
PROTOCOLS = (None, IP_PROTO_TCP, IP_PROTO_UDP, IP_PROTO_ICMP, 47)
DPORTS = (0, 1, 7, 8, 9, 15, 16, 80, 1023, 1024, 65535)


def pid(i: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_DNS, f"port{i}.sg.test"))


def ip(i: int) -> str:
    return f"10.0.0.{i + 10}"


@st.composite
def rules(draw, groups: list[str]) -> SecurityGroupRule:
    proto = draw(st.sampled_from(PROTOCOLS))
    fields: dict = {}
    if proto in (IP_PROTO_TCP, IP_PROTO_UDP) and draw(st.booleans()):
        low = draw(st.sampled_from(DPORTS))
        fields = dict(port_range_min=low, port_range_max=draw(st.sampled_from(
            [p for p in DPORTS if p >= low])))
    elif proto == IP_PROTO_ICMP and draw(st.booleans()):
        fields = dict(port_range_min=draw(st.sampled_from((0, 8, 3))))
    remote = draw(st.sampled_from(("any", "prefix", "group")))
    if remote == "prefix":
        fields["remote_ip_prefix"] = draw(st.sampled_from(
            ("10.0.0.8/29", "10.0.0.12/31", "192.0.2.0/24")))
    elif remote == "group":
        fields["remote_group_id"] = draw(st.sampled_from(groups))
    direction = draw(st.sampled_from(tuple(Direction)))
    return SecurityGroupRule(str(uuid.uuid4()), direction, protocol=proto, **fields)


@st.composite
def clouds(draw) -> Snapshot:
    group_ids = [f"g{i}" for i in range(2)]
    groups = tuple(SecurityGroup(g, tuple(draw(st.lists(rules(group_ids), max_size=6))))
                   for g in group_ids)
    net = Network("net", 1, "t", "vlan", "physnet1", 10)
    sub = Subnet("sub", net.id, "10.0.0.0/24")
    ports, locations = [], {}
    for i in range(N_PORTS):
        membership = draw(st.one_of(st.none(), st.lists(st.sampled_from(group_ids),
                                                         max_size=2, unique=True)))
        ports.append(Port(pid(i), net.id, f"fa:16:3e:00:00:{i + 1:02x}", ((sub.id, ip(i)),),
                          "compute:nova",
                          security_group_ids=None if membership is None else tuple(membership)))
        locations[pid(i)] = 1 + i % 2
    switches = tuple(Switch(d, {"uplink": UPLINK, **{tap_name(pid(i)): 10 + i
                                                       for i in range(N_PORTS)
                                                       if locations[pid(i)] == d}})
                     for d in (1, 2))
    return Snapshot(networks=(net,), subnets=(sub,), ports=tuple(ports), switches=switches,
                    port_locations=locations, security_groups=groups)


def rule_admits(rule: SecurityGroupRule, snap: Snapshot, proto: int, dport: int,
                remote: str) -> bool:
    if rule.protocol is not None and rule.protocol != proto:
        return False
    low, high = rule.port_range_min, rule.port_range_max
    if proto in (IP_PROTO_TCP, IP_PROTO_UDP) and low is not None:
        if not low <= dport <= (high if high is not None else low):
            return False
    if proto == IP_PROTO_ICMP and low is not None and dport != low:  # dport = icmp type
        return False
    address = ipaddress.IPv4Address(remote)
    if rule.remote_ip_prefix is not None:
        return address in ipaddress.IPv4Network(rule.remote_ip_prefix)
    if rule.remote_group_id is not None:
        return any(rule.remote_group_id in (p.security_group_ids or ()) and remote in p.ips
                   for p in snap.ports)
    return True


def admits(snap: Snapshot, port: Port, direction: Direction, proto: int, dport: int,
           remote: str) -> bool:
    if port.security_group_ids is None:
        return True
    groups = {g.id: g for g in snap.security_groups}
    return any(rule_admits(r, snap, proto, dport, remote)
               for gid in port.security_group_ids for r in groups[gid].rules
               if r.direction is direction)


def first_packet(src: int, dst: int, proto: int, dport: int, sport: int) -> dict:
    pkt = dict(in_port=10 + src, eth_src=f"fa:16:3e:00:00:{src + 1:02x}",
               eth_dst=f"fa:16:3e:00:00:{dst + 1:02x}", eth_type=ETH_TYPE_IP,
               ipv4_src=ip(src), ipv4_dst=ip(dst), ip_proto=proto, ip_ttl=64)
    if proto == IP_PROTO_TCP:
        pkt.update(tcp_src=sport, tcp_dst=dport, tcp_flags=0x002)
    elif proto == IP_PROTO_UDP:
        pkt.update(udp_src=sport, udp_dst=dport)
    elif proto == IP_PROTO_ICMP:
        pkt.update(icmpv4_type=dport, icmpv4_code=0, icmp_id=sport)
    return pkt


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cloud=clouds(), data=st.data())
def test_a_new_connection_passes_exactly_when_the_rules_say_so(cloud, data):
    flows = {s.dpid: desired_flows(cloud, s.dpid) for s in cloud.switches}
    ports = {p.id: p for p in cloud.ports}
    for sport in range(20000, 20008):
        # A fresh conntrack each time: every packet opens a new connection (protocol 47 has
        # no ports, so two packets between one pair would otherwise be one connection).
        fabric = Fabric({d: SwitchSimulator(f) for d, f in flows.items()},
                        {d: UPLINK for d in flows})
        src, dst = data.draw(st.permutations(range(N_PORTS)))[:2]
        proto = data.draw(st.sampled_from((IP_PROTO_TCP, IP_PROTO_UDP, IP_PROTO_ICMP, 47)))
        dport = data.draw(st.sampled_from((0, 8, 3) if proto == IP_PROTO_ICMP else DPORTS))
        sender, receiver = ports[pid(src)], ports[pid(dst)]
        expected = (admits(cloud, sender, Direction.EGRESS, proto, dport, ip(dst))
                    and admits(cloud, receiver, Direction.INGRESS, proto, dport, ip(src)))
        result = fabric.send(cloud.port_locations[sender.id],
                             first_packet(src, dst, proto, dport, sport))
        delivered = (cloud.port_locations[receiver.id], 10 + dst) in result.endpoints
        assert delivered is expected, (src, dst, proto, dport)
        assert result.endpoints <= {(cloud.port_locations[receiver.id], 10 + dst)}
