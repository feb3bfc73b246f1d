"""Ports: MAC addresses, fixed-IP allocation, device ownership and binding.

``create_port`` / ``update_port`` / ``get_port`` / ``list_ports`` / ``delete_port`` are the
service functions the API and the agent RPC call; the row helpers that work inside another
resource's transaction are in :mod:`ryu_sched.resources.port_rows`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session

from ryu_sched import errors
from ryu_sched.db.models import IPAllocation, Port
from ryu_sched.events import Action
from ryu_sched.resources import common, listing, port_filters, quotas, tags
from ryu_sched.resources import networks as networks_mod
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
    to_empty_list,
    to_list,
    to_str,
    to_uuid,
    to_uuid_list,
)
from ryu_sched.services import Services
from ryu_sched.shared.vocabulary import ROUTER_OWNED


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
    "security_groups": Attr(to_uuid_list(nullable=True)),
    "allowed_address_pairs": Attr(port_filters.to_address_pairs),
    "extra_dhcp_opts": Attr(to_empty_list),
    # Not settable through Neutron's API; the data plane and agents report it here.
    "status": Attr(to_str(16), post=False, admin=True),
    "tags": tags.TAGS,
}

PORT_STATUSES = ("ACTIVE", "DOWN", "BUILD", "ERROR")


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
        **port_filters.api_fields(port),
        "extra_dhcp_opts": [],
        "tags": tags.tag_list(port),
        "revision_number": port.revision_number,
        **common.timestamps(port),
    }


def load(session: Session, context: Context, port_id: str) -> Port:
    port = session.scalar(select(Port).where(Port.id == port_id))
    if port is None or not context.can_see(port.project_id):
        raise errors.PortNotFound(port_id)
    return port


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
        "revision_number": listing.Column(Port.revision_number, listing.Kind.INT),
        "created_at": listing.Column(Port.created_at, listing.Kind.TIME),
        "updated_at": listing.Column(Port.updated_at, listing.Kind.TIME),
    },
    sql_filters={"fixed_ips": _with_fixed_ips, **tags.filters(Port)},
    serialize=tags.with_tags(lambda session, rows: [to_dict(p) for p in rows]),
    attributes=functools.cache(lambda: frozenset(to_dict(Port()))))


def page_ports(services: Services, context: Context, query: listing.ListQuery,
               finish: listing.Finisher | None = None) -> listing.Page:
    scope = [] if context.is_admin else [Port.project_id == context.project_id]
    return listing.list_page(services, LIST, query, scope, finish)


def list_ports(services: Services, context: Context,
               filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    return page_ports(services, context, listing.ListQuery(filters=filters or {})).items


def create_port(services: Services, context: Context, attrs: Mapping[str, Any],
                enforce_quota: bool = True) -> dict[str, Any]:
    """``enforce_quota`` False: a port the system makes for itself (a DHCP port), which
    Neutron does not count against the quota when it makes it."""
    values = check_body("port", SPEC, attrs, context, create=True)

    def work(tx: Tx) -> dict[str, Any]:
        network = networks_mod.load_for_use(tx.session, context, values["network_id"],
                                            "create_port", allow_shared=True)
        if enforce_quota:
            quotas.enforce(services, tx.session, values["project_id"], "port")
        port = create_port_row(tx, network, values)
        port_filters.on_create(tx, context, port, values)
        return to_dict(port)

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
        changed += port_filters.on_update(
            tx, context, port, values, "port_security_enabled" in changed
            and port.port_security_enabled)
        if "fixed_ips" in values:
            current = [(a.subnet_id, a.ip_address) for a in port.fixed_ips]
            pairs = plan_fixed_ips(session, port.network_id, values["fixed_ips"], port.id,
                                   current)
            if set_fixed_ips(session, port, pairs):
                changed.append("fixed_ips")
        session.flush()
        if changed:
            tx.emit(port_event(port, Action.UPDATE, changed))
        return to_dict(port)

    return common.run(services, work)


def delete_port(services: Services, context: Context, port_id: str) -> None:
    def work(tx: Tx) -> None:
        port = load(tx.session, context, port_id)
        if port.device_owner in ROUTER_OWNED:
            raise errors.ServicePortInUse(port_id=port.id,
                                          reason=f"has device owner {port.device_owner}")
        delete_port_row(tx, port)

    common.run(services, work)
