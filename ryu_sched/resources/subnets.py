"""Subnets (IPv4): CIDR, gateway and allocation pools validated by :mod:`ryu_sched.ipam`."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ryu_sched import errors, ipam
from ryu_sched.db import revisions
from ryu_sched.db.models import IPAllocation, Network, Port, Subnet
from ryu_sched.events import Action, SubnetChanged
from ryu_sched.resources import common, listing, quotas, tags
from ryu_sched.resources import network_access as access
from ryu_sched.resources import networks as networks_mod
from ryu_sched.resources.common import Tx
from ryu_sched.resources.context import Context
from ryu_sched.resources.port_rows import port_event
from ryu_sched.resources.validation import (
    DESCRIPTION,
    NAME,
    Attr,
    check_body,
    to_bool,
    to_empty_list,
    to_int,
    to_list,
    to_raw,
    to_str,
    to_uuid,
)
from ryu_sched.services import Services
from ryu_sched.shared.vocabulary import DeviceOwner


def _none_only(value: Any, name: str) -> None:
    if value is not None:
        raise errors.InvalidInput(error_message=f"{name} is not supported by ryu-sched")
    return None


SPEC: dict[str, Attr] = {
    "name": NAME,
    "description": DESCRIPTION,
    "network_id": Attr(to_uuid(), put=False, required=True),
    "cidr": Attr(to_str(64), put=False, required=True),
    "ip_version": Attr(to_int(0, 255), put=False),
    "gateway_ip": Attr(to_str(64, nullable=True)),
    "allocation_pools": Attr(to_list),
    "enable_dhcp": Attr(to_bool),
    "dns_nameservers": Attr(to_list),
    "host_routes": Attr(to_list),
    "service_types": Attr(to_empty_list),
    "subnetpool_id": Attr(_none_only, put=False),
    "segment_id": Attr(_none_only),
    "ipv6_ra_mode": Attr(_none_only, put=False),
    "ipv6_address_mode": Attr(_none_only, put=False),
    "use_default_subnetpool": Attr(to_raw, put=False),
    "dns_publish_fixed_ip": Attr(to_raw),
    "tags": tags.TAGS,
}


def to_dict(subnet: Subnet) -> dict[str, Any]:
    return {
        "id": subnet.id,
        "name": subnet.name,
        "description": subnet.description,
        "project_id": subnet.project_id,
        "tenant_id": subnet.project_id,
        "network_id": subnet.network_id,
        "ip_version": subnet.ip_version,
        "cidr": subnet.cidr,
        "gateway_ip": subnet.gateway_ip,
        "allocation_pools": [dict(p) for p in subnet.allocation_pools or []],
        "enable_dhcp": subnet.enable_dhcp,
        "dns_nameservers": list(subnet.dns_nameservers or []),
        "host_routes": [dict(r) for r in subnet.host_routes or []],
        "ipv6_ra_mode": None,
        "ipv6_address_mode": None,
        "subnetpool_id": None,
        "segment_id": None,
        "service_types": [],
        "tags": tags.tag_list(subnet),
        "revision_number": subnet.revision_number,
        **common.timestamps(subnet),
    }


def subnet_event(subnet: Subnet, action: Action, changed: tuple[str, ...] = ()
                 ) -> SubnetChanged:
    return SubnetChanged(action, subnet.id, subnet.network_id, subnet.enable_dhcp, changed)


def _visible_clause(context: Context) -> Any:
    """Its own subnets, and those of the networks it sees (own, or named by an RBAC
    policy)."""
    visible_nets = select(Network.id).where(access.visible_clause(context))
    return or_(Subnet.project_id == context.project_id, Subnet.network_id.in_(visible_nets))


def load(session: Session, context: Context, subnet_id: str) -> Subnet:
    query = select(Subnet).where(Subnet.id == subnet_id)
    if not context.is_admin:
        query = query.where(_visible_clause(context))
    subnet = session.scalar(query)
    if subnet is None:
        raise errors.SubnetNotFound(subnet_id)
    return subnet


def load_owned(session: Session, context: Context, subnet_id: str,
               action: str = "update_subnet") -> Subnet:
    subnet = load(session, context, subnet_id)
    if not context.can_see(subnet.project_id):
        # Visible (shared or external) but someone else's: Neutron's update and delete
        # rules refuse what its show rule allows with 403.
        raise errors.PolicyNotAuthorized(action=action)
    return subnet


def _check_ip_version(values: Mapping[str, Any]) -> None:
    version = values.get("ip_version", 4)
    if version == 6:
        raise errors.InvalidInput(error_message="IPv6 subnets are not supported by ryu-sched")
    if version != 4:
        raise errors.InvalidInput(error_message=f"ip_version {version} is not valid")


# Ranges no subnet may overlap: none of their addresses can be a port's unicast address.
# Neutron refuses a /0 always and loopback and multicast CIDRs when DHCP is enabled; a port
# address in any of these is meaningless to our data plane whatever enable_dhcp says.
RESERVED_RANGES: tuple[tuple[ipam.Net4, str], ...] = (
    (ipam.Net4("0.0.0.0/8"), "'this network'"),
    (ipam.Net4("127.0.0.0/8"), "loopback"),
    (ipam.Net4("224.0.0.0/4"), "multicast"),
    (ipam.Net4("240.0.0.0/4"), "reserved (and broadcast)"),
)


def check_cidr_usable(net: ipam.Net4) -> None:
    """400 ``InvalidInput`` for a /0 or a CIDR overlapping a reserved range."""
    if net.prefixlen == 0:
        raise errors.InvalidInput(error_message="0 is not allowed as CIDR prefix length")
    for reserved, what in RESERVED_RANGES:
        if net.overlaps(reserved):
            raise errors.InvalidInput(
                error_message=f"Subnet {net} overlaps the {what} range {reserved}, whose "
                              "addresses cannot be given to ports")


def _gateway(net: ipam.Net4, values: Mapping[str, Any], current: str | None,
             ) -> ipam.IPv4 | None:
    if "gateway_ip" not in values:
        return ipam.IPv4(current) if current else None
    if values["gateway_ip"] is None:
        return None
    gateway = ipam.parse_ip(values["gateway_ip"], "gateway_ip")
    ipam.validate_gateway(net, gateway)
    return gateway


# --- public service functions -------------------------------------------------------------

def get_subnet(services: Services, context: Context, subnet_id: str) -> dict[str, Any]:
    return common.read(services, lambda s: to_dict(load(s, context, subnet_id)))


LIST = listing.ListSpec(
    model=Subnet, id_column=Subnet.id, default_order=(Subnet.created_at, Subnet.id),
    columns={
        "id": listing.Column(Subnet.id),
        "name": listing.Column(Subnet.name),
        "description": listing.Column(Subnet.description),
        "project_id": listing.Column(Subnet.project_id),
        "network_id": listing.Column(Subnet.network_id),
        "ip_version": listing.Column(Subnet.ip_version, listing.Kind.INT),
        "cidr": listing.Column(Subnet.cidr),
        "gateway_ip": listing.Column(Subnet.gateway_ip),
        "enable_dhcp": listing.Column(Subnet.enable_dhcp, listing.Kind.BOOL),
        "revision_number": listing.Column(Subnet.revision_number, listing.Kind.INT),
        "created_at": listing.Column(Subnet.created_at, listing.Kind.TIME),
        "updated_at": listing.Column(Subnet.updated_at, listing.Kind.TIME),
    },
    sql_filters=tags.filters(Subnet),
    serialize=tags.with_tags(lambda session, rows: [to_dict(s) for s in rows]),
    attributes=functools.cache(lambda: frozenset(to_dict(Subnet()))))


def page_subnets(services: Services, context: Context, query: listing.ListQuery,
                 finish: listing.Finisher | None = None) -> listing.Page:
    scope = [] if context.is_admin else [_visible_clause(context)]
    return listing.list_page(services, LIST, query, scope, finish)


def list_subnets(services: Services, context: Context,
                 filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    return page_subnets(services, context, listing.ListQuery(filters=filters or {})).items


def create_subnet(services: Services, context: Context,
                  attrs: Mapping[str, Any]) -> dict[str, Any]:
    values = check_body("subnet", SPEC, attrs, context, create=True)
    _check_ip_version(values)
    net = ipam.parse_cidr(values["cidr"])
    check_cidr_usable(net)
    gateway = _gateway(net, values, str(ipam.default_gateway(net) or "") or None)
    if "allocation_pools" in values:
        pools = ipam.parse_pools(values["allocation_pools"])
        ipam.validate_pools(net, pools, gateway)
    else:
        pools = ipam.default_pools(net, gateway)
    nameservers = ipam.validate_nameservers(values.get("dns_nameservers", []))
    routes = ipam.validate_host_routes(values.get("host_routes", []))

    def work(tx: Tx) -> dict[str, Any]:
        session = tx.session
        network = networks_mod.load_for_use(session, context, values["network_id"],
                                            "create_subnet", allow_shared=False)
        quotas.enforce(services, session, values["project_id"], "subnet")
        others = session.execute(select(Subnet.id, Subnet.cidr).where(
            Subnet.network_id == network.id)).all()
        if ipam.find_overlap(net, [(o.id, o.cidr) for o in others]):
            raise errors.InvalidInput(
                error_message=f"Requested subnet with cidr: {net} for network: "
                              f"{network.id} overlaps with another subnet")
        subnet = Subnet(
            project_id=values["project_id"], network_id=network.id,
            name=values.get("name", ""), description=values.get("description", ""),
            ip_version=4, cidr=str(net), gateway_ip=str(gateway) if gateway else None,
            enable_dhcp=values.get("enable_dhcp", True),
            allocation_pools=[p.as_dict() for p in pools],
            dns_nameservers=nameservers, host_routes=routes)
        tags.set_tags(subnet, values.get("tags", []))
        session.add(subnet)
        revisions.touch(network)   # its "subnets" changed
        session.flush()
        tx.emit(subnet_event(subnet, Action.CREATE))
        return to_dict(subnet)

    return common.run(services, work)


def update_subnet(services: Services, context: Context, subnet_id: str,
                  attrs: Mapping[str, Any]) -> dict[str, Any]:
    values = check_body("subnet", SPEC, attrs, context, create=False)

    def work(tx: Tx) -> dict[str, Any]:
        subnet = load_owned(tx.session, context, subnet_id)
        net = ipam.parse_cidr(subnet.cidr)
        gateway = _gateway(net, values, subnet.gateway_ip)
        if "allocation_pools" in values:
            pools = ipam.parse_pools(values["allocation_pools"])
        else:
            pools = ipam.pools_from_dicts(subnet.allocation_pools or [])
        if "allocation_pools" in values or "gateway_ip" in values:
            ipam.validate_pools(net, pools, gateway)
        changed: list[str] = []

        def change(key: str, value: Any) -> None:
            if getattr(subnet, key) != value:
                setattr(subnet, key, value)
                changed.append(key)

        change("gateway_ip", str(gateway) if gateway else None)
        change("allocation_pools", [p.as_dict() for p in pools])
        for key in ("name", "description", "enable_dhcp"):
            if key in values:
                change(key, values[key])
        if "dns_nameservers" in values:
            change("dns_nameservers", ipam.validate_nameservers(values["dns_nameservers"]))
        if "host_routes" in values:
            change("host_routes", ipam.validate_host_routes(values["host_routes"]))
        tx.session.flush()
        if changed:
            tx.emit(subnet_event(subnet, Action.UPDATE, tuple(changed)))
        return to_dict(subnet)

    return common.run(services, work)


def delete_subnet(services: Services, context: Context, subnet_id: str) -> None:
    def work(tx: Tx) -> None:
        session = tx.session
        subnet = load_owned(session, context, subnet_id, "delete_subnet")
        users = session.execute(
            select(Port).join(IPAllocation, IPAllocation.port_id == Port.id)
            .where(IPAllocation.subnet_id == subnet.id)).scalars().unique().all()
        if any(p.device_owner != DeviceOwner.DHCP for p in users):
            raise errors.SubnetInUse(subnet_id=subnet.id)
        event = subnet_event(subnet, Action.DELETE)
        network = session.scalar(select(Network).where(Network.id == subnet.network_id))
        if network is not None:
            revisions.touch(network)   # its "subnets" changed
        for port in users:
            port.fixed_ips = [a for a in port.fixed_ips if a.subnet_id != subnet.id]
            session.flush()
            tx.emit(port_event(port, Action.UPDATE, ("fixed_ips",)))
        session.delete(subnet)
        session.flush()
        tx.emit(event)

    common.run(services, work)
