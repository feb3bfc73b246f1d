"""L2_FORWARD: MAC forwarding inside one network (the metadata's network key).

Per present network, by priority:

* 110 routed hairpin: a *routed* packet (metadata routed bit) for a remote MAC that came in on
  the uplink goes back out of it (``IN_PORT``), tagged. Only on switches where a router of
  the network is placed (active or standby); a merely switched packet is never sent back
  where it came from.
* 105 IPv4 for a firewalled local port's MAC: through conntrack in the port's zone,
  ``ct(table=SG_INGRESS_STATE,zone=<port zone>)``; the ingress firewall outputs it (or not).
* 101 a router interface MAC, where the router is active (cookie ROUTER_ACTIVE): drop (IPv4
  and ARP requests for it were consumed by earlier tables).
* 100 known unicast: a local port's MAC -> its ofport; a remote port's MAC (bound on another
  switch) -> the uplink, tagged with the segmentation id; a router interface MAC -> the uplink
  on every switch while the router is placed somewhere (shadowed by the 101 drop where it is
  active, so that a switch whose active-only flows are gone sends its VMs' packets for the
  router towards the new active switch), or dropped on a switch of the router without an
  uplink for the network.
* 13 / 12 IPv4 flood from the uplink / from anywhere, in a network with firewalled local
  ports: like 11 / 10, except that each firewalled port gets its copy through its ingress
  firewall (one ``ct(table=SG_INGRESS_STATE,zone=<port zone>)`` fork each, before the uplink
  copy is tagged).
* 11 flood from the uplink: to local ports only.
* 10 flood (broadcast, multicast, unknown unicast): to local ports and the uplink.

A MAC of another network never matches, because every flow matches the network key. External
networks get no L2 flows: whatever arrives from the outside and is not for a router is dropped.
"""

from __future__ import annotations

from .context import Attachment, SwitchView
from .cookies import CookieKind, cookie_for
from .metadata import NETWORK_MASK, ROUTED_FLAG
from .model import Network
from .spec import ETH_TYPE_IP, Action, Ct, FlowSpec, Match, Output, PushVlan, SetField
from .tables import Table

PRIO_ROUTED_HAIRPIN = 110
PRIO_UNICAST_FIREWALLED = 105
PRIO_ACTIVE_ROUTER_MAC = 101
PRIO_UNICAST = 100
PRIO_IP_FLOOD_FROM_UPLINK = 13
PRIO_IP_FLOOD = 12
PRIO_FLOOD_FROM_UPLINK = 11
PRIO_FLOOD = 10


def to_ingress_firewall(zone: int) -> Ct:
    """Send (a copy of) an IPv4 packet through the ingress firewall of the port of ``zone``."""
    return Ct(zone=zone, table=Table.SG_INGRESS_STATE)


def egress_actions(att: Attachment, hairpin: bool = False) -> tuple[Action, ...]:
    """Actions that send the packet out of a network attachment (tagging it if needed).
    ``hairpin`` sends it back out of the port it came in on (``IN_PORT``)."""
    tag: tuple[Action, ...] = ()
    if att.vlan_vid is not None:
        tag = (PushVlan(), SetField("vlan_vid", att.vlan_vid))
    return (*tag, Output("IN_PORT" if hairpin else att.ofport))


def network_match(network: Network, **fields) -> Match:
    return Match(metadata=(network.key, NETWORK_MASK), **fields)


def l2_flows(view: SwitchView) -> list[FlowSpec]:
    flows: list[FlowSpec] = []
    for network in view.present_networks:
        if network.external:
            continue
        flows.extend(_network_flows(view, network))
    return flows


def _routed_here(view: SwitchView, network: Network) -> bool:
    return any(i.network_id == network.id for r in view.placed_routers for i in r.interfaces)


def _network_flows(view: SwitchView, network: Network) -> list[FlowSpec]:
    att = view.attachment(network)
    flows: list[FlowSpec] = []
    local: list[int] = []
    firewalled: dict[int, int] = {}  # ofport -> zone
    hairpin = att is not None and _routed_here(view, network)
    # the same for every remote port (actions are immutable: shared, built once)
    to_uplink = egress_actions(att) if att is not None else ()
    back_out = egress_actions(att, hairpin=True) if hairpin else ()
    for port in view.ports_of(network.id):
        cookie = cookie_for(CookieKind.PORT, port.id)
        ofport = view.local_ports.get(port.id)
        if ofport is not None:
            local.append(ofport)
            flows.append(FlowSpec(Table.L2_FORWARD, PRIO_UNICAST,
                                  network_match(network, eth_dst=port.mac),
                                  (Output(ofport),), cookie))
            zone = view.firewall_zones.get(port.id)
            if zone is not None:
                firewalled[ofport] = zone
                flows.append(FlowSpec(Table.L2_FORWARD, PRIO_UNICAST_FIREWALLED,
                                      network_match(network, eth_dst=port.mac,
                                                    eth_type=ETH_TYPE_IP),
                                      (to_ingress_firewall(zone),), cookie))
        elif att is not None and view.is_remote(port):
            flows.append(FlowSpec(Table.L2_FORWARD, PRIO_UNICAST,
                                  network_match(network, eth_dst=port.mac),
                                  to_uplink, cookie))
            if hairpin:
                match = Match(metadata=(network.key | ROUTED_FLAG, NETWORK_MASK | ROUTED_FLAG),
                              in_port=att.ofport, eth_dst=port.mac)
                flows.append(FlowSpec(Table.L2_FORWARD, PRIO_ROUTED_HAIRPIN, match,
                                      back_out, cookie))
    for router, iface in view.placed_interfaces(network.id):
        cookie = cookie_for(CookieKind.ROUTER, router.id)
        match = network_match(network, eth_dst=iface.mac)
        if att is not None:
            flows.append(FlowSpec(Table.L2_FORWARD, PRIO_UNICAST, match, to_uplink, cookie))
        elif view.dpid in router.placed_dpids:
            flows.append(FlowSpec(Table.L2_FORWARD, PRIO_UNICAST, match, (), cookie))
        if view.is_active(router):
            flows.append(FlowSpec(Table.L2_FORWARD, PRIO_ACTIVE_ROUTER_MAC, match, (),
                                  cookie_for(CookieKind.ROUTER_ACTIVE, router.id)))
    local.sort()
    net_cookie = cookie_for(CookieKind.NETWORK, network.id)
    to_local = tuple(Output(p) for p in local)
    to_all = to_local + to_uplink
    flows.append(FlowSpec(Table.L2_FORWARD, PRIO_FLOOD, network_match(network), to_all,
                          net_cookie))
    if att is not None:
        flows.append(FlowSpec(Table.L2_FORWARD, PRIO_FLOOD_FROM_UPLINK,
                              network_match(network, in_port=att.ofport), to_local, net_cookie))
    if firewalled:
        # Plain copies first, then one firewall fork per firewalled port, then the uplink copy
        # (tagging it last, so that the forks see the frame untagged).
        to_open = tuple(Output(p) for p in local if p not in firewalled)
        forks = tuple(to_ingress_firewall(firewalled[p]) for p in sorted(firewalled))
        flows.append(FlowSpec(Table.L2_FORWARD, PRIO_IP_FLOOD,
                              network_match(network, eth_type=ETH_TYPE_IP),
                              (*to_open, *forks, *to_uplink), net_cookie))
        if att is not None:
            flows.append(FlowSpec(Table.L2_FORWARD, PRIO_IP_FLOOD_FROM_UPLINK,
                                  network_match(network, in_port=att.ofport,
                                                eth_type=ETH_TYPE_IP),
                                  (*to_open, *forks), net_cookie))
    return flows
