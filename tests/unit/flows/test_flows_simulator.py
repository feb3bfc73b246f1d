"""The simulator follows OpenFlow and conntrack semantics the pipeline relies on."""

from __future__ import annotations

import pytest

from ryu_sched.flows.simulator import AmbiguousMatch, Conntrack, SwitchSimulator
from ryu_sched.flows.spec import (
    CT_EST,
    CT_NEW,
    CT_RPL,
    CT_TRK,
    ETH_TYPE_IP,
    IP_PROTO_UDP,
    Ct,
    DecNwTtl,
    FlowSpec,
    GotoTable,
    Match,
    Nat,
    Output,
    WriteMetadata,
)

PKT = dict(in_port=1, eth_src="fa:16:3e:00:00:01", eth_dst="fa:16:3e:00:00:02",
           eth_type=ETH_TYPE_IP, ipv4_src="10.0.0.1", ipv4_dst="8.8.8.8",
           ip_proto=IP_PROTO_UDP, udp_src=1000, udp_dst=53)


def test_highest_priority_wins_and_equal_priority_overlap_is_an_error():
    sim = SwitchSimulator([FlowSpec(0, 10, Match(in_port=1), (Output(2),), 0),
                           FlowSpec(0, 5, Match(), (Output(3),), 0)])
    assert sim.process(PKT).ports == {2}
    sim = SwitchSimulator([FlowSpec(0, 10, Match(in_port=1), (Output(2),), 0),
                           FlowSpec(0, 10, Match(eth_type=ETH_TYPE_IP), (Output(3),), 0)])
    with pytest.raises(AmbiguousMatch):
        sim.process(PKT)


def test_output_to_the_in_port_is_dropped_unless_it_says_in_port():
    sim = SwitchSimulator([FlowSpec(0, 1, Match(), (Output(1), Output(2)), 0)])
    assert sim.process(PKT).ports == {2}
    sim = SwitchSimulator([FlowSpec(0, 1, Match(), (Output("IN_PORT"),), 0)])
    assert sim.process(PKT).ports == {1}


def test_metadata_is_written_under_mask_and_matched_in_later_tables():
    sim = SwitchSimulator([
        FlowSpec(0, 1, Match(), (WriteMetadata(0x5, 0xFF), GotoTable(1)), 0),
        FlowSpec(1, 1, Match(metadata=(0x5, 0xFF)), (Output(2),), 0)])
    assert sim.process(PKT).ports == {2}


def test_dec_ttl_at_one_drops():
    sim = SwitchSimulator([FlowSpec(0, 1, Match(), (DecNwTtl(), Output(2)), 0)])
    assert sim.process({**PKT, "ip_ttl": 1}).dropped
    assert sim.process(PKT).outputs[0][1]["ip_ttl"] == 63


def test_conntrack_new_then_established_after_the_reply_with_snat_undone():
    ct = Conntrack()
    out = dict(PKT)
    assert ct.execute(Ct(commit=True, zone=3, nat=Nat("src", "203.0.113.10")), out) == \
        CT_TRK | CT_NEW
    assert out["ipv4_src"] == "203.0.113.10"
    again = dict(PKT)
    assert ct.execute(Ct(commit=True, zone=3, nat=Nat("src", "203.0.113.10")), again) == \
        CT_TRK | CT_NEW
    reply = {**PKT, "ipv4_src": "8.8.8.8", "ipv4_dst": "203.0.113.10", "udp_src": 53,
             "udp_dst": 1000}
    assert ct.execute(Ct(zone=3, nat=Nat()), reply) == CT_TRK | CT_EST | CT_RPL
    assert reply["ipv4_dst"] == "10.0.0.1"
    later = dict(PKT)
    assert ct.execute(Ct(commit=True, zone=3, nat=Nat("src", "203.0.113.10")), later) & CT_EST


def test_conntrack_zones_are_separate():
    ct = Conntrack()
    ct.execute(Ct(commit=True, zone=3, nat=Nat("src", "203.0.113.10")), dict(PKT))
    reply = {**PKT, "ipv4_src": "8.8.8.8", "ipv4_dst": "203.0.113.10", "udp_src": 53,
             "udp_dst": 1000}
    assert ct.execute(Ct(zone=4, nat=Nat()), reply) == CT_TRK | CT_NEW
    assert reply["ipv4_dst"] == "203.0.113.10"


def test_ct_with_a_table_forks_a_tracked_copy_that_keeps_the_metadata():
    sim = SwitchSimulator([
        FlowSpec(0, 1, Match(), (WriteMetadata(9), GotoTable(1)), 0),
        FlowSpec(1, 1, Match(), (Ct(zone=2, table=2),), 0),
        FlowSpec(2, 1, Match(metadata=9, ct_state=(CT_TRK, CT_TRK), ct_zone=2), (Output(5),),
                 0)])
    assert sim.process(PKT).ports == {5}
