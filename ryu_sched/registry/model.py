"""The in-memory record of an agent, and the time formats of the agents table and API."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from ryu_sched.shared.vocabulary import HostedKind


@dataclasses.dataclass(eq=False)
class AgentRecord:
    """One agent as the registry knows it. ``heartbeat`` is wall-clock seconds."""

    id: str
    agent_type: str
    host: str
    binary: str = ""
    topic: str = ""
    availability_zone: str | None = None
    admin_state_up: bool = True
    description: str = ""
    configurations: dict[str, Any] = dataclasses.field(default_factory=dict)
    created_at: float = 0.0
    started_at: float = 0.0
    heartbeat: float = 0.0
    persisted: bool = False
    # Liveness as last judged by the monitor (transitions are logged once).
    judged_dead: bool = False
    # The RPC connection it last reported over (notifications go there).
    conn: Any = None
    # When its gateway was last known silent (Registry.gateway_failed): no candidate for
    # routers until it reports again.
    gateway_failed_at: float = 0.0

    @property
    def kind(self) -> HostedKind:
        return HostedKind.of_agent_type(self.agent_type)

    @property
    def has_external_port(self) -> bool:
        return bool(self.configurations.get("external_port"))

    @property
    def external_link_down(self) -> bool:
        """An L3 agent that reports its external uplink down (``external_link_up: false``):
        no candidate for routers, and its routers move away."""
        return self.configurations.get("external_link_up") is False

    @property
    def datapath_id(self) -> str | None:
        value = self.configurations.get("datapath_id")
        return value if isinstance(value, str) else None


def to_datetime(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).replace(tzinfo=None)


def from_datetime(value: dt.datetime | None) -> float:
    if value is None:
        return 0.0
    return value.replace(tzinfo=dt.UTC).timestamp()


def api_time(seconds: float) -> str:
    """Neutron's timestamp format: ``2024-01-31 12:00:00``."""
    return to_datetime(seconds).strftime("%Y-%m-%d %H:%M:%S")
