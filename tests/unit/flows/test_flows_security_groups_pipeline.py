"""The firewall's flows: well-formed for OVS, deterministic, and growing with members + rules."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from flows_testbed import PORTS
from sg_testbed import GROUPS, INGRESS, SG_A, SG_OUT, make_secured_snapshot, rule, secured_port

from ryu_sched.flows.cookies import CookieKind, kind_of
from ryu_sched.flows.model import Port, SecurityGroup, SecurityGroupRule
from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.flows.spec import ETH_TYPE_IP, IP_PROTO_TCP, Conjunction, Ct
from ryu_sched.flows.tables import Table

DPIDS = (1, 2, 3)


@pytest.mark.parametrize("dpid", DPIDS)
def test_secured_flows_are_deterministic_and_unique(dpid):
    snap = make_secured_snapshot()
    shuffled = list(snap.ports)
    random.Random(7).shuffle(shuffled)
    groups = [replace(g, rules=tuple(reversed(g.rules))) for g in reversed(snap.security_groups)]
    other = replace(snap, ports=tuple(shuffled), security_groups=tuple(groups))
    flows = desired_flows(snap, dpid)
    assert flows == desired_flows(other, dpid)
    assert len({f.key for f in flows}) == len(flows)


@pytest.mark.parametrize("dpid", DPIDS)
def test_every_ct_flow_matches_ipv4_as_ovs_requires(dpid):
    for flow in desired_flows(make_secured_snapshot(), dpid):
        if any(isinstance(a, Ct) for a in flow.actions):
            assert flow.match.get("eth_type") == ETH_TYPE_IP, flow.to_ofctl()


@pytest.mark.parametrize("dpid", DPIDS)
def test_each_conjunction_is_complete_at_one_priority_with_its_conj_id_flow(dpid):
    flows = desired_flows(make_secured_snapshot(), dpid)
    dims: dict[tuple[int, int], set[tuple[int, int]]] = {}
    for flow in flows:
        for conj in flow.conjunctions:
            dims.setdefault((flow.table, conj.id), set()).add(
                (flow.priority, conj.clause, conj.n_clauses))
    assert dims
    conj_ids = {(f.table, f.match["conj_id"], f.priority) for f in flows if "conj_id" in f.match}
    for (table, cid), seen in dims.items():
        [priority] = {p for p, _, _ in seen}
        [n] = {n for _, _, n in seen}
        assert {c for _, c, _ in seen} == set(range(1, n + 1))
        assert (table, cid, priority) in conj_ids


def test_firewall_flows_are_owned_by_ports_groups_or_the_shared_firewall():
    flows = desired_flows(make_secured_snapshot(), 2)
    rule_tables = {Table.SG_EGRESS_RULES, Table.SG_INGRESS_RULES}
    kinds = {kind_of(f.cookie) for f in flows if f.table in rule_tables and f.priority}
    assert kinds == {CookieKind.PORT, CookieKind.SECURITY_GROUP}


def member(i: int) -> Port:
    return Port(f"member-{i}", PORTS["vm-a1"].network_id, f"fa:16:3e:10:{i // 256:02x}:"
                f"{i % 256:02x}", (("sub", f"10.0.{100 + i // 256}.{i % 256}"),),
                "compute:nova", security_group_ids=(SG_A.id,))


def rules_flows(extra_members: int, extra_rules: int) -> int:
    """Flows in SG_INGRESS_RULES of switch 3, where vm-a3 is in a-default and in a group of
    ``extra_rules`` rules (tcp, one port each) from a-default, which has ``extra_members``
    more (unbound) members."""
    extra = SecurityGroup("extra", tuple(
        rule(f"from-a-{i}", INGRESS, protocol=IP_PROTO_TCP, port_range_min=1000 + i,
             port_range_max=1000 + i, remote_group_id=SG_A.id) for i in range(extra_rules)))
    a3 = replace(secured_port("vm-a3"), security_group_ids=(SG_A.id, extra.id))
    snap = make_secured_snapshot(groups=(*GROUPS, extra), **{"vm-a3": a3})
    snap = replace(snap, ports=(*snap.ports, *(member(i) for i in range(extra_members))))
    return sum(f.table == Table.SG_INGRESS_RULES for f in desired_flows(snap, 3))


def test_rule_flows_grow_with_members_plus_rules_not_their_product():
    base = rules_flows(0, 0)
    assert rules_flows(50, 0) - base == 50  # one address flow per member
    assert rules_flows(50, 10) - rules_flows(0, 10) == 50  # whatever the rules
    assert rules_flows(0, 20) - rules_flows(0, 10) == 10  # one port flow per rule
    assert rules_flows(50, 20) - rules_flows(50, 10) == 10  # whatever the members


def test_a_group_whose_rules_mix_protocols_and_remotes_keeps_them_apart():
    """tcp 22 from 198.51.100.0/24 and icmp from 192.0.2.0/24 (admin) must not combine into
    tcp 22 from 192.0.2.0/24: each remote gets its own conjunction."""
    flows = desired_flows(make_secured_snapshot(), 2)
    by_match = {f.match.get("tcp_dst") or f.match.get("ipv4_src"): f.conjunctions
                for f in flows if f.table == Table.SG_INGRESS_RULES and f.conjunctions}
    ssh, prefix_ssh, prefix_ping = by_match[22], by_match[("198.51.100.0", "255.255.255.0")], \
        by_match[("192.0.2.0", "255.255.255.0")]
    assert {c.id for c in ssh} == {c.id for c in prefix_ssh}
    assert not {c.id for c in ssh} & {c.id for c in prefix_ping}


def test_a_port_that_allows_everything_needs_no_conjunctions():
    open_in = SecurityGroup(SG_OUT.id, (*SG_OUT.rules, SecurityGroupRule("any-in", INGRESS)))
    snap = make_secured_snapshot(groups=(*GROUPS[:4], open_in))
    flows = desired_flows(snap, 1)
    zone_flows = [f for f in flows if f.table == Table.SG_INGRESS_RULES
                  and set(f.match) == {"ct_zone"}]
    a22_zone = next(f.actions[0].zone for f in flows if f.table == Table.L2_FORWARD
                    and f.match.get("eth_dst") == secured_port("vm-a22").mac
                    and f.actions and isinstance(f.actions[0], Ct))
    [allow] = [f for f in zone_flows if f.match["ct_zone"] == a22_zone]
    assert not any(isinstance(a, Conjunction) for a in allow.actions)


def test_ipv6_rules_and_prefixes_are_ignored_not_fatal():
    v6 = SecurityGroup(SG_OUT.id, (*SG_OUT.rules,
                                   SecurityGroupRule("v6", INGRESS, "IPv6"),
                                   SecurityGroupRule("v6-prefix", INGRESS,
                                                     remote_ip_prefix="fd00::/64")))
    with_v6 = desired_flows(make_secured_snapshot(groups=(*GROUPS[:4], v6)), 1)
    assert with_v6 == desired_flows(make_secured_snapshot(), 1)


@pytest.mark.parametrize("fields", [
    dict(protocol=256), dict(protocol=17, port_range_min=2, port_range_max=1),
    dict(protocol=47, port_range_min=1), dict(protocol=1, port_range_max=0),
    dict(remote_ip_prefix="10.0.0.0/8",
                                              remote_group_id="g"),
    dict(remote_ip_prefix="nonsense"), dict(direction="sideways")])
def test_bad_rules_are_refused(fields):
    args = dict(id="r", direction="ingress") | fields
    with pytest.raises(ValueError):
        SecurityGroupRule(**args)


def test_rules_take_neutron_strings_and_protocol_0_means_any():
    r = SecurityGroupRule("r", "egress", "IPv4", protocol=0)
    assert r.direction is INGRESS.EGRESS and r.protocol is None
