"""The ``agents`` table: loading, admin changes, and the batched write of heartbeats.

:meth:`AgentRows.write` writes a batch in one transaction. When that fails it never loses
the batch and never lets one bad row block the others:

- the database is probed; if it does not answer, every write is *kept* for the next flush;
- otherwise the batch is bisected until each failing write is alone: an insert that hits the
  ``(agent_type, host)`` unique constraint (another controller registered the same agent) is
  a *conflict* for the caller to adopt, any other lone failure is *dropped* (the caller logs
  it). ``k`` bad rows in ``n`` cost O(k log n) transactions, once.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ryu_sched.db import Database, models
from ryu_sched.registry.model import AgentRecord, from_datetime, to_datetime

LOG = logging.getLogger(__name__)

_CHUNK = 500


class WriteKind(enum.Enum):
    INSERT = "insert"
    UPDATE = "update"
    HEARTBEAT = "heartbeat"


@dataclasses.dataclass(frozen=True, eq=False)
class RowWrite:
    kind: WriteKind
    agent_id: str
    values: dict[str, Any]


@dataclasses.dataclass
class WriteResult:
    written: list[RowWrite] = dataclasses.field(default_factory=list)
    kept: list[RowWrite] = dataclasses.field(default_factory=list)
    conflicts: list[RowWrite] = dataclasses.field(default_factory=list)
    dropped: list[tuple[RowWrite, str]] = dataclasses.field(default_factory=list)


def row_values(rec: AgentRecord) -> dict[str, Any]:
    return {"id": rec.id, "agent_type": rec.agent_type, "host": rec.host,
            "binary": rec.binary, "topic": rec.topic,
            "availability_zone": rec.availability_zone,
            "admin_state_up": rec.admin_state_up, "description": rec.description,
            "configurations": rec.configurations,
            "created_at": to_datetime(rec.created_at),
            "started_at": to_datetime(rec.started_at),
            "heartbeat_timestamp": to_datetime(rec.heartbeat)}


def insert_write(rec: AgentRecord) -> RowWrite:
    return RowWrite(WriteKind.INSERT, rec.id, row_values(rec))


def update_write(rec: AgentRecord) -> RowWrite:
    values = {("b_id" if k == "id" else k): v for k, v in row_values(rec).items()
              if k not in ("created_at", "agent_type", "host")}
    return RowWrite(WriteKind.UPDATE, rec.id, values)


def heartbeat_write(agent_id: str, seconds: float) -> RowWrite:
    return RowWrite(WriteKind.HEARTBEAT, agent_id,
                    {"b_id": agent_id, "b_ts": to_datetime(seconds)})


class AgentRows:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.table = models.Agent.__table__

    def load(self) -> list[AgentRecord]:
        with self.db.session() as session:
            return [AgentRecord(
                id=row.id, agent_type=row.agent_type, host=row.host, binary=row.binary,
                topic=row.topic, availability_zone=row.availability_zone,
                admin_state_up=row.admin_state_up, description=row.description,
                configurations=dict(row.configurations or {}),
                created_at=from_datetime(row.created_at),
                started_at=from_datetime(row.started_at),
                heartbeat=from_datetime(row.heartbeat_timestamp), persisted=True)
                for row in session.scalars(select(models.Agent))]

    def find(self, agent_type: str, host: str) -> str | None:
        with self.db.session() as session:
            return session.scalar(select(models.Agent.id).where(
                models.Agent.agent_type == agent_type, models.Agent.host == host))

    def set_values(self, agent_id: str, values: dict[str, Any]) -> None:
        with self.db.session() as session:
            session.execute(update(models.Agent).where(models.Agent.id == agent_id)
                            .values(**values))

    def delete(self, agent_id: str, fence: Callable[[Session], object] | None = None) -> None:
        with self.db.session() as session:
            if fence is not None:
                fence(session)
            session.execute(delete(models.Agent).where(models.Agent.id == agent_id))

    # --- the batched write ----------------------------------------------------------------

    def write(self, writes: Sequence[RowWrite]) -> WriteResult:
        result = WriteResult()
        if writes:
            self._attempt(list(writes), result)
        return result

    def _attempt(self, writes: list[RowWrite], result: WriteResult) -> None:
        try:
            self._write_batch(writes)
        except Exception as exc:
            if not self._reachable():
                LOG.warning("agents table unreachable (%s): %d writes kept for the next flush",
                            _short(exc), len(writes))
                result.kept.extend(writes)
            elif len(writes) == 1:
                self._classify(writes[0], exc, result)
            else:
                half = len(writes) // 2
                self._attempt(writes[:half], result)
                self._attempt(writes[half:], result)
            return
        result.written.extend(writes)

    @staticmethod
    def _classify(write: RowWrite, exc: Exception, result: WriteResult) -> None:
        if isinstance(exc, IntegrityError) and write.kind is WriteKind.INSERT:
            result.conflicts.append(write)
        else:
            result.dropped.append((write, _short(exc)))

    def _reachable(self) -> bool:
        try:
            with self.db.session() as session:
                session.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def _write_batch(self, writes: Sequence[RowWrite]) -> None:
        table = self.table
        groups: dict[WriteKind, list[dict[str, Any]]] = {kind: [] for kind in WriteKind}
        for write in writes:
            groups[write.kind].append(write.values)
        with self.db.session() as session:
            for start in range(0, len(groups[WriteKind.INSERT]), _CHUNK):
                session.execute(insert(table), groups[WriteKind.INSERT][start:start + _CHUNK])
            if groups[WriteKind.UPDATE]:
                session.execute(update(table).where(table.c.id == bindparam("b_id")),
                                groups[WriteKind.UPDATE])
            if groups[WriteKind.HEARTBEAT]:
                session.execute(update(table).where(table.c.id == bindparam("b_id"))
                                .values(heartbeat_timestamp=bindparam("b_ts")),
                                groups[WriteKind.HEARTBEAT])


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
