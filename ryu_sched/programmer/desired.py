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
* a security group member (a port created, deleted, its addresses changed): when that group
  is a remote group of a local port's rules, the REMOTE partitions of the addresses whose
  conjunctions changed (the FIREWALL partition and every local firewalled port's only when
  the conjunctive matches themselves changed);
* whatever changes the switch's firewall zones, its set of local group memberships or its
  conjunctive matches: the partitions that use them;
* partitions that appear (a first port of a network here, a router moving in) are computed,
  those that disappear are dropped.

``tests/unit/programmer/test_engine_property.py`` checks the result against a full
recompute after random sequences of model changes.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from ryu_sched.flows.context import SwitchView
from ryu_sched.flows.model import Router
from ryu_sched.flows.partitions import (
    FIREWALL,
    FirewallState,
    Part,
    PartitionId,
    firewall_state,
    partition_flows,
    partitions,
    remote_partitions,
)
from ryu_sched.flows.spec import FlowSpec
from ryu_sched.flows.zones import FIREWALL_ZONE_BASE, FIREWALL_ZONE_COUNT, firewall_zones
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
        #: what the switch's view derives from all its ports, kept up to date per change
        self._layout: Layout | None = None
        self.computed = 0  # partitions computed, for stats

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
        if change is None or self._layout is None:
            return self._refresh_all(view)
        layout = self._layout
        delta = layout.update(view, change)
        view.__dict__.update(local_ports=layout.local, firewall_zones=layout.zones)
        now_firewall = bool(layout.zones)
        redo = self._concerned(view, change, delta)
        old = self._firewall
        firewall = old if now_firewall else None
        gone: list[PartitionId] = []
        if now_firewall and (old is None or delta.memberships
                             or change.groups & old.remote_groups):
            firewall = firewall_state(view)
            if old is None or old.signature() != firewall.signature():
                redo.add(FIREWALL)
                redo |= {(Part.PORT, p) for p in layout.zones}
            # only the addresses whose conjunctions changed (a member came or went)
            before = old.remotes if old is not None else {}
            for key in before.keys() | firewall.remotes.keys():
                if before.get(key) == firewall.remotes.get(key):
                    continue
                if key in firewall.remotes:
                    redo.add((Part.REMOTE, key))
                else:
                    gone.append((Part.REMOTE, key))
        elif not now_firewall and old is not None:
            gone.extend((Part.REMOTE, key) for key in old.remotes)
        gone += [(Part.PORT, p) for p in delta.ports if p not in layout.local]
        gone += [(Part.NETWORK, n) for n in delta.networks if n not in layout.present]
        gone += [(Part.ROUTER, r) for r in delta.routers if r not in layout.hosted]
        if not now_firewall:
            gone.append(FIREWALL)
        for part in gone:
            if part in self.parts:
                self._put(part, None)
            redo.discard(part)
        redo |= {(Part.PORT, p) for p in delta.ports if p in layout.local}
        redo |= {(Part.NETWORK, n) for n in delta.networks if n in layout.present}
        redo |= {(Part.ROUTER, r) for r in delta.routers if r in layout.hosted}
        if now_firewall and FIREWALL not in self.parts:
            redo.add(FIREWALL)
        for part in redo:
            self._put(part, wanted_of(partition_flows(view, part, firewall)))
        self.computed += len(redo)
        self._firewall = firewall
        return len(redo)

    def _refresh_all(self, view: SwitchView) -> int:
        listed = partitions(view)
        firewall = firewall_state(view) if FIREWALL in listed else None
        if firewall is not None:
            listed.extend(remote_partitions(firewall))
        now = set(listed)
        for part in [p for p in self.parts if p not in now]:
            self._put(part, None)
        for part in listed:
            self._put(part, wanted_of(partition_flows(view, part, firewall)))
        self.computed += len(listed)
        self._firewall = firewall
        self._layout = Layout.of(view)
        return len(listed)

    def _concerned(self, view: SwitchView, change: Change, delta: Delta) -> set[PartitionId]:
        """The existing partitions ``change`` may concern."""
        redo: set[PartitionId] = set()
        networks = set(change.networks)
        for port_id in change.ports | delta.zones:
            redo.add((Part.PORT, port_id))
            port = view.ports.get(port_id)
            if port is not None:
                networks.add(port.network_id)
        local = view.local_ports
        for network_id in change.networks:
            redo.update((Part.PORT, p.id) for p in view.ports_of(network_id) if p.id in local)
        redo.update((Part.NETWORK, n) for n in networks)
        routers = set(change.routers)
        for router in view.placed_routers:
            if _networks_of(router) & change.networks:
                routers.add(router.id)
        redo.update((Part.ROUTER, r) for r in routers)
        return {p for p in redo if p in self.parts}

    def _put(self, part: PartitionId, wanted: dict[FlowKey, Wanted] | None) -> None:
        """Replace partition ``part``'s flows by ``wanted`` (None: drop the partition)."""
        old = self.parts.pop(part, {})
        if wanted is None:
            wanted = {}
        else:
            self.parts[part] = wanted
        if not old:      # a new partition (all of them, for a switch just connected)
            owners_of, table = self._owners, self.wanted
            for key, want in wanted.items():
                owners = owners_of.get(key)
                if owners is None:
                    owners_of[key] = [part]
                    table[key] = want
                else:
                    owners.append(part)
                    self._settle(key)
            self._changed.update(wanted)
            return
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



def _networks_of(router: Router) -> set[str]:
    joined = {i.network_id for i in router.interfaces}
    if router.gateway is not None:
        joined.add(router.gateway.network_id)
    return joined


@dataclasses.dataclass
class Delta:
    """What one change did to a :class:`Layout`."""

    #: ports whose locality or ofport may have changed (their PORT partition appears,
    #: changes or goes)
    ports: set[str] = dataclasses.field(default_factory=set)
    #: networks whose presence may have changed
    networks: set[str] = dataclasses.field(default_factory=set)
    #: routers hosted here before or after
    routers: set[str] = dataclasses.field(default_factory=set)
    #: ports whose firewall zone changed
    zones: set[str] = dataclasses.field(default_factory=set)
    #: the set of group memberships of firewalled local ports changed
    memberships: bool = False


@dataclasses.dataclass
class Layout:
    """What a :class:`SwitchView` derives from every port of its switch (local ports,
    firewall zones, present networks), updated from the ports a change names instead of
    from all of them; the view is given these instead of computing them."""

    local: dict[str, int]
    #: port id -> its network, for the local ports
    network_of: dict[str, str]
    #: network id -> local ports on it
    per_network: Counter[str]
    zones: dict[str, int]
    #: the zones in ``zones``
    taken: set[int]
    #: every zone equals its port's first choice (no probing happened)
    natural: bool
    #: port id -> its groups, for the firewalled local ports
    groups: dict[str, tuple[str, ...]]
    #: group memberships of the firewalled local ports, counted
    memberships: Counter[tuple[str, ...]]
    hosted: set[str]
    router_keys: frozenset[int]
    #: networks of the hosted routers (gateways when active)
    routed: set[str]
    present: set[str]

    @classmethod
    def of(cls, view: SwitchView) -> Layout:
        local = dict(view.local_ports)
        zones = dict(view.firewall_zones)
        network_of = {p: view.ports[p].network_id for p in local}
        hosted = view.placed_routers
        groups = {p: view.ports[p].security_group_ids or () for p in zones}
        return cls(local=local, network_of=network_of, per_network=Counter(network_of.values()),
                   zones=zones, taken=set(zones.values()),
                   natural=all(z == _first_zone(local[p]) for p, z in zones.items()),
                   groups=groups, memberships=Counter(groups.values()),
                   hosted={r.id for r in hosted}, router_keys=frozenset(r.key for r in hosted),
                   routed=_routed(view), present={n.id for n in view.present_networks})

    def update(self, view: SwitchView, change: Change) -> Delta:
        delta = Delta()
        candidates = set(change.ports)
        for network_id in change.networks:
            candidates.update(p.id for p in view.ports_of(network_id))
        # local ports (what SwitchView.local_ports says, for the candidates only)
        for port_id in candidates:
            port = view.ports.get(port_id)
            ofport = None
            if port is not None and port.network_id in view.networks:
                ofport = view.local_ofport(port)
            before = self.local.get(port_id)
            firewalled = ofport is not None and port is not None and port.firewalled
            if ofport == before and firewalled == (port_id in self.zones) and (
                    not firewalled or port is None
                    or self.groups.get(port_id) == (port.security_group_ids or ())):
                continue
            delta.ports.add(port_id)
            if before is not None:
                old_network = self.network_of.pop(port_id)
                self.per_network[old_network] -= 1
                delta.networks.add(old_network)
                del self.local[port_id]
                self._unzone(port_id, delta)
            if ofport is not None and port is not None:
                self.local[port_id] = ofport
                self.network_of[port_id] = port.network_id
                self.per_network[port.network_id] += 1
                delta.networks.add(port.network_id)
                if firewalled:
                    self._zone(port_id, ofport, port.security_group_ids or (), delta)
        # routers hosted here
        hosted = view.placed_routers
        ids = {r.id for r in hosted}
        keys = frozenset(r.key for r in hosted)
        routed = _routed(view)
        delta.routers = (ids ^ self.hosted) | (ids & set(change.routers))
        delta.networks |= routed ^ self.routed
        delta.networks |= change.networks
        self.hosted, self.routed = ids, routed
        if keys != self.router_keys or not self.natural:
            self.router_keys = keys
            self._rezone(view, delta)
        # presence of the networks the change may concern
        for network_id in delta.networks:
            if network_id in view.networks and (self.per_network[network_id] > 0
                                                or network_id in routed):
                self.present.add(network_id)
            else:
                self.present.discard(network_id)
        return delta

    def _zone(self, port_id: str, ofport: int, groups: tuple[str, ...], delta: Delta) -> None:
        zone = _first_zone(ofport)
        if not self.natural or zone in self.router_keys or zone in self.taken:
            self.natural = False    # probing: the next _rezone computes them all
        self.zones[port_id] = zone
        self.taken.add(zone)
        self.groups[port_id] = groups
        delta.zones.add(port_id)
        self.memberships[groups] += 1
        if self.memberships[groups] == 1:
            delta.memberships = True

    def _unzone(self, port_id: str, delta: Delta) -> None:
        zone = self.zones.pop(port_id, None)
        if zone is None:
            return
        self.taken.discard(zone)
        delta.zones.add(port_id)
        groups = self.groups.pop(port_id, ())
        self.memberships[groups] -= 1
        if self.memberships[groups] <= 0:
            del self.memberships[groups]
            delta.memberships = True

    def _rezone(self, view: SwitchView, delta: Delta) -> None:
        """Every zone again (as flows/zones.py allocates them); the ports firewalled stay
        the same, only their numbers may change."""
        firewalled = {p: o for p, o in self.local.items() if view.ports[p].firewalled}
        zones = firewall_zones(firewalled, self.router_keys)
        delta.zones.update(p for p in zones.keys() | self.zones.keys()
                           if zones.get(p) != self.zones.get(p))
        self.zones = zones
        self.taken = set(zones.values())
        self.natural = all(z == _first_zone(self.local[p]) for p, z in zones.items())


def _first_zone(ofport: int) -> int:
    """The zone flows/zones.py gives a port when no other port or router has it."""
    return FIREWALL_ZONE_BASE + (ofport - 1) % FIREWALL_ZONE_COUNT


def _routed(view: SwitchView) -> set[str]:
    """The networks present on the switch through the routers it hosts."""
    result: set[str] = set()
    for router in view.placed_routers:
        result.update(i.network_id for i in router.interfaces)
        if view.gateway_active(router):
            assert router.gateway is not None
            result.add(router.gateway.network_id)
    return result
