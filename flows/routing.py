"""L3_ENTRY (table 30) and ROUTING (table 50) for the routers hosted on this switch.

L3_ENTRY, internal side:

* 100 ``metadata=<net>,eth_dst=<interface mac>,ip``: the packet is for the router: write the
  router key into the metadata's router bits, go to ROUTING.

ROUTING, per router (``metadata=<router>/ROUTER_MASK``):

* 300 ``ip,nw_dst=<host ip>`` for every up port with a fixed IP in one of the router's
  subnets: eth_src := the interface MAC of that subnet, eth_dst := the port's MAC, dec_ttl,
  metadata := destination network (+ routed bit), go to L2_FORWARD (which may send it through
  the uplink, tagged, to the host where the port is bound).
* 200 ``ip,nw_dst=<subnet>``: any other address of an attached subnet: drop.
* 150 / 100: egress through floating-IP SNAT / router SNAT (see :mod:`flows.nat`).
* 0 anything else: dropped.

The controller knows every port's IP and MAC, so routing never needs ARP resolution inside a
tenant network.
"""

from __future__ import annotations

import ipaddress

from flows.context import SwitchView
from flows.cookies import CookieKind, cookie_for
from flows.metadata import NETWORK_MASK, ROUTED_FLAG, ROUTER_MASK, router_value
from flows.model import Port, Router, RouterInterface
from flows.spec import (
    ETH_TYPE_IP,
    Action,
    DecNwTtl,
    FlowSpec,
    GotoTable,
    Match,
    SetField,
    WriteMetadata,
)
from flows.tables import Table

PRIO_ENTER_ROUTER = 100
PRIO_HOST_ROUTE = 300
PRIO_SUBNET_DROP = 200


def cidr_match(cidr: str) -> tuple[str, str]:
    net = ipaddress.IPv4Network(cidr, strict=False)
    return (str(net.network_address), str(net.netmask))


def router_match(router: Router, **fields) -> Match:
    return Match(metadata=(router_value(router.key), ROUTER_MASK), eth_type=ETH_TYPE_IP,
                 **fields)


def deliver_actions(view: SwitchView, iface: RouterInterface, port: Port) -> tuple[Action, ...]:
    """Route to ``port`` out of ``iface``: rewrite MACs, dec TTL, switch in its network."""
    network = view.networks[iface.network_id]
    return (SetField("eth_src", iface.mac), SetField("eth_dst", port.mac), DecNwTtl(),
            WriteMetadata(network.key | ROUTED_FLAG, NETWORK_MASK | ROUTED_FLAG),
            GotoTable(Table.L2_FORWARD))


def ipv4_interfaces(router: Router) -> list[RouterInterface]:
    result = []
    for iface in router.interfaces:
        try:
            ipaddress.IPv4Network(iface.cidr, strict=False)
        except ValueError:
            continue
        result.append(iface)
    return sorted(result, key=lambda i: (i.subnet_id, i.port_id))


def routing_flows(view: SwitchView) -> list[FlowSpec]:
    flows: list[FlowSpec] = []
    for router in view.hosted_routers:
        cookie = cookie_for(CookieKind.ROUTER, router.id)
        for iface in ipv4_interfaces(router):
            network = view.networks.get(iface.network_id)
            if network is None:
                continue
            flows.append(FlowSpec(
                Table.L3_ENTRY, PRIO_ENTER_ROUTER,
                Match(metadata=(network.key, NETWORK_MASK), eth_dst=iface.mac,
                      eth_type=ETH_TYPE_IP),
                (WriteMetadata(router_value(router.key), ROUTER_MASK),
                 GotoTable(Table.ROUTING)),
                cookie))
            flows.append(FlowSpec(Table.ROUTING, PRIO_SUBNET_DROP,
                                  router_match(router, ipv4_dst=cidr_match(iface.cidr)),
                                  (), cookie))
            for ip, port in view.hosts_in_subnet(iface.subnet_id):
                if port.network_id != iface.network_id:
                    continue
                flows.append(FlowSpec(Table.ROUTING, PRIO_HOST_ROUTE,
                                      router_match(router, ipv4_dst=ip),
                                      deliver_actions(view, iface, port), cookie))
    return flows
