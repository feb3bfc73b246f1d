"""Canonical forms built straight from specs and from flow-stats bytes (no framework).

Against real Open vSwitch flow stats: test_programmer_real_ovs.py. Here: what a switch
normalises is normalised, and the form of a spec equals the form decoded from the flow-stats
entry of the flow mod the framework would build for it.
"""

from __future__ import annotations

import struct

import pytest

from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.flows.spec import Ct, FlowSpec, Match, Nat, Output
from ryu_sched.programmer import canonical, messages, readback
from tests.unit.flows.flows_testbed import make_snapshot, make_two_router_snapshot
from tests.unit.flows.sg_testbed import make_local_fip_snapshot, make_secured_snapshot
from tests.unit.programmer.programmer_testbed import FakeDatapath, flow_stats, stats_form


@pytest.mark.parametrize("snapshot", [make_snapshot(), make_two_router_snapshot(),
                                      make_secured_snapshot(), make_local_fip_snapshot()],
                         ids=["one router", "two routers", "security groups",
                              "firewall and floating IP on one switch"])
def test_spec_and_parsed_stats_of_its_flow_mod_have_one_form(snapshot: object) -> None:
    for dpid in (1, 2, 3):
        for spec in desired_flows(snapshot, dpid):  # type: ignore[arg-type]
            stats = flow_stats(messages.flow_add(FakeDatapath(dpid), spec))
            assert stats_form(stats) == canonical.of_spec(spec), spec.to_ofctl()


def test_masked_values_are_taken_under_their_mask_and_full_masks_dropped() -> None:
    spec = FlowSpec(50, 10, Match(eth_type=0x0800, ipv4_dst=("10.0.0.77", "255.255.255.0"),
                                  ipv4_src=("10.0.1.5", "255.255.255.255")),
                    (Output(1),), cookie=1)
    _table, _priority, match = canonical.spec_key(spec)
    assert dict(match) == {"eth_type": 0x0800, "ipv4_dst": (0x0A000000, 0xFFFFFF00),
                           "ipv4_src": 0x0A000105}


def test_fields_are_in_one_order_whatever_the_order_they_came_in() -> None:
    eth_dst = struct.pack("!I", 0x80000606) + bytes.fromhex("fa163e000001")
    metadata = struct.pack("!I", 0x80000510) + (5).to_bytes(8, "big") + (0xFFFFFF).to_bytes(
        8, "big")
    fields = eth_dst + metadata  # basic field 3 before field 2: not the encoder's order
    match = struct.pack("!HH", 1, 4 + len(fields)) + fields
    match += bytes(-len(match) % 8)
    entry = readback.decode(readback.flow_stats_entry(60, 5, 0, match, b""))
    spec = FlowSpec(60, 5, Match(metadata=(5, 0xFFFFFF), eth_dst="fa:16:3e:00:00:01"), (),
                    cookie=0)
    assert entry.key == canonical.spec_key(spec)


def test_output_max_len_only_counts_for_the_controller() -> None:
    assert canonical.spec_body(FlowSpec(0, 1, Match(), (Output(3),), 0)) == (
        ("apply", ("output", 3, 0)),)
    assert canonical.spec_body(FlowSpec(0, 1, Match(), (Output("CONTROLLER"),), 0)) == (
        ("apply", ("output", canonical.OFPP_CONTROLLER, 0xFFFF)),)


def test_nat_to_one_address_is_a_range_of_one() -> None:
    spec = FlowSpec(50, 1, Match(eth_type=0x0800),
                    (Ct(commit=True, zone=7, nat=Nat("src", "203.0.113.10")),), cookie=0)
    ((_apply, (_ct, flags, zone, table, alg, nat)),) = canonical.spec_body(spec)
    assert (flags, zone, table, alg) == (canonical.NX_CT_F_COMMIT, 7,
                                         canonical.NX_CT_RECIRC_NONE, 0)
    assert nat == (("nat", canonical.NX_NAT_F_SRC, 0xCB00710A, 0xCB00710A, None, None),)
