"""`/v2.0/agents`, the agent-scheduler extension and the registry's admin actions: thin
handlers over :mod:`ryu_sched.resources.agent_scheduler` (documented in docs/registry.md).

The DHCP (networks) and L3 (routers) routes are one handler shape, parametrised by kind.
"""

from __future__ import annotations

from typing import Any

from ryu_sched.api.wsgi import ApiRequest, Route, page_response
from ryu_sched.resources import agent_scheduler as service
from ryu_sched.resources import common, listing
from ryu_sched.shared.vocabulary import HostedKind


def list_agents(req: ApiRequest) -> tuple[int, Any]:
    return 200, page_response(req, "agents", lambda query, finish: listing.page_items(
        service.list_agents(req.services, req.context, query.filters), query, finish))


def show_agent(req: ApiRequest, id: str) -> tuple[int, Any]:
    item = service.get_agent(req.services, req.context, id)
    return 200, {"agent": common.select_fields(item, req.fields)}


def update_agent(req: ApiRequest, id: str) -> tuple[int, Any]:
    return 200, {"agent": service.update_agent(req.services, req.context, id,
                                               req.json_body("agent"))}


def delete_agent(req: ApiRequest, id: str) -> tuple[int, Any]:
    service.delete_agent(req.services, req.context, id)
    return 204, None


def hosted_routes(kind: HostedKind, hosted_path: str, hosting_path: str) -> list[Route]:
    """``/agents/{id}/<hosted_path>[/{object_id}]`` and ``/<kind>s/{id}/<hosting_path>``."""
    plural = f"{kind.value}s"

    def list_hosted(req: ApiRequest, id: str) -> tuple[int, Any]:
        return 200, {plural: service.list_hosted(req.services, req.context, kind, id)}

    def bind(req: ApiRequest, id: str) -> tuple[int, Any]:
        service.bind(req.services, req.context, kind, id, req.json_body())
        return 201, {}

    def unbind(req: ApiRequest, id: str, object_id: str) -> tuple[int, Any]:
        service.unbind(req.services, req.context, kind, id, object_id)
        return 204, None

    def list_hosting(req: ApiRequest, id: str) -> tuple[int, Any]:
        return 200, {"agents": service.list_hosting_agents(req.services, req.context, kind,
                                                           id)}

    return [
        Route("GET", f"/v2.0/agents/{{id}}/{hosted_path}", list_hosted),
        Route("POST", f"/v2.0/agents/{{id}}/{hosted_path}", bind),
        Route("DELETE", f"/v2.0/agents/{{id}}/{hosted_path}/{{object_id}}", unbind),
        Route("GET", f"/v2.0/{plural}/{{id}}/{hosting_path}", list_hosting),
    ]


def set_active(req: ApiRequest, id: str, agent_id: str) -> tuple[int, Any]:
    """Ours: move a router's active role to one of its L3 agents."""
    return 200, {"agent": service.set_active(req.services, req.context, id, agent_id,
                                             req.json_body())}


def rebalance(req: ApiRequest) -> tuple[int, Any]:
    body = req.json_body() if req.request.body else None
    return 200, {"moves": service.rebalance(req.services, req.context, body)}


def list_moves(req: ApiRequest) -> tuple[int, Any]:
    return 200, {"moves": service.list_moves(req.services, req.context, req.query)}


def show_stats(req: ApiRequest) -> tuple[int, Any]:
    return 200, {"stats": service.stats(req.services, req.context)}


ROUTES = [
    Route("GET", "/v2.0/agents", list_agents),
    Route("GET", "/v2.0/agents/{id}", show_agent),
    Route("PUT", "/v2.0/agents/{id}", update_agent, action="update_agent",
          target=show_agent),
    Route("DELETE", "/v2.0/agents/{id}", delete_agent, action="delete_agent",
          target=show_agent),
    *hosted_routes(HostedKind.NETWORK, "dhcp-networks", "dhcp-agents"),
    *hosted_routes(HostedKind.ROUTER, "l3-routers", "l3-agents"),
    Route("PUT", "/v2.0/routers/{id}/l3-agents/{agent_id}", set_active),
    Route("POST", "/v2.0/agent-scheduler/rebalance", rebalance),
    Route("GET", "/v2.0/agent-scheduler/moves", list_moves),
    Route("GET", "/v2.0/agent-scheduler/stats", show_stats),
]
