"""Revision numbers: bumped once per transaction that changes a resource, and ``If-Match``.

Every flush looks at the changed objects that carry Neutron's standard attributes
(:class:`~ryu_sched.db.models.StandardAttrMixin`): one whose columns or collections (fixed
IPs, tags, routes) really changed gets ``revision_number + 1``, once per transaction however
many flushes it takes. Bumping the column is an UPDATE of the row, so ``updated_at`` moves
with it. Resources that change through another table without the ORM noticing (a subnet
added to a network) are bumped with :func:`touch`.

``If-Match: revision_number=N`` (:func:`constrained`): while the block runs, the first flush
that changes or deletes that resource compares the revision it had when the transaction
first read it with ``N`` and raises
:class:`~ryu_sched.errors.RevisionNumberConstraintFailed` (412) if they differ; the
transaction then rolls back. A request that changes nothing is not checked, as in Neutron.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from ryu_sched import errors
from ryu_sched.db.models import StandardAttrMixin, utcnow

_BUMPED = "ryu_sched.revisions.bumped"
_FIRST_SEEN = "ryu_sched.revisions.first_seen"


@dataclasses.dataclass(frozen=True)
class RevisionConstraint:
    """The resource ``model`` ``resource_id`` must be at ``revision`` when it is changed."""

    model: type[StandardAttrMixin]
    resource_id: str
    revision: int


_constraint: contextvars.ContextVar[RevisionConstraint | None] = contextvars.ContextVar(
    "ryu_sched_revision_constraint", default=None)


@contextlib.contextmanager
def constrained(constraint: RevisionConstraint | None) -> Iterator[None]:
    """Enforce ``constraint`` (nothing when None) on the transactions run in this block (in
    this green thread)."""
    token = _constraint.set(constraint)
    try:
        yield
    finally:
        _constraint.reset(token)


def parse_if_match(header: str | None) -> int | None:
    """The N of ``If-Match: revision_number=N``; None without such a header (other
    ``If-Match`` forms, such as entity tags, are ignored)."""
    if not header:
        return None
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if sep and name.strip() == "revision_number":
            value = value.strip()
            if not (value.isascii() and value.isdigit()):
                raise errors.HTTPBadRequest(
                    msg=f"If-Match revision_number must be an integer, not '{value}'")
            return int(value)
    return None


def touch(obj: StandardAttrMixin) -> None:
    """Count a change made elsewhere (another table) as a change of ``obj``."""
    obj.updated_at = utcnow()  # type: ignore[attr-defined]


def _committed_revision(obj: StandardAttrMixin) -> int:
    history = inspect(obj).attrs.revision_number.history
    if history.deleted:
        return int(history.deleted[0])
    return int(obj.revision_number or 0)


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    # Objects (by identity) already bumped in this transaction, or created by it.
    bumped: set[Any] = session.info.setdefault(_BUMPED, set())
    first_seen: dict[Any, int] = session.info.setdefault(_FIRST_SEEN, {})
    bumped.update(obj for obj in session.new if isinstance(obj, StandardAttrMixin))
    constraint = _constraint.get()
    changed = [obj for obj in session.dirty
               if isinstance(obj, StandardAttrMixin) and session.is_modified(obj)]
    deleted = [obj for obj in session.deleted if isinstance(obj, StandardAttrMixin)]
    for obj in changed + deleted:
        if obj not in first_seen:
            first_seen[obj] = _committed_revision(obj)
    if constraint is not None:
        for obj in changed + deleted:
            if isinstance(obj, constraint.model) and obj.id == constraint.resource_id \
                    and first_seen[obj] != constraint.revision:
                raise errors.RevisionNumberConstraintFailed(
                    expected=constraint.revision, current=first_seen[obj])
    for obj in changed:
        if obj not in bumped:
            bumped.add(obj)
            obj.revision_number = first_seen[obj] + 1


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_BUMPED, None)
        session.info.pop(_FIRST_SEEN, None)


def model_for(singular: str) -> type[StandardAttrMixin] | None:
    """The class of an API resource with a revision number (``"network"`` -> ``Network``,
    ``"security_group"`` -> ``SecurityGroup``), None for resources without one."""
    wanted = singular.replace("_", "")
    for cls in StandardAttrMixin.__subclasses__():
        if cls.__name__.lower() == wanted:
            return cls
    return None
