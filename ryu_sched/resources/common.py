"""What every resource module shares: the transaction runner, time format, filters, paging."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ryu_sched import errors
from ryu_sched.events import Event
from ryu_sched.services import Services

T = TypeVar("T")

class Tx:
    """One unit of work: the session plus the events to publish once it has committed."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.events: list[Event] = []

    def emit(self, event: Event) -> None:
        self.events.append(event)


def run(services: Services, work: Callable[[Tx], T], retries: int = 3) -> T:
    """Run ``work`` in a transaction, commit, then publish its events.

    A unique-constraint violation means another writer won a race (same VLAN, IP or MAC);
    the work is retried from scratch, re-reading what is taken, before giving up with 409.
    """
    for attempt in range(retries):
        try:
            with services.db.session() as session:
                tx = Tx(session)
                result = work(tx)
        except IntegrityError as exc:
            if attempt == retries - 1:
                raise errors.Conflict(f"Concurrent update, please retry: {exc.orig}") from None
            continue
        for event in tx.events:
            services.bus.publish(event)
        return result
    raise AssertionError("unreachable")


def read(services: Services, work: Callable[[Session], T]) -> T:
    with services.db.session() as session:
        return work(session)


def fmt_time(value: dt.datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


def timestamps(obj: Any) -> dict[str, str | None]:
    return {"created_at": fmt_time(obj.created_at), "updated_at": fmt_time(obj.updated_at)}


# --- filters ------------------------------------------------------------------------------

def normalize_filters(filters: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Scalars and lists both accepted; values compared as strings (repeated key = OR)."""
    result: dict[str, list[str]] = {}
    for key, value in (filters or {}).items():
        values = value if isinstance(value, list | tuple | set) else [value]
        strings = []
        for item in values:
            if isinstance(item, bool):
                strings.append("true" if item else "false")
            else:
                strings.append("" if item is None else str(item))
        if key == "tenant_id":
            key = "project_id"
        result.setdefault(key, []).extend(strings)
    return result


_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


def _value_matches(value: Any, wanted: list[str]) -> bool:
    if isinstance(value, bool):
        accepted = _TRUE if value else _FALSE
        return any(w.lower() in accepted for w in wanted)
    if value is None:
        return any(w in ("", "None", "null") for w in wanted)
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            # fixed_ips=ip_address=10.0.0.3 / fixed_ips=subnet_id=<id>
            for want in wanted:
                key, sep, expected = want.partition("=")
                if sep and any(str(entry.get(key)) == expected for entry in value):
                    return True
            return False
        return any(str(v) in wanted for v in value)
    return str(value) in wanted


def matches(item: Mapping[str, Any], filters: Mapping[str, list[str]]) -> bool:
    """Unknown filter keys are ignored, as older Neutron releases do."""
    for key, wanted in filters.items():
        if key not in item:
            continue
        if not _value_matches(item[key], wanted):
            return False
    return True


def filter_items(items: Iterable[dict[str, Any]],
                 filters: Mapping[str, list[str]]) -> list[dict[str, Any]]:
    return [item for item in items if matches(item, filters)]


# --- fields ------------------------------------------------------------------------------

def select_fields(item: dict[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    if not fields:
        return item
    return {key: item[key] for key in fields if key in item}
