"""Port rows inside another unit of work: fixed-IP allocation, MACs, create and delete.

Routers, floating IPs, networks and subnets create or delete ports inside their own
transaction; these helpers do it and emit the matching events. They know nothing of the
resources above them, so every resource module can use them without an import cycle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ryu_sched import errors, ipam
from ryu_sched.db.models import FloatingIP, IPAllocation, Network, Port, Subnet, new_id
from ryu_sched.events import Action, FloatingIpChanged, PortChanged
from ryu_sched.resources import tags
from ryu_sched.resources.common import Tx


def fixed_ips(port: Port) -> list[dict[str, str]]:
    return [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips]


def port_event(port: Port, action: Action, changed: Sequence[str] = ()) -> PortChanged:
    return PortChanged(action=action, port_id=port.id, network_id=port.network_id,
                       device_owner=port.device_owner or "", device_id=port.device_id or "",
                       mac_address=port.mac_address,
                       fixed_ips=tuple((a.subnet_id, a.ip_address) for a in port.fixed_ips),
                       changed=tuple(changed))


def _network_subnets(session: Session, network_id: str) -> list[Subnet]:
    return list(session.scalars(select(Subnet).where(Subnet.network_id == network_id)
                                .order_by(Subnet.created_at, Subnet.id)))


def _taken(session: Session, subnet_id: str, exclude_port: str | None) -> set[str]:
    query = select(IPAllocation.ip_address).where(IPAllocation.subnet_id == subnet_id)
    if exclude_port is not None:
        query = query.where(IPAllocation.port_id != exclude_port)
    return set(session.scalars(query))


def _pick(session: Session, subnet: Subnet, exclude_port: str | None,
          also_taken: set[str]) -> str | None:
    taken = _taken(session, subnet.id, exclude_port) | also_taken
    ip = ipam.first_free(ipam.pools_from_dicts(subnet.allocation_pools or []), taken)
    return str(ip) if ip is not None else None


def plan_fixed_ips(session: Session, network_id: str, requested: Sequence[Any] | None,
                   port_id: str | None = None,
                   current: Sequence[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    """The ``(subnet_id, ip_address)`` pairs a port gets.

    ``requested`` None: one address from the first subnet with a free one (none without
    subnets). Otherwise each entry names a subnet, an address or both. ``current`` are the
    port's own allocations (on update): a subnet-only entry keeps the address it has there.
    """
    subnets = _network_subnets(session, network_id)
    if requested is None:
        if not subnets:
            return []
        for subnet in subnets:
            ip = _pick(session, subnet, port_id, set())
            if ip is not None:
                return [(subnet.id, ip)]
        raise errors.IpAddressGenerationFailure(net_id=network_id)
    by_id = {s.id: s for s in subnets}
    chosen: list[tuple[str, str]] = []
    pending_auto: list[Subnet] = []
    for entry in requested:
        if not isinstance(entry, dict) or not entry or set(entry) - {"subnet_id",
                                                                     "ip_address"}:
            raise errors.InvalidInput(
                error_message=f"Invalid fixed_ips entry {entry!r}: expected subnet_id "
                              "and/or ip_address")
        subnet_id = entry.get("subnet_id")
        subnet = None
        if subnet_id is not None:
            subnet = by_id.get(str(subnet_id))
            if subnet is None:
                raise errors.InvalidInput(
                    error_message=f"Failed to create port on network {network_id}, because "
                                  f"fixed_ips included invalid subnet {subnet_id}")
        if entry.get("ip_address") is None:
            assert subnet is not None
            kept = [c for c in current if c[0] == subnet.id and c not in chosen]
            if kept:
                chosen.append(kept[0])
            else:
                pending_auto.append(subnet)
            continue
        ip = ipam.parse_ip(entry["ip_address"])
        if subnet is None:
            subnet = next((s for s in subnets if ip in ipam.Net4(s.cidr)), None)
            if subnet is None:
                raise errors.InvalidIpForNetwork(ip_address=str(ip))
        net = ipam.Net4(subnet.cidr)
        if ip not in ipam.usable_range(net):
            raise errors.InvalidIpForSubnet(ip_address=str(ip))
        pair = (subnet.id, str(ip))
        if pair in chosen:
            raise errors.InvalidInput(error_message=f"Duplicate IP address '{ip}'")
        if str(ip) in _taken(session, subnet.id, port_id):
            raise errors.IpAddressAlreadyAllocated(ip=str(ip), subnet_id=subnet.id)
        chosen.append(pair)
    for subnet in pending_auto:
        also = {ip for sid, ip in chosen if sid == subnet.id}
        ip_text = _pick(session, subnet, port_id, also)
        if ip_text is None:
            raise errors.IpAddressGenerationFailure(net_id=network_id)
        chosen.append((subnet.id, ip_text))
    return chosen


def set_fixed_ips(session: Session, port: Port, pairs: Sequence[tuple[str, str]]) -> bool:
    """Make the port's allocations exactly ``pairs``; True if anything changed."""
    wanted = set(pairs)
    have = {(a.subnet_id, a.ip_address): a for a in port.fixed_ips}
    removed = [a for key, a in have.items() if key not in wanted]
    for allocation in removed:
        port.fixed_ips.remove(allocation)
    if removed:
        session.flush()   # free the addresses before anything re-takes them
    added = [key for key in pairs if key not in have]
    for subnet_id, ip in added:
        port.fixed_ips.append(IPAllocation(port_id=port.id, subnet_id=subnet_id,
                                           network_id=port.network_id, ip_address=ip))
    port.fixed_ips.sort(key=lambda a: ipam.IPv4(a.ip_address))
    return bool(removed or added)


def _mac(session: Session, network_id: str, requested: str | None) -> str:
    if requested is not None:
        mac = ipam.normalize_mac(requested)
        taken = session.scalar(select(Port.id).where(Port.network_id == network_id,
                                                     Port.mac_address == mac))
        if taken is not None:
            raise errors.MacAddressInUse(net_id=network_id, mac=mac)
        return mac
    used = set(session.scalars(select(Port.mac_address).where(
        Port.network_id == network_id)))
    return ipam.generate_mac(used)


def create_port_row(tx: Tx, network: Network, values: Mapping[str, Any],
                    port_id: str | None = None) -> Port:
    """Create a port in the current transaction (values already validated)."""
    session = tx.session
    port_id = port_id or new_id()
    pairs = plan_fixed_ips(session, network.id, values.get("fixed_ips"), port_id)
    # The collections start empty and loaded: a new port's groups, address pairs and
    # addresses are set without a query each to find that it has none.
    port = Port(
        id=port_id, project_id=values.get("project_id", ""),
        network_id=network.id, name=values.get("name", ""),
        description=values.get("description", ""),
        mac_address=_mac(session, network.id, values.get("mac_address")),
        admin_state_up=values.get("admin_state_up", True),
        device_owner=values.get("device_owner", ""), device_id=values.get("device_id", ""),
        binding_host_id=values.get("binding:host_id", ""),
        port_security_enabled=values.get("port_security_enabled",
                                         network.port_security_enabled),
        fixed_ips=[], security_group_bindings=[], allowed_address_pairs=[], tag_rows=[])
    tags.set_tags(port, values.get("tags", []))
    set_fixed_ips(session, port, pairs)
    session.add(port)
    session.flush()
    tx.emit(port_event(port, Action.CREATE))
    return port


def fip_event(fip: FloatingIP, action: Action,
              previous_router_id: str | None = None) -> FloatingIpChanged:
    return FloatingIpChanged(
        action=action, floatingip_id=fip.id, floating_ip_address=fip.floating_ip_address,
        floating_network_id=fip.floating_network_id, port_id=fip.fixed_port_id,
        fixed_ip_address=fip.fixed_ip_address, router_id=fip.router_id,
        previous_router_id=previous_router_id if previous_router_id != fip.router_id else None)


def delete_floatingip_row(tx: Tx, fip: FloatingIP) -> None:
    """Delete a floating IP and its ``network:floatingip`` port in the current transaction
    (the port's event first, then the floating IP's)."""
    session = tx.session
    event = fip_event(fip, Action.DELETE)
    port = session.get(Port, fip.floating_port_id)
    session.delete(fip)
    session.flush()
    if port is not None:
        delete_port_row(tx, port)
    tx.emit(event)


def delete_port_row(tx: Tx, port: Port) -> None:
    """Delete a port in the current transaction, releasing floating IPs that point at it."""
    session = tx.session
    for fip in session.scalars(select(FloatingIP).where(FloatingIP.fixed_port_id == port.id)):
        previous_router = fip.router_id
        fip.fixed_port_id = None
        fip.fixed_ip_address = None
        fip.router_id = None
        fip.status = "DOWN"
        tx.emit(FloatingIpChanged(
            action=Action.UPDATE, floatingip_id=fip.id,
            floating_ip_address=fip.floating_ip_address,
            floating_network_id=fip.floating_network_id, previous_router_id=previous_router))
    event = port_event(port, Action.DELETE)
    session.delete(port)
    session.flush()
    tx.emit(event)
