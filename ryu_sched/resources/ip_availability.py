"""Network IP availability (Neutron's ``network-ip-availability``): per network and subnet,
how many addresses the allocation pools hold (``total_ips``) and how many of them are
allocated (``used_ips``). Admin only, as in Neutron.

Addresses allocated outside the pools (a router interface on the gateway address, an address
requested explicitly) are not counted, so ``used_ips`` never exceeds ``total_ips``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ryu_sched import errors, ipam
from ryu_sched.db.models import IPAllocation, Network, Subnet
from ryu_sched.resources import common
from ryu_sched.resources.context import Context
from ryu_sched.services import Services

#: Filters, each matching the network entry's attribute of the same name.
FILTERS = frozenset({"network_id", "network_name", "project_id", "ip_version"})


def _require_admin(context: Context) -> None:
    if not context.is_admin:
        raise errors.PolicyNotAuthorized(action="get_network_ip_availability")


def _subnet_entry(subnet: Subnet, allocated: list[str]) -> dict[str, Any]:
    pools = ipam.pools_from_dicts(subnet.allocation_pools or [])
    used = sum(1 for ip in allocated if any(ipam.IPv4(ip) in pool for pool in pools))
    return {"subnet_id": subnet.id, "subnet_name": subnet.name, "cidr": subnet.cidr,
            "ip_version": subnet.ip_version, "total_ips": sum(p.size for p in pools),
            "used_ips": used}


def _entries(session: Session, network_ids: list[str] | None) -> list[dict[str, Any]]:
    nets = select(Network).order_by(Network.key)
    subnets = select(Subnet).order_by(Subnet.created_at, Subnet.id)
    allocations = select(IPAllocation.subnet_id, IPAllocation.ip_address)
    if network_ids is not None:
        nets = nets.where(Network.id.in_(network_ids))
        subnets = subnets.where(Subnet.network_id.in_(network_ids))
        allocations = allocations.where(IPAllocation.network_id.in_(network_ids))
    allocated: dict[str, list[str]] = {}
    for subnet_id, ip in session.execute(allocations):
        allocated.setdefault(subnet_id, []).append(ip)
    by_network: dict[str, list[dict[str, Any]]] = {}
    for subnet in session.scalars(subnets):
        by_network.setdefault(subnet.network_id, []).append(
            _subnet_entry(subnet, allocated.get(subnet.id, [])))
    result = []
    for net in session.scalars(nets):
        entries = by_network.get(net.id, [])
        result.append({
            "network_id": net.id, "network_name": net.name, "project_id": net.project_id,
            "tenant_id": net.project_id, "subnet_ip_availability": entries,
            "total_ips": sum(e["total_ips"] for e in entries),
            "used_ips": sum(e["used_ips"] for e in entries)})
    return result


def _matches(entry: dict[str, Any], filters: Mapping[str, list[str]]) -> bool:
    for key, wanted in filters.items():
        if key == "ip_version":
            if not any(str(s["ip_version"]) in wanted for s in entry["subnet_ip_availability"]):
                return False
        elif str(entry[key]) not in wanted:
            return False
    return True


def list_availabilities(services: Services, context: Context,
                        filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    _require_admin(context)
    wanted = common.normalize_filters(filters)
    unknown = sorted(set(wanted) - FILTERS)
    if unknown:
        raise errors.HTTPBadRequest(
            msg="[{}] is invalid attribute for filtering".format(", ".join(unknown)))
    network_ids = wanted.get("network_id")
    entries = common.read(services, lambda s: _entries(s, network_ids))
    return [entry for entry in entries if _matches(entry, wanted)]


def get_availability(services: Services, context: Context, network_id: str
                     ) -> dict[str, Any]:
    _require_admin(context)
    entries = common.read(services, lambda s: _entries(s, [network_id]))
    if not entries:
        raise errors.NetworkNotFound(network_id)
    return entries[0]
