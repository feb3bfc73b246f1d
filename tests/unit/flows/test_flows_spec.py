"""Flow specs are plain, hashable values that render to ovs-ofctl syntax and refuse nonsense."""

from __future__ import annotations

import uuid

import pytest

from ryu_sched.flows.cookies import CookieKind, cookie_for, ident_of, kind_of
from ryu_sched.flows.metadata import NETWORK_MASK
from ryu_sched.flows.spec import (
    CT_EST,
    CT_TRK,
    ETH_TYPE_IP,
    Ct,
    DecNwTtl,
    FlowSpec,
    GotoTable,
    Match,
    MoveField,
    Nat,
    Output,
    PushVlan,
    SetField,
    WriteMetadata,
)
from ryu_sched.flows.tables import PIPELINE, Table


def test_match_is_an_immutable_hashable_mapping_independent_of_argument_order():
    a = Match(in_port=1, eth_type=ETH_TYPE_IP, ipv4_dst="10.0.0.1")
    b = Match({"ipv4_dst": "10.0.0.1"}, eth_type=ETH_TYPE_IP, in_port=1)
    assert a == b and hash(a) == hash(b)
    assert dict(a) == {"in_port": 1, "eth_type": ETH_TYPE_IP, "ipv4_dst": "10.0.0.1"}
    with pytest.raises(AttributeError):
        a.foo = 1  # type: ignore[attr-defined]


def test_match_normalises_mac_case():
    assert Match(eth_dst="FA:16:3E:00:00:01") == Match(eth_dst="fa:16:3e:00:00:01")


@pytest.mark.parametrize("fields", [
    {"no_such_field": 1},
    {"eth_src": "not-a-mac"},
    {"ipv4_src": "10.0.0.300", "eth_type": ETH_TYPE_IP},
    {"in_port": -1},
    {"ct_state": CT_TRK},
])
def test_match_rejects_bad_fields(fields):
    with pytest.raises(ValueError):
        Match(fields)


def test_flowspec_requires_openflow_prerequisites():
    with pytest.raises(ValueError, match="eth_type"):
        FlowSpec(0, 1, Match(ipv4_dst="10.0.0.1"), (), 0)
    with pytest.raises(ValueError, match="ip_proto"):
        FlowSpec(0, 1, Match(eth_type=ETH_TYPE_IP, udp_dst=67), (), 0)


def test_flowspec_gotos_only_go_forward_and_come_last():
    with pytest.raises(ValueError):
        FlowSpec(Table.L2_FORWARD, 1, Match(), (GotoTable(Table.CLASSIFY),), 0)
    with pytest.raises(ValueError):
        FlowSpec(0, 1, Match(), (GotoTable(10), Output(1)), 0)
    with pytest.raises(ValueError):
        FlowSpec(Table.ROUTING, 1, Match(), (Ct(table=Table.POST_NAT),), 0)


def test_flowspec_splits_actions_into_instructions():
    spec = FlowSpec(0, 5, Match(in_port=1),
                    (Output(2), WriteMetadata(3, NETWORK_MASK), GotoTable(10)), 0)
    assert spec.apply_actions == (Output(2),)
    assert spec.write_metadata == WriteMetadata(3, NETWORK_MASK)
    assert spec.goto_table == 10
    assert spec.key == (0, 5, Match(in_port=1))


def test_flowspec_renders_ovs_ofctl_add_flow_syntax():
    spec = FlowSpec(
        Table.ROUTING, 150,
        Match(metadata=(7 << 32, 0xFFFF << 32), eth_type=ETH_TYPE_IP, ipv4_src="10.0.0.12"),
        (SetField("eth_src", "fa:16:3e:00:ee:01"), DecNwTtl(),
         Ct(commit=True, zone=7, nat=Nat("src", "203.0.113.20")), PushVlan(),
         SetField("vlan_vid", 0x1064), Output(2)),
        cookie_for(CookieKind.FLOATING_IP, "00000000-0000-0000-0000-000000000abc"))
    assert spec.to_ofctl() == (
        "cookie=0x0500000000000abc,table=50,priority=150,"
        "metadata=0x700000000/0xffff00000000,eth_type=0x800,nw_src=10.0.0.12,"
        "actions=set_field:fa:16:3e:00:ee:01->eth_src,dec_ttl,"
        "ct(commit,zone=7,nat(src=203.0.113.20)),push_vlan:0x8100,"
        "set_field:0x1064->vlan_vid,output:2")


def test_ofctl_rendering_of_ct_state_moves_and_drop():
    spec = FlowSpec(Table.POST_NAT, 110,
                    Match(ct_state=(CT_TRK | CT_EST, CT_TRK | CT_EST), ct_zone=7), (), 0)
    assert spec.to_ofctl() == ("cookie=0x0000000000000000,table=40,priority=110,"
                               "ct_state=+est+trk,ct_zone=7,actions=drop")
    assert MoveField("arp_sha", "arp_tha").to_ofctl() == "move:arp_sha[]->arp_tha[]"
    assert Ct(zone=3, table=40, nat=Nat()).to_ofctl() == "ct(table=40,zone=3,nat)"
    assert Output("IN_PORT").to_ofctl() == "in_port"


def test_moves_need_fields_of_equal_width():
    with pytest.raises(ValueError):
        MoveField("eth_src", "arp_spa")
    assert MoveField("arp_spa", "arp_tpa").n_bits == 32


def test_cookie_top_byte_is_the_kind_and_low_56_bits_come_from_the_uuid():
    owner = str(uuid.uuid4())
    cookie = cookie_for(CookieKind.ROUTER, owner)
    assert kind_of(cookie) is CookieKind.ROUTER
    assert cookie & ((1 << 56) - 1) == uuid.UUID(owner).int & ((1 << 56) - 1)
    assert cookie_for(CookieKind.PORT, owner) != cookie


def test_cookie_of_non_uuid_ids_is_stable_and_dpids_are_used_as_is():
    assert ident_of("not-a-uuid") == ident_of("not-a-uuid") < 1 << 56
    assert cookie_for(CookieKind.SWITCH, 0x1234) == (0x06 << 56) | 0x1234
    assert cookie_for(CookieKind.BASE) == 0x01 << 56


def test_tables_are_declared_once_in_pipeline_order():
    assert list(PIPELINE) == sorted(PIPELINE)
    assert PIPELINE[0] is Table.CLASSIFY
    assert len({int(t) for t in PIPELINE}) == len(PIPELINE)
