"""Flow-stats entries decoded from their bytes: the same forms as the specs they came from,
strict deletes that name them, and broken entries that never raise past the decoder.

Against what real Open vSwitch reports: test_programmer_real_ovs.py.
"""

from __future__ import annotations

import struct

import pytest

from ryu_sched import compat
from ryu_sched.flows.spec import FlowSpec, Match, Output
from ryu_sched.programmer import canonical, diff, messages, readback, wire
from tests.unit.programmer.programmer_testbed import FakeDatapath
from tests.unit.programmer.test_flow_encoding import EVERY_KIND


def entry_of(spec: FlowSpec) -> bytes:
    """The flow-stats entry of ``spec`` as a switch reports the flow we added."""
    return readback.installed_entry(wire.flow_add(1, spec))


@pytest.mark.parametrize("spec", EVERY_KIND, ids=[s.to_ofctl()[:60] for s in EVERY_KIND])
def test_every_kind_of_field_and_action_decodes_to_the_spec_form(spec: FlowSpec) -> None:
    entry = readback.decode(entry_of(spec))
    assert (entry.key, entry.body) == canonical.of_spec(spec)
    assert entry.cookie == spec.cookie


def test_a_repeated_body_or_field_decodes_the_same_from_its_cache() -> None:
    first = readback.decode(entry_of(EVERY_KIND[1]))
    again = readback.decode(entry_of(EVERY_KIND[1]))
    assert again == first and again.body is first.body


def test_the_match_read_back_deletes_exactly_that_entry() -> None:
    spec = EVERY_KIND[3]  # masked and conntrack fields
    entry = readback.decode(entry_of(spec))
    by_spec = wire.flow_delete(9, spec.table, spec.priority, spec.match)
    assert wire.flow_delete(9, spec.table, spec.priority, entry.match) == by_spec
    framework = messages.flow_delete(FakeDatapath(1), spec.table, spec.priority, spec.match)
    framework.set_xid(9)
    framework.serialize()
    assert by_spec == bytes(framework.buf)


def test_an_unknown_action_and_instruction_get_forms_no_spec_has() -> None:
    spec = FlowSpec(10, 5, Match(in_port=1), (Output(2),), cookie=7)
    good = entry_of(spec)
    match_length = struct.unpack_from("!H", good, 50)[0]
    match_end = 48 + ((match_length + 7) & ~7)
    unknown_action = struct.pack("!HHI", 23, 8, 64)  # set_nw_ttl: not in our pipeline
    apply = struct.pack("!HH4x", 4, 8 + len(unknown_action)) + unknown_action
    meter = struct.pack("!HHI", 6, 8, 1)  # a meter instruction
    data = readback.flow_stats_entry(10, 5, 7, good[48:match_end], apply + meter)
    entry = readback.decode(data)
    assert entry.key == canonical.spec_key(spec)
    assert entry.body == (("apply", ("unknown", unknown_action)), ("unknown", meter))
    assert entry.body != canonical.spec_body(spec)


def test_a_broken_entry_is_refused_and_left_out_of_the_table() -> None:
    good = entry_of(EVERY_KIND[0])
    with pytest.raises(ValueError):
        readback.decode(good[:40])
    lying = bytearray(good)
    struct.pack_into("!H", lying, 50, 400)  # a match longer than the entry
    with pytest.raises(ValueError):
        readback.decode(bytes(lying))
    table = diff.installed_of([good[:40], bytes(lying), good])
    assert list(table) == [canonical.spec_key(EVERY_KIND[0])]


def test_instructions_that_overrun_give_an_unknown_body_not_an_error() -> None:
    spec = EVERY_KIND[0]
    good = entry_of(spec)
    broken = bytearray(good)
    struct.pack_into("!H", broken, len(good) - 8 + 2, 64)  # the goto claims 64 bytes
    entry = readback.decode(bytes(broken))
    assert entry.key == canonical.spec_key(spec)
    assert entry.body[0][0] == "unknown"


def test_the_framework_hands_flow_stats_over_as_raw_entries() -> None:
    """compat makes OFPMP_FLOW replies carry the entries' bytes; a reply of two entries
    parses into exactly those two."""
    parser, ofp = compat.ofproto_v1_3_parser, compat.ofproto_v1_3
    entries = [entry_of(EVERY_KIND[0]), entry_of(EVERY_KIND[3])]
    body = b"".join(entries)
    head = struct.pack("!BBHI", 4, ofp.OFPT_MULTIPART_REPLY, 16 + len(body), 5)
    reply = head + struct.pack("!HH4x", ofp.OFPMP_FLOW, ofp.OFPMPF_REPLY_MORE) + body
    msg = compat.ofproto_parser.msg(FakeDatapath(1), 4, ofp.OFPT_MULTIPART_REPLY,
                                    len(reply), 5, reply)
    assert isinstance(msg, parser.OFPFlowStatsReply)
    assert msg.flags & ofp.OFPMPF_REPLY_MORE
    assert [e.data for e in msg.body] == entries
