"""A switch's desired flow table kept by partition (flows/partitions.py), recomputed piece by
piece, and the keys that changed since the switch was last diffed.

:meth:`SwitchTable.refresh` takes the switch's view and what changed (:class:`Change`, or
None: everything) and recomputes only the partitions that change can concern:

* a port whose model row, location or tap changed: its PORT partition, and the NETWORK
  partition of its network (unicast entries, flooding);
* a network: its NETWORK partition, the PORT partitions of its local ports, and the ROUTER
  partitions of the routers hosted here with an interface or gateway on it (host routes);
* a router: its ROUTER partition (here or where it was) and the NETWORK partitions of its
  networks (its MACs' entries, hairpins);
* a security group member: the FIREWALL partition when that group is a remote group of a
  local port's rules;
* whatever changes the switch's firewall zones, its set of local group memberships or its
  conjunctive matches: the partitions that use them;
* partitions that appear (a first port of a network here, a router moving in) are computed,
  those that disappear are dropped.

``tests/unit/programmer/test_engine_property.py`` checks the result against a full
recompute after random sequences of model changes.
"""

from __future__ import annotations

import dataclasses

from ryu_sched.flows.context import SwitchView
from ryu_sched.flows.partitions import (
    FIREWALL,
    FirewallState,
    Part,
    PartitionId,
    firewall_state,
    partition_flows,
    partitions,
)
from ryu_sched.flows.spec import FlowSpec
from ryu_sched.programmer.canonical import FlowKey
from ryu_sched.programmer.diff import Wanted, wanted_of


@dataclasses.dataclass
class Change:
    """What changed, as far as one switch's flows are concerned."""

    #: ports whose row, location or tap changed
    ports: set[str] = dataclasses.field(default_factory=set)
    #: networks whose row, subnets or ports changed
    networks: set[str] = dataclasses.field(default_factory=set)
    routers: set[str] = dataclasses.field(default_factory=set)
    #: security groups that touched ports are (or were) members of
    groups: set[str] = dataclasses.field(default_factory=set)


class SwitchTable:
    """Desired flows by partition, their union by canonical key, and the keys changed since
    :meth:`take_changed`."""

    def __init__(self) -> None:
        self.parts: dict[PartitionId, dict[FlowKey, Wanted]] = {}
        self.wanted: dict[FlowKey, Wanted] = {}
        #: key -> the partitions that want it (more than one only for conflicting input)
        self._owners: dict[FlowKey, list[PartitionId]] = {}
        self._changed: set[FlowKey] = set()
        self._firewall: FirewallState | None = None
        self._zones: dict[str, int] = {}
        self._memberships: frozenset[tuple[str, ...]] = frozenset()
        self.computed = 0  # partitions computed, for stats
        self.version = 0

    def __len__(self) -> int:
        return len(self.wanted)

    @property
    def specs(self) -> list[FlowSpec]:
        return [w.spec for w in self.wanted.values()]

    def take_changed(self) -> set[FlowKey]:
        changed, self._changed = self._changed, set()
        return changed

    # --- recomputing ------------------------------------------------------------------

    def refresh(self, view: SwitchView, change: Change | None) -> int:
        """Bring the table to ``view``; ``change`` None: recompute every partition. Returns
        the number of partitions recomputed."""
        listed = partitions(view)
        now = set(listed)
        zones = dict(view.firewall_zones)
        memberships = frozenset(view.ports[p].security_group_ids or () for p in zones)
        if change is None:
            redo = now
            firewall = firewall_state(view) if FIREWALL in now else None
        else:
            redo = self._concerned(view, change, now, zones)
            firewall = self._firewall
            if FIREWALL in now and (
                    FIREWALL not in self.parts or firewall is None
                    or memberships != self._memberships
                    or change.groups & firewall.remote_groups):
                firewall = firewall_state(view)
                redo.add(FIREWALL)
            if firewall is not None and firewall is not self._firewall:
                redo |= self._firewall_users(firewall, zones)
        for part in [p for p in self.parts if p not in now]:
            self._put(part, None)
        for part in listed:
            if part in redo or part not in self.parts:
                self._put(part, wanted_of(partition_flows(view, part, firewall)))
                self.computed += 1
        self._firewall = firewall if FIREWALL in now else None
        self._zones = zones
        self._memberships = memberships
        self.version += 1
        return len(redo)

    def _concerned(self, view: SwitchView, change: Change, now: set[PartitionId],
                   zones: dict[str, int]) -> set[PartitionId]:
        redo: set[PartitionId] = set()
        ports = set(change.ports)
        ports.update(p for p in zones.keys() | self._zones.keys()
                     if zones.get(p) != self._zones.get(p))
        networks = set(change.networks)
        for port_id in ports:
            redo.add((Part.PORT, port_id))
            port = view.ports.get(port_id)
            if port is not None:
                networks.add(port.network_id)
        local = view.local_ports
        for network_id in change.networks:
            redo.update((Part.PORT, p.id) for p in view.ports_of(network_id) if p.id in local)
        for network_id in networks:
            redo.add((Part.NETWORK, network_id))
        routers = set(change.routers)
        for router in view.hosted_routers:
            joined = {i.network_id for i in router.interfaces}
            if router.gateway is not None:
                joined.add(router.gateway.network_id)
            if joined & change.networks:
                routers.add(router.id)
        redo.update((Part.ROUTER, r) for r in routers)
        return redo & now

    def _firewall_users(self, firewall: FirewallState, zones: dict[str, int]) -> set[PartitionId]:
        """The PORT partitions that a new firewall state changes."""
        old = self._firewall
        if old is None or old.signature() != firewall.signature():
            return {(Part.PORT, p) for p in zones}
        return set()

    def _put(self, part: PartitionId, wanted: dict[FlowKey, Wanted] | None) -> None:
        """Replace partition ``part``'s flows by ``wanted`` (None: drop the partition)."""
        old = self.parts.pop(part, {})
        if wanted is None:
            wanted = {}
        else:
            self.parts[part] = wanted
        for key in old.keys() - wanted.keys():
            self._disown(key, part)
        for key, want in wanted.items():
            have = old.get(key)
            if have is None:
                self._own(key, part, want)
            elif have != want:
                self._settle(key)
                self._changed.add(key)

    def _own(self, key: FlowKey, part: PartitionId, want: Wanted) -> None:
        owners = self._owners.setdefault(key, [])
        owners.append(part)
        if len(owners) == 1:
            self.wanted[key] = want
        else:
            self._settle(key)
        self._changed.add(key)

    def _disown(self, key: FlowKey, part: PartitionId) -> None:
        owners = self._owners[key]
        owners.remove(part)
        if owners:
            self._settle(key)
        else:
            del self._owners[key]
            del self.wanted[key]
        self._changed.add(key)

    def _settle(self, key: FlowKey) -> None:
        """The flow of ``key`` among its owners' (conflicting input): the one
        ``pipeline.unique_flows`` keeps."""
        candidates = [self.parts[p][key] for p in self._owners[key]]
        self.wanted[key] = min(candidates, key=lambda w: w.spec.sort_key())

