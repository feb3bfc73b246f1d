"""SNAT and floating IPs, with conntrack zone = router key, on the router's switches.

Only when the router's gateway is usable here (the switch has the external port). The
L3_ENTRY flows below admit traffic from outside into the router: they exist only where the
router is active (cookie ROUTER_ACTIVE, floating IPs' included). ROUTING and POST_NAT flows
are on its standby switches too (cookies ROUTER and FLOATING_IP), unreachable there: only
the active-only flows write the router bits or send packets to POST_NAT. Egress
flows also need the upstream gateway's MAC (``gateway.upstream_mac``); until the controller has
learnt it, nothing leaves (packets are dropped by ROUTING's table-miss).

ROUTING (egress, per router ``metadata=<router>/ROUTER_MASK``):

* 150 ``ip,nw_src=<fixed ip>`` of each floating IP: eth_src := gateway MAC, eth_dst :=
  upstream MAC, dec_ttl, ``ct(commit,zone=<router>,nat(src=<floating ip>))``, output to the
  external port.
* 100 ``ip,nw_src=<subnet>`` of each interface (``enable_snat``): the same with
  ``nat(src=<gateway ip>)``.

L3_ENTRY (ingress from the external network, ``metadata=<external net>``,
``eth_dst=<gateway mac>``):

* 100 ``ip,nw_dst=<gateway ip>``: ``ct(table=POST_NAT,zone=<router>,nat)``: un-SNAT replies.
* 100 ``ip,nw_dst=<floating ip>``: ``ct(commit,table=POST_NAT,zone=<router>,
  nat(dst=<fixed ip>))``: DNAT (or un-SNAT of a connection the VM opened).

POST_NAT (table 40), per router (``ct_zone=<router>``):

* 110 ``ct_state=+est+trk``: a reply or continuation of a known connection.
* 100 ``ct_state=+rel+trk``: related (ICMP errors).
* 90 ``ct_state=+new+trk,nw_dst=<fixed ip>``: a new connection to a floating IP.

Each writes the router key into the metadata and goes to ROUTING, which delivers it to the VM
by its (now translated) destination address. Anything else (new connections to the gateway
IP, invalid packets) is dropped.
"""

from __future__ import annotations

from .context import SwitchView
from .cookies import CookieKind, cookie_for
from .metadata import NETWORK_MASK, ROUTER_MASK, router_value
from .model import Router
from .routing import cidr_match, ipv4_interfaces, router_match
from .spec import (
    CT_EST,
    CT_NEW,
    CT_REL,
    CT_TRK,
    ETH_TYPE_IP,
    Action,
    Ct,
    DecNwTtl,
    FlowSpec,
    GotoTable,
    Match,
    Nat,
    Output,
    PushVlan,
    SetField,
    WriteMetadata,
)
from .tables import Table

PRIO_FIP_EGRESS = 150
PRIO_SNAT_EGRESS = 100
PRIO_EXTERNAL_INGRESS = 100
PRIO_POST_NAT_EST = 110
PRIO_POST_NAT_REL = 100
PRIO_POST_NAT_FIP_NEW = 90


def _egress(view: SwitchView, router: Router, source_ip: str) -> tuple[Action, ...] | None:
    gw = router.gateway
    if gw is None or gw.upstream_mac is None:
        return None
    att = view.attachment(view.networks[gw.network_id])
    assert att is not None
    tag: tuple[Action, ...] = ()
    if att.vlan_vid is not None:
        tag = (PushVlan(), SetField("vlan_vid", att.vlan_vid))
    return (SetField("eth_src", gw.mac), SetField("eth_dst", gw.upstream_mac), DecNwTtl(),
            Ct(commit=True, zone=router.key, nat=Nat("src", source_ip)), *tag,
            Output(att.ofport))


def _to_routing(router: Router) -> tuple[Action, ...]:
    return (WriteMetadata(router_value(router.key), ROUTER_MASK), GotoTable(Table.ROUTING))


def nat_flows(view: SwitchView) -> list[FlowSpec]:
    flows: list[FlowSpec] = []
    for router in view.placed_routers:
        if not view.gateway_active(router):
            continue
        gw = router.gateway
        assert gw is not None
        cookie = cookie_for(CookieKind.ROUTER, router.id)
        active = view.is_active(router)
        active_cookie = cookie_for(CookieKind.ROUTER_ACTIVE, router.id)
        external = view.networks[gw.network_id]
        from_outside = dict(metadata=(external.key, NETWORK_MASK), eth_dst=gw.mac,
                            eth_type=ETH_TYPE_IP)
        # Egress: router SNAT.
        snat = _egress(view, router, gw.ip)
        if snat is not None and gw.enable_snat:
            for iface in ipv4_interfaces(router):
                flows.append(FlowSpec(Table.ROUTING, PRIO_SNAT_EGRESS,
                                      router_match(router, ipv4_src=cidr_match(iface.cidr)),
                                      snat, cookie))
        # Ingress: replies to the gateway address.
        if active:
            flows.append(FlowSpec(Table.L3_ENTRY, PRIO_EXTERNAL_INGRESS,
                                  Match(from_outside, ipv4_dst=gw.ip),
                                  (Ct(zone=router.key, table=Table.POST_NAT, nat=Nat()),),
                                  active_cookie))
        # Conntrack results, back into ROUTING.
        ct_match = dict(ct_zone=router.key, eth_type=ETH_TYPE_IP)
        flows.append(FlowSpec(Table.POST_NAT, PRIO_POST_NAT_EST,
                              Match(ct_match, ct_state=(CT_TRK | CT_EST, CT_TRK | CT_EST)),
                              _to_routing(router), cookie))
        flows.append(FlowSpec(Table.POST_NAT, PRIO_POST_NAT_REL,
                              Match(ct_match, ct_state=(CT_TRK | CT_REL, CT_TRK | CT_REL)),
                              _to_routing(router), cookie))
        # Floating IPs.
        for fip in view.floating_ips_of(router):
            fip_cookie = cookie_for(CookieKind.FLOATING_IP, fip.id)
            if active:
                flows.append(FlowSpec(
                    Table.L3_ENTRY, PRIO_EXTERNAL_INGRESS,
                    Match(from_outside, ipv4_dst=fip.floating_ip),
                    (Ct(commit=True, zone=router.key, table=Table.POST_NAT,
                        nat=Nat("dst", fip.fixed_ip)),),
                    active_cookie))
            flows.append(FlowSpec(
                Table.POST_NAT, PRIO_POST_NAT_FIP_NEW,
                Match(ct_match, ct_state=(CT_TRK | CT_NEW, CT_TRK | CT_NEW),
                      ipv4_dst=fip.fixed_ip),
                _to_routing(router), fip_cookie))
            egress = _egress(view, router, fip.floating_ip)
            if egress is not None:
                flows.append(FlowSpec(Table.ROUTING, PRIO_FIP_EGRESS,
                                      router_match(router, ipv4_src=fip.fixed_ip),
                                      egress, fip_cookie))
    return flows
