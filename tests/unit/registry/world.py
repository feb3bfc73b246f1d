"""A registry against an in-memory SQLite database, with a hand-driven clock and fake agent
connections (which may carry ``peer_identities`` as a TLS-authenticated one does)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ryu_sched.config import Settings
from ryu_sched.db import Database, models
from ryu_sched.events import Event
from ryu_sched.registry.reactions import Reactions
from ryu_sched.registry.registry import Registry
from ryu_sched.resources.agent_scheduler import release_dhcp_port
from ryu_sched.services import Services
from ryu_sched.shared.vocabulary import AgentType, HostedKind

DHCP, L3 = AgentType.DHCP.value, AgentType.L3.value
NETWORK, ROUTER = HostedKind.NETWORK, HostedKind.ROUTER


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Conn:
    def __init__(self, peer_identities: frozenset[str] | None = None) -> None:
        self.agent_ids: set[str] = set()
        self.sent: list[tuple[str, list[Any]]] = []
        if peer_identities is not None:
            self.peer_identities = peer_identities

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
        self.reactions = Reactions(self.reg)
        self.conns: dict[str, Conn] = {}
        self._seg = 100

    # --- agents ---------------------------------------------------------------------------

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

    def rec(self, host: str, agent_type: str = DHCP) -> Any:
        return self.reg.agents.lookup(agent_type, host)

    # --- objects --------------------------------------------------------------------------

    def network(self, dhcp: bool = True, hints: tuple[str, ...] = ()) -> str:
        self._seg += 1
        with self.db.session() as s:
            net = models.Network(name="n", segmentation_id=self._seg,
                                 physical_network="physnet1",
                                 availability_zone_hints=list(hints))
            s.add(net)
            s.flush()
            s.add(models.Subnet(network_id=net.id, cidr="10.0.0.0/24", enable_dhcp=dhcp,
                                gateway_ip="10.0.0.1",
                                allocation_pools=[{"start": "10.0.0.2", "end": "10.0.0.254"}]))
            return net.id

    def router(self, gateway: bool = False, hints: tuple[str, ...] = (),
               ha: bool = False) -> str:
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
            rtr = models.Router(name="r", gw_port_id=gw, availability_zone_hints=list(hints),
                                ha=ha)
            s.add(rtr)
            s.flush()
            return rtr.id

    # --- observations ---------------------------------------------------------------------

    def hosts(self, kind: HostedKind | str, obj_id: str) -> dict[str, int]:
        return self.reg.bindings.hosts_of(HostedKind(kind), obj_id)

    def hosted(self, kind: HostedKind | str, obj_id: str) -> bool:
        return self.reg.bindings.is_hosted(HostedKind(kind), obj_id)

    def roles(self, router_id: str) -> dict[str, str]:
        """``{host: ha_state}`` of a router's bindings, as the database has them (checked
        against memory)."""
        with self.db.session() as s:
            rows = s.execute(select(models.RouterL3AgentBinding.l3_agent_id,
                                    models.RouterL3AgentBinding.ha_state).where(
                models.RouterL3AgentBinding.router_id == router_id)).all()
        in_db = {agent_id: state for agent_id, state in rows}
        in_memory = {a: str(state) for a, state in
                     self.reg.bindings.states_of(ROUTER, router_id).items()}
        assert in_db == in_memory, (in_db, in_memory)
        return {self.reg.agents.find(a).host: state for a, state in in_db.items()}

    def react(self, event: Event) -> None:
        self.reactions.handle(event)

    def release_dhcp_port(self, network_id: str, host: str) -> int:
        return release_dhcp_port(self.services, self.reg, network_id, host)

    def db_bindings(self, kind: HostedKind | str = NETWORK) -> list[tuple[str, str]]:
        model = models.NetworkDhcpAgentBinding if kind == NETWORK else \
            models.RouterL3AgentBinding
        cols = (model.network_id, model.dhcp_agent_id) if kind == NETWORK else \
            (model.router_id, model.l3_agent_id)
        with self.db.session() as s:
            return sorted(tuple(r) for r in s.execute(select(*cols)))
