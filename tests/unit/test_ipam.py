"""IPAM and VLAN segments: pure functions, no database."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ryu_sched import errors, ipam, segments

IP = ipaddress.IPv4Address


def test_cidr_is_canonical_ipv4():
    assert str(ipam.parse_cidr("10.0.0.0/24")) == "10.0.0.0/24"


@pytest.mark.parametrize("bad", ["10.0.0.1/24", "10.0.0.0/33", "nonsense", "10.0.0.0",
                                 "2001:db8::/64", 42, None])
def test_invalid_cidrs_are_400(bad):
    with pytest.raises(errors.BadRequest):
        ipam.parse_cidr(bad)


def test_host_bits_set_suggests_the_network():
    with pytest.raises(errors.InvalidInput, match=r"10\.0\.0\.0/24"):
        ipam.parse_cidr("10.0.0.1/24")


def test_default_gateway_is_first_host_and_pools_skip_it():
    net = ipam.parse_cidr("192.168.1.0/24")
    gateway = ipam.default_gateway(net)
    assert gateway == IP("192.168.1.1")
    pools = ipam.default_pools(net, gateway)
    assert [p.as_dict() for p in pools] == [{"start": "192.168.1.2", "end": "192.168.1.254"}]


def test_gateway_in_the_middle_splits_the_default_pool():
    net = ipam.parse_cidr("10.0.0.0/29")
    pools = ipam.default_pools(net, IP("10.0.0.4"))
    assert [str(p) for p in pools] == ["10.0.0.1-10.0.0.3", "10.0.0.5-10.0.0.6"]


def test_no_gateway_gives_the_whole_usable_range():
    net = ipam.parse_cidr("10.0.0.0/30")
    assert [str(p) for p in ipam.default_pools(net, None)] == ["10.0.0.1-10.0.0.2"]


@pytest.mark.parametrize("gateway", ["10.0.0.0", "10.0.0.255", "0.0.0.1", "127.0.0.1",
                                     "224.0.0.1", "255.255.255.255"])
def test_gateway_must_be_a_usable_address_of_the_subnet_or_unicast_outside(gateway):
    with pytest.raises(errors.InvalidInput):
        ipam.validate_gateway(ipam.parse_cidr("10.0.0.0/24"), IP(gateway))


@pytest.mark.parametrize("gateway", ["10.0.1.1", "192.0.2.1", "10.0.0.1"])
def test_a_gateway_outside_the_subnet_is_accepted_as_neutron_does(gateway):
    net = ipam.parse_cidr("10.0.0.0/24")
    ipam.validate_gateway(net, IP(gateway))
    pools = ipam.default_pools(net, IP(gateway))
    ipam.validate_pools(net, pools, IP(gateway))
    assert sum(p.size for p in pools) == 254 - (IP(gateway) in net)


def test_pool_outside_cidr_is_400():
    net = ipam.parse_cidr("10.0.0.0/24")
    pools = ipam.parse_pools([{"start": "10.0.0.10", "end": "10.0.1.5"}])
    with pytest.raises(errors.OutOfBoundsAllocationPool) as info:
        ipam.validate_pools(net, pools, None)
    assert info.value.status == 400


def test_overlapping_pools_are_409():
    net = ipam.parse_cidr("10.0.0.0/24")
    pools = ipam.parse_pools([{"start": "10.0.0.10", "end": "10.0.0.20"},
                              {"start": "10.0.0.20", "end": "10.0.0.30"}])
    with pytest.raises(errors.OverlappingAllocationPools) as info:
        ipam.validate_pools(net, pools, None)
    assert info.value.status == 409


def test_pool_containing_gateway_conflicts():
    net = ipam.parse_cidr("10.0.0.0/24")
    pools = ipam.parse_pools([{"start": "10.0.0.1", "end": "10.0.0.20"}])
    with pytest.raises(errors.GatewayConflictWithAllocationPools):
        ipam.validate_pools(net, pools, IP("10.0.0.1"))


@pytest.mark.parametrize("pools", [
    [{"start": "10.0.0.20", "end": "10.0.0.10"}],
    [{"start": "10.0.0.1"}],
    [{"start": "10.0.0.1", "end": "fe80::1"}],
    "10.0.0.1-10.0.0.5",
])
def test_malformed_pools_are_400(pools):
    with pytest.raises(errors.BadRequest):
        ipam.parse_pools(pools)


def test_first_free_skips_allocated_and_moves_to_next_pool():
    pools = ipam.parse_pools([{"start": "10.0.0.2", "end": "10.0.0.3"},
                              {"start": "10.0.0.10", "end": "10.0.0.11"}])
    assert ipam.first_free(pools, {"10.0.0.2"}) == IP("10.0.0.3")
    assert ipam.first_free(pools, {"10.0.0.2", "10.0.0.3"}) == IP("10.0.0.10")
    assert ipam.first_free(pools, {"10.0.0.2", "10.0.0.3", "10.0.0.10", "10.0.0.11"}) is None


def test_first_free_is_fast_on_a_large_mostly_full_pool():
    net = ipam.parse_cidr("10.0.0.0/16")
    pools = ipam.default_pools(net, ipam.default_gateway(net))
    taken = {str(IP("10.0.0.2") + i) for i in range(20000)}
    assert ipam.first_free(pools, taken) == IP("10.0.0.2") + 20000


@given(st.integers(min_value=16, max_value=30), st.data())
def test_allocation_never_returns_taken_or_out_of_pool(prefix, data):
    net = ipaddress.IPv4Network(f"10.0.0.0/{prefix}")
    pools = ipam.default_pools(net, ipam.default_gateway(net))
    usable = ipam.usable_range(net)
    count = data.draw(st.integers(min_value=0, max_value=min(50, usable.size)))
    taken = {str(usable.first + i) for i in
             data.draw(st.sets(st.integers(0, usable.size - 1), max_size=count))}
    ip = ipam.first_free(pools, taken)
    if ip is not None:
        assert str(ip) not in taken
        assert any(ip in p for p in pools)
        assert ip != ipam.default_gateway(net)


def test_subnet_overlap_detection():
    net = ipam.parse_cidr("10.0.0.0/16")
    assert ipam.find_overlap(net, [("a", "192.168.0.0/24"), ("b", "10.0.5.0/24")]) == \
        ("b", "10.0.5.0/24")
    assert ipam.find_overlap(net, [("a", "10.1.0.0/16")]) is None


def test_nameservers_and_host_routes_validated():
    assert ipam.validate_nameservers(["8.8.8.8"]) == ["8.8.8.8"]
    with pytest.raises(errors.InvalidInput):
        ipam.validate_nameservers(["8.8.8.8", "8.8.8.8"])
    with pytest.raises(errors.InvalidInput):
        ipam.validate_nameservers(["dns.example"])
    routes = [{"destination": "0.0.0.0/0", "nexthop": "10.0.0.254"}]
    assert ipam.validate_host_routes(routes) == routes
    with pytest.raises(errors.InvalidInput):
        ipam.validate_host_routes([{"destination": "10.0.0.1/8", "nexthop": "10.0.0.254"}])


def test_generated_macs_use_the_openstack_prefix_and_avoid_taken():
    taken = {"fa:16:3e:00:00:01"}
    mac = ipam.generate_mac(taken)
    assert mac.startswith("fa:16:3e:") and mac not in taken
    assert ipam.normalize_mac("FA-16-3E-AA-BB-CC") == "fa:16:3e:aa:bb:cc"
    for bad in ("01:00:5e:00:00:01", "zz:16:3e:aa:bb:cc", "fa:16:3e"):
        with pytest.raises(errors.InvalidInput):
            ipam.normalize_mac(bad)


RANGES = {"physnet1": [(100, 102)], "extnet": []}


def test_vlan_allocated_lowest_free_and_requested_checked():
    seg = segments.resolve_request(None, None, None, RANGES)
    assert segments.allocate_vlan(seg, RANGES, {100}).segmentation_id == 101
    wanted = segments.resolve_request("vlan", "physnet1", 102, RANGES)
    assert segments.allocate_vlan(wanted, RANGES, set()).segmentation_id == 102
    with pytest.raises(errors.VlanIdInUse) as info:
        segments.allocate_vlan(wanted, RANGES, {102})
    assert info.value.status == 409


def test_vlan_exhaustion_is_no_network_available():
    seg = segments.resolve_request("vlan", "physnet1", None, RANGES)
    with pytest.raises(errors.NoNetworkAvailable) as info:
        segments.allocate_vlan(seg, RANGES, {100, 101, 102})
    assert info.value.status == 503


def test_flat_needs_a_physnet_and_no_segmentation_id():
    assert segments.resolve_request("flat", "extnet", None, RANGES).segmentation_id is None
    with pytest.raises(errors.InvalidInput):
        segments.resolve_request("flat", None, None, RANGES)
    with pytest.raises(errors.InvalidInput):
        segments.resolve_request("flat", "extnet", 5, RANGES)
    with pytest.raises(errors.InvalidInput):
        segments.resolve_request("vxlan", None, None, RANGES)
    with pytest.raises(errors.InvalidInput):
        segments.resolve_request("vlan", "nosuchnet", None, RANGES)
