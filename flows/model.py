"""The input of the flow compiler: a plain, immutable snapshot of the cloud's network state.

This module is the contract between the controller (which builds a :class:`Snapshot` from the
database and from the switches' port descriptions) and the pure ``flows`` package (which turns
it into flow specs). Nothing here knows about SQL or OpenFlow messages: every class is a frozen
dataclass of plain values, so a snapshot can be hashed, compared and built by hand in tests.

Fields (all ids are the Neutron UUID strings unless noted):

``Network(id, key, tenant_id, network_type, physical_network, segmentation_id, external)``
    ``key`` is a small unique positive int per network (1 .. 2**24-1). It is the OpenFlow
    ``metadata`` value that says "this packet belongs to that network" inside the pipeline.
    ``network_type`` is ``'vlan'`` (tagged with ``segmentation_id`` on the physnet's uplink) or
    ``'flat'`` (untagged). An ``external`` network is flat and only exists on the
    ``external_port`` of switches that host routers; other flat networks use the physnet uplink.

``Subnet(id, network_id, cidr, gateway_ip)``

``Port(id, network_id, mac, fixed_ips, device_owner, device_id, port_security_enabled,
admin_state_up, security_group_ids, allowed_address_pairs)``
    ``fixed_ips`` is a tuple of ``(subnet_id, ip)``. The port's OVS interface is
    ``tap_name(port.id)``. Ports owned by the network itself (``device_owner`` starting with
    ``network:``, e.g. the DHCP port) are trusted: port security is not applied to them, as in
    Neutron. Router interface / gateway / floating IP ports have no tap; they are implemented by
    the router's flows.

    ``security_group_ids`` is a tuple of :class:`SecurityGroup` ids, or None. None (the
    default) means "no firewall": the snapshot does not manage security groups for this port,
    which is how snapshots from before security groups keep working. A tuple, even an empty
    one, turns the stateful firewall on for the port (when it has port security and is not
    trusted): only what the groups' rules allow passes, so ``()`` denies everything but DHCP,
    as in Neutron. Ports without port security carry None (or ``()``): they are never
    filtered.

    ``allowed_address_pairs`` is a tuple of ``(ip_or_cidr, mac_or_None)``: besides its fixed
    IPs, the port may send IPv4 (and ARP) from these addresses, with ``mac`` or, when None, its
    own MAC. Pair addresses count as members' addresses for remote-group rules. IPv6 pairs are
    ignored.

``Router(id, key, tenant_id, interfaces, gateway, host_dpid, routes, standby_dpids)``
    ``key`` is a small unique positive int (1 .. 65535): the conntrack zone of the router and
    the router bits of the metadata while a packet is being routed. Keys below 0x8000 keep
    clear of the firewall's per-port zones (flows/zones.py). ``host_dpid`` is the switch
    whose L3 agent hosts the router, where it is *active* (None: not active anywhere).
    ``standby_dpids`` are the switches whose L3 agents hold it on standby (HA routers; empty
    for the others): each gets every flow of the router except the active-only ones (cookie
    ROUTER_ACTIVE), so that a switchover changes only those. A router that is neither active
    nor on standby anywhere has no flows at all (not even L2 entries for its MACs). No
    duplicates in ``standby_dpids``, and ``host_dpid`` is not among them.
    ``routes`` are Neutron's extra routes, a tuple of ``(destination cidr, nexthop ip)``: the
    router forwards packets for the destination to the port that holds the nexthop address
    on one of its interfaces' subnets (IPv4 only; others are ignored).

``RouterInterface(port_id, subnet_id, network_id, ip, mac, cidr)``

``RouterGateway(port_id, network_id, ip, mac, cidr, upstream_ip, upstream_mac, enable_snat)``
    ``network_id`` is the external flat network; ``upstream_ip`` is the external subnet's
    gateway; ``upstream_mac`` is learnt by the controller through ARP (None until known: no
    SNAT/floating-IP egress flows are emitted without it).

``FloatingIP(id, floating_ip, floating_network_id, router_id, fixed_ip, port_id)``
    Only associated floating IPs are passed.

``Switch(dpid, ports, uplinks, external_port)``
    ``ports`` maps OVS interface names to OpenFlow port numbers as seen in the switch's port
    descriptions; ``uplinks`` maps physical_network to the uplink's interface name (from the
    configuration's bridge_mappings, default ``{'physnet1': 'uplink'}``); ``external_port`` is
    the external interface name (e.g. ``'ext0'``) on switches with an L3 agent, else None. The
    external network is always flat: its traffic uses ``external_port`` untagged.

``SecurityGroup(id, rules)`` and ``SecurityGroupRule(id, direction, ethertype, protocol,
port_range_min, port_range_max, remote_ip_prefix, remote_group_id)``
    As in Neutron. ``direction`` is :class:`Direction` (``'ingress'``: towards the port,
    ``'egress'``: from it), ``ethertype`` :class:`Ethertype` (``'IPv4'``; ``'IPv6'`` rules are
    kept but ignored by the IPv4-only pipeline). ``protocol`` is None (any) or an IP protocol
    number 0..255 (0 also means any; tcp 6, udp 17, icmp 1). For tcp and udp,
    ``port_range_min``/``port_range_max`` bound the destination port (both None: every port;
    one alone: that single port); for icmp they are the ICMP type and code (None: any; a code
    needs a type); for other protocols they must be None. ``remote_ip_prefix`` (a CIDR) or
    ``remote_group_id`` (a group whose members' fixed IPs and pair addresses qualify), at most
    one of the two; neither means any address. Rules only allow; what no rule allows is
    dropped, connection by connection (replies of an allowed connection always pass). A
    rule's ``id`` does not reach the switch: conjunction ids come from (direction, group,
    remote).

``Snapshot(networks, subnets, ports, routers, floating_ips, switches, port_locations,
security_groups)``
    ``port_locations`` maps a port id to the dpid of the switch on which its tap was seen.
    ``security_groups`` holds every group a port of the snapshot refers to (by id, directly
    or as a rule's remote group); an unknown group id counts as a group without rules.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

NetworkType = Literal["vlan", "flat"]

#: Neutron device owners the pipeline cares about.
OWNER_COMPUTE_PREFIX = "compute:"
OWNER_DHCP = "network:dhcp"
OWNER_ROUTER_INTERFACE = "network:router_interface"
OWNER_ROUTER_GATEWAY = "network:router_gateway"
OWNER_FLOATINGIP = "network:floatingip"
#: Ports implemented by router flows, never by a tap.
ROUTER_OWNED = frozenset({OWNER_ROUTER_INTERFACE, OWNER_ROUTER_GATEWAY, OWNER_FLOATINGIP})

def tap_name(port_id: str) -> str:
    """The OVS interface name of a Neutron port: ``'tap'`` + the first 11 characters of its id."""
    return "tap" + port_id[:11]


class FrozenMap(Mapping):
    """A read-only, hashable, picklable mapping (a snapshot must not change under us)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping | None = None) -> None:
        object.__setattr__(self, "_data", dict(data or {}))

    @classmethod
    def over(cls, data: dict) -> FrozenMap:
        """A read-only view of ``data``, without a copy: for a caller that does not change
        ``data`` while the view is in use (a large map rebuilt for every change would cost
        more than the change)."""
        view = cls.__new__(cls)
        object.__setattr__(view, "_data", data)
        return view

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("FrozenMap is immutable")

    def __getitem__(self, key):
        return self._data[key]

    def get(self, key, default=None):  # the dict's own: Mapping.get costs two Python calls
        return self._data.get(key, default)

    def __contains__(self, key) -> bool:
        return key in self._data

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._data) == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"

    def __reduce__(self):
        return (FrozenMap, (self._data,))


def _frozen_mapping(value: Mapping) -> Mapping:
    return value if isinstance(value, FrozenMap) else FrozenMap(value)


DEFAULT_UPLINKS: Mapping[str, str] = FrozenMap({"physnet1": "uplink"})


@dataclass(frozen=True)
class Network:
    id: str
    key: int
    tenant_id: str
    network_type: NetworkType
    physical_network: str | None
    segmentation_id: int | None
    external: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.key < 1 << 24:
            raise ValueError(f"network {self.id}: key {self.key} out of range 1..2**24-1")
        if self.network_type not in ("vlan", "flat"):
            raise ValueError(f"network {self.id}: unsupported type {self.network_type!r}")
        if self.network_type == "vlan" and not (
            self.segmentation_id is not None and 1 <= self.segmentation_id <= 4094
        ):
            raise ValueError(f"network {self.id}: vlan needs segmentation_id 1..4094")


@dataclass(frozen=True)
class Subnet:
    id: str
    network_id: str
    cidr: str
    gateway_ip: str | None = None


class Direction(StrEnum):
    INGRESS = "ingress"
    EGRESS = "egress"


class Ethertype(StrEnum):
    IPV4 = "IPv4"
    IPV6 = "IPv6"


#: IP protocols whose rules may give a destination port range.
PORT_PROTOCOLS = frozenset({6, 17})
IP_PROTO_ICMP = 1


@dataclass(frozen=True)
class SecurityGroupRule:
    id: str
    direction: Direction
    ethertype: Ethertype = Ethertype.IPV4
    protocol: int | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "direction", Direction(self.direction))
        object.__setattr__(self, "ethertype", Ethertype(self.ethertype))
        if self.protocol is not None and not 0 <= self.protocol <= 255:
            raise ValueError(f"rule {self.id}: protocol {self.protocol} out of range 0..255")
        if self.protocol == 0:
            object.__setattr__(self, "protocol", None)
        low, high = self.port_range_min, self.port_range_max
        if low is not None or high is not None:
            limit = 255 if self.protocol == IP_PROTO_ICMP else 65535
            if self.protocol not in PORT_PROTOCOLS | {IP_PROTO_ICMP}:
                raise ValueError(f"rule {self.id}: a port range needs tcp, udp or icmp")
            for value in (low, high):
                if value is not None and not 0 <= value <= limit:
                    raise ValueError(f"rule {self.id}: {value} out of range 0..{limit}")
            if (self.protocol in PORT_PROTOCOLS and low is not None and high is not None
                    and low > high):
                raise ValueError(f"rule {self.id}: port_range_min > port_range_max")
            if self.protocol == IP_PROTO_ICMP and low is None:
                raise ValueError(f"rule {self.id}: an ICMP code needs an ICMP type")
        if self.remote_ip_prefix is not None and self.remote_group_id is not None:
            raise ValueError(f"rule {self.id}: remote_ip_prefix and remote_group_id exclude "
                             "each other")
        if self.remote_ip_prefix is not None:
            ipaddress.ip_network(self.remote_ip_prefix, strict=False)


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    rules: tuple[SecurityGroupRule, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))


@dataclass(frozen=True)
class Port:
    id: str
    network_id: str
    mac: str
    fixed_ips: tuple[tuple[str, str], ...] = ()
    device_owner: str = ""
    device_id: str = ""
    port_security_enabled: bool = True
    admin_state_up: bool = True
    security_group_ids: tuple[str, ...] | None = None
    allowed_address_pairs: tuple[tuple[str, str | None], ...] = ()

    def __post_init__(self) -> None:
        if self.security_group_ids is not None:
            object.__setattr__(self, "security_group_ids", tuple(self.security_group_ids))
        pairs = tuple((str(ip), None if mac is None else str(mac).lower())
                      for ip, mac in self.allowed_address_pairs)
        for ip, _mac in pairs:
            ipaddress.ip_network(ip, strict=False)
        object.__setattr__(self, "allowed_address_pairs", pairs)

    @property
    def ips(self) -> tuple[str, ...]:
        return tuple(ip for _subnet, ip in self.fixed_ips)

    @property
    def trusted(self) -> bool:
        """Owned by the network itself (DHCP, router): no port security, like Neutron."""
        return self.device_owner.startswith("network:")

    @property
    def router_owned(self) -> bool:
        return self.device_owner in ROUTER_OWNED

    @property
    def guarded(self) -> bool:
        """Port security applies: anti-spoofing (and the firewall, if it has groups)."""
        return self.port_security_enabled and not self.trusted

    @property
    def firewalled(self) -> bool:
        """The stateful firewall applies: guarded, and the snapshot manages its groups."""
        return self.guarded and self.security_group_ids is not None


@dataclass(frozen=True)
class RouterInterface:
    port_id: str
    subnet_id: str
    network_id: str
    ip: str
    mac: str
    cidr: str


@dataclass(frozen=True)
class RouterGateway:
    port_id: str
    network_id: str
    ip: str
    mac: str
    cidr: str
    upstream_ip: str | None = None
    upstream_mac: str | None = None
    enable_snat: bool = True


@dataclass(frozen=True)
class Router:
    id: str
    key: int
    tenant_id: str
    interfaces: tuple[RouterInterface, ...] = ()
    gateway: RouterGateway | None = None
    host_dpid: int | None = None
    routes: tuple[tuple[str, str], ...] = ()
    standby_dpids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.key < 1 << 16:
            raise ValueError(f"router {self.id}: key {self.key} out of range 1..65535")
        standby = tuple(self.standby_dpids)
        if not all(isinstance(d, int) and not isinstance(d, bool) for d in standby):
            raise ValueError(f"router {self.id}: standby_dpids must be ints: {standby!r}")
        if len(set(standby)) != len(standby):
            raise ValueError(f"router {self.id}: duplicate standby dpid in {standby!r}")
        if self.host_dpid is not None and self.host_dpid in standby:
            raise ValueError(f"router {self.id}: switch {self.host_dpid} is both active and "
                             "standby")
        object.__setattr__(self, "standby_dpids", standby)
        routes = tuple((str(cidr), str(nexthop)) for cidr, nexthop in self.routes)
        for cidr, nexthop in routes:
            ipaddress.ip_network(cidr, strict=False)
            ipaddress.ip_address(nexthop)
        object.__setattr__(self, "routes", routes)

    @property
    def placed_dpids(self) -> tuple[int, ...]:
        """The switches where the router has flows: where it is active, then its standbys."""
        active = () if self.host_dpid is None else (self.host_dpid,)
        return active + self.standby_dpids


@dataclass(frozen=True)
class FloatingIP:
    id: str
    floating_ip: str
    floating_network_id: str
    router_id: str
    fixed_ip: str
    port_id: str


@dataclass(frozen=True)
class Switch:
    dpid: int
    ports: Mapping[str, int] = field(default_factory=dict)
    uplinks: Mapping[str, str] = field(default_factory=lambda: DEFAULT_UPLINKS)
    external_port: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ports", _frozen_mapping(self.ports))
        object.__setattr__(self, "uplinks", _frozen_mapping(self.uplinks))

    def ofport(self, name: str | None) -> int | None:
        """The OpenFlow port number of an interface, None when the switch does not have it."""
        return None if name is None else self.ports.get(name)


@dataclass(frozen=True)
class Snapshot:
    networks: tuple[Network, ...] = ()
    subnets: tuple[Subnet, ...] = ()
    ports: tuple[Port, ...] = ()
    routers: tuple[Router, ...] = ()
    floating_ips: tuple[FloatingIP, ...] = ()
    switches: tuple[Switch, ...] = ()
    port_locations: Mapping[str, int] = field(default_factory=dict)
    security_groups: tuple[SecurityGroup, ...] = ()

    def __post_init__(self) -> None:
        for name in ("networks", "subnets", "ports", "routers", "floating_ips", "switches",
                     "security_groups"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        object.__setattr__(self, "port_locations", _frozen_mapping(self.port_locations))

    def switch(self, dpid: int) -> Switch | None:
        for sw in self.switches:
            if sw.dpid == dpid:
                return sw
        return None
