"""The simulator's conjunctive matches, ct_mark and invalid TCP follow OVS, and port ranges
split into exact bitwise blocks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ryu_sched.flows.port_ranges import port_blocks
from ryu_sched.flows.simulator import AmbiguousMatch, SwitchSimulator
from ryu_sched.flows.spec import (
    CT_EST,
    CT_INV,
    CT_NEW,
    CT_TRK,
    ETH_TYPE_IP,
    IP_PROTO_TCP,
    Conjunction,
    Ct,
    FlowSpec,
    GotoTable,
    Match,
    Output,
)
from ryu_sched.flows.zones import FIREWALL_ZONE_BASE, firewall_zones

PKT = dict(in_port=1, eth_src="fa:16:3e:00:00:01", eth_dst="fa:16:3e:00:00:02",
           eth_type=ETH_TYPE_IP, ipv4_src="10.0.0.1", ipv4_dst="10.0.0.2",
           ip_proto=IP_PROTO_TCP, tcp_src=1000, tcp_dst=80, tcp_flags=0x002)
IP = dict(eth_type=ETH_TYPE_IP)


def conj_flows(*extra: FlowSpec) -> list[FlowSpec]:
    """conj 7 = nw_src in {10.0.0.1, 10.0.0.3} and tcp_dst in {80, 443}: output 2."""
    return [
        FlowSpec(0, 50, Match(IP, ipv4_src="10.0.0.1"), (Conjunction(7, 1, 2),), 0),
        FlowSpec(0, 50, Match(IP, ipv4_src="10.0.0.3"), (Conjunction(7, 1, 2),), 0),
        FlowSpec(0, 50, Match(IP, ip_proto=6, tcp_dst=80), (Conjunction(7, 2, 2),), 0),
        FlowSpec(0, 50, Match(IP, ip_proto=6, tcp_dst=443), (Conjunction(7, 2, 2),), 0),
        FlowSpec(0, 50, Match(conj_id=7), (Output(2),), 0),
        FlowSpec(0, 0, Match(), (Output(9),), 0),
        *extra,
    ]


def test_a_conjunction_matches_when_every_dimension_does():
    sim = SwitchSimulator(conj_flows())
    assert sim.process(PKT).ports == {2}
    assert sim.process({**PKT, "tcp_dst": 443, "ipv4_src": "10.0.0.3"}).ports == {2}
    assert sim.process({**PKT, "tcp_dst": 81}).ports == {9}
    assert sim.process({**PKT, "ipv4_src": "10.0.0.2"}).ports == {9}


def test_a_plain_flow_of_higher_or_equal_priority_beats_a_conjunction():
    higher = FlowSpec(0, 60, Match(IP, ipv4_dst="10.0.0.2"), (Output(3),), 0)
    assert SwitchSimulator(conj_flows(higher)).process(PKT).ports == {3}
    equal = FlowSpec(0, 50, Match(IP, ipv4_dst="10.0.0.2"), (Output(3),), 0)
    assert SwitchSimulator(conj_flows(equal)).process(PKT).ports == {3}


def test_overlapping_conjunctions_must_agree():
    agree = [FlowSpec(0, 50, Match(IP, ip_proto=6), (Conjunction(8, 1, 2),), 0),
             FlowSpec(0, 50, Match(IP, ipv4_dst="10.0.0.2"), (Conjunction(8, 2, 2),), 0),
             FlowSpec(0, 50, Match(conj_id=8), (Output(2),), 0)]
    assert SwitchSimulator(conj_flows(*agree)).process(PKT).ports == {2}
    disagree = [*agree[:2], FlowSpec(0, 50, Match(conj_id=8), (Output(4),), 0)]
    with pytest.raises(AmbiguousMatch):
        SwitchSimulator(conj_flows(*disagree)).process(PKT)


def test_conjunction_flows_hold_nothing_but_conjunctions():
    with pytest.raises(ValueError, match="no other action"):
        FlowSpec(0, 1, Match(), (Conjunction(1, 1, 2), Output(1)), 0)
    with pytest.raises(ValueError):
        Conjunction(1, 1, 1)  # OVS wants two dimensions at least
    assert Conjunction(5, 2, 3).to_ofctl() == "conjunction(5,2/3)"


def tracked(zone: int, table: int, *flows: FlowSpec) -> SwitchSimulator:
    return SwitchSimulator([FlowSpec(0, 1, Match(IP), (Ct(zone=zone, table=table),), 0),
                            *flows])


def test_ct_mark_is_stored_by_commit_and_seen_by_the_next_packets():
    zone = 9
    state = (CT_TRK | CT_NEW, CT_TRK | CT_NEW)
    sim = tracked(zone, 1,
                  FlowSpec(1, 30, Match(IP, ct_mark=(1, 1)), (Output(5),), 0),
                  FlowSpec(1, 20, Match(IP, ct_state=state),
                           (Ct(commit=True, zone=zone, mark=1), Output(2)), 0),
                  FlowSpec(1, 10, Match(IP), (Output(3),), 0))
    assert sim.process(PKT).ports == {2}
    assert sim.process(PKT).ports == {5}  # the mark is on the connection now
    reply = {**PKT, "ipv4_src": "10.0.0.2", "ipv4_dst": "10.0.0.1", "tcp_src": 80,
             "tcp_dst": 1000, "tcp_flags": 0x012}
    assert sim.process(reply).ports == {5}
    assert sim.conntrack.connections[0].mark == 1


def test_a_syn_ack_that_opens_nothing_is_invalid():
    sim = tracked(3, 1, *[FlowSpec(1, 10 + bit, Match(IP, ct_state=(bit | CT_TRK, bit | CT_TRK)),
                                   (Output(100 + bit),), 0) for bit in (CT_NEW, CT_EST, CT_INV)])
    assert sim.process({**PKT, "tcp_flags": 0x012}).ports == {100 + CT_INV}
    assert sim.process({**PKT, "tcp_flags": 0x010}).ports == {100 + CT_NEW}  # mid-stream ACK


def test_after_a_ct_without_table_the_packet_is_untracked_as_in_ovs():
    sim = SwitchSimulator([
        FlowSpec(0, 1, Match(IP), (Ct(commit=True, zone=4), GotoTable(1)), 0),
        FlowSpec(1, 10, Match(IP, ct_state=(CT_TRK, CT_TRK)), (Output(2),), 0),
        FlowSpec(1, 5, Match(IP), (Output(3),), 0)])
    assert sim.process(PKT).ports == {3}


def test_replacing_the_flows_keeps_the_connections():
    sim = tracked(3, 1, FlowSpec(1, 1, Match(IP), (Ct(commit=True, zone=3), Output(2)), 0))
    sim.process(PKT)
    sim.replace_flows([FlowSpec(0, 1, Match(IP), (Output(4),), 0)])
    assert len(sim.conntrack.connections) == 1 and sim.process(PKT).ports == {4}


@given(low=st.integers(0, 65535), size=st.integers(0, 65535), probe=st.integers(0, 65535))
def test_port_blocks_cover_exactly_the_range(low, size, probe):
    high = min(low + size, 65535)
    blocks = port_blocks(low, high)
    assert len(blocks) <= 30
    for value in (low, high, probe, max(low - 1, 0), min(high + 1, 65535)):
        inside = any(value & mask == block for block, mask in blocks)
        assert inside is (low <= value <= high)
    for block, mask in blocks:  # aligned: the value has no bits outside the mask
        assert block & ~mask & 0xFFFF == 0


def test_port_blocks_examples():
    assert port_blocks(8080, 8080) == [(8080, 0xFFFF)]
    assert port_blocks(0, 65535) == [(0, 0)]
    assert port_blocks(1024, 2047) == [(1024, 0xFC00)]
    assert port_blocks(1000, 1999) == [(1000, 0xFFF8), (1008, 0xFFF0), (1024, 0xFE00),
                                       (1536, 0xFF00), (1792, 0xFF80), (1920, 0xFFC0),
                                       (1984, 0xFFF0)]


def test_firewall_zones_are_unique_stable_and_clear_of_router_zones():
    zones = firewall_zones({"a": 5, "b": 7})
    assert zones == {"a": FIREWALL_ZONE_BASE + 4, "b": FIREWALL_ZONE_BASE + 6}
    assert firewall_zones({"a": 5, "b": 7, "c": 9})["a"] == zones["a"]  # others don't move it
    # A router key in the band (only after 32768 routers) and wrapping ofports: probed past.
    clash = firewall_zones({"a": 5, "b": 5 + 0x8000}, taken={FIREWALL_ZONE_BASE + 4})
    assert len(set(clash.values())) == 2 and FIREWALL_ZONE_BASE + 4 not in clash.values()
    assert all(FIREWALL_ZONE_BASE <= z < 1 << 16 for z in clash.values())
