"""The specs are valid for a real Open vSwitch 3.1, and it forwards as the simulator says.

Starts a private ovsdb-server and ovs-vswitchd (run, db and log directories in a temp dir,
``--enable-dummy=override``: every port is a dummy port, no kernel device is created), loads
``FlowSpec.to_ofctl()`` output with ``ovs-ofctl -O OpenFlow13 add-flows`` into a
``datapath_type=netdev`` bridge, then compares with the simulator: ``ofproto/trace`` verdicts,
and real packets injected with ``netdev-dummy/receive`` through the userspace datapath and its
conntrack (SNAT, floating IPs), captured from each port's ``tx_pcap``. Needs root
and OVS: skipped without them, except under CI=true where their absence is a failure.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flows_testbed import (
    EXT,
    FIP,
    GW2_IP,
    GW2_MAC,
    GW_IP,
    GW_MAC,
    INTERNET_IP,
    R1_IF_A,
    R1_IF_A2,
    R2_IF_B,
    UPLINK,
    arp_request,
    endpoint,
    from_internet,
    icmp,
    ip_of,
    mac_of,
    make_snapshot,
    make_two_router_snapshot,
    udp,
)

from ryu_sched.flows.model import Switch
from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.flows.simulator import SwitchSimulator
from ryu_sched.flows.spec import OFPVID_PRESENT
from tests.support import ovs_sandbox as shared_ovs


class OvsSandbox(shared_ovs.OvsSandbox):
    """The shared private Open vSwitch (tests/support/ovs_sandbox.py) plus test bridges."""

    @contextmanager
    def bridge(self, switch: Switch, name: str = "br-flows") -> Iterator[Bridge]:
        args = ["add-br", name, "--", "set", "bridge", name, "datapath_type=netdev",
                "protocols=OpenFlow13", "fail_mode=secure"]
        for port, ofport in sorted(switch.ports.items()):
            args += ["--", "add-port", name, port, "--", "set", "interface", port,
                     "type=dummy", f"ofport_request={ofport}"]
        self.vsctl(*args)
        try:
            yield Bridge(self, name)
        finally:
            self.vsctl("--if-exists", "del-br", name)


class Bridge:
    def __init__(self, sandbox: OvsSandbox, name: str) -> None:
        self.sandbox = sandbox
        self.name = name

    def add_flows(self, flows: list) -> None:
        path = self.sandbox.root / "flows.txt"
        path.write_text("".join(f.to_ofctl() + "\n" for f in flows))
        self.sandbox.run("ovs-ofctl", "-O", "OpenFlow13", "add-flows", self.name, str(path))

    def capture(self, switch: Switch) -> None:
        """Record what every port transmits (dummy ports write pcap files)."""
        self.names = {ofport: name for name, ofport in switch.ports.items()}
        self.seen: dict[int, int] = {}
        self.pcap_dir = Path(tempfile.mkdtemp(dir=self.sandbox.root, prefix="pcap-"))
        for name in switch.ports:
            self.sandbox.vsctl("set", "interface", name,
                               f"options:tx_pcap={self.pcap_dir}/{name}.pcap")

    def inject(self, packet: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
        """Receive ``packet`` on its in_port through the real datapath (conntrack included);
        return what each port transmitted because of it, parsed."""
        name = self.names[packet["in_port"]]
        before = self.rx_packets(name)
        self.sandbox.appctl("netdev-dummy/receive", name, odp_packet(packet))
        # The main thread dequeues a dummy port's packet (counting it in the datapath's port
        # stats) and forwards it, upcall and conntrack recirculation included, before it
        # serves the next unixctl request: once the count moved, the outputs are written.
        deadline = time.monotonic() + 10
        while self.rx_packets(name) <= before:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: injected packet never received")
        sent: dict[int, list[dict[str, Any]]] = {}
        for ofport, port_name in self.names.items():
            path = self.pcap_dir / f"{port_name}.pcap"
            records = read_pcap(path) if path.exists() else []
            new = records[self.seen.get(ofport, 0):]
            self.seen[ofport] = len(records)
            if new:
                sent[ofport] = [parse_frame(frame) for frame in new]
        return sent

    def rx_packets(self, port_name: str) -> int:
        """Packets the datapath has taken from ``port_name`` (live, not the 5 s DB stats)."""
        lines = self.sandbox.appctl("dpctl/show", "-s").splitlines()
        for i, line in enumerate(lines):
            if re.match(rf"\s+port \d+: {re.escape(port_name)}\b", line):
                match = re.search(r"RX packets:(\d+)", lines[i + 1])
                return int(match.group(1)) if match else 0
        raise LookupError(f"no datapath port {port_name}")

    def dump_flows(self) -> list[str]:
        out = self.sandbox.run("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", self.name)
        return [line for line in out.splitlines() if "cookie=" in line]

    def dp_to_ofport(self) -> dict[int, int]:
        mapping = {}
        for line in self.sandbox.appctl("dpif/show").splitlines():
            m = re.match(r"\s+\S+ (\d+)/(\d+):", line)
            if m:
                mapping[int(m.group(2))] = int(m.group(1))
        return mapping

    def trace(self, packet: dict[str, Any], ct_next: str | None = None) -> str:
        args = ["ofproto/trace", self.name, ovs_flow(packet)]
        if ct_next:
            args += ["--ct-next", ct_next]
        return self.sandbox.appctl(*args)

    def outputs(self, packet: dict[str, Any], ct_next: str | None = None) -> tuple[set, bool]:
        """(ofports the packet leaves on, sent to the controller by an output action) per the
        datapath actions. Invalid-TTL packet-ins (reason=2) are not counted: the switch only
        sends them to controllers that ask for them."""
        text = self.trace(packet, ct_next)
        line = [ln for ln in text.splitlines() if ln.startswith("Datapath actions:")][-1]
        actions = line.split(":", 1)[1].strip()
        mapping = self.dp_to_ofport()
        ports, depth, token = set(), 0, ""
        for ch in actions + ",":
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
            if ch == "," and depth == 0:
                if token.strip().isdigit():
                    ports.add(mapping[int(token.strip())])
                token = ""
            else:
                token += ch
        return ports, "controller(reason=1" in actions


def ovs_flow(pkt: dict[str, Any]) -> str:
    """A simulator packet in ofproto/trace flow syntax."""
    parts = [f"in_port={pkt['in_port']}"]
    if pkt.get("vlan_vid"):
        parts.append(f"dl_vlan={pkt['vlan_vid'] & 0xFFF}")
    protocol = {(0x0800, 1): "icmp", (0x0800, 6): "tcp", (0x0800, 17): "udp"}.get(
        (pkt["eth_type"], pkt.get("ip_proto")))
    if protocol is None:
        protocol = {0x0800: "ip", 0x0806: "arp"}.get(pkt["eth_type"],
                                                     f"dl_type={pkt['eth_type']:#06x}")
    parts += [protocol, f"dl_src={pkt['eth_src']}", f"dl_dst={pkt['eth_dst']}"]
    names = {"ipv4_src": "nw_src", "ipv4_dst": "nw_dst", "ip_ttl": "nw_ttl",
             "udp_src": "udp_src", "udp_dst": "udp_dst",
             "icmpv4_type": "icmp_type", "icmpv4_code": "icmp_code", "arp_op": "arp_op",
             "arp_spa": "arp_spa", "arp_tpa": "arp_tpa", "arp_sha": "arp_sha",
             "arp_tha": "arp_tha"}
    for field, name in names.items():
        if pkt.get(field) is not None:
            parts.append(f"{name}={pkt[field]}")
    return ",".join(parts)


def odp_packet(pkt: dict[str, Any]) -> str:
    """A simulator packet in the datapath flow syntax netdev-dummy/receive accepts."""
    eth = f"eth(src={pkt['eth_src']},dst={pkt['eth_dst']})"
    if pkt["eth_type"] == 0x0806:
        inner = (f"eth_type(0x0806),arp(sip={pkt['arp_spa']},tip={pkt['arp_tpa']},"
                 f"op={pkt['arp_op']},sha={pkt['arp_sha']},tha={pkt['arp_tha']})")
    else:
        ipv4 = (f"ipv4(src={pkt['ipv4_src']},dst={pkt['ipv4_dst']},proto={pkt['ip_proto']},"
                f"tos=0,ttl={pkt.get('ip_ttl', 64)},frag=no)")
        if pkt["ip_proto"] == 17:
            l4 = f"udp(src={pkt['udp_src']},dst={pkt['udp_dst']})"
        else:
            l4 = f"icmp(type={pkt['icmpv4_type']},code={pkt.get('icmpv4_code', 0)})"
        inner = f"eth_type(0x0800),{ipv4},{l4}"
    if pkt.get("vlan_vid"):
        return f"{eth},eth_type(0x8100),vlan(vid={pkt['vlan_vid'] & 0xFFF},pcp=0),encap({inner})"
    return f"{eth},{inner}"


def read_pcap(path: Path) -> list[bytes]:
    data = path.read_bytes()
    frames, offset = [], 24
    while offset + 16 <= len(data):
        length = int.from_bytes(data[offset + 8:offset + 12], "little")
        frames.append(data[offset + 16:offset + 16 + length])
        offset += 16 + length
    return frames


def parse_frame(frame: bytes) -> dict[str, Any]:
    """The fields the tests compare, in the simulator's packet vocabulary."""
    def mac(b: bytes) -> str:
        return ":".join(f"{x:02x}" for x in b)

    def ip(b: bytes) -> str:
        return ".".join(str(x) for x in b)

    pkt: dict[str, Any] = {"eth_dst": mac(frame[0:6]), "eth_src": mac(frame[6:12])}
    eth_type, rest = int.from_bytes(frame[12:14], "big"), frame[14:]
    if eth_type == 0x8100:
        pkt["vlan_vid"] = OFPVID_PRESENT | (int.from_bytes(rest[0:2], "big") & 0xFFF)
        eth_type, rest = int.from_bytes(rest[2:4], "big"), rest[4:]
    pkt["eth_type"] = eth_type
    if eth_type == 0x0800:
        pkt.update(ipv4_src=ip(rest[12:16]), ipv4_dst=ip(rest[16:20]), ip_ttl=rest[8],
                   ip_proto=rest[9])
    elif eth_type == 0x0806:
        pkt.update(arp_op=int.from_bytes(rest[6:8], "big"), arp_sha=mac(rest[8:14]),
                   arp_spa=ip(rest[14:18]), arp_tha=mac(rest[18:24]), arp_tpa=ip(rest[24:28]))
    return pkt


def essentials(pkt: dict[str, Any]) -> dict[str, Any]:
    keys = ("eth_src", "eth_dst", "vlan_vid", "eth_type", "ipv4_src", "ipv4_dst", "ip_ttl",
            "arp_op", "arp_sha", "arp_spa", "arp_tha", "arp_tpa")
    return {k: pkt.get(k) or None for k in keys}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[OvsSandbox]:
    with shared_ovs.running(OvsSandbox, "flows-ovs-") as box:
        yield box


SNAPSHOT = make_snapshot()


def switch(dpid: int) -> Switch:
    sw = SNAPSHOT.switch(dpid)
    assert sw is not None
    return sw


@pytest.mark.parametrize("dpid", [1, 2, 3])
def test_every_spec_is_accepted_by_ovs_exactly_as_rendered(sandbox, dpid):
    flows = desired_flows(SNAPSHOT, dpid)
    with sandbox.bridge(switch(dpid)) as br:
        br.add_flows(flows)
        assert len(br.dump_flows()) == len(flows)


SCENARIOS = {
    # name: (dpid, packet)
    "local unicast": (1, udp("vm-a1", ip_of("vm-a22"), mac_of("vm-a22"))),
    "remote unicast tagged": (1, udp("vm-a1", ip_of("vm-a2"), mac_of("vm-a2"))),
    "other tenant by mac": (1, udp("vm-b1", ip_of("vm-a1"), mac_of("vm-a1"))),
    "spoofed ip": (1, udp("vm-a1", ip_of("vm-a2"), mac_of("vm-a2"), ipv4_src="10.0.0.99")),
    "spoofed mac": (1, udp("vm-a1", ip_of("vm-a2"), mac_of("vm-a2"),
                           eth_src="fa:16:3e:66:66:66")),
    "spoofed arp": (1, arp_request("vm-a1", "10.0.0.12", arp_spa="10.0.0.99")),
    "broadcast": (1, arp_request("vm-a1", "10.0.0.12")),
    "dhcp discover": (1, udp("vm-a1", "255.255.255.255", "ff:ff:ff:ff:ff:ff",
                             ipv4_src="0.0.0.0", udp_src=68, udp_dst=67)),
    "arp for router": (1, arp_request("vm-a1", R1_IF_A.ip)),
    "arp for router from uplink": (1, {**arp_request("vm-a2", R1_IF_A.ip), "in_port": UPLINK,
                                       "vlan_vid": OFPVID_PRESENT | 100}),
    "routed local": (1, icmp("vm-a1", ip_of("vm-a22"), R1_IF_A.mac)),
    "routed hairpin": (1, {**udp("vm-a2", ip_of("vm-a21"), R1_IF_A.mac), "in_port": UPLINK,
                           "vlan_vid": OFPVID_PRESENT | 100}),
    "ping router": (1, icmp("vm-a1", R1_IF_A.ip, R1_IF_A.mac)),
    "ping router from uplink": (1, {**icmp("vm-a3", R1_IF_A.ip, R1_IF_A.mac),
                                    "in_port": UPLINK, "vlan_vid": OFPVID_PRESENT | 100}),
    "routed ttl 1": (1, icmp("vm-a1", ip_of("vm-a22"), R1_IF_A.mac, ip_ttl=1)),
    "snat out": (1, udp("vm-a22", INTERNET_IP, R1_IF_A2.mac)),
    "unknown vlan": (2, {**udp("vm-a2", "10.0.0.1", "ff:ff:ff:ff:ff:ff"), "in_port": UPLINK,
                         "vlan_vid": OFPVID_PRESENT | 999}),
    "upstream arp reply": (1, dict(in_port=EXT, eth_src="52:54:00:ff:00:01", eth_dst=GW_MAC,
                                   eth_type=0x0806, arp_op=2, arp_sha="52:54:00:ff:00:01",
                                   arp_spa="203.0.113.1", arp_tha=GW_MAC, arp_tpa=GW_IP)),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_ovs_forwards_like_the_simulator(sandbox, name):
    dpid, packet = SCENARIOS[name]
    flows = desired_flows(SNAPSHOT, dpid)
    expected = SwitchSimulator(flows).process(packet)
    with sandbox.bridge(switch(dpid)) as br:
        br.add_flows(flows)
        ports, to_controller = br.outputs(packet)
    assert ports == expected.ports
    assert to_controller == expected.to_controller


def test_ovs_routes_a_new_floating_ip_connection_after_dnat(sandbox):
    with sandbox.bridge(switch(1)) as br:
        br.add_flows(desired_flows(SNAPSHOT, 1))
        text = br.trace(from_internet(FIP), ct_next="trk,new")
        ports, _ = br.outputs(from_internet(FIP), ct_next="trk,new")
    assert f"ct(commit,table=40,zone=7,nat(dst={ip_of('vm-a2')}))" in text
    assert f"nw_dst={ip_of('vm-a2')}" in text.split("resume conntrack")[-1]
    assert ports == {UPLINK}  # vm-a2 lives on switch 2


def test_ovs_drops_a_new_connection_to_the_gateway_ip(sandbox):
    with sandbox.bridge(switch(1)) as br:
        br.add_flows(desired_flows(SNAPSHOT, 1))
        ports, _ = br.outputs(from_internet(GW_IP), ct_next="trk,new")
    assert ports == set()



SEQUENCES = {
    # Each step: a packet received on switch 1; real OVS and the simulator (each with its
    # own conntrack) must transmit the same frames on the same ports.
    "snat out and reply in": [
        udp("vm-a22", INTERNET_IP, R1_IF_A2.mac),
        from_internet(GW_IP, udp_src=5001, udp_dst=40000),
        from_internet(GW_IP, udp_src=5001, udp_dst=40001),  # no such connection: dropped
    ],
    "floating ip in and reply out": [
        from_internet(FIP),
        {**udp("vm-a2", INTERNET_IP, R1_IF_A.mac, udp_src=40000, udp_dst=53),
         "in_port": UPLINK, "vlan_vid": OFPVID_PRESENT | 100},
    ],
    "floating ip vm connects out": [
        {**udp("vm-a2", INTERNET_IP, R1_IF_A.mac, udp_src=41000, udp_dst=53),
         "in_port": UPLINK, "vlan_vid": OFPVID_PRESENT | 100},
        from_internet(FIP, udp_src=53, udp_dst=41000),
    ],
    "arp and ping the router": [
        arp_request("vm-a1", R1_IF_A.ip),
        icmp("vm-a1", R1_IF_A.ip, R1_IF_A.mac),
        {**arp_request("vm-a2", R1_IF_A.ip), "in_port": UPLINK,
         "vlan_vid": OFPVID_PRESENT | 100},
    ],
    "routing and isolation": [
        udp("vm-a1", ip_of("vm-a22"), R1_IF_A.mac),
        udp("vm-a1", ip_of("vm-a2"), mac_of("vm-a2")),
        udp("vm-b1", ip_of("vm-a1"), mac_of("vm-a1")),
        udp("vm-a1", ip_of("vm-a2"), mac_of("vm-a2"), ipv4_src="10.0.0.99"),
        {**udp("vm-a2", ip_of("vm-a21"), R1_IF_A.mac), "in_port": UPLINK,
         "vlan_vid": OFPVID_PRESENT | 100},
    ],
}


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_real_packets_through_ovs_conntrack_match_the_simulator(sandbox, name):
    flows = desired_flows(SNAPSHOT, 1)
    sim = SwitchSimulator(flows)
    with sandbox.bridge(switch(1)) as br:
        br.add_flows(flows)
        br.capture(switch(1))
        for packet in SEQUENCES[name]:
            real = br.inject(packet)
            expected: dict[int, list[dict[str, Any]]] = {}
            for port, out in sim.process(packet).outputs:
                expected.setdefault(port, []).append(out)
            assert {p: [essentials(x) for x in v] for p, v in real.items()} == {
                p: [essentials(x) for x in v] for p, v in expected.items()}, packet


def test_real_ovs_snat_round_trip_reaches_the_vm(sandbox):
    with sandbox.bridge(switch(1)) as br:
        br.add_flows(desired_flows(SNAPSHOT, 1))
        br.capture(switch(1))
        out = br.inject(udp("vm-a22", INTERNET_IP, R1_IF_A2.mac))
        [sent] = out[EXT]
        assert (sent["ipv4_src"], sent["eth_src"], sent["ip_ttl"]) == (GW_IP, GW_MAC, 63)
        back = br.inject(from_internet(GW_IP, udp_src=5001, udp_dst=40000))
        [reply] = back[15]  # vm-a22's tap
        assert reply["ipv4_dst"] == ip_of("vm-a22") and reply["eth_src"] == R1_IF_A2.mac
        assert list(back) == [15]


def test_real_ovs_keeps_two_tenants_nat_apart(sandbox):
    """vm-a1 and vm-b1 share 10.0.0.11 and the same ports, behind two routers on one switch."""
    snap = make_two_router_snapshot()
    sw = snap.switch(1)
    assert sw is not None
    with sandbox.bridge(sw) as br:
        br.add_flows(desired_flows(snap, 1))
        br.capture(sw)
        [a] = br.inject(udp("vm-a1", INTERNET_IP, R1_IF_A.mac))[EXT]
        [b] = br.inject(udp("vm-b1", INTERNET_IP, R2_IF_B.mac))[EXT]
        assert (a["ipv4_src"], b["ipv4_src"]) == (GW_IP, GW2_IP)
        back_b = br.inject(from_internet(GW2_IP, eth_dst=GW2_MAC, udp_src=5001, udp_dst=40000))
        back_a = br.inject(from_internet(GW_IP, udp_src=5001, udp_dst=40000))
    assert list(back_b) == [endpoint("vm-b1")[1]] and list(back_a) == [endpoint("vm-a1")[1]]
