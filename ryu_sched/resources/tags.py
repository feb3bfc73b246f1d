"""Tags on networks, subnets, ports, routers and floating IPs (Neutron's ``standard-attr-tag``,
``tag-creation``).

A tag is a string of 1 to 60 characters without control characters; a resource holds a set
of them (``tags``, listed in order). The tag API (``/v2.0/<plural>/<id>/tags[/<tag>]``) reads
tags of a resource the caller can see and changes tags of one it owns; ``tags`` may also be
given when creating a resource. Lists filter on them in SQL: ``tags`` (all of), ``tags-any``
(one of), ``not-tags`` (not all of), ``not-tags-any`` (none of), each a comma-separated list;
repeating a key adds to its list.

Tag changes bump the resource's ``revision_number`` (its tag collection changed) and publish
no event: nothing in the data plane depends on them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import func, not_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ryu_sched import errors
from ryu_sched.db.models import StandardAttrMixin
from ryu_sched.resources import common
from ryu_sched.resources.common import Tx
from ryu_sched.resources.context import Context
from ryu_sched.resources.validation import Attr, to_str
from ryu_sched.services import Services

MAX_TAG_LEN = 60
_tag_text = to_str(MAX_TAG_LEN)


def to_tag(value: Any, name: str = "tag") -> str:
    text = _tag_text(value, name)
    assert text is not None
    if not text:
        raise errors.HTTPBadRequest(msg=f"Invalid input for {name}. Reason: a tag cannot "
                                        "be empty.")
    return text


def to_tags(value: Any, name: str = "tags") -> list[str]:
    """A list of tags, duplicates dropped (first occurrence kept)."""
    if not isinstance(value, list):
        raise errors.HTTPBadRequest(msg=f"Invalid input for {name}. Reason: '{value}' is "
                                        "not a list.")
    return list(dict.fromkeys(to_tag(item, name) for item in value))


#: The ``tags`` attribute of a resource's POST body.
TAGS = Attr(to_tags, put=False)


def tag_model(model: type[StandardAttrMixin]) -> Any:
    """The tag table class of a resource class (``Network`` -> ``NetworkTag``)."""
    return model.tag_rows.property.mapper.class_  # type: ignore[attr-defined]


def tag_list(obj: StandardAttrMixin) -> list[str]:
    return [row.tag for row in obj.tag_rows]


def set_tags(obj: StandardAttrMixin, tags: Iterable[str]) -> None:
    """Make the resource's tags exactly ``tags`` (rows of kept tags stay)."""
    wanted = list(dict.fromkeys(tags))
    have = {row.tag: row for row in obj.tag_rows}
    cls = tag_model(type(obj))
    obj.tag_rows = sorted((have.get(tag) or cls(tag=tag) for tag in wanted),
                          key=lambda row: row.tag)


def preload(session: Session, rows: Sequence[StandardAttrMixin]) -> None:
    """Read the tags of a batch of rows of one class in one query (lists)."""
    if not rows:
        return
    cls = tag_model(type(rows[0]))
    ids = [str(row.id) for row in rows]  # type: ignore[attr-defined]
    found: dict[str, list[Any]] = {}
    for tag in session.scalars(select(cls).where(cls.resource_id.in_(ids))
                               .order_by(cls.resource_id, cls.tag)):
        found.setdefault(tag.resource_id, []).append(tag)
    for row in rows:
        set_committed_value(row, "tag_rows", found.get(str(row.id), []))  # type: ignore


def with_tags(serialize: Callable[[Session, list[Any]], list[dict[str, Any]]]
              ) -> Callable[[Session, list[Any]], list[dict[str, Any]]]:
    """A list serializer that reads the batch's tags first (one query, not one per row)."""
    def serialize_with_tags(session: Session, rows: list[Any]) -> list[dict[str, Any]]:
        preload(session, rows)
        return serialize(session, rows)
    return serialize_with_tags


# --- list filters -----------------------------------------------------------------------

def _wanted(values: list[str]) -> list[str]:
    return list(dict.fromkeys(tag for value in values for tag in value.split(",") if tag))


def filters(model: type[StandardAttrMixin]) -> dict[str, Callable[[list[str]], Any]]:
    """The four tag filters of a resource's list, as SQL (``listing.ListSpec.sql_filters``)."""
    cls = tag_model(model)
    resource_id = model.id  # type: ignore[attr-defined]

    def having_all(tags: list[str]) -> Any:
        return resource_id.in_(select(cls.resource_id).where(cls.tag.in_(tags))
                               .group_by(cls.resource_id)
                               .having(func.count(cls.tag) == len(tags)))

    def having_any(tags: list[str]) -> Any:
        return resource_id.in_(select(cls.resource_id).where(cls.tag.in_(tags)))

    def tags_all(values: list[str]) -> Any:
        tags = _wanted(values)
        return having_all(tags) if tags else resource_id.is_not(None)

    def tags_any(values: list[str]) -> Any:
        tags = _wanted(values)
        return having_any(tags) if tags else resource_id.is_not(None)

    def not_tags(values: list[str]) -> Any:
        tags = _wanted(values)
        return not_(having_all(tags)) if tags else resource_id.is_not(None)

    def not_tags_any(values: list[str]) -> Any:
        tags = _wanted(values)
        return not_(having_any(tags)) if tags else resource_id.is_not(None)

    return {"tags": tags_all, "tags-any": tags_any, "not-tags": not_tags,
            "not-tags-any": not_tags_any}


#: The filter keys :func:`filters` answers.
FILTER_KEYS = frozenset({"tags", "tags-any", "not-tags", "not-tags-any"})


# --- the tag API --------------------------------------------------------------------------

Loader = Callable[[Session, Context, str], Any]


@dataclasses.dataclass(frozen=True)
class Taggable:
    """A resource with tags: how to find one the caller may read, and one it may change."""

    singular: str
    plural: str
    load: Loader         # visible to the caller, else its NotFound
    load_owned: Loader   # changeable by the caller, else its NotFound


def get_tags(services: Services, context: Context, res: Taggable, resource_id: str
             ) -> list[str]:
    return common.read(services, lambda s: tag_list(res.load(s, context, resource_id)))


def check_tag(services: Services, context: Context, res: Taggable, resource_id: str,
              tag: str) -> None:
    """Nothing if the resource has ``tag``; 404 ``TagNotFound`` otherwise."""
    if tag not in get_tags(services, context, res, resource_id):
        raise errors.TagNotFound(tag=tag)


def _change(services: Services, context: Context, res: Taggable, resource_id: str,
            change: Callable[[list[str]], list[str]]) -> list[str]:
    def work(tx: Tx) -> list[str]:
        obj = res.load_owned(tx.session, context, resource_id)
        set_tags(obj, change(tag_list(obj)))
        tx.session.flush()
        return tag_list(obj)
    return common.run(services, work)


def _body_tags(body: Any) -> list[str]:
    if not isinstance(body, dict) or set(body) != {"tags"}:
        raise errors.HTTPBadRequest(msg="Invalid tags body: expected {\"tags\": [...]}")
    return to_tags(body["tags"])


def replace_tags(services: Services, context: Context, res: Taggable, resource_id: str,
                 body: Any) -> list[str]:
    tags = _body_tags(body)
    return _change(services, context, res, resource_id, lambda _current: tags)


def add_tags(services: Services, context: Context, res: Taggable, resource_id: str,
             body: Any) -> list[str]:
    """``POST .../tags`` (Neutron's ``tag-creation``): add several tags at once."""
    tags = _body_tags(body)
    return _change(services, context, res, resource_id, lambda current: [*current, *tags])


def add_tag(services: Services, context: Context, res: Taggable, resource_id: str,
            tag: str) -> None:
    tag = to_tag(tag)
    _change(services, context, res, resource_id, lambda current: [*current, tag])


def remove_tag(services: Services, context: Context, res: Taggable, resource_id: str,
               tag: str) -> None:
    def without(current: list[str]) -> list[str]:
        if tag not in current:
            raise errors.TagNotFound(tag=tag)
        return [t for t in current if t != tag]
    _change(services, context, res, resource_id, without)


def remove_all_tags(services: Services, context: Context, res: Taggable,
                    resource_id: str) -> None:
    _change(services, context, res, resource_id, lambda _current: [])
