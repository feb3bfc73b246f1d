"""The pipeline's tables, declared once. Code refers to tables by name; ids live only here.

Ids leave gaps so that a table can be inserted later without renumbering. Every ``goto_table``
and every ``ct(table=...)`` goes forward (to a higher id), so the pipeline cannot loop.
See docs/pipeline.md for the flows each table holds.
"""

from __future__ import annotations

from enum import IntEnum


class Table(IntEnum):
    #: in_port (+VLAN tag) -> network: write the network key into metadata, or drop.
    CLASSIFY = 0
    #: Anti-spoofing for tap ports with port security: own MAC, own IPs, DHCP discovery.
    PORT_SECURITY = 10
    #: Answers ARP for router interface, gateway and floating IPs; upstream ARP replies to the
    #: controller. Everything else passes on.
    ARP_RESPONDER = 20
    #: Packets addressed to a router MAC: into ROUTING (internal side) or through conntrack
    #: into POST_NAT (external side). Everything else passes on to L2_FORWARD.
    L3_ENTRY = 30
    #: Conntrack results of packets from the outside (after un-SNAT or floating-IP DNAT):
    #: replies of known connections and new floating-IP connections go on to ROUTING.
    POST_NAT = 40
    #: Per-router routing: to a known host of the router's subnets, or out through SNAT /
    #: floating-IP SNAT to the upstream gateway.
    ROUTING = 50
    #: MAC forwarding within a network: local port, uplink (tagged) or flood.
    L2_FORWARD = 60


#: Tables in pipeline order.
PIPELINE: tuple[Table, ...] = tuple(sorted(Table))
