"""One vocabulary for the whole project: agent types, device owners, hosted kinds, tap names.

The pure ``flows`` package keeps its own copy of the few names it needs (it imports nothing of
ours); ``tests/unit/test_vocabulary.py`` asserts that the copies agree with this module.
"""

from __future__ import annotations

import enum


class AgentType(enum.StrEnum):
    """Neutron's ``agent_type`` strings, as agents report them."""

    DHCP = "DHCP agent"
    L3 = "L3 agent"


class HostedKind(enum.StrEnum):
    """What an agent hosts: a DHCP agent hosts networks, an L3 agent routers."""

    NETWORK = "network"
    ROUTER = "router"

    @property
    def agent_type(self) -> AgentType:
        return AgentType.DHCP if self is HostedKind.NETWORK else AgentType.L3

    @classmethod
    def of_agent_type(cls, agent_type: str) -> HostedKind:
        return cls.NETWORK if agent_type == AgentType.DHCP else cls.ROUTER


class DeviceOwner(enum.StrEnum):
    """Neutron ``device_owner`` values the controller and the agents treat specially."""

    DHCP = "network:dhcp"
    ROUTER_INTERFACE = "network:router_interface"
    ROUTER_INTERFACE_DISTRIBUTED = "network:router_interface_distributed"
    ROUTER_HA_INTERFACE = "network:ha_router_replicated_interface"
    ROUTER_GATEWAY = "network:router_gateway"
    FLOATINGIP = "network:floatingip"


#: Owners whose ports are a router's interfaces.
ROUTER_INTERFACE_OWNERS = frozenset({DeviceOwner.ROUTER_INTERFACE,
                                     DeviceOwner.ROUTER_INTERFACE_DISTRIBUTED,
                                     DeviceOwner.ROUTER_HA_INTERFACE})
#: Ports implemented by router flows, never by a tap on a switch.
ROUTER_OWNED = frozenset({DeviceOwner.ROUTER_INTERFACE, DeviceOwner.ROUTER_GATEWAY,
                          DeviceOwner.FLOATINGIP})
#: Owners of the network itself (trusted: no port security), as Neutron's prefix rule.
NETWORK_OWNER_PREFIX = "network:"
COMPUTE_OWNER_PREFIX = "compute:"

#: Neutron's convention for the OVS interface of a port: this prefix + 11 characters of its id.
TAP_PREFIX = "tap"
TAP_ID_CHARS = 11
#: The namespace end of a DHCP agent's veth.
NAMESPACE_PORT_PREFIX = "ns-"


def tap_name(port_id: str) -> str:
    """The OVS interface name of a Neutron port: ``'tap'`` + the first 11 characters of its id."""
    return TAP_PREFIX + port_id[:TAP_ID_CHARS]


def namespace_port_name(port_id: str) -> str:
    """The inner (namespace) end of the veth whose outer end is :func:`tap_name`."""
    return NAMESPACE_PORT_PREFIX + port_id[:TAP_ID_CHARS]


def dhcp_device_id(network_id: str, host: str) -> str:
    """The ``device_id`` of the DHCP port of ``network_id`` served from ``host``."""
    return f"dhcp-{host}-{network_id}"[:255]


# --- HA gateways: the lease and the fence (docs/ha.md, "Detection and fencing") ---------------

#: Bits 63..56 of a flow cookie name its kind (``flows.cookies.CookieKind``); the kind of the
#: flows by which a gateway answers for a router it is active for (ARP replies, admission of
#: traffic for the router's MACs). Deleting every flow with this kind silences the gateway.
ROUTER_ACTIVE_COOKIE_KIND = 0x08
COOKIE_KIND_SHIFT = 56
COOKIE_KIND_MASK = 0xFF << COOKIE_KIND_SHIFT
ROUTER_ACTIVE_COOKIE = ROUTER_ACTIVE_COOKIE_KIND << COOKIE_KIND_SHIFT
#: ``ovs-ofctl``'s spelling of "every ROUTER_ACTIVE flow": cookie/mask.
ROUTER_ACTIVE_COOKIE_MATCH = f"cookie=0x{ROUTER_ACTIVE_COOKIE:016x}/0x{COOKIE_KIND_MASK:016x}"


class GatewayRpc(enum.StrEnum):
    """The agent RPC method that renews an L3 agent's gateway lease, and the error type a
    controller that does not lead answers it with (the agent tries the next controller)."""

    KEEPALIVE = "gateway_keepalive"
    NOT_LEADING = "NotLeading"
