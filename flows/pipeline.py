"""Entry point: the complete desired flow table of one switch.

``desired_flows(snapshot, dpid)`` is pure and deterministic: the same snapshot gives the same
list, in the same order (table, then priority descending, then match). No two flows share a
(table, priority, match) key; should bad input produce two different flows for one key, the
first in that order is kept and the conflict is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .arp import arp_flows
from .base import base_flows
from .classify import classify_flows
from .context import SwitchView
from .guards import guard_flows
from .icmp import icmp_flows
from .l2 import l2_flows
from .model import Snapshot
from .nat import nat_flows
from .port_security import port_security_flows
from .routing import routing_flows
from .security_groups import security_group_flows
from .spec import FlowSpec

LOG = logging.getLogger(__name__)


def desired_flows(snapshot: Snapshot, dpid: int) -> list[FlowSpec]:
    """Every flow switch ``dpid`` should have, for the state in ``snapshot``."""
    view = SwitchView(snapshot, dpid)
    return unique_flows([
        *base_flows(),
        *classify_flows(view),
        *port_security_flows(view),
        *security_group_flows(view),
        *arp_flows(view),
        *icmp_flows(view),
        *guard_flows(view),
        *routing_flows(view),
        *nat_flows(view),
        *l2_flows(view),
    ])


def unique_flows(flows: Iterable[FlowSpec]) -> list[FlowSpec]:
    """Sorted, without duplicates by (table, priority, match)."""
    by_key: dict[tuple, list[FlowSpec]] = {}
    for flow in flows:
        by_key.setdefault(flow.key, []).append(flow)
    chosen = []
    for group in by_key.values():
        if len(group) > 1:  # identical flows are one; different ones are a conflict
            group = sorted(set(group), key=FlowSpec.sort_key)
            for dropped in group[1:]:
                LOG.warning("conflicting flows for one key, keeping %s, dropping %s",
                            group[0].to_ofctl(), dropped.to_ofctl())
        chosen.append(group[0])
    # keys are unique now: table, priority and match alone give FlowSpec.sort_key's order
    chosen.sort(key=lambda f: (f.table, -f.priority, f.match.sort_key()))
    return chosen
