"""Security groups: named sets of rules, a ``default`` group per project.

A project's default group is made on its first use (its first port, its first list of
security groups, its first group of its own), with the rules Neutron gives it: egress to
anywhere and ingress from the group's own members, IPv4 and IPv6. Rules are managed in
:mod:`ryu_sched.resources.security_group_rules`; ports join groups through
:mod:`ryu_sched.resources.port_filters`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ryu_sched import errors
from ryu_sched.db.models import (
    DefaultSecurityGroup,
    SecurityGroup,
    SecurityGroupPortBinding,
    SecurityGroupRule,
    new_id,
)
from ryu_sched.events import Action, SecurityGroupChanged, SecurityGroupRuleChanged
from ryu_sched.resources import common, listing
from ryu_sched.resources.common import Tx
from ryu_sched.resources.context import Context
from ryu_sched.resources.validation import (
    DESCRIPTION,
    Attr,
    check_body,
    to_bool,
    to_str,
)
from ryu_sched.services import Services

DEFAULT_NAME = "default"
DEFAULT_DESCRIPTION = "Default security group"


def _stateful_only(value: Any, name: str) -> bool:
    if not to_bool(value, name):
        raise errors.HTTPBadRequest(
            msg=f"Invalid input for {name}. Reason: only stateful security groups are "
                "supported by ryu-sched.")
    return True


SPEC: dict[str, Attr] = {
    "name": Attr(to_str(255)),
    "description": DESCRIPTION,
    "stateful": Attr(_stateful_only, put=False),
}


def rule_to_dict(rule: SecurityGroupRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "project_id": rule.project_id,
        "tenant_id": rule.project_id,
        "security_group_id": rule.security_group_id,
        "direction": rule.direction,
        "ethertype": rule.ethertype,
        "protocol": rule.protocol,
        "port_range_min": rule.port_range_min,
        "port_range_max": rule.port_range_max,
        "remote_ip_prefix": rule.remote_ip_prefix,
        "remote_group_id": rule.remote_group_id,
        "remote_address_group_id": None,
        "description": rule.description,
        **common.timestamps(rule),
    }


def to_dict(group: SecurityGroup) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "description": group.description,
        "project_id": group.project_id,
        "tenant_id": group.project_id,
        "stateful": True,
        "shared": False,
        "security_group_rules": [rule_to_dict(r) for r in group.rules],
        "tags": [],
        **common.timestamps(group),
    }


def load(session: Session, context: Context, group_id: str) -> SecurityGroup:
    group = session.get(SecurityGroup, group_id)
    if group is None or not context.can_see(group.project_id):
        raise errors.SecurityGroupNotFound(id=group_id)
    return group


def is_default(session: Session, group: SecurityGroup) -> bool:
    return session.scalar(select(DefaultSecurityGroup.project_id).where(
        DefaultSecurityGroup.security_group_id == group.id)) is not None


def default_group_id(session: Session, project_id: str) -> str | None:
    return session.scalar(select(DefaultSecurityGroup.security_group_id).where(
        DefaultSecurityGroup.project_id == project_id))


def ensure_default(tx: Tx, project_id: str) -> str:
    """The id of the project's default group, created (with its rules) if it has none.

    Two requests racing to create it collide on the primary key of
    ``default_security_groups``; :func:`common.run` retries the loser, which then finds it.
    """
    session = tx.session
    existing = default_group_id(session, project_id)
    if existing is not None:
        return existing
    group = SecurityGroup(id=new_id(), project_id=project_id, name=DEFAULT_NAME,
                          description=DEFAULT_DESCRIPTION)
    session.add(group)
    session.flush()
    session.add(DefaultSecurityGroup(project_id=project_id, security_group_id=group.id))
    for direction in ("egress", "ingress"):
        for ethertype in ("IPv4", "IPv6"):
            rule = SecurityGroupRule(
                id=new_id(), project_id=project_id, security_group_id=group.id,
                direction=direction, ethertype=ethertype,
                remote_group_id=group.id if direction == "ingress" else None)
            group.rules.append(rule)
    session.flush()
    tx.emit(SecurityGroupChanged(Action.CREATE, group.id, project_id))
    for rule in group.rules:
        tx.emit(SecurityGroupRuleChanged(Action.CREATE, rule.id, group.id,
                                         rule.remote_group_id, rule.direction))
    return group.id


def ensure_default_for(services: Services, project_id: str) -> None:
    """Make the project's default group unless it exists (a write only the first time)."""
    exists = common.read(services, lambda s: default_group_id(s, project_id) is not None)
    if not exists:
        common.run(services, lambda tx: ensure_default(tx, project_id))


# --- public service functions -------------------------------------------------------------

def get_security_group(services: Services, context: Context, group_id: str
                       ) -> dict[str, Any]:
    return common.read(services, lambda s: to_dict(load(s, context, group_id)))


LIST = listing.ListSpec(
    model=SecurityGroup, id_column=SecurityGroup.id,
    default_order=(SecurityGroup.created_at, SecurityGroup.id),
    columns={
        "id": listing.Column(SecurityGroup.id),
        "name": listing.Column(SecurityGroup.name),
        "description": listing.Column(SecurityGroup.description),
        "project_id": listing.Column(SecurityGroup.project_id),
        "created_at": listing.Column(SecurityGroup.created_at, listing.Kind.TIME),
        "updated_at": listing.Column(SecurityGroup.updated_at, listing.Kind.TIME),
    },
    serialize=lambda session, rows: [to_dict(g) for g in rows])


def page_security_groups(services: Services, context: Context, query: listing.ListQuery,
                         finish: listing.Finisher | None = None) -> listing.Page:
    ensure_default_for(services, context.project_id)
    scope = [] if context.is_admin else [SecurityGroup.project_id == context.project_id]
    return listing.list_page(services, LIST, query, scope, finish)


def list_security_groups(services: Services, context: Context,
                         filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    return page_security_groups(services, context,
                                listing.ListQuery(filters=filters or {})).items


def create_security_group(services: Services, context: Context,
                          attrs: Mapping[str, Any]) -> dict[str, Any]:
    values = check_body("security_group", SPEC, attrs, context, create=True)
    if values.get("name") == DEFAULT_NAME:
        raise errors.SecurityGroupDefaultAlreadyExists()

    def work(tx: Tx) -> dict[str, Any]:
        project_id = values["project_id"]
        ensure_default(tx, project_id)
        group = SecurityGroup(id=new_id(), project_id=project_id,
                              name=values.get("name", ""),
                              description=values.get("description", ""))
        tx.session.add(group)
        tx.session.flush()
        # Neutron gives a new group egress to anywhere; ingress is closed until rules say.
        for ethertype in ("IPv4", "IPv6"):
            group.rules.append(SecurityGroupRule(
                id=new_id(), project_id=project_id, security_group_id=group.id,
                direction="egress", ethertype=ethertype))
        tx.session.flush()
        tx.emit(SecurityGroupChanged(Action.CREATE, group.id, project_id))
        for rule in group.rules:
            tx.emit(SecurityGroupRuleChanged(Action.CREATE, rule.id, group.id, None,
                                             rule.direction))
        return to_dict(group)

    return common.run(services, work)


def update_security_group(services: Services, context: Context, group_id: str,
                          attrs: Mapping[str, Any]) -> dict[str, Any]:
    values = check_body("security_group", SPEC, attrs, context, create=False)

    def work(tx: Tx) -> dict[str, Any]:
        group = load(tx.session, context, group_id)
        default = is_default(tx.session, group)
        if "name" in values and values["name"] != group.name:
            if default:
                raise errors.SecurityGroupCannotUpdateDefault()
            if values["name"] == DEFAULT_NAME:
                raise errors.SecurityGroupDefaultAlreadyExists()
        changed = []
        for key in ("name", "description"):
            if key in values and getattr(group, key) != values[key]:
                setattr(group, key, values[key])
                changed.append(key)
        tx.session.flush()
        if changed:
            tx.emit(SecurityGroupChanged(Action.UPDATE, group.id, group.project_id,
                                         tuple(changed)))
        return to_dict(group)

    return common.run(services, work)


def delete_security_group(services: Services, context: Context, group_id: str) -> None:
    def work(tx: Tx) -> None:
        session = tx.session
        group = load(session, context, group_id)
        if is_default(session, group) and not context.is_admin:
            raise errors.SecurityGroupCannotRemoveDefault()
        in_use = session.scalar(select(SecurityGroupPortBinding.port_id).where(
            SecurityGroupPortBinding.security_group_id == group.id).limit(1))
        if in_use is not None:
            raise errors.SecurityGroupInUse(id=group.id)
        # Rules of other groups that name this one as their remote go with it.
        naming = list(session.scalars(select(SecurityGroupRule).where(
            SecurityGroupRule.remote_group_id == group.id,
            SecurityGroupRule.security_group_id != group.id)))
        events = [SecurityGroupRuleChanged(Action.DELETE, r.id, r.security_group_id,
                                           r.remote_group_id, r.direction) for r in naming]
        for rule in naming:
            session.delete(rule)
        project_id = group.project_id
        session.delete(group)
        session.flush()
        for event in events:
            tx.emit(event)
        tx.emit(SecurityGroupChanged(Action.DELETE, group_id, project_id))

    common.run(services, work)

