"""Placement policy: schedule, evacuate and rebalance, all through the scheduler driver.

The driver of each kind (``network_scheduler_driver``, ``router_scheduler_driver``) is the
one source of "may this agent host that object": its filter (``can_host``: the external-port
rule, plus the availability-zone hints for ``az_aware``) decides for automatic scheduling,
for failover/drain/gateway/link-down moves and for rebalancing alike. Candidates are agents
of the right type that are registered, alive, ``admin_state_up`` and not reporting their
external link down.

Methods return change records (:class:`BindingChange`, :class:`Move`) from the binding store;
the registry publishes them.
"""

from __future__ import annotations

import enum
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

from ryu_sched.config import Settings
from ryu_sched.db import Database
from ryu_sched.registry.agent_table import AgentTable
from ryu_sched.registry.bindings import BindingChange, BindingStore, Move
from ryu_sched.registry.kinds import SPECS, KindSpec, ObjectFacts
from ryu_sched.registry.model import AgentRecord
from ryu_sched.scheduling import (
    Candidate,
    Placement,
    SchedulerDriver,
    get_driver,
    meets_requirements,
)
from ryu_sched.shared.vocabulary import HostedKind

LOG = logging.getLogger(__name__)

# Rebalance: a move is not undone within this many following moves (no ping-pong).
_RECENT = 8


class Reasons(enum.StrEnum):
    """Why a binding moves (the ``reason`` column of the move log)."""

    FAILOVER = "failover"
    DRAIN = "drain"
    REBALANCE = "rebalance"
    GATEWAY = "gateway"
    LINK_DOWN = "link_down"
    MANUAL = "manual"


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

    # --- scheduling -----------------------------------------------------------------------

    def schedule(self, spec: KindSpec, ids: Iterable[str] | None = None
                 ) -> tuple[list[BindingChange], list[Move]]:
        """Give every (or each listed) object that is unhosted or under-hosted its agents,
        and move objects off agents that no longer meet the requirements (an agent that
        lost its external port, or reports its external link down)."""
        ids = None if ids is None else list(ids)
        info = self.facts(spec, ids)
        short = self.under_hosted[spec.kind]
        if ids is None:
            short.clear()
        else:
            short.difference_update(ids)
        if not info:
            return [], []
        want = spec.copies(self.settings)
        requests: list[Placement] = []
        leaving: dict[str, list[tuple[str, str]]] = defaultdict(list)
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
            if len(hosts) < want:
                requests.append(self.request(spec, obj_id, facts, want - len(hosts)))
        added: list[BindingChange] = []
        if requests:
            candidates = self.candidates(spec.agent_type)
            chosen = self.drivers[spec.kind].schedule(requests, candidates)
            pairs = []
            for request, agents in zip(requests, chosen, strict=True):
                if len(agents) < request.count:
                    self._log_unplaceable(spec, request.resource_id, len(candidates))
                    short.add(request.resource_id)
                pairs.extend((request.resource_id, a) for a in agents)
            added = self.bindings.bind_many(spec, pairs)
        moves = [move for reason in (Reasons.GATEWAY, Reasons.LINK_DOWN)
                 for move in self._move_off(spec, leaving.get(reason, []), reason)]
        return added, moves

    def _move_off(self, spec: KindSpec, pairs: Sequence[tuple[str, str]],
                  reason: str) -> list[Move]:
        """Move each (object, agent) binding to another eligible live agent."""
        if not pairs:
            return []
        leaving = {agent_id for _, agent_id in pairs}
        info = self.facts(spec, {obj_id for obj_id, _ in pairs}, schedulable=False)
        grouped: dict[str, list[str]] = defaultdict(list)
        for obj_id, agent_id in pairs:
            grouped[obj_id].append(agent_id)
        requests = [self.request(spec, obj_id, info.get(obj_id, ObjectFacts()), len(origins))
                    for obj_id, origins in grouped.items()]
        candidates = self.candidates(spec.agent_type, exclude=leaving)
        chosen = self.drivers[spec.kind].schedule(requests, candidates)
        moves = []
        for request, to_agents in zip(requests, chosen, strict=True):
            from_agents = grouped[request.resource_id]
            if len(to_agents) < len(from_agents):
                self._log_unplaceable(spec, request.resource_id, len(candidates))
            for from_agent, to_agent in zip(from_agents, to_agents, strict=False):
                moves.append(self._move(spec, request.resource_id, from_agent, to_agent,
                                        reason))
        return self.bindings.move_many(moves)

    def _move(self, spec: KindSpec, obj_id: str, from_agent: str, to_agent: str,
              reason: str) -> Move:
        old, new = self.agents.find(from_agent), self.agents.find(to_agent)
        return Move(spec.kind, obj_id, from_agent, to_agent, reason,
                    old.host if old else "", new.host if new else "")

    def move_one(self, spec: KindSpec, obj_id: str, from_agent: str, to_agent: str,
                 reason: str) -> list[Move]:
        """Move one binding as told (the caller checked that the target may host it)."""
        return self.bindings.move_many([self._move(spec, obj_id, from_agent, to_agent,
                                                   reason)])

    def evacuate(self, recs: Iterable[AgentRecord], reason: str) -> list[Move]:
        """Move everything the given agents host to other live agents."""
        pairs: dict[HostedKind, list[tuple[str, str]]] = defaultdict(list)
        for rec in recs:
            for obj_id in sorted(self.bindings.hosted_by(rec.id)):
                pairs[rec.kind].append((obj_id, rec.id))
        return [move for kind, kind_pairs in pairs.items()
                for move in self._move_off(SPECS[kind], kind_pairs, reason)]

    def rebalance(self, spec: KindSpec) -> list[Move]:
        """Even out load among the candidates: move from the most loaded to the least loaded
        until they differ by at most one, where the driver's filter allows the move."""
        cands = {c.agent_id: c for c in self.candidates(spec.agent_type)}
        if len(cands) < 2:
            return []
        load = {a: self.bindings.hosted_by(a) for a in cands}
        info = self.facts(spec, set().union(*load.values()), schedulable=False)
        driver = self.drivers[spec.kind]
        stuck: set[str] = set()
        moves: list[Move] = []

        def allowed(obj_id: str, receiver: str) -> bool:
            if obj_id in load[receiver] or any(
                    m.resource_id == obj_id and m.to_agent == receiver
                    for m in moves[-_RECENT:]):
                return False
            request = self.request(spec, obj_id, info.get(obj_id, ObjectFacts()), 1)
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
                obj_id = next((o for o in sorted(load[donor]) if allowed(o, receiver)), None)
                if obj_id is None:
                    continue
                moves.append(self._move(spec, obj_id, donor, receiver, Reasons.REBALANCE))
                load[donor].discard(obj_id)
                load[receiver].add(obj_id)
                moved = True
                break
            if not moved:
                stuck.add(donor)
        return self.bindings.move_many(moves)
