"""Extra routes of routers (Neutron's ``extraroute`` and ``extraroute-atomic``).

A route ``{destination, nexthop}`` sends the router's packets for ``destination`` (an IPv4
CIDR) to whatever port holds ``nexthop``, an address of one of the router's own subnets
(the data plane: ``flows/routing.py``). Checked, as Neutron does:

- the nexthop lies in a subnet the router has an interface on, and is not one of the
  router's own addresses (400 ``InvalidRoutes``);
- at most ``max_routes`` routes (400 ``RoutesExhausted``);
- one nexthop per destination: ryu-sched does not spread a destination over several
  nexthops (400 ``InvalidRoutes``); the same route twice counts once.

``routes`` in a router's PUT replaces them all; ``add_extraroutes`` / ``remove_extraroutes``
add or remove some in one transaction, whatever else changes meanwhile. An interface whose
subnet holds a nexthop cannot be removed (409 ``RouterInterfaceInUseByRoute``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ryu_sched import errors, ipam
from ryu_sched.db.models import IPAllocation, Router, RouterPort, RouterRoute, Subnet
from ryu_sched.shared.vocabulary import DeviceOwner

Route = tuple[str, str]   # (destination cidr, nexthop ip)


def route_list(router: Router) -> list[dict[str, str]]:
    return [{"destination": r.destination, "nexthop": r.nexthop} for r in router.route_rows]


def routes_of(router: Router) -> list[Route]:
    return [(r.destination, r.nexthop) for r in router.route_rows]


def parse_routes(value: Any) -> list[Route]:
    """``[{"destination": cidr, "nexthop": ip}]`` -> routes in canonical form (400
    ``InvalidRoutes`` for anything else); duplicates dropped."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise errors.InvalidRoutes(routes=value, reason="routes must be a list")
    routes: list[Route] = []
    for entry in value:
        if not isinstance(entry, dict) or set(entry) != {"destination", "nexthop"}:
            raise errors.InvalidRoutes(
                routes=value, reason=f"{entry!r} is not {{destination, nexthop}}")
        try:
            destination = ipaddress.ip_network(str(entry["destination"]), strict=True)
            nexthop = ipaddress.ip_address(str(entry["nexthop"]))
        except ValueError as exc:
            raise errors.InvalidRoutes(routes=value, reason=str(exc)) from None
        if destination.version != 4 or nexthop.version != 4:
            raise errors.InvalidRoutes(routes=value,
                                       reason="ryu-sched routes IPv4 destinations only")
        route = (str(destination), str(nexthop))
        if route not in routes:
            routes.append(route)
    return routes


def _interface_subnets(session: Session, router_id: str) -> tuple[list[Subnet], set[str]]:
    """The subnets the router has interfaces on, and its own addresses on them."""
    rows = session.execute(
        select(Subnet, IPAllocation.ip_address)
        .join(IPAllocation, IPAllocation.subnet_id == Subnet.id)
        .join(RouterPort, RouterPort.port_id == IPAllocation.port_id)
        .where(RouterPort.router_id == router_id,
               RouterPort.port_type == DeviceOwner.ROUTER_INTERFACE)).all()
    return [subnet for subnet, _ip in rows], {ip for _subnet, ip in rows}


def check_routes(session: Session, router: Router, routes: Sequence[Route],
                 max_routes: int) -> None:
    if len(routes) > max_routes:
        raise errors.RoutesExhausted(router_id=router.id, quota=max_routes)
    subnets, own = _interface_subnets(session, router.id)
    nets = [ipam.Net4(s.cidr) for s in subnets]
    seen: dict[str, str] = {}
    for destination, nexthop in routes:
        shown = {"destination": destination, "nexthop": nexthop}
        if destination in seen and seen[destination] != nexthop:
            raise errors.InvalidRoutes(
                routes=[shown], reason=f"the destination already goes through {seen[destination]}"
                                       " (one nexthop per destination)")
        seen[destination] = nexthop
        if nexthop in own:
            raise errors.InvalidRoutes(routes=[shown], reason="the nexthop is used by router")
        if not any(ipam.IPv4(nexthop) in net for net in nets):
            raise errors.InvalidRoutes(routes=[shown],
                                       reason="the nexthop is not connected with router")


def set_routes(session: Session, router: Router, routes: Iterable[Route],
               max_routes: int) -> bool:
    """Make the router's routes exactly ``routes`` (checked); True if they changed."""
    wanted = sorted(dict.fromkeys(routes))
    if wanted == sorted(routes_of(router)):
        return False
    check_routes(session, router, wanted, max_routes)
    have = {(r.destination, r.nexthop): r for r in router.route_rows}
    router.route_rows = [have.get(route) or RouterRoute(destination=route[0],
                                                        nexthop=route[1])
                         for route in wanted]
    session.flush()
    return True


def routes_body(body: Mapping[str, Any]) -> list[Route]:
    """The routes of an ``add_extraroutes`` / ``remove_extraroutes`` body:
    ``{"router": {"routes": [...]}}``."""
    inner = body.get("router") if isinstance(body, Mapping) else None
    if not isinstance(inner, Mapping) or set(body) != {"router"} or set(inner) != {"routes"}:
        raise errors.HTTPBadRequest(
            msg="Expected a body {\"router\": {\"routes\": [...]}}")
    return parse_routes(inner["routes"])


def nexthops_in(router: Router, cidrs: Iterable[str]) -> bool:
    """Some route of the router goes through an address of one of ``cidrs``."""
    nets = [ipam.Net4(cidr) for cidr in cidrs]
    return any(ipam.IPv4(r.nexthop) in net for r in router.route_rows for net in nets)
