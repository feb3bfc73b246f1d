"""PORT_SECURITY (table 10): a port with port security may only send as itself.

For each up tap port bound here with ``port_security_enabled`` (trusted ``network:*`` ports
skip this table), all matching ``in_port``:

* 110 ``udp,udp_src=67,udp_dst=68``: drop (no rogue DHCP server in a VM).
* 100 ``ip,eth_src=<mac>,nw_src=<fixed ip>``: allowed, one flow per fixed IPv4.
* 100 ``arp,eth_src=<mac>,arp_sha=<mac>,arp_spa=<fixed ip>``: allowed, one flow per fixed IPv4.
* 100 ``udp,eth_src=<mac>,nw_src=0.0.0.0,udp_src=68,udp_dst=67``: DHCP discover/request.
* 50 + prefix length: the same IP and ARP flows for each IPv4 allowed address pair
  ``(ip or cidr, mac)``, with the pair's MAC (the port's own when None) and the pair's
  address, masked for a CIDR. The priority grows with the prefix, so overlapping pairs never
  tie; a pair equal to a fixed IP with the port's MAC adds nothing.
* 0 anything else (other MAC or IP, IPv6, other ethertypes): table-miss drop.

Allowed packets go on to ARP_RESPONDER, except the IPv4 of a firewalled port (one with
security groups, see flows/security_groups.py): it goes through conntrack in the port's zone,
``ct(table=SG_EGRESS_STATE,zone=<port zone>)``. The DHCP discover from 0.0.0.0 skips the
firewall (it would allow it anyway).
"""

from __future__ import annotations

from .context import SwitchView, address_match, ipv4_network
from .cookies import CookieKind, cookie_for
from .model import Port
from .spec import (
    ETH_TYPE_ARP,
    ETH_TYPE_IP,
    IP_PROTO_UDP,
    Action,
    Ct,
    FlowSpec,
    GotoTable,
    Match,
)
from .tables import Table

PRIO_DENY = 110
PRIO_ALLOW = 100
PRIO_PAIR_BASE = 50


def _sources(port: Port) -> list[tuple[int, str, str | tuple[str, str]]]:
    """(priority, mac, address match) the port may send from: fixed IPs, then pairs."""
    fixed = sorted({net for ip in port.ips if (net := ipv4_network(ip)) is not None})
    result = [(PRIO_ALLOW, port.mac, address_match(net)) for net in fixed]
    seen = {(port.mac, net) for net in fixed}
    for address, pair_mac in port.allowed_address_pairs:
        net = ipv4_network(address)
        mac = pair_mac or port.mac
        if net is None or (mac, net) in seen:
            continue
        seen.add((mac, net))
        result.append((PRIO_PAIR_BASE + net.prefixlen, mac, address_match(net)))
    return result


def port_security_flows(view: SwitchView) -> list[FlowSpec]:
    flows: list[FlowSpec] = []
    for port_id, ofport in view.local_ports.items():
        flows.extend(port_flows(view, port_id, ofport))
    return flows


def port_flows(view: SwitchView, port_id: str, ofport: int) -> list[FlowSpec]:
    """The port security of one local port (none when it is not guarded)."""
    port = view.ports[port_id]
    if not port.guarded:
        return []
    flows: list[FlowSpec] = []
    to_next: tuple[Action, ...] = (GotoTable(Table.ARP_RESPONDER),)
    cookie = cookie_for(CookieKind.PORT, port.id)
    zone = view.firewall_zones.get(port.id)
    ip_next = to_next if zone is None else (Ct(zone=zone, table=Table.SG_EGRESS_STATE),)

    flows.append(FlowSpec(
        Table.PORT_SECURITY, PRIO_DENY,
        Match(in_port=ofport, eth_type=ETH_TYPE_IP, ip_proto=IP_PROTO_UDP,
              udp_src=67, udp_dst=68),
        (), cookie))
    for priority, mac, address in _sources(port):
        flows.append(FlowSpec(
            Table.PORT_SECURITY, priority,
            Match(in_port=ofport, eth_src=mac, eth_type=ETH_TYPE_IP, ipv4_src=address),
            ip_next, cookie))
        flows.append(FlowSpec(
            Table.PORT_SECURITY, priority,
            Match(in_port=ofport, eth_src=mac, eth_type=ETH_TYPE_ARP, arp_sha=mac,
                  arp_spa=address),
            to_next, cookie))
    flows.append(FlowSpec(
        Table.PORT_SECURITY, PRIO_ALLOW,
        Match(in_port=ofport, eth_src=port.mac, eth_type=ETH_TYPE_IP,
              ip_proto=IP_PROTO_UDP, ipv4_src="0.0.0.0", udp_src=68, udp_dst=67),
        to_next, cookie))
    return flows
