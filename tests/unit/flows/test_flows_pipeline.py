"""desired_flows is deterministic, duplicate-free, closed by table-miss drops, and owned."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from flows_testbed import FIP, FIP_A2, PORTS, R1, make_snapshot

from ryu_sched.flows.cookies import CookieKind, cookie_for, kind_of
from ryu_sched.flows.model import Snapshot, Switch
from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.flows.spec import Match, Output
from ryu_sched.flows.tables import PIPELINE

DPIDS = (1, 2, 3)


@pytest.mark.parametrize("dpid", DPIDS)
def test_flows_are_deterministic_whatever_the_input_order(dpid):
    snap = make_snapshot()
    shuffled = list(snap.ports)
    random.Random(4).shuffle(shuffled)
    other = replace(snap, ports=tuple(shuffled), networks=tuple(reversed(snap.networks)),
                    subnets=tuple(reversed(snap.subnets)))
    assert desired_flows(snap, dpid) == desired_flows(other, dpid)
    assert desired_flows(snap, dpid) == desired_flows(make_snapshot(), dpid)


@pytest.mark.parametrize("dpid", DPIDS)
def test_no_two_flows_share_table_priority_and_match(dpid):
    flows = desired_flows(make_snapshot(), dpid)
    keys = [f.key for f in flows]
    assert len(keys) == len(set(keys))


@pytest.mark.parametrize("dpid", DPIDS)
def test_every_table_ends_in_a_table_miss_drop(dpid):
    flows = desired_flows(make_snapshot(), dpid)
    for table in PIPELINE:
        [miss] = [f for f in flows if f.table == table and f.priority == 0]
        assert miss.match == Match() and miss.actions == ()
        assert kind_of(miss.cookie) is CookieKind.BASE


@pytest.mark.parametrize("dpid", DPIDS)
def test_no_flow_uses_normal_or_flood_actions(dpid):
    for flow in desired_flows(make_snapshot(), dpid):
        text = flow.to_ofctl().lower()
        assert "normal" not in text and "flood" not in text and "all" not in text.split(",")
        for action in flow.actions:
            if isinstance(action, Output):
                assert action.port in ("IN_PORT", "CONTROLLER") or isinstance(action.port, int)


def test_a_switch_without_vms_or_routers_only_has_the_base_pipeline():
    snap = replace(make_snapshot(), switches=(*make_snapshot().switches, Switch(9, {"uplink": 1})))
    assert {kind_of(f.cookie) for f in desired_flows(snap, 9)} == {CookieKind.BASE}
    assert {kind_of(f.cookie) for f in desired_flows(Snapshot(), 1)} == {CookieKind.BASE}


def test_cookies_name_the_owner_of_each_flow():
    flows = desired_flows(make_snapshot(), 1)
    cookies = {f.cookie for f in flows}
    assert cookie_for(CookieKind.PORT, PORTS["vm-a1"].id) in cookies
    assert cookie_for(CookieKind.ROUTER, R1.id) in cookies
    assert cookie_for(CookieKind.FLOATING_IP, FIP_A2.id) in cookies
    assert cookie_for(CookieKind.PORT, PORTS["vm-a2"].id) in cookies  # remote MAC entry
    assert cookie_for(CookieKind.ROUTER_ACTIVE, R1.id) in cookies
    # Removing the floating IP removes exactly the flows it owned, and its two active-only
    # flows, which carry its router's ROUTER_ACTIVE cookie: the ARP answer and the DNAT.
    without = desired_flows(make_snapshot(floating_ips=()), 1)
    fip_cookie = cookie_for(CookieKind.FLOATING_IP, FIP_A2.id)
    for_fip = {f for f in flows if FIP in (f.match.get("arp_tpa"), f.match.get("ipv4_dst"))}
    assert {kind_of(f.cookie) for f in for_fip} == {CookieKind.ROUTER_ACTIVE}
    assert len(for_fip) == 2
    assert set(without) == {f for f in flows if f.cookie != fip_cookie} - for_fip


def test_admin_down_port_gets_no_flows_and_receives_nothing():
    port = PORTS["vm-a1"]
    snap = make_snapshot(ports=tuple(replace(p, admin_state_up=False) if p.id == port.id else p
                                     for p in make_snapshot().ports))
    assert not any(f.cookie == cookie_for(CookieKind.PORT, port.id)
                   for f in desired_flows(snap, 1))


def test_port_on_an_unknown_network_is_ignored():
    port = replace(PORTS["vm-a1"], network_id="nope")
    snap = make_snapshot(ports=(port,))
    assert {kind_of(f.cookie) for f in desired_flows(snap, 1) if f.table == 0} == {
        CookieKind.BASE, CookieKind.NETWORK}


def test_ipv6_subnets_ports_and_router_interfaces_are_ignored_not_fatal():
    from ryu_sched.flows.model import RouterInterface, Subnet

    snap = make_snapshot()
    v6 = Subnet("sub-v6", snap.networks[0].id, "fd00::/64", "fd00::1")
    port = replace(PORTS["vm-a1"], fixed_ips=(*PORTS["vm-a1"].fixed_ips, ("sub-v6", "fd00::11")))
    iface = RouterInterface("rp-v6", "sub-v6", snap.networks[0].id, "fd00::1",
                            "fa:16:3e:00:66:01", "fd00::/64")
    router = replace(R1, interfaces=(*R1.interfaces, iface))
    snap = make_snapshot(subnets=(*snap.subnets, v6),
                         ports=tuple(port if p.id == port.id else p for p in snap.ports),
                         routers=(router,))
    for dpid in DPIDS:
        assert desired_flows(snap, dpid)


def test_snapshots_are_immutable_hashable_and_picklable():
    import pickle

    snap = make_snapshot()
    assert pickle.loads(pickle.dumps(snap)) == snap
    assert hash(snap) == hash(make_snapshot())
    with pytest.raises(TypeError):
        snap.port_locations["x"] = 1  # type: ignore[index]
    assert Switch(5).uplinks == {"physnet1": "uplink"}
