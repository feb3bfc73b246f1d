"""L3_ENTRY guards: packets for a router's MACs that come from the fabric and that no
active-only flow admits are dropped.

On every switch where the router is placed, active or on standby (cookie ROUTER), at
priority 50, below the active-only admission (100), ping replies (110, 120) of
:mod:`flows.routing`, :mod:`flows.nat` and :mod:`flows.icmp`:

* ``in_port=<uplink>,metadata=<net>,eth_dst=<interface mac>`` for each interface whose
  network has an uplink here;
* ``metadata=<external net>,eth_dst=<gateway mac>`` (it only arrives on the external port;
  floating IPs use the gateway MAC too).

Where the router is active they change nothing: what they match was dropped anyway (by
L2_FORWARD's drop of the router MAC, or by the external network's lack of L2 flows). On a
standby switch, or on one that fenced itself (deleted its ROUTER_ACTIVE flows), they say it
explicitly: the fabric may still deliver frames for the router there (a stale MAC table, a
flooded unknown unicast), and they must be neither answered, nor forwarded, nor flooded.
Frames for an interface MAC from the switch's own VMs are not guarded: L2_FORWARD sends them
up the uplink, towards the switch where the router is active.
"""

from __future__ import annotations

from .context import SwitchView
from .cookies import CookieKind, cookie_for
from .metadata import NETWORK_MASK
from .spec import FlowSpec, Match
from .tables import Table

PRIO_ROUTER_MAC_GUARD = 50


def guard_flows(view: SwitchView) -> list[FlowSpec]:
    flows: list[FlowSpec] = []
    for router in view.placed_routers:
        cookie = cookie_for(CookieKind.ROUTER, router.id)
        for iface in router.interfaces:
            network = view.networks.get(iface.network_id)
            att = None if network is None else view.attachment(network)
            if network is None or att is None:
                continue
            flows.append(FlowSpec(
                Table.L3_ENTRY, PRIO_ROUTER_MAC_GUARD,
                Match(in_port=att.ofport, metadata=(network.key, NETWORK_MASK),
                      eth_dst=iface.mac),
                (), cookie))
        gw = router.gateway
        if gw is not None and view.gateway_active(router):
            external = view.networks[gw.network_id]
            flows.append(FlowSpec(
                Table.L3_ENTRY, PRIO_ROUTER_MAC_GUARD,
                Match(metadata=(external.key, NETWORK_MASK), eth_dst=gw.mac),
                (), cookie))
    return flows
