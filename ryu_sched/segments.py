"""Network segments: choosing and checking ``provider:*`` values, pure.

VLAN ids come from ``network_vlan_ranges`` (``{physnet: [(min, max), ...]}``); the service
layer passes the ids already used on a physnet and the database's unique constraint on
``(physical_network, segmentation_id)`` backs this up against racing controllers.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from ryu_sched import errors

VLAN = "vlan"
FLAT = "flat"
NETWORK_TYPES = (VLAN, FLAT)


@dataclasses.dataclass(frozen=True)
class Segment:
    network_type: str
    physical_network: str | None
    segmentation_id: int | None


def first_free_vlan(ranges: Iterable[tuple[int, int]], used: set[int]) -> int | None:
    for low, high in sorted(ranges):
        for vlan in range(low, high + 1):
            if vlan not in used:
                return vlan
    return None


def tenant_physnets(vlan_ranges: dict[str, list[tuple[int, int]]]) -> list[str]:
    """Physnets with ranges, in configuration order: where tenant networks go."""
    return [name for name, ranges in vlan_ranges.items() if ranges]


def resolve_request(network_type: str | None, physical_network: str | None,
                    segmentation_id: int | None,
                    vlan_ranges: dict[str, list[tuple[int, int]]]) -> Segment:
    """Validate what was asked for; ``segmentation_id`` None on a VLAN means "allocate"."""
    network_type = network_type or VLAN
    if network_type not in NETWORK_TYPES:
        raise errors.InvalidInput(
            error_message=f"provider:network_type {network_type} is not supported "
                          f"(supported: {', '.join(NETWORK_TYPES)})")
    if network_type == FLAT:
        if not physical_network:
            raise errors.InvalidInput(
                error_message="provider:physical_network required for flat provider network")
        if segmentation_id is not None:
            raise errors.InvalidInput(
                error_message="provider:segmentation_id specified for flat network")
        return Segment(FLAT, physical_network, None)
    if physical_network is None:
        physnets = tenant_physnets(vlan_ranges) or list(vlan_ranges)
        if not physnets:
            raise errors.NoNetworkAvailable()
        physical_network = physnets[0]
    elif physical_network not in vlan_ranges:
        raise errors.InvalidInput(
            error_message=f"physical_network '{physical_network}' unknown for VLAN provider "
                          "network")
    if segmentation_id is not None and not 1 <= segmentation_id <= 4094:
        raise errors.InvalidInput(
            error_message=f"provider:segmentation_id out of range ({segmentation_id} is not "
                          "in the range 1 through 4094)")
    return Segment(VLAN, physical_network, segmentation_id)


def allocate_vlan(segment: Segment, vlan_ranges: dict[str, list[tuple[int, int]]],
                  used: set[int]) -> Segment:
    """Fill in the VLAN id of a VLAN segment, or check the requested one is free."""
    if segment.network_type != VLAN:
        return segment
    assert segment.physical_network is not None
    if segment.segmentation_id is not None:
        if segment.segmentation_id in used:
            raise errors.VlanIdInUse(vlan_id=segment.segmentation_id,
                                     physical_network=segment.physical_network)
        return segment
    vlan = first_free_vlan(vlan_ranges.get(segment.physical_network, []), used)
    if vlan is None:
        raise errors.NoNetworkAvailable()
    return dataclasses.replace(segment, segmentation_id=vlan)
