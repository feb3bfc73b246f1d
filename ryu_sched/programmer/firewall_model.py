"""The firewall's part of the snapshot: security groups with their rules, and what each port
brings to them (its groups, its allowed address pairs).

A port with port security carries a tuple of group ids (empty: everything but DHCP is
dropped, as in Neutron); a port without it carries None (never filtered) and no pairs. Only
IPv4 rules reach the flow compiler, which is IPv4 only; a rule it refuses (none should be:
the API checks them with the same model) is logged and left out rather than stopping every
switch's programming.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ryu_sched.db import models as db
from ryu_sched.flows import model as fm
from ryu_sched.resources.security_group_rules import model_rule, shape_of

LOG = logging.getLogger(__name__)


def security_groups(session: Session) -> tuple[fm.SecurityGroup, ...]:
    groups = session.scalars(select(db.SecurityGroup).order_by(db.SecurityGroup.id)).all()
    return tuple(fm.SecurityGroup(id=g.id, rules=tuple(_rules(g))) for g in groups)


def _rules(group: db.SecurityGroup) -> list[fm.SecurityGroupRule]:
    rules = []
    for rule in sorted(group.rules, key=lambda r: r.id):
        if rule.ethertype != fm.Ethertype.IPV4:
            continue
        try:
            rules.append(model_rule(shape_of(rule), rule.id))
        except ValueError as exc:
            LOG.error("security group %s: rule %s left out of the flows: %s", group.id,
                      rule.id, exc)
    return rules


def port_fields(port: db.Port) -> dict[str, Any]:
    """``security_group_ids`` and ``allowed_address_pairs`` of a port's snapshot form."""
    if not port.port_security_enabled:
        return {"security_group_ids": None, "allowed_address_pairs": ()}
    return {"security_group_ids": tuple(sorted(port.security_group_ids)),
            "allowed_address_pairs": tuple((p.ip_address, p.mac_address.lower())
                                           for p in port.allowed_address_pairs)}
