"""Security group rules: what a group allows, one direction, ethertype, protocol and remote.

:func:`normalize` checks a rule request the way Neutron does (protocol names or numbers,
port ranges, ICMP type and code, remote group or prefix, ethertype against the prefix) and
gives its canonical form, which also decides whether two rules are the same
(``SecurityGroupRuleExists``). Every IPv4 rule it accepts is one the flow compiler accepts
(:class:`flows.model.SecurityGroupRule`), so a stored rule can never break a snapshot.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ryu_sched import errors
from ryu_sched.db.models import SecurityGroupRule, new_id
from ryu_sched.events import Action, SecurityGroupRuleChanged
from ryu_sched.flows import model as fm
from ryu_sched.resources import common, listing
from ryu_sched.resources import security_groups as groups_mod
from ryu_sched.resources.common import Tx
from ryu_sched.resources.context import Context
from ryu_sched.resources.security_groups import rule_to_dict
from ryu_sched.resources.validation import (
    DESCRIPTION,
    Attr,
    check_body,
    to_uuid,
)
from ryu_sched.services import Services

#: IP protocol names the API accepts (as Neutron does), with their numbers.
PROTOCOL_NUMBERS: Mapping[str, int] = {
    "hopopt": 0, "ip": 0, "icmp": 1, "igmp": 2, "ipip": 4, "tcp": 6, "egp": 8, "udp": 17,
    "dccp": 33, "ipv6-encap": 41, "ipv6-route": 43, "ipv6-frag": 44, "rsvp": 46, "gre": 47,
    "esp": 50, "ah": 51, "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
    "ospf": 89, "vrrp": 112, "pgm": 113, "sctp": 132, "udplite": 136,
}
ANY = "any"
TCP, UDP, ICMP, IPV6_ICMP = 6, 17, 1, 58
#: Protocols whose rules may name destination ports (the pipeline filters tcp and udp).
PORT_PROTOCOLS = frozenset({TCP, UDP})
ICMP_PROTOCOLS = frozenset({ICMP, IPV6_ICMP})
DIRECTIONS = ("ingress", "egress")
ETHERTYPES = ("IPv4", "IPv6")


def _bad(name: str, reason: str) -> errors.HTTPBadRequest:
    return errors.HTTPBadRequest(msg=f"Invalid input for {name}. Reason: {reason}.")


def to_direction(value: Any, name: str) -> str:
    if value not in DIRECTIONS:
        raise _bad(name, f"{value!r} is not in {list(DIRECTIONS)}")
    return str(value)


def to_ethertype(value: Any, name: str) -> str:
    """``IPv4``/``IPv6``, in any case (as Neutron converts it)."""
    for ethertype in ETHERTYPES:
        if isinstance(value, str) and value.lower() == ethertype.lower():
            return ethertype
    raise _bad(name, f"{value!r} is not in {list(ETHERTYPES)}")


def to_protocol(value: Any, name: str) -> str | None:
    """A protocol name (lower case), a number 0..255 as a decimal string, or None (any)."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise errors.SecurityGroupRuleInvalidProtocol(protocol=value,
                                                      values=sorted(PROTOCOL_NUMBERS))
    if isinstance(value, int) or (isinstance(value, str) and value.isascii()
                                  and value.isdigit() and len(value) <= 3):
        number = int(value)
        if 0 <= number <= 255:
            return str(number)
    elif isinstance(value, str):
        lowered = value.lower()
        if lowered == ANY:
            return None
        if lowered in PROTOCOL_NUMBERS:
            return lowered
    raise errors.SecurityGroupRuleInvalidProtocol(protocol=value,
                                                  values=sorted(PROTOCOL_NUMBERS))


def to_port(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 5:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise errors.SecurityGroupInvalidPortValue(port=value)
    return value


def to_prefix(value: Any, name: str) -> str | None:
    """A CIDR (or a bare address: a /32 or /128), host bits cleared."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise errors.InvalidCIDR(input=value)
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise errors.InvalidCIDR(input=value) from None


SPEC: dict[str, Attr] = {
    "security_group_id": Attr(to_uuid(), put=False, required=True),
    "direction": Attr(to_direction, put=False, required=True),
    "ethertype": Attr(to_ethertype, put=False),
    "protocol": Attr(to_protocol, put=False),
    "port_range_min": Attr(to_port, put=False),
    "port_range_max": Attr(to_port, put=False),
    "remote_ip_prefix": Attr(to_prefix, put=False),
    "remote_group_id": Attr(to_uuid(nullable=True), put=False),
    "description": DESCRIPTION,
}


@dataclasses.dataclass(frozen=True)
class RuleShape:
    """What a rule allows, in canonical form (its identity for duplicate detection)."""

    direction: str
    ethertype: str
    protocol: int | None
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None     # None also for 0.0.0.0/0 and ::/0
    remote_group_id: str | None


def protocol_number(protocol: str | None) -> int | None:
    if protocol is None:
        return None
    return int(protocol) if protocol.isdigit() else PROTOCOL_NUMBERS[protocol]


def normalize(values: Mapping[str, Any]) -> tuple[str | None, RuleShape]:
    """The protocol to store (IPv6's ICMP spelt ``ipv6-icmp``) and the rule's shape, or the
    error Neutron answers for an invalid combination."""
    ethertype = values.get("ethertype", "IPv4")
    protocol = values.get("protocol")
    prefix = values.get("remote_ip_prefix")
    remote_group = values.get("remote_group_id")
    low, high = values.get("port_range_min"), values.get("port_range_max")
    if prefix is not None and remote_group is not None:
        raise errors.SecurityGroupRemoteGroupAndRemoteIpPrefix()
    if prefix is not None:
        version = ipaddress.ip_network(prefix).version
        if (version == 4) != (ethertype == "IPv4"):
            raise errors.SecurityGroupRuleParameterConflict(ethertype=ethertype, cidr=prefix)
    if ethertype == "IPv6" and protocol in ("icmp", "icmpv6", "1"):
        protocol = "ipv6-icmp" if not protocol.isdigit() else str(IPV6_ICMP)
    number = protocol_number(protocol)
    if number == 0:
        number = None  # protocol 0 means any, as for the flow compiler
    if low is not None or high is not None:
        if number is None:
            raise errors.SecurityGroupProtocolRequiredWithPorts()
        if number in PORT_PROTOCOLS:
            if low == 0 or high == 0:
                raise errors.SecurityGroupInvalidPortValue(port=0)
            if low is None or high is None or low > high:
                raise errors.SecurityGroupInvalidPortRange()
        elif number in ICMP_PROTOCOLS:
            for attr, field, value in (("port_range_min", "type", low),
                                       ("port_range_max", "code", high)):
                if value is not None and value > 255:
                    raise errors.SecurityGroupInvalidIcmpValue(field=field, attr=attr,
                                                               value=value)
            if low is None:
                raise errors.SecurityGroupMissingIcmpType(value=high)
        else:
            raise errors.SecurityGroupInvalidProtocolForPortRange(protocol=protocol)
    any_address = prefix is not None and ipaddress.ip_network(prefix).prefixlen == 0
    shape = RuleShape(values["direction"], ethertype, number, low, high,
                      None if any_address else prefix, remote_group)
    if ethertype == "IPv4":
        # What the flow compiler will be given must be something it takes.
        try:
            model_rule(shape, "check")
        except ValueError as exc:
            raise errors.InvalidInput(error_message=str(exc)) from None
    return protocol, shape


def shape_of(rule: SecurityGroupRule) -> RuleShape:
    prefix = rule.remote_ip_prefix
    if prefix is not None and ipaddress.ip_network(prefix).prefixlen == 0:
        prefix = None
    number = protocol_number(rule.protocol)
    return RuleShape(rule.direction, rule.ethertype, None if number == 0 else number,
                     rule.port_range_min, rule.port_range_max, prefix, rule.remote_group_id)


def model_rule(shape: RuleShape, rule_id: str) -> fm.SecurityGroupRule:
    """The flow compiler's form of a rule."""
    return fm.SecurityGroupRule(
        id=rule_id, direction=fm.Direction(shape.direction),
        ethertype=fm.Ethertype(shape.ethertype), protocol=shape.protocol,
        port_range_min=shape.port_range_min, port_range_max=shape.port_range_max,
        remote_ip_prefix=shape.remote_ip_prefix, remote_group_id=shape.remote_group_id)


def load(session: Session, context: Context, rule_id: str) -> SecurityGroupRule:
    rule = session.get(SecurityGroupRule, rule_id)
    if rule is None or not context.can_see(rule.project_id):
        raise errors.SecurityGroupRuleNotFound(id=rule_id)
    return rule


def rule_event(rule: SecurityGroupRule, action: Action) -> SecurityGroupRuleChanged:
    return SecurityGroupRuleChanged(action, rule.id, rule.security_group_id,
                                    rule.remote_group_id, rule.direction)


# --- public service functions -------------------------------------------------------------

def get_security_group_rule(services: Services, context: Context, rule_id: str
                            ) -> dict[str, Any]:
    return common.read(services, lambda s: rule_to_dict(load(s, context, rule_id)))


LIST = listing.ListSpec(
    model=SecurityGroupRule, id_column=SecurityGroupRule.id,
    default_order=(SecurityGroupRule.created_at, SecurityGroupRule.id),
    columns={
        "id": listing.Column(SecurityGroupRule.id),
        "project_id": listing.Column(SecurityGroupRule.project_id),
        "security_group_id": listing.Column(SecurityGroupRule.security_group_id),
        "direction": listing.Column(SecurityGroupRule.direction),
        "ethertype": listing.Column(SecurityGroupRule.ethertype),
        "protocol": listing.Column(SecurityGroupRule.protocol),
        "port_range_min": listing.Column(SecurityGroupRule.port_range_min, listing.Kind.INT),
        "port_range_max": listing.Column(SecurityGroupRule.port_range_max, listing.Kind.INT),
        "remote_ip_prefix": listing.Column(SecurityGroupRule.remote_ip_prefix),
        "remote_group_id": listing.Column(SecurityGroupRule.remote_group_id),
        "description": listing.Column(SecurityGroupRule.description),
        "created_at": listing.Column(SecurityGroupRule.created_at, listing.Kind.TIME),
        "updated_at": listing.Column(SecurityGroupRule.updated_at, listing.Kind.TIME),
    },
    serialize=lambda session, rows: [rule_to_dict(r) for r in rows])


def page_security_group_rules(services: Services, context: Context,
                              query: listing.ListQuery,
                              finish: listing.Finisher | None = None) -> listing.Page:
    scope = [] if context.is_admin else [SecurityGroupRule.project_id == context.project_id]
    return listing.list_page(services, LIST, query, scope, finish)


def list_security_group_rules(services: Services, context: Context,
                              filters: Mapping[str, Any] | None = None
                              ) -> list[dict[str, Any]]:
    return page_security_group_rules(services, context,
                                     listing.ListQuery(filters=filters or {})).items


def create_security_group_rule(services: Services, context: Context,
                               attrs: Mapping[str, Any]) -> dict[str, Any]:
    values = check_body("security_group_rule", SPEC, attrs, context, create=True)
    protocol, shape = normalize(values)

    def work(tx: Tx) -> dict[str, Any]:
        session = tx.session
        group = groups_mod.load(session, context, values["security_group_id"])
        if "project_id" in attrs or "tenant_id" in attrs:
            if values["project_id"] != group.project_id and not context.is_admin:
                raise errors.PolicyNotAuthorized(action="create_security_group_rule")
        if shape.remote_group_id is not None:
            groups_mod.load(session, context, shape.remote_group_id)
        # Serialise rule changes of one group (PostgreSQL), so that two identical rules
        # posted at once cannot both pass the duplicate check.
        session.execute(select(groups_mod.SecurityGroup.id).where(
            groups_mod.SecurityGroup.id == group.id).with_for_update())
        for existing in group.rules:
            if shape_of(existing) == shape:
                raise errors.SecurityGroupRuleExists(rule_id=existing.id)
        rule = SecurityGroupRule(
            id=new_id(), project_id=group.project_id, security_group_id=group.id,
            direction=shape.direction, ethertype=shape.ethertype, protocol=protocol,
            port_range_min=values.get("port_range_min"),
            port_range_max=values.get("port_range_max"),
            remote_ip_prefix=values.get("remote_ip_prefix"),
            remote_group_id=shape.remote_group_id,
            description=values.get("description", ""))
        group.rules.append(rule)
        session.flush()
        tx.emit(rule_event(rule, Action.CREATE))
        return rule_to_dict(rule)

    return common.run(services, work)


def update_security_group_rule(services: Services, context: Context, rule_id: str,
                               attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Only the description of a rule changes; anything else is a new rule."""
    values = check_body("security_group_rule", SPEC, attrs, context, create=False)

    def work(tx: Tx) -> dict[str, Any]:
        rule = load(tx.session, context, rule_id)
        if "description" in values and values["description"] != rule.description:
            rule.description = values["description"]
            tx.session.flush()
            tx.emit(rule_event(rule, Action.UPDATE))
        return rule_to_dict(rule)

    return common.run(services, work)


def delete_security_group_rule(services: Services, context: Context, rule_id: str) -> None:
    def work(tx: Tx) -> None:
        rule = load(tx.session, context, rule_id)
        event = rule_event(rule, Action.DELETE)
        tx.session.delete(rule)
        tx.session.flush()
        tx.emit(event)

    common.run(services, work)
