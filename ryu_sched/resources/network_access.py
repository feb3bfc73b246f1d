"""Who may see and use a network: its owner, and the projects its RBAC policies name.

A network's ``networkrbacs`` rows grant ``access_as_shared`` (see it and its subnets, put
ports on it) or ``access_as_external`` (see it, put router gateways and floating IPs on it)
to one project or to every project (``*``). ``shared: true`` is the wildcard shared policy
and ``router:external: true`` the wildcard external one, as in Neutron; the columns
``networks.shared`` and ``networks.router_external`` are kept equal to "a wildcard shared
policy exists" and "an external policy exists" (the data plane treats any network with an
external policy as external) by :func:`refresh_flags`.

The row helpers here work inside the caller's transaction; the policy API is
:mod:`ryu_sched.resources.rbac_policies`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ryu_sched import errors
from ryu_sched.db.models import FloatingIP, Network, NetworkRBAC, Port, Router, Subnet
from ryu_sched.resources.context import Context
from ryu_sched.shared.vocabulary import DeviceOwner

WILDCARD = "*"


class RbacAction(enum.StrEnum):
    SHARED = "access_as_shared"
    EXTERNAL = "access_as_external"


ALL_ACTIONS = (RbacAction.SHARED, RbacAction.EXTERNAL)


def granted_ids(context: Context, actions: Iterable[RbacAction] = ALL_ACTIONS) -> Any:
    """SELECT of the network ids a policy grants the caller's project (or every project)."""
    return select(NetworkRBAC.object_id).where(
        NetworkRBAC.target_project.in_((context.project_id, WILDCARD)),
        NetworkRBAC.action.in_([str(a) for a in actions]))


def visible_clause(context: Context) -> Any:
    """Networks a non-admin caller sees: its own and those a policy grants it."""
    return or_(Network.project_id == context.project_id,
               Network.id.in_(granted_ids(context)))


def has_access(session: Session, context: Context, network_id: str,
               action: RbacAction) -> bool:
    """The caller may use the network as ``action`` allows (admin and owner always may)."""
    if context.is_admin:
        return True
    owner = session.scalar(select(Network.project_id).where(Network.id == network_id))
    if owner is not None and owner == context.project_id:
        return True
    return session.scalar(granted_ids(context, (action,))
                          .where(NetworkRBAC.object_id == network_id).limit(1)) is not None


def load_external(session: Session, context: Context, network_id: str, resource: str,
                  not_external: str) -> Network:
    """The external network the caller attaches ``resource`` (a router gateway, a floating
    IP) to: 404 ``NetworkNotFound`` when the caller does not see it, 400 ``BadRequest``
    ``not_external`` when it is not external for the caller."""
    net = session.scalar(select(Network).where(Network.id == network_id))
    if net is None or (not context.is_admin and net.project_id != context.project_id and \
            session.scalar(granted_ids(context).where(NetworkRBAC.object_id == net.id)
                           .limit(1)) is None):
        raise errors.NetworkNotFound(network_id)
    if not net.router_external or not has_access(session, context, net.id,
                                                 RbacAction.EXTERNAL):
        raise errors.BadRequest(resource=resource, msg=not_external)
    return net


def shared_with(session: Session, context: Context, network_ids: list[str]) -> set[str]:
    """Those of ``network_ids`` shared with the caller's own project by a targeted policy
    (Neutron shows ``shared: true`` to such a project)."""
    if not network_ids:
        return set()
    return set(session.scalars(select(NetworkRBAC.object_id).where(
        NetworkRBAC.object_id.in_(network_ids),
        NetworkRBAC.action == RbacAction.SHARED,
        NetworkRBAC.target_project == context.project_id)))


def policies_of(session: Session, network_id: str, action: RbacAction) -> list[NetworkRBAC]:
    return list(session.scalars(select(NetworkRBAC).where(
        NetworkRBAC.object_id == network_id, NetworkRBAC.action == action)))


def add_wildcard(session: Session, net: Network, action: RbacAction) -> None:
    if not any(p.target_project == WILDCARD for p in policies_of(session, net.id, action)):
        session.add(NetworkRBAC(project_id=net.project_id, object_id=net.id,
                                target_project=WILDCARD, action=str(action)))
        session.flush()


def remove_policies(session: Session, policies: Iterable[NetworkRBAC]) -> None:
    for policy in policies:
        session.delete(policy)
    session.flush()


def refresh_flags(session: Session, net: Network) -> list[str]:
    """Make ``shared`` / ``router:external`` (and ``is_default``, which needs an external
    network) say what the policies say; returns the API attributes that changed."""
    session.flush()
    shared = any(p.target_project == WILDCARD
                 for p in policies_of(session, net.id, RbacAction.SHARED))
    external = bool(policies_of(session, net.id, RbacAction.EXTERNAL))
    changed = []
    if net.shared != shared:
        net.shared = shared
        changed.append("shared")
    if net.router_external != external:
        net.router_external = external
        changed.append("router:external")
    if not external and net.is_default:
        net.is_default = False
        changed.append("is_default")
    return changed


def _users(session: Session, net: Network, action: RbacAction) -> set[str]:
    """Projects other than the owner that use the network as ``action`` allows."""
    if action is RbacAction.SHARED:
        users = set(session.scalars(select(Port.project_id).where(
            Port.network_id == net.id).distinct()))
        users |= set(session.scalars(select(Subnet.project_id).where(
            Subnet.network_id == net.id).distinct()))
    else:
        users = set(session.scalars(select(Router.project_id).join(
            Port, Port.id == Router.gw_port_id).where(Port.network_id == net.id).distinct()))
        users |= set(session.scalars(select(FloatingIP.project_id).where(
            FloatingIP.floating_network_id == net.id).distinct()))
    return users - {net.project_id, ""}


def removal_blocker(session: Session, net: Network, removing: Iterable[NetworkRBAC]
                    ) -> str | None:
    """Why ``removing`` these policies would take a network away from whoever uses it
    through them, or None when nothing depends on them."""
    gone = {p.id for p in removing}
    for action in ALL_ACTIONS:
        before = policies_of(session, net.id, action)
        if not any(p.id in gone for p in before):
            continue
        remaining = {p.target_project for p in before if p.id not in gone}
        stranded = sorted(p for p in _users(session, net, action)
                          if WILDCARD not in remaining and p not in remaining)
        if stranded:
            return f"project(s) {', '.join(stranded)} use the network ({action})"
        if action is RbacAction.EXTERNAL and not remaining:
            in_use = session.scalar(select(Port.id).where(
                Port.network_id == net.id,
                Port.device_owner.in_((DeviceOwner.ROUTER_GATEWAY, DeviceOwner.FLOATINGIP)))
                .limit(1))
            if in_use is not None:
                return "router gateways or floating IPs are on the network"
    return None
