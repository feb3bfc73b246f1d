"""The agent-scheduler service: Neutron's agent and agent-scheduler extensions over the
registry, plus the registry's own actions (rebalance, move log, stats). Admin-only, as in
Neutron. One set of functions serves both hosted kinds (networks on DHCP agents, routers on
L3 agents), parametrised by :class:`~ryu_sched.shared.vocabulary.HostedKind`.

Also :class:`DhcpPorts`: the DHCP-port operations of the agent RPC and the release of the
port an agent used for a network it no longer hosts. The application hands one to the
registry component (the registry does not import this layer, which imports the registry).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from sqlalchemy import select

from ryu_sched import errors
from ryu_sched.db import models
from ryu_sched.leadership import FencedOut
from ryu_sched.registry.bindings import Move
from ryu_sched.registry.kinds import SPECS, KindSpec
from ryu_sched.registry.model import AgentRecord, api_time
from ryu_sched.registry.registry import Registry
from ryu_sched.resources import common, networks, ports, routers
from ryu_sched.resources.context import Context, admin_context
from ryu_sched.resources.validation import ADMIN_STATE, Attr, check_body, to_str
from ryu_sched.services import Services
from ryu_sched.shared.vocabulary import (
    AgentType,
    DeviceOwner,
    HaState,
    HostedKind,
    dhcp_device_id,
)

LOG = logging.getLogger(__name__)

UPDATE_SPEC: dict[str, Attr] = {
    "admin_state_up": ADMIN_STATE,
    "description": Attr(to_str(1024)),
}

# How each kind's objects are shown in the hosting lists: the resource's own list function.
_LISTERS: dict[HostedKind, Callable[..., list[dict[str, Any]]]] = {
    HostedKind.NETWORK: networks.list_networks,
    HostedKind.ROUTER: routers.list_routers,
}


class RegistryHandle(Protocol):
    """What this service needs of the running registry component."""

    registry: Registry
    stats: Any           # RpcStats of the endpoint
    agent_rpc: Any       # AgentRpc: its ``access.refused`` counts unauthorized calls

    def request_reconcile(self) -> None: ...


def _handle(services: Services, context: Context) -> RegistryHandle:
    if not context.is_admin:
        raise errors.PolicyNotAuthorized(action="get_agent")
    component = services.registry
    if getattr(component, "registry", None) is None:
        raise errors.ServiceUnavailable("The agent registry is not running.")
    return component  # type: ignore[no-any-return]


def _registry(services: Services, context: Context) -> Registry:
    return _handle(services, context).registry


def _wake(services: Services, context: Context) -> None:
    """Reconcile at once when a change asked for it (instead of at the next flush)."""
    handle = _handle(services, context)
    if handle.registry.reconcile_requested:
        handle.request_reconcile()


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


# --- agents -------------------------------------------------------------------------------

def _visible_agent(context: Context, agent_id: str) -> None:
    """Neutron's get_agent is admin-only and a show it refuses is 404 (so are update and
    delete, which check visibility first)."""
    if not context.is_admin:
        raise errors.AgentNotFound(id=agent_id)


def list_agents(services: Services, context: Context,
                filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every agent for an admin; none for anyone else (Neutron filters lists by the
    admin-only get_agent rule, item by item: 200 and an empty list)."""
    if not context.is_admin:
        return []
    registry = _registry(services, context)
    wanted = common.normalize_filters(filters)
    wanted.pop("configurations", None)          # a map: not filterable, as in Neutron
    now = registry.clock()
    views = sorted((agent_view(registry, rec, now) for rec in registry.agents),
                   key=lambda view: (view["agent_type"], view["host"]))
    return common.filter_items(views, wanted)


def get_agent(services: Services, context: Context, agent_id: str) -> dict[str, Any]:
    _visible_agent(context, agent_id)
    registry = _registry(services, context)
    return agent_view(registry, registry.agents.get(agent_id), registry.clock())


def update_agent(services: Services, context: Context, agent_id: str,
                 attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Only ``admin_state_up`` and ``description`` may change."""
    _visible_agent(context, agent_id)
    registry = _registry(services, context)
    values = check_body("agent", UPDATE_SPEC, attrs, context, create=False)
    values.pop("project_id", None)
    rec = registry.update_agent(agent_id, admin_state_up=values.get("admin_state_up"),
                                description=values.get("description"))
    _wake(services, context)
    return agent_view(registry, rec, registry.clock())


def delete_agent(services: Services, context: Context, agent_id: str) -> None:
    _visible_agent(context, agent_id)
    registry = _registry(services, context)
    registry.delete_agent(agent_id)
    _wake(services, context)


# --- bindings -----------------------------------------------------------------------------

def _agent_of(registry: Registry, spec: KindSpec, agent_id: str,
              for_binding: bool) -> AgentRecord:
    """The agent, which must be of the kind's type (and enabled, to get a binding)."""
    rec = registry.agents.get(agent_id)
    if rec.agent_type != spec.agent_type or (for_binding and not rec.admin_state_up):
        raise spec.invalid_agent(agent_id)
    return rec


def _require_object(services: Services, spec: KindSpec, obj_id: str) -> None:
    if not common.read(services, lambda session: spec.object_exists(session, obj_id)):
        raise spec.object_not_found(obj_id)


def list_hosted(services: Services, context: Context, kind: HostedKind,
                agent_id: str) -> list[dict[str, Any]]:
    """The networks (routers) a DHCP (L3) agent hosts."""
    registry = _registry(services, context)
    spec = SPECS[kind]
    _agent_of(registry, spec, agent_id, for_binding=False)
    ids = registry.hosted_by(agent_id)
    items = _LISTERS[kind](services, context, {"id": ids}) if ids else []
    if spec.has_roles:
        for item in items:
            state = registry.ha_state(kind, item["id"], agent_id)
            if state is not None:
                item["ha_state"] = str(state)
    return items


def bind(services: Services, context: Context, kind: HostedKind, agent_id: str,
         body: Mapping[str, Any]) -> None:
    """Bind the object named in ``body`` (``{"network_id": ...}``) to the agent by hand."""
    registry = _registry(services, context)
    spec = SPECS[kind]
    obj_id = body.get(spec.id_key)
    if not isinstance(obj_id, str) or not obj_id:
        raise errors.BadRequest(resource="agent", msg=f"'{spec.id_key}' is required")
    registry.flush()                 # a just-registered agent has its row before the binding
    rec = _agent_of(registry, spec, agent_id, for_binding=True)
    _require_object(services, spec, obj_id)
    refusal = registry.placement.manual_binding_refusal(spec, obj_id, rec)
    if refusal:
        raise spec.invalid_agent(agent_id, refusal)
    registry.bind(kind, obj_id, agent_id)


def unbind(services: Services, context: Context, kind: HostedKind, agent_id: str,
           obj_id: str) -> None:
    registry = _registry(services, context)
    _agent_of(registry, SPECS[kind], agent_id, for_binding=False)
    registry.unbind(kind, obj_id, agent_id)


def list_hosting_agents(services: Services, context: Context, kind: HostedKind,
                        obj_id: str) -> list[dict[str, Any]]:
    """The DHCP (L3) agents hosting a network (router)."""
    registry = _registry(services, context)
    spec = SPECS[kind]
    _require_object(services, spec, obj_id)
    now = registry.clock()
    return [_hosting_view(registry, spec, obj_id, rec, now)
            for rec in registry.agents_hosting(kind, obj_id)]


def _hosting_view(registry: Registry, spec: KindSpec, obj_id: str, rec: AgentRecord,
                  now: float) -> dict[str, Any]:
    """An agent hosting the object; for a router with the role of its binding,
    ``ha_state`` (Neutron shows it for HA routers; a router without ha: ``active``)."""
    view = agent_view(registry, rec, now)
    if spec.has_roles:
        state = registry.ha_state(spec.kind, obj_id, rec.id)
        if state is not None:
            view["ha_state"] = str(state)
    return view


def set_active(services: Services, context: Context, router_id: str, agent_id: str,
               body: Mapping[str, Any]) -> dict[str, Any]:
    """``PUT /v2.0/routers/{router_id}/l3-agents/{agent_id}`` ``{"ha_state": "active"}``:
    the router becomes active on that agent (its binding there must exist; the agent must
    be alive), its former active binding standby. The agent, with ``ha_state``."""
    registry = _registry(services, context)
    unknown = sorted(set(body) - {"ha_state"})
    if unknown:
        raise errors.HTTPBadRequest(
            msg="Unrecognized attribute(s) '{}'".format(", ".join(unknown)))
    if body.get("ha_state") != HaState.ACTIVE:
        raise errors.InvalidInput(
            error_message="ha_state must be 'active' (the active role moves to this agent; "
                          "the former active binding becomes standby)")
    spec = SPECS[HostedKind.ROUTER]
    _require_object(services, spec, router_id)
    rec = _agent_of(registry, spec, agent_id, for_binding=False)
    registry.flush()
    registry.set_active(router_id, agent_id)
    return _hosting_view(registry, spec, router_id, rec, registry.clock())


# --- the registry's own actions -----------------------------------------------------------

def rebalance(services: Services, context: Context,
              body: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    registry = _registry(services, context)
    agent_type = (body or {}).get("agent_type")
    if agent_type is not None and agent_type not in tuple(AgentType):
        raise errors.InvalidInput(error_message=f"unknown agent_type {agent_type!r}")
    with _as_leader(services, registry, "Rebalancing"):
        registry.flush()
        moves = registry.rebalance(agent_type)
    return [{"resource": m.kind.value, "resource_id": m.resource_id,
             "from_agent_id": m.from_agent, "to_agent_id": m.to_agent} for m in moves]


@contextlib.contextmanager
def _as_leader(services: Services, registry: Registry, action: str) -> Iterator[None]:
    """Moves of bindings are the leader's (its fence guards them): 503 on a follower, and
    when the leadership is lost midway (nothing of the fenced write committed)."""
    if not registry.leading:
        raise errors.ServiceUnavailable(
            f"{action} runs on the leader controller; this one follows (the lease is held "
            f"by {services.leadership.view().lease_holder or 'nobody'}).")
    try:
        yield
    except FencedOut:
        raise errors.ServiceUnavailable(f"This controller lost the leadership: {action} "
                                        "stopped; what was not done is not done.") from None


def move_view(move: Move) -> dict[str, Any]:
    return {"resource": move.kind.value, "resource_id": move.resource_id,
            "from_agent_id": move.from_agent, "from_host": move.from_host,
            "to_agent_id": move.to_agent, "to_host": move.to_host, "reason": str(move.reason)}


def drain(services: Services, context: Context, agent_id: str) -> list[dict[str, Any]]:
    """Move everything the agent hosts to other eligible live agents now (reason
    ``drain``); what has no eligible agent stays. The moves made."""
    registry = _registry(services, context)
    with _as_leader(services, registry, "Draining"):
        registry.flush()             # just-registered agents are candidates with their rows
        return [move_view(m) for m in registry.drain(agent_id)]


def move(services: Services, context: Context, kind: HostedKind, obj_id: str,
         from_agent_id: str, to_agent_id: str) -> dict[str, Any]:
    """Move one network (router) from one DHCP (L3) agent to another, by hand (reason
    ``manual``). The target must be of the kind's type, enabled, alive, and meet the
    requirements a binding by hand must meet."""
    registry = _registry(services, context)
    spec = SPECS[kind]
    registry.flush()
    _agent_of(registry, spec, from_agent_id, for_binding=False)
    rec = _agent_of(registry, spec, to_agent_id, for_binding=True)
    if not registry.is_alive(rec):
        raise spec.invalid_agent(to_agent_id, "it is not alive")
    _require_object(services, spec, obj_id)
    refusal = registry.placement.manual_binding_refusal(spec, obj_id, rec)
    if refusal:
        raise spec.invalid_agent(to_agent_id, refusal)
    with _as_leader(services, registry, "Moving"):
        moves = registry.move(kind, obj_id, from_agent_id, to_agent_id)
    if not moves:
        raise errors.Conflict(f"{spec.kind.value} {obj_id} changed meanwhile; not moved")
    return move_view(moves[0])


def list_moves(services: Services, context: Context,
               query: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    registry = _registry(services, context)
    try:
        limit = int(query.get("limit", ["1000"])[0])
    except ValueError:
        raise errors.InvalidInput(error_message="limit must be an integer") from None
    return registry.moves(agent_id=query.get("agent_id", [None])[0],
                          resource_id=query.get("resource_id", [None])[0],
                          limit=max(1, min(limit, 10000)))


def stats(services: Services, context: Context) -> dict[str, Any]:
    handle = _handle(services, context)
    registry = handle.registry
    now = registry.clock()
    counters = registry.agents.counters
    return {
        "rpc": handle.stats.as_dict(),
        "agents": len(registry.agents),
        "alive_agents": sum(1 for rec in registry.agents if registry.is_alive(rec, now)),
        "heartbeats": counters.heartbeats,
        "refused_reports": counters.refused_reports,
        "refused_registrations": counters.refused_registrations,
        "dropped_agent_writes": counters.dropped_writes,
        "expired_agents": counters.expired_agents,
        "refused_unauthorized": handle.agent_rpc.access.refused,
        "monitor_ticks": registry.monitor_ticks,
        "leadership": services.leadership.view().as_dict(),
        **({"openflow": services.programmer.summary()}
           if getattr(services.programmer, "summary", None) is not None else {}),
        **{f"{kind.value}_bindings": registry.bindings.count(kind) for kind in SPECS},
    }


# --- DHCP ports of networks that left an agent ---------------------------------------------

class DhcpPorts:
    """DHCP ports through the port service, as admin (see registry.agent_rpc.DhcpPorts)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def ensure(self, network_id: str, host: str, project_id: str) -> dict[str, Any]:
        device_id = dhcp_device_id(network_id, host)
        context = admin_context(project_id)
        existing = ports.list_ports(self.services, context,
                                    {"network_id": [network_id], "device_id": [device_id]})
        if existing:
            return existing[0]
        return ports.create_port(self.services, context, {
            "network_id": network_id, "device_owner": DeviceOwner.DHCP,
            "device_id": device_id, "binding:host_id": host, "name": f"dhcp-{host}",
            "admin_state_up": True}, enforce_quota=False)

    def get(self, port_id: str) -> dict[str, Any]:
        return ports.get_port(self.services, admin_context(), port_id)

    def update(self, port_id: str, attrs: dict[str, Any]) -> dict[str, Any]:
        return ports.update_port(self.services, admin_context(), port_id, attrs)

    def release(self, registry: Registry, network_id: str, host: str) -> int:
        return release_dhcp_port(self.services, registry, network_id, host)


def release_dhcp_port(services: Services, registry: Registry, network_id: str,
                      host: str) -> int:
    """Delete the DHCP port the DHCP agent of ``host`` used for ``network_id`` once the
    network is no longer bound to it (failover, manual unbind, agent deleted): its tap
    becomes an unknown port that the pipeline drops, so a dead agent's dnsmasq stops
    answering. Nothing happens if the network was bound to that agent again meanwhile.
    Returns the number of ports deleted."""
    if registry.hosted_on_host(HostedKind.NETWORK, network_id, host):
        return 0
    port = models.Port
    port_ids = common.read(services, lambda session: list(session.scalars(select(port.id).where(
        port.network_id == network_id, port.device_owner == DeviceOwner.DHCP,
        port.device_id == dhcp_device_id(network_id, host)))))
    deleted = 0
    for port_id in port_ids:
        try:
            ports.delete_port(services, admin_context(), port_id)
        except errors.NotFound:
            continue
        deleted += 1
        LOG.info("deleted DHCP port %s of network %s on %s (no longer hosted there)",
                 port_id, network_id, host)
    return deleted
