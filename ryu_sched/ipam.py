"""IPv4 address management, pure: CIDRs, gateways, allocation pools, picking free addresses.

Nothing here touches the database. The service layer hands in what is allocated (a set of
addresses) and gets back what to allocate, or a :mod:`ryu_sched.errors` exception carrying
Neutron's type name and status.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import itertools
import random
import re
import socket
from collections.abc import Iterable, Sequence
from typing import Any

from ryu_sched import errors

IPv4 = ipaddress.IPv4Address
Net4 = ipaddress.IPv4Network

MAC_PREFIX = "fa:16:3e"
_MAC_RE = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")


@dataclasses.dataclass(frozen=True, order=True)
class Pool:
    """An inclusive range of addresses."""

    first: IPv4
    last: IPv4

    @property
    def size(self) -> int:
        return int(self.last) - int(self.first) + 1

    def __contains__(self, ip: object) -> bool:
        return isinstance(ip, IPv4) and self.first <= ip <= self.last

    def overlaps(self, other: Pool) -> bool:
        return self.first <= other.last and other.first <= self.last

    def as_dict(self) -> dict[str, str]:
        return {"start": str(self.first), "end": str(self.last)}

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


def parse_ip(value: Any, field: str = "ip_address") -> IPv4:
    """An IPv4 address; IPv6 and garbage are 400."""
    if not isinstance(value, str):
        raise errors.InvalidInput(error_message=f"'{value}' is not a valid IP address "
                                  f"for {field}")
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        raise errors.InvalidInput(
            error_message=f"'{value}' is not a valid IP address for {field}") from None
    if not isinstance(ip, IPv4):
        raise errors.InvalidInput(error_message=f"IPv6 address {value} is not supported")
    return ip


def parse_cidr(value: Any, field: str = "cidr") -> Net4:
    """An IPv4 network in canonical form. Host bits set, IPv6 and garbage are 400."""
    if not isinstance(value, str) or "/" not in value:
        raise errors.InvalidInput(error_message=f"'{value}' is not a valid IP subnet "
                                  f"for {field}")
    try:
        net = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise errors.InvalidInput(
            error_message=f"'{value}' is not a valid IP subnet for {field}") from None
    if not isinstance(net, Net4):
        raise errors.InvalidInput(error_message="IPv6 subnets are not supported")
    if str(net) != value.strip():
        raise errors.InvalidInput(error_message=f"'{value}' isn't a recognized IP subnet "
                                  f"cidr, '{net}' is recommended")
    return net


def usable_range(net: Net4) -> Pool:
    """Addresses a port may hold: all but network and broadcast (all of a /31 or /32)."""
    if net.prefixlen >= 31:
        return Pool(net[0], net[-1])
    return Pool(net[1], net[-2])


def default_gateway(net: Net4) -> IPv4 | None:
    return None if net.prefixlen >= 31 else net[1]


#: Addresses no gateway can have: "this network", loopback, multicast, reserved/broadcast.
NOT_UNICAST: tuple[Net4, ...] = (Net4("0.0.0.0/8"), Net4("127.0.0.0/8"), Net4("224.0.0.0/4"),
                                 Net4("240.0.0.0/4"))


def validate_gateway(net: Net4, gateway: IPv4) -> None:
    """Inside the CIDR: a usable address (not the network or broadcast address). Outside it
    (an on-link gateway, as Neutron allows): any unicast address."""
    if gateway in net:
        if gateway not in usable_range(net):
            raise errors.InvalidInput(
                error_message=f"Gateway IP {gateway} is not a usable address of subnet {net}")
    elif any(gateway in reserved for reserved in NOT_UNICAST):
        raise errors.InvalidInput(
            error_message=f"Gateway IP {gateway} is not a unicast address")


def subtract(pools: Iterable[Pool], ip: IPv4) -> list[Pool]:
    """``pools`` without ``ip``, splitting the pool that holds it."""
    result: list[Pool] = []
    for pool in pools:
        if ip not in pool:
            result.append(pool)
            continue
        if pool.first < ip:
            result.append(Pool(pool.first, ip - 1))
        if ip < pool.last:
            result.append(Pool(ip + 1, pool.last))
    return result


def default_pools(net: Net4, gateway: IPv4 | None) -> list[Pool]:
    pools = [usable_range(net)]
    return subtract(pools, gateway) if gateway is not None else pools


def parse_pools(value: Any) -> list[Pool]:
    """``[{"start": ..., "end": ...}]`` -> pools (400 on shape or address errors)."""
    if not isinstance(value, list):
        raise errors.InvalidInput(error_message="allocation_pools must be a list")
    pools: list[Pool] = []
    for entry in value:
        if not isinstance(entry, dict) or set(entry) != {"start", "end"}:
            raise errors.InvalidInput(
                error_message=f"Invalid allocation pool {entry!r}: expected start and end")
        first = parse_ip(entry["start"], "allocation_pools")
        last = parse_ip(entry["end"], "allocation_pools")
        if first > last:
            raise errors.InvalidAllocationPool(pool=f"{first}-{last}")
        pools.append(Pool(first, last))
    return pools


def validate_pools(net: Net4, pools: Sequence[Pool], gateway: IPv4 | None) -> None:
    """Inside the usable range, not overlapping each other, not holding the gateway."""
    bounds = usable_range(net)
    for pool in pools:
        if pool.first not in bounds or pool.last not in bounds:
            raise errors.OutOfBoundsAllocationPool(pool=str(pool), subnet_cidr=str(net))
    ordered = sorted(pools)
    for left, right in itertools.pairwise(ordered):
        if left.overlaps(right):
            raise errors.OverlappingAllocationPools(pool_1=str(left), pool_2=str(right),
                                                    subnet_cidr=str(net))
    if gateway is not None:
        for pool in pools:
            if gateway in pool:
                raise errors.GatewayConflictWithAllocationPools(ip_address=str(gateway),
                                                                pool=str(pool))


def pools_from_dicts(value: Iterable[dict[str, str]]) -> list[Pool]:
    """Stored pools (already valid) back to :class:`Pool`."""
    return [Pool(IPv4(p["start"]), IPv4(p["end"])) for p in value]


def first_free(pools: Sequence[Pool], allocated: set[IPv4] | set[str]) -> IPv4 | None:
    """The lowest address of the pools not in ``allocated``; None when they are exhausted.

    Works on integers: parsing every taken address into an ``IPv4Address`` for each
    allocation made a bulk create of ports quadratic in Python time.
    """
    taken = {_as_int(a) for a in allocated}
    for pool in sorted(pools):
        ip, last = int(pool.first), int(pool.last)
        while ip <= last and ip in taken:
            ip += 1
        if ip <= last:
            return IPv4(ip)
    return None


def _as_int(address: IPv4 | str) -> int:
    if isinstance(address, str):
        try:
            return int.from_bytes(socket.inet_aton(address), "big")
        except OSError:
            return int(IPv4(address))
    return int(address)


def overlaps(a: Net4, b: Net4) -> bool:
    return a.overlaps(b)


def find_overlap(net: Net4, others: Iterable[tuple[str, str]]) -> tuple[str, str] | None:
    """The first ``(id, cidr)`` of ``others`` overlapping ``net``."""
    for other_id, cidr in others:
        if net.overlaps(ipaddress.IPv4Network(cidr)):
            return other_id, cidr
    return None


def validate_nameservers(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise errors.InvalidInput(error_message="dns_nameservers must be a list")
    result: list[str] = []
    for entry in value:
        ip = str(parse_ip(entry, "dns_nameservers"))
        if ip in result:
            raise errors.InvalidInput(error_message=f"Duplicate nameserver '{ip}'")
        result.append(ip)
    return result


def validate_host_routes(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise errors.InvalidInput(error_message="host_routes must be a list")
    result: list[dict[str, str]] = []
    for entry in value:
        if not isinstance(entry, dict) or set(entry) != {"destination", "nexthop"}:
            raise errors.InvalidInput(
                error_message=f"Invalid host route {entry!r}: expected destination, nexthop")
        route = {"destination": str(parse_cidr(entry["destination"], "host_routes")),
                 "nexthop": str(parse_ip(entry["nexthop"], "host_routes"))}
        if route in result:
            raise errors.InvalidInput(error_message=f"Duplicate hostroute '{route}'")
        result.append(route)
    return result


def normalize_mac(value: Any) -> str:
    if not isinstance(value, str) or not _MAC_RE.match(value):
        raise errors.InvalidInput(error_message=f"'{value}' is not a valid MAC address")
    mac = value.lower().replace("-", ":")
    first = int(mac[:2], 16)
    if first & 1 or mac == "00:00:00:00:00:00":
        raise errors.InvalidInput(error_message=f"'{value}' is not a valid unicast MAC "
                                  "address")
    return mac


def generate_mac(taken: set[str], rng: random.Random | None = None,
                 attempts: int = 64) -> str:
    """A random ``fa:16:3e:xx:xx:xx`` not in ``taken``."""
    rng = rng or random.SystemRandom()
    for _ in range(attempts):
        tail = ":".join(f"{rng.randrange(256):02x}" for _ in range(3))
        mac = f"{MAC_PREFIX}:{tail}"
        if mac not in taken:
            return mac
    raise errors.Conflict("Unable to generate a unique MAC address")
