"""The flow-add encoder writes, byte for byte, what the framework's serialiser writes."""

from __future__ import annotations

import pytest

from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.flows.spec import (
    MULTICAST_BIT,
    Conjunction,
    Ct,
    DecNwTtl,
    FlowSpec,
    GotoTable,
    Match,
    MoveField,
    Nat,
    Output,
    PopVlan,
    PushVlan,
    SetField,
    WriteMetadata,
)
from ryu_sched.programmer import messages, wire
from tests.unit.flows.flows_testbed import make_snapshot, make_two_router_snapshot
from tests.unit.flows.sg_testbed import make_local_fip_snapshot, make_secured_snapshot
from tests.unit.programmer.programmer_testbed import FakeDatapath

XID = 0x1234


def framework_bytes(spec: FlowSpec) -> bytes:
    mod = messages.flow_add(FakeDatapath(1), spec)
    mod.set_xid(XID)
    mod.serialize()
    return bytes(mod.buf)


EVERY_KIND = [
    FlowSpec(0, 100, Match(in_port=1, vlan_vid=0x1064),
             (PopVlan(), WriteMetadata(5, 0xFFFFFF), GotoTable(10)), cookie=1),
    FlowSpec(60, 100, Match(metadata=(5, 0xFFFFFF), eth_dst="fa:16:3e:00:00:01"),
             (PushVlan(), SetField("vlan_vid", 0x1064), Output(1), Output("IN_PORT"),
              Output("CONTROLLER")), cookie=2),
    FlowSpec(20, 100, Match(eth_type=0x806, arp_op=1, arp_tpa="10.0.0.1"),
             (MoveField("eth_src", "eth_dst"), MoveField("arp_spa", "arp_tpa"),
              SetField("arp_op", 2), SetField("arp_spa", "10.0.0.1"), DecNwTtl()), cookie=3),
    FlowSpec(30, 100, Match(eth_type=0x800, ct_state=(0x22, 0x22), ct_zone=7,
                            ipv4_dst=("10.0.0.77", "255.255.255.0")),
             (Ct(commit=True, zone=7, table=40, nat=Nat("src", "203.0.113.10")),), cookie=4),
    FlowSpec(30, 90, Match(eth_type=0x800), (Ct(zone=7, table=40, nat=Nat()), Ct(zone=9)),
             cookie=5),
    FlowSpec(10, 100, Match(eth_type=0x800, ip_proto=17, udp_src=68, udp_dst=67,
                            eth_src="fa:16:3e:00:00:01", ipv4_src="0.0.0.0",
                            eth_dst=MULTICAST_BIT), (), cookie=6),
    FlowSpec(50, 100, Match(eth_type=0x800, ip_proto=1, icmpv4_type=8, icmpv4_code=0),
             (SetField("icmpv4_type", 0), SetField("ipv4_src", "1.2.3.4"),
              SetField("eth_src", "fa:16:3e:00:00:09"), DecNwTtl()), cookie=7),
    FlowSpec(72, 100, Match(eth_type=0x800, ip_proto=6, tcp_dst=(0x1388, 0xFFFC)),
             (Conjunction(7, 2, 3), Conjunction(0xFFFFFFFF, 1, 64)), cookie=8),
    FlowSpec(72, 100, Match(eth_type=0x800, ip_proto=17, udp_dst=(1024, 0xFC00),
                            ct_zone=32777, ct_mark=(1, 1), conj_id=99),
             (GotoTable(74),), cookie=9),
    FlowSpec(72, 10, Match(eth_type=0x800, ct_state=(0x22, 0x22), ct_zone=32777),
             (Ct(commit=True, zone=32777, mark=1), Ct(commit=True, zone=5, mark=0),
              Output(3)), cookie=10),
]


@pytest.mark.parametrize("spec", EVERY_KIND, ids=[s.to_ofctl()[:60] for s in EVERY_KIND])
def test_every_kind_of_field_and_action(spec: FlowSpec) -> None:
    assert wire.flow_add(XID, spec) == framework_bytes(spec)


@pytest.mark.parametrize("snapshot", [make_snapshot(), make_two_router_snapshot(),
                                      make_secured_snapshot(), make_local_fip_snapshot()],
                         ids=["one router", "two routers", "security groups",
                              "firewall and floating IP on one switch"])
def test_every_flow_of_the_pipeline(snapshot: object) -> None:
    for dpid in (1, 2, 3):
        for spec in desired_flows(snapshot, dpid):  # type: ignore[arg-type]
            assert wire.flow_add(XID, spec) == framework_bytes(spec), spec.to_ofctl()


def test_a_bundle_add_wraps_the_message_as_the_framework_does() -> None:
    spec = EVERY_KIND[3]
    inner = messages.flow_add(FakeDatapath(1), spec)
    msg = messages.bundle_add(FakeDatapath(1), 9, inner)
    msg.set_xid(XID)
    msg.serialize()
    assert wire.bundle_add(XID, 9, messages.BUNDLE_FLAGS, wire.flow_add(XID, spec)) == bytes(
        msg.buf)


@pytest.mark.parametrize("spec", EVERY_KIND, ids=lambda s: s.to_ofctl()[:60])
def test_a_bundled_flow_add_is_the_flow_add_wrapped_in_a_bundle_add(spec: FlowSpec) -> None:
    assert wire.bundled_flow_add(XID, 9, messages.BUNDLE_FLAGS, spec) == wire.bundle_add(
        XID, 9, messages.BUNDLE_FLAGS, wire.flow_add(XID, spec))
