"""The pure ``flows`` package keeps its own copy of the names it needs (it imports nothing of
ours): it must agree with the one vocabulary in ``ryu_sched.shared.vocabulary``."""

from __future__ import annotations

from ryu_sched.events import Action, from_wire
from ryu_sched.flows import model as fm
from ryu_sched.shared import vocabulary as v


def test_flows_device_owners_agree_with_the_vocabulary():
    assert fm.OWNER_DHCP == v.DeviceOwner.DHCP
    assert fm.OWNER_ROUTER_INTERFACE == v.DeviceOwner.ROUTER_INTERFACE
    assert fm.OWNER_ROUTER_GATEWAY == v.DeviceOwner.ROUTER_GATEWAY
    assert fm.OWNER_FLOATINGIP == v.DeviceOwner.FLOATINGIP
    assert fm.ROUTER_OWNED == v.ROUTER_OWNED
    assert fm.OWNER_COMPUTE_PREFIX == v.COMPUTE_OWNER_PREFIX


def test_flows_tap_names_agree_with_the_vocabulary():
    port_id = "0123456789abcdef-0123-4567-89ab-cdef01234567"
    assert fm.tap_name(port_id) == v.tap_name(port_id) == "tap0123456789a"
    assert v.namespace_port_name(port_id) == "ns-0123456789a"


def test_hosted_kinds_and_agent_types_map_both_ways():
    for kind in v.HostedKind:
        assert v.HostedKind.of_agent_type(kind.agent_type) is kind
    assert v.HostedKind.NETWORK.agent_type == "DHCP agent"
    assert v.HostedKind.ROUTER.agent_type == "L3 agent"


def test_dhcp_device_id_is_bounded():
    assert v.dhcp_device_id("n1", "h1") == "dhcp-h1-n1"
    assert len(v.dhcp_device_id("n" * 36, "h" * 300)) == 255


def test_enums_come_back_from_the_wire_as_enums():
    from ryu_sched.events import BindingChanged

    event = BindingChanged(kind=v.HostedKind.ROUTER, object_id="r", agent_id="a", host="h",
                           bound=True, datapath_id="00000000000000aa")
    back = from_wire(event.to_wire())
    assert back == event and back.kind is v.HostedKind.ROUTER
    assert from_wire({"event": "network", "action": "create", "network_id": "n"}).action \
        is Action.CREATE


def test_router_active_cookie_is_the_flows_cookie_kind():
    """The agent's fence deletes by this cookie/mask: it must name the flows' ROUTER_ACTIVE
    kind (``flows.cookies.CookieKind.ROUTER_ACTIVE``, 0x08 in bits 63..56)."""
    from ryu_sched.flows import cookies

    assert v.ROUTER_ACTIVE_COOKIE_KIND == 0x08
    assert v.COOKIE_KIND_SHIFT == cookies.IDENT_BITS
    assert v.COOKIE_KIND_MASK == cookies.KIND_MASK == 0xFF00000000000000
    assert v.ROUTER_ACTIVE_COOKIE == 0x0800000000000000
    kind = getattr(cookies.CookieKind, "ROUTER_ACTIVE", None)
    if kind is not None:        # once the flows' HA cookie kind exists (branch haflows)
        assert int(kind) == v.ROUTER_ACTIVE_COOKIE_KIND
        assert cookies.cookie_for(kind, "r1") & v.COOKIE_KIND_MASK == v.ROUTER_ACTIVE_COOKIE
