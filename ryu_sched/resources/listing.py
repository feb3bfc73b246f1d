"""Collections listed in SQL: filters, sorting and keyset pagination inside the query.

A resource declares a :class:`ListSpec`: which API attributes are columns (filterable with
``IN``, sortable), which other filters have an SQL form (``fixed_ips=ip_address=...``), how a
batch of rows becomes API dicts. :func:`list_page` then answers a :class:`ListQuery`:

- column filters, project visibility and ``marker``/``limit`` are SQL, so a page costs what
  the page holds, not what the collection holds;
- the order is the sort keys followed by ``id`` (unique), and a marker continues strictly
  after (or, with ``page_reverse``, before) the marker row's values: keyset pagination,
  stable while rows are added or removed;
- filters on attributes that are not columns (computed or JSON ones) are applied to the
  dicts; rows are then read in batches until the page is full;
- rows are read in batches with a yield to other green threads between them, so a list of
  tens of thousands of rows does not stall the event loop.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, case, false, func, literal, or_, select
from sqlalchemy.orm import Session

from ryu_sched import errors
from ryu_sched.resources import common
from ryu_sched.services import Services

BATCH = 200
_NULL_WORDS = ("", "None", "null")
_TRUE = ("true", "1")
_FALSE = ("false", "0")


class Kind(enum.Enum):
    TEXT = "text"
    BOOL = "bool"
    INT = "int"
    TIME = "time"      # sortable; filtered on the API's string form, after the query


@dataclasses.dataclass(frozen=True)
class Column:
    expr: Any
    kind: Kind = Kind.TEXT

    @property
    def nullable(self) -> bool:
        return bool(getattr(self.expr.expression, "nullable", True))


@dataclasses.dataclass(frozen=True)
class Sort:
    key: str
    descending: bool = False


@dataclasses.dataclass(frozen=True)
class ListQuery:
    """What a list request asks for (API attribute names, values as strings)."""

    filters: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    sorts: tuple[Sort, ...] = ()
    limit: int | None = None
    marker: str | None = None
    page_reverse: bool = False


@dataclasses.dataclass(frozen=True)
class Page:
    # API dicts, or what ``finish`` made of them.
    items: list[Any]
    # More items follow in the paging direction (after the page, or before it in reverse).
    more: bool = False


SqlFilter = Callable[[list[str]], Any]
Serializer = Callable[[Session, list[Any]], list[dict[str, Any]]]
# Applied to each batch of API dicts as soon as it is read: the REST layer encodes them to
# JSON there, so that a long list is held as text, not as many dicts for the garbage
# collector to walk again and again.
Finisher = Callable[[list[dict[str, Any]]], list[Any]]


@dataclasses.dataclass(frozen=True)
class ListSpec:
    model: Any
    id_column: Any
    columns: Mapping[str, Column]
    default_order: tuple[Any, ...]
    serialize: Serializer
    sql_filters: Mapping[str, SqlFilter] = dataclasses.field(default_factory=dict)
    # The names of the resource's API attributes (called by every list that filters: cache
    # them, e.g. the keys of a blank item). With it, a filter on a key that is neither an
    # attribute, a column nor an SQL filter is 400, as Neutron's filter-validation answers.
    attributes: Callable[[], Iterable[str]] | None = None


def check_filter_keys(spec: ListSpec, filters: Mapping[str, Any]) -> None:
    """400 ``HTTPBadRequest`` for filter keys the resource does not have."""
    if spec.attributes is None or not filters:
        return
    known = {*spec.attributes(), *spec.columns, *spec.sql_filters, "tenant_id",
             "project_id"}
    unknown = sorted(key for key in filters if key not in known)
    if unknown:
        raise errors.HTTPBadRequest(
            msg="[{}] is invalid attribute for filtering".format(", ".join(unknown)))


# --- filters --------------------------------------------------------------------------------

def _column_filter(column: Column, values: list[str]) -> Any:
    expr = column.expr
    wants_null = column.nullable and any(v in _NULL_WORDS for v in values)
    if column.kind is Kind.BOOL:
        wanted = {v.lower() in _TRUE for v in values if v.lower() in _TRUE + _FALSE}
        clause = expr.in_(sorted(wanted)) if wanted else false()
    elif column.kind is Kind.INT:
        numbers = sorted({int(v) for v in values
                          if v.isascii() and v.lstrip("-").isdigit() and str(int(v)) == v})
        clause = expr.in_(numbers) if numbers else false()
    else:
        clause = expr.in_(values)
    return or_(clause, expr.is_(None)) if wants_null else clause


def split_filters(spec: ListSpec, filters: Mapping[str, Any]
                  ) -> tuple[list[Any], dict[str, list[str]]]:
    """SQL clauses for what SQL can filter, and the rest to match on the API dicts."""
    clauses: list[Any] = []
    rest: dict[str, list[str]] = {}
    for key, values in common.normalize_filters(filters).items():
        column = spec.columns.get(key)
        if key in spec.sql_filters:   # first: it may refine a column (who sees what)
            clauses.append(spec.sql_filters[key](values))
        elif column is not None and column.kind is not Kind.TIME:
            clauses.append(_column_filter(column, values))
        else:
            rest[key] = values
    return clauses, rest


# --- order and keyset -------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class _Key:
    expr: Any
    descending: bool


def _order_keys(spec: ListSpec, sorts: Sequence[Sort]) -> list[_Key]:
    """Non-null SQL expressions in order; a nullable column sorts its nulls first."""
    keys: list[_Key] = []
    if not sorts:
        keys = [_Key(expr, False) for expr in spec.default_order]
    for sort in sorts:
        name = "project_id" if sort.key == "tenant_id" else sort.key
        column = spec.columns.get(name)
        if column is None:
            raise errors.HTTPBadRequest(msg=f"{sort.key} is invalid attribute for sort_key")
        if column.nullable:
            keys.append(_Key(case((column.expr.is_(None), 0), else_=1), sort.descending))
            blank = literal(0) if column.kind is Kind.INT else literal("")
            keys.append(_Key(func.coalesce(column.expr, blank), sort.descending))
        else:
            keys.append(_Key(column.expr, sort.descending))
    if not any(key.expr is spec.id_column for key in keys):
        keys.append(_Key(spec.id_column, False))
    return keys


def _after(keys: Sequence[_Key], values: Sequence[Any], reverse: bool) -> Any:
    """Rows strictly after ``values`` in the order of ``keys`` (before it when reversed)."""
    # Marker values as typed literals: SQLAlchemy refuses ``column < True`` for booleans.
    marks = [literal(value, type_=key.expr.type) for key, value in zip(keys, values,
                                                                         strict=True)]
    alternatives = []
    for index, key in enumerate(keys):
        later = key.descending != reverse
        step = key.expr < marks[index] if later else key.expr > marks[index]
        equal = [keys[i].expr == marks[i] for i in range(index)]
        alternatives.append(and_(*equal, step))
    return or_(*alternatives)


def _ordering(keys: Sequence[_Key], reverse: bool) -> list[Any]:
    return [key.expr.desc() if key.descending != reverse else key.expr.asc() for key in keys]


# --- the page ---------------------------------------------------------------------------------

def _pause() -> None:
    """Let other green threads run; nothing to do in a process without eventlet."""
    eventlet = sys.modules.get("eventlet")
    if eventlet is not None:
        eventlet.sleep(0)


def list_page(services: Services, spec: ListSpec, query: ListQuery,
              scope: Sequence[Any] = (), finish: Finisher | None = None) -> Page:
    """The items of ``query`` among the rows ``scope`` (visibility clauses) admits."""
    check_filter_keys(spec, query.filters)
    clauses, rest = split_filters(spec, query.filters)
    keys = _order_keys(spec, query.sorts)
    limit = query.limit if query.limit else None
    reverse = query.page_reverse and query.marker is not None
    exprs = [key.expr for key in keys]

    def work(session: Session) -> Page:
        statement = select(spec.model, *exprs).where(*scope, *clauses)
        if query.marker is not None:
            marker = session.execute(select(*exprs).where(
                spec.id_column == query.marker, *scope)).first()
            if marker is None:
                raise errors.HTTPBadRequest(msg=f"marker {query.marker} not found")
            statement = statement.where(_after(keys, list(marker), reverse))
        statement = statement.order_by(*_ordering(keys, reverse))
        if limit is not None and not rest:
            statement = statement.limit(limit + 1)
        result = session.execute(statement.execution_options(yield_per=BATCH))
        items: list[Any] = []
        wanted = None if limit is None else limit + 1
        for partition in result.partitions():
            rows = [row[0] for row in partition]
            batch = spec.serialize(session, rows)
            if rest:
                batch = common.filter_items(batch, rest)
            items.extend(finish(batch) if finish is not None else batch)
            if wanted is not None and len(items) >= wanted:
                break
            _pause()
        result.close()
        more = wanted is not None and len(items) >= wanted
        if more:
            del items[limit:]
        if reverse:
            items.reverse()
        return Page(items, more)

    return common.read(services, work)


# --- lists that live in memory (agents) -------------------------------------------------------

def _memory_sort_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value))


def page_items(items: Sequence[dict[str, Any]], query: ListQuery,
               finish: Finisher | None = None) -> Page:
    """The SQL paging contract over a list already in memory (and already filtered): sort
    keys then id, ``marker`` (an id that must be in the list), ``limit``, ``page_reverse``."""
    for sort in query.sorts:
        if items and sort.key not in items[0]:
            raise errors.HTTPBadRequest(msg=f"{sort.key} is invalid attribute for sort_key")
    ordered = sorted(items, key=lambda item: str(item.get("id")))
    for sort in reversed(query.sorts):
        ordered.sort(key=lambda item, k=sort.key: _memory_sort_value(item.get(k)),
                     reverse=sort.descending)
    reverse = query.page_reverse and query.marker is not None
    if query.marker is not None:
        index = next((i for i, item in enumerate(ordered) if item.get("id") == query.marker),
                     None)
        if index is None:
            raise errors.HTTPBadRequest(msg=f"marker {query.marker} not found")
        ordered = list(reversed(ordered[:index])) if reverse else ordered[index + 1:]
    more = query.limit is not None and query.limit > 0 and len(ordered) > query.limit
    if more:
        ordered = ordered[:query.limit]
    if reverse:
        ordered.reverse()
    return Page(finish(list(ordered)) if finish else list(ordered), more)

