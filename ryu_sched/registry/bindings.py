"""Binding rows and their in-memory mirror; the log of moves.

Bindings are rows under unique constraints (primary key (object, agent), unique (object,
binding_index)); the maps here mirror them so that load counts and "who hosts this" are O(1).
Every method commits first and updates memory after, and returns *change records*: it
neither notifies agents nor publishes events (the :class:`~ryu_sched.registry.registry.
Registry` does, from the records).

With several controllers on one database the rows change under us: :meth:`BindingStore.
reload` and :meth:`BindingStore.refresh_object` read them again and return what changed.
The automatic writes (scheduling, failover, rebalancing: the leader's) go through the
``fence`` given at construction, inside their transaction, so that a controller that is no
longer the leader cannot commit them.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ryu_sched import errors
from ryu_sched.db import Database
from ryu_sched.db.registry_models import BindingMove
from ryu_sched.registry.kinds import SPECS, KindSpec
from ryu_sched.registry.model import to_datetime
from ryu_sched.shared.vocabulary import HostedKind

LOG = logging.getLogger(__name__)

_CHUNK = 500


@dataclasses.dataclass(frozen=True)
class BindingChange:
    kind: HostedKind
    object_id: str
    agent_id: str
    bound: bool


@dataclasses.dataclass(frozen=True)
class Move:
    kind: HostedKind
    resource_id: str
    from_agent: str
    to_agent: str
    reason: str
    from_host: str = ""
    to_host: str = ""

    def changes(self) -> tuple[BindingChange, BindingChange]:
        return (BindingChange(self.kind, self.resource_id, self.from_agent, False),
                BindingChange(self.kind, self.resource_id, self.to_agent, True))


def _vacant_index(hosts: Mapping[str, int]) -> int:
    used = set(hosts.values())
    index = 1
    while index in used:
        index += 1
    return index


Fence = Callable[[Session], object]


def _no_fence(session: Session) -> None:
    return None


HostsByObject = dict[str, dict[str, int]]


class BindingStore:
    def __init__(self, db: Database, clock: Callable[[], float],
                 fence: Fence = _no_fence) -> None:
        self.db = db
        self.clock = clock
        self.fence = fence
        # Counts changes made in memory by this store's own writes: a reload that raced
        # with one reads again.
        self._writes = 0
        # kind -> object id -> {agent id: binding_index}; agent id -> object ids it hosts.
        self._hosts: dict[HostedKind, dict[str, dict[str, int]]] = {k: {} for k in SPECS}
        self._hosted: dict[str, set[str]] = defaultdict(set)

    # --- reads ----------------------------------------------------------------------------

    def hosts_of(self, kind: HostedKind, obj_id: str) -> dict[str, int]:
        """``{agent id: binding_index}`` of the agents hosting the object (a copy)."""
        return dict(self._hosts[kind].get(obj_id, {}))

    def is_hosted(self, kind: HostedKind, obj_id: str) -> bool:
        return obj_id in self._hosts[kind]

    def hosted_by(self, agent_id: str) -> set[str]:
        return set(self._hosted.get(agent_id, ()))

    def load_of(self, agent_id: str) -> int:
        return len(self._hosted.get(agent_id, ()))

    def count(self, kind: HostedKind) -> int:
        return sum(len(hosts) for hosts in self._hosts[kind].values())

    def objects(self, kind: HostedKind) -> dict[str, dict[str, int]]:
        """Every hosted object of a kind with its agents (a copy)."""
        return {obj_id: dict(hosts) for obj_id, hosts in self._hosts[kind].items()}

    # --- memory ---------------------------------------------------------------------------

    def _remember(self, kind: HostedKind, obj_id: str, agent_id: str, index: int) -> None:
        self._writes += 1
        self._hosts[kind].setdefault(obj_id, {})[agent_id] = index
        self._hosted[agent_id].add(obj_id)

    def _forget(self, kind: HostedKind, obj_id: str, agent_id: str) -> None:
        self._writes += 1
        hosts = self._hosts[kind].get(obj_id)
        if hosts is not None:
            hosts.pop(agent_id, None)
            if not hosts:
                del self._hosts[kind][obj_id]
        agent_set = self._hosted.get(agent_id)
        if agent_set is not None:
            agent_set.discard(obj_id)

    def load(self) -> None:
        for kind, objects in self._read().items():
            for obj_id, hosts in objects.items():
                for agent_id, index in hosts.items():
                    self._remember(kind, obj_id, agent_id, index)

    def _read(self, kind: HostedKind | None = None, obj_id: str | None = None
              ) -> dict[HostedKind, HostsByObject]:
        """The rows (of one object, with ``kind`` and ``obj_id``) as maps."""
        found: dict[HostedKind, HostsByObject] = {k: {} for k in SPECS}
        with self.db.session() as session:
            for spec in SPECS.values() if kind is None else (SPECS[kind],):
                t = spec.table
                query = select(t.c[spec.object_column], t.c[spec.agent_column],
                               t.c.binding_index)
                if obj_id is not None:
                    query = query.where(t.c[spec.object_column] == obj_id)
                for row_obj, agent_id, index in session.execute(query):
                    found[spec.kind].setdefault(row_obj, {})[agent_id] = index
        return found

    # --- rows changed by another controller -----------------------------------------------

    def reload(self) -> list[BindingChange]:
        """Read every binding again; the differences from memory, now applied."""
        found = self._read_stable(None, None)
        changes: list[BindingChange] = []
        for kind, objects in found.items():
            for obj_id in set(self._hosts[kind]) | set(objects):
                changes += self._replace(kind, obj_id, objects.get(obj_id, {}))
        return changes

    def refresh_object(self, kind: HostedKind, obj_id: str) -> list[BindingChange]:
        """Read one object's bindings again; the differences, now applied."""
        found = self._read_stable(kind, obj_id)
        return self._replace(kind, obj_id, found[kind].get(obj_id, {}))

    def _read_stable(self, kind: HostedKind | None, obj_id: str | None
                     ) -> dict[HostedKind, HostsByObject]:
        """Read; again if one of our own writes changed memory meanwhile (reading yields
        to other green threads), so that a reload never undoes a newer local change."""
        for _ in range(3):
            before = self._writes
            found = self._read(kind, obj_id)
            if self._writes == before:
                return found
        return found

    def _replace(self, kind: HostedKind, obj_id: str, hosts: dict[str, int]
                 ) -> list[BindingChange]:
        old = dict(self._hosts[kind].get(obj_id, {}))
        changes = []
        for agent_id in old.keys() - hosts.keys():
            self._forget(kind, obj_id, agent_id)
            changes.append(BindingChange(kind, obj_id, agent_id, False))
        for agent_id, index in hosts.items():
            if agent_id not in old:
                changes.append(BindingChange(kind, obj_id, agent_id, True))
            if old.get(agent_id) != index:
                self._remember(kind, obj_id, agent_id, index)
        return changes

    def forget_agent(self, agent_id: str) -> list[BindingChange]:
        """The agent was deleted by another controller (its rows with it)."""
        changes = []
        for kind in SPECS:
            for obj_id, hosts in list(self._hosts[kind].items()):
                if agent_id in hosts:
                    self._forget(kind, obj_id, agent_id)
                    changes.append(BindingChange(kind, obj_id, agent_id, False))
        self._hosted.pop(agent_id, None)
        return changes

    def forget_object(self, kind: HostedKind, obj_id: str) -> list[str]:
        """The object was deleted (the database cascaded its bindings): its former agents."""
        self._writes += 1
        hosts = self._hosts[kind].pop(obj_id, {})
        for agent_id in hosts:
            self._hosted.get(agent_id, set()).discard(obj_id)
        return list(hosts)

    # --- changes --------------------------------------------------------------------------

    def bind(self, spec: KindSpec, obj_id: str, agent_id: str,
             fenced: bool = False) -> BindingChange:
        """One binding (by hand, unless ``fenced``): Conflict if it exists (or, exclusive
        kinds, any does)."""
        hosts = self._hosts[spec.kind].get(obj_id, {})
        if agent_id in hosts:
            raise spec.hosted(obj_id, agent_id)
        if spec.exclusive and hosts:
            raise spec.hosted(obj_id, next(iter(hosts)))
        index = _vacant_index(hosts)
        try:
            with self.db.session() as session:
                if fenced:
                    self.fence(session)
                session.execute(insert(spec.table), [{spec.object_column: obj_id,
                                                      spec.agent_column: agent_id,
                                                      "binding_index": index}])
        except IntegrityError:
            raise spec.hosted(obj_id, agent_id) from None
        self._remember(spec.kind, obj_id, agent_id, index)
        return BindingChange(spec.kind, obj_id, agent_id, True)

    def unbind(self, spec: KindSpec, obj_id: str, agent_id: str) -> BindingChange:
        if agent_id not in self._hosts[spec.kind].get(obj_id, {}):
            raise spec.not_hosted(obj_id, agent_id)
        t = spec.table
        with self.db.session() as session:
            session.execute(delete(t).where(t.c[spec.object_column] == obj_id,
                                            t.c[spec.agent_column] == agent_id))
        self._forget(spec.kind, obj_id, agent_id)
        return BindingChange(spec.kind, obj_id, agent_id, False)

    def drop_agent(self, spec: KindSpec, agent_id: str,
                   fenced: bool = False) -> list[BindingChange]:
        """Delete every binding of an agent (before the agent itself is deleted)."""
        objects = sorted(self._hosted.get(agent_id, ()))
        t = spec.table
        with self.db.session() as session:
            if fenced:
                self.fence(session)
            session.execute(delete(t).where(t.c[spec.agent_column] == agent_id))
        for obj_id in objects:
            self._forget(spec.kind, obj_id, agent_id)
        self._hosted.pop(agent_id, None)
        return [BindingChange(spec.kind, obj_id, agent_id, False) for obj_id in objects]

    def bind_many(self, spec: KindSpec, pairs: Sequence[tuple[str, str]]
                  ) -> list[BindingChange]:
        """Bind (object, agent) pairs in one fenced transaction; duplicates mean "already
        done"."""
        rows = []
        planned: dict[str, dict[str, int]] = {}
        for obj_id, agent_id in pairs:
            current = {**self._hosts[spec.kind].get(obj_id, {}), **planned.get(obj_id, {})}
            if agent_id in current:
                continue
            index = _vacant_index(current)
            planned.setdefault(obj_id, {})[agent_id] = index
            rows.append({spec.object_column: obj_id, spec.agent_column: agent_id,
                         "binding_index": index})
        if not rows:
            return []
        try:
            with self.db.session() as session:
                self.fence(session)
                for start in range(0, len(rows), _CHUNK):
                    session.execute(insert(spec.table), rows[start:start + _CHUNK])
        except IntegrityError:
            # Someone bound some of these meanwhile (or an object vanished): one by one.
            done = []
            for row in rows:
                try:
                    done.append(self.bind(spec, row[spec.object_column],
                                          row[spec.agent_column], fenced=True))
                except (errors.Conflict, errors.NotFound, IntegrityError):
                    pass
            return done
        changes = []
        for row in rows:
            obj_id, agent_id = row[spec.object_column], row[spec.agent_column]
            self._remember(spec.kind, obj_id, agent_id, row["binding_index"])
            changes.append(BindingChange(spec.kind, obj_id, agent_id, True))
        return changes

    def move_many(self, moves: Sequence[Move]) -> list[Move]:
        """Move bindings (keeping binding_index) and log each move, in one fenced
        transaction; the moves done."""
        if not moves:
            return []
        by_kind: dict[HostedKind, list[Move]] = defaultdict(list)
        for move in moves:
            by_kind[move.kind].append(move)
        now = to_datetime(self.clock())
        try:
            with self.db.session() as session:
                self.fence(session)
                for kind, kind_moves in by_kind.items():
                    spec = SPECS[kind]
                    t = spec.table
                    session.execute(
                        delete(t).where(t.c[spec.object_column] == bindparam("b_obj"),
                                        t.c[spec.agent_column] == bindparam("b_agent")),
                        [{"b_obj": m.resource_id, "b_agent": m.from_agent} for m in kind_moves])
                    rows = [{spec.object_column: m.resource_id, spec.agent_column: m.to_agent,
                             "binding_index": self._hosts[kind][m.resource_id][m.from_agent]}
                            for m in kind_moves]
                    for start in range(0, len(rows), _CHUNK):
                        session.execute(insert(t), rows[start:start + _CHUNK])
                log_rows = [{"created_at": now, "resource": m.kind.value,
                             "resource_id": m.resource_id, "from_agent_id": m.from_agent,
                             "from_host": m.from_host, "to_agent_id": m.to_agent,
                             "to_host": m.to_host, "reason": str(m.reason)} for m in moves]
                for start in range(0, len(log_rows), _CHUNK):
                    session.execute(insert(BindingMove), log_rows[start:start + _CHUNK])
        except IntegrityError:
            LOG.warning("batched move conflicted; moving one by one")
            if len(moves) == 1:
                return []
            return [done for m in moves for done in self.move_many([m])]
        for move in moves:
            index = self._hosts[move.kind][move.resource_id][move.from_agent]
            self._forget(move.kind, move.resource_id, move.from_agent)
            self._remember(move.kind, move.resource_id, move.to_agent, index)
            LOG.info("moved %s %s from %s to %s (%s)", move.kind.value, move.resource_id,
                     move.from_host or move.from_agent, move.to_host, move.reason)
        return list(moves)

    def moves_log(self, agent_id: str | None = None, resource_id: str | None = None,
                  limit: int = 1000) -> list[dict[str, Any]]:
        query = select(BindingMove).order_by(BindingMove.id.desc()).limit(limit)
        if agent_id:
            query = query.where((BindingMove.from_agent_id == agent_id)
                                | (BindingMove.to_agent_id == agent_id))
        if resource_id:
            query = query.where(BindingMove.resource_id == resource_id)
        with self.db.session() as session:
            return [{"id": m.id, "created_at": m.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                     "resource": m.resource, "resource_id": m.resource_id,
                     "from_agent_id": m.from_agent_id, "from_host": m.from_host,
                     "to_agent_id": m.to_agent_id, "to_host": m.to_host, "reason": m.reason}
                    for m in session.scalars(query)]
