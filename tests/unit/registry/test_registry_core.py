"""The registry against an in-memory SQLite database, with a hand-driven clock."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, insert, select

from ryu_sched import errors
from ryu_sched.config import Settings
from ryu_sched.db import Database, models
from ryu_sched.db.registry_models import BindingMove
from ryu_sched.events import (
    Action,
    BindingChanged,
    Event,
    FloatingIpChanged,
    NetworkChanged,
    PortChanged,
    RouterChanged,
    RouterGatewayChanged,
    SubnetChanged,
)
from ryu_sched.registry.model import from_datetime
from ryu_sched.registry.registry import Registry
from ryu_sched.rpc.protocol import BadParams
from ryu_sched.services import Services

DHCP, L3 = "DHCP agent", "L3 agent"


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Conn:
    def __init__(self) -> None:
        self.agent_ids: set[str] = set()
        self.sent: list[tuple[str, list[Any]]] = []

    def notify(self, method: str, params: list[Any]) -> None:
        self.sent.append((method, params))


class World:
    def __init__(self, **options: Any) -> None:
        self.db = Database("sqlite://")
        self.db.create_schema()
        self.services = Services(settings=Settings(agent_down_time=10, **options), db=self.db)
        self.events: list[Event] = []
        self.services.bus.subscribe(self.events.append)
        self.clock = Clock()
        self.reg = Registry(self.services, clock=self.clock)
        self.conns: dict[str, Conn] = {}
        self._seg = 100

    def beat(self, host: str, agent_type: str = DHCP, **extra: Any) -> dict[str, Any]:
        conn = self.conns.setdefault(f"{agent_type}/{host}", Conn())
        state = {"agent_type": agent_type, "host": host, "binary": "x", "topic": "t",
                 "availability_zone": extra.pop("az", "nova"),
                 "configurations": extra.pop("configurations", {}), **extra}
        return self.reg.report_state(conn, state)

    def agents(self, n: int, agent_type: str = DHCP, prefix: str = "h",
               **extra: Any) -> list[str]:
        ids = [self.beat(f"{prefix}{i}", agent_type, **extra)["agent_id"] for i in range(n)]
        self.reg.flush()
        return ids

    def keep_alive(self, hosts: list[tuple[str, str]]) -> None:
        for host, agent_type in hosts:
            self.beat(host, agent_type)

    def network(self, dhcp: bool = True, hints: tuple[str, ...] = ()) -> str:
        self._seg += 1
        with self.db.session() as s:
            net = models.Network(name="n", segmentation_id=self._seg,
                                 physical_network="physnet1",
                                 availability_zone_hints=list(hints))
            s.add(net)
            s.flush()
            s.add(models.Subnet(network_id=net.id, cidr="10.0.0.0/24", enable_dhcp=dhcp))
            return net.id

    def router(self, gateway: bool = False) -> str:
        with self.db.session() as s:
            gw = None
            if gateway:
                self._seg += 1
                net = models.Network(name="ext", segmentation_id=self._seg,
                                     physical_network="physnet1", router_external=True)
                s.add(net)
                s.flush()
                port = models.Port(network_id=net.id, mac_address="fa:16:3e:00:00:01")
                s.add(port)
                s.flush()
                gw = port.id
            rtr = models.Router(name="r", gw_port_id=gw)
            s.add(rtr)
            s.flush()
            return rtr.id

    def db_bindings(self, kind: str = "network") -> list[tuple[str, str]]:
        model = models.NetworkDhcpAgentBinding if kind == "network" else \
            models.RouterL3AgentBinding
        cols = (model.network_id, model.dhcp_agent_id) if kind == "network" else \
            (model.router_id, model.l3_agent_id)
        with self.db.session() as s:
            return sorted(tuple(r) for r in s.execute(select(*cols)))


def test_first_heartbeat_registers_and_is_persisted_by_the_flush():
    w = World()
    result = w.beat("h1")
    assert result["status"] == "registered"
    assert w.reg.get(result["agent_id"]).host == "h1"
    with w.db.session() as s:
        assert s.scalar(select(func.count(models.Agent.id))) == 0
    w.reg.flush()
    with w.db.session() as s:
        assert s.scalar(select(func.count(models.Agent.id))) == 1


def test_heartbeats_are_written_in_batches_not_one_commit_each():
    w = World()
    agent_id = w.agents(1)[0]
    commits = []
    from sqlalchemy import event

    event.listen(w.db.engine, "commit", lambda conn: commits.append(1))
    for _ in range(100):
        w.clock.advance(0.01)
        w.beat("h0")
    assert commits == []
    w.reg.flush()
    assert len(commits) == 1
    with w.db.session() as s:
        stored = s.get(models.Agent, agent_id).heartbeat_timestamp
    assert abs(from_datetime(stored) - w.clock.now) < 1.0


def test_alive_means_heartbeat_younger_than_agent_down_time():
    w = World()
    rec = w.reg.get(w.agents(1)[0])
    assert w.reg.is_alive(rec)
    w.clock.advance(9.9)
    assert w.reg.is_alive(rec)
    w.clock.advance(0.2)
    assert not w.reg.is_alive(rec)
    assert w.beat("h0")["status"] == "revived"
    assert w.reg.is_alive(rec)


def test_start_flag_updates_started_at_and_asks_the_agent_to_resync():
    w = World()
    w.agents(1)
    rec = w.reg.by_key[(DHCP, "h0")]
    w.clock.advance(5)
    w.beat("h0", start_flag=True)
    assert rec.started_at == w.clock.now
    assert w.conns[f"{DHCP}/h0"].sent[-1][0] == "resync"


@pytest.mark.parametrize("state", [
    None, [], {"agent_type": "Metering agent", "host": "h"}, {"agent_type": DHCP},
    {"agent_type": DHCP, "host": ""}, {"agent_type": DHCP, "host": ["x"]},
    {"agent_type": DHCP, "host": "h", "configurations": []},
    {"agent_type": DHCP, "host": "h", "configurations": {"datapath_id": "xyz"}},
    {"agent_type": DHCP, "host": "h", "start_flag": "yes"},
])
def test_malformed_agent_state_is_rejected_and_not_registered(state):
    w = World()
    with pytest.raises(BadParams):
        w.reg.report_state(Conn(), state)
    assert w.reg.agents == {}


def test_network_with_dhcp_subnet_gets_dhcp_agents_per_network_agents():
    w = World(dhcp_agents_per_network=2)
    w.agents(3)
    net = w.network()
    no_dhcp = w.network(dhcp=False)
    w.reg.reconcile()
    assert len(w.reg.hosts["network"][net]) == 2
    assert no_dhcp not in w.reg.hosts["network"]
    assert len(w.db_bindings()) == 2
    assert [e.bound for e in w.events
            if isinstance(e, BindingChanged) and e.kind == "network"] == [True, True]


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
    gw_agent = w.beat("gw", L3, configurations={"external_port": "ext0",
                                                 "datapath_id": "00000000000000aa"})["agent_id"]
    w.reg.flush()
    routers = [w.router(gateway=True) for _ in range(3)]
    w.reg.reconcile()
    assert all(w.reg.hosts["router"][r] == {gw_agent: 1} for r in routers)
    bind = next(e for e in w.events if isinstance(e, BindingChanged) and e.bound)
    assert (bind.agent_id, bind.host, bind.datapath_id) == (gw_agent, "gw", "00000000000000aa")


def test_router_is_replaced_when_it_gets_a_gateway_its_agent_cannot_serve():
    w = World()
    plain = w.agents(1, L3, prefix="plain")[0]
    rid = w.router()
    w.reg.handle_event(RouterChanged(Action.CREATE, rid))
    assert w.reg.hosts["router"][rid] == {plain: 1}
    gw_agent = w.beat("gw", L3, configurations={"external_port": "ext0"})["agent_id"]
    w.reg.flush()
    with w.db.session() as s:
        net = models.Network(name="ext", segmentation_id=999, physical_network="physnet1")
        s.add(net)
        s.flush()
        port = models.Port(network_id=net.id, mac_address="fa:16:3e:00:00:09")
        s.add(port)
        s.flush()
        s.scalar(select(models.Router).where(models.Router.id == rid)).gw_port_id = port.id
    w.reg.handle_event(RouterGatewayChanged(rid, net.id, port.id))
    assert w.reg.hosts["router"][rid] == {gw_agent: 1}
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
    moved_nets = set(w.reg.hosted[victim_net])
    moved_rtrs = set(w.reg.hosted[victim_rtr])
    w.clock.advance(11)
    w.keep_alive([("h1", DHCP), ("l3-1", L3)])
    summary = w.reg.monitor_tick()
    assert summary["dead"] == 2 and summary["moved"] == len(moved_nets) + len(moved_rtrs)
    assert all(w.reg.hosts["network"][n] == {d[1]: 1} for n in nets)
    assert all(w.reg.hosts["router"][x] == {r[1]: 1} for x in rtrs)
    assert len(w.db_bindings()) == 6 and len(w.db_bindings("router")) == 4
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
    assert w.reg.hosts["network"][new] == {d[0]: 1}


def test_failover_keeps_the_binding_when_no_candidate_exists():
    w = World()
    a = w.agents(1)[0]
    net = w.network()
    w.reg.reconcile()
    w.clock.advance(11)
    w.reg.monitor_tick()
    assert w.reg.hosts["network"][net] == {a: 1}


def test_n_way_failover_never_puts_two_copies_on_one_agent():
    w = World(dhcp_agents_per_network=2)
    ids = w.agents(3)
    nets = [w.network() for _ in range(9)]
    w.reg.reconcile()
    w.clock.advance(11)
    w.keep_alive([("h1", DHCP), ("h2", DHCP)])
    w.reg.monitor_tick()
    for n in nets:
        assert set(w.reg.hosts["network"][n]) == {ids[1], ids[2]}
        assert sorted(w.reg.hosts["network"][n].values()) == [1, 2]


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


def test_manual_bind_twice_is_a_conflict_and_a_raced_row_is_not_a_crash():
    w = World()
    a0, a1 = w.agents(2)
    net = w.network()
    w.reg.bind("network", net, a0)
    with pytest.raises(errors.Conflict):
        w.reg.bind("network", net, a0)
    # another controller inserted the row behind our back: IntegrityError -> Conflict
    with w.db.session() as s:
        s.execute(insert(models.NetworkDhcpAgentBinding),
                  [{"network_id": net, "dhcp_agent_id": a1, "binding_index": 2}])
    with pytest.raises(errors.Conflict):
        w.reg.bind("network", net, a1)


def test_router_can_only_be_bound_to_one_l3_agent():
    w = World()
    a0, a1 = w.agents(2, L3)
    rid = w.router()
    w.reg.bind("router", rid, a0)
    with pytest.raises(errors.Conflict):
        w.reg.bind("router", rid, a1)


def test_unbind_of_a_missing_binding_is_a_conflict():
    w = World()
    a0 = w.agents(1)[0]
    with pytest.raises(errors.Conflict):
        w.reg.unbind("network", w.network(), a0)


def test_delete_agent_removes_its_bindings_and_reschedules_its_networks():
    w = World()
    a0, a1 = w.agents(2)
    net = w.network()
    w.reg.bind("network", net, a0)
    w.reg.delete_agent(a0)
    assert a0 not in w.reg.agents and w.db_bindings() == []
    w.reg.reconcile()
    assert w.reg.hosts["network"][net] == {a1: 1}


def test_subnet_event_schedules_and_network_delete_notifies_hosts():
    w = World()
    a0 = w.agents(1)[0]
    net = w.network()
    w.reg.handle_event(SubnetChanged(Action.CREATE, "s1", net))
    assert w.reg.hosts["network"][net] == {a0: 1}
    conn = w.conns[f"{DHCP}/h0"]
    assert ("network_bound", [{"network_id": net}]) in conn.sent
    w.reg.handle_event(PortChanged(Action.CREATE, "p1", net))
    assert conn.sent[-1] == ("port_changed", [{"network_id": net, "port_id": "p1",
                                               "action": "create"}])
    with w.db.session() as s:
        s.delete(s.scalar(select(models.Network).where(models.Network.id == net)))
    w.reg.handle_event(NetworkChanged(Action.DELETE, net))
    assert conn.sent[-1] == ("network_deleted", [{"network_id": net}])
    assert w.reg.load_of(a0) == 0


def test_old_routers_agent_is_told_when_a_floating_ip_leaves_its_router():
    w = World()
    a0, a1 = w.agents(2, L3, prefix="l3-")
    r1, r2 = w.router(), w.router()
    w.reg.bind("router", r1, a0)
    w.reg.bind("router", r2, a1)
    old, new = w.conns[f"{L3}/l3-0"], w.conns[f"{L3}/l3-1"]
    w.reg.handle_event(FloatingIpChanged(Action.UPDATE, "f1", router_id=r2,
                                         previous_router_id=r1))
    assert ("router_updated", [{"router_id": r1, "reason": "floatingip"}]) in old.sent
    assert ("router_updated", [{"router_id": r2, "reason": "floatingip"}]) in new.sent
    old.sent.clear()
    w.reg.handle_event(FloatingIpChanged(Action.UPDATE, "f1", previous_router_id=r2))
    assert old.sent == []
    assert new.sent[-1] == ("router_updated", [{"router_id": r2, "reason": "floatingip"}])


def test_network_auto_schedule_can_be_disabled():
    w = World(network_auto_schedule=False)
    w.agents(1)
    net = w.network()
    w.reg.handle_event(SubnetChanged(Action.CREATE, "s1", net))
    w.reg.reconcile()
    assert net not in w.reg.hosts["network"]


def test_bindings_and_agents_survive_a_reload():
    w = World()
    a0 = w.agents(1)[0]
    net = w.network()
    w.reg.reconcile()
    again = Registry(w.services, clock=w.clock)
    again.load()
    assert again.hosts["network"][net] == {a0: 1} and again.get(a0).host == "h0"


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
