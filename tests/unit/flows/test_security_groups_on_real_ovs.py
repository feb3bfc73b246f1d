"""The firewall on a real Open vSwitch 3.1: real TCP segments through its conntrack.

Uses the private OVS of test_ofctl_on_real_ovs.py (dummy ports, userspace datapath). Frames
are built byte by byte (true TCP sequence numbers, windows and checksums, since the userspace
conntrack checks them), received with ``netdev-dummy/receive`` and captured from each port's
``tx_pcap``; at every step the real switch and the simulator (each with its own conntrack)
must transmit the same frames on the same ports, and the step's expected verdict must hold.
Rule changes replace the bridge's flows while its conntrack keeps its connections, as the
controller would. Needs root and OVS (a failure under CI=true without them).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from flows_testbed import (
    EXT,
    INTERNET_IP,
    R1_IF_A,
    R1_IF_A2,
    UPLINK,
    endpoint,
    from_internet,
    ip_of,
    mac_of,
    udp,
    uid,
)
from sg_testbed import (
    ACK,
    GROUPS,
    LOCAL_FIP,
    PSH_ACK,
    SG_WEB,
    SYN,
    SYN_ACK,
    make_local_fip_snapshot,
    make_secured_snapshot,
    rule,
)
from test_ofctl_on_real_ovs import Bridge, essentials, parse_frame, read_pcap, sandbox

from ryu_sched.flows.model import (
    Direction,
    Network,
    Port,
    SecurityGroup,
    Snapshot,
    Subnet,
    Switch,
    tap_name,
)
from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.flows.simulator import SwitchSimulator
from ryu_sched.flows.spec import IP_PROTO_ICMP, IP_PROTO_TCP, IP_PROTO_UDP, OFPVID_PRESENT, FlowSpec

__all__ = ["sandbox"]  # the module-scoped private OVS fixture

Packet = dict[str, Any]


# ----------------------------------------------------------------------- frames
def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(pkt: Packet) -> bytes:
    """A simulator packet as the bytes of a real Ethernet frame."""
    def mac(value: str) -> bytes:
        return bytes.fromhex(value.replace(":", ""))

    head = mac(pkt["eth_dst"]) + mac(pkt["eth_src"])
    if pkt.get("vlan_vid"):
        head += b"\x81\x00" + (pkt["vlan_vid"] & 0xFFF).to_bytes(2, "big")
    head += pkt["eth_type"].to_bytes(2, "big")
    if pkt["eth_type"] == 0x0806:
        body = (bytes.fromhex("000108000604") + pkt["arp_op"].to_bytes(2, "big")
                + mac(pkt["arp_sha"]) + ipaddress.IPv4Address(pkt["arp_spa"]).packed
                + mac(pkt["arp_tha"]) + ipaddress.IPv4Address(pkt["arp_tpa"]).packed)
        return head + body
    src = ipaddress.IPv4Address(pkt["ipv4_src"]).packed
    dst = ipaddress.IPv4Address(pkt["ipv4_dst"]).packed
    proto, payload = pkt["ip_proto"], bytes(pkt.get("payload", 0))
    if proto == IP_PROTO_TCP:
        l4 = (pkt["tcp_src"].to_bytes(2, "big") + pkt["tcp_dst"].to_bytes(2, "big")
              + pkt.get("tcp_seq", 0).to_bytes(4, "big") + pkt.get("tcp_ack", 0).to_bytes(4, "big")
              + bytes([5 << 4, pkt.get("tcp_flags", 0)]) + (65535).to_bytes(2, "big")
              + b"\0\0\0\0" + payload)
    elif proto == IP_PROTO_UDP:
        l4 = (pkt["udp_src"].to_bytes(2, "big") + pkt["udp_dst"].to_bytes(2, "big")
              + (8 + len(payload)).to_bytes(2, "big") + b"\0\0" + payload)
    elif proto == IP_PROTO_ICMP:
        l4 = (bytes([pkt["icmpv4_type"], pkt.get("icmpv4_code", 0)]) + b"\0\0"
              + pkt.get("icmp_id", 0).to_bytes(2, "big") + b"\0\1" + payload)
    else:
        l4 = payload or b"\0" * 8
    if proto in (IP_PROTO_TCP, IP_PROTO_UDP):
        pseudo = src + dst + bytes([0, proto]) + len(l4).to_bytes(2, "big")
        offset = 16 if proto == IP_PROTO_TCP else 6
        csum = _checksum(pseudo + l4) or (0xFFFF if proto == IP_PROTO_UDP else 0)
        l4 = l4[:offset] + csum.to_bytes(2, "big") + l4[offset + 2:]
    elif proto == IP_PROTO_ICMP:
        l4 = l4[:2] + _checksum(l4).to_bytes(2, "big") + l4[4:]
    ip = (bytes([0x45, 0]) + (20 + len(l4)).to_bytes(2, "big") + b"\0\1\x40\0"
          + bytes([pkt.get("ip_ttl", 64), proto]) + b"\0\0" + src + dst)
    ip = ip[:10] + _checksum(ip).to_bytes(2, "big") + ip[12:]
    return head + ip + l4


def seen(raw: bytes) -> dict[str, Any]:
    """What the tests compare of a transmitted frame: addresses, TTL, L4 ports."""
    pkt = essentials(parse_frame(raw))
    rest = raw[18:] if pkt.get("vlan_vid") else raw[14:]
    if pkt["eth_type"] == 0x0800 and rest[9] in (IP_PROTO_TCP, IP_PROTO_UDP):
        l4 = rest[(rest[0] & 0xF) * 4:]
        pkt["ports"] = (int.from_bytes(l4[0:2], "big"), int.from_bytes(l4[2:4], "big"))
    return pkt


def expected_seen(pkt: Packet) -> dict[str, Any]:
    result = essentials(pkt)
    ports = {IP_PROTO_TCP: ("tcp_src", "tcp_dst"), IP_PROTO_UDP: ("udp_src", "udp_dst")}.get(
        pkt.get("ip_proto"))
    if pkt.get("eth_type") == 0x0800 and ports:
        result["ports"] = (pkt[ports[0]], pkt[ports[1]])
    return result


# ------------------------------------------------------------- switch and twin
class Twin:
    """One real bridge and the simulator of the same flows, fed the same frames."""

    def __init__(self, bridge: Bridge, switch: Switch, flows: list[FlowSpec]) -> None:
        self.bridge = bridge
        self.sim = SwitchSimulator(flows)
        bridge.add_flows(flows)
        bridge.capture(switch)

    def reprogram(self, flows: list[FlowSpec]) -> None:
        """New flows, same conntrack, no stale datapath flows."""
        box = self.bridge.sandbox
        box.run("ovs-ofctl", "-O", "OpenFlow13", "del-flows", self.bridge.name)
        self.bridge.add_flows(flows)
        box.appctl("revalidator/purge")
        self.sim.replace_flows(flows)

    def send(self, packet: Packet) -> dict[int, list[dict[str, Any]]]:
        """Receive ``packet`` on its port; return what each port sent, checking that the
        simulator agrees."""
        real = self._inject(packet)
        expected: dict[int, list[dict[str, Any]]] = {}
        for port, out in self.sim.process(packet).outputs:
            expected.setdefault(port, []).append(expected_seen(out))
        assert real == expected, packet
        return real

    def _inject(self, packet: Packet) -> dict[int, list[dict[str, Any]]]:
        br = self.bridge
        name = br.names[packet["in_port"]]
        before = br.rx_packets(name)
        br.sandbox.appctl("netdev-dummy/receive", name, frame(packet).hex())
        deadline = time.monotonic() + 10
        while br.rx_packets(name) <= before:  # see Bridge.inject: then the outputs are out
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: injected frame never received")
        sent: dict[int, list[dict[str, Any]]] = {}
        for ofport, port_name in br.names.items():
            path = br.pcap_dir / f"{port_name}.pcap"
            records = read_pcap(path) if path.exists() else []
            new = records[br.seen.get(ofport, 0):]
            br.seen[ofport] = len(records)
            if new:
                sent[ofport] = [seen(raw) for raw in new]
        return sent


@dataclass
class Tcp:
    """One TCP connection's segments with consistent sequence numbers; ``client`` and
    ``server`` are the packets each side sends (addresses, ports, in_port, VLAN...)."""

    client: Packet
    server: Packet
    client_seq: int = 1000
    server_seq: int = 70000

    def _segment(self, side: Packet, flags: int, seq: int, ack: int, size: int) -> Packet:
        return {**side, "ip_proto": IP_PROTO_TCP, "tcp_flags": flags, "tcp_seq": seq,
                "tcp_ack": ack if flags & ACK else 0, "payload": size}

    def syn(self) -> Packet:
        pkt = self._segment(self.client, SYN, self.client_seq, 0, 0)
        self.client_seq += 1
        return pkt

    def syn_ack(self) -> Packet:
        pkt = self._segment(self.server, SYN_ACK, self.server_seq, self.client_seq, 0)
        self.server_seq += 1
        return pkt

    def ack(self) -> Packet:
        return self._segment(self.client, ACK, self.client_seq, self.server_seq, 0)

    def client_data(self, size: int = 10) -> Packet:
        pkt = self._segment(self.client, PSH_ACK, self.client_seq, self.server_seq, size)
        self.client_seq += size
        return pkt

    def server_data(self, size: int = 10) -> Packet:
        pkt = self._segment(self.server, PSH_ACK, self.server_seq, self.client_seq, size)
        self.server_seq += size
        return pkt


@pytest.fixture
def twin_of(sandbox) -> Iterator:
    """twin_of(snapshot, dpid) -> a Twin on a fresh bridge (removed afterwards)."""
    stack = []

    def make(snapshot: Snapshot, dpid: int) -> Twin:
        switch = snapshot.switch(dpid)
        assert switch is not None
        context = sandbox.bridge(switch, f"br-sg{len(stack)}")
        bridge = context.__enter__()
        stack.append(context)
        return Twin(bridge, switch, desired_flows(snapshot, dpid))

    yield make
    for context in reversed(stack):
        context.__exit__(None, None, None)


SECURED = make_secured_snapshot()
VM_A2 = endpoint("vm-a2")[1]


@pytest.mark.parametrize("dpid", [1, 2, 3])
def test_every_firewall_flow_is_accepted_by_ovs(sandbox, dpid):
    switch = SECURED.switch(dpid)
    assert switch is not None
    flows = desired_flows(SECURED, dpid)
    with sandbox.bridge(switch) as br:
        br.add_flows(flows)
        assert len(br.dump_flows()) == len(flows)


def web_connection(sport: int = 50000, dport: int = 8080) -> Tcp:
    """internet -> vm-a2 (switch 2), as it arrives after the router's DNAT on switch 1."""
    base = dict(eth_type=0x0800, ip_ttl=63, tcp_src=sport, tcp_dst=dport)
    client = dict(base, in_port=UPLINK, vlan_vid=OFPVID_PRESENT | 100, eth_src=R1_IF_A.mac,
                  eth_dst=mac_of("vm-a2"), ipv4_src=INTERNET_IP, ipv4_dst=ip_of("vm-a2"))
    server = dict(base, in_port=VM_A2, eth_src=mac_of("vm-a2"), eth_dst=R1_IF_A.mac,
                  ipv4_src=ip_of("vm-a2"), ipv4_dst=INTERNET_IP, tcp_src=dport, tcp_dst=sport,
                  ip_ttl=64)
    return Tcp(client, server)


def test_real_tcp_handshake_to_an_open_port_and_nothing_to_a_closed_one(twin_of):
    sw = twin_of(SECURED, 2)
    conn = web_connection()
    assert list(sw.send(conn.syn())) == [VM_A2]
    assert list(sw.send(conn.syn_ack())) == [UPLINK]
    assert list(sw.send(conn.ack())) == [VM_A2]
    assert list(sw.send(conn.client_data())) == [VM_A2]
    assert list(sw.send(conn.server_data())) == [UPLINK]

    assert sw.send(web_connection(50001, 8081).syn()) == {}
    assert list(sw.send(web_connection(50002, 22).syn())) == [VM_A2]  # ssh from its prefix


def test_real_conntrack_calls_an_unsolicited_syn_ack_invalid(twin_of):
    sw = twin_of(SECURED, 2)
    stray = web_connection(50003, 8080)
    stray.syn()  # never sent: the SYN+ACK below answers nothing
    assert sw.send({**stray.client, "ip_proto": IP_PROTO_TCP, "tcp_flags": SYN_ACK,
                    "tcp_seq": 5, "tcp_ack": 9}) == {}


def test_real_removal_of_a_rule_cuts_the_established_connection_and_re_adding_revives_it(
        twin_of):
    sw = twin_of(SECURED, 2)
    conn = web_connection()
    for step, port in ((conn.syn, VM_A2), (conn.syn_ack, UPLINK), (conn.ack, VM_A2),
                       (conn.client_data, VM_A2), (conn.server_data, UPLINK)):
        assert list(sw.send(step())) == [port]

    without_web = [g for g in GROUPS if g is not SG_WEB] + [SecurityGroup(SG_WEB.id, ())]
    sw.reprogram(desired_flows(make_secured_snapshot(groups=without_web), 2))
    assert sw.send(conn.client_data()) == {}  # cut, and marked dead
    assert sw.send(conn.server_data()) == {}  # so the reply way is cut too
    assert sw.send(web_connection(50010).syn()) == {}

    sw.reprogram(desired_flows(SECURED, 2))
    assert list(sw.send(conn.client_data())) == [VM_A2]
    assert list(sw.send(conn.server_data())) == [UPLINK]


def test_real_snat_and_firewall_zones_on_one_switch(twin_of):
    """vm-a22 (out-only) on the router's switch: its firewall zone and the router's NAT
    zone both track the connection; the reply comes back through both."""
    sw = twin_of(SECURED, 1)
    a22 = endpoint("vm-a22")[1]
    out = udp("vm-a22", INTERNET_IP, R1_IF_A2.mac)
    [sent] = sw.send(out)[EXT]
    assert sent["ipv4_src"] == "203.0.113.10"
    assert list(sw.send(from_internet("203.0.113.10", udp_src=5001, udp_dst=40000))) == [a22]
    assert sw.send(from_internet("203.0.113.10", udp_src=5001, udp_dst=40001)) == {}
    # vm-a1 (a-default) routed to vm-a22, which admits nothing in: dropped at vm-a22.
    to_a22 = udp("vm-a1", ip_of("vm-a22"), R1_IF_A.mac)
    del to_a22["udp_src"], to_a22["udp_dst"]
    assert sw.send(Tcp({**to_a22, "tcp_src": 40000, "tcp_dst": 22}, {}).syn()) == {}


def test_real_floating_ip_dnat_then_firewall_on_one_switch(twin_of):
    """The router's NAT zone, then vm-a1's firewall zone, in one datapath; and back."""
    sw = twin_of(make_local_fip_snapshot(), 1)
    a1 = endpoint("vm-a1")[1]
    base = dict(eth_type=0x0800, tcp_src=50000, tcp_dst=8080)
    client = {**from_internet(LOCAL_FIP), **base}
    del client["udp_src"], client["udp_dst"]
    server = {**udp("vm-a1", INTERNET_IP, R1_IF_A.mac), **base, "tcp_src": 8080,
              "tcp_dst": 50000}
    del server["udp_src"], server["udp_dst"]
    conn = Tcp(client, server)
    [syn] = sw.send(conn.syn())[a1]
    assert (syn["ipv4_src"], syn["ipv4_dst"]) == (INTERNET_IP, ip_of("vm-a1"))
    [answer] = sw.send(conn.syn_ack())[EXT]
    assert answer["ipv4_src"] == LOCAL_FIP
    assert list(sw.send(conn.ack())) == [a1]
    assert sw.send(Tcp({**client, "tcp_src": 50001, "tcp_dst": 8081}, {}).syn()) == {}


# --------------------------------------------------------------- a flooded LAN
def lan(vrrp_ports: tuple[str, ...]) -> tuple[Snapshot, dict[str, int]]:
    """One switch, one vlan network, five ports p1..p5: p1-p4 firewalled (``vrrp_ports`` in
    a group admitting protocol 112 and tcp from the group, the others in one admitting
    nothing), p5 without port security."""
    net = Network(uid("lan"), 9, "t", "vlan", "physnet1", 300)
    sub = Subnet(uid("lan-sub"), net.id, "192.168.9.0/24")
    vrrp = SecurityGroup(uid("vrrp"), (
        rule("vrrp-in", Direction.INGRESS, protocol=112),
        rule("vrrp-tcp", Direction.INGRESS, protocol=IP_PROTO_TCP, remote_group_id=uid("vrrp")),
        rule("vrrp-out", Direction.EGRESS)))
    closed = SecurityGroup(uid("closed"), (rule("closed-out", Direction.EGRESS),))
    ports, ofports = [], {}
    for i in range(1, 6):
        name = f"p{i}"
        groups = (vrrp.id,) if name in vrrp_ports else (closed.id,)
        ports.append(Port(uid(name), net.id, f"fa:16:3e:09:00:0{i}",
                          ((sub.id, f"192.168.9.{i}"),), "compute:nova",
                          port_security_enabled=i != 5,
                          security_group_ids=groups if i != 5 else None))
        ofports[name] = 20 + i
    switch = Switch(1, {"uplink": UPLINK, **{tap_name(p.id): 20 + i for i, p in
                                             enumerate(ports, 1)}})
    snap = Snapshot(networks=(net,), subnets=(sub,), ports=tuple(ports), switches=(switch,),
                    port_locations={p.id: 1 for p in ports}, security_groups=(vrrp, closed))
    return snap, ofports


def lan_packet(src: int, **fields: Any) -> Packet:
    return {"in_port": 20 + src, "eth_src": f"fa:16:3e:09:00:0{src}", "eth_type": 0x0800,
            "ipv4_src": f"192.168.9.{src}", "ip_ttl": 255, **fields}


def test_real_multicast_flood_goes_through_each_ports_own_firewall(twin_of):
    snap, port = lan(("p1", "p2", "p3"))
    sw = twin_of(snap, 1)
    advert = lan_packet(1, eth_dst="01:00:5e:00:00:12", ipv4_dst="224.0.0.18", ip_proto=112)
    out = sw.send(advert)
    assert set(out) == {port["p2"], port["p3"], port["p5"], UPLINK}  # not p1 itself, not p4
    assert out[UPLINK][0]["vlan_vid"] == OFPVID_PRESENT | 300
    # The same from the uplink (another host's router): all firewalls that admit it.
    remote = {**advert, "in_port": UPLINK, "vlan_vid": OFPVID_PRESENT | 300,
              "eth_src": "fa:16:3e:09:00:09", "ipv4_src": "192.168.9.9"}
    assert set(sw.send(remote)) == {port["p1"], port["p2"], port["p3"], port["p5"]}


def test_real_connection_between_two_firewalled_ports_of_one_switch(twin_of):
    snap, port = lan(("p2", "p3"))
    sw = twin_of(snap, 1)
    base = dict(eth_type=0x0800, ip_ttl=64)
    conn = Tcp(dict(lan_packet(2, eth_dst="fa:16:3e:09:00:03", ipv4_dst="192.168.9.3"),
                    tcp_src=41000, tcp_dst=80, **base),
               dict(lan_packet(3, eth_dst="fa:16:3e:09:00:02", ipv4_dst="192.168.9.2"),
                    tcp_src=80, tcp_dst=41000, **base))
    for step, to in ((conn.syn, "p3"), (conn.syn_ack, "p2"), (conn.ack, "p3"),
                     (conn.client_data, "p3"), (conn.server_data, "p2")):
        assert list(sw.send(step())) == [port[to]]
    # p4 (closed) cannot open to p3, p3 cannot open to p4.
    stranger = Tcp(dict(lan_packet(4, eth_dst="fa:16:3e:09:00:03", ipv4_dst="192.168.9.3"),
                        tcp_src=42000, tcp_dst=80, **base), {})
    assert sw.send(stranger.syn()) == {}
    inward = Tcp(dict(lan_packet(3, eth_dst="fa:16:3e:09:00:04", ipv4_dst="192.168.9.4"),
                      tcp_src=43000, tcp_dst=80, **base), {})
    assert sw.send(inward.syn()) == {}


def test_real_address_pair_lets_the_vip_answer(twin_of):
    snap, port = lan(("p2", "p3"))
    vip = "192.168.9.100"
    with_pair = replace(snap, ports=tuple(replace(p, allowed_address_pairs=((vip, None),))
                                          if p.id == uid("p2") else p for p in snap.ports))
    sw = twin_of(with_pair, 1)
    base = dict(eth_type=0x0800, ip_ttl=64)
    conn = Tcp(dict(lan_packet(3, eth_dst="fa:16:3e:09:00:02", ipv4_dst=vip),
                    tcp_src=44000, tcp_dst=80, **base),
               dict(lan_packet(2, eth_dst="fa:16:3e:09:00:03", ipv4_dst="192.168.9.3",
                               ipv4_src=vip), tcp_src=80, tcp_dst=44000, **base))
    assert list(sw.send(conn.syn())) == [port["p2"]]
    assert list(sw.send(conn.syn_ack())) == [port["p3"]]
    sw.reprogram(desired_flows(snap, 1))  # the pair is gone
    again = Tcp({**conn.client, "tcp_src": 44001}, {**conn.server, "tcp_dst": 44001})
    assert list(sw.send(again.syn())) == [port["p2"]]
    assert sw.send(again.syn_ack()) == {}  # from the VIP without the pair: spoofing
