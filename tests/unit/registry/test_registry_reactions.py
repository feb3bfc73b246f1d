"""What the registry does about bus events: schedule, forget deleted objects, notify."""

from __future__ import annotations

from sqlalchemy import select

from ryu_sched.db import models
from ryu_sched.events import Action, FloatingIpChanged, NetworkChanged, PortChanged, SubnetChanged
from tests.unit.registry.world import DHCP, L3, NETWORK, ROUTER, World


def test_subnet_event_schedules_and_network_delete_notifies_hosts():
    w = World()
    a0 = w.agents(1)[0]
    net = w.network()
    w.react(SubnetChanged(Action.CREATE, "s1", net))
    assert w.hosts(NETWORK, net) == {a0: 1}
    conn = w.conns[f"{DHCP}/h0"]
    assert ("network_bound", [{"network_id": net}]) in conn.sent
    w.react(PortChanged(Action.CREATE, "p1", net))
    assert conn.sent[-1] == ("port_changed", [{"network_id": net, "port_id": "p1",
                                               "action": "create"}])
    with w.db.session() as s:
        s.delete(s.scalar(select(models.Network).where(models.Network.id == net)))
    w.react(NetworkChanged(Action.DELETE, net))
    assert conn.sent[-1] == ("network_deleted", [{"network_id": net}])
    assert w.reg.load_of(a0) == 0


def test_old_routers_agent_is_told_when_a_floating_ip_leaves_its_router():
    w = World()
    a0, a1 = w.agents(2, L3, prefix="l3-")
    r1, r2 = w.router(), w.router()
    w.reg.bind(ROUTER, r1, a0)
    w.reg.bind(ROUTER, r2, a1)
    old, new = w.conns[f"{L3}/l3-0"], w.conns[f"{L3}/l3-1"]
    w.react(FloatingIpChanged(Action.UPDATE, "f1", router_id=r2, previous_router_id=r1))
    assert ("router_updated", [{"router_id": r1, "reason": "floatingip"}]) in old.sent
    assert ("router_updated", [{"router_id": r2, "reason": "floatingip"}]) in new.sent
    old.sent.clear()
    w.react(FloatingIpChanged(Action.UPDATE, "f1", previous_router_id=r2))
    assert old.sent == []
    assert new.sent[-1] == ("router_updated", [{"router_id": r2, "reason": "floatingip"}])


def test_a_port_of_a_hosted_router_tells_its_agent():
    w = World()
    (a0,) = w.agents(1, L3, prefix="l3-")
    rid = w.router()
    w.reg.bind(ROUTER, rid, a0)
    w.react(PortChanged(Action.CREATE, "p1", "net", device_id=rid))
    assert w.conns[f"{L3}/l3-0"].sent[-1] == ("router_updated",
                                              [{"router_id": rid, "reason": "port"}])


def test_network_auto_schedule_can_be_disabled():
    w = World(network_auto_schedule=False)
    w.agents(1)
    net = w.network()
    w.react(SubnetChanged(Action.CREATE, "s1", net))
    w.reg.reconcile()
    assert not w.hosted(NETWORK, net)
