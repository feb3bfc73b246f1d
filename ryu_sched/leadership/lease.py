"""The leader lease: one row per lease name in ``leader_lease``, and the fence on writes.

``leader_lease(name, holder, epoch, expires_at)``. Every time in it comes from the
database's clock (PostgreSQL ``clock_timestamp()``, SQLite ``'now'``), never from a
controller's, so controllers whose clocks disagree still agree on who holds the lease.
``epoch`` counts terms: it grows by one each time the lease changes hands (or is taken
again after it lapsed), and never otherwise.

:meth:`Lease.acquire_or_renew` runs one transaction with the row locked (``SELECT ... FOR
UPDATE`` on PostgreSQL; a SQLite database serves one process, see ``db/sole_use.py``):

- the holder is us and the lease has not expired: renew it, same epoch;
- the lease has expired (or was never taken): take it, epoch + 1;
- otherwise someone else holds it: we are not the leader.

:func:`fenced_write` is the other half: called inside a write transaction, it reads the
row ``FOR SHARE`` and raises :class:`FencedOut` unless the stored epoch is still the
caller's. The share lock makes a takeover (which needs ``FOR UPDATE``) wait until that
transaction ends, so a write that passed the fence commits before any new term starts,
and a leader that froze and woke up after losing the lease cannot write at all.

On PostgreSQL the lease transactions bound their waits (``lock_timeout``,
``statement_timeout``) and both they and fenced transactions set
``idle_in_transaction_session_timeout``: a controller frozen (SIGSTOP, a stalled VM) in the
middle of one has its session ended by the server, which releases the row lock, instead of
blocking every other controller's takeover.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Protocol

from sqlalchemy import BigInteger, DateTime, Float, String, cast, extract, func, select, text
from sqlalchemy import update as sql_update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from ryu_sched.db import Database
from ryu_sched.db.models import Base

DEFAULT_LEASE_NAME = "controller"


class LeaderLease(Base):
    __tablename__ = "leader_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255), default="")
    epoch: Mapped[int] = mapped_column(BigInteger, default=0)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


TABLE = LeaderLease.__table__


@dataclasses.dataclass(frozen=True)
class LeaseState:
    """The outcome of one :meth:`Lease.acquire_or_renew`.

    ``epoch``/``holder``/``expires_in`` describe the lease as it is after the call: ours
    when ``is_leader``, else the current holder's (``expires_in`` <= 0: nobody's).
    ``expires_in`` is in seconds, measured by the database's clock at the call.
    """

    is_leader: bool
    epoch: int
    holder: str
    expires_in: float


class FencedOut(RuntimeError):
    """A write was attempted with an epoch that is no longer the lease's."""

    def __init__(self, name: str, ours: int, stored: int | None, holder: str | None) -> None:
        self.name, self.ours, self.stored, self.holder = name, ours, stored, holder
        now = "never taken" if stored is None else f"epoch {stored}, held by {holder!r}"
        super().__init__(f"fenced out of lease {name!r}: our epoch is {ours}, the lease is at "
                         f"{now}")


# --- the database's clock ---------------------------------------------------------------

class _Clock(Protocol):
    def now(self) -> ColumnElement[Any]: ...
    def after(self, seconds: float) -> ColumnElement[Any]: ...
    def seconds_until(self, column: Any) -> ColumnElement[Any]: ...
    def insert(self) -> Any: ...


class _PostgresClock:
    def now(self) -> ColumnElement[Any]:
        return func.clock_timestamp()

    def after(self, seconds: float) -> ColumnElement[Any]:
        return func.clock_timestamp() + func.make_interval(0, 0, 0, 0, 0, 0, float(seconds))

    def seconds_until(self, column: Any) -> ColumnElement[Any]:
        return cast(extract("epoch", column - func.clock_timestamp()), Float)

    def insert(self) -> Any:
        return postgresql.insert(TABLE)


class _SqliteClock:
    FORMAT = "%Y-%m-%d %H:%M:%f"   # sortable text, milliseconds

    def now(self) -> ColumnElement[Any]:
        return func.strftime(self.FORMAT, "now")

    def after(self, seconds: float) -> ColumnElement[Any]:
        return func.strftime(self.FORMAT, "now", f"{float(seconds):+.3f} seconds")

    def seconds_until(self, column: Any) -> ColumnElement[Any]:
        return (func.julianday(column) - func.julianday("now")) * 86400.0

    def insert(self) -> Any:
        return sqlite.insert(TABLE)


def _clock(session: Session) -> _Clock:
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return _PostgresClock()
    if name == "sqlite":
        return _SqliteClock()
    raise NotImplementedError(f"leader lease on {name}: PostgreSQL or SQLite only")


def _is_postgresql(session: Session) -> bool:
    return bool(session.get_bind().dialect.name == "postgresql")


def _set_local(session: Session, **settings: float) -> None:
    """``SET LOCAL setting = <ms>`` for each (PostgreSQL only; until the transaction ends),
    in one round trip: a renewal is made of round trips, each a wait for the hub."""
    if _is_postgresql(session) and settings:
        calls = ", ".join(f"set_config('{name}', '{max(int(seconds * 1000), 1)}', true)"
                          for name, seconds in settings.items())
        session.execute(text(f"SELECT {calls}"))


# --- the lease --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LeaseHolder:
    """The lease as stored: who holds it, which term, seconds left (<= 0: lapsed)."""

    holder: str
    epoch: int
    expires_in: float


class Lease:
    """The lease called ``name`` in ``db``."""

    def __init__(self, db: Database, name: str = DEFAULT_LEASE_NAME) -> None:
        self.db = db
        self.name = name

    def acquire_or_renew(self, holder: str, lease_time: float) -> LeaseState:
        """Renew the lease if ``holder`` has it, take it if it lapsed; one transaction."""
        if not holder:
            raise ValueError("holder must not be empty")
        with self.db.session() as session:
            clock = _clock(session)
            _set_local(session, lock_timeout=lease_time / 3, statement_timeout=lease_time,
                       idle_in_transaction_session_timeout=lease_time)
            row = self._locked_row(session, clock)
            if row.holder == holder and row.remaining > 0:
                values: dict[str, Any] = {"expires_at": clock.after(lease_time)}
                epoch = row.epoch
            elif row.remaining <= 0:
                epoch = row.epoch + 1
                values = {"holder": holder, "epoch": epoch,
                          "expires_at": clock.after(lease_time)}
            else:
                return LeaseState(False, row.epoch, row.holder, row.remaining)
            remaining = session.execute(
                sql_update(TABLE).where(TABLE.c.name == self.name).values(values)
                .returning(clock.seconds_until(TABLE.c.expires_at))).scalar_one()
        return LeaseState(True, epoch, holder, float(remaining))

    def _locked_row(self, session: Session, clock: _Clock) -> Any:
        query = (select(TABLE.c.holder, TABLE.c.epoch,
                        clock.seconds_until(TABLE.c.expires_at).label("remaining"))
                 .where(TABLE.c.name == self.name).with_for_update())
        row = session.execute(query).one_or_none()
        if row is None:   # first use of this lease: a lapsed row nobody holds, epoch 0
            session.execute(clock.insert()
                            .values(name=self.name, holder="", epoch=0, expires_at=clock.now())
                            .on_conflict_do_nothing(index_elements=["name"]))
            row = session.execute(query).one()
        return row

    def release(self, holder: str, epoch: int) -> bool:
        """End our term now (a clean shutdown), so that another controller need not wait
        for the lease to lapse. The epoch stays: the next holder takes epoch + 1."""
        with self.db.session() as session:
            clock = _clock(session)
            _set_local(session, lock_timeout=1.0)
            result = session.execute(
                sql_update(TABLE)
                .where(TABLE.c.name == self.name, TABLE.c.holder == holder,
                       TABLE.c.epoch == epoch)
                .values(expires_at=clock.now()))
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def current(self) -> LeaseHolder | None:
        """The lease as stored now, or None if it was never taken."""
        with self.db.session() as session:
            clock = _clock(session)
            row = session.execute(
                select(TABLE.c.holder, TABLE.c.epoch,
                       clock.seconds_until(TABLE.c.expires_at))
                .where(TABLE.c.name == self.name)).one_or_none()
        if row is None or not row[0]:
            return None
        return LeaseHolder(row[0], int(row[1]), float(row[2]))


def fenced_write(session: Session, epoch: int, name: str = DEFAULT_LEASE_NAME,
                 idle_timeout: float | None = None) -> None:
    """The fence: call inside a write transaction, before or after its writes and before
    its commit. Raises :class:`FencedOut` unless lease ``name`` is still at ``epoch``.

    The row stays share-locked until the transaction ends, so no takeover can commit in
    between. ``idle_timeout`` (seconds, PostgreSQL): the server ends this transaction's
    session if the client leaves it idle that long (frozen), freeing the lock for the
    next leader; pass the lease time.
    """
    if idle_timeout is not None:
        _set_local(session, idle_in_transaction_session_timeout=idle_timeout)
    row = session.execute(
        select(TABLE.c.epoch, TABLE.c.holder).where(TABLE.c.name == name)
        .with_for_update(read=True)).one_or_none()
    if row is None or int(row[0]) != epoch:
        raise FencedOut(name, epoch, None if row is None else int(row[0]),
                        None if row is None else row[1])
