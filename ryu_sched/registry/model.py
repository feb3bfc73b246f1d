"""In-memory view of agents, and validation of what agents report."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

from ryu_sched.rpc.protocol import BadParams
from ryu_sched.shared.vocabulary import AgentType, HostedKind

# What each agent type hosts, as the resource names used on the bus and in bindings.
KIND_OF_TYPE: dict[str, str] = {t: HostedKind.of_agent_type(t) for t in AgentType}
TYPE_OF_KIND: dict[str, str] = {k: k.agent_type for k in HostedKind}

_DPID = re.compile(r"^[0-9a-fA-F]{16}$")


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
    conn: Any = None

    @property
    def kind(self) -> str:
        return KIND_OF_TYPE[self.agent_type]

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


def _opt_str(state: dict[str, Any], key: str, limit: int = 255) -> str | None:
    value = state.get(key)
    if value is None:
        return None
    if type(value) is not str or len(value) > limit:
        raise BadParams(f"agent_state.{key} must be a string of at most {limit} characters")
    return value


def validate_configurations(conf: Any) -> dict[str, Any]:
    if conf is None:
        return {}
    if type(conf) is not dict:
        raise BadParams("agent_state.configurations must be a map")
    dpid = conf.get("datapath_id")
    if dpid is not None and (type(dpid) is not str or not _DPID.match(dpid)):
        raise BadParams("configurations.datapath_id must be 16 hex digits")
    ext = conf.get("external_port")
    if ext is not None and type(ext) is not str:
        raise BadParams("configurations.external_port must be a string")
    for key in conf:
        if type(key) is not str:
            raise BadParams("configurations keys must be strings")
    return conf


def validate_state(state: Any) -> dict[str, Any]:
    """Full validation of an ``agent_state`` (first heartbeat, or fields that changed)."""
    if type(state) is not dict:
        raise BadParams("params must be [agent_state] with agent_state a map")
    agent_type = state.get("agent_type")
    if agent_type not in (AgentType.DHCP.value, AgentType.L3.value):
        raise BadParams(f"agent_type must be one of {[t.value for t in AgentType]}")
    host = state.get("host")
    if type(host) is not str or not host or len(host) > 255:
        raise BadParams("agent_state.host must be a non-empty string")
    for key in ("binary", "topic", "availability_zone"):
        _opt_str(state, key)
    start_flag = state.get("start_flag", False)
    if start_flag is not None and type(start_flag) is not bool:
        raise BadParams("agent_state.start_flag must be a boolean")
    validate_configurations(state.get("configurations"))
    return state
