"""A switch's desired flows cut into partitions that can be computed one at a time.

The union of the partitions of a switch, made unique as :func:`pipeline.unique_flows` does, is
exactly ``desired_flows(snapshot, dpid)`` (tests/unit/flows/test_partitions.py checks it). The
controller keeps each partition's flows and recomputes only the partitions a change concerns:

* ``(BASE, "")``: the table-miss and pass-through flows, the same everywhere;
* ``(FIREWALL, "")``, on a switch with a firewalled port: the STATE and RULES flows no single
  port owns (conjunction ids, the *what* dimensions);
* ``(REMOTE, address)`` for each address in the *remote* dimension of a conjunctive match
  there (a prefix, or a member of a remote group): its flow in each direction;
* ``(PORT, port id)`` for each port up on this switch: its classification, port security,
  firewall zone flows and its *who* dimension of the security-group rules;
* ``(NETWORK, network id)`` for each network present here: the classification of its uplink
  traffic and its L2 forwarding (unicast entries of all its ports, flooding);
* ``(ROUTER, router id)`` for each router placed here (active or on standby): ARP answers
  and echo replies (where it is active), guards, routing, NAT and floating IPs.

The firewall's conjunctive matches (:class:`FirewallState`) are computed once per switch
state and shared by the FIREWALL partition and every PORT partition.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from . import security_groups as sg
from .arp import arp_flows
from .base import base_flows
from .classify import network_classify_flows, port_classify_flows
from .context import SwitchView
from .guards import guard_flows
from .icmp import icmp_flows
from .l2 import _network_flows
from .model import Router
from .nat import nat_flows
from .port_security import port_flows as port_security_flows
from .routing import routing_flows
from .spec import Conjunction, FlowSpec, MatchValue


class Part(StrEnum):
    BASE = "base"
    FIREWALL = "firewall"
    PORT = "port"
    NETWORK = "network"
    ROUTER = "router"
    REMOTE = "remote"


#: (kind, owner id); the BASE and FIREWALL partitions have owner ""
PartitionId = tuple[Part, str]

BASE: PartitionId = (Part.BASE, "")
FIREWALL: PartitionId = (Part.FIREWALL, "")
STAGES = (sg.EGRESS, sg.INGRESS)


@dataclass(frozen=True)
class FirewallState:
    """The conjunctive matches of each direction (egress, ingress) on one switch, and the
    groups of local ports that allow everything in it."""

    conjs: tuple[tuple[sg.Conj, ...], ...]
    open_groups: tuple[frozenset[str], ...]
    #: the groups whose members' addresses the rules of local ports' groups refer to
    remote_groups: frozenset[str]
    #: REMOTE partition owner -> (address, its conjunctions in each direction)
    remotes: dict[str, tuple[MatchValue, tuple[tuple[Conjunction, ...], ...]]]

    def signature(self) -> tuple:
        """What the PORT and FIREWALL partitions take from it."""
        return (tuple(tuple((c.id, c.group_id, c.dimensions, c.whats) for c in conjs)
                      for conjs in self.conjs), self.open_groups)


def firewall_state(view: SwitchView) -> FirewallState:
    groups = {g for port_id in view.firewall_zones
              for g in view.ports[port_id].security_group_ids or ()}
    conjs, open_groups = [], []
    for stage in STAGES:
        found, _allow_all = sg.conjunctions(view, stage)
        conjs.append(tuple(found))
        open_groups.append(frozenset(g for g in groups if _allows_everything(view, g, stage)))
    remote_groups = frozenset(rule.remote_group_id for g in groups
                              if (group := view.security_groups.get(g)) is not None
                              for rule in group.rules if rule.remote_group_id)
    remotes = _by_address(view, conjs)
    return FirewallState(tuple(conjs), tuple(open_groups), remote_groups, remotes)


def _by_address(view: SwitchView, conjs: list[tuple[sg.Conj, ...]],
                ) -> dict[str, tuple[MatchValue, tuple[tuple[Conjunction, ...], ...]]]:
    """REMOTE partition owner -> (address, its conjunctions in each direction). The same on
    every switch whose conjunctive matches are the same: built once per index."""
    dimensions = tuple(tuple((c.id, c.dimensions, c.remotes) for c in found if c.remotes)
                       for found in conjs)
    key = ("by address", dimensions)
    known = view.index.memo.get(key)
    if known is not None:
        return known  # type: ignore[return-value]
    collected: dict[str, tuple[MatchValue, list[list[Conjunction]]]] = {}
    empty = len(STAGES)
    for index, found in enumerate(dimensions):
        for ident, n, addresses in found:
            conjunction = Conjunction(ident, n, n)
            for address in addresses or ():
                owner = repr(address)
                entry = collected.get(owner)
                if entry is None:
                    entry = collected[owner] = (address, [[] for _ in range(empty)])
                entry[1][index].append(conjunction)
    result = {owner: (address, tuple(_ordered(c) for c in per_stage))
              for owner, (address, per_stage) in collected.items()}
    view.index.memo[key] = result
    return result


def _ordered(conjunctions: list[Conjunction]) -> tuple[Conjunction, ...]:
    """As ``security_groups.remote_flow`` orders them (most addresses have one or none)."""
    if len(conjunctions) < 2:
        return tuple(conjunctions)
    return tuple(sorted(set(conjunctions), key=lambda c: (c.id, c.clause)))


def _allows_everything(view: SwitchView, group_id: str, stage: sg.Stage) -> bool:
    """A rule of the group admits any IPv4 from anywhere in ``stage``'s direction."""
    group = view.security_groups.get(group_id)
    return group is not None and any(
        rule.direction is stage.direction and sg.applies_to_ipv4(rule)
        and sg.remote_of(rule) is None and sg.what_of(rule) is None for rule in group.rules)


def partitions(view: SwitchView) -> list[PartitionId]:
    """The partitions switch ``view.dpid`` has."""
    result = [BASE]
    if view.firewall_zones:
        result.append(FIREWALL)
    result.extend((Part.PORT, port_id) for port_id in view.local_ports)
    result.extend((Part.NETWORK, network.id) for network in view.present_networks)
    result.extend((Part.ROUTER, router.id) for router in view.placed_routers)
    return result


def remote_partitions(firewall: FirewallState) -> list[PartitionId]:
    """The REMOTE partitions of a switch with this firewall state."""
    return [(Part.REMOTE, key) for key in firewall.remotes]


def partition_flows(view: SwitchView, part: PartitionId,
                    firewall: FirewallState | None) -> list[FlowSpec]:
    """The flows of one partition of ``view``'s switch (``firewall``: :func:`firewall_state`
    of the same view, needed by FIREWALL and PORT partitions when the switch has firewalled
    ports)."""
    kind, owner = part
    if kind is Part.BASE:
        return base_flows()
    if kind is Part.FIREWALL:
        assert firewall is not None
        flows = []
        for stage, conjs in zip(STAGES, firewall.conjs, strict=True):
            flows.extend(sg.common_flows(stage))
            flows.extend(sg.shared_rule_flows(stage, list(conjs), remotes=False))
        return flows
    if kind is Part.REMOTE:
        assert firewall is not None
        address, per_stage = firewall.remotes[owner]
        return [sg.remote_flow(stage, address, conjunctions)
                for stage, conjunctions in zip(STAGES, per_stage, strict=True) if conjunctions]
    if kind is Part.PORT:
        return _port_partition(view, owner, firewall)
    if kind is Part.NETWORK:
        network = view.networks[owner]
        flows = network_classify_flows(view, network)
        if not network.external:
            flows.extend(_network_flows(view, network))
        return flows
    router = next(r for r in view.placed_routers if r.id == owner)
    one = _router_view(view, router)
    return [*arp_flows(one), *icmp_flows(one), *guard_flows(one), *routing_flows(one),
            *nat_flows(one)]


def all_partition_flows(view: SwitchView) -> Iterable[FlowSpec]:
    """Every partition's flows (the reference is ``pipeline.desired_flows``)."""
    parts = partitions(view)
    firewall = firewall_state(view) if FIREWALL in parts else None
    if firewall is not None:
        parts.extend(remote_partitions(firewall))
    for part in parts:
        yield from partition_flows(view, part, firewall)


def _port_partition(view: SwitchView, port_id: str,
                    firewall: FirewallState | None) -> list[FlowSpec]:
    ofport = view.local_ports[port_id]
    flows = [*port_classify_flows(view, port_id, ofport),
             *port_security_flows(view, port_id, ofport)]
    if port_id in view.firewall_zones:
        assert firewall is not None
        groups = set(view.ports[port_id].security_group_ids or ())
        for stage, conjs, open_groups in zip(STAGES, firewall.conjs, firewall.open_groups,
                                             strict=True):
            allow_all = {port_id} if groups & open_groups else set()
            flows.extend(sg.port_flows(view, stage, port_id))
            flows.extend(sg.port_rule_flows(view, stage, port_id, list(conjs), allow_all))
    return flows


def _router_view(view: SwitchView, router: Router) -> SwitchView:
    """``view`` as if ``router`` were the only router placed on its switch (what the router
    features iterate over); everything else, computed for the whole switch, is shared."""
    _ = view.firewall_zones, view.local_ports  # computed with all routers
    one = copy.copy(view)
    one.__dict__["placed_routers"] = [router]
    one.__dict__["active_routers"] = [router] if view.is_active(router) else []
    return one
