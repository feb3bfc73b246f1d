"""PORT_SECURITY (table 10): a port with port security may only send as itself.

For each up tap port bound here with ``port_security_enabled`` (trusted ``network:*`` ports
skip this table), all matching ``in_port``:

* 110 ``udp,udp_src=67,udp_dst=68``: drop (no rogue DHCP server in a VM).
* 100 ``ip,eth_src=<mac>,nw_src=<fixed ip>``: allowed, one flow per fixed IPv4.
* 100 ``arp,eth_src=<mac>,arp_sha=<mac>,arp_spa=<fixed ip>``: allowed, one flow per fixed IPv4.
* 100 ``udp,eth_src=<mac>,nw_src=0.0.0.0,udp_src=68,udp_dst=67``: DHCP discover/request.
* 0 anything else (other MAC or IP, IPv6, other ethertypes): table-miss drop.

Allowed packets go on to ARP_RESPONDER.
"""

from __future__ import annotations

from flows.context import SwitchView, is_ipv4
from flows.cookies import CookieKind, cookie_for
from flows.spec import (
    ETH_TYPE_ARP,
    ETH_TYPE_IP,
    IP_PROTO_UDP,
    FlowSpec,
    GotoTable,
    Match,
)
from flows.tables import Table

PRIO_DENY = 110
PRIO_ALLOW = 100


def port_security_flows(view: SwitchView) -> list[FlowSpec]:
    flows: list[FlowSpec] = []
    nxt = (GotoTable(Table.ARP_RESPONDER),)
    for port_id, ofport in view.local_ports.items():
        port = view.ports[port_id]
        if not port.port_security_enabled or port.trusted:
            continue
        cookie = cookie_for(CookieKind.PORT, port.id)

        def allow(match: Match, cookie: int = cookie) -> FlowSpec:
            return FlowSpec(Table.PORT_SECURITY, PRIO_ALLOW, match, nxt, cookie)

        flows.append(FlowSpec(
            Table.PORT_SECURITY, PRIO_DENY,
            Match(in_port=ofport, eth_type=ETH_TYPE_IP, ip_proto=IP_PROTO_UDP,
                  udp_src=67, udp_dst=68),
            (), cookie))
        for ip in sorted({ip for ip in port.ips if is_ipv4(ip)}):
            flows.append(allow(Match(in_port=ofport, eth_src=port.mac, eth_type=ETH_TYPE_IP,
                                     ipv4_src=ip)))
            flows.append(allow(Match(in_port=ofport, eth_src=port.mac, eth_type=ETH_TYPE_ARP,
                                     arp_sha=port.mac, arp_spa=ip)))
        flows.append(allow(Match(in_port=ofport, eth_src=port.mac, eth_type=ETH_TYPE_IP,
                                 ip_proto=IP_PROTO_UDP, ipv4_src="0.0.0.0",
                                 udp_src=68, udp_dst=67)))
    return flows
