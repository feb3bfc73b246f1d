"""RBAC policies on networks (Neutron's ``rbac-policies``): ``/v2.0/rbac-policies``.

A policy ``{object_type: network, object_id, action, target_tenant}`` lets ``target_tenant``
(a project, or ``*`` for every project) see a network and use it: ``access_as_shared`` to
put ports on it, ``access_as_external`` to put router gateways and floating IPs on it (the
network becomes external). What it means for visibility is in
:mod:`ryu_sched.resources.network_access`.

Rules:

- The network's owner (or an admin) grants; someone else's network is 404 if unseen, 403
  if seen. Only an admin may grant to ``*`` or grant ``access_as_external`` (an external
  network is part of the provider's data plane).
- The same (action, network, target) twice: 409 ``DuplicateRbacPolicy``.
- A policy belongs to its project (``project_id``): only it, or an admin, sees, changes
  (``target_tenant`` only) or deletes it. Removing or retargeting a policy that a project
  depends on (its ports or subnets on a shared network, its router gateways or floating IPs
  on an external one, with no other policy covering it) is 409 ``RbacPolicyInUse``.
- Creating one counts against the ``rbac_policy`` quota.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ryu_sched import errors
from ryu_sched.db.models import Network, NetworkRBAC
from ryu_sched.events import Action, NetworkChanged
from ryu_sched.resources import common, listing, quotas
from ryu_sched.resources import network_access as access
from ryu_sched.resources import networks as networks_mod
from ryu_sched.resources.common import Tx
from ryu_sched.resources.context import Context
from ryu_sched.resources.network_access import WILDCARD, RbacAction
from ryu_sched.resources.validation import Attr, check_body, to_str, to_uuid
from ryu_sched.services import Services

OBJECT_TYPE = "network"


def _object_type(value: Any, name: str) -> str:
    if value != OBJECT_TYPE:
        raise errors.HTTPBadRequest(
            msg=f"Invalid input for {name}. Reason: '{value}' is not in "
                f"['{OBJECT_TYPE}'] (ryu-sched has RBAC policies on networks only).")
    return OBJECT_TYPE


def _action(value: Any, name: str) -> str:
    actions = [str(a) for a in RbacAction]
    if value not in actions:
        raise errors.HTTPBadRequest(
            msg=f"Invalid input for {name}. Reason: '{value}' is not in {actions}.")
    return str(value)


def _target(value: Any, name: str) -> str:
    text = to_str(255)(value, name)
    if not text:
        raise errors.HTTPBadRequest(msg=f"Invalid input for {name}. Reason: empty.")
    return str(text)


SPEC: dict[str, Attr] = {
    "object_type": Attr(_object_type, put=False, required=True),
    "object_id": Attr(to_uuid(), put=False, required=True),
    "action": Attr(_action, put=False, required=True),
    "target_tenant": Attr(_target, required=True),
}


def to_dict(policy: NetworkRBAC) -> dict[str, Any]:
    return {"id": policy.id, "project_id": policy.project_id,
            "tenant_id": policy.project_id, "object_type": OBJECT_TYPE,
            "object_id": policy.object_id, "action": policy.action,
            "target_tenant": policy.target_project}


def load(session: Session, context: Context, policy_id: str) -> NetworkRBAC:
    policy = session.get(NetworkRBAC, policy_id)
    if policy is None or not context.can_see(policy.project_id):
        raise errors.RbacPolicyNotFound(object_type=OBJECT_TYPE, id=policy_id)
    return policy


def _check_grant(context: Context, action: str, target: str) -> None:
    if context.is_admin:
        return
    if target == WILDCARD:
        raise errors.PolicyNotAuthorized(action="create_rbac_policy:target_tenant")
    if action == RbacAction.EXTERNAL:
        raise errors.PolicyNotAuthorized(action="create_rbac_policy:action")


def _network_changed(tx: Tx, net: Network, changed: list[str]) -> None:
    if changed:
        tx.emit(NetworkChanged(Action.UPDATE, net.id, net.project_id, tuple(changed)))


def _duplicate(session: Session, action: str, network_id: str, target: str,
               other_than: str | None = None) -> bool:
    query = select(NetworkRBAC.id).where(NetworkRBAC.action == action,
                                         NetworkRBAC.object_id == network_id,
                                         NetworkRBAC.target_project == target)
    if other_than is not None:
        query = query.where(NetworkRBAC.id != other_than)
    return session.scalar(query.limit(1)) is not None


# --- public service functions -------------------------------------------------------------

LIST = listing.ListSpec(
    model=NetworkRBAC, id_column=NetworkRBAC.id, default_order=(NetworkRBAC.id,),
    columns={
        "id": listing.Column(NetworkRBAC.id),
        "project_id": listing.Column(NetworkRBAC.project_id),
        "object_id": listing.Column(NetworkRBAC.object_id),
        "action": listing.Column(NetworkRBAC.action),
        "target_tenant": listing.Column(NetworkRBAC.target_project),
    },
    sql_filters={"object_type": lambda values: (NetworkRBAC.id.is_not(None)
                                                if OBJECT_TYPE in values
                                                else NetworkRBAC.id.is_(None))},
    serialize=lambda session, rows: [to_dict(p) for p in rows],
    attributes=functools.cache(lambda: frozenset(to_dict(NetworkRBAC()))))


def page_rbac_policies(services: Services, context: Context, query: listing.ListQuery,
                       finish: listing.Finisher | None = None) -> listing.Page:
    scope = [] if context.is_admin else [NetworkRBAC.project_id == context.project_id]
    return listing.list_page(services, LIST, query, scope, finish)


def list_rbac_policies(services: Services, context: Context,
                       filters: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    return page_rbac_policies(services, context,
                              listing.ListQuery(filters=filters or {})).items


def get_rbac_policy(services: Services, context: Context, policy_id: str) -> dict[str, Any]:
    return common.read(services, lambda s: to_dict(load(s, context, policy_id)))


def create_rbac_policy(services: Services, context: Context,
                       attrs: Mapping[str, Any]) -> dict[str, Any]:
    values = check_body("rbac_policy", SPEC, attrs, context, create=True)
    _check_grant(context, values["action"], values["target_tenant"])

    def work(tx: Tx) -> dict[str, Any]:
        session = tx.session
        net = networks_mod.load(session, context, values["object_id"])
        if not context.can_see(net.project_id):
            raise errors.PolicyNotAuthorized(action="create_rbac_policy")
        if _duplicate(session, values["action"], net.id, values["target_tenant"]):
            raise errors.DuplicateRbacPolicy()
        quotas.enforce(services, session, values["project_id"], "rbac_policy")
        policy = NetworkRBAC(project_id=values["project_id"], object_id=net.id,
                             action=values["action"], target_project=values["target_tenant"])
        session.add(policy)
        session.flush()
        _network_changed(tx, net, access.refresh_flags(session, net))
        return to_dict(policy)

    return common.run(services, work)


def update_rbac_policy(services: Services, context: Context, policy_id: str,
                       attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Only ``target_tenant`` changes (to another project, or ``*``)."""
    values = check_body("rbac_policy", SPEC, attrs, context, create=False)

    def work(tx: Tx) -> dict[str, Any]:
        session = tx.session
        policy = load(session, context, policy_id)
        target = values.get("target_tenant", policy.target_project)
        if target == policy.target_project:
            return to_dict(policy)
        _check_grant(context, policy.action, target)
        net = session.scalar(select(Network).where(Network.id == policy.object_id))
        assert net is not None  # the policy goes with its network
        if _duplicate(session, policy.action, net.id, target, other_than=policy.id):
            raise errors.DuplicateRbacPolicy()
        if target != WILDCARD:
            blocker = access.removal_blocker(session, net, [policy])
            if blocker:
                raise errors.RbacPolicyInUse(object_id=net.id, details=blocker)
        policy.target_project = target
        session.flush()
        _network_changed(tx, net, access.refresh_flags(session, net))
        return to_dict(policy)

    return common.run(services, work)


def delete_rbac_policy(services: Services, context: Context, policy_id: str) -> None:
    def work(tx: Tx) -> None:
        session = tx.session
        policy = load(session, context, policy_id)
        net = session.scalar(select(Network).where(Network.id == policy.object_id))
        assert net is not None
        blocker = access.removal_blocker(session, net, [policy])
        if blocker:
            raise errors.RbacPolicyInUse(object_id=net.id, details=blocker)
        access.remove_policies(session, [policy])
        _network_changed(tx, net, access.refresh_flags(session, net))

    common.run(services, work)
