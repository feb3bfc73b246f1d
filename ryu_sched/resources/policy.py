"""Neutron's default policy for what ryu-sched serves, beyond "own project or admin".

Ownership (a project sees and changes its own resources, sees shared and ``router:external``
networks and their subnets, admin sees all) is checked where each resource is loaded
(``resources/<resource>.py``). This module holds the rest, as Neutron's defaults decide it
(its ``neutron/conf/policies``, the "new defaults" with project-scoped roles):

- **Writes need a member.** A reader's create is 403; its update or delete of something it
  can see is 403 and of something it cannot see 404 (Neutron checks visibility first so as
  not to tell what exists). The API's dispatcher applies this to every non-GET route.
- **Admin-only attributes are hidden from the others** in every answer (GET, and the
  bodies of create and update), as Neutron's ``get_<resource>:<attribute>`` rules do:
  :data:`ADMIN_ONLY_READ`. Setting admin-only attributes is refused where the bodies are
  checked (``validation.Attr(admin=True)``).
- **Agents and the agent-scheduler API are admin-only.** ``get_agent`` is admin-only and
  Neutron filters lists item by item with the show rule, so a non-admin lists no agents
  (200, empty) and showing, updating or deleting one is 404; the scheduler extension's
  calls check their own rule up front: 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ryu_sched import errors
from ryu_sched.resources.context import Context

# resource (singular) -> attributes only an admin sees (get_<resource>:<attr> = admin)
ADMIN_ONLY_READ: Mapping[str, frozenset[str]] = {
    "network": frozenset({"provider:network_type", "provider:physical_network",
                          "provider:segmentation_id", "segments"}),
    "port": frozenset({"binding:host_id", "binding:vif_type", "binding:vif_details",
                       "binding:profile"}),
    "router": frozenset({"ha", "distributed"}),
    "subnet": frozenset({"segment_id"}),
}


def shown(resource: str, item: dict[str, Any], context: Context) -> dict[str, Any]:
    """``item`` without the attributes ``context`` may not see."""
    hidden = ADMIN_ONLY_READ.get(resource)
    if context.is_admin or not hidden or hidden.isdisjoint(item):
        return item
    return {key: value for key, value in item.items() if key not in hidden}


def require_write(context: Context, action: str) -> None:
    """403 unless ``context`` may create, change or delete (a member or admin)."""
    if not context.may_write:
        raise errors.PolicyNotAuthorized(action=action)


def require_admin(context: Context, action: str) -> None:
    if not context.is_admin:
        raise errors.PolicyNotAuthorized(action=action)
