"""Availability zones (Neutron's ``availability_zone``): the zones the agents report, per
resource they host: ``network`` for DHCP agents, ``router`` for L3 agents. A zone is
``available`` while one of its agents of that type is alive and enabled, ``unavailable``
otherwise. Readable by every user, as in Neutron."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from ryu_sched import errors
from ryu_sched.resources import agent_scheduler, common
from ryu_sched.resources.context import Context, admin_context
from ryu_sched.services import Services
from ryu_sched.shared.vocabulary import AgentType, HostedKind

FILTERS = frozenset({"name", "resource", "state"})
#: The names openstacksdk filters by: ``availability_zone`` for ``name``, ``agent_type`` for
#: ``resource`` (an agent type or a resource name).
ALIASES = {"availability_zone": "name", "agent_type": "resource"}


class ZoneState(enum.StrEnum):
    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"


def list_availability_zones(services: Services, context: Context,
                            filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    wanted: dict[str, list[str]] = {}
    for key, values in common.normalize_filters(filters).items():
        if key == "agent_type":
            values = [HostedKind.of_agent_type(v).value
                      if v in (AgentType.DHCP, AgentType.L3) else v for v in values]
        wanted.setdefault(ALIASES.get(key, key), []).extend(values)
    unknown = sorted(set(wanted) - FILTERS)
    if unknown:
        raise errors.HTTPBadRequest(
            msg="[{}] is invalid attribute for filtering".format(", ".join(unknown)))
    try:
        agents = agent_scheduler.list_agents(services, admin_context())
    except errors.ServiceUnavailable:
        agents = []
    zones: dict[tuple[str, str], bool] = {}
    for agent in agents:
        if not agent.get("availability_zone"):
            continue
        resource = HostedKind.of_agent_type(agent["agent_type"]).value
        key = (agent["availability_zone"], resource)
        zones[key] = zones.get(key, False) or bool(agent["alive"]
                                                   and agent["admin_state_up"])
    items = [{"name": name, "resource": resource,
              "state": str(ZoneState.AVAILABLE if up else ZoneState.UNAVAILABLE)}
             for (name, resource), up in sorted(zones.items())]
    return common.filter_items(items, wanted)
