"""Networks: provider segments, sharing, external networks; deletion cleans up DHCP ports."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session

from ryu_sched import errors, segments
from ryu_sched.db.models import FloatingIP, IPAllocation, Network, Port, Subnet
from ryu_sched.events import Action, NetworkChanged, SubnetChanged
from ryu_sched.resources import common, listing, quotas, tags
from ryu_sched.resources import network_access as access
from ryu_sched.resources.common import Tx
from ryu_sched.resources.context import Context
from ryu_sched.resources.network_access import RbacAction
from ryu_sched.resources.port_rows import delete_floatingip_row, delete_port_row
from ryu_sched.resources.validation import (
    ADMIN_STATE,
    DESCRIPTION,
    NAME,
    Attr,
    check_body,
    to_bool,
    to_int,
    to_str,
    to_str_list,
)
from ryu_sched.services import Services
from ryu_sched.shared.vocabulary import DeviceOwner

SPEC: dict[str, Attr] = {
    "name": NAME,
    "description": DESCRIPTION,
    "admin_state_up": ADMIN_STATE,
    "shared": Attr(to_bool, admin=True),
    "router:external": Attr(to_bool, admin=True),
    "mtu": Attr(to_int(68, 9216)),
    "port_security_enabled": Attr(to_bool),
    "availability_zone_hints": Attr(to_str_list, put=False),
    "provider:network_type": Attr(to_str(16), put=False, admin=True),
    "provider:physical_network": Attr(to_str(64), put=False, admin=True),
    "provider:segmentation_id": Attr(to_int(1, 4094), put=False, admin=True),
    "is_default": Attr(to_bool),
    "tags": tags.TAGS,
}


def to_dict(net: Network, subnet_ids: list[str]) -> dict[str, Any]:
    return {
        "id": net.id,
        "name": net.name,
        "description": net.description,
        "project_id": net.project_id,
        "tenant_id": net.project_id,
        "admin_state_up": net.admin_state_up,
        "status": net.status,
        "shared": net.shared,
        "router:external": net.router_external,
        "mtu": net.mtu,
        "port_security_enabled": net.port_security_enabled,
        "subnets": subnet_ids,
        "provider:network_type": net.network_type,
        "provider:physical_network": net.physical_network,
        "provider:segmentation_id": net.segmentation_id,
        "availability_zone_hints": list(net.availability_zone_hints or []),
        "availability_zones": [],
        "ipv4_address_scope": None,
        "ipv6_address_scope": None,
        "is_default": net.is_default,
        "tags": tags.tag_list(net),
        "revision_number": net.revision_number,
        **common.timestamps(net),
    }


def load(session: Session, context: Context, network_id: str) -> Network:
    """The network, if the caller sees it: admin, owner, or named by one of its RBAC
    policies (shared or external, to the caller's project or to all)."""
    query = select(Network).where(Network.id == network_id)
    if not context.is_admin:
        query = query.where(access.visible_clause(context))
    net = session.scalar(query)
    if net is None:
        raise errors.NetworkNotFound(network_id)
    return net


def load_owned(session: Session, context: Context, network_id: str,
               action: str = "update_network") -> Network:
    """The network, which the caller must own (or be admin) to change."""
    net = load(session, context, network_id)
    if not context.can_see(net.project_id):
        # Visible (shared or external) but someone else's: Neutron's update and delete
        # rules refuse what its show rule allows with 403.
        raise errors.PolicyNotAuthorized(action=action)
    return net


def load_for_use(session: Session, context: Context, network_id: str, action: str,
                 allow_shared: bool) -> Network:
    """A network the caller may put subnets (own) or ports (own or shared with its project)
    on.

    Someone else's network is 403, as Neutron's policy answers on create.
    """
    net = session.scalar(select(Network).where(Network.id == network_id))
    if net is None:
        raise errors.NetworkNotFound(network_id)
    if context.can_see(net.project_id) or (
            allow_shared and access.has_access(session, context, net.id, RbacAction.SHARED)):
        return net
    raise errors.PolicyNotAuthorized(action=action)


def _subnet_ids(session: Session, network_ids: list[str] | None) -> dict[str, list[str]]:
    query = select(Subnet.network_id, Subnet.id).order_by(Subnet.created_at, Subnet.id)
    if network_ids is not None and len(network_ids) <= 500:
        query = query.where(Subnet.network_id.in_(network_ids))
    result: dict[str, list[str]] = {}
    for network_id, subnet_id in session.execute(query):
        result.setdefault(network_id, []).append(subnet_id)
    return result


def serialize(session: Session, net: Network) -> dict[str, Any]:
    return to_dict(net, _subnet_ids(session, [net.id]).get(net.id, []))


def _as_seen_by(session: Session, context: Context, items: list[dict[str, Any]]
                ) -> list[dict[str, Any]]:
    """``shared`` as the caller sees it: also true where a policy shares the network with
    its own project."""
    if context.is_admin:
        return items
    unshared = [item["id"] for item in items if not item["shared"]]
    for network_id in access.shared_with(session, context, unshared):
        next(item for item in items if item["id"] == network_id)["shared"] = True
    return items


# --- public service functions -------------------------------------------------------------

def get_network(services: Services, context: Context, network_id: str) -> dict[str, Any]:
    return common.read(services, lambda s: _as_seen_by(
        s, context, [serialize(s, load(s, context, network_id))])[0])


def _with_subnets(values: list[str]) -> Any:
    return Network.id.in_(select(Subnet.network_id).where(Subnet.id.in_(values)))


def _serialize_batch(session: Session, nets: list[Network]) -> list[dict[str, Any]]:
    subnets = _subnet_ids(session, [n.id for n in nets])
    return [to_dict(n, subnets.get(n.id, [])) for n in nets]


LIST = listing.ListSpec(
    model=Network, id_column=Network.id, default_order=(Network.key,),
    columns={
        "id": listing.Column(Network.id),
        "name": listing.Column(Network.name),
        "description": listing.Column(Network.description),
        "project_id": listing.Column(Network.project_id),
        "admin_state_up": listing.Column(Network.admin_state_up, listing.Kind.BOOL),
        "status": listing.Column(Network.status),
        "shared": listing.Column(Network.shared, listing.Kind.BOOL),
        "router:external": listing.Column(Network.router_external, listing.Kind.BOOL),
        "mtu": listing.Column(Network.mtu, listing.Kind.INT),
        "port_security_enabled": listing.Column(Network.port_security_enabled,
                                                listing.Kind.BOOL),
        "provider:network_type": listing.Column(Network.network_type),
        "provider:physical_network": listing.Column(Network.physical_network),
        "provider:segmentation_id": listing.Column(Network.segmentation_id,
                                                   listing.Kind.INT),
        "is_default": listing.Column(Network.is_default, listing.Kind.BOOL),
        "revision_number": listing.Column(Network.revision_number, listing.Kind.INT),
        "created_at": listing.Column(Network.created_at, listing.Kind.TIME),
        "updated_at": listing.Column(Network.updated_at, listing.Kind.TIME),
    },
    sql_filters={"subnets": _with_subnets, **tags.filters(Network)},
    serialize=tags.with_tags(_serialize_batch),
    attributes=functools.cache(lambda: frozenset(to_dict(Network(), []))))


def _shared_filter(context: Context) -> listing.SqlFilter:
    """``shared=<bool>`` as the caller sees ``shared`` (see :func:`_as_seen_by`)."""
    def clause(values: list[str]) -> Any:
        wanted = {v.lower() in ("true", "1") for v in values
                  if v.lower() in ("true", "1", "false", "0")}
        seen_shared = or_(Network.shared, Network.id.in_(
            access.granted_ids(context, (RbacAction.SHARED,))))
        if wanted == {True}:
            return seen_shared
        if wanted == {False}:
            return ~seen_shared
        return or_(seen_shared, ~seen_shared) if wanted else false()
    return clause


def _member_spec(context: Context) -> listing.ListSpec:
    return dataclasses.replace(
        LIST, sql_filters={**LIST.sql_filters, "shared": _shared_filter(context)},
        serialize=lambda session, rows: _as_seen_by(session, context,
                                                    LIST.serialize(session, rows)))


def page_networks(services: Services, context: Context, query: listing.ListQuery,
                  finish: listing.Finisher | None = None) -> listing.Page:
    if context.is_admin:
        return listing.list_page(services, LIST, query, (), finish)
    return listing.list_page(services, _member_spec(context), query,
                             [access.visible_clause(context)], finish)


def list_networks(services: Services, context: Context,
                  filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    return page_networks(services, context, listing.ListQuery(filters=filters or {})).items


def _check_default(session: Session, context: Context, net: Network) -> None:
    """``is_default`` (Neutron's default external network for auto-allocation): only an
    admin sets it, only on an external network, on one network at most."""
    if not net.is_default:
        return
    if not context.is_admin:
        raise errors.PolicyNotAuthorized(action="create_network:is_default")
    if not net.router_external:
        raise errors.InvalidInput(
            error_message="is_default can only be set on an external network")
    other = session.scalar(select(Network.id).where(Network.is_default,
                                                    Network.id != net.id).limit(1))
    if other is not None:
        raise errors.DefaultExternalNetworkExists(net_id=other)


def create_network(services: Services, context: Context,
                   attrs: Mapping[str, Any]) -> dict[str, Any]:
    values = check_body("network", SPEC, attrs, context, create=True)
    settings = services.settings
    requested = segments.resolve_request(values.get("provider:network_type"),
                                         values.get("provider:physical_network"),
                                         values.get("provider:segmentation_id"),
                                         settings.network_vlan_ranges)

    def work(tx: Tx) -> dict[str, Any]:
        session = tx.session
        quotas.enforce(services, session, values["project_id"], "network")
        if requested.network_type == segments.FLAT:
            taken = session.scalar(select(Network.id).where(
                Network.network_type == segments.FLAT,
                Network.physical_network == requested.physical_network))
            if taken is not None:
                raise errors.FlatNetworkInUse(physical_network=requested.physical_network)
            segment = requested
        else:
            used = set(session.scalars(select(Network.segmentation_id).where(
                Network.physical_network == requested.physical_network,
                Network.segmentation_id.is_not(None))))
            segment = segments.allocate_vlan(requested, settings.network_vlan_ranges,
                                             {int(v) for v in used})
        net = Network(
            project_id=values["project_id"], name=values.get("name", ""),
            description=values.get("description", ""),
            admin_state_up=values.get("admin_state_up", True),
            shared=values.get("shared", False),
            router_external=values.get("router:external", False),
            mtu=values.get("mtu", settings.global_physnet_mtu),
            port_security_enabled=values.get("port_security_enabled", True),
            availability_zone_hints=values.get("availability_zone_hints", []),
            network_type=segment.network_type, physical_network=segment.physical_network,
            segmentation_id=segment.segmentation_id,
            is_default=values.get("is_default", False))
        _check_default(session, context, net)
        tags.set_tags(net, values.get("tags", []))
        session.add(net)
        session.flush()
        # shared / router:external stand for wildcard RBAC policies, as in Neutron.
        if net.shared:
            access.add_wildcard(session, net, RbacAction.SHARED)
        if net.router_external:
            access.add_wildcard(session, net, RbacAction.EXTERNAL)
        tx.emit(NetworkChanged(Action.CREATE, net.id, net.project_id))
        return to_dict(net, [])

    return common.run(services, work)


def update_network(services: Services, context: Context, network_id: str,
                   attrs: Mapping[str, Any]) -> dict[str, Any]:
    values = check_body("network", SPEC, attrs, context, create=False)

    def work(tx: Tx) -> dict[str, Any]:
        session = tx.session
        net = load_owned(session, context, network_id)
        changed = []
        for key, column in (("name", "name"), ("description", "description"),
                            ("admin_state_up", "admin_state_up"), ("mtu", "mtu"),
                            ("port_security_enabled", "port_security_enabled")):
            if key in values and getattr(net, column) != values[key]:
                setattr(net, column, values[key])
                changed.append(key)
        _apply_sharing(session, net, values)
        changed += access.refresh_flags(session, net)
        if values.get("is_default", net.is_default) != net.is_default:
            net.is_default = values["is_default"]
            changed.append("is_default")
            _check_default(session, context, net)
        session.flush()
        if changed:
            tx.emit(NetworkChanged(Action.UPDATE, net.id, net.project_id, tuple(changed)))
        return serialize(tx.session, net)

    return common.run(services, work)


def _apply_sharing(session: Session, net: Network, values: Mapping[str, Any]) -> None:
    """``shared`` / ``router:external`` in a PUT: add or remove their wildcard policies
    (``router:external: false`` removes every external policy)."""
    if "shared" in values:
        if values["shared"]:
            access.add_wildcard(session, net, RbacAction.SHARED)
        else:
            wildcard = [p for p in access.policies_of(session, net.id, RbacAction.SHARED)
                        if p.target_project == access.WILDCARD]
            if access.removal_blocker(session, net, wildcard):
                raise errors.InvalidSharedSetting(network=net.id)
            access.remove_policies(session, wildcard)
    if "router:external" in values:
        if values["router:external"]:
            access.add_wildcard(session, net, RbacAction.EXTERNAL)
        else:
            policies = access.policies_of(session, net.id, RbacAction.EXTERNAL)
            if access.removal_blocker(session, net, policies):
                raise errors.NetworkInUse(net_id=net.id)
            access.remove_policies(session, policies)


def delete_network(services: Services, context: Context, network_id: str) -> None:
    def work(tx: Tx) -> None:
        session = tx.session
        net = load_owned(session, context, network_id, "delete_network")
        net_ports = list(session.scalars(select(Port).where(Port.network_id == net.id)))
        if any(p.device_owner not in (DeviceOwner.DHCP, DeviceOwner.FLOATINGIP)
               for p in net_ports):
            raise errors.NetworkInUse(net_id=net.id)
        # Floating IPs of an external network go with it, as in Neutron.
        for fip in session.scalars(select(FloatingIP).where(
                FloatingIP.floating_network_id == net.id)).all():
            delete_floatingip_row(tx, fip)
        for port in session.scalars(select(Port).where(Port.network_id == net.id)).all():
            delete_port_row(tx, port)
        subnets = list(session.scalars(select(Subnet).where(Subnet.network_id == net.id)))
        project_id = net.project_id
        for subnet in subnets:
            session.execute(IPAllocation.__table__.delete().where(
                IPAllocation.subnet_id == subnet.id))
            tx.emit(SubnetChanged(Action.DELETE, subnet.id, net.id, subnet.enable_dhcp))
        session.delete(net)
        session.flush()
        tx.emit(NetworkChanged(Action.DELETE, network_id, project_id))

    common.run(services, work)
