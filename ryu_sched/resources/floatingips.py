"""Floating IPs: an address on an external network (a ``network:floatingip`` port), optionally
associated with a fixed IP whose subnet a router connects to that external network."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ryu_sched import errors, ipam
from ryu_sched.db.models import FloatingIP, IPAllocation, Port, Router, RouterPort, new_id
from ryu_sched.events import Action
from ryu_sched.resources import common, listing, quotas, tags
from ryu_sched.resources import network_access as access
from ryu_sched.resources import ports as ports_mod
from ryu_sched.resources.common import Tx
from ryu_sched.resources.context import Context
from ryu_sched.resources.port_rows import create_port_row, delete_floatingip_row, fip_event
from ryu_sched.resources.validation import (
    DESCRIPTION,
    Attr,
    check_body,
    to_str,
    to_uuid,
)
from ryu_sched.services import Services
from ryu_sched.shared.vocabulary import DeviceOwner

SPEC: dict[str, Attr] = {
    "description": DESCRIPTION,
    "floating_network_id": Attr(to_uuid(), put=False, required=True),
    "floating_ip_address": Attr(to_str(64), put=False),
    "subnet_id": Attr(to_uuid(nullable=True), put=False),
    "port_id": Attr(to_uuid(nullable=True)),
    "fixed_ip_address": Attr(to_str(64, nullable=True)),
    "tags": tags.TAGS,
}


def port_details(port: Port | None) -> dict[str, Any] | None:
    """What Neutron's ``fip-port-details`` shows of the associated port."""
    if port is None:
        return None
    return {"name": port.name, "network_id": port.network_id,
            "mac_address": port.mac_address, "admin_state_up": port.admin_state_up,
            "status": port.status, "device_id": port.device_id,
            "device_owner": port.device_owner}


def to_dict(fip: FloatingIP, port: Port | None = None) -> dict[str, Any]:
    """``port``: the associated port (``fip.fixed_port_id``), for ``port_details``."""
    return {
        "id": fip.id,
        "description": fip.description,
        "project_id": fip.project_id,
        "tenant_id": fip.project_id,
        "floating_network_id": fip.floating_network_id,
        "floating_ip_address": fip.floating_ip_address,
        "port_id": fip.fixed_port_id,
        "fixed_ip_address": fip.fixed_ip_address,
        "router_id": fip.router_id,
        "status": fip.status,
        "port_details": port_details(port) if fip.fixed_port_id else None,
        "tags": tags.tag_list(fip),
        "revision_number": fip.revision_number,
        **common.timestamps(fip),
    }


def serialize(session: Session, fip: FloatingIP) -> dict[str, Any]:
    port = session.get(Port, fip.fixed_port_id) if fip.fixed_port_id else None
    return to_dict(fip, port)


def _serialize_batch(session: Session, fips: list[FloatingIP]) -> list[dict[str, Any]]:
    port_ids = sorted({f.fixed_port_id for f in fips if f.fixed_port_id})
    ports = {p.id: p for p in session.scalars(select(Port).where(Port.id.in_(port_ids)))} \
        if port_ids else {}
    return [to_dict(f, ports.get(f.fixed_port_id or "")) for f in fips]


def load(session: Session, context: Context, fip_id: str) -> FloatingIP:
    fip = session.scalar(select(FloatingIP).where(FloatingIP.id == fip_id))
    if fip is None or not context.can_see(fip.project_id):
        raise errors.FloatingIPNotFound(fip_id)
    return fip


def _find_router(session: Session, subnet_id: str, external_net_id: str) -> Router | None:
    """A router with an interface on ``subnet_id`` and its gateway on the external network."""
    interface_routers = select(RouterPort.router_id).join(
        IPAllocation, IPAllocation.port_id == RouterPort.port_id).where(
        IPAllocation.subnet_id == subnet_id,
        RouterPort.port_type == DeviceOwner.ROUTER_INTERFACE)
    return session.scalar(
        select(Router).join(Port, Port.id == Router.gw_port_id)
        .where(Router.id.in_(interface_routers), Port.network_id == external_net_id)
        .order_by(Router.key).limit(1))


def _associate(tx: Tx, context: Context, fip: FloatingIP, port_id: str | None,
               fixed_ip: str | None) -> None:
    session = tx.session
    if port_id is None:
        fip.fixed_port_id = None
        fip.fixed_ip_address = None
        fip.router_id = None
        fip.status = "DOWN"
        return
    port = ports_mod.load(session, context, port_id)
    if not context.is_admin and port.project_id != fip.project_id:
        raise errors.PortNotFound(port_id)
    if not port.fixed_ips:
        raise errors.BadRequest(resource="floatingip",
                                msg=f"Port {port.id} does not have fixed ip")
    if fixed_ip is not None:
        ip = str(ipam.parse_ip(fixed_ip, "fixed_ip_address"))
        allocation = next((a for a in port.fixed_ips if a.ip_address == ip), None)
        if allocation is None:
            raise errors.BadRequest(resource="floatingip",
                                    msg=f"Port {port.id} does not have fixed ip {ip}")
    else:
        if len(port.fixed_ips) > 1:
            raise errors.BadRequest(
                resource="floatingip",
                msg=f"Port {port.id} has multiple fixed IPv4 addresses. Must provide a "
                    "specific IPv4 address when assigning a floating IP")
        allocation = port.fixed_ips[0]
    other = session.scalar(select(FloatingIP).where(
        FloatingIP.fixed_port_id == port.id,
        FloatingIP.fixed_ip_address == allocation.ip_address, FloatingIP.id != fip.id))
    if other is not None:
        raise errors.FloatingIPPortAlreadyAssociated(
            floating_ip_address=other.floating_ip_address, fip_id=other.id, port_id=port.id,
            fixed_ip=allocation.ip_address, net_id=other.floating_network_id)
    router = _find_router(session, allocation.subnet_id, fip.floating_network_id)
    if router is None:
        raise errors.ExternalGatewayForFloatingIPNotFound(
            external_network_id=fip.floating_network_id, subnet_id=allocation.subnet_id,
            port_id=port.id)
    fip.fixed_port_id = port.id
    fip.fixed_ip_address = allocation.ip_address
    fip.router_id = router.id
    fip.status = "ACTIVE"


# --- public service functions -------------------------------------------------------------

def get_floatingip(services: Services, context: Context, fip_id: str) -> dict[str, Any]:
    return common.read(services, lambda s: serialize(s, load(s, context, fip_id)))


LIST = listing.ListSpec(
    model=FloatingIP, id_column=FloatingIP.id,
    default_order=(FloatingIP.created_at, FloatingIP.id),
    columns={
        "id": listing.Column(FloatingIP.id),
        "description": listing.Column(FloatingIP.description),
        "project_id": listing.Column(FloatingIP.project_id),
        "floating_network_id": listing.Column(FloatingIP.floating_network_id),
        "floating_ip_address": listing.Column(FloatingIP.floating_ip_address),
        "port_id": listing.Column(FloatingIP.fixed_port_id),
        "fixed_ip_address": listing.Column(FloatingIP.fixed_ip_address),
        "router_id": listing.Column(FloatingIP.router_id),
        "status": listing.Column(FloatingIP.status),
        "revision_number": listing.Column(FloatingIP.revision_number, listing.Kind.INT),
        "created_at": listing.Column(FloatingIP.created_at, listing.Kind.TIME),
        "updated_at": listing.Column(FloatingIP.updated_at, listing.Kind.TIME),
    },
    sql_filters=tags.filters(FloatingIP),
    serialize=tags.with_tags(_serialize_batch),
    attributes=functools.cache(lambda: frozenset(to_dict(FloatingIP()))))


def page_floatingips(services: Services, context: Context, query: listing.ListQuery,
                     finish: listing.Finisher | None = None) -> listing.Page:
    scope = [] if context.is_admin else [FloatingIP.project_id == context.project_id]
    return listing.list_page(services, LIST, query, scope, finish)


def list_floatingips(services: Services, context: Context,
                     filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    query = listing.ListQuery(filters=filters or {})
    return page_floatingips(services, context, query).items


def create_floatingip(services: Services, context: Context,
                      attrs: Mapping[str, Any]) -> dict[str, Any]:
    values = check_body("floatingip", SPEC, attrs, context, create=True)

    def work(tx: Tx) -> dict[str, Any]:
        session = tx.session
        network = access.load_external(
            session, context, values["floating_network_id"], "floatingip",
            f"Network {values['floating_network_id']} is not a valid external network")
        quotas.enforce(services, session, values["project_id"], "floatingip")
        fixed: dict[str, str] = {}
        if values.get("subnet_id"):
            fixed["subnet_id"] = values["subnet_id"]
        if values.get("floating_ip_address"):
            fixed["ip_address"] = values["floating_ip_address"]
        fip_id = new_id()
        port = create_port_row(tx, network, {
            "project_id": "", "device_owner": DeviceOwner.FLOATINGIP,
            "device_id": fip_id, "port_security_enabled": False,
            "fixed_ips": [fixed] if fixed else None})
        if not port.fixed_ips:
            raise errors.IpAddressGenerationFailure(net_id=network.id)
        fip = FloatingIP(id=fip_id, project_id=values["project_id"],
                         description=values.get("description", ""),
                         floating_network_id=network.id, floating_port_id=port.id,
                         floating_ip_address=port.fixed_ips[0].ip_address)
        tags.set_tags(fip, values.get("tags", []))
        session.add(fip)
        if values.get("port_id"):
            _associate(tx, context, fip, values["port_id"], values.get("fixed_ip_address"))
        session.flush()
        tx.emit(fip_event(fip, Action.CREATE))
        return serialize(session, fip)

    return common.run(services, work)


def update_floatingip(services: Services, context: Context, fip_id: str,
                      attrs: Mapping[str, Any]) -> dict[str, Any]:
    values = check_body("floatingip", SPEC, attrs, context, create=False)

    def work(tx: Tx) -> dict[str, Any]:
        fip = load(tx.session, context, fip_id)
        before = fip_event(fip, Action.UPDATE)
        if "description" in values:
            fip.description = values["description"]
        if "port_id" in values:
            _associate(tx, context, fip, values["port_id"], values.get("fixed_ip_address"))
        elif "fixed_ip_address" in values:
            _associate(tx, context, fip, fip.fixed_port_id, values["fixed_ip_address"])
        tx.session.flush()
        after = fip_event(fip, Action.UPDATE, previous_router_id=before.router_id)
        if dataclasses.replace(after, previous_router_id=None) != before:
            tx.emit(after)
        return serialize(tx.session, fip)

    return common.run(services, work)


def delete_floatingip(services: Services, context: Context, fip_id: str) -> None:
    def work(tx: Tx) -> None:
        session = tx.session
        delete_floatingip_row(tx, load(session, context, fip_id))

    common.run(services, work)
