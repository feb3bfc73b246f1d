"""Active and standby routers: a standby switch has every flow of the router but those by
which it would answer for it or admit its traffic (cookie ROUTER_ACTIVE); a switchover
changes only those; a switch without them never speaks for the router.

The test bed's r1 is active on switch 1 and on standby on switch 3 (both with ext0, see
flows_testbed.make_ha_snapshot); vm-a3 (net-a) lives on switch 3.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from flows_testbed import (
    EXT,
    FIP,
    GW_IP,
    GW_MAC,
    INTERNET_IP,
    R1,
    R1_IF_A,
    R1_IF_A2,
    R1_IPS,
    UPLINK,
    UPSTREAM_IP,
    UPSTREAM_MAC,
    arp_request,
    endpoint,
    from_internet,
    icmp,
    ip_of,
    mac_of,
    make_ha_snapshot,
    make_snapshot,
    udp,
)
from ha_probes import fenced, identity, probes, speaks_for_router

from ryu_sched.flows.cookies import CookieKind, cookie_for, kind_of
from ryu_sched.flows.model import Router, Snapshot
from ryu_sched.flows.pipeline import desired_flows
from ryu_sched.flows.simulator import Fabric, SimResult, SwitchSimulator
from ryu_sched.flows.spec import ARP_REPLY, ETH_TYPE_ARP, OFPVID_PRESENT, FlowSpec
from ryu_sched.shared.vocabulary import ROUTER_ACTIVE_COOKIE_MATCH

DPIDS = (1, 2, 3)
ACTIVE_COOKIE = cookie_for(CookieKind.ROUTER_ACTIVE, R1.id)
#: r1's active-only flows (docs/pipeline.md): 6 per VLAN interface (ARP answer + its uplink
#: twin, echo reply + its uplink twin, admission into ROUTING, L2 drop of its MAC), 4 for the
#: gateway (ARP answer, upstream ARP reply to the controller, echo reply, un-SNAT admission),
#: 2 per floating IP (ARP answer, DNAT admission).
R1_ACTIVE_ONLY = 6 * 2 + 4 + 2 * 1


def fabric(snapshot: Snapshot, tables: dict[int, list[FlowSpec]] | None = None) -> Fabric:
    tables = {d: desired_flows(snapshot, d) for d in DPIDS} | (tables or {})
    return Fabric({d: SwitchSimulator(flows) for d, flows in tables.items()},
                  {d: UPLINK for d in DPIDS})


def sim(snapshot: Snapshot, dpid: int) -> SwitchSimulator:
    return SwitchSimulator(desired_flows(snapshot, dpid))


def from_uplink(packet: dict, vlan: int) -> dict:
    return {**packet, "in_port": UPLINK, "vlan_vid": OFPVID_PRESENT | vlan}


def arp_replies(packets: list[dict]) -> list[dict]:
    return [p for p in packets if p.get("eth_type") == ETH_TYPE_ARP and p["arp_op"] == ARP_REPLY]


def silent(result: SimResult) -> bool:
    return not speaks_for_router(result, identity(make_ha_snapshot()))


# ------------------------------------------------------------------------- model
@pytest.mark.parametrize("standby, host", [((3, 3), 1), ((1,), 1), (("3",), 1), ((True,), 1)])
def test_standby_dpids_must_be_distinct_ints_other_than_the_active(standby, host):
    with pytest.raises(ValueError):
        Router("r", 1, "t", host_dpid=host, standby_dpids=standby)


def test_standby_dpids_are_kept_as_a_tuple():
    router = Router("r", 1, "t", host_dpid=None, standby_dpids=[3, 2])  # type: ignore[arg-type]
    assert router.standby_dpids == (3, 2) and router.placed_dpids == (3, 2)
    assert Router("r", 1, "t", host_dpid=1, standby_dpids=(3,)).placed_dpids == (1, 3)


def test_the_fence_filter_selects_every_router_active_flow_by_kind():
    kind, mask = ROUTER_ACTIVE_COOKIE_MATCH.removeprefix("cookie=").split("/")
    assert ACTIVE_COOKIE & int(mask, 16) == int(kind, 16)
    assert cookie_for(CookieKind.ROUTER, R1.id) & int(mask, 16) != int(kind, 16)


# -------------------------------------------------------------------- the active
@pytest.mark.parametrize("dpid", (1, 2))
def test_a_standby_changes_nothing_on_the_active_switch_nor_elsewhere(dpid):
    assert desired_flows(make_ha_snapshot(), dpid) == desired_flows(make_snapshot(), dpid)


def test_the_active_switch_answers_and_routes_as_before():
    net = fabric(make_ha_snapshot())
    [reply] = net.send(2, arp_request("vm-a2", R1_IF_A.ip)).at(*endpoint("vm-a2"))
    assert (reply["arp_sha"], reply["arp_spa"]) == (R1_IF_A.mac, R1_IF_A.ip)
    routed = net.send(3, udp("vm-a3", ip_of("vm-a22"), R1_IF_A.mac))
    assert routed.endpoints == {endpoint("vm-a22")}
    [out] = net.send(3, udp("vm-a3", INTERNET_IP, R1_IF_A.mac)).at(1, EXT)
    assert (out["eth_src"], out["ipv4_src"]) == (GW_MAC, GW_IP)


# ------------------------------------------------------------------- the standby
@pytest.mark.parametrize("target", sorted(R1_IPS))
def test_the_standby_answers_no_arp_for_router_addresses(target):
    standby = sim(make_ha_snapshot(), 3)
    asks = [arp_request("vm-a3", target),
            from_uplink(arp_request("vm-a2", target), 100),
            from_uplink(arp_request("vm-a21", target), 101),
            dict(in_port=EXT, eth_src=UPSTREAM_MAC, eth_dst="ff:ff:ff:ff:ff:ff",
                 eth_type=ETH_TYPE_ARP, arp_op=1, arp_sha=UPSTREAM_MAC, arp_spa=UPSTREAM_IP,
                 arp_tha="00:00:00:00:00:00", arp_tpa=target)]
    for ask in asks:
        result = standby.process(ask)
        assert not arp_replies([out for _, out in result.outputs]), ask
        assert silent(result) and not result.to_controller


def test_on_the_fabric_only_the_active_answers_arp_once():
    net = fabric(make_ha_snapshot())
    for target in (R1_IF_A.ip, "10.0.0.1"):
        replies = arp_replies(net.send(3, arp_request("vm-a3", target)).at(*endpoint("vm-a3")))
        assert len(replies) == 1 and replies[0]["arp_sha"] == R1_IF_A.mac


@pytest.mark.parametrize("packet", [
    from_internet(GW_IP), from_internet(FIP), from_internet("203.0.113.99"),
    from_internet(GW_IP, ip_proto=1, icmpv4_type=8, icmpv4_code=0, icmp_id=3),
    dict(in_port=EXT, eth_src=UPSTREAM_MAC, eth_dst=GW_MAC, eth_type=ETH_TYPE_ARP, arp_op=2,
         arp_sha=UPSTREAM_MAC, arp_spa=UPSTREAM_IP, arp_tha=GW_MAC, arp_tpa=GW_IP),
    dict(in_port=EXT, eth_src=UPSTREAM_MAC, eth_dst=GW_MAC, eth_type=ETH_TYPE_ARP, arp_op=1,
         arp_sha=UPSTREAM_MAC, arp_spa=UPSTREAM_IP, arp_tha="00:00:00:00:00:00", arp_tpa=FIP),
    from_uplink(udp("vm-a2", ip_of("vm-a22"), R1_IF_A.mac), 100),
    from_uplink(icmp("vm-a2", R1_IF_A.ip, R1_IF_A.mac), 100),
    from_uplink(icmp("vm-a21", R1_IF_A2.ip, R1_IF_A2.mac), 101),
    from_uplink(udp("vm-a21", INTERNET_IP, R1_IF_A2.mac), 101),
    from_uplink(arp_request("vm-a2", R1_IF_A.ip, eth_dst=R1_IF_A.mac), 100),
], ids=lambda p: f"in_port={p['in_port']},{p['eth_dst']},{p.get('ipv4_dst', p.get('arp_tpa'))}")
def test_the_standby_drops_what_the_fabric_sends_to_router_macs(packet):
    result = sim(make_ha_snapshot(), 3).process(packet)
    assert result.dropped, result.outputs
    assert result.trace[-1][2] == cookie_for(CookieKind.ROUTER, R1.id)  # an explicit guard


def test_the_standby_sends_its_vms_traffic_for_the_router_to_the_active():
    net = fabric(make_ha_snapshot())
    routed = net.send(3, udp("vm-a3", ip_of("vm-a22"), R1_IF_A.mac))
    [delivered] = routed.at(*endpoint("vm-a22"))
    assert (delivered["eth_src"], delivered["ip_ttl"]) == (R1_IF_A2.mac, 63)
    assert routed.on_wire[0][1]["eth_src"] == mac_of("vm-a3")  # left switch 3 unrouted
    ping = net.send(3, icmp("vm-a3", R1_IF_A.ip, R1_IF_A.mac))
    [echo] = ping.at(*endpoint("vm-a3"))
    assert (echo["icmpv4_type"], echo["eth_src"]) == (0, R1_IF_A.mac)
    out = net.send(3, udp("vm-a3", INTERNET_IP, R1_IF_A.mac))
    assert out.endpoints == {(1, EXT)}  # the active's external port, never the standby's


def test_nothing_leaves_the_standby_with_a_router_identity():
    snapshot = make_ha_snapshot()
    standby = sim(snapshot, 3)
    packets = probes(snapshot, 3)
    assert len(packets) > 300
    for packet in packets:
        result = standby.process(packet)
        assert not speaks_for_router(result, identity(snapshot)), packet
        assert not result.to_controller, packet


def test_a_router_with_only_standbys_answers_nowhere():
    snapshot = make_ha_snapshot(active=None, standby=(1, 3))
    for dpid in DPIDS:
        flows = desired_flows(snapshot, dpid)
        assert not any(kind_of(f.cookie) is CookieKind.ROUTER_ACTIVE for f in flows)
    net = fabric(snapshot)
    assert not arp_replies(net.send(2, arp_request("vm-a2", R1_IF_A.ip)).at(*endpoint("vm-a2")))
    assert net.send(2, udp("vm-a2", ip_of("vm-a22"), R1_IF_A.mac)).endpoints == set()


# ------------------------------------------------------------------ switchover
def swapped() -> Snapshot:
    return make_ha_snapshot(active=3, standby=(1,))


@pytest.mark.parametrize("dpid", DPIDS)
def test_a_switchover_changes_only_the_routers_active_only_flows(dpid):
    before, after = set(desired_flows(make_ha_snapshot(), dpid)), set(desired_flows(swapped(),
                                                                                    dpid))
    changed = before ^ after
    assert {f.cookie for f in changed} <= {ACTIVE_COOKIE}
    assert len(changed) == (0 if dpid == 2 else R1_ACTIVE_ONLY)
    # Each is a flow of its own (table, priority, match): added or deleted, never modified.
    assert len({f.key for f in changed}) == len(changed)
    assert not {f.key for f in changed} & {f.key for f in (before | after) - changed}


@pytest.mark.parametrize("old, new", [(1, 3), (3, 1)])
def test_the_fenced_active_is_exactly_the_standby(old, new):
    active_on_old = make_ha_snapshot(active=old, standby=(new,))
    standby_on_old = make_ha_snapshot(active=new, standby=(old,))
    assert fenced(desired_flows(active_on_old, old)) == desired_flows(standby_on_old, old)


def test_a_router_without_standby_has_the_same_active_only_flows():
    flows = desired_flows(make_snapshot(), 1)
    assert sum(f.cookie == ACTIVE_COOKIE for f in flows) == R1_ACTIVE_ONLY
    for dpid in (2, 3):
        assert not any(f.cookie == ACTIVE_COOKIE for f in desired_flows(make_snapshot(), dpid))


def test_after_a_switchover_only_the_new_active_answers_and_routes():
    net = fabric(swapped())
    result = net.send(2, arp_request("vm-a2", R1_IF_A.ip))
    [reply] = arp_replies(result.at(*endpoint("vm-a2")))
    assert reply["arp_sha"] == R1_IF_A.mac
    routed = net.send(1, udp("vm-a1", ip_of("vm-a22"), R1_IF_A.mac))
    assert routed.endpoints == {endpoint("vm-a22")}
    assert {dpid for dpid, _ in routed.on_wire} == {1, 3}  # through switch 3 and back
    assert net.send(1, udp("vm-a1", INTERNET_IP, R1_IF_A.mac)).endpoints == {(3, EXT)}


def test_a_fenced_old_active_and_the_new_active_never_both_answer():
    # Switch 1 fenced itself (its ROUTER_ACTIVE flows are gone, nothing else changed); the
    # controller made switch 3 active.
    old = make_ha_snapshot()
    net = fabric(swapped(), {1: fenced(desired_flows(old, 1))})
    for sender, dpid in (("vm-a1", 1), ("vm-a2", 2), ("vm-a3", 3)):
        replies = arp_replies(net.send(dpid, arp_request(sender, R1_IF_A.ip)).at(
            *endpoint(sender)))
        assert len(replies) == 1, sender
    # The fenced switch's VMs reach their router on its new switch.
    assert net.send(1, udp("vm-a1", ip_of("vm-a22"), R1_IF_A.mac)).endpoints == {
        endpoint("vm-a22")}
    # Without the fence, both would answer: what the fence is for.
    stale = fabric(swapped(), {1: desired_flows(old, 1)})
    replies = arp_replies(stale.send(2, arp_request("vm-a2", R1_IF_A.ip)).at(*endpoint("vm-a2")))
    assert len(replies) == 2


@pytest.mark.parametrize("dpid", DPIDS)
def test_a_fenced_switch_never_speaks_for_a_router(dpid):
    for snapshot in (make_snapshot(), make_ha_snapshot(), swapped()):
        flows = desired_flows(snapshot, dpid)
        table, unfenced = SwitchSimulator(fenced(flows)), SwitchSimulator(flows)
        spoke = 0
        for packet in probes(snapshot, dpid):
            result = table.process(packet)
            assert not speaks_for_router(result, identity(snapshot)), packet
            assert not result.to_controller
            spoke += bool(speaks_for_router(unfenced.process(packet), identity(snapshot)))
        # The probes do reach the router where it is active (the test is not vacuous).
        assert bool(spoke) == (snapshot.routers[0].host_dpid == dpid)


def test_two_routers_one_active_one_standby_on_one_switch():
    # r1 on standby on switch 3, a copy of it with other MACs and addresses active there.
    r3 = replace(R1, id="r3", key=9, host_dpid=3, standby_dpids=(1,), interfaces=(
        replace(R1_IF_A, ip="10.0.0.3", mac="fa:16:3e:00:cc:01"),), gateway=replace(
        R1.gateway, ip="203.0.113.13", mac="fa:16:3e:00:ee:03"))
    snapshot = replace(make_ha_snapshot(), routers=(*make_ha_snapshot().routers, r3))
    net = fabric(snapshot)
    [reply] = arp_replies(net.send(3, arp_request("vm-a3", "10.0.0.3")).at(*endpoint("vm-a3")))
    assert reply["arp_sha"] == "fa:16:3e:00:cc:01"
    [reply] = arp_replies(net.send(3, arp_request("vm-a3", R1_IF_A.ip)).at(*endpoint("vm-a3")))
    assert reply["arp_sha"] == R1_IF_A.mac
    # Fencing switch 3 silences r3 there; r1 answers on switch 1 still.
    net = fabric(snapshot, {3: fenced(desired_flows(snapshot, 3))})
    assert not arp_replies(net.send(3, arp_request("vm-a3", "10.0.0.3")).at(*endpoint("vm-a3")))
    [reply] = arp_replies(net.send(3, arp_request("vm-a3", R1_IF_A.ip)).at(*endpoint("vm-a3")))
    assert reply["arp_sha"] == R1_IF_A.mac
