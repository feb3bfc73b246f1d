"""The driver interface and the load bookkeeping shared by the drivers."""

from __future__ import annotations

import abc
import dataclasses
import heapq
from collections.abc import Callable, Iterable, Sequence


@dataclasses.dataclass(frozen=True)
class Candidate:
    """An agent that could host something: a snapshot, not the agent itself."""

    agent_id: str
    host: str = ""
    availability_zone: str | None = None
    load: int = 0
    has_external_port: bool = False


@dataclasses.dataclass(frozen=True)
class Placement:
    """A request to place ``count`` more copies of one object (network or router)."""

    resource_id: str
    count: int = 1
    availability_zone_hints: tuple[str, ...] = ()
    needs_external_port: bool = False
    # Agents that already host the object (or must not get it): never chosen.
    exclude: frozenset[str] = frozenset()
    # Availability zones of the agents already hosting it (for spreading copies).
    hosted_zones: tuple[str | None, ...] = ()


Predicate = Callable[[Candidate], bool]


def meets_requirements(placement: Placement, candidate: Candidate) -> bool:
    """What every driver's filter enforces, and a binding made by hand too: an object that
    needs an external port (a router with a gateway) only goes to an agent that has one."""
    return candidate.has_external_port or not placement.needs_external_port


class LoadPool:
    """Candidates plus their live load, with lazily built least-loaded heaps per group.

    A group is a named subset of candidates (e.g. "those with an external port in az1").
    Heaps hold ``(load, order, agent_id)``; when a load changes a fresh entry is pushed and
    the stale one is discarded when it surfaces, so taking the least loaded agent is
    O(log n) and a batch of placements does not rescan the candidates.
    """

    def __init__(self, candidates: Iterable[Candidate]) -> None:
        self.candidates: dict[str, Candidate] = {}
        self.load: dict[str, int] = {}
        self._order: dict[str, int] = {}
        for order, cand in enumerate(candidates):
            self.candidates[cand.agent_id] = cand
            self.load[cand.agent_id] = cand.load
            self._order[cand.agent_id] = order
        self._heaps: dict[object, list[tuple[int, int, str]]] = {}
        self._members: dict[object, set[str]] = {}

    def __len__(self) -> int:
        return len(self.candidates)

    def members(self, key: object, predicate: Predicate) -> set[str]:
        if key not in self._members:
            members = {a for a, c in self.candidates.items() if predicate(c)}
            heap = [(self.load[a], self._order[a], a) for a in members]
            heapq.heapify(heap)
            self._members[key] = members
            self._heaps[key] = heap
        return self._members[key]

    def least_loaded(self, key: object, predicate: Predicate, count: int,
                     exclude: Iterable[str] = ()) -> list[str]:
        """Up to ``count`` distinct least-loaded members of a group, not in ``exclude``.

        Does not charge the load: the caller calls :meth:`charge` for what it keeps."""
        self.members(key, predicate)
        heap = self._heaps[key]
        excluded = set(exclude)
        chosen: list[str] = []
        kept: list[tuple[int, int, str]] = []
        while heap and len(chosen) < count:
            entry = heapq.heappop(heap)
            load, _order, agent_id = entry
            if load != self.load[agent_id] or agent_id in chosen:
                continue  # stale or duplicate entry
            kept.append(entry)
            if agent_id in excluded:
                continue
            chosen.append(agent_id)
        for entry in kept:
            heapq.heappush(heap, entry)
        return chosen

    def charge(self, agent_id: str, delta: int = 1) -> None:
        self.load[agent_id] += delta
        entry = (self.load[agent_id], self._order[agent_id], agent_id)
        for key, members in self._members.items():
            if agent_id in members:
                heapq.heappush(self._heaps[key], entry)


class SchedulerDriver(abc.ABC):
    """Filter the candidates that can host an object, then choose among them."""

    name = ""

    def can_host(self, placement: Placement, candidate: Candidate) -> bool:
        """The filter: may ``candidate`` host the object at all? Drivers may only narrow it
        (e.g. to the hinted availability zones), never widen :func:`meets_requirements`."""
        return meets_requirements(placement, candidate)

    def filter(self, placement: Placement, candidates: Iterable[Candidate]) -> list[Candidate]:
        return [c for c in candidates
                if c.agent_id not in placement.exclude and self.can_host(placement, c)]

    @abc.abstractmethod
    def choose(self, placement: Placement, pool: LoadPool) -> list[str]:
        """Up to ``placement.count`` distinct agents among the pool's eligible candidates."""

    def schedule(self, placements: Sequence[Placement],
                 candidates: Iterable[Candidate]) -> list[list[str]]:
        """Place many objects at once (result i answers placement i); each choice counts in
        the load seen by the next placements."""
        pool = LoadPool(candidates)
        result: list[list[str]] = []
        for placement in placements:
            if placement.count <= 0 or not len(pool):
                result.append([])
                continue
            chosen = self.choose(placement, pool)
            for agent_id in chosen:
                pool.charge(agent_id)
            result.append(chosen)
        return result

    def select(self, placement: Placement, candidates: Iterable[Candidate]) -> list[str]:
        """Place one object."""
        return self.schedule([placement], candidates)[0]
