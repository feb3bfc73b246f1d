"""Quotas (Neutron's ``quotas``, ``quota_details``): how many of each resource a project may own.

Every counted resource has a default limit in the configuration (``[quotas]
quota_<resource>``, -1 unlimited); ``quotas`` rows hold a project's own limits. Creating a
resource through the API checks, inside the creating transaction, that its project stays
within its limit: 409 ``OverQuota`` otherwise. Resources the system makes for itself (DHCP
ports, router interface and gateway ports, floating IP ports) are not checked, as in
Neutron, but they count towards ``used`` when they belong to the project.

A project may read its own quotas; an admin reads and changes any project's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ryu_sched import errors
from ryu_sched.db.models import FloatingIP, Network, NetworkRBAC, Port, Quota, Router, Subnet
from ryu_sched.resources import common
from ryu_sched.resources.common import Tx
from ryu_sched.resources.context import Context
from ryu_sched.resources.validation import to_bool, to_int
from ryu_sched.services import Services

#: Resource name (the quota API's key) -> the model whose rows of a project count.
COUNTED: dict[str, Any] = {"network": Network, "subnet": Subnet, "port": Port,
                           "router": Router, "floatingip": FloatingIP,
                           "rbac_policy": NetworkRBAC}
MAX_LIMIT = 2**31 - 1


def register(name: str, model: Any) -> None:
    """Count ``model`` rows (they have a ``project_id``) as resource ``name``."""
    COUNTED[name] = model


def resource_names(services: Services) -> list[str]:
    return sorted(set(services.settings.quotas) | set(COUNTED))


def defaults(services: Services) -> dict[str, int]:
    settings = services.settings
    return {name: settings.quotas.get(name, settings.default_quota)
            for name in resource_names(services)}


def _own_limits(session: Session, project_id: str) -> dict[str, int]:
    return dict(session.execute(select(Quota.resource, Quota.hard_limit).where(
        Quota.project_id == project_id)).tuples().all())


def limits(services: Services, session: Session, project_id: str) -> dict[str, int]:
    return {**defaults(services), **_own_limits(session, project_id)}


def used(session: Session, project_id: str, name: str) -> int:
    model = COUNTED.get(name)
    if model is None:
        return 0
    return int(session.scalar(select(func.count()).select_from(model).where(
        model.project_id == project_id)) or 0)


def enforce(services: Services, session: Session, project_id: str, name: str,
            count: int = 1) -> None:
    """409 ``OverQuota`` if ``count`` more ``name`` resources would exceed the project's
    limit (call inside the transaction that creates them)."""
    limit = _own_limits(session, project_id).get(name, defaults(services).get(name, -1))
    if limit >= 0 and used(session, project_id, name) + count > limit:
        raise errors.OverQuota(overs=[name])


# --- the quota API ------------------------------------------------------------------------

def _may_read(context: Context, project_id: str) -> None:
    if not context.can_see(project_id):
        raise errors.PolicyNotAuthorized(action="get_quota")


def _admin(context: Context, action: str) -> None:
    if not context.is_admin:
        raise errors.PolicyNotAuthorized(action=action)


def get_quota(services: Services, context: Context, project_id: str) -> dict[str, int]:
    _may_read(context, project_id)
    return common.read(services, lambda s: limits(services, s, project_id))


def get_default_quota(services: Services, context: Context, project_id: str
                      ) -> dict[str, int]:
    _may_read(context, project_id)
    return defaults(services)


def get_quota_details(services: Services, context: Context, project_id: str
                      ) -> dict[str, dict[str, int]]:
    _may_read(context, project_id)

    def work(session: Session) -> dict[str, dict[str, int]]:
        return {name: {"limit": limit, "used": used(session, project_id, name),
                       "reserved": 0}
                for name, limit in limits(services, session, project_id).items()}

    return common.read(services, work)


def list_quotas(services: Services, context: Context) -> list[dict[str, Any]]:
    """The projects with limits of their own, each with all its limits."""
    _admin(context, "get_quota")

    def work(session: Session) -> list[dict[str, Any]]:
        projects = session.scalars(select(Quota.project_id).distinct()
                                   .order_by(Quota.project_id)).all()
        return [{"project_id": p, "tenant_id": p, **limits(services, session, p)}
                for p in projects]

    return common.read(services, work)


def _check_body(services: Services, project_id: str, body: Mapping[str, Any]
                ) -> tuple[dict[str, int], bool]:
    """The limits asked for, and whether to check them against the usage (Neutron's
    ``quota-check-limit``). ``project_id``/``tenant_id`` may repeat the path's project."""
    known = set(resource_names(services))
    given = dict(body)
    for key in ("project_id", "tenant_id"):
        if key in given and given.pop(key) != project_id:
            raise errors.HTTPBadRequest(msg=f"{key} does not match the project of the path")
    check = to_bool(given.pop("check_limit", False), "check_limit")
    unknown = sorted(str(key) for key in given if key not in known)
    if unknown:
        raise errors.HTTPBadRequest(
            msg="Unrecognized attribute(s) '{}'".format(", ".join(unknown)))
    convert = to_int(-1, MAX_LIMIT)
    return {name: int(convert(value, name)) for name, value in given.items()}, check


def update_quota(services: Services, context: Context, project_id: str,
                 body: Mapping[str, Any]) -> dict[str, int]:
    """Set the project's own limits; with ``check_limit``, 409 ``InvalidQuotaValue`` for a
    limit below what the project already uses."""
    _admin(context, "update_quota")
    wanted, check = _check_body(services, project_id, body)

    def work(tx: Tx) -> dict[str, int]:
        session = tx.session
        if check:
            unders = sorted(name for name, limit in wanted.items()
                            if 0 <= limit < used(session, project_id, name))
            if unders:
                raise errors.InvalidQuotaValue(unders=", ".join(unders))
        rows = {q.resource: q for q in session.scalars(select(Quota).where(
            Quota.project_id == project_id))}
        for name, limit in wanted.items():
            if name in rows:
                rows[name].hard_limit = limit
            else:
                session.add(Quota(project_id=project_id, resource=name, hard_limit=limit))
        session.flush()
        return limits(services, session, project_id)

    return common.run(services, work)


def delete_quota(services: Services, context: Context, project_id: str) -> None:
    """Back to the defaults."""
    _admin(context, "delete_quota")

    def work(tx: Tx) -> None:
        tx.session.execute(delete(Quota).where(Quota.project_id == project_id))

    common.run(services, work)
