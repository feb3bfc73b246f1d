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
    #: Anti-spoofing for tap ports with port security: own MAC, own IPs, allowed address
    #: pairs, DHCP discovery. IPv4 of firewalled ports goes through conntrack into
    #: SG_EGRESS_STATE.
    PORT_SECURITY = 10
    #: Firewall, egress (from a firewalled port), conntrack verdict: replies and related
    #: packets of live connections are accepted, invalid ones dropped, the rest checked.
    SG_EGRESS_STATE = 12
    #: Firewall, egress: the port's security group rules (conjunctive matches).
    SG_EGRESS_RULES = 14
    #: Firewall, egress: commit what was accepted, then on to ARP_RESPONDER.
    SG_EGRESS_ACCEPT = 16
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
    #: MAC forwarding within a network: local port, uplink (tagged) or flood. IPv4 for a
    #: firewalled local port goes through conntrack into SG_INGRESS_STATE instead.
    L2_FORWARD = 60
    #: Firewall, ingress (to a firewalled port), conntrack verdict, as SG_EGRESS_STATE.
    SG_INGRESS_STATE = 70
    #: Firewall, ingress: the port's security group rules.
    SG_INGRESS_RULES = 72
    #: Firewall, ingress: commit what was accepted, output to the port.
    SG_INGRESS_ACCEPT = 74


#: Tables in pipeline order.
PIPELINE: tuple[Table, ...] = tuple(sorted(Table))
