"""Request-body validation: which attributes exist, their types, who may set them.

Each resource declares a spec (``{name: Attr}``). :func:`check_body` rejects unknown attributes,
read-only ones, wrong types (400, Neutron's ``HTTPBadRequest``) and admin-only ones set by a
non-admin (403), and returns the converted values of what was given.
"""

from __future__ import annotations

import dataclasses
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ryu_sched import errors
from ryu_sched.resources.context import Context

Converter = Callable[[Any, str], Any]


def _bad(name: str, reason: str) -> errors.HTTPBadRequest:
    return errors.HTTPBadRequest(msg=f"Invalid input for {name}. Reason: {reason}.")


def to_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _bad(name, f"'{value}' cannot be converted to boolean")


def _control_characters(value: str, allowed: str) -> list[str]:
    return [c for c in value if unicodedata.category(c) == "Cc" and c not in allowed]


def to_str(max_len: int = 255, nullable: bool = False, allowed_controls: str = ""
           ) -> Converter:
    """A string of at most ``max_len`` characters.

    Control characters (Unicode category Cc: NUL, ESC and other terminal escapes, DEL, C1)
    are refused unless listed in ``allowed_controls``: names end up in logs, terminals and
    the configuration files of agents.
    """
    def convert(value: Any, name: str) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise _bad(name, f"'{value}' is not a valid string")
        if len(value) > max_len:
            raise _bad(name, f"'{value}' exceeds maximum length of {max_len}")
        if not value.isprintable():
            bad = _control_characters(value, allowed_controls)
            if bad:
                raise _bad(name, f"control character {bad[0]!r} is not allowed")
        return value
    return convert


def to_int(low: int, high: int, nullable: bool = False) -> Converter:
    def convert(value: Any, name: str) -> int | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool):
            raise _bad(name, f"'{value}' is not an integer")
        if isinstance(value, str):
            # ASCII decimal digits only: int() also takes Arabic-Indic digits, " 15", "1_500".
            text = value[1:] if value[:1] in "+-" else value
            if not (text.isascii() and text.isdigit()) or len(text) > 18:
                raise _bad(name, f"'{value}' is not an integer")
            value = int(value)
        if not isinstance(value, int):
            raise _bad(name, f"'{value}' is not an integer")
        if not low <= value <= high:
            raise _bad(name, f"'{value}' is not in range {low} through {high}")
        return value
    return convert


def to_uuid(nullable: bool = False) -> Converter:
    def convert(value: Any, name: str) -> str | None:
        if value is None and nullable:
            return None
        if not isinstance(value, str):
            raise _bad(name, f"'{value}' is not a valid UUID")
        try:
            uuid.UUID(value)
        except ValueError:
            raise _bad(name, f"'{value}' is not a valid UUID") from None
        return value
    return convert


def to_uuid_list(nullable: bool = False) -> Converter:
    """A list of UUIDs (``security_groups``), duplicates dropped, order kept."""
    one = to_uuid()

    def convert(value: Any, name: str) -> list[str] | None:
        if value is None and nullable:
            return None
        if not isinstance(value, list):
            raise _bad(name, f"'{value}' is not a list")
        return list(dict.fromkeys(one(item, name) for item in value))
    return convert


def to_str_list(value: Any, name: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(name, f"'{value}' is not a list of strings")
    return list(value)


def to_list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(name, f"'{value}' is not a list")
    return list(value)


def to_dict_or_none(value: Any, name: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _bad(name, f"'{value}' is not a dictionary")
    return dict(value)


def to_raw(value: Any, name: str) -> Any:
    return value


def to_empty_list(value: Any, name: str) -> list[Any]:
    """Attributes we expose but do not implement (``routes``, ``security_groups``)."""
    if value is None:
        return []
    if value != []:
        raise _bad(name, "only an empty list is supported by ryu-sched")
    return []


def to_false(value: Any, name: str) -> bool:
    """``ha`` / ``distributed``: only false is supported."""
    if to_bool(value, name):
        raise _bad(name, "only false is supported by ryu-sched")
    return False


@dataclasses.dataclass(frozen=True)
class Attr:
    convert: Converter
    post: bool = True
    put: bool = True
    admin: bool = False
    required: bool = False


PROJECT = Attr(to_str(255), put=False)
NAME = Attr(to_str(255))
# Descriptions may run over several lines.
DESCRIPTION = Attr(to_str(255, allowed_controls="\t\n"))
ADMIN_STATE = Attr(to_bool)


def check_body(resource: str, spec: Mapping[str, Attr], body: Mapping[str, Any],
               context: Context, *, create: bool) -> dict[str, Any]:
    full = {"project_id": PROJECT, "tenant_id": PROJECT, **spec}
    unknown = sorted(key for key in body if key not in full)
    if unknown:
        raise errors.HTTPBadRequest(
            msg="Unrecognized attribute(s) '{}'".format(", ".join(unknown)))
    action = ("create_" if create else "update_") + resource
    result: dict[str, Any] = {}
    for key, value in body.items():
        attr = full[key]
        if create and not attr.post:
            raise errors.HTTPBadRequest(msg=f"Attribute '{key}' not allowed in POST")
        if not create and not attr.put:
            raise errors.HTTPBadRequest(msg=f"Cannot update read-only attribute {key}")
        converted = attr.convert(value, key)
        if attr.admin and not context.is_admin:
            raise errors.PolicyNotAuthorized(action=f"{action}:{key}")
        result[key] = converted
    if create:
        missing = [key for key, attr in spec.items() if attr.required and key not in result]
        if missing:
            raise errors.HTTPBadRequest(
                msg=f"Failed to parse request. Required attribute '{missing[0]}' not "
                    "specified")
    project = result.pop("tenant_id", None)
    if "project_id" in result:
        if project is not None and project != result["project_id"]:
            raise errors.HTTPBadRequest(msg="'project_id' and 'tenant_id' do not match")
        project = result["project_id"]
    if project is not None:
        if not context.is_admin and project != context.project_id:
            raise errors.PolicyNotAuthorized(action=f"{action}:project_id")
        result["project_id"] = project
    elif create:
        result["project_id"] = context.project_id
    return result
