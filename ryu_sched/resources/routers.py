"""Routers: external gateway (a ``network:router_gateway`` port) and interfaces.

Interface add/remove and gateway set/clear are published as router ``update`` events with
``{"interface": "add"|"remove", "subnet_id", "port_id"}`` or ``{"gateway": True|False}``.

Size: over 400 lines: routers, their gateway, interfaces and extra routes are one
resource whose checks depend on each other (overlaps, floating IPs, routes' nexthops).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ryu_sched import errors, ipam
from ryu_sched.db.models import FloatingIP, IPAllocation, Port, Router, RouterPort, Subnet
from ryu_sched.events import (
    Action,
    RouterChanged,
    RouterGatewayChanged,
    RouterInterfaceChanged,
)
from ryu_sched.resources import common, listing, quotas, router_routes, tags
from ryu_sched.resources import network_access as access
from ryu_sched.resources import networks as networks_mod
from ryu_sched.resources import ports as ports_mod
from ryu_sched.resources import subnets as subnets_mod
from ryu_sched.resources.common import Tx
from ryu_sched.resources.context import Context
from ryu_sched.resources.port_rows import (
    create_port_row,
    delete_port_row,
    fixed_ips,
    plan_fixed_ips,
    port_event,
    set_fixed_ips,
)
from ryu_sched.resources.validation import (
    ADMIN_STATE,
    DESCRIPTION,
    NAME,
    Attr,
    check_body,
    to_bool,
    to_dict_or_none,
    to_false,
    to_raw,
    to_str_list,
    to_uuid,
)
from ryu_sched.services import Services
from ryu_sched.shared.vocabulary import DeviceOwner

SPEC: dict[str, Attr] = {
    "name": NAME,
    "description": DESCRIPTION,
    "admin_state_up": ADMIN_STATE,
    "external_gateway_info": Attr(to_dict_or_none),
    "routes": Attr(to_raw),   # checked by router_routes.parse_routes
    "availability_zone_hints": Attr(to_str_list, put=False),
    "ha": Attr(to_bool, admin=True),
    "distributed": Attr(to_false, admin=True),
    "flavor_id": Attr(lambda v, n: None if v is None else to_uuid()(v, n), put=False),
    "tags": tags.TAGS,
}

INTERFACE = DeviceOwner.ROUTER_INTERFACE
GATEWAY = DeviceOwner.ROUTER_GATEWAY


def _gateway_info(gw_port: Port | None, enable_snat: bool) -> dict[str, Any] | None:
    if gw_port is None:
        return None
    return {"network_id": gw_port.network_id, "enable_snat": enable_snat,
            "external_fixed_ips": fixed_ips(gw_port)}


def to_dict(router: Router, gw_port: Port | None) -> dict[str, Any]:
    return {
        "id": router.id,
        "name": router.name,
        "description": router.description,
        "project_id": router.project_id,
        "tenant_id": router.project_id,
        "admin_state_up": router.admin_state_up,
        "status": router.status,
        "external_gateway_info": _gateway_info(gw_port, router.enable_snat),
        "routes": router_routes.route_list(router),
        "availability_zone_hints": list(router.availability_zone_hints or []),
        "availability_zones": [],
        "ha": bool(router.ha),
        "distributed": False,
        "flavor_id": None,
        "tags": tags.tag_list(router),
        "revision_number": router.revision_number,
        **common.timestamps(router),
    }


def serialize(session: Session, router: Router) -> dict[str, Any]:
    gw = session.get(Port, router.gw_port_id) if router.gw_port_id else None
    return to_dict(router, gw)


def load(session: Session, context: Context, router_id: str) -> Router:
    router = session.scalar(select(Router).where(Router.id == router_id))
    if router is None or not context.can_see(router.project_id):
        raise errors.RouterNotFound(router_id)
    return router


def _interface_ports(session: Session, router_id: str) -> list[Port]:
    return list(session.scalars(
        select(Port).join(RouterPort, RouterPort.port_id == Port.id)
        .where(RouterPort.router_id == router_id, RouterPort.port_type == INTERFACE)))


def router_subnet_ids(session: Session, router_id: str) -> list[str]:
    return list(session.scalars(
        select(IPAllocation.subnet_id).join(RouterPort,
                                            RouterPort.port_id == IPAllocation.port_id)
        .where(RouterPort.router_id == router_id, RouterPort.port_type == INTERFACE)))


# --- gateway --------------------------------------------------------------------------------

def _check_gateway_request(info: dict[str, Any], context: Context) -> None:
    unknown = set(info) - {"network_id", "enable_snat", "external_fixed_ips"}
    if unknown:
        raise errors.HTTPBadRequest(msg="Unrecognized attribute(s) in external_gateway_info "
                                    f"'{', '.join(sorted(unknown))}'")
    if "network_id" not in info:
        raise errors.HTTPBadRequest(msg="external_gateway_info requires network_id")
    to_uuid()(info["network_id"], "external_gateway_info:network_id")
    if "enable_snat" in info:
        info["enable_snat"] = to_bool(info["enable_snat"], "enable_snat")
        if not context.is_admin:
            raise errors.PolicyNotAuthorized(
                action="update_router:external_gateway_info:enable_snat")
    if "external_fixed_ips" in info:
        if not isinstance(info["external_fixed_ips"], list):
            raise errors.HTTPBadRequest(msg="external_fixed_ips must be a list")
        if not context.is_admin:
            raise errors.PolicyNotAuthorized(
                action="update_router:external_gateway_info:external_fixed_ips")


def _fips_through(session: Session, router: Router) -> bool:
    return session.scalar(select(FloatingIP.id).where(FloatingIP.router_id == router.id)
                          .limit(1)) is not None


def _clear_gateway(tx: Tx, router: Router) -> None:
    session = tx.session
    if router.gw_port_id is None:
        return
    gw = session.get(Port, router.gw_port_id)
    if _fips_through(session, router):
        raise errors.RouterExternalGatewayInUseByFloatingIp(
            router_id=router.id, net_id=gw.network_id if gw else "")
    router.gw_port_id = None
    session.flush()
    if gw is not None:
        delete_port_row(tx, gw)
    tx.emit(RouterGatewayChanged(router.id))


def _set_gateway(tx: Tx, context: Context, router: Router, info: dict[str, Any]) -> None:
    session = tx.session
    network = access.load_external(
        session, context, info["network_id"], "router",
        f"Network {info['network_id']} is not an external network")
    current = session.get(Port, router.gw_port_id) if router.gw_port_id else None
    if current is not None and current.network_id == network.id:
        changed = False
        if "enable_snat" in info and info["enable_snat"] != router.enable_snat:
            router.enable_snat = info["enable_snat"]
            changed = True
        if "external_fixed_ips" in info:
            pairs = plan_fixed_ips(
                session, network.id, info["external_fixed_ips"] or None, current.id,
                [(a.subnet_id, a.ip_address) for a in current.fixed_ips])
            if set_fixed_ips(session, current, pairs):
                changed = True
                tx.emit(port_event(current, Action.UPDATE, ("fixed_ips",)))
        if changed:
            session.flush()
            tx.emit(RouterGatewayChanged(router.id, network.id, current.id, router.enable_snat))
        return
    if current is not None:
        _clear_gateway(tx, router)
    gw = create_port_row(tx, network, {
        "project_id": "", "device_owner": GATEWAY, "device_id": router.id,
        "fixed_ips": info.get("external_fixed_ips") or None,
        "port_security_enabled": False})
    session.add(RouterPort(router_id=router.id, port_id=gw.id, port_type=GATEWAY))
    router.gw_port_id = gw.id
    router.enable_snat = info.get("enable_snat", True)
    session.flush()
    tx.emit(RouterGatewayChanged(router.id, network.id, gw.id, router.enable_snat))


def _apply_gateway(tx: Tx, context: Context, router: Router, info: dict[str, Any] | None
                   ) -> None:
    if not info:   # None or {} clears it
        _clear_gateway(tx, router)
    else:
        _check_gateway_request(info, context)
        _set_gateway(tx, context, router, info)


# --- public service functions -------------------------------------------------------------

def get_router(services: Services, context: Context, router_id: str) -> dict[str, Any]:
    return common.read(services, lambda s: serialize(s, load(s, context, router_id)))


def _serialize_batch(session: Session, routers: list[Router]) -> list[dict[str, Any]]:
    gw_ids = [r.gw_port_id for r in routers if r.gw_port_id]
    gws: dict[str, Port] = {}
    if gw_ids:
        gws = {p.id: p for p in session.scalars(select(Port).where(Port.id.in_(gw_ids)))}
    return [to_dict(r, gws.get(r.gw_port_id or "")) for r in routers]


LIST = listing.ListSpec(
    model=Router, id_column=Router.id, default_order=(Router.key,),
    columns={
        "id": listing.Column(Router.id),
        "name": listing.Column(Router.name),
        "description": listing.Column(Router.description),
        "project_id": listing.Column(Router.project_id),
        "admin_state_up": listing.Column(Router.admin_state_up, listing.Kind.BOOL),
        "ha": listing.Column(Router.ha, listing.Kind.BOOL),
        "status": listing.Column(Router.status),
        "revision_number": listing.Column(Router.revision_number, listing.Kind.INT),
        "created_at": listing.Column(Router.created_at, listing.Kind.TIME),
        "updated_at": listing.Column(Router.updated_at, listing.Kind.TIME),
    },
    sql_filters=tags.filters(Router),
    serialize=tags.with_tags(_serialize_batch),
    attributes=functools.cache(lambda: frozenset(to_dict(Router(), None))))


def page_routers(services: Services, context: Context, query: listing.ListQuery,
                 finish: listing.Finisher | None = None) -> listing.Page:
    scope = [] if context.is_admin else [Router.project_id == context.project_id]
    return listing.list_page(services, LIST, query, scope, finish)


def list_routers(services: Services, context: Context,
                 filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    return page_routers(services, context, listing.ListQuery(filters=filters or {})).items


def create_router(services: Services, context: Context,
                  attrs: Mapping[str, Any]) -> dict[str, Any]:
    values = check_body("router", SPEC, attrs, context, create=True)
    routes = router_routes.parse_routes(values.get("routes"))

    def work(tx: Tx) -> dict[str, Any]:
        quotas.enforce(services, tx.session, values["project_id"], "router")
        router = Router(project_id=values["project_id"], name=values.get("name", ""),
                        description=values.get("description", ""),
                        admin_state_up=values.get("admin_state_up", True),
                        availability_zone_hints=values.get("availability_zone_hints", []),
                        ha=values.get("ha", services.settings.l3_ha))
        tags.set_tags(router, values.get("tags", []))
        tx.session.add(router)
        tx.session.flush()
        tx.emit(RouterChanged(Action.CREATE, router.id, router.project_id))
        if values.get("external_gateway_info"):
            _apply_gateway(tx, context, router, values["external_gateway_info"])
        if routes:
            router_routes.set_routes(tx.session, router, routes,
                                     services.settings.max_routes)
        return serialize(tx.session, router)

    return common.run(services, work)


def update_router(services: Services, context: Context, router_id: str,
                  attrs: Mapping[str, Any]) -> dict[str, Any]:
    values = check_body("router", SPEC, attrs, context, create=False)
    routes = router_routes.parse_routes(values["routes"]) if "routes" in values else None

    def work(tx: Tx) -> dict[str, Any]:
        router = load(tx.session, context, router_id)
        changed = []
        if "ha" in values and values["ha"] != router.ha:
            _check_ha_change(router)
            router.ha = values["ha"]
            changed.append("ha")
        for key in ("name", "description", "admin_state_up"):
            if key in values and getattr(router, key) != values[key]:
                setattr(router, key, values[key])
                changed.append(key)
        if routes is not None and router_routes.set_routes(
                tx.session, router, routes, services.settings.max_routes):
            changed.append("routes")
        tx.session.flush()
        if changed:
            tx.emit(RouterChanged(Action.UPDATE, router.id, router.project_id, tuple(changed)))
        if "external_gateway_info" in values:
            _apply_gateway(tx, context, router, values["external_gateway_info"])
        return serialize(tx.session, router)

    return common.run(services, work)


def _check_ha_change(router: Router) -> None:
    """Neutron's rule (``router-admin-state-down-before-update``): ``ha`` changes only on a
    router that is already administratively down."""
    if router.admin_state_up:
        raise errors.BadRequest(
            resource="router",
            msg="the ha attribute of a router can only change while the router is down: "
                "set its admin_state_up to false first, then change ha, then set it back")


def delete_router(services: Services, context: Context, router_id: str) -> None:
    def work(tx: Tx) -> None:
        router = load(tx.session, context, router_id)
        if _interface_ports(tx.session, router.id):
            raise errors.RouterInUse(router_id=router.id)
        _clear_gateway(tx, router)
        event = RouterChanged(Action.DELETE, router.id, router.project_id)
        tx.session.delete(router)
        tx.session.flush()
        tx.emit(event)

    common.run(services, work)


def _change_routes(services: Services, context: Context, router_id: str,
                   body: Mapping[str, Any], add: bool) -> dict[str, Any]:
    given = router_routes.routes_body(body)

    def work(tx: Tx) -> dict[str, Any]:
        router = load(tx.session, context, router_id)
        current = router_routes.routes_of(router)
        wanted = [*current, *given] if add else [r for r in current if r not in given]
        if router_routes.set_routes(tx.session, router, wanted,
                                    services.settings.max_routes):
            tx.emit(RouterChanged(Action.UPDATE, router.id, router.project_id, ("routes",)))
        return serialize(tx.session, router)

    return common.run(services, work)


def add_extraroutes(services: Services, context: Context, router_id: str,
                    body: Mapping[str, Any]) -> dict[str, Any]:
    """``PUT /routers/{id}/add_extraroutes``: add these routes (those already there stay)."""
    return _change_routes(services, context, router_id, body, add=True)


def remove_extraroutes(services: Services, context: Context, router_id: str,
                       body: Mapping[str, Any]) -> dict[str, Any]:
    """``PUT /routers/{id}/remove_extraroutes``: remove these routes (absent ones are
    ignored)."""
    return _change_routes(services, context, router_id, body, add=False)


def _interface_info(router: Router, port: Port) -> dict[str, Any]:
    subnet_ids = [a.subnet_id for a in port.fixed_ips]
    return {"id": router.id, "tenant_id": router.project_id,
            "project_id": router.project_id, "port_id": port.id,
            "network_id": port.network_id,
            "subnet_id": subnet_ids[0] if subnet_ids else None, "subnet_ids": subnet_ids}


def _interface_body(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    unknown = set(body) - {"subnet_id", "port_id"}
    if unknown:
        raise errors.HTTPBadRequest(msg=f"Unrecognized attribute(s) "
                                    f"'{', '.join(sorted(unknown))}'")
    subnet_id = body.get("subnet_id")
    port_id = body.get("port_id")
    for name, value in (("subnet_id", subnet_id), ("port_id", port_id)):
        if value is not None:
            to_uuid()(value, name)
    return subnet_id, port_id


def _check_no_overlap(session: Session, router: Router, new_subnets: list[Subnet]) -> None:
    existing_ids = router_subnet_ids(session, router.id)
    for subnet in new_subnets:
        if subnet.id in existing_ids:
            raise errors.BadRequest(resource="router",
                                    msg=f"Router already has a port on subnet {subnet.id}")
    existing = session.execute(select(Subnet.id, Subnet.cidr).where(
        Subnet.id.in_(existing_ids))).all() if existing_ids else []
    for subnet in new_subnets:
        hit = ipam.find_overlap(ipam.Net4(subnet.cidr), [(e.id, e.cidr) for e in existing])
        if hit is not None:
            raise errors.RouterInterfaceCidrOverlap(
                cidr=subnet.cidr, subnet_id=subnet.id, other_cidr=hit[1],
                other_subnet_id=hit[0], router_id=router.id)


def add_router_interface(services: Services, context: Context, router_id: str,
                         body: Mapping[str, Any]) -> dict[str, Any]:
    subnet_id, port_id = _interface_body(body)
    if bool(subnet_id) == bool(port_id):
        raise errors.BadRequest(resource="router",
                                msg="Either subnet_id or port_id must be specified")

    def work(tx: Tx) -> dict[str, Any]:
        session = tx.session
        router = load(session, context, router_id)
        if port_id is not None:
            port = ports_mod.load(session, context, port_id)
            if port.device_id or port.device_owner:
                raise errors.PortInUse(port_id=port.id, net_id=port.network_id,
                                       device_id=port.device_id or port.device_owner)
            if not port.fixed_ips:
                raise errors.BadRequest(resource="router",
                                        msg=f"Router port must have at least one fixed IP "
                                            f"(port {port.id})")
            subnets = list(session.scalars(select(Subnet).where(
                Subnet.id.in_([a.subnet_id for a in port.fixed_ips]))))
            _check_no_overlap(session, router, subnets)
            port.device_owner = INTERFACE
            port.device_id = router.id
            session.flush()
            tx.emit(port_event(port, Action.UPDATE, ("device_owner", "device_id")))
        else:
            assert subnet_id is not None
            subnet = subnets_mod.load(session, context, subnet_id)
            if not subnet.gateway_ip:
                raise errors.BadRequest(resource="router",
                                        msg=f"Subnet for router interface must have a "
                                            f"gateway IP (subnet {subnet.id})")
            _check_no_overlap(session, router, [subnet])
            network = networks_mod.load(session, context, subnet.network_id)
            port = create_port_row(tx, network, {
                "project_id": router.project_id, "device_owner": INTERFACE,
                "device_id": router.id, "port_security_enabled": False,
                "fixed_ips": [{"subnet_id": subnet.id, "ip_address": subnet.gateway_ip}]})
        session.add(RouterPort(router_id=router.id, port_id=port.id, port_type=INTERFACE))
        session.flush()
        info = _interface_info(router, port)
        tx.emit(RouterInterfaceChanged(router.id, True, port.id, port.network_id,
                                       tuple(info["subnet_ids"])))
        return info

    return common.run(services, work)


def remove_router_interface(services: Services, context: Context, router_id: str,
                            body: Mapping[str, Any]) -> dict[str, Any]:
    subnet_id, port_id = _interface_body(body)
    if not subnet_id and not port_id:
        raise errors.BadRequest(resource="router",
                                msg="Either subnet_id or port_id must be specified")

    def work(tx: Tx) -> dict[str, Any]:
        session = tx.session
        router = load(session, context, router_id)
        interfaces = _interface_ports(session, router.id)
        if port_id is not None:
            port = next((p for p in interfaces if p.id == port_id), None)
            if port is None:
                raise errors.RouterInterfaceNotFound(router_id=router.id, port_id=port_id)
            if subnet_id and subnet_id not in [a.subnet_id for a in port.fixed_ips]:
                raise errors.SubnetMismatchForPort(port_id=port_id, subnet_id=subnet_id)
        else:
            port = next((p for p in interfaces
                         if subnet_id in [a.subnet_id for a in p.fixed_ips]), None)
            if port is None:
                raise errors.RouterInterfaceNotFoundForSubnet(router_id=router.id,
                                                              subnet_id=subnet_id)
        subnets = list(session.scalars(select(Subnet).where(
            Subnet.id.in_([a.subnet_id for a in port.fixed_ips]))))
        fips = session.execute(select(FloatingIP.fixed_ip_address).where(
            FloatingIP.router_id == router.id,
            FloatingIP.fixed_ip_address.is_not(None))).scalars().all()
        for subnet in subnets:
            cidr = ipam.Net4(subnet.cidr)
            if any(ipam.IPv4(ip) in cidr for ip in fips):
                raise errors.RouterInterfaceInUseByFloatingIP(subnet_id=subnet.id,
                                                              router_id=router.id)
            if router_routes.nexthops_in(router, [subnet.cidr]):
                raise errors.RouterInterfaceInUseByRoute(subnet_id=subnet.id,
                                                         router_id=router.id)
        info = _interface_info(router, port)
        delete_port_row(tx, port)
        tx.emit(RouterInterfaceChanged(router.id, False, port.id, info["network_id"],
                                       tuple(info["subnet_ids"])))
        return info

    return common.run(services, work)
