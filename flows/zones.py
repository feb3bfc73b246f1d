"""Conntrack zones and marks: which connection table each ``ct`` action uses.

A switch's conntrack is shared by everything on it, so zones keep unrelated connections
apart:

* Router NAT: zone = ``Router.key``, on the router's switches (flows/nat.py).
* Firewall: one zone per firewalled port on its switch, ``FIREWALL_ZONE_BASE`` +
  ``(ofport - 1) % FIREWALL_ZONE_COUNT``, i.e. 0x8000 + ofport - 1 for ofports up to 32768.
  Both directions of every connection of the port live there: what the port opens
  (egress) and what is opened towards it (ingress). Two ports never share a zone, so one
  port's connections can never pass as another's (even with the same addresses, in two
  tenants' overlapping subnets), and a connection between two ports of one switch is tracked
  twice, once per port, each against its own rules.

The halves meet only if a router key reaches 0x8000 (32768 routers created). Allocation
therefore skips the zones of routers placed on the switch (active or on standby, so that a
switchover moves no port's zone) and any zone already given to a port with a lower ofport
(linear probing), so zones stay unique on a switch whatever the numbers; they stay *stable*
(a port keeps its zone while its tap keeps its ofport) as long as router keys stay below
0x8000 and ofports below 32769, which is what the controller should keep to (router keys are
allocated from 1 upwards).

``CT_MARK_DEAD`` is the ct_mark bit the firewall sets on a connection that its port's current
rules no longer allow (see flows/security_groups.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Set

FIREWALL_ZONE_BASE = 0x8000
FIREWALL_ZONE_COUNT = 0x8000
CT_MARK_DEAD = 0x1


def firewall_zones(ofports: Mapping[str, int], taken: Set[int] = frozenset()) -> dict[str, int]:
    """port id -> firewall zone, for the firewalled ports of one switch (port id -> ofport),
    avoiding the ``taken`` zones (the keys of routers placed on that switch)."""
    used = set(taken)
    zones: dict[str, int] = {}
    for port_id, ofport in sorted(ofports.items(), key=lambda item: (item[1], item[0])):
        offset = (ofport - 1) % FIREWALL_ZONE_COUNT
        for step in range(FIREWALL_ZONE_COUNT):
            zone = FIREWALL_ZONE_BASE + (offset + step) % FIREWALL_ZONE_COUNT
            if zone not in used:
                break
        else:
            raise ValueError("more firewalled ports than firewall zones")
        used.add(zone)
        zones[port_id] = zone
    return zones
