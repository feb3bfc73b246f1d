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

Router bindings have a role, ``ha_state``: at most one ``active`` per router (a partial
unique index in the database guarantees it), the others ``standby``. A :class:`Switchover`
passes the active role from one binding to another; every transaction applies its role
changes in an order that never holds two active bindings of one router: demotions, then
deletions, then promotions, then insertions.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ryu_sched import errors
from ryu_sched.db import Database
from ryu_sched.db.registry_models import BindingMove
from ryu_sched.registry.kinds import SPECS, KindSpec
from ryu_sched.registry.model import to_datetime
from ryu_sched.shared.vocabulary import HaState, HostedKind

LOG = logging.getLogger(__name__)

_CHUNK = 500


@dataclasses.dataclass(frozen=True)
class BindingChange:
    kind: HostedKind
    object_id: str
    agent_id: str
    bound: bool
    # Kinds with roles (routers): the role of the binding after the change (None: unbound,
    # or a kind without roles). A change with ``bound`` true of an existing binding is a
    # change of its role.
    ha_state: HaState | None = None
    # Only the role of an existing binding changed.
    role_only: bool = False


@dataclasses.dataclass(frozen=True)
class Move:
    kind: HostedKind
    resource_id: str
    from_agent: str
    to_agent: str
    reason: str
    from_host: str = ""
    to_host: str = ""
    # The role the binding keeps on its new agent (kinds with roles).
    ha_state: HaState | None = None

    @property
    def log_reason(self) -> str:
        return str(self.reason)

    def changes(self) -> tuple[BindingChange, ...]:
        return (BindingChange(self.kind, self.resource_id, self.from_agent, False),
                BindingChange(self.kind, self.resource_id, self.to_agent, True,
                              self.ha_state))


@dataclasses.dataclass(frozen=True)
class Switchover:
    """The active role of a router passes from the binding of ``from_agent`` ("": none had
    it) to that of ``to_agent`` ("": nobody gets it, a demotion). Both bindings stay."""

    kind: HostedKind
    resource_id: str
    from_agent: str
    to_agent: str
    reason: str
    from_host: str = ""
    to_host: str = ""

    @property
    def log_reason(self) -> str:
        """In the move log and the metrics: ``switchover:<why>``."""
        return f"switchover:{self.reason}"

    def changes(self) -> tuple[BindingChange, ...]:
        changes = []
        if self.from_agent:
            changes.append(BindingChange(self.kind, self.resource_id, self.from_agent, True,
                                         HaState.STANDBY, role_only=True))
        if self.to_agent:
            changes.append(BindingChange(self.kind, self.resource_id, self.to_agent, True,
                                         HaState.ACTIVE, role_only=True))
        return tuple(changes)


def _vacant_index(hosts: Mapping[str, int]) -> int:
    used = set(hosts.values())
    index = 1
    while index in used:
        index += 1
    return index


Fence = Callable[[Session], object]


def _no_fence(session: Session) -> None:
    return None


# object id -> {agent id: (binding_index, ha_state or None)}
HostsByObject = dict[str, dict[str, tuple[int, HaState | None]]]
Logged = Move | Switchover


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
        # Kinds with roles: object id -> agents whose binding is standby (absent: active);
        # agent id -> how many standby bindings it holds.
        self._standby: dict[HostedKind, dict[str, set[str]]] = {k: {} for k in SPECS}
        self._standby_load: dict[str, int] = defaultdict(int)

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

    def active_load_of(self, agent_id: str) -> int:
        """Bindings of the agent that are active (a DHCP agent's: all)."""
        return self.load_of(agent_id) - self._standby_load.get(agent_id, 0)

    def count(self, kind: HostedKind) -> int:
        return sum(len(hosts) for hosts in self._hosts[kind].values())

    def objects(self, kind: HostedKind) -> dict[str, dict[str, int]]:
        """Every hosted object of a kind with its agents (a copy)."""
        return {obj_id: dict(hosts) for obj_id, hosts in self._hosts[kind].items()}

    def state_of(self, kind: HostedKind, obj_id: str, agent_id: str) -> HaState | None:
        """The role of one binding (None: no such binding, or a kind without roles)."""
        if not SPECS[kind].has_roles or agent_id not in self._hosts[kind].get(obj_id, {}):
            return None
        standby = self._standby[kind].get(obj_id, ())
        return HaState.STANDBY if agent_id in standby else HaState.ACTIVE

    def states_of(self, kind: HostedKind, obj_id: str) -> dict[str, HaState]:
        """``{agent id: ha_state}`` of the object's bindings (empty for kinds without
        roles)."""
        if not SPECS[kind].has_roles:
            return {}
        standby = self._standby[kind].get(obj_id, set())
        return {agent_id: HaState.STANDBY if agent_id in standby else HaState.ACTIVE
                for agent_id in self._hosts[kind].get(obj_id, {})}

    def has_active(self, kind: HostedKind, obj_id: str) -> bool:
        """Has the object an active binding? (Kinds without roles: is it hosted?)"""
        hosts = self._hosts[kind].get(obj_id, {})
        return len(hosts) > len(self._standby[kind].get(obj_id, ()))

    def active_of(self, kind: HostedKind, obj_id: str) -> list[str]:
        """The agents whose binding of the object is active (at most one for a router)."""
        return [a for a, state in self.states_of(kind, obj_id).items()
                if state is HaState.ACTIVE]

    # --- memory ---------------------------------------------------------------------------

    def _remember(self, kind: HostedKind, obj_id: str, agent_id: str, index: int,
                  state: HaState | None = None) -> None:
        self._writes += 1
        self._hosts[kind].setdefault(obj_id, {})[agent_id] = index
        self._hosted[agent_id].add(obj_id)
        self._set_state(kind, obj_id, agent_id, state or HaState.ACTIVE)

    def _set_state(self, kind: HostedKind, obj_id: str, agent_id: str,
                   state: HaState) -> None:
        if not SPECS[kind].has_roles:
            return
        self._writes += 1
        standby = self._standby[kind]
        if state is HaState.STANDBY:
            agents = standby.setdefault(obj_id, set())
            if agent_id not in agents:
                agents.add(agent_id)
                self._standby_load[agent_id] += 1
            return
        agents = standby.get(obj_id)
        if agents is not None and agent_id in agents:
            agents.discard(agent_id)
            self._standby_load[agent_id] -= 1
            if not agents:
                del standby[obj_id]

    def _forget(self, kind: HostedKind, obj_id: str, agent_id: str) -> None:
        self._writes += 1
        self._set_state(kind, obj_id, agent_id, HaState.ACTIVE)
        hosts = self._hosts[kind].get(obj_id)
        if hosts is not None:
            hosts.pop(agent_id, None)
            if not hosts:
                del self._hosts[kind][obj_id]
        agent_set = self._hosted.get(agent_id)
        if agent_set is not None:
            agent_set.discard(obj_id)

    def _switch(self, switchover: Switchover) -> None:
        hosts = self._hosts[switchover.kind].get(switchover.resource_id, {})
        if switchover.from_agent in hosts:
            self._set_state(switchover.kind, switchover.resource_id, switchover.from_agent,
                            HaState.STANDBY)
        if switchover.to_agent in hosts:
            self._set_state(switchover.kind, switchover.resource_id, switchover.to_agent,
                            HaState.ACTIVE)

    def load(self) -> None:
        for kind, objects in self._read().items():
            for obj_id, hosts in objects.items():
                for agent_id, (index, state) in hosts.items():
                    self._remember(kind, obj_id, agent_id, index, state)

    def _read(self, kind: HostedKind | None = None, obj_id: str | None = None
              ) -> dict[HostedKind, HostsByObject]:
        """The rows (of one object, with ``kind`` and ``obj_id``) as maps."""
        found: dict[HostedKind, HostsByObject] = {k: {} for k in SPECS}
        with self.db.session() as session:
            for spec in SPECS.values() if kind is None else (SPECS[kind],):
                t = spec.table
                columns = [t.c[spec.object_column], t.c[spec.agent_column],
                           t.c.binding_index]
                if spec.has_roles:
                    columns.append(t.c.ha_state)
                query = select(*columns)
                if obj_id is not None:
                    query = query.where(t.c[spec.object_column] == obj_id)
                for row in session.execute(query):
                    state = _state(row[3]) if spec.has_roles else None
                    found[spec.kind].setdefault(row[0], {})[row[1]] = (row[2], state)
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

    def _replace(self, kind: HostedKind, obj_id: str,
                 hosts: dict[str, tuple[int, HaState | None]]) -> list[BindingChange]:
        old = dict(self._hosts[kind].get(obj_id, {}))
        old_states = self.states_of(kind, obj_id)
        changes = []
        for agent_id in old.keys() - hosts.keys():
            self._forget(kind, obj_id, agent_id)
            changes.append(BindingChange(kind, obj_id, agent_id, False))
        for agent_id, (index, state) in hosts.items():
            if agent_id not in old or old_states.get(agent_id) != state:
                changes.append(BindingChange(kind, obj_id, agent_id, True, state,
                                             role_only=agent_id in old))
            if old.get(agent_id) != index or old_states.get(agent_id) != state:
                self._remember(kind, obj_id, agent_id, index, state)
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
        self._standby_load.pop(agent_id, None)
        return changes

    def forget_object(self, kind: HostedKind, obj_id: str) -> list[str]:
        """The object was deleted (the database cascaded its bindings): its former agents."""
        self._writes += 1
        for agent_id in self._standby[kind].pop(obj_id, set()):
            self._standby_load[agent_id] -= 1
        hosts = self._hosts[kind].pop(obj_id, {})
        for agent_id in hosts:
            self._hosted.get(agent_id, set()).discard(obj_id)
        return list(hosts)

    # --- writing roles --------------------------------------------------------------------

    def _roles(self, session: Session, switchovers: Sequence[Switchover],
               state: HaState) -> None:
        """Demote (``state`` standby: the ``from_agent`` bindings) or promote (the
        ``to_agent`` ones) in one statement per kind."""
        for kind in {s.kind for s in switchovers}:
            spec = SPECS[kind]
            t = spec.table
            params = [{"b_obj": s.resource_id,
                       "b_agent": s.from_agent if state is HaState.STANDBY else s.to_agent}
                      for s in switchovers if s.kind == kind]
            params = [p for p in params if p["b_agent"]]
            if params:
                session.execute(
                    update(t).where(t.c[spec.object_column] == bindparam("b_obj"),
                                    t.c[spec.agent_column] == bindparam("b_agent"))
                    .values(ha_state=str(state)), params)

    def _log(self, session: Session, done: Sequence[Logged]) -> None:
        now = to_datetime(self.clock())
        rows = [{"created_at": now, "resource": m.kind.value, "resource_id": m.resource_id,
                 "from_agent_id": m.from_agent, "from_host": m.from_host,
                 "to_agent_id": m.to_agent, "to_host": m.to_host, "reason": m.log_reason}
                for m in done]
        for start in range(0, len(rows), _CHUNK):
            session.execute(insert(BindingMove), rows[start:start + _CHUNK])

    def _switched(self, switchovers: Sequence[Switchover]) -> list[Switchover]:
        for switchover in switchovers:
            self._switch(switchover)
            LOG.info("%s %s active on %s instead of %s (%s)", switchover.kind.value,
                     switchover.resource_id, switchover.to_host or switchover.to_agent or
                     "no agent", switchover.from_host or switchover.from_agent or "no agent",
                     switchover.reason)
        return list(switchovers)

    def set_roles(self, switchovers: Sequence[Switchover], fenced: bool = True
                  ) -> list[Switchover]:
        """Pass active roles (and log them), in one transaction; the switchovers done."""
        if not switchovers:
            return []
        with self.db.session() as session:
            if fenced:
                self.fence(session)
            self._roles(session, switchovers, HaState.STANDBY)
            self._roles(session, switchovers, HaState.ACTIVE)
            self._log(session, switchovers)
        return self._switched(switchovers)

    def _set_roles_alone(self, switchovers: Sequence[Switchover]) -> list[Switchover]:
        """After a batch conflicted: the switchovers on their own (none if they conflict
        too: another controller changed the roles; memory follows on its event)."""
        try:
            return self.set_roles(switchovers)
        except IntegrityError:
            LOG.warning("switchovers conflicted with the database; not done")
            return []

    # --- changes --------------------------------------------------------------------------

    def bind(self, spec: KindSpec, obj_id: str, agent_id: str, fenced: bool = False,
             exclusive: bool = False) -> BindingChange:
        """One binding (by hand, unless ``fenced``): Conflict if it exists (or, with
        ``exclusive``, any does). A router's binding is active unless another is."""
        hosts = self._hosts[spec.kind].get(obj_id, {})
        if agent_id in hosts:
            raise spec.hosted(obj_id, agent_id)
        if exclusive and hosts:
            raise spec.hosted(obj_id, next(iter(hosts)))
        index = _vacant_index(hosts)
        state = None
        row: dict[str, Any] = {spec.object_column: obj_id, spec.agent_column: agent_id,
                               "binding_index": index}
        if spec.has_roles:
            state = HaState.STANDBY if self.active_of(spec.kind, obj_id) else HaState.ACTIVE
            row["ha_state"] = str(state)
        try:
            with self.db.session() as session:
                if fenced:
                    self.fence(session)
                session.execute(insert(spec.table), [row])
        except IntegrityError:
            raise spec.hosted(obj_id, agent_id) from None
        self._remember(spec.kind, obj_id, agent_id, index, state)
        return BindingChange(spec.kind, obj_id, agent_id, True, state)

    def unbind(self, spec: KindSpec, obj_id: str, agent_id: str,
               switchovers: Sequence[Switchover] = (), fenced: bool = False
               ) -> list[BindingChange]:
        """Remove one binding (by hand, unless ``fenced``), and pass the active role as
        ``switchovers`` say (same transaction); the changes."""
        if agent_id not in self._hosts[spec.kind].get(obj_id, {}):
            raise spec.not_hosted(obj_id, agent_id)
        t = spec.table
        with self.db.session() as session:
            if fenced:
                self.fence(session)
            self._roles(session, switchovers, HaState.STANDBY)
            session.execute(delete(t).where(t.c[spec.object_column] == obj_id,
                                            t.c[spec.agent_column] == agent_id))
            self._roles(session, switchovers, HaState.ACTIVE)
            self._log(session, switchovers)
        self._forget(spec.kind, obj_id, agent_id)
        done = self._switched(switchovers)
        return [BindingChange(spec.kind, obj_id, agent_id, False),
                *(c for s in done for c in s.changes() if c.agent_id != agent_id)]

    def drop_agent(self, spec: KindSpec, agent_id: str, fenced: bool = False,
                   switchovers: Sequence[Switchover] = ()) -> list[BindingChange]:
        """Delete every binding of an agent (before the agent itself is deleted), passing
        the active roles it held as ``switchovers`` say."""
        objects = sorted(self._hosted.get(agent_id, ()))
        t = spec.table
        with self.db.session() as session:
            if fenced:
                self.fence(session)
            self._roles(session, switchovers, HaState.STANDBY)
            session.execute(delete(t).where(t.c[spec.agent_column] == agent_id))
            self._roles(session, switchovers, HaState.ACTIVE)
            self._log(session, switchovers)
        for obj_id in objects:
            self._forget(spec.kind, obj_id, agent_id)
        self._hosted.pop(agent_id, None)
        self._standby_load.pop(agent_id, None)
        done = self._switched(switchovers)
        return [*(BindingChange(spec.kind, obj_id, agent_id, False) for obj_id in objects),
                *(c for s in done for c in s.changes() if c.agent_id != agent_id)]

    def bind_many(self, spec: KindSpec, pairs: Sequence[tuple[str, str]],
                  switchovers: Sequence[Switchover] = (),
                  states: Mapping[tuple[str, str], HaState] | None = None
                  ) -> list[BindingChange]:
        """Bind (object, agent) pairs, and pass active roles, in one fenced transaction;
        duplicates mean "already done". A router's new binding has the role ``states``
        gives it, else active unless the router has an active binding."""
        rows = []
        planned: dict[str, dict[str, int]] = {}
        for obj_id, agent_id in pairs:
            current = {**self._hosts[spec.kind].get(obj_id, {}), **planned.get(obj_id, {})}
            if agent_id in current:
                continue
            index = _vacant_index(current)
            planned.setdefault(obj_id, {})[agent_id] = index
            row = {spec.object_column: obj_id, spec.agent_column: agent_id,
                   "binding_index": index}
            if spec.has_roles:
                state = (states or {}).get((obj_id, agent_id))
                if state is None:
                    state = HaState.STANDBY if self.active_of(spec.kind, obj_id) \
                        else HaState.ACTIVE
                row["ha_state"] = str(state)
            rows.append(row)
        if not rows and not switchovers:
            return []
        try:
            with self.db.session() as session:
                self.fence(session)
                self._roles(session, switchovers, HaState.STANDBY)
                self._roles(session, switchovers, HaState.ACTIVE)
                self._log(session, switchovers)
                for start in range(0, len(rows), _CHUNK):
                    session.execute(insert(spec.table), rows[start:start + _CHUNK])
        except IntegrityError:
            # Someone bound some of these meanwhile (or an object vanished): one by one.
            done = [c for s in self._set_roles_alone(switchovers) for c in s.changes()]
            for row in rows:
                try:
                    done.append(self.bind(spec, row[spec.object_column],
                                          row[spec.agent_column], fenced=True))
                except (errors.Conflict, errors.NotFound, IntegrityError):
                    pass
            return done
        changes = [c for s in self._switched(switchovers) for c in s.changes()]
        for row in rows:
            obj_id, agent_id = row[spec.object_column], row[spec.agent_column]
            state = _state(row["ha_state"]) if spec.has_roles else None
            self._remember(spec.kind, obj_id, agent_id, row["binding_index"], state)
            changes.append(BindingChange(spec.kind, obj_id, agent_id, True, state))
        return changes

    def move_many(self, moves: Sequence[Move], switchovers: Sequence[Switchover] = ()
                  ) -> tuple[list[Move], list[Switchover]]:
        """Pass active roles, then move bindings (keeping binding_index, with the role each
        move names), and log each, in one fenced transaction; what was done."""
        if not moves and not switchovers:
            return [], []
        by_kind: dict[HostedKind, list[Move]] = defaultdict(list)
        for move in moves:
            by_kind[move.kind].append(move)
        try:
            with self.db.session() as session:
                self.fence(session)
                self._roles(session, switchovers, HaState.STANDBY)
                for kind, kind_moves in by_kind.items():
                    spec = SPECS[kind]
                    t = spec.table
                    session.execute(
                        delete(t).where(t.c[spec.object_column] == bindparam("b_obj"),
                                        t.c[spec.agent_column] == bindparam("b_agent")),
                        [{"b_obj": m.resource_id, "b_agent": m.from_agent} for m in kind_moves])
                self._roles(session, switchovers, HaState.ACTIVE)
                for kind, kind_moves in by_kind.items():
                    spec = SPECS[kind]
                    rows = [self._moved_row(spec, m) for m in kind_moves]
                    for start in range(0, len(rows), _CHUNK):
                        session.execute(insert(spec.table), rows[start:start + _CHUNK])
                self._log(session, [*switchovers, *moves])
        except IntegrityError:
            LOG.warning("batched move conflicted; moving one by one")
            if len(moves) + len(switchovers) == 1:
                return [], []
            switched = self._set_roles_alone(switchovers)
            moved = [done for m in moves for done in self.move_many([m])[0]]
            return moved, switched
        switched = self._switched(switchovers)
        for move in moves:
            index = self._hosts[move.kind][move.resource_id][move.from_agent]
            self._forget(move.kind, move.resource_id, move.from_agent)
            self._remember(move.kind, move.resource_id, move.to_agent, index,
                           move.ha_state or HaState.STANDBY)
            LOG.info("moved %s %s from %s to %s (%s)", move.kind.value, move.resource_id,
                     move.from_host or move.from_agent, move.to_host, move.reason)
        return list(moves), switched

    def _moved_row(self, spec: KindSpec, move: Move) -> dict[str, Any]:
        row = {spec.object_column: move.resource_id, spec.agent_column: move.to_agent,
               "binding_index": self._hosts[move.kind][move.resource_id][move.from_agent]}
        if spec.has_roles:
            row["ha_state"] = str(move.ha_state or HaState.STANDBY)
        return row

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


def _state(value: Any) -> HaState:
    """A stored ``ha_state``; anything unknown reads as standby (never a second active)."""
    try:
        return HaState(value)
    except ValueError:
        return HaState.STANDBY
