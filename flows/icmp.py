"""L3_ENTRY: the switch where a router is active answers pings to the router's own addresses.

Only where the router is active (cookie ROUTER_ACTIVE: the replies come from its MACs), for
every interface (on its network) and for the gateway (on the external network), matching
``metadata=<net>,eth_dst=<mac>,icmp,icmp_type=8,nw_dst=<ip>``:

* 120 with ``in_port=<uplink>`` (vlan networks): reply back out of the uplink, re-tagged.
* 110: reply ``IN_PORT``.

The reply is built in place: eth_dst := eth_src, eth_src := MAC, nw_dst := nw_src,
nw_src := IP, icmp_type := 0 (echo reply; the switch fixes the checksums). Without this, a
ping to the gateway would be dropped by ROUTING.
"""

from __future__ import annotations

from .context import SwitchView, is_ipv4
from .cookies import CookieKind, cookie_for
from .metadata import NETWORK_MASK
from .model import Network
from .responder import answer_in_place, router_addresses
from .spec import (
    ETH_TYPE_IP,
    IP_PROTO_ICMP,
    Action,
    FlowSpec,
    MoveField,
    SetField,
)
from .tables import Table

PRIO_ECHO_UPLINK = 120
PRIO_ECHO = 110
ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0


def echo_reply_actions(mac: str, ip: str) -> tuple[Action, ...]:
    """Turn the echo request in hand into the reply from ``ip``/``mac`` (not yet output)."""
    return (
        MoveField("eth_src", "eth_dst"),
        SetField("eth_src", mac),
        MoveField("ipv4_src", "ipv4_dst"),
        SetField("ipv4_src", ip),
        SetField("icmpv4_type", ICMP_ECHO_REPLY),
    )


def echo_flows(view: SwitchView, network: Network, ip: str, mac: str,
               cookie: int) -> list[FlowSpec]:
    if not is_ipv4(ip):
        return []
    match = dict(metadata=(network.key, NETWORK_MASK), eth_dst=mac, eth_type=ETH_TYPE_IP,
                 ip_proto=IP_PROTO_ICMP, icmpv4_type=ICMP_ECHO_REQUEST, ipv4_dst=ip)
    return answer_in_place(view, network, Table.L3_ENTRY, (PRIO_ECHO, PRIO_ECHO_UPLINK),
                           match, echo_reply_actions(mac, ip), cookie)


def icmp_flows(view: SwitchView) -> list[FlowSpec]:
    flows: list[FlowSpec] = []
    for router in view.active_routers:
        cookie = cookie_for(CookieKind.ROUTER_ACTIVE, router.id)
        for network, ip, mac in router_addresses(view, router):
            flows.extend(echo_flows(view, network, ip, mac, cookie))
    return flows
