"""Scheduling, failover, drain and rebalance: all through the scheduler driver's filter."""

from __future__ import annotations

from sqlalchemy import select

from ryu_sched.db import models
from ryu_sched.db.registry_models import BindingMove
from ryu_sched.events import Action, BindingChanged, RouterChanged, RouterGatewayChanged
from tests.unit.registry.world import DHCP, L3, NETWORK, ROUTER, World

EXT = {"external_port": "ext0"}


def test_network_with_dhcp_subnet_gets_dhcp_agents_per_network_agents():
    w = World(dhcp_agents_per_network=2)
    w.agents(3)
    net = w.network()
    no_dhcp = w.network(dhcp=False)
    w.reg.reconcile()
    assert len(w.hosts(NETWORK, net)) == 2
    assert not w.hosted(NETWORK, no_dhcp)
    assert len(w.db_bindings()) == 2
    assert [e.bound for e in w.events
            if isinstance(e, BindingChanged) and e.kind == NETWORK] == [True, True]


def test_least_loaded_scheduling_evens_out_networks():
    w = World()
    ids = w.agents(4)
    for _ in range(40):
        w.network()
    w.reg.reconcile()
    assert sorted(w.reg.load_of(a) for a in ids) == [10, 10, 10, 10]


def test_disabled_and_dead_agents_are_not_candidates():
    w = World()
    a0, a1, a2 = w.agents(3)
    w.reg.update_agent(a0, admin_state_up=False)
    w.clock.advance(5)
    w.keep_alive([("h0", DHCP), ("h2", DHCP)])   # h1 stops heartbeating
    w.clock.advance(6)
    w.keep_alive([("h0", DHCP), ("h2", DHCP)])
    for _ in range(5):
        w.network()
    w.reg.reconcile()
    assert w.reg.load_of(a2) == 5 and w.reg.load_of(a0) == w.reg.load_of(a1) == 0


def test_router_with_gateway_goes_to_an_agent_with_external_port():
    w = World()
    w.agents(3, L3, prefix="plain")
    gw_agent = w.beat("gw", L3, configurations={**EXT,
                                                 "datapath_id": "00000000000000aa"})["agent_id"]
    w.reg.flush()
    routers = [w.router(gateway=True) for _ in range(3)]
    w.reg.reconcile()
    assert all(w.hosts(ROUTER, r) == {gw_agent: 1} for r in routers)
    bind = next(e for e in w.events if isinstance(e, BindingChanged) and e.bound)
    assert (bind.agent_id, bind.host, bind.datapath_id) == (gw_agent, "gw", "00000000000000aa")


def test_router_is_replaced_when_it_gets_a_gateway_its_agent_cannot_serve():
    w = World()
    plain = w.agents(1, L3, prefix="plain")[0]
    rid = w.router()
    w.react(RouterChanged(Action.CREATE, rid))
    assert w.hosts(ROUTER, rid) == {plain: 1}
    gw_agent = w.beat("gw", L3, configurations=EXT)["agent_id"]
    w.reg.flush()
    with w.db.session() as s:
        net = models.Network(name="ext", segmentation_id=999, physical_network="physnet1")
        s.add(net)
        s.flush()
        port = models.Port(network_id=net.id, mac_address="fa:16:3e:00:00:09")
        s.add(port)
        s.flush()
        s.scalar(select(models.Router).where(models.Router.id == rid)).gw_port_id = port.id
    w.react(RouterGatewayChanged(rid, net.id, port.id))
    assert w.hosts(ROUTER, rid) == {gw_agent: 1}
    assert [m["reason"] for m in w.reg.moves(resource_id=rid)] == ["gateway"]


def test_monitor_waits_one_agent_down_time_after_start_before_judging():
    w = World()
    w.agents(2)
    w.network()
    w.reg.reconcile()
    w.clock.advance(9)
    assert w.reg.monitor_tick()["dead"] == 0
    w.clock.advance(11)  # nobody heartbeats: both dead, but only judged after the grace
    assert w.reg.monitor_tick()["dead"] == 2


def test_dead_agent_networks_and_routers_move_to_live_agents_and_are_logged():
    w = World()
    d = w.agents(2)
    r = w.agents(2, L3, prefix="l3-")
    nets = [w.network() for _ in range(6)]
    rtrs = [w.router() for _ in range(4)]
    w.reg.reconcile()
    victim_net, victim_rtr = d[0], r[0]
    moved_nets = set(w.reg.hosted_by(victim_net))
    moved_rtrs = set(w.reg.hosted_by(victim_rtr))
    w.clock.advance(11)
    w.keep_alive([("h1", DHCP), ("l3-1", L3)])
    summary = w.reg.monitor_tick()
    assert summary["dead"] == 2 and summary["moved"] == len(moved_nets) + len(moved_rtrs)
    assert all(w.hosts(NETWORK, n) == {d[1]: 1} for n in nets)
    assert all(w.hosts(ROUTER, x) == {r[1]: 1} for x in rtrs)
    assert len(w.db_bindings()) == 6 and len(w.db_bindings(ROUTER)) == 4
    log = w.reg.moves()
    assert {m["resource_id"] for m in log} == moved_nets | moved_rtrs
    assert {m["reason"] for m in log} == {"failover"}
    # the agent comes back: it gets nothing back (no flapping)
    w.clock.advance(1)
    w.keep_alive([("h0", DHCP), ("l3-0", L3), ("h1", DHCP), ("l3-1", L3)])
    w.reg.monitor_tick()
    assert w.reg.load_of(d[0]) == 0 and w.reg.load_of(r[0]) == 0
    # ...but new objects go to it, as the least loaded
    new = w.network()
    w.reg.reconcile()
    assert w.hosts(NETWORK, new) == {d[0]: 1}


def test_failover_keeps_the_binding_when_no_candidate_exists():
    w = World()
    a = w.agents(1)[0]
    net = w.network()
    w.reg.reconcile()
    w.clock.advance(11)
    w.reg.monitor_tick()
    assert w.hosts(NETWORK, net) == {a: 1}


def test_n_way_failover_never_puts_two_copies_on_one_agent():
    w = World(dhcp_agents_per_network=2)
    ids = w.agents(3)
    nets = [w.network() for _ in range(9)]
    w.reg.reconcile()
    w.clock.advance(11)
    w.keep_alive([("h1", DHCP), ("h2", DHCP)])
    w.reg.monitor_tick()
    for n in nets:
        assert set(w.hosts(NETWORK, n)) == {ids[1], ids[2]}
        assert sorted(w.hosts(NETWORK, n).values()) == [1, 2]


def test_automatic_failover_can_be_disabled():
    w = World(allow_automatic_failover=False)
    a0, _ = w.agents(2)
    w.network()
    w.network()
    w.reg.reconcile()
    w.clock.advance(11)
    w.keep_alive([("h1", DHCP)])
    assert w.reg.monitor_tick()["moved"] == 0 and w.reg.load_of(a0) == 1


def test_drain_disabled_agents_moves_objects_off_admin_down_agents():
    w = World(drain_disabled_agents=True)
    a0, a1 = w.agents(2)
    for _ in range(4):
        w.network()
    w.reg.reconcile()
    w.reg.update_agent(a0, admin_state_up=False)
    w.clock.advance(11)
    w.keep_alive([("h0", DHCP), ("h1", DHCP)])
    w.reg.monitor_tick()
    assert w.reg.load_of(a0) == 0 and w.reg.load_of(a1) == 4
    assert {m["reason"] for m in w.reg.moves()} == {"drain"}


def test_move_log_table_records_from_and_to_hosts():
    w = World()
    w.agents(2)
    w.network()
    w.reg.reconcile()
    w.clock.advance(11)
    w.keep_alive([("h1", DHCP)])
    w.reg.monitor_tick()
    with w.db.session() as s:
        move = s.scalars(select(BindingMove)).one()
    assert (move.from_host, move.to_host, move.reason) == ("h0", "h1", "failover")


# --- rebalance ----------------------------------------------------------------------------

def test_rebalance_evens_out_load():
    w = World()
    a0 = w.agents(1)[0]
    for _ in range(12):
        w.network()
    w.reg.reconcile()
    assert w.reg.load_of(a0) == 12
    others = w.agents(3, prefix="new")
    moves = w.reg.rebalance()
    assert len(moves) == 9
    assert [w.reg.load_of(a) for a in [a0, *others]] == [3, 3, 3, 3]
    assert len(w.db_bindings()) == 12


def test_rebalance_honours_availability_zone_hints_with_the_az_aware_driver():
    w = World(network_scheduler_driver="az_aware")
    (az1,) = w.agents(1, az="az1", prefix="one")
    hinted = [w.network(hints=("az1",)) for _ in range(6)]
    free = [w.network() for _ in range(2)]
    w.reg.reconcile()
    assert w.reg.load_of(az1) == 8
    az2 = w.agents(2, az="az2", prefix="two")
    moves = w.reg.rebalance(DHCP)
    # only the networks without hints may leave az1: the hinted ones stay, however uneven
    assert {m.resource_id for m in moves} == set(free)
    assert all(w.hosts(NETWORK, n) == {az1: 1} for n in hinted)
    assert sorted(w.reg.load_of(a) for a in az2) == [1, 1]


def test_rebalance_keeps_routers_with_a_gateway_on_agents_with_an_external_port():
    w = World()
    (gw,) = w.agents(1, L3, prefix="gw", configurations=EXT)
    gw_routers = [w.router(gateway=True) for _ in range(4)]
    plain_routers = [w.router() for _ in range(2)]
    w.reg.reconcile()
    assert w.reg.load_of(gw) == 6
    plain = w.agents(2, L3, prefix="plain")
    moves = w.reg.rebalance(L3)
    assert {m.resource_id for m in moves} == set(plain_routers)
    assert all(w.hosts(ROUTER, r) == {gw: 1} for r in gw_routers)
    assert sorted(w.reg.load_of(a) for a in plain) == [1, 1]


def test_rebalance_never_moves_a_copy_onto_an_agent_that_has_one():
    w = World(dhcp_agents_per_network=2)
    a, b = w.agents(2)
    nets = [w.network() for _ in range(4)]
    w.reg.reconcile()
    c = w.agents(1, prefix="c")[0]
    w.reg.rebalance(DHCP)
    for n in nets:
        assert len(set(w.hosts(NETWORK, n))) == 2
    assert sorted(w.reg.load_of(x) for x in (a, b, c)) == [2, 3, 3]
