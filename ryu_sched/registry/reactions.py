"""What the registry does about a committed change of the model (a bus event): schedule the
object if it needs agents, forget it once deleted, and tell the agents hosting it.

Run by the registry component's worker (bus subscribers only enqueue), for the changes this
controller made and for those relayed from the others alike: every controller forgets
deleted objects and tells the agents connected to it; only the leader schedules.
"""

from __future__ import annotations

from typing import Any

from ryu_sched.events import (
    Action,
    Event,
    FloatingIpChanged,
    NetworkChanged,
    PortChanged,
    RouterChanged,
    RouterGatewayChanged,
    RouterInterfaceChanged,
    SubnetChanged,
)
from ryu_sched.registry.kinds import SPECS
from ryu_sched.registry.registry import Registry
from ryu_sched.shared.vocabulary import HostedKind

NETWORK, ROUTER = HostedKind.NETWORK, HostedKind.ROUTER


class Reactions:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def handle(self, event: Event) -> None:
        match event:
            case NetworkChanged(action=Action.DELETE, network_id=net_id):
                self._deleted(NETWORK, net_id)
            case NetworkChanged(action=Action.UPDATE, network_id=net_id):
                self._updated(NETWORK, net_id)
            case NetworkChanged(action=Action.CREATE, network_id=net_id):
                self._schedule(NETWORK, net_id, always=True)
            case SubnetChanged():
                if event.action != Action.DELETE:
                    self._schedule(NETWORK, event.network_id, always=True)
                self.registry.notify_hosts(NETWORK, event.network_id, "subnet_changed", {
                    "network_id": event.network_id, "subnet_id": event.subnet_id,
                    "action": event.action.value})
            case PortChanged():
                self.registry.notify_hosts(NETWORK, event.network_id, "port_changed", {
                    "network_id": event.network_id, "port_id": event.port_id,
                    "action": event.action.value})
                if self.registry.bindings.is_hosted(ROUTER, event.device_id):
                    self._updated(ROUTER, event.device_id, reason="port")
            case RouterChanged(action=Action.DELETE, router_id=router_id):
                self._deleted(ROUTER, router_id)
            case RouterChanged(action=action, router_id=router_id):
                # A router that became HA needs standbys; one that stopped, only one agent.
                self._schedule(ROUTER, router_id,
                               always=action == Action.CREATE or "ha" in event.changed)
                if action == Action.UPDATE:
                    self._updated(ROUTER, router_id, reason="update")
            case RouterGatewayChanged(router_id=router_id):
                self._schedule(ROUTER, router_id, always=event.is_set)
                self._updated(ROUTER, router_id,
                              reason="gateway_set" if event.is_set else "gateway_cleared")
            case RouterInterfaceChanged(router_id=router_id):
                self._schedule(ROUTER, router_id, always=False)
                self._updated(ROUTER, router_id,
                              reason="interface_add" if event.added else "interface_remove")
            case FloatingIpChanged():
                for router_id in event.routers:
                    self._updated(ROUTER, router_id, reason="floatingip")
            case _:
                pass

    def _schedule(self, kind: HostedKind, obj_id: str, always: bool) -> None:
        """Schedule the object if auto-scheduling is on, and if ``always`` or it is unhosted
        (a hosted one is re-checked: a gateway may need another agent)."""
        if not self.registry.leading or not SPECS[kind].auto_schedule(self.registry.settings):
            return
        if always or not self.registry.bindings.is_hosted(kind, obj_id):
            self.registry.schedule(kind, [obj_id])

    def _updated(self, kind: HostedKind, obj_id: str, **extra: Any) -> None:
        spec = SPECS[kind]
        self.registry.notify_hosts(kind, obj_id, spec.updated_method,
                                   spec.payload(obj_id, **extra))

    def _deleted(self, kind: HostedKind, obj_id: str) -> None:
        spec = SPECS[kind]
        for rec in self.registry.forget_object(kind, obj_id):
            self.registry.notify(rec, spec.deleted_method, spec.payload(obj_id))
