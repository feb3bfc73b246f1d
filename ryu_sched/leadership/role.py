"""This controller's role among the controllers sharing its database, as components see it.

Components (the registry, the programmer) ask :attr:`Leadership.is_leader` before acting as
leader, put what they write as leader through :meth:`Leadership.fence`, and hear about
changes through :meth:`Leadership.watch`:

- :class:`SoleLeadership`: the database serves this controller alone (SQLite, locked by
  ``db/sole_use.py``): always the leader from :meth:`start`, nothing to fence, no OpenFlow
  roles to claim (``contended`` is False);
- :class:`ElectedLeadership`: several controllers on PostgreSQL: a
  :class:`~ryu_sched.leadership.elector.LeaderElector` decides, the fence checks the epoch.

Watchers run in the elector's green thread and must be quick (queue work, wake a worker).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy.orm import Session

from ryu_sched.leadership.elector import LeaderElector
from ryu_sched.leadership.lease import LeaseState

LOG = logging.getLogger(__name__)

OnElected = Callable[[int], None]
OnDemoted = Callable[[], None]
OnTerm = Callable[[int], None]


@dataclasses.dataclass(frozen=True)
class RoleView:
    """What an operator sees of this controller's role (the API's stats)."""

    contended: bool          # several controllers may share the database
    leader: bool
    epoch: int | None        # our term while we lead
    holder: str              # our name in the lease
    lease_holder: str        # who holds the lease, as last seen ("" unknown)
    lease_epoch: int         # the lease's term, as last seen (0 unknown)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class _Watchers:
    elected: list[OnElected] = dataclasses.field(default_factory=list)
    demoted: list[OnDemoted] = dataclasses.field(default_factory=list)
    term: list[OnTerm] = dataclasses.field(default_factory=list)

    def add(self, on_elected: OnElected | None, on_demoted: OnDemoted | None,
            on_term: OnTerm | None) -> None:
        if on_elected is not None:
            self.elected.append(on_elected)
        if on_demoted is not None:
            self.demoted.append(on_demoted)
        if on_term is not None:
            self.term.append(on_term)

    @staticmethod
    def call(callbacks: list[Any], *args: Any) -> None:
        for callback in list(callbacks):
            try:
                callback(*args)
            except Exception:  # one watcher's failure must not stop the others
                LOG.exception("leadership watcher %r failed", callback)


class Leadership(Protocol):
    @property
    def contended(self) -> bool: ...

    @property
    def is_leader(self) -> bool: ...

    @property
    def epoch(self) -> int | None: ...

    @property
    def known_epoch(self) -> int:
        """The lease's newest term this controller has seen (0: none yet)."""

    def fence(self, session: Session) -> None: ...

    def watch(self, on_elected: OnElected | None = None, on_demoted: OnDemoted | None = None,
              on_term: OnTerm | None = None) -> None: ...

    def view(self) -> RoleView: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class SoleLeadership:
    """The only controller of its database: the leader from :meth:`start` to :meth:`stop`."""

    contended = False

    def __init__(self, holder: str = "sole", leading: bool = False) -> None:
        self.holder = holder
        self._leader = leading
        self._watchers = _Watchers()

    @property
    def is_leader(self) -> bool:
        return self._leader

    @property
    def epoch(self) -> int | None:
        return 0 if self._leader else None

    @property
    def known_epoch(self) -> int:
        return 0

    def fence(self, session: Session) -> None:
        return None

    def watch(self, on_elected: OnElected | None = None, on_demoted: OnDemoted | None = None,
              on_term: OnTerm | None = None) -> None:
        self._watchers.add(on_elected, on_demoted, on_term)

    def view(self) -> RoleView:
        return RoleView(False, self._leader, self.epoch, self.holder,
                        self.holder if self._leader else "", 0)

    def start(self) -> None:
        if not self._leader:
            self._leader = True
            self._watchers.call(self._watchers.elected, 0)

    def stop(self) -> None:
        if self._leader:
            self._leader = False
            self._watchers.call(self._watchers.demoted)


class ElectedLeadership:
    """Leadership decided by the lease (several controllers on one PostgreSQL database)."""

    contended = True

    def __init__(self, elector: LeaderElector) -> None:
        self.elector = elector
        self._watchers = _Watchers()
        self._known_epoch = 0
        elector.on_elected = self._elected
        elector.on_demoted = self._demoted
        elector.on_answer = self._answer

    @property
    def holder(self) -> str:
        return self.elector.holder

    @property
    def is_leader(self) -> bool:
        return self.elector.is_leader

    @property
    def epoch(self) -> int | None:
        return self.elector.epoch

    @property
    def known_epoch(self) -> int:
        return self._known_epoch

    def fence(self, session: Session) -> None:
        self.elector.fence(session)

    def watch(self, on_elected: OnElected | None = None, on_demoted: OnDemoted | None = None,
              on_term: OnTerm | None = None) -> None:
        self._watchers.add(on_elected, on_demoted, on_term)

    def view(self) -> RoleView:
        state = self.elector.last_state
        return RoleView(True, self.is_leader, self.epoch, self.holder,
                        state.holder if state is not None else "", self._known_epoch)

    def start(self) -> None:
        self.elector.start()

    def stop(self) -> None:
        self.elector.stop(release=True)

    # --- the elector's callbacks (its green thread) -------------------------------------

    def _elected(self, epoch: int) -> None:
        self._see(epoch)
        self._watchers.call(self._watchers.elected, epoch)

    def _demoted(self) -> None:
        self._watchers.call(self._watchers.demoted)

    def _answer(self, state: LeaseState) -> None:
        self._see(state.epoch)

    def _see(self, epoch: int) -> None:
        if epoch > self._known_epoch:
            self._known_epoch = epoch
            self._watchers.call(self._watchers.term, epoch)
