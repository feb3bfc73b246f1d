"""L3_ENTRY (table 30) and ROUTING (table 50) for the routers placed on this switch.

L3_ENTRY, internal side, only where the router is active (cookie ROUTER_ACTIVE):

* 100 ``metadata=<net>,eth_dst=<interface mac>,ip``: the packet is for the router: write the
  router key into the metadata's router bits, go to ROUTING.

ROUTING, per router (``metadata=<router>/ROUTER_MASK``), where it is active and on its
standby switches alike (cookie ROUTER): only the flow above (and POST_NAT, after the
active-only NAT admission of :mod:`flows.nat`) writes the router bits, so on a standby switch
these flows are never reached; they are there so that a switchover only adds the active-only
flows.

* 340 + prefix length ``ip,nw_dst=<destination>`` of an extra route whose destination lies
  inside an attached subnet and is narrower than it: to the nexthop, as below. Above the host
  entries, so that the narrower route wins, as longest-prefix matching decides.
* 300 ``ip,nw_dst=<host ip>`` for every up port with a fixed IP in one of the router's
  subnets: eth_src := the interface MAC of that subnet, eth_dst := the port's MAC, dec_ttl,
  metadata := destination network (+ routed bit), go to L2_FORWARD (which may send it through
  the uplink, tagged, to the host where the port is bound).
* 200 ``ip,nw_dst=<subnet>``: any other address of an attached subnet: drop.
* 160 + prefix length ``ip,nw_dst=<destination>`` of every other extra route (Neutron's
  ``routes``): to the port that holds the nexthop address on the attached subnet that
  contains it, exactly as a host route to that port. Longer prefixes first; an attached
  subnet beats a route as wide as or wider than itself; a route, even ``0.0.0.0/0``, beats
  the egress through the gateway below (Neutron's router replaces its default route the
  same way). While no up port holds the nexthop address, the route drops its packets rather
  than let them leak out through the gateway.
* 150 / 100: egress through floating-IP SNAT / router SNAT (see :mod:`flows.nat`).
* 0 anything else: dropped.

The controller knows every port's IP and MAC, so routing never needs ARP resolution inside a
tenant network.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from .context import SwitchView
from .cookies import CookieKind, cookie_for
from .metadata import NETWORK_MASK, ROUTED_FLAG, ROUTER_MASK, router_value
from .model import Port, Router, RouterInterface
from .spec import (
    ETH_TYPE_IP,
    Action,
    DecNwTtl,
    FlowSpec,
    GotoTable,
    Match,
    SetField,
    WriteMetadata,
    ipv4_int,
    is_ipv4_text,
)
from .tables import Table

PRIO_ENTER_ROUTER = 100
PRIO_HOST_ROUTE = 300
PRIO_SUBNET_DROP = 200
#: Extra routes: base + prefix length (0..32), below the attached subnets...
PRIO_EXTRA_ROUTE = 160
#: ...or above their host entries for a route narrower than the attached subnet it is in.
PRIO_EXTRA_ROUTE_IN_SUBNET = 340


@lru_cache(maxsize=1 << 16)
def cidr_match(cidr: str) -> tuple[str, str]:
    net = ipaddress.IPv4Network(cidr, strict=False)
    return (str(net.network_address), str(net.netmask))


@lru_cache(maxsize=1 << 16)
def _is_ipv4_cidr(cidr: str) -> bool:
    try:
        ipaddress.IPv4Network(cidr, strict=False)
    except ValueError:
        return False
    return True


def router_match(router: Router, **fields) -> Match:
    return Match(metadata=(router_value(router.key), ROUTER_MASK), eth_type=ETH_TYPE_IP,
                 **fields)


def deliver_actions(view: SwitchView, iface: RouterInterface, port: Port) -> tuple[Action, ...]:
    """Route to ``port`` out of ``iface``: rewrite MACs, dec TTL, switch in its network."""
    head, tail = _delivery(view, iface)
    return (*head, SetField("eth_dst", port.mac), *tail)


def _delivery(view: SwitchView, iface: RouterInterface,
              ) -> tuple[tuple[Action, ...], tuple[Action, ...]]:
    """What :func:`deliver_actions` puts around the port's MAC for every port of ``iface``
    (immutable: shared by all of them)."""
    network = view.networks[iface.network_id]
    return ((SetField("eth_src", iface.mac),),
            (DecNwTtl(), WriteMetadata(network.key | ROUTED_FLAG, NETWORK_MASK | ROUTED_FLAG),
             GotoTable(Table.L2_FORWARD)))


def _ipv4_order(address: str) -> int | None:
    """An IPv4 address as an int (its order), None for anything else."""
    return ipv4_int(address) if is_ipv4_text(address) else None


def hosts_on(view: SwitchView, subnet_id: str, network_id: str) -> list[tuple[str, Port]]:
    """(ip, port) of every up, non-router port of ``network_id`` with a fixed IPv4 address
    on ``subnet_id``, by address: from the network's own ports (a router needs only its
    subnets' hosts, not an index of every port's), once per snapshot for all switches."""
    key = ("routing.hosts_on", subnet_id, network_id)
    known = view.index.memo.get(key)
    if known is None:
        found = [(order, port.id, ip, port) for port in view.ports_of(network_id)
                 if port.admin_state_up and not port.router_owned
                 for sid, ip in port.fixed_ips
                 if sid == subnet_id and (order := _ipv4_order(ip)) is not None]
        found.sort(key=lambda item: (item[0], item[1]))
        known = view.index.memo[key] = [(ip, port) for _o, _id, ip, port in found]
    return known  # type: ignore[return-value]


def ipv4_interfaces(router: Router) -> list[RouterInterface]:
    return sorted((i for i in router.interfaces if _is_ipv4_cidr(i.cidr)),
                  key=lambda i: (i.subnet_id, i.port_id))


def route_priority(destination: ipaddress.IPv4Network,
                   attached: list[ipaddress.IPv4Network]) -> int:
    """Longest-prefix matching among the extra routes and the attached subnets."""
    narrower = any(destination.subnet_of(net) and destination.prefixlen > net.prefixlen
                   for net in attached)
    base = PRIO_EXTRA_ROUTE_IN_SUBNET if narrower else PRIO_EXTRA_ROUTE
    return base + destination.prefixlen


def extra_route_flows(view: SwitchView, router: Router, cookie: int) -> list[FlowSpec]:
    """ROUTING entries of the router's extra routes (see the module's description)."""
    flows: list[FlowSpec] = []
    interfaces = ipv4_interfaces(router)
    attached = [ipaddress.IPv4Network(i.cidr, strict=False) for i in interfaces]
    routes: dict[ipaddress.IPv4Network, ipaddress.IPv4Address] = {}
    for destination_text, nexthop_text in sorted(router.routes):
        try:
            destination = ipaddress.IPv4Network(destination_text, strict=False)
            nexthop = ipaddress.IPv4Address(nexthop_text)
        except ValueError:
            continue   # IPv6: not in this pipeline
        routes.setdefault(destination, nexthop)   # one nexthop per destination: the lowest
    for destination, nexthop in routes.items():
        iface = next((i for i, net in zip(interfaces, attached, strict=True)
                      if nexthop in net), None)
        if iface is None or iface.network_id not in view.networks:
            continue
        holder = next((port for ip, port in hosts_on(view, iface.subnet_id, iface.network_id)
                       if ip == str(nexthop)), None)
        fields = {} if destination.prefixlen == 0 else {"ipv4_dst": cidr_match(str(destination))}
        actions = deliver_actions(view, iface, holder) if holder is not None else ()
        flows.append(FlowSpec(Table.ROUTING, route_priority(destination, attached),
                              router_match(router, **fields), actions, cookie))
    return flows


def routing_flows(view: SwitchView) -> list[FlowSpec]:
    flows: list[FlowSpec] = []
    for router in view.placed_routers:
        cookie = cookie_for(CookieKind.ROUTER, router.id)
        active = view.is_active(router)
        for iface in ipv4_interfaces(router):
            network = view.networks.get(iface.network_id)
            if network is None:
                continue
            if active:
                flows.append(FlowSpec(
                    Table.L3_ENTRY, PRIO_ENTER_ROUTER,
                    Match(metadata=(network.key, NETWORK_MASK), eth_dst=iface.mac,
                          eth_type=ETH_TYPE_IP),
                    (WriteMetadata(router_value(router.key), ROUTER_MASK),
                     GotoTable(Table.ROUTING)),
                    cookie_for(CookieKind.ROUTER_ACTIVE, router.id)))
            flows.append(FlowSpec(Table.ROUTING, PRIO_SUBNET_DROP,
                                  router_match(router, ipv4_dst=cidr_match(iface.cidr)),
                                  (), cookie))
            head, tail = _delivery(view, iface)
            for ip, port in hosts_on(view, iface.subnet_id, iface.network_id):
                flows.append(FlowSpec(Table.ROUTING, PRIO_HOST_ROUTE,
                                      router_match(router, ipv4_dst=ip),
                                      (*head, SetField("eth_dst", port.mac), *tail), cookie))
        flows.extend(extra_route_flows(view, router, cookie))
    return flows
