"""One read-only snapshot of what the registry and the programmer know, for operators.

The metrics collector and the operator page both read a :class:`Status`; building one touches
only memory (no database), so a scrape or a page refresh every second costs next to nothing.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class AgentStatus:
    id: str
    agent_type: str
    host: str
    availability_zone: str | None
    alive: bool
    admin_state_up: bool
    heartbeat_age: float
    load: int
    datapath_id: str | None = None


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where one network (DHCP agents) or router (L3 agents) is hosted."""

    kind: str
    id: str
    agents: tuple[str, ...]          # agent ids, in binding order
    live_agents: int
    wanted: int
    ha_states: tuple[str, ...] = ()  # per agent, for HA routers ("active" | "standby")

    @property
    def unhosted(self) -> bool:
        return self.live_agents < self.wanted


@dataclasses.dataclass(frozen=True)
class SwitchStatus:
    dpid: str
    connected: bool
    flows: int


@dataclasses.dataclass(frozen=True)
class Status:
    agents: tuple[AgentStatus, ...] = ()
    placements: tuple[Placement, ...] = ()
    switches: tuple[SwitchStatus, ...] = ()
    agent_down_time: float = 0.0
    rpc_connections: int = 0
    rpc_malformed_frames: int = 0
    heartbeats: int = 0
    leader: bool = True

    def unhosted_counts(self) -> dict[str, int]:
        counts = {"network": 0, "router": 0}
        for placement in self.placements:
            if placement.unhosted:
                counts[placement.kind] += 1
        return counts

    def router_active_agents(self) -> dict[str, int]:
        return {p.id: p.live_agents if not p.ha_states else
                sum(1 for s in p.ha_states if s == "active")
                for p in self.placements if p.kind == "router"}

    def to_json(self) -> dict[str, Any]:
        return {
            "agents": [dataclasses.asdict(a) for a in self.agents],
            "placements": [{**dataclasses.asdict(p), "unhosted": p.unhosted}
                           for p in self.placements],
            "switches": [dataclasses.asdict(s) for s in self.switches],
            "agent_down_time": self.agent_down_time,
            "rpc_connections": self.rpc_connections,
            "heartbeats": self.heartbeats, "leader": self.leader,
            "unhosted": self.unhosted_counts(),
        }
