"""What happened to placement lately, for operators: a bounded in-memory timeline of binding
moves, agents judged dead or back, and failovers with their duration.

A *failover* starts when the monitor judges an agent that hosts something dead, and ends
when that agent hosts nothing any more (its objects were moved to live agents, or deleted):
its duration goes to the metrics sink (``ryu_sched_failover_seconds``) and to the timeline.
A failover that cannot finish (no live candidate) stays open until it can, or until the
agent comes back or is deleted (then it is dropped, not measured).

Every move is counted in the sink by kind and reason (``ryu_sched_moves_total``). The
timeline keeps the last :data:`TIMELINE_SIZE` entries; at start it is filled from the move
log in the database, so a restart does not blank the operator page. Older entries are in
the move log (``GET /v2.0/agent-scheduler/moves``).
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import enum
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ryu_sched.registry.bindings import Move, Switchover
from ryu_sched.registry.model import AgentRecord, api_time
from ryu_sched.services import MetricsSink

TIMELINE_SIZE = 500


class EntryKind(enum.StrEnum):
    """What a timeline entry is about (moves carry their object's kind instead)."""

    AGENT = "agent"
    FAILOVER = "failover"


class AgentEvent(enum.StrEnum):
    DEAD = "dead"
    REVIVED = "revived"


@dataclasses.dataclass(frozen=True)
class Entry:
    time: float                   # wall-clock seconds
    kind: str                     # "network" | "router" | EntryKind
    object_id: str                # the object moved, or the agent
    from_host: str = ""
    to_host: str = ""
    reason: str = ""
    duration: float | None = None  # seconds, for failovers
    moved: int = 0                 # objects moved, for failovers

    def to_json(self) -> dict[str, Any]:
        return {"time": api_time(self.time), "kind": self.kind, "object_id": self.object_id,
                "from_host": self.from_host, "to_host": self.to_host, "reason": self.reason,
                "duration": self.duration, "moved": self.moved}


@dataclasses.dataclass
class _OpenFailover:
    agent: AgentRecord
    judged_at: float
    moved: int = 0
    destinations: set[str] = dataclasses.field(default_factory=set)


class History:
    def __init__(self, clock: Callable[[], float], sink: MetricsSink,
                 size: int = TIMELINE_SIZE) -> None:
        self.clock = clock
        self.sink = sink
        self._entries: collections.deque[Entry] = collections.deque(maxlen=size)
        self._open: dict[str, _OpenFailover] = {}

    # --- events ---------------------------------------------------------------------------

    def moves(self, moves: Sequence[Move]) -> None:
        """Moves done (committed): count them, add them to the timeline and to the open
        failover of the agent they left."""
        if not moves:
            return
        now = self.clock()
        counts = collections.Counter((m.kind.value, str(m.reason)) for m in moves)
        for (kind, reason), count in counts.items():
            self.sink.moved(kind, reason, count)
        for move in moves:
            self._entries.append(Entry(now, move.kind.value, move.resource_id, move.from_host,
                                       move.to_host, str(move.reason)))
            failover = self._open.get(move.from_agent)
            if failover is not None:
                failover.moved += 1
                failover.destinations.add(move.to_host)

    def switchovers(self, switchovers: Sequence[Switchover]) -> None:
        """Switchovers of active roles done (committed): counted as moves with reason
        ``switchover:<why>``, and in the timeline."""
        if not switchovers:
            return
        now = self.clock()
        counts = collections.Counter((s.kind.value, s.log_reason) for s in switchovers)
        for (kind, reason), count in counts.items():
            self.sink.moved(kind, reason, count)
        for switchover in switchovers:
            self._entries.append(Entry(now, switchover.kind.value, switchover.resource_id,
                                       switchover.from_host, switchover.to_host,
                                       switchover.log_reason))

    def judged_dead(self, recs: Iterable[AgentRecord], load_of: Callable[[str], int],
                    failing_over: bool) -> None:
        """Agents the monitor just judged dead; those hosting something start a failover
        (when automatic failover is on)."""
        now = self.clock()
        for rec in recs:
            load = load_of(rec.id)
            self._entries.append(Entry(now, EntryKind.AGENT, rec.id, rec.host,
                                       reason=AgentEvent.DEAD, moved=load))
            if load and failing_over:
                self._open[rec.id] = _OpenFailover(rec, now)

    def revived(self, rec: AgentRecord) -> None:
        """The agent reports again: an open failover of it ends unmeasured."""
        self._open.pop(rec.id, None)
        self._entries.append(Entry(self.clock(), EntryKind.AGENT, rec.id, rec.host,
                                   reason=AgentEvent.REVIVED))

    def settle(self, load_of: Callable[[str], int], exists: Callable[[str], bool]) -> int:
        """Close the failovers whose agent hosts nothing any more; the number closed."""
        closed = 0
        for agent_id, failover in list(self._open.items()):
            if not exists(agent_id) or not failover.agent.judged_dead:
                del self._open[agent_id]          # deleted, or back: nothing to measure
                continue
            if load_of(agent_id):
                continue
            del self._open[agent_id]
            now = self.clock()
            seconds = max(0.0, now - failover.judged_at)
            self.sink.failed_over(seconds)
            rec = failover.agent
            self._entries.append(Entry(now, EntryKind.FAILOVER, rec.id, rec.host,
                                       ", ".join(sorted(failover.destinations)),
                                       reason="failover", duration=seconds,
                                       moved=failover.moved))
            closed += 1
        return closed

    # --- reads ----------------------------------------------------------------------------

    @property
    def open_failovers(self) -> int:
        return len(self._open)

    def recent(self, limit: int) -> list[Entry]:
        """The newest ``limit`` entries, newest first."""
        entries = list(self._entries)
        entries.reverse()
        return entries[:max(0, limit)]

    def preload(self, logged: Iterable[dict[str, Any]]) -> None:
        """Seed the timeline from the move log (``BindingStore.moves_log``: newest first),
        under what is already there."""
        older = [Entry(_parse_time(row["created_at"]), row["resource"], row["resource_id"],
                       row["from_host"], row["to_host"], row["reason"]) for row in logged]
        older.reverse()
        room = (self._entries.maxlen or 0) - len(self._entries)
        kept = list(self._entries)
        self._entries.clear()
        self._entries.extend(older[max(0, len(older) - room):] + kept)


def _parse_time(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=dt.UTC).timestamp()
