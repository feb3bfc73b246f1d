"""A snapshot seen from one switch: which ports are local, where each network attaches.

The feature modules never walk the raw snapshot: they ask a :class:`SwitchView`, which
resolves names to OpenFlow port numbers once and decides, deterministically, what is local.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache

from .model import (
    FloatingIP,
    Network,
    Port,
    Router,
    RouterInterface,
    SecurityGroup,
    Snapshot,
    Subnet,
    Switch,
    tap_name,
)
from .spec import OFPVID_PRESENT
from .zones import firewall_zones


@dataclass(frozen=True)
class Attachment:
    """Where a network leaves this switch: an ofport, tagged with ``vlan_vid`` (present bit
    included) or untagged (``vlan_vid`` None)."""

    ofport: int
    vlan_vid: int | None


def is_ipv4(address: str) -> bool:
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=1 << 17)
def ipv4_network(address: str) -> ipaddress.IPv4Network | None:
    """An IPv4 address or CIDR as a network (host bits cleared), None for anything else."""
    try:
        net = ipaddress.ip_network(address, strict=False)
    except ValueError:
        return None
    return net if isinstance(net, ipaddress.IPv4Network) else None


def _network_order(net: ipaddress.IPv4Network) -> tuple[int, int]:
    """The order of ``sorted`` on networks (address, then mask), without comparing network
    objects pairwise (each comparison is Python code)."""
    return int(net.network_address), int(net.netmask)


@lru_cache(maxsize=1 << 17)
def address_match(net: ipaddress.IPv4Network) -> str | tuple[str, str]:
    """An IPv4 network as a match value: a plain address for a /32, else (address, mask)."""
    if net.prefixlen == 32:
        return str(net.network_address)
    return (str(net.network_address), str(net.netmask))


class SnapshotIndex:
    """What every switch's view looks up in one snapshot, built once per snapshot: the
    programmer computes all switches' flows from the same snapshot."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.networks = {n.id: n for n in snapshot.networks}
        self.subnets = {s.id: s for s in snapshot.subnets}
        self.ports = {p.id: p for p in snapshot.ports}
        self.sorted_ports = tuple(sorted(snapshot.ports, key=lambda p: p.id))
        self.ports_by_network: dict[str, list[Port]] = {}
        for port in self.sorted_ports:
            self.ports_by_network.setdefault(port.network_id, []).append(port)
        self._ports_at: tuple[object, dict[int, list[Port]]] | None = None
        self.routers = sorted(snapshot.routers, key=lambda r: r.id)
        self.placed_interfaces: dict[str, list[tuple[Router, RouterInterface]]] = {}
        for router in self.routers:
            if not router.placed_dpids:
                continue
            for iface in router.interfaces:
                self.placed_interfaces.setdefault(iface.network_id, []).append((router, iface))

    def ports_at(self, locations: Mapping[str, int]) -> dict[int, list[Port]]:
        """dpid -> the ports located there, in port order (for the last ``locations``
        asked: successive snapshots with the same model share this index)."""
        if self._ports_at is None or self._ports_at[0] is not locations:
            result: dict[int, list[Port]] = {}
            for port in self.sorted_ports:
                where = locations.get(port.id)
                if where is not None:
                    result.setdefault(where, []).append(port)
            self._ports_at = (locations, result)
        return self._ports_at[1]

    @cached_property
    def group_members(self) -> dict[str, tuple[ipaddress.IPv4Network, ...]]:
        members: dict[str, set[ipaddress.IPv4Network]] = {}
        for port in self.sorted_ports:
            if not port.security_group_ids:
                continue
            nets = {ipv4_network(ip) for ip in port.ips}
            nets.update(ipv4_network(ip) for ip, _mac in port.allowed_address_pairs)
            nets.discard(None)
            for group_id in port.security_group_ids:
                members.setdefault(group_id, set()).update(nets)  # type: ignore[arg-type]
        return {g: tuple(sorted(nets, key=_network_order)) for g, nets in members.items()}

    @cached_property
    def memo(self) -> dict[object, object]:
        """What the feature modules derive from this index alone (all switches share it)."""
        return {}

    @cached_property
    def hosts_by_subnet(self) -> dict[str, list[tuple[str, Port]]]:
        result: dict[str, list[tuple[str, Port]]] = {}
        for port in self.sorted_ports:
            if port.router_owned or not port.admin_state_up:
                continue
            for sid, ip in port.fixed_ips:
                if is_ipv4(ip):
                    result.setdefault(sid, []).append((ip, port))
        for hosts in result.values():
            hosts.sort(key=lambda item: (ipaddress.IPv4Address(item[0]), item[1].id))
        return result


_last_index: tuple[tuple[object, ...], SnapshotIndex] | None = None


def index_of(snapshot: Snapshot) -> SnapshotIndex:
    """The index of ``snapshot``. The last one built is kept and reused for any snapshot made
    of the same (identical) parts it was built from: all switches of one sync share one
    snapshot, and successive snapshots that differ only in their switches or port
    locations share their parts."""
    global _last_index
    parts = (snapshot.networks, snapshot.subnets, snapshot.ports, snapshot.routers)
    if _last_index is None or any(a is not b for a, b in zip(_last_index[0], parts,
                                                             strict=True)):
        _last_index = (parts, SnapshotIndex(snapshot))
    return _last_index[1]


class SwitchView:
    def __init__(self, snapshot: Snapshot, dpid: int) -> None:
        self.snapshot = snapshot
        self.dpid = dpid
        switch = snapshot.switch(dpid)
        self.switch = switch if switch is not None else Switch(dpid=dpid, ports={}, uplinks={})
        self.index = index_of(snapshot)
        self.networks = self.index.networks
        self.subnets = self.index.subnets
        self.ports = self.index.ports

    # ------------------------------------------------------------------- ports
    @property
    def _sorted_ports(self) -> tuple[Port, ...]:
        return self.index.sorted_ports

    @property
    def _ports_by_network(self) -> dict[str, list[Port]]:
        return self.index.ports_by_network

    @property
    def _hosts_by_subnet(self) -> dict[str, list[tuple[str, Port]]]:
        return self.index.hosts_by_subnet

    def sorted_ports(self) -> tuple[Port, ...]:
        return self._sorted_ports

    def local_ofport(self, port: Port) -> int | None:
        """The ofport of a port's tap when it is up and bound here, else None."""
        if not port.admin_state_up or port.router_owned:
            return None
        if self.snapshot.port_locations.get(port.id) != self.dpid:
            return None
        return self.switch.ofport(tap_name(port.id))

    def is_remote(self, port: Port) -> bool:
        """Up and bound on another switch (reachable through this switch's uplink)."""
        location = self.snapshot.port_locations.get(port.id)
        return (port.admin_state_up and not port.router_owned
                and location is not None and location != self.dpid)

    @cached_property
    def local_ports(self) -> dict[str, int]:
        """port id -> ofport for every port whose tap is up on this switch."""
        result = {}
        ports_at = self.index.ports_at(self.snapshot.port_locations)
        for port in ports_at.get(self.dpid, ()):  # in port order, as sorted_ports
            ofport = self.local_ofport(port)
            if ofport is not None and port.network_id in self.networks:
                result[port.id] = ofport
        return result

    # ---------------------------------------------------------------- networks
    def attachment(self, network: Network) -> Attachment | None:
        """How ``network`` leaves this switch towards other hosts or the outside world."""
        if network.external:
            ofport = self.switch.ofport(self.switch.external_port)
            return None if ofport is None else Attachment(ofport, None)
        if network.physical_network is None:
            return None
        ofport = self.switch.ofport(self.switch.uplinks.get(network.physical_network))
        if ofport is None:
            return None
        if network.network_type == "vlan":
            assert network.segmentation_id is not None
            return Attachment(ofport, OFPVID_PRESENT | network.segmentation_id)
        return Attachment(ofport, None)

    @cached_property
    def placed_routers(self) -> list[Router]:
        """Routers active or on standby here: they get every flow but the active-only ones."""
        return [r for r in self.index.routers if self.dpid in r.placed_dpids]

    @cached_property
    def active_routers(self) -> list[Router]:
        """Routers active here (``host_dpid``): they also get their active-only flows (cookie
        ROUTER_ACTIVE), by which the switch answers for them and admits their traffic."""
        return [r for r in self.placed_routers if self.is_active(r)]

    def is_active(self, router: Router) -> bool:
        return router.host_dpid == self.dpid

    @property
    def routers(self) -> list[Router]:
        return self.index.routers

    def placed_interfaces(self, network_id: str) -> list[tuple[Router, RouterInterface]]:
        """(router, interface) on ``network_id`` of every router placed (active or on
        standby) on some switch, in router order."""
        return self.index.placed_interfaces.get(network_id, [])

    def gateway_active(self, router: Router) -> bool:
        """The router's gateway is usable here: external port present, network known."""
        gw = router.gateway
        if gw is None or gw.network_id not in self.networks or not is_ipv4(gw.ip):
            return False
        return self.attachment(self.networks[gw.network_id]) is not None

    @cached_property
    def present_networks(self) -> list[Network]:
        """Networks this switch carries: those with a local port, those attached to a router
        placed here, active or on standby (interfaces, and the gateway's external network)."""
        ids = {self.ports[pid].network_id for pid in self.local_ports}
        for router in self.placed_routers:
            ids.update(i.network_id for i in router.interfaces)
            if self.gateway_active(router):
                assert router.gateway is not None
                ids.add(router.gateway.network_id)
        return sorted((self.networks[i] for i in ids if i in self.networks), key=lambda n: n.id)

    def ports_of(self, network_id: str) -> Iterator[Port]:
        return iter(self._ports_by_network.get(network_id, ()))

    # ------------------------------------------------------------------ layer 3
    def subnet(self, subnet_id: str) -> Subnet | None:
        return self.subnets.get(subnet_id)

    def hosts_in_subnet(self, subnet_id: str) -> list[tuple[str, Port]]:
        """(ip, port) of every up, non-router port with a fixed IPv4 on ``subnet_id``."""
        return list(self._hosts_by_subnet.get(subnet_id, ()))

    def floating_ips_of(self, router: Router) -> list[FloatingIP]:
        return sorted((f for f in self.snapshot.floating_ips
                       if f.router_id == router.id and f.port_id in self.ports
                       and is_ipv4(f.floating_ip) and is_ipv4(f.fixed_ip)),
                      key=lambda f: f.id)

    # ---------------------------------------------------------------- firewall
    @cached_property
    def firewall_zones(self) -> dict[str, int]:
        """port id -> conntrack zone of every firewalled port up on this switch."""
        firewalled = {pid: ofport for pid, ofport in self.local_ports.items()
                      if self.ports[pid].firewalled}
        return firewall_zones(firewalled, {r.key for r in self.placed_routers})

    @cached_property
    def security_groups(self) -> dict[str, SecurityGroup]:
        return {g.id: g for g in self.snapshot.security_groups}

    def group_members(self, group_id: str) -> tuple[ipaddress.IPv4Network, ...]:
        """The IPv4 addresses (fixed IPs, as /32, and allowed address pairs) of every port in
        the group, wherever it is bound: what a remote-group rule admits."""
        return self.index.group_members.get(group_id, ())
