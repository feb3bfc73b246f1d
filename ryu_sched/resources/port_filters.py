"""What filters a port: its security groups and allowed address pairs.

A port with port security that is not the network's own (``network:*``) gets its project's
``default`` group when it is created (or has port security turned back on) without naming
groups. A port without port security has no groups and no pairs: asking for groups then is
400 ``PortSecurityAndIPRequiredForSecurityGroups``, turning port security off while groups
or pairs stay is 409 ``PortSecurityPortHasSecurityGroup`` /
``AddressPairAndPortSecurityRequired``, as in Neutron.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from ryu_sched import errors, ipam
from ryu_sched.db.models import AllowedAddressPair, Port, SecurityGroup, SecurityGroupPortBinding
from ryu_sched.resources import security_groups as groups_mod
from ryu_sched.resources.common import Tx
from ryu_sched.resources.context import Context
from ryu_sched.shared.vocabulary import NETWORK_OWNER_PREFIX

#: At most this many allowed address pairs per port (Neutron's max_allowed_address_pair).
MAX_ADDRESS_PAIRS = 10

Pair = tuple[str, str | None]  # (ip address or CIDR, MAC or None for the port's own)


def _bad(name: str, reason: str) -> errors.HTTPBadRequest:
    return errors.HTTPBadRequest(msg=f"Invalid input for {name}. Reason: {reason}.")


def to_address_pairs(value: Any, name: str) -> list[Pair]:
    """``[{"ip_address": <ip or cidr>, "mac_address": <mac>?}]``; None is ``[]``."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _bad(name, f"'{value}' is not a list")
    if len(value) > MAX_ADDRESS_PAIRS:
        raise errors.AllowedAddressPairExhausted(quota=MAX_ADDRESS_PAIRS)
    pairs: list[Pair] = []
    for entry in value:
        if not isinstance(entry, dict):
            raise _bad(name, f"'{entry}' is not a dictionary")
        unknown = sorted(set(entry) - {"ip_address", "mac_address"})
        if unknown:
            raise _bad(name, "unrecognized attribute(s) '{}'".format(", ".join(unknown)))
        ip = entry.get("ip_address")
        if not isinstance(ip, str):
            raise _bad(name, "ip_address is required in each pair")
        try:
            net = ipaddress.ip_network(ip, strict=False)
        except ValueError:
            raise _bad(name, f"'{ip}' is not a valid IP address or CIDR") from None
        if "/" in ip and str(net) != ip:
            raise _bad(name, f"'{ip}' isn't a recommended CIDR, '{net}' is recommended")
        mac = entry.get("mac_address")
        if mac is not None:
            try:
                mac = ipam.normalize_mac(mac)
            except (errors.NeutronError, ValueError, TypeError):
                raise _bad(name, f"'{mac}' is not a valid MAC address") from None
        pair = (ip, mac)
        if pair in pairs:
            raise errors.DuplicateAddressPairInRequest(mac_address=mac, ip_address=ip)
        pairs.append(pair)
    return pairs


def api_fields(port: Port) -> dict[str, Any]:
    return {
        "security_groups": port.security_group_ids,
        "allowed_address_pairs": [{"ip_address": p.ip_address, "mac_address": p.mac_address}
                                  for p in port.allowed_address_pairs],
    }


def _takes_default(port: Port) -> bool:
    return port.port_security_enabled and not port.device_owner.startswith(
        NETWORK_OWNER_PREFIX)


def _check_groups(tx: Tx, context: Context, port: Port, group_ids: list[str]) -> None:
    """Every group exists, is visible to the caller, and is the port's project's."""
    found = {g.id: g for g in tx.session.scalars(
        select(SecurityGroup).where(SecurityGroup.id.in_(group_ids)))}
    for group_id in group_ids:
        group = found.get(group_id)
        if group is None or not context.can_see(group.project_id) or (
                group.project_id != port.project_id and not context.is_admin):
            raise errors.SecurityGroupNotFound(id=group_id)


def _set_groups(tx: Tx, port: Port, group_ids: list[str]) -> bool:
    have = {b.security_group_id: b for b in port.security_group_bindings}
    removed = [b for gid, b in have.items() if gid not in group_ids]
    for binding in removed:
        port.security_group_bindings.remove(binding)
    added = [gid for gid in group_ids if gid not in have]
    for group_id in added:
        port.security_group_bindings.append(
            SecurityGroupPortBinding(port_id=port.id, security_group_id=group_id))
    port.security_group_bindings.sort(key=lambda b: b.security_group_id)
    return bool(removed or added)


def _set_pairs(tx: Tx, port: Port, pairs: list[Pair]) -> bool:
    wanted = [(ip, mac or port.mac_address) for ip, mac in pairs]
    have = [(p.ip_address, p.mac_address) for p in port.allowed_address_pairs]
    if wanted == have:
        return False
    port.allowed_address_pairs.clear()
    tx.session.flush()
    for position, (ip, mac) in enumerate(wanted):
        port.allowed_address_pairs.append(AllowedAddressPair(
            port_id=port.id, ip_address=ip, mac_address=mac, position=position))
    return True


def on_create(tx: Tx, context: Context, port: Port, values: Mapping[str, Any]) -> None:
    """Groups and pairs of a port just created (``values`` as the API checked them)."""
    group_ids = values.get("security_groups")
    pairs = values.get("allowed_address_pairs") or []
    if not port.port_security_enabled:
        if group_ids:
            raise errors.PortSecurityAndIPRequiredForSecurityGroups()
        if pairs:
            raise errors.AddressPairAndPortSecurityRequired()
        return
    if group_ids is None:
        group_ids = [groups_mod.ensure_default(tx, port.project_id)] \
            if _takes_default(port) else []
    else:
        _check_groups(tx, context, port, group_ids)
    _set_groups(tx, port, group_ids)
    _set_pairs(tx, port, pairs)
    tx.session.flush()


def on_update(tx: Tx, context: Context, port: Port, values: Mapping[str, Any],
              security_turned_on: bool) -> list[str]:
    """Apply ``security_groups`` / ``allowed_address_pairs`` of an update, after the port's
    own columns (``port_security_enabled`` among them) took their new values. Returns the
    names of what changed."""
    changed = []
    group_ids = values.get("security_groups")
    if "security_groups" in values and group_ids is None:
        group_ids = []
    pairs = values.get("allowed_address_pairs")
    if not port.port_security_enabled:
        if group_ids:
            raise errors.PortSecurityAndIPRequiredForSecurityGroups()
        if group_ids is None and port.security_group_bindings:
            raise errors.PortSecurityPortHasSecurityGroup()
        if pairs or (pairs is None and port.allowed_address_pairs):
            raise errors.AddressPairAndPortSecurityRequired()
    if group_ids is None and security_turned_on and not port.security_group_bindings \
            and _takes_default(port):
        group_ids = [groups_mod.ensure_default(tx, port.project_id)]
    if group_ids is not None:
        _check_groups(tx, context, port, group_ids)
        if _set_groups(tx, port, group_ids):
            changed.append("security_groups")
    if pairs is not None and _set_pairs(tx, port, pairs):
        changed.append("allowed_address_pairs")
    tx.session.flush()
    return changed
