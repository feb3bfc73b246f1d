"""Ports: MAC addresses, fixed-IP allocation, device ownership and binding.

``create_port`` / ``update_port`` / ``get_port`` / ``list_ports`` / ``delete_port`` are the
service functions the API and the agent RPC call. ``create_port_row``, ``set_fixed_ips`` and
``delete_port_row`` work inside another resource's transaction (routers, floating IPs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session

from ryu_sched import errors, ipam
from ryu_sched.db.models import FloatingIP, IPAllocation, Network, Port, Subnet, new_id
from ryu_sched.resources import common, listing
from ryu_sched.resources import networks as networks_mod
from ryu_sched.resources.common import Tx
from ryu_sched.resources.context import Context
from ryu_sched.resources.validation import (
    ADMIN_STATE,
    DESCRIPTION,
    NAME,
    Attr,
    check_body,
    to_bool,
    to_dict_or_none,
    to_empty_list,
    to_list,
    to_str,
    to_uuid,
)
from ryu_sched.services import Services


def _vnic_normal(value: Any, name: str) -> str:
    if value != "normal":
        raise errors.InvalidInput(error_message=f"{name} {value} is not supported "
                                  "(only 'normal')")
    return "normal"


SPEC: dict[str, Attr] = {
    "name": NAME,
    "description": DESCRIPTION,
    "network_id": Attr(to_uuid(), put=False, required=True),
    "admin_state_up": ADMIN_STATE,
    "mac_address": Attr(to_str(32), put=False),
    "fixed_ips": Attr(to_list),
    "device_id": Attr(to_str(255)),
    "device_owner": Attr(to_str(255)),
    "binding:host_id": Attr(to_str(255), admin=True),
    "binding:vnic_type": Attr(_vnic_normal),
    "binding:profile": Attr(to_dict_or_none, admin=True),
    "port_security_enabled": Attr(to_bool),
    "security_groups": Attr(to_empty_list),
    "allowed_address_pairs": Attr(to_empty_list),
    "extra_dhcp_opts": Attr(to_empty_list),
    # Not settable through Neutron's API; the data plane and agents report it here.
    "status": Attr(to_str(16), post=False, admin=True),
}

PORT_STATUSES = ("ACTIVE", "DOWN", "BUILD", "ERROR")


def fixed_ips(port: Port) -> list[dict[str, str]]:
    return [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips]


def to_dict(port: Port) -> dict[str, Any]:
    return {
        "id": port.id,
        "name": port.name,
        "description": port.description,
        "project_id": port.project_id,
        "tenant_id": port.project_id,
        "network_id": port.network_id,
        "mac_address": port.mac_address,
        "admin_state_up": port.admin_state_up,
        "status": port.status,
        "fixed_ips": fixed_ips(port),
        "device_id": port.device_id,
        "device_owner": port.device_owner,
        "binding:host_id": port.binding_host_id,
        "binding:vif_type": "ovs" if port.binding_host_id else "unbound",
        "binding:vnic_type": "normal",
        "binding:vif_details": {"port_filter": True} if port.binding_host_id else {},
        "binding:profile": {},
        "port_security_enabled": port.port_security_enabled,
        "security_groups": [],
        "allowed_address_pairs": [],
        "extra_dhcp_opts": [],
        "tags": [],
        **common.timestamps(port),
    }


def event_data(port: Port) -> dict[str, Any]:
    return {"network_id": port.network_id, "device_owner": port.device_owner,
            "device_id": port.device_id, "binding_host_id": port.binding_host_id,
            "mac_address": port.mac_address, "fixed_ips": fixed_ips(port),
            "project_id": port.project_id, "admin_state_up": port.admin_state_up,
            "port_security_enabled": port.port_security_enabled}


def load(session: Session, context: Context, port_id: str) -> Port:
    port = session.scalar(select(Port).where(Port.id == port_id))
    if port is None or not context.can_see(port.project_id):
        raise errors.PortNotFound(port_id)
    return port


# --- fixed IP allocation ----------------------------------------------------------------

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
    port = Port(
        id=port_id or new_id(), project_id=values.get("project_id", ""),
        network_id=network.id, name=values.get("name", ""),
        description=values.get("description", ""),
        mac_address=_mac(session, network.id, values.get("mac_address")),
        admin_state_up=values.get("admin_state_up", True),
        device_owner=values.get("device_owner", ""), device_id=values.get("device_id", ""),
        binding_host_id=values.get("binding:host_id", ""),
        port_security_enabled=values.get("port_security_enabled",
                                         network.port_security_enabled))
    pairs = plan_fixed_ips(session, network.id, values.get("fixed_ips"), port.id)
    session.add(port)
    session.flush()
    set_fixed_ips(session, port, pairs)
    session.flush()
    tx.emit("port", "create", port.id, event_data(port))
    return port


def delete_port_row(tx: Tx, port: Port) -> None:
    """Delete a port in the current transaction, releasing floating IPs that point at it."""
    session = tx.session
    for fip in session.scalars(select(FloatingIP).where(FloatingIP.fixed_port_id == port.id)):
        fip.fixed_port_id = None
        fip.fixed_ip_address = None
        fip.router_id = None
        fip.status = "DOWN"
        tx.emit("floatingip", "update", fip.id,
                {"floating_ip_address": fip.floating_ip_address,
                 "floating_network_id": fip.floating_network_id, "port_id": None,
                 "fixed_ip_address": None, "router_id": None, "associated": False})
    data = event_data(port)
    port_id = port.id
    session.delete(port)
    session.flush()
    tx.emit("port", "delete", port_id, data)


# --- public service functions -------------------------------------------------------------

def get_port(services: Services, context: Context, port_id: str) -> dict[str, Any]:
    return common.read(services, lambda s: to_dict(load(s, context, port_id)))


def _with_fixed_ips(values: list[str]) -> Any:
    """``fixed_ips=ip_address=<ip>`` / ``fixed_ips=subnet_id=<id>``, repeated = OR."""
    columns = {"ip_address": IPAllocation.ip_address, "subnet_id": IPAllocation.subnet_id}
    conditions = []
    for value in values:
        key, sep, expected = value.partition("=")
        if sep and key in columns:
            conditions.append(columns[key] == expected)
    if not conditions:
        return false()
    return Port.id.in_(select(IPAllocation.port_id).where(or_(*conditions)))


LIST = listing.ListSpec(
    model=Port, id_column=Port.id, default_order=(Port.created_at, Port.id),
    columns={
        "id": listing.Column(Port.id),
        "name": listing.Column(Port.name),
        "description": listing.Column(Port.description),
        "project_id": listing.Column(Port.project_id),
        "network_id": listing.Column(Port.network_id),
        "mac_address": listing.Column(Port.mac_address),
        "admin_state_up": listing.Column(Port.admin_state_up, listing.Kind.BOOL),
        "status": listing.Column(Port.status),
        "device_id": listing.Column(Port.device_id),
        "device_owner": listing.Column(Port.device_owner),
        "binding:host_id": listing.Column(Port.binding_host_id),
        "port_security_enabled": listing.Column(Port.port_security_enabled,
                                                listing.Kind.BOOL),
        "created_at": listing.Column(Port.created_at, listing.Kind.TIME),
        "updated_at": listing.Column(Port.updated_at, listing.Kind.TIME),
    },
    sql_filters={"fixed_ips": _with_fixed_ips},
    serialize=lambda session, rows: [to_dict(p) for p in rows])


def page_ports(services: Services, context: Context, query: listing.ListQuery,
               finish: listing.Finisher | None = None) -> listing.Page:
    scope = [] if context.is_admin else [Port.project_id == context.project_id]
    return listing.list_page(services, LIST, query, scope, finish)


def list_ports(services: Services, context: Context,
               filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    return page_ports(services, context, listing.ListQuery(filters=filters or {})).items


def create_port(services: Services, context: Context, attrs: Mapping[str, Any]
                ) -> dict[str, Any]:
    values = check_body("port", SPEC, attrs, context, create=True)

    def work(tx: Tx) -> dict[str, Any]:
        network = networks_mod.load_for_use(tx.session, context, values["network_id"],
                                            "create_port", allow_shared=True)
        return to_dict(create_port_row(tx, network, values))

    return common.run(services, work)


def update_port(services: Services, context: Context, port_id: str,
                attrs: Mapping[str, Any]) -> dict[str, Any]:
    values = check_body("port", SPEC, attrs, context, create=False)
    if "status" in values and values["status"] not in PORT_STATUSES:
        raise errors.InvalidInput(error_message=f"status {values['status']} is not valid")

    def work(tx: Tx) -> dict[str, Any]:
        session = tx.session
        port = load(session, context, port_id)
        changed: list[str] = []
        for key, column in (("name", "name"), ("description", "description"),
                            ("admin_state_up", "admin_state_up"),
                            ("device_id", "device_id"), ("device_owner", "device_owner"),
                            ("binding:host_id", "binding_host_id"),
                            ("port_security_enabled", "port_security_enabled"),
                            ("status", "status")):
            if key in values and getattr(port, column) != values[key]:
                setattr(port, column, values[key])
                changed.append(key)
        if "fixed_ips" in values:
            current = [(a.subnet_id, a.ip_address) for a in port.fixed_ips]
            pairs = plan_fixed_ips(session, port.network_id, values["fixed_ips"], port.id,
                                   current)
            if set_fixed_ips(session, port, pairs):
                changed.append("fixed_ips")
        session.flush()
        if changed:
            tx.emit("port", "update", port.id, {**event_data(port), "changed": changed})
        return to_dict(port)

    return common.run(services, work)


def delete_port(services: Services, context: Context, port_id: str) -> None:
    def work(tx: Tx) -> None:
        port = load(tx.session, context, port_id)
        if port.device_owner in common.ROUTER_OWNED:
            raise errors.ServicePortInUse(port_id=port.id,
                                          reason=f"has device owner {port.device_owner}")
        delete_port_row(tx, port)

    common.run(services, work)
