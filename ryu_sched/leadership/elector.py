"""The elector: a green thread that keeps trying for the lease and says when we lead.

Every ``lease_time / 3`` it calls :meth:`Lease.acquire_or_renew`. When that makes us the
leader it calls ``on_elected(epoch)``; when it shows someone else holding the lease, or
when our lease ran out locally, it calls ``on_demoted()``. After every answer from the
database (whoever holds the lease) it calls ``on_answer(state)``.

Running out locally does not wait for the database: after each successful renewal a timer
is set for the moment the lease may lapse (the start of that renewal attempt plus the
time the database said was left, which is never later than the real expiry), and if no
renewal succeeded by then we demote ourselves, even while the database is unreachable or a
renewal hangs. So a leader that cannot reach the database stops acting as leader no later
than the others may take over. An attempt that takes longer than ``lease_time`` is
abandoned (and its connection discarded).

Work done as leader goes through :meth:`LeaderElector.fence` inside its write
transaction: it fails at once when we are not the leader locally, and otherwise checks the
stored epoch (:func:`~ryu_sched.leadership.lease.fenced_write`).

Green threads: eventlet, as everywhere in the controller. Callbacks run in the elector's
green threads; an exception in one is logged and does not stop the elector.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import eventlet
from sqlalchemy.orm import Session

from ryu_sched.leadership.lease import FencedOut, Lease, LeaseState, fenced_write

LOG = logging.getLogger(__name__)


def default_holder_id() -> str:
    """``host:pid:random``: unique per elector, readable in ``leader_lease.holder``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _nothing(*_args: Any) -> None:
    return None


class LeaderElector:
    def __init__(self, lease: Lease, lease_time: float, holder: str | None = None,
                 on_elected: Callable[[int], None] = _nothing,
                 on_demoted: Callable[[], None] = _nothing,
                 clock: Callable[[], float] = time.monotonic,
                 on_answer: Callable[[LeaseState], None] = _nothing) -> None:
        if lease_time <= 0:
            raise ValueError("lease_time must be positive")
        self.lease = lease
        self.lease_time = lease_time
        self.renew_interval = lease_time / 3.0
        self.holder = holder or default_holder_id()
        self.on_elected = on_elected
        self.on_demoted = on_demoted
        self.on_answer = on_answer
        self._clock = clock
        self._epoch: int | None = None        # our term while we lead, else None
        self._deadline = 0.0                  # local clock: our lease may lapse then
        self._thread: Any = None
        self._watchdog: Any = None
        self._stopping = False
        self.attempts = 0                     # renewal attempts made, failed ones too
        self.last_state: LeaseState | None = None   # the last answer from the database

    # --- state ------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """We hold the lease and, by our own clock, it has not lapsed. The clock is read here
        and not only by the watchdog: a process frozen past its lease (SIGSTOP, a stalled
        VM) must not act on its first step after waking, before the watchdog has run."""
        return self._epoch is not None and self._clock() < self._deadline

    @property
    def epoch(self) -> int | None:
        """Our term while we are the leader, else None."""
        return self._epoch if self.is_leader else None

    def fence(self, session: Session) -> int:
        """Inside a write transaction: raise :class:`FencedOut` unless we lead and the
        lease is still at our epoch (held until the transaction ends); returns the epoch."""
        epoch = self.epoch
        if epoch is None:
            raise FencedOut(self.lease.name, -1, None, None)
        fenced_write(session, epoch, self.lease.name, idle_timeout=self.lease_time)
        return epoch

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = eventlet.spawn(self._run)

    def stop(self, release: bool = True) -> None:
        """Stop trying; if we lead, demote (``on_demoted``) and, with ``release``, end our
        term in the database at once so that another controller takes over without
        waiting for the lease to lapse."""
        self._stopping = True
        thread, self._thread = self._thread, None
        if thread is not None and thread is not eventlet.getcurrent():
            thread.kill()
        epoch = self._epoch
        self._demote("elector stopped")
        if release and epoch is not None:
            try:
                self.lease.release(self.holder, epoch)
            except Exception:  # best effort: the lease lapses anyway
                LOG.warning("could not release lease %r (epoch %s); it lapses by itself",
                            self.lease.name, epoch, exc_info=True)

    # --- the loop ---------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            started = self._clock()
            state = self._attempt()
            if state is not None and not self._stopping:
                self.last_state = state
                self._apply(state, started)
                self._call(self.on_answer, state)
            self.attempts += 1
            eventlet.sleep(max(0.0, started + self.renew_interval - self._clock()))

    def _attempt(self) -> LeaseState | None:
        timeout = eventlet.Timeout(self.lease_time)
        try:
            return self.lease.acquire_or_renew(self.holder, self.lease_time)
        except eventlet.Timeout as exc:
            if exc is not timeout:
                raise
            LOG.warning("lease %r: no answer from the database within %.1fs",
                        self.lease.name, self.lease_time)
        except Exception as exc:  # the database may be away; keep trying
            LOG.warning("lease %r: renewal failed: %s", self.lease.name, exc)
        finally:
            timeout.cancel()
        return None

    def _apply(self, state: LeaseState, started: float) -> None:
        if not state.is_leader:
            if self._epoch is not None:
                self._demote(f"the lease is held by {state.holder!r} at epoch {state.epoch}")
            return
        if self._epoch is not None and self._epoch != state.epoch:
            self._demote(f"our term {self._epoch} ended")
        self._deadline = started + min(self.lease_time, max(state.expires_in, 0.0))
        self._arm_watchdog()
        if self._epoch is None:
            self._epoch = state.epoch
            LOG.info("lease %r: elected leader %r at epoch %d", self.lease.name, self.holder,
                     state.epoch)
            self._call(self.on_elected, state.epoch)

    def _arm_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        delay = max(0.0, self._deadline - self._clock())
        self._watchdog = eventlet.spawn_after(delay, self._lapse)

    def _lapse(self) -> None:
        self._watchdog = None
        if self._epoch is None:
            return
        if self._clock() >= self._deadline:
            self._demote(f"no renewal within the lease time ({self.lease_time:.1f}s)")
        else:   # woken a little early
            self._arm_watchdog()

    def _demote(self, why: str) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._epoch is None:
            return
        epoch, self._epoch = self._epoch, None
        LOG.warning("lease %r: %r demoted from epoch %d: %s", self.lease.name, self.holder,
                    epoch, why)
        self._call(self.on_demoted)

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:  # a callback's failure must not stop the elector
            LOG.exception("lease %r: callback %r failed", self.lease.name, callback)
