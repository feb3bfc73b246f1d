"""Agents in memory: registration, heartbeats, liveness, and their batched persistence.

A heartbeat is a dict lookup and two assignments. Liveness is judged from the in-memory
heartbeat time only, so nothing the database does (a failing flush included) can stop an
agent from being judged dead. With several controllers, agents report to any of them:
:meth:`AgentTable.refresh` reads the whole table once (per monitor tick) and takes the
newer heartbeat times, new agents and fields changed elsewhere. :meth:`AgentTable.flush`
writes what changed since the last flush in one transaction (see
:mod:`ryu_sched.registry.agent_rows` for how a failing batch is kept or isolated).

Size: just over 400 lines: registration, heartbeats, liveness and the batched writes
share one in-memory table and its invariants; the SQL is in agent_rows.py.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from typing import Any

from ryu_sched import errors
from ryu_sched.db import Database, models
from ryu_sched.registry.agent_rows import (
    AgentRows,
    RowWrite,
    WriteKind,
    heartbeat_write,
    insert_write,
    update_write,
)
from ryu_sched.registry.agent_state import validate_configurations, validate_state
from ryu_sched.registry.model import AgentRecord
from ryu_sched.rpc.protocol import BadParams, RpcError
from ryu_sched.shared.vocabulary import AgentType

LOG = logging.getLogger(__name__)


class AgentLimitReached(RpcError):
    type_name = "AgentLimitReached"


@dataclasses.dataclass(frozen=True)
class Report:
    """What one ``report_state`` did."""

    record: AgentRecord
    status: str                 # registered | alive | revived
    placement_changed: bool     # revived, or a change of what it may host: reconcile


@dataclasses.dataclass(frozen=True)
class FlushResult:
    written: int = 0
    registered: int = 0
    dropped: int = 0
    kept: int = 0


@dataclasses.dataclass(frozen=True)
class RefreshResult:
    """What :meth:`AgentTable.refresh` found changed by other controllers."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    revived: tuple[str, ...] = ()
    placement_changed: bool = False   # admin state or what an agent may host changed


_SHARED_FIELDS = ("admin_state_up", "description", "configurations", "availability_zone",
                  "binary", "topic", "started_at")


@dataclasses.dataclass
class TableCounters:
    heartbeats: int = 0
    refused_reports: int = 0
    refused_registrations: int = 0
    dropped_writes: int = 0
    expired_agents: int = 0


class AgentTable:
    def __init__(self, db: Database, clock: Callable[[], float], down_time: float,
                 max_per_type: int = 0) -> None:
        self.rows = AgentRows(db)
        self.clock = clock
        self.down_time = down_time
        self.max_per_type = max_per_type
        self.counters = TableCounters()
        self._records: dict[str, AgentRecord] = {}
        self._by_key: dict[tuple[str, str], AgentRecord] = {}
        self._by_type: dict[str, dict[str, AgentRecord]] = {t.value: {} for t in AgentType}
        # Written by the next flush: heartbeat times, and whole rows (new or changed agents).
        self._beats: dict[str, float] = {}
        self._dirty: set[str] = set()

    # --- lookups --------------------------------------------------------------------------

    def __iter__(self) -> Iterator[AgentRecord]:
        return iter(list(self._records.values()))

    def __len__(self) -> int:
        return len(self._records)

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._records

    def find(self, agent_id: str) -> AgentRecord | None:
        return self._records.get(agent_id)

    def get(self, agent_id: str) -> AgentRecord:
        rec = self._records.get(agent_id)
        if rec is None:
            raise errors.AgentNotFound(id=agent_id)
        return rec

    def lookup(self, agent_type: str, host: str) -> AgentRecord | None:
        return self._by_key.get((agent_type, host))

    def of_type(self, agent_type: str) -> list[AgentRecord]:
        return list(self._by_type.get(agent_type, {}).values())

    def is_alive(self, rec: AgentRecord, now: float | None = None) -> bool:
        return (self.clock() if now is None else now) - rec.heartbeat < self.down_time

    # --- index ----------------------------------------------------------------------------

    def _index(self, rec: AgentRecord) -> None:
        self._records[rec.id] = rec
        self._by_key[(rec.agent_type, rec.host)] = rec
        self._by_type[rec.agent_type][rec.id] = rec

    def _unindex(self, rec: AgentRecord) -> None:
        self._records.pop(rec.id, None)
        if self._by_key.get((rec.agent_type, rec.host)) is rec:
            del self._by_key[(rec.agent_type, rec.host)]
        self._by_type[rec.agent_type].pop(rec.id, None)
        self._beats.pop(rec.id, None)
        self._dirty.discard(rec.id)

    def load(self) -> None:
        for rec in self.rows.load():
            if rec.agent_type not in self._by_type:
                LOG.warning("ignoring agent %s of unknown type %r", rec.id, rec.agent_type)
                continue
            self._index(rec)

    def refresh(self) -> RefreshResult:
        """Merge the table as other controllers wrote it: newer heartbeat times (an agent
        reporting to another controller), agents registered or deleted elsewhere, fields
        changed elsewhere (unless this controller has its own change of them pending)."""
        persisted = {rec.id for rec in self._records.values() if rec.persisted}
        rows = self.rows.load()            # yields to other green threads on PostgreSQL
        now = self.clock()
        seen: set[str] = set()
        added: list[str] = []
        revived: list[str] = []
        changed = False
        for row in rows:
            seen.add(row.id)
            rec = self._records.get(row.id)
            if rec is None:
                if self._adopt_row(row):
                    added.append(row.id)
                continue
            if row.heartbeat > rec.heartbeat:
                rec.heartbeat = row.heartbeat
                if rec.judged_dead and now - rec.heartbeat < self.down_time:
                    LOG.info("agent %s (%s on %s) is alive again (reported elsewhere)",
                             rec.id, rec.agent_type, rec.host)
                    rec.judged_dead = False
                    revived.append(rec.id)
            if rec.id not in self._dirty:
                changed |= self._take_fields(rec, row)
        removed = []
        for agent_id in persisted - seen:
            rec = self._records.get(agent_id)
            if rec is not None and rec.persisted:
                LOG.info("agent %s (%s on %s) was deleted by another controller", rec.id,
                         rec.agent_type, rec.host)
                self._unindex(rec)
                removed.append(agent_id)
        return RefreshResult(tuple(added), tuple(removed), tuple(revived),
                             changed or bool(added or removed or revived))

    def _adopt_row(self, row: AgentRecord) -> bool:
        """A row we do not know by id: index it, unless it is an agent of ours not yet
        written (its flush adopts the row on conflict)."""
        if row.agent_type not in self._by_type:
            return False
        ours = self._by_key.get((row.agent_type, row.host))
        if ours is not None:
            if not ours.persisted:
                return False
            # Our row was deleted and the agent registered anew elsewhere.
            self._unindex(ours)
            row.conn = ours.conn
            row.heartbeat = max(row.heartbeat, ours.heartbeat)
            if row.conn is not None:
                row.conn.agent_ids.add(row.id)
        self._index(row)
        return True

    @staticmethod
    def _take_fields(rec: AgentRecord, row: AgentRecord) -> bool:
        """Copy the fields another controller may have changed; True if that changes what
        the agent may host (admin state, external port or link)."""
        before = (rec.admin_state_up, rec.has_external_port, rec.external_link_down,
                  rec.availability_zone)
        for name in _SHARED_FIELDS:
            value = getattr(row, name)
            if getattr(rec, name) != value:
                setattr(rec, name, value)
        return before != (rec.admin_state_up, rec.has_external_port, rec.external_link_down,
                          rec.availability_zone)

    # --- reports --------------------------------------------------------------------------

    def report(self, state: Any, now: float) -> Report:
        """One heartbeat: registers a new ``(agent_type, host)``, refreshes a known one."""
        try:
            return self._report(state, now)
        except BadParams:
            self.counters.refused_reports += 1
            raise

    def _report(self, state: Any, now: float) -> Report:
        if type(state) is not dict:
            raise BadParams("params must be [agent_state] with agent_state a map")
        agent_type, host = state.get("agent_type"), state.get("host")
        if type(agent_type) is not str or type(host) is not str:
            raise BadParams("agent_state.agent_type and host must be strings")
        rec = self._by_key.get((agent_type, host))
        self.counters.heartbeats += 1
        changed = False
        if rec is None:
            rec = self._register(validate_state(state), now)
            status = "registered"
        else:
            status = "alive"
            if rec.judged_dead or now - rec.heartbeat >= self.down_time:
                status = "revived"
                LOG.info("agent %s (%s on %s) is alive again after %.1fs", rec.id,
                         rec.agent_type, rec.host, now - rec.heartbeat)
                rec.judged_dead = False
                changed = True
            conf = state.get("configurations")
            if (conf is not None and conf != rec.configurations) or any(
                    state.get(key, getattr(rec, key)) != getattr(rec, key)
                    for key in ("availability_zone", "binary", "topic")):
                changed |= self._update_fields(rec, state)
            if state.get("start_flag"):
                rec.started_at = now
                self._dirty.add(rec.id)
        rec.heartbeat = now
        self._beats[rec.id] = now
        return Report(rec, status, changed)

    def _register(self, state: dict[str, Any], now: float) -> AgentRecord:
        agent_type = state["agent_type"]
        if self.max_per_type and len(self._by_type[agent_type]) >= self.max_per_type:
            self.counters.refused_registrations += 1
            raise AgentLimitReached(f"{self.max_per_type} {agent_type}s are registered "
                                    "already (max_agents_per_type)")
        rec = AgentRecord(
            id=models.new_id(), agent_type=agent_type, host=state["host"],
            binary=state.get("binary") or "", topic=state.get("topic") or "",
            availability_zone=state.get("availability_zone"),
            configurations=validate_configurations(state.get("configurations")),
            created_at=now, started_at=now, heartbeat=now)
        self._index(rec)
        self._dirty.add(rec.id)
        return rec

    def _update_fields(self, rec: AgentRecord, state: dict[str, Any]) -> bool:
        """Apply changed fields; True if the change affects what the agent may host."""
        validate_state(state)
        placement_changed = False
        conf = state.get("configurations")
        if conf is not None:
            old_ext, old_down = rec.has_external_port, rec.external_link_down
            rec.configurations = conf
            if old_ext and not rec.has_external_port:
                placement_changed = True          # routers with a gateway must move
            if old_down != rec.external_link_down:
                LOG.info("agent %s (%s on %s): external link %s", rec.id, rec.agent_type,
                         rec.host, "down" if rec.external_link_down else "up")
                placement_changed = True          # its routers move / a candidate again
        rec.availability_zone = state.get("availability_zone", rec.availability_zone)
        rec.binary = state.get("binary") or rec.binary
        rec.topic = state.get("topic") or rec.topic
        self._dirty.add(rec.id)
        return placement_changed

    # --- liveness -------------------------------------------------------------------------

    def judge(self, now: float) -> list[AgentRecord]:
        """Mark agents whose heartbeat is older than ``down_time`` dead; the newly dead."""
        newly_dead = []
        for rec in self._records.values():
            if not rec.judged_dead and now - rec.heartbeat >= self.down_time:
                rec.judged_dead = True
                newly_dead.append(rec)
        for rec in newly_dead:
            LOG.warning("agent %s (%s on %s) is dead: no heartbeat for %.1fs", rec.id,
                        rec.agent_type, rec.host, now - rec.heartbeat)
        return newly_dead

    def silent_for(self, seconds: float, now: float) -> list[AgentRecord]:
        return [rec for rec in self._records.values() if now - rec.heartbeat >= seconds]

    # --- administration -------------------------------------------------------------------

    def set_admin(self, rec: AgentRecord, admin_state_up: bool | None,
                  description: str | None) -> bool:
        """Store and apply admin fields; True if ``admin_state_up`` changed."""
        values: dict[str, Any] = {}
        if admin_state_up is not None:
            values["admin_state_up"] = admin_state_up
        if description is not None:
            values["description"] = description
        if not values:
            return False
        self.flush()
        self.rows.set_values(rec.id, values)
        changed = admin_state_up is not None and admin_state_up != rec.admin_state_up
        rec.admin_state_up = values.get("admin_state_up", rec.admin_state_up)
        rec.description = values.get("description", rec.description)
        return changed

    def remove(self, rec: AgentRecord, fence: Callable[[Any], object] | None = None) -> None:
        """Delete the agent's row and forget it (it registers anew on its next heartbeat)."""
        self.rows.delete(rec.id, fence)
        self._unindex(rec)

    # --- persistence ----------------------------------------------------------------------

    def flush(self) -> FlushResult:
        """Write pending heartbeats and agent rows; never raises for a bad row or an
        unreachable database (writes are kept and retried, a bad row is dropped)."""
        if not self._beats and not self._dirty:
            return FlushResult()
        beats, self._beats = self._beats, {}
        dirty, self._dirty = self._dirty, set()
        writes: list[RowWrite] = []
        for agent_id in dirty:
            rec = self._records.get(agent_id)
            if rec is not None:
                writes.append(update_write(rec) if rec.persisted else insert_write(rec))
        for agent_id, seconds in beats.items():
            rec = self._records.get(agent_id)
            if rec is not None and rec.persisted and agent_id not in dirty:
                writes.append(heartbeat_write(agent_id, seconds))
        result = self.rows.write(writes)
        registered = 0
        for write in result.written:
            rec = self._records.get(write.agent_id)
            if write.kind is WriteKind.INSERT and rec is not None:
                rec.persisted = True
                registered += 1
                LOG.info("registered %s on %s as agent %s", rec.agent_type, rec.host, rec.id)
        for write in result.kept:
            if write.kind is WriteKind.HEARTBEAT:
                self._beats.setdefault(write.agent_id, beats[write.agent_id])
            else:
                self._dirty.add(write.agent_id)
        for write in result.conflicts:
            self._adopt(write.agent_id)
        for write, reason in result.dropped:
            self._drop(write, reason)
        return FlushResult(len(result.written), registered, len(result.dropped),
                           len(result.kept))

    def _adopt(self, agent_id: str) -> None:
        """Our new agent's ``(agent_type, host)`` row exists (another controller): take its
        id and write our fields over it."""
        rec = self._records.get(agent_id)
        if rec is None:
            return
        row_id = self.rows.find(rec.agent_type, rec.host)
        if row_id is None:
            self._dirty.add(rec.id)
            return
        LOG.warning("agent %s on %s was registered by another controller: adopting row %s",
                    rec.agent_type, rec.host, row_id)
        self._unindex(rec)
        rec.id = row_id
        rec.persisted = True
        self._index(rec)
        if rec.conn is not None:
            rec.conn.agent_ids.add(rec.id)
        self._dirty.add(rec.id)

    def _drop(self, write: RowWrite, reason: str) -> None:
        self.counters.dropped_writes += 1
        rec = self._records.get(write.agent_id)
        where = f"{rec.agent_type} on {rec.host}" if rec is not None else "?"
        if write.kind is WriteKind.INSERT and rec is not None:
            LOG.error("agent %s (%s) cannot be stored, forgotten until it reports again: %s",
                      write.agent_id, where, reason)
            self._unindex(rec)
        else:
            LOG.error("dropped the %s of agent %s (%s) that the database refused: %s",
                      write.kind.value, write.agent_id, where, reason)
