"""Answers built in the switch: turn a request into its reply and send it back where it came
from. Shared by the ARP responder (``flows/arp.py``) and the router's echo replies
(``flows/icmp.py``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from .context import SwitchView
from .l2 import egress_actions
from .model import Network, Router
from .spec import Action, FlowSpec, Match, MatchValue, Output


def answer_in_place(view: SwitchView, network: Network, table: int,
                    priorities: tuple[int, int], match: Mapping[str, MatchValue],
                    reply: tuple[Action, ...], cookie: int) -> list[FlowSpec]:
    """``priorities`` = (local, uplink). Locally the reply goes back ``IN_PORT``; a request
    that came in over the uplink (vlan networks) goes back out of it, re-tagged."""
    local, uplink = priorities
    flows = [FlowSpec(table, local, Match(match), (*reply, Output("IN_PORT")), cookie)]
    att = view.attachment(network)
    if att is not None and att.vlan_vid is not None:
        flows.append(FlowSpec(table, uplink, Match(match, in_port=att.ofport),
                              (*reply, *egress_actions(att, hairpin=True)), cookie))
    return flows


def router_addresses(view: SwitchView, router: Router) -> Iterator[tuple[Network, str, str]]:
    """(network, ip, mac) of each interface and of the gateway while it is active here."""
    for iface in router.interfaces:
        network = view.networks.get(iface.network_id)
        if network is not None:
            yield network, iface.ip, iface.mac
    gw = router.gateway
    if gw is not None and view.gateway_active(router):
        yield view.networks[gw.network_id], gw.ip, gw.mac
