"""ARP_RESPONDER (table 20): the switch where a router is active answers ARP for its IPs.

Only where the router is active (``host_dpid``), never on its standby switches; every flow
here is active-only (cookie ROUTER_ACTIVE, ident the router, floating IPs included). By
priority:

* 110 ``in_port=<uplink>,metadata=<net>,arp,arp_op=1,arp_tpa=<interface ip>``: the request
  came from another host: answer it back out of the uplink, re-tagged (vlan networks).
* 100 ``metadata=<net>,arp,arp_op=1,arp_tpa=<interface ip>``: answer with the interface MAC,
  ``IN_PORT``.
* 100 ``metadata=<external net>,arp,arp_op=1,arp_tpa=<gateway ip | floating ip>``: answer on
  the external port with the gateway MAC (floating IPs live on the gateway port).
* 100 ``in_port=<external port>,metadata=<external net>,arp,arp_op=2,arp_tpa=<gateway ip>``:
  the upstream router's reply to the controller's ARP request: to CONTROLLER, which learns
  ``upstream_mac``.
* 1 anything else: on to L3_ENTRY (BASE).

The answer is built in place: eth_dst := eth_src, eth_src := MAC, arp_op := 2,
arp_tha := arp_sha, arp_tpa := arp_spa, arp_sha := MAC, arp_spa := IP.
"""

from __future__ import annotations

from .context import SwitchView
from .cookies import CookieKind, cookie_for
from .metadata import NETWORK_MASK
from .model import Network
from .responder import answer_in_place, router_addresses
from .spec import (
    ARP_REPLY,
    ARP_REQUEST,
    ETH_TYPE_ARP,
    Action,
    FlowSpec,
    Match,
    MoveField,
    Output,
    SetField,
    is_ipv4_text,
)
from .tables import Table

PRIO_ANSWER_UPLINK = 110
PRIO_ANSWER = 100
PRIO_LEARN = 100


def arp_reply_actions(mac: str, ip: str) -> tuple[Action, ...]:
    """Turn the ARP request in hand into the reply "``ip`` is at ``mac``" (not yet output)."""
    return (
        MoveField("eth_src", "eth_dst"),
        SetField("eth_src", mac),
        SetField("arp_op", ARP_REPLY),
        MoveField("arp_sha", "arp_tha"),
        MoveField("arp_spa", "arp_tpa"),
        SetField("arp_sha", mac),
        SetField("arp_spa", ip),
    )


def answer_flows(view: SwitchView, network: Network, ip: str, mac: str,
                 cookie: int) -> list[FlowSpec]:
    """Flows answering "who has ``ip``" on ``network`` with ``mac`` (none for IPv6)."""
    if not is_ipv4_text(ip):
        return []
    match = dict(metadata=(network.key, NETWORK_MASK), eth_type=ETH_TYPE_ARP,
                 arp_op=ARP_REQUEST, arp_tpa=ip)
    return answer_in_place(view, network, Table.ARP_RESPONDER,
                           (PRIO_ANSWER, PRIO_ANSWER_UPLINK), match,
                           arp_reply_actions(mac, ip), cookie)


def arp_flows(view: SwitchView) -> list[FlowSpec]:
    flows: list[FlowSpec] = []
    for router in view.active_routers:
        cookie = cookie_for(CookieKind.ROUTER_ACTIVE, router.id)
        for network, ip, mac in router_addresses(view, router):
            flows.extend(answer_flows(view, network, ip, mac, cookie))
        gw = router.gateway
        if gw is None or not view.gateway_active(router):
            continue
        external = view.networks[gw.network_id]
        ext_port = view.attachment(external)
        assert ext_port is not None  # gateway_active
        flows.append(FlowSpec(
            Table.ARP_RESPONDER, PRIO_LEARN,
            Match(in_port=ext_port.ofport, metadata=(external.key, NETWORK_MASK),
                  eth_type=ETH_TYPE_ARP, arp_op=ARP_REPLY, arp_tpa=gw.ip),
            (Output("CONTROLLER"),), cookie))
        for fip in view.floating_ips_of(router):
            flows.extend(answer_flows(view, external, fip.floating_ip, gw.mac, cookie))
    return flows
