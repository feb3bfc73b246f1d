"""Build a :class:`~ryu_sched.observability.status.Status` from the running components.

Reads memory only (the registry's agent table, binding maps and timeline, the programmer's
switch table, the RPC endpoint's counters), never the database: a scrape or a page refresh
costs a walk over agents and bindings and nothing else.

What counts:

- an agent is *alive* as the API says (``alive``: its last heartbeat is younger than
  ``agent_down_time``);
- a binding is *live* until the monitor judges its agent dead, which is also when failover
  moves the agent's objects (in the same step); so an object is *unhosted* only when the
  registry could not give it enough agents: none eligible, automatic failover off, or a
  failover that cannot finish;
- objects that scheduling could not place at all have no binding; the placement policy
  remembers them (``under_hosted``) and they appear with no agents.
"""

from __future__ import annotations

from typing import Any

from ryu_sched.observability.status import AgentStatus, Placement, Status, SwitchStatus
from ryu_sched.registry.kinds import SPECS, ObjectFacts
from ryu_sched.registry.registry import Registry


def running_registry(services: Any) -> Registry | None:
    """The registry of the running registry component, if there is one."""
    return getattr(services.registry, "registry", None)


def is_leader(services: Any) -> bool:
    """Does this controller lead? ``services.leadership`` says (alone on its database it
    always does; several on PostgreSQL: the one holding the lease)."""
    role = getattr(services, "leadership", None)
    return True if role is None else bool(role.is_leader)


def build_status(services: Any) -> Status:
    registry = running_registry(services)
    stats = getattr(services.registry, "stats", None)
    return Status(
        agents=_agents(registry) if registry is not None else (),
        placements=_placements(registry) if registry is not None else (),
        switches=_switches(services.programmer),
        agent_down_time=float(services.settings.agent_down_time),
        rpc_connections=int(getattr(stats, "connections_open", 0)),
        rpc_malformed_frames=int(getattr(stats, "malformed_frames", 0)),
        heartbeats=registry.heartbeats if registry is not None else 0,
        leader=is_leader(services),
    )


def _agents(registry: Registry) -> tuple[AgentStatus, ...]:
    now = registry.clock()
    return tuple(
        AgentStatus(id=rec.id, agent_type=rec.agent_type, host=rec.host,
                    availability_zone=rec.availability_zone,
                    alive=registry.is_alive(rec, now), admin_state_up=rec.admin_state_up,
                    heartbeat_age=max(0.0, now - rec.heartbeat),
                    load=registry.load_of(rec.id), datapath_id=rec.datapath_id)
        for rec in sorted(registry.agents, key=lambda r: (r.agent_type, r.host)))


def _placements(registry: Registry) -> tuple[Placement, ...]:
    placements: list[Placement] = []
    ha = registry.placement.ha_objects
    for kind, spec in SPECS.items():
        hosted = registry.bindings.objects(kind)
        for obj_id in sorted(hosted):
            wanted = spec.copies(registry.settings, ObjectFacts(ha=obj_id in ha))
            agent_ids = tuple(a for a, _ in sorted(hosted[obj_id].items(),
                                                   key=lambda item: item[1]))
            live = sum(1 for a in agent_ids
                       if (rec := registry.agents.find(a)) is not None and not rec.judged_dead)
            states: tuple[str, ...] = ()
            if spec.has_roles and obj_id in ha:
                roles = registry.bindings.states_of(kind, obj_id)
                states = tuple(str(roles[a]) for a in agent_ids)
            placements.append(Placement(kind.value, obj_id, agent_ids, live, wanted, states))
        for obj_id in sorted(registry.placement.under_hosted[kind] - hosted.keys()):
            wanted = spec.copies(registry.settings, ObjectFacts(ha=obj_id in ha))
            placements.append(Placement(kind.value, obj_id, (), 0, wanted))
    return tuple(placements)


def _switches(programmer: Any) -> tuple[SwitchStatus, ...]:
    """Connected once its ports and flow table were read and it was brought to a desired
    table; flows: that table (or, before its first sync, what it has installed)."""
    if programmer is None:
        return ()
    return tuple(
        SwitchStatus(dpid=f"{dpid:016x}", connected=bool(state.ready) and _programmed(state),
                     flows=_flows(state))
        for dpid, state in sorted(dict(programmer.switches).items()))


def _programmed(state: Any) -> bool:
    return getattr(state, "in_sync_with", True) is not None


def _flows(state: Any) -> int:
    table = getattr(state, "in_sync_with", None)
    if table is not None:
        return len(table.specs)
    return len(state.installed or ())


def timeline(services: Any, limit: int) -> list[dict[str, Any]]:
    """The registry's recent moves, agent deaths and failovers, newest first."""
    registry = running_registry(services)
    if registry is None:
        return []
    return [entry.to_json() for entry in registry.history.recent(limit)]
