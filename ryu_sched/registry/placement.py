"""Placement policy: schedule, evacuate and rebalance, all through the scheduler driver.

The driver of each kind (``network_scheduler_driver``, ``router_scheduler_driver``) is the
one source of "may this agent host that object": its filter (``can_host``: the external-port
rule, plus the availability-zone hints for ``az_aware``) decides for automatic scheduling,
for failover/drain/gateway/link-down moves and for rebalancing alike. Candidates are agents
of the right type that are registered, alive, ``admin_state_up`` and not reporting their
external link down.

Routers' bindings have a role (``ha_state``). An HA router is scheduled to up to
``max_l3_agents_per_router`` agents: the chosen agent with the fewest active routers gets
the active binding, the others standby. When its active binding has to leave an agent (dead,
drained, unfit, its gateway failed) the best live standby is promoted in the same
transaction as the moves (a :class:`Switchover`), and the binding that left is moved to a
replacement agent as a standby. Nothing ever promotes an agent because it came back (no
preemption).

Methods return change records (:class:`BindingChange`, :class:`Move`, :class:`Switchover`)
from the binding store; the registry publishes them.
"""

from __future__ import annotations

import enum
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from ryu_sched.config import Settings
from ryu_sched.db import Database
from ryu_sched.registry.agent_table import AgentTable
from ryu_sched.registry.bindings import BindingChange, BindingStore, Move, Switchover
from ryu_sched.registry.kinds import SPECS, KindSpec, ObjectFacts
from ryu_sched.registry.model import AgentRecord
from ryu_sched.scheduling import (
    Candidate,
    Placement,
    SchedulerDriver,
    get_driver,
    meets_requirements,
)
from ryu_sched.shared.vocabulary import HaState, HostedKind

LOG = logging.getLogger(__name__)

# Rebalance: a move is not undone within this many following moves (no ping-pong).
_RECENT = 8


class Reasons(enum.StrEnum):
    """Why a binding moves (the ``reason`` column of the move log; a switchover of the
    active role is logged as ``switchover:<reason>``)."""

    FAILOVER = "failover"
    DRAIN = "drain"
    REBALANCE = "rebalance"
    GATEWAY = "gateway"
    LINK_DOWN = "link_down"
    MANUAL = "manual"
    # The controller's gateway-health module found the agent's gateway silent.
    GATEWAY_FAILED = "gateway_failed"
    # A router had no active binding (its active one was removed, or it stopped being HA).
    NO_ACTIVE = "no_active"


Planned = tuple[list[Move], list[Switchover]]


class PlacementPolicy:
    def __init__(self, agents: AgentTable, bindings: BindingStore, db: Database,
                 settings: Settings, clock: Callable[[], float]) -> None:
        self.agents = agents
        self.bindings = bindings
        self.db = db
        self.settings = settings
        self.clock = clock
        self.drivers: dict[HostedKind, SchedulerDriver] = {
            kind: get_driver(spec.driver_name(settings)) for kind, spec in SPECS.items()}
        self._unplaceable_logged: set[tuple[HostedKind, str]] = set()
        # Objects that the last scheduling left with fewer agents than wanted (no eligible
        # candidate): the unhosted ones that no binding shows (operators see them).
        self.under_hosted: dict[HostedKind, set[str]] = {kind: set() for kind in SPECS}
        # The HA routers as the last scheduling read them (how many agents each wants).
        self.ha_objects: set[str] = set()

    # --- inputs of the driver -------------------------------------------------------------

    def facts(self, spec: KindSpec, ids: Iterable[str] | None,
              schedulable: bool = True) -> dict[str, ObjectFacts]:
        with self.db.session() as session:
            return spec.facts(session, ids, schedulable)

    def candidates(self, agent_type: str, exclude: Iterable[str] = (),
                   now: float | None = None) -> list[Candidate]:
        now = self.clock() if now is None else now
        excluded = set(exclude)
        limit = now - self.agents.down_time
        return [self.candidate(rec) for rec in self.agents.of_type(agent_type)
                if rec.persisted and rec.admin_state_up and rec.heartbeat > limit
                and rec.heartbeat > rec.gateway_failed_at
                and not rec.external_link_down and rec.id not in excluded]

    def candidate(self, rec: AgentRecord) -> Candidate:
        return Candidate(rec.id, rec.host, rec.availability_zone,
                         self.bindings.load_of(rec.id), rec.has_external_port)

    def request(self, spec: KindSpec, obj_id: str, facts: ObjectFacts, count: int,
                also_exclude: Iterable[str] = ()) -> Placement:
        hosts = self.bindings.hosts_of(spec.kind, obj_id)
        zones = tuple(rec.availability_zone for a in hosts
                      if (rec := self.agents.find(a)) is not None)
        return Placement(obj_id, count, facts.hints, facts.needs_external_port,
                         frozenset(hosts) | frozenset(also_exclude), zones)

    def manual_binding_refusal(self, spec: KindSpec, obj_id: str,
                               rec: AgentRecord) -> str | None:
        """Why the agent may not host the object even by hand (None: it may). A binding by
        hand keeps only the requirements every driver enforces, not a driver's preferences
        (Neutron ignores availability-zone hints there too)."""
        facts = self.facts(spec, [obj_id], schedulable=False).get(obj_id, ObjectFacts())
        if meets_requirements(self.request(spec, obj_id, facts, 1), self.candidate(rec)):
            return None
        return f"it has no external port for the gateway of {spec.kind.value} {obj_id}"

    def _log_unplaceable(self, spec: KindSpec, obj_id: str, n_candidates: int) -> None:
        key = (spec.kind, obj_id)
        if key not in self._unplaceable_logged:
            self._unplaceable_logged.add(key)
            LOG.warning("no eligible %s for %s %s (%d live candidates)",
                        spec.agent_type.value, spec.kind.value, obj_id, n_candidates)

    # --- roles ----------------------------------------------------------------------------

    def best_standby(self, spec: KindSpec, obj_id: str, facts: ObjectFacts,
                     eligible: dict[str, Candidate], active_load: dict[str, int],
                     leaving: Iterable[str] = ()) -> str | None:
        """The binding of the object that should take the active role: a standby on an
        eligible (live, enabled, fit) agent that is not leaving, with the fewest active
        bindings, then the lowest binding_index. None if there is none."""
        gone = set(leaving)
        needs = Placement(obj_id, 1, facts.hints, facts.needs_external_port)
        hosts = self.bindings.hosts_of(spec.kind, obj_id)
        choices = [(active_load.get(a, 0), index, a) for a, index in hosts.items()
                   if a not in gone and a in eligible
                   and self.bindings.state_of(spec.kind, obj_id, a) is HaState.STANDBY
                   and meets_requirements(needs, eligible[a])]
        return min(choices)[2] if choices else None

    def switchover(self, spec: KindSpec, obj_id: str, from_agent: str, to_agent: str,
                   reason: str) -> Switchover:
        old = self.agents.find(from_agent) if from_agent else None
        new = self.agents.find(to_agent) if to_agent else None
        return Switchover(spec.kind, obj_id, from_agent, to_agent, reason,
                          old.host if old else "", new.host if new else "")

    def _active_loads(self, eligible: Iterable[str]) -> dict[str, int]:
        return {a: self.bindings.active_load_of(a) for a in eligible}

    def promotion(self, spec: KindSpec, obj_id: str, leaving: str, reason: str
                  ) -> list[Switchover]:
        """The switchover that gives the object's active role, held by ``leaving`` (an
        agent about to lose the binding), to its best standby; none if it has none or
        ``leaving`` is not active."""
        if self.bindings.state_of(spec.kind, obj_id, leaving) is not HaState.ACTIVE:
            return []
        facts = self.facts(spec, [obj_id], schedulable=False).get(obj_id, ObjectFacts())
        eligible = {c.agent_id: c for c in self.candidates(spec.agent_type,
                                                            exclude=[leaving])}
        best = self.best_standby(spec, obj_id, facts, eligible,
                                 self._active_loads(eligible), [leaving])
        return [self.switchover(spec, obj_id, leaving, best, reason)] if best else []

    # --- scheduling -----------------------------------------------------------------------

    def schedule(self, spec: KindSpec, ids: Iterable[str] | None = None
                 ) -> tuple[list[BindingChange], list[Move], list[Switchover]]:
        """Give every (or each listed) object that is unhosted or under-hosted its agents,
        give a router without an active binding one, and move objects off agents that no
        longer meet the requirements (an agent that lost its external port, or reports its
        external link down)."""
        ids = None if ids is None else list(ids)
        info = self.facts(spec, ids)
        short = self.under_hosted[spec.kind]
        if ids is None:
            short.clear()
        else:
            short.difference_update(ids)
        if spec.has_roles:
            ha = {obj_id for obj_id, facts in info.items() if facts.ha}
            if ids is None:
                self.ha_objects = ha
            else:
                self.ha_objects.difference_update(ids)
                self.ha_objects |= ha
        if not info:
            return [], [], []
        requests: list[Placement] = []
        leaving: dict[str, list[tuple[str, str]]] = defaultdict(list)
        surplus: list[tuple[str, str]] = []
        headless: list[tuple[str, ObjectFacts]] = []
        for obj_id, facts in info.items():
            hosts = self.bindings.hosts_of(spec.kind, obj_id)
            needs = Placement(obj_id, 1, facts.hints, facts.needs_external_port)
            for agent_id in hosts:
                rec = self.agents.find(agent_id)
                if rec is None:
                    continue
                if rec.external_link_down:
                    leaving[Reasons.LINK_DOWN].append((obj_id, agent_id))
                elif not meets_requirements(needs, self.candidate(rec)):
                    leaving[Reasons.GATEWAY].append((obj_id, agent_id))
            want = spec.copies(self.settings, facts)
            if len(hosts) < want:
                requests.append(self.request(spec, obj_id, facts, want - len(hosts)))
            elif spec.exclusive(facts) and len(hosts) > 1:
                surplus += self._surplus(spec, obj_id, hosts)
            if spec.has_roles and hosts and not self.bindings.has_active(spec.kind, obj_id):
                headless.append((obj_id, facts))
        switchovers: list[Switchover] = []
        active_load: dict[str, int] = {}          # filled as needed
        if headless:
            eligible = {c.agent_id: c for c in self.candidates(spec.agent_type)}
            active_load = self._active_loads(eligible)
            for obj_id, facts in headless:
                best = self.best_standby(spec, obj_id, facts, eligible, active_load)
                if best is not None:
                    active_load[best] += 1
                    switchovers.append(self.switchover(spec, obj_id, "", best,
                                                       Reasons.NO_ACTIVE))
        added: list[BindingChange] = []
        if requests or switchovers:
            candidates = self.candidates(spec.agent_type)
            chosen = self.drivers[spec.kind].schedule(requests, candidates)
            pairs = []
            states: dict[tuple[str, str], HaState] = {}
            getting_active = {s.resource_id for s in switchovers}
            for request, agents in zip(requests, chosen, strict=True):
                if len(agents) < request.count:
                    self._log_unplaceable(spec, request.resource_id, len(candidates))
                    short.add(request.resource_id)
                pairs.extend((request.resource_id, a) for a in agents)
                if spec.has_roles and agents:
                    states.update(self._roles_of_new(spec, request.resource_id, agents,
                                                     active_load, getting_active))
            added = self.bindings.bind_many(spec, pairs, switchovers, states)
        moves: list[Move] = []
        switched: list[Switchover] = []
        for reason in (Reasons.GATEWAY, Reasons.LINK_DOWN):
            done, done_switches = self._move_off(spec, leaving.get(reason, []), reason)
            moves += done
            switched += done_switches
        for obj_id, agent_id in surplus:
            added += self.bindings.unbind(spec, obj_id, agent_id, fenced=True)
        return added, moves, switched

    def _roles_of_new(self, spec: KindSpec, obj_id: str, agents: Sequence[str],
                      active_load: dict[str, int], getting_active: set[str]
                      ) -> dict[tuple[str, str], HaState]:
        """Roles of new bindings: all standby if the object has (or is getting) an active
        binding; otherwise the chosen agent with the fewest active bindings (ties: the
        driver's order) is active."""
        states = {(obj_id, a): HaState.STANDBY for a in agents}
        if obj_id in getting_active or self.bindings.has_active(spec.kind, obj_id):
            return states
        for agent_id in agents:
            if agent_id not in active_load:
                active_load[agent_id] = self.bindings.active_load_of(agent_id)
        active = min(agents, key=lambda a: (active_load[a], agents.index(a)))
        active_load[active] += 1
        states[(obj_id, active)] = HaState.ACTIVE
        return states

    def _surplus(self, spec: KindSpec, obj_id: str, hosts: dict[str, int]
                 ) -> list[tuple[str, str]]:
        """A router hosted by several agents that should have one (it stopped being HA):
        the bindings to remove, all but the active one (or, without one, the lowest
        index)."""
        active = self.bindings.active_of(spec.kind, obj_id)
        keep = active[0] if active else min(hosts, key=lambda a: hosts[a])
        return [(obj_id, a) for a in sorted(hosts) if a != keep]

    def _move_off(self, spec: KindSpec, pairs: Sequence[tuple[str, str]],
                  reason: str) -> Planned:
        """Move each (object, agent) binding to another eligible live agent. A router whose
        active binding leaves gets a live standby promoted in the same transaction (the
        binding that leaves then moves as a standby); without one, the active binding moves
        and stays active."""
        if not pairs:
            return [], []
        leaving = {agent_id for _, agent_id in pairs}
        info = self.facts(spec, {obj_id for obj_id, _ in pairs}, schedulable=False)
        grouped: dict[str, list[str]] = defaultdict(list)
        for obj_id, agent_id in pairs:
            grouped[obj_id].append(agent_id)
        candidates = self.candidates(spec.agent_type, exclude=leaving)
        switchovers: list[Switchover] = []
        demoted: set[tuple[str, str]] = set()
        if spec.has_roles:
            eligible = {c.agent_id: c for c in candidates}
            active_load = self._active_loads(eligible)
            for obj_id, origins in grouped.items():
                active = [a for a in origins
                          if self.bindings.state_of(spec.kind, obj_id, a) is HaState.ACTIVE]
                if not active:
                    continue
                best = self.best_standby(spec, obj_id, info.get(obj_id, ObjectFacts()),
                                         eligible, active_load, origins)
                if best is None:
                    continue
                active_load[best] += 1
                switchovers.append(self.switchover(spec, obj_id, active[0], best, reason))
                demoted.add((obj_id, active[0]))
        requests = [self.request(spec, obj_id, info.get(obj_id, ObjectFacts()), len(origins))
                    for obj_id, origins in grouped.items()]
        chosen = self.drivers[spec.kind].schedule(requests, candidates)
        moves = []
        for request, to_agents in zip(requests, chosen, strict=True):
            obj_id = request.resource_id
            from_agents = grouped[obj_id]
            if len(to_agents) < len(from_agents):
                self._log_unplaceable(spec, obj_id, len(candidates))
            # The active binding moves first: if only one target exists, it gets it.
            from_agents = sorted(from_agents, key=lambda a: self._state_after(
                spec, obj_id, a, demoted) is not HaState.ACTIVE)
            for from_agent, to_agent in zip(from_agents, to_agents, strict=False):
                moves.append(self._move(spec, obj_id, from_agent, to_agent, reason,
                                        self._state_after(spec, obj_id, from_agent, demoted)))
        return self.bindings.move_many(moves, switchovers)

    def _state_after(self, spec: KindSpec, obj_id: str, agent_id: str,
                     demoted: set[tuple[str, str]]) -> HaState | None:
        if not spec.has_roles:
            return None
        if (obj_id, agent_id) in demoted:
            return HaState.STANDBY
        return self.bindings.state_of(spec.kind, obj_id, agent_id)

    def _move(self, spec: KindSpec, obj_id: str, from_agent: str, to_agent: str,
              reason: str, state: HaState | None = None) -> Move:
        old, new = self.agents.find(from_agent), self.agents.find(to_agent)
        if state is None and spec.has_roles:
            state = self.bindings.state_of(spec.kind, obj_id, from_agent)
        return Move(spec.kind, obj_id, from_agent, to_agent, reason,
                    old.host if old else "", new.host if new else "", state)

    def move_one(self, spec: KindSpec, obj_id: str, from_agent: str, to_agent: str,
                 reason: str) -> list[Move]:
        """Move one binding as told, with its role (the caller checked that the target may
        host it)."""
        return self.bindings.move_many([self._move(spec, obj_id, from_agent, to_agent,
                                                   reason)])[0]

    def evacuate(self, recs: Iterable[AgentRecord], reason: str) -> Planned:
        """Move everything the given agents host to other live agents (promoting standbys
        of the routers active there)."""
        pairs: dict[HostedKind, list[tuple[str, str]]] = defaultdict(list)
        for rec in recs:
            for obj_id in sorted(self.bindings.hosted_by(rec.id)):
                pairs[rec.kind].append((obj_id, rec.id))
        moves: list[Move] = []
        switchovers: list[Switchover] = []
        for kind, kind_pairs in pairs.items():
            done, switched = self._move_off(SPECS[kind], kind_pairs, reason)
            moves += done
            switchovers += switched
        return moves, switchovers

    def rebalance(self, spec: KindSpec) -> list[Move]:
        """Even out load among the candidates: move from the most loaded to the least loaded
        until they differ by at most one, where the driver's filter allows the move. The
        active binding of an HA router is never moved (its standbys may be)."""
        cands = {c.agent_id: c for c in self.candidates(spec.agent_type)}
        if len(cands) < 2:
            return []
        load = {a: self.bindings.hosted_by(a) for a in cands}
        info = self.facts(spec, set().union(*load.values()), schedulable=False)
        driver = self.drivers[spec.kind]
        stuck: set[str] = set()
        moves: list[Move] = []

        def allowed(obj_id: str, donor: str, receiver: str) -> bool:
            if obj_id in load[receiver] or any(
                    m.resource_id == obj_id and m.to_agent == receiver
                    for m in moves[-_RECENT:]):
                return False
            facts = info.get(obj_id, ObjectFacts())
            if facts.ha and self.bindings.state_of(spec.kind, obj_id,
                                                   donor) is HaState.ACTIVE:
                return False
            request = self.request(spec, obj_id, facts, 1)
            return bool(driver.filter(request, [cands[receiver]]))

        while True:
            donors = [a for a in cands if a not in stuck]
            if not donors:
                break
            donor = max(donors, key=lambda a: (len(load[a]), a))
            moved = False
            for receiver in sorted(cands, key=lambda a: (len(load[a]), a)):
                if len(load[donor]) - len(load[receiver]) <= 1:
                    break
                obj_id = next((o for o in sorted(load[donor]) if allowed(o, donor, receiver)),
                              None)
                if obj_id is None:
                    continue
                moves.append(self._move(spec, obj_id, donor, receiver, Reasons.REBALANCE))
                load[donor].discard(obj_id)
                load[receiver].add(obj_id)
                moved = True
                break
            if not moved:
                stuck.add(donor)
        return self.bindings.move_many(moves)[0]
