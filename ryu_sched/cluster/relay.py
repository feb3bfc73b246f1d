"""Events across controllers: PostgreSQL LISTEN/NOTIFY.

Every controller on a shared PostgreSQL database runs one :class:`EventRelay`:

- **out:** it hears the events this controller commits (the bus's *local* events) and sends
  each, batched, as ``NOTIFY ryu_sched_events, <payload>`` (``pg_notify``), one transaction
  per batch. The payload is JSON ``{"o": origin, "t": sent_at, "e": event.to_wire()}``; an
  event whose payload would reach PostgreSQL's 8,000-byte limit is stored in
  ``cluster_events`` and the payload carries ``"ref": <row id>`` instead of ``"e"``;
- **in:** a dedicated connection (outside the pool) runs ``LISTEN ryu_sched_events``; each
  notification from another origin is decoded and published on the bus as a *remote*
  event. Our own are skipped.

NOTIFY is delivered to every listening session at commit, in commit order, and never to a
session that was not listening then. So whenever the listening connection is (re)made the
relay calls ``on_gap()``: what was sent while nobody listened is lost, and the caller
resynchronises from the database (the registry reloads its bindings, the programmer
re-diffs). Sending happens after the change committed: a controller that dies in between
loses the notification; the others' periodic resyncs (the programmer's, the registry's
monitor tick, the agents' resync interval) bound the effect.

Green threads: eventlet (psycopg's waits are green, ``db/green.py``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import eventlet
import eventlet.event
import eventlet.queue
from sqlalchemy import delete, insert, select, text

from ryu_sched.cluster.event_log import KEEP_SECONDS, ClusterEvent
from ryu_sched.db import Database
from ryu_sched.db.models import utcnow
from ryu_sched.events import Event, EventBus, from_wire

LOG = logging.getLogger(__name__)

CHANNEL = "ryu_sched_events"
#: PostgreSQL refuses payloads of 8,000 bytes or more; keep a margin.
MAX_INLINE_BYTES = 7900
#: Events sent in one transaction at most.
BATCH = 500
#: Seconds the listener waits for notifications before it checks its connection.
LISTEN_POLL = 5.0
SEND_RETRIES = (0.2, 0.5, 1.0)
PRUNE_EVERY = 60.0


def _nothing() -> None:
    return None


@dataclasses.dataclass
class RelayStats:
    sent: int = 0
    sent_by_reference: int = 0
    send_failures: int = 0
    dropped: int = 0
    received: int = 0
    undecodable: int = 0
    connects: int = 0
    last_delay: float = 0.0       # seconds from send to receipt (senders' clocks)
    max_delay: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def encode(origin: str, event: Event, sent_at: float) -> str:
    return json.dumps({"o": origin, "t": sent_at, "e": event.to_wire()},
                      separators=(",", ":"))


class EventRelay:
    def __init__(self, db: Database, bus: EventBus, origin: str,
                 on_gap: Callable[[], None] = _nothing, channel: str = CHANNEL,
                 clock: Callable[[], float] = time.time) -> None:
        if db.is_sqlite:
            raise ValueError("the event relay needs PostgreSQL (LISTEN/NOTIFY)")
        self.db = db
        self.bus = bus
        self.origin = origin
        self.on_gap = on_gap
        self.channel = channel
        self.clock = clock
        self.stats = RelayStats()
        self._queue: eventlet.queue.LightQueue = eventlet.queue.LightQueue()
        self._threads: list[Any] = []
        self._listening: Any = None       # the psycopg connection while it listens
        self._running = False
        self._subscribed = False
        self._last_prune = 0.0
        self.listening = eventlet.event.Event()  # sent once LISTEN first took effect

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self._running:
            return
        self._running = True
        if not self._subscribed:
            self.bus.subscribe(self._enqueue, remote=False)
            self._subscribed = True
        self._threads = [eventlet.spawn(self._send_loop), eventlet.spawn(self._listen_loop)]

    def stop(self) -> None:
        self._running = False
        for thread in self._threads:
            thread.kill()
        self._threads = []
        self._close_listener()

    # --- out ----------------------------------------------------------------------------

    def _enqueue(self, event: Event) -> None:
        self._queue.put(event)

    def _send_loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except eventlet.queue.Empty:
                    break
            self._send_with_retries(batch)

    def _send_with_retries(self, batch: list[Event]) -> None:
        for delay in (*SEND_RETRIES, None):
            try:
                self.send(batch)
                return
            except Exception as exc:
                self.stats.send_failures += 1
                if delay is None:
                    self.stats.dropped += len(batch)
                    LOG.error("event relay: %d events not sent to the other controllers "
                              "(%s); they resynchronise periodically", len(batch), exc)
                    return
                LOG.warning("event relay: send failed (%s), retrying in %.1fs", exc, delay)
                eventlet.sleep(delay)

    def send(self, events: list[Event]) -> None:
        """NOTIFY every event, in one transaction (delivered when it commits)."""
        now = self.clock()
        payloads: list[dict[str, str]] = []
        by_reference = 0
        with self.db.session() as session:
            for event in events:
                payload = encode(self.origin, event, now)
                if len(payload.encode()) > MAX_INLINE_BYTES:
                    row_id = session.execute(
                        insert(ClusterEvent).values(created_at=utcnow(), payload=payload)
                        .returning(ClusterEvent.id)).scalar_one()
                    payload = json.dumps({"o": self.origin, "t": now, "ref": int(row_id)})
                    by_reference += 1
                payloads.append({"c": self.channel, "p": payload})
            session.execute(text("SELECT pg_notify(:c, :p)"), payloads)
            if by_reference and now - self._last_prune >= PRUNE_EVERY:
                self._last_prune = now
                session.execute(delete(ClusterEvent).where(
                    ClusterEvent.created_at < utcnow() - dt.timedelta(seconds=KEEP_SECONDS)))
        self.stats.sent += len(events)
        self.stats.sent_by_reference += by_reference

    # --- in -----------------------------------------------------------------------------

    def _listen_loop(self) -> None:
        backoff = 0.2
        while self._running:
            try:
                conn = self._connect()
                self.stats.connects += 1
                backoff = 0.2
                if not self.listening.ready():
                    self.listening.send(True)
                self.on_gap()
                while self._running:
                    for note in conn.notifies(timeout=LISTEN_POLL):
                        self.receive(note.payload)
                    conn.execute("SELECT 1")   # a lost server shows up here
            except Exception as exc:
                if self._running:
                    LOG.warning("event relay: listening connection lost (%s: %s); "
                                "reconnecting in %.1fs", type(exc).__name__, exc, backoff)
            finally:
                self._close_listener()
            eventlet.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _connect(self) -> Any:
        """A connection of its own (detached from the pool) that listens."""
        raw = self.db.engine.raw_connection()
        conn = raw.driver_connection
        raw.detach()
        assert conn is not None
        try:
            conn.rollback()
            conn.autocommit = True
            conn.execute(f'LISTEN "{self.channel}"')
        except BaseException:
            conn.close()
            raise
        self._listening = conn
        LOG.info("event relay: listening on %r as %s", self.channel, self.origin)
        return conn

    def _close_listener(self) -> None:
        conn, self._listening = self._listening, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken
                LOG.debug("event relay: closing the listening connection failed",
                          exc_info=True)

    def receive(self, payload: str) -> None:
        """One notification: publish its event as remote, unless it is ours."""
        try:
            message = json.loads(payload)
            if message.get("o") == self.origin:
                return
            if "ref" in message:
                message = self._fetch(int(message["ref"]))
                if message is None:
                    return
            event = from_wire(message["e"])
        except (ValueError, KeyError, TypeError) as exc:
            self.stats.undecodable += 1
            LOG.warning("event relay: undecodable notification (%s): %.200s", exc, payload)
            return
        self.stats.received += 1
        sent_at = message.get("t")
        if isinstance(sent_at, int | float):
            delay = max(0.0, self.clock() - float(sent_at))
            self.stats.last_delay = delay
            self.stats.max_delay = max(self.stats.max_delay, delay)
        self.bus.publish_remote(event)

    def _fetch(self, row_id: int) -> dict[str, Any] | None:
        with self.db.session() as session:
            stored = session.scalar(select(ClusterEvent.payload)
                                    .where(ClusterEvent.id == row_id))
        if stored is None:
            LOG.warning("event relay: stored event %d is gone", row_id)
            self.stats.undecodable += 1
            return None
        return dict(json.loads(stored))
