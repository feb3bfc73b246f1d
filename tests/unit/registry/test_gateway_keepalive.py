"""``gateway_keepalive``: the leader renews an L3 agent's gateway lease, in memory; a follower
refuses; an authenticated connection renews only its own host's lease."""

from __future__ import annotations

from typing import Any

import pytest

from ryu_sched.registry.agent_access import NotAuthorized
from ryu_sched.registry.agent_rpc import AgentRpc, NotLeading
from ryu_sched.registry.gateway_leases import GatewayLeases
from ryu_sched.resources.agent_scheduler import DhcpPorts
from ryu_sched.rpc.protocol import BadParams, NotFound
from ryu_sched.shared.vocabulary import GatewayRpc
from tests.unit.registry.world import L3, Conn, World


class Ticks:
    def __init__(self) -> None:
        self.now = 10.0

    def __call__(self) -> float:
        return self.now


class Heard:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, float]] = []

    def lease_granted(self, agent_id: str, at: float) -> None:
        self.events.append(("granted", agent_id, at))

    def lease_connection_closed(self, agent_id: str, at: float) -> None:
        self.events.append(("closed", agent_id, at))


class Lab:
    def __init__(self) -> None:
        self.w = World()
        self.ticks = Ticks()
        self.leases = GatewayLeases(self.ticks)
        self.heard = Heard()
        self.leases.listeners.append(self.heard)
        self.rpc = AgentRpc(self.w.reg, DhcpPorts(self.w.services), self.leases)
        self.w.services.leadership._leader = True   # SoleLeadership: leading
        self.g1 = self.w.beat("g1", L3)["agent_id"]
        self.d1 = self.w.beat("d1")["agent_id"]

    def keepalive(self, conn: Any, *params: Any) -> Any:
        return self.rpc.methods()[GatewayRpc.KEEPALIVE](conn, list(params))


@pytest.fixture
def lab() -> Lab:
    return Lab()


def test_the_leader_records_when_it_answered(lab: Lab) -> None:
    conn = Conn()
    assert lab.keepalive(conn, "g1") == {"agent_id": lab.g1}
    lab.ticks.now = 10.1
    lab.keepalive(conn, "g1")
    assert lab.leases.last_granted(lab.g1) == 10.1
    assert lab.heard.events == [("granted", lab.g1, 10.0), ("granted", lab.g1, 10.1)]


def test_a_follower_grants_no_lease(lab: Lab) -> None:
    lab.w.services.leadership._leader = False
    with pytest.raises(NotLeading) as info:
        lab.keepalive(Conn(), "g1")
    assert info.value.as_wire()["type"] == "NotLeading"
    assert lab.leases.last_granted(lab.g1) is None


def test_only_l3_agents_and_well_formed_requests(lab: Lab) -> None:
    with pytest.raises(NotFound):
        lab.keepalive(Conn(), "d1")              # a DHCP agent holds no gateway lease
    with pytest.raises(NotFound):
        lab.keepalive(Conn(), "nowhere")
    for params in ((), ("g1", "x"), (7,)):
        with pytest.raises(BadParams):
            lab.keepalive(Conn(), *params)
    assert len(lab.leases) == 0


def test_an_authenticated_agent_renews_only_its_own_host(lab: Lab) -> None:
    with pytest.raises(NotAuthorized):
        lab.keepalive(Conn(peer_identities=frozenset({"g2"})), "g1")
    assert lab.keepalive(Conn(peer_identities=frozenset({"g1"})), "g1")["agent_id"] == lab.g1


def test_the_close_of_the_lease_connection_is_heard(lab: Lab) -> None:
    main, lease = Conn(), Conn()
    lab.w.reg.report_state(main, {"agent_type": L3, "host": "g1", "configurations": {}})
    lab.keepalive(lease, "g1")
    lab.ticks.now = 11.0
    lab.rpc.connection_closed(main)               # the heartbeat connection: not the lease's
    assert lab.heard.events[-1][0] == "granted"
    assert lab.w.rec("g1", L3).conn is None       # the registry heard it, as before
    lab.rpc.connection_closed(lease)
    assert lab.heard.events[-1] == ("closed", lab.g1, 11.0)
    assert lab.leases.get(lab.g1).conn is None
