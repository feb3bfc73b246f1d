"""Agents and the agent-scheduler extension (Neutron paths and errors), plus the registry's
admin actions (documented in docs/registry.md):

- ``POST /v2.0/agent-scheduler/rebalance`` body ``{"agent_type": "L3 agent"}`` (optional)
- ``GET  /v2.0/agent-scheduler/moves?agent_id=&resource_id=&limit=`` the binding-move log
- ``GET  /v2.0/agent-scheduler/stats`` RPC endpoint counters and registry figures

Everything here is admin-only, as in Neutron.
"""

from __future__ import annotations

from typing import Any

from ryu_sched import errors
from ryu_sched.api.wsgi import ApiRequest, Route
from ryu_sched.registry.model import AgentRecord, AgentType, api_time
from ryu_sched.registry.registry import (
    AgentNotFound,
    InvalidDHCPAgent,
    InvalidL3Agent,
    Registry,
)
from ryu_sched.resources import networks, routers

AGENT_FIELDS = ("id", "agent_type", "binary", "host", "topic", "alive", "admin_state_up",
                "availability_zone", "configurations", "created_at", "started_at",
                "heartbeat_timestamp", "description", "resources_synced", "load")


def _registry(req: ApiRequest) -> Registry:
    if not req.context.is_admin:
        raise errors.PolicyNotAuthorized(action="get_agent")
    component = req.services.registry
    registry = getattr(component, "registry", None)
    if registry is None:
        raise errors.ServiceUnavailable("The agent registry is not running.")
    return registry  # type: ignore[no-any-return]


def agent_view(registry: Registry, rec: AgentRecord, now: float) -> dict[str, Any]:
    return {
        "id": rec.id, "agent_type": rec.agent_type, "binary": rec.binary, "host": rec.host,
        "topic": rec.topic, "alive": registry.is_alive(rec, now),
        "admin_state_up": rec.admin_state_up, "availability_zone": rec.availability_zone,
        "configurations": rec.configurations, "created_at": api_time(rec.created_at),
        "started_at": api_time(rec.started_at),
        "heartbeat_timestamp": api_time(rec.heartbeat), "description": rec.description,
        "resources_synced": None, "load": registry.load_of(rec.id),
    }


def _select_fields(item: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k in fields} if fields else item


def _matches(item: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    for key, wanted in filters.items():
        if key not in AGENT_FIELDS or key == "configurations":
            continue
        value = item.get(key)
        if isinstance(value, bool):
            value = "true" if value else "false"
            wanted = [w.lower() for w in wanted]
        if str(value) not in wanted and not (value is None and "" in wanted):
            return False
    return True


# --- /v2.0/agents -------------------------------------------------------------------------

def list_agents(req: ApiRequest) -> tuple[int, Any]:
    registry = _registry(req)
    now = registry.clock()
    filters = req.filters()
    items = [agent_view(registry, rec, now) for rec in registry.agents.values()]
    items = [_select_fields(i, req.fields) for i in sorted(items, key=lambda i: (
        i["agent_type"], i["host"])) if _matches(i, filters)]
    return 200, {"agents": items}


def show_agent(req: ApiRequest, id: str) -> tuple[int, Any]:
    registry = _registry(req)
    rec = registry.get(id)
    view = agent_view(registry, rec, registry.clock())
    return 200, {"agent": _select_fields(view, req.fields)}


def update_agent(req: ApiRequest, id: str) -> tuple[int, Any]:
    registry = _registry(req)
    body = req.json_body("agent")
    unknown = set(body) - {"admin_state_up", "description"}
    if unknown:
        raise errors.BadRequest(resource="agent",
                                msg=f"Attributes cannot be updated: {', '.join(sorted(unknown))}")
    admin = body.get("admin_state_up")
    if admin is not None and not isinstance(admin, bool):
        raise errors.InvalidInput(error_message=f"'{admin}' is not a valid boolean value")
    description = body.get("description")
    if description is not None and (not isinstance(description, str)
                                    or len(description) > 1024):
        raise errors.InvalidInput(error_message="description must be a string of at most "
                                                "1024 characters")
    rec = registry.update_agent(id, admin_state_up=admin, description=description)
    _wake(req)
    return 200, {"agent": agent_view(registry, rec, registry.clock())}


def delete_agent(req: ApiRequest, id: str) -> tuple[int, Any]:
    registry = _registry(req)
    registry.delete_agent(id)
    _wake(req)
    return 204, None


def _wake(req: ApiRequest) -> None:
    component = req.services.registry
    if component.registry.reconcile_requested:
        component.request_reconcile()


# --- views of networks and routers ------------------------------------------------------

def _network_views(req: ApiRequest, ids: list[str]) -> list[dict[str, Any]]:
    return networks.list_networks(req.services, req.context, {"id": ids}) if ids else []


def _router_views(req: ApiRequest, ids: list[str]) -> list[dict[str, Any]]:
    return routers.list_routers(req.services, req.context, {"id": ids}) if ids else []


def _require(registry: Registry, kind: str, obj_id: str) -> None:
    if not registry.object_exists(kind, obj_id):
        raise errors.ResourceNotFound("Network" if kind == "network" else "Router", obj_id)


def _agent_of_type(registry: Registry, agent_id: str, agent_type: str,
                   for_binding: bool) -> AgentRecord:
    rec = registry.agents.get(agent_id)
    if rec is None:
        raise AgentNotFound(id=agent_id)
    bad = rec.agent_type != agent_type or (for_binding and not rec.admin_state_up)
    if bad:
        raise (InvalidDHCPAgent if agent_type == AgentType.DHCP else InvalidL3Agent)(id=agent_id)
    return rec


def _body_id(req: ApiRequest, key: str) -> str:
    body = req.json_body()
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise errors.BadRequest(resource="agent", msg=f"'{key}' is required")
    return value


# --- DHCP agent scheduler -----------------------------------------------------------------

def list_dhcp_networks(req: ApiRequest, id: str) -> tuple[int, Any]:
    registry = _registry(req)
    _agent_of_type(registry, id, AgentType.DHCP, for_binding=False)
    return 200, {"networks": _network_views(req, registry.hosted_by(id))}


def add_dhcp_network(req: ApiRequest, id: str) -> tuple[int, Any]:
    registry = _registry(req)
    network_id = _body_id(req, "network_id")
    registry.flush()
    _agent_of_type(registry, id, AgentType.DHCP, for_binding=True)
    _require(registry, "network", network_id)
    registry.bind("network", network_id, id)
    return 201, {}


def remove_dhcp_network(req: ApiRequest, id: str, network_id: str) -> tuple[int, Any]:
    registry = _registry(req)
    _agent_of_type(registry, id, AgentType.DHCP, for_binding=False)
    registry.unbind("network", network_id, id)
    return 204, None


def list_network_dhcp_agents(req: ApiRequest, id: str) -> tuple[int, Any]:
    registry = _registry(req)
    _require(registry, "network", id)
    now = registry.clock()
    return 200, {"agents": [agent_view(registry, rec, now)
                            for rec in registry.agents_hosting("network", id)]}


# --- L3 agent scheduler -------------------------------------------------------------------

def list_l3_routers(req: ApiRequest, id: str) -> tuple[int, Any]:
    registry = _registry(req)
    _agent_of_type(registry, id, AgentType.L3, for_binding=False)
    return 200, {"routers": _router_views(req, registry.hosted_by(id))}


def add_l3_router(req: ApiRequest, id: str) -> tuple[int, Any]:
    registry = _registry(req)
    router_id = _body_id(req, "router_id")
    registry.flush()
    rec = _agent_of_type(registry, id, AgentType.L3, for_binding=True)
    _require(registry, "router", router_id)
    facts = registry.object_info("router", [router_id]).get(router_id)
    if facts is not None and facts.needs_external_port and not rec.has_external_port:
        raise InvalidL3Agent(f"Agent {id} is not a L3 Agent or has been disabled: it has no "
                             f"external port for the gateway of router {router_id}.")
    registry.bind("router", router_id, id)
    return 201, {}


def remove_l3_router(req: ApiRequest, id: str, router_id: str) -> tuple[int, Any]:
    registry = _registry(req)
    _agent_of_type(registry, id, AgentType.L3, for_binding=False)
    registry.unbind("router", router_id, id)
    return 204, None


def list_router_l3_agents(req: ApiRequest, id: str) -> tuple[int, Any]:
    registry = _registry(req)
    _require(registry, "router", id)
    now = registry.clock()
    return 200, {"agents": [agent_view(registry, rec, now)
                            for rec in registry.agents_hosting("router", id)]}


# --- registry admin actions ---------------------------------------------------------------

def rebalance(req: ApiRequest) -> tuple[int, Any]:
    registry = _registry(req)
    agent_type = None
    if req.request.body:
        agent_type = req.json_body().get("agent_type")
        if agent_type is not None and agent_type not in (AgentType.DHCP, AgentType.L3):
            raise errors.InvalidInput(error_message=f"unknown agent_type {agent_type!r}")
    registry.flush()
    moves = registry.rebalance(agent_type)
    return 200, {"moves": [{"resource": m.kind, "resource_id": m.resource_id,
                            "from_agent_id": m.from_agent, "to_agent_id": m.to_agent}
                           for m in moves]}


def list_moves(req: ApiRequest) -> tuple[int, Any]:
    registry = _registry(req)
    query = req.query
    try:
        limit = int(query.get("limit", ["1000"])[0])
    except ValueError:
        raise errors.InvalidInput(error_message="limit must be an integer") from None
    return 200, {"moves": registry.moves(agent_id=query.get("agent_id", [None])[0],
                                         resource_id=query.get("resource_id", [None])[0],
                                         limit=max(1, min(limit, 10000)))}


def show_stats(req: ApiRequest) -> tuple[int, Any]:
    registry = _registry(req)
    component = req.services.registry
    now = registry.clock()
    alive = sum(1 for rec in registry.agents.values() if registry.is_alive(rec, now))
    return 200, {"stats": {
        "rpc": component.stats.as_dict(),
        "agents": len(registry.agents), "alive_agents": alive,
        "heartbeats": registry.heartbeats,
        "monitor_ticks": registry.monitor_ticks,
        "network_bindings": sum(len(h) for h in registry.hosts["network"].values()),
        "router_bindings": sum(len(h) for h in registry.hosts["router"].values()),
    }}


ROUTES = [
    Route("GET", "/v2.0/agents", list_agents),
    Route("GET", "/v2.0/agents/{id}", show_agent),
    Route("PUT", "/v2.0/agents/{id}", update_agent),
    Route("DELETE", "/v2.0/agents/{id}", delete_agent),
    Route("GET", "/v2.0/agents/{id}/dhcp-networks", list_dhcp_networks),
    Route("POST", "/v2.0/agents/{id}/dhcp-networks", add_dhcp_network),
    Route("DELETE", "/v2.0/agents/{id}/dhcp-networks/{network_id}", remove_dhcp_network),
    Route("GET", "/v2.0/networks/{id}/dhcp-agents", list_network_dhcp_agents),
    Route("GET", "/v2.0/agents/{id}/l3-routers", list_l3_routers),
    Route("POST", "/v2.0/agents/{id}/l3-routers", add_l3_router),
    Route("DELETE", "/v2.0/agents/{id}/l3-routers/{router_id}", remove_l3_router),
    Route("GET", "/v2.0/routers/{id}/l3-agents", list_router_l3_agents),
    Route("POST", "/v2.0/agent-scheduler/rebalance", rebalance),
    Route("GET", "/v2.0/agent-scheduler/moves", list_moves),
    Route("GET", "/v2.0/agent-scheduler/stats", show_stats),
]
