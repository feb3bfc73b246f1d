"""CLASSIFY (table 0): which network does a packet belong to? Decided by where it came in.

* 100 ``in_port=<tap>,vlan_vid=0`` (an up port bound here, untagged): write the network key;
  go to PORT_SECURITY if the port has port security (and is not a trusted ``network:*`` port),
  else straight to ARP_RESPONDER.
* 100 ``in_port=<uplink>,vlan_vid=0x1000|<segmentation id>``: pop the tag, write the key of
  that VLAN network; ``vlan_vid=0`` on an uplink: the physnet's flat network; ``vlan_vid=0``
  on the external port: the external network. Only networks present on the switch (a local
  port or a router hosted here) are classified.
* 0 everything else (unknown tap, unknown VLAN, tagged frames from VMs): dropped by the
  table-miss flow.
"""

from __future__ import annotations

from .context import SwitchView
from .cookies import CookieKind, cookie_for
from .metadata import network_value
from .model import Network
from .spec import OFPVID_NONE, FlowSpec, GotoTable, Match, PopVlan, WriteMetadata
from .tables import Table

PRIO_CLASSIFY = 100


def classify_flows(view: SwitchView) -> list[FlowSpec]:
    flows: list[FlowSpec] = []
    for port_id, ofport in view.local_ports.items():
        flows.extend(port_classify_flows(view, port_id, ofport))
    for network in view.present_networks:
        flows.extend(network_classify_flows(view, network))
    return flows


def port_classify_flows(view: SwitchView, port_id: str, ofport: int) -> list[FlowSpec]:
    """The classification of one local port's tap."""
    port = view.ports[port_id]
    network = view.networks[port.network_id]
    nxt = Table.PORT_SECURITY if port.guarded else Table.ARP_RESPONDER
    return [FlowSpec(
        Table.CLASSIFY, PRIO_CLASSIFY, Match(in_port=ofport, vlan_vid=OFPVID_NONE),
        (WriteMetadata(network_value(network.key)), GotoTable(nxt)),
        cookie_for(CookieKind.PORT, port.id))]


def network_classify_flows(view: SwitchView, network: Network) -> list[FlowSpec]:
    """The classification of one present network's traffic from its uplink (or external
    port)."""
    att = view.attachment(network)
    if att is None:
        return []
    pop = (PopVlan(),) if att.vlan_vid is not None else ()
    return [FlowSpec(
        Table.CLASSIFY, PRIO_CLASSIFY,
        Match(in_port=att.ofport, vlan_vid=att.vlan_vid or OFPVID_NONE),
        (*pop, WriteMetadata(network_value(network.key)), GotoTable(Table.ARP_RESPONDER)),
        cookie_for(CookieKind.NETWORK, network.id))]
