"""Networks, subnets and ports against the real controller, through openstacksdk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openstack.exceptions as sdk_exc
import pytest

from tests.support.controller import ControllerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    workdir: Path = tmp_path_factory.mktemp("resources")
    with ControllerProcess(workdir, options={
            "network_vlan_ranges": "physnet1:100:104,physnet2:7:7"}) as proc:
        yield proc


@pytest.fixture(scope="module")
def conn(ctl):
    return ctl.sdk()


def error_type(ctl, method, path, body=None, raw=None):
    status, payload = ctl.request(method, path, body, raw=raw)
    return status, (payload or {}).get("NeutronError", {}).get("type")


def test_network_attributes_and_vlan_allocation(conn):
    net = conn.network.create_network(name="attrs", description="d")
    assert net.provider_network_type == "vlan"
    assert net.provider_physical_network == "physnet1"
    assert 100 <= net.provider_segmentation_id <= 104
    assert net.status == "ACTIVE" and net.mtu == 1500 and net.is_admin_state_up
    assert net.is_port_security_enabled and not net.is_shared and not net.is_router_external
    assert net.subnet_ids == [] and net.availability_zones == []
    assert net.created_at.endswith("Z") and len(net.created_at) == 20
    fetched = conn.network.get_network(net.id)
    assert fetched.provider_segmentation_id == net.provider_segmentation_id
    updated = conn.network.update_network(net, name="renamed", is_admin_state_up=False)
    assert updated.name == "renamed" and not updated.is_admin_state_up
    conn.network.delete_network(net)
    with pytest.raises(sdk_exc.NotFoundException):
        conn.network.get_network(net.id)


def test_requested_vlan_conflicts_and_exhaustion(ctl, conn):
    net = conn.network.create_network(name="v7", provider_network_type="vlan",
                                      provider_physical_network="physnet2",
                                      provider_segmentation_id=7)
    assert net.provider_segmentation_id == 7
    body = {"network": {"provider:network_type": "vlan", "provider:physical_network":
                        "physnet2", "provider:segmentation_id": 7}}
    assert error_type(ctl, "POST", "/v2.0/networks", body) == (409, "VlanIdInUse")
    body = {"network": {"provider:physical_network": "physnet2"}}
    assert error_type(ctl, "POST", "/v2.0/networks", body) == (503, "NoNetworkAvailable")
    conn.network.delete_network(net)


def test_flat_network_on_any_physnet_once(ctl, conn):
    net = conn.network.create_network(name="flat", provider_network_type="flat",
                                      provider_physical_network="extnet-flat")
    assert net.provider_segmentation_id is None
    body = {"network": {"provider:network_type": "flat",
                        "provider:physical_network": "extnet-flat"}}
    assert error_type(ctl, "POST", "/v2.0/networks", body) == (409, "FlatNetworkInUse")
    body = {"network": {"provider:network_type": "flat"}}
    assert error_type(ctl, "POST", "/v2.0/networks", body)[0] == 400
    conn.network.delete_network(net)


def test_subnet_defaults_and_validation(ctl, conn):
    net = conn.network.create_network(name="subnets")
    sub = conn.network.create_subnet(network_id=net.id, cidr="10.1.0.0/24", ip_version=4,
                                     dns_nameservers=["8.8.8.8"],
                                     host_routes=[{"destination": "10.9.0.0/16",
                                                   "nexthop": "10.1.0.254"}])
    assert sub.gateway_ip == "10.1.0.1" and sub.is_dhcp_enabled
    assert sub.allocation_pools == [{"start": "10.1.0.2", "end": "10.1.0.254"}]
    assert sub.dns_nameservers == ["8.8.8.8"]
    assert conn.network.get_network(net.id).subnet_ids == [sub.id]
    no_gw = conn.network.create_subnet(network_id=net.id, cidr="10.2.0.0/29", ip_version=4,
                                       gateway_ip=None, is_dhcp_enabled=False)
    assert no_gw.gateway_ip is None
    assert no_gw.allocation_pools == [{"start": "10.2.0.1", "end": "10.2.0.6"}]
    updated = conn.network.update_subnet(sub, name="s1", gateway_ip="10.1.0.254",
                                         allocation_pools=[{"start": "10.1.0.10",
                                                            "end": "10.1.0.20"}])
    assert updated.gateway_ip == "10.1.0.254" and updated.name == "s1"
    path = "/v2.0/subnets"
    cases = [
        ({"cidr": "10.3.0.1/24"}, 400, "InvalidInput"),                 # host bits set
        ({"cidr": "2001:db8::/64", "ip_version": 6}, 400, "InvalidInput"),
        ({"cidr": "10.1.0.128/25"}, 400, "InvalidInput"),               # overlaps sub
        ({"cidr": "10.4.0.0/24", "gateway_ip": "224.0.0.1"}, 400, "InvalidInput"),
        ({"cidr": "10.4.0.0/24", "allocation_pools": [{"start": "10.4.0.2",
                                                       "end": "10.4.1.9"}]},
         400, "OutOfBoundsAllocationPool"),
        ({"cidr": "10.4.0.0/24", "allocation_pools": [
            {"start": "10.4.0.2", "end": "10.4.0.9"}, {"start": "10.4.0.5", "end": "10.4.0.7"}]},
         409, "OverlappingAllocationPools"),
        ({"cidr": "10.4.0.0/24", "allocation_pools": [{"start": "10.4.0.1",
                                                       "end": "10.4.0.9"}]},
         409, "GatewayConflictWithAllocationPools"),
        ({"cidr": "10.4.0.0/24", "enable_dhcp": "yes"}, 400, "HTTPBadRequest"),
    ]
    for extra, status, kind in cases:
        body = {"subnet": {"network_id": net.id, "ip_version": 4, **extra}}
        assert error_type(ctl, "POST", path, body) == (status, kind), extra
    conn.network.delete_network(net)


def test_ports_mac_and_fixed_ip_allocation(ctl, conn):
    net = conn.network.create_network(name="ports")
    sub = conn.network.create_subnet(network_id=net.id, cidr="10.20.0.0/29", ip_version=4)
    first = conn.network.create_port(network_id=net.id, name="p1")
    assert first.mac_address.startswith("fa:16:3e:")
    assert first.fixed_ips == [{"subnet_id": sub.id, "ip_address": "10.20.0.2"}]
    assert first.status == "DOWN" and first.is_port_security_enabled
    assert first.binding_vif_type == "unbound"
    default = conn.network.find_security_group("default", project_id=first.project_id)
    assert first.security_group_ids == [default.id]   # the project's default group
    wanted = conn.network.create_port(network_id=net.id, mac_address="fa:16:3e:00:00:42",
                                      fixed_ips=[{"ip_address": "10.20.0.5"}],
                                      device_owner="compute:nova", device_id="vm-1",
                                      binding_host_id="host-a")
    assert wanted.mac_address == "fa:16:3e:00:00:42"
    assert wanted.fixed_ips[0]["ip_address"] == "10.20.0.5"
    assert wanted.binding_host_id == "host-a" and wanted.binding_vif_type == "ovs"
    body = {"port": {"network_id": net.id, "fixed_ips": [{"ip_address": "10.20.0.5"}]}}
    assert error_type(ctl, "POST", "/v2.0/ports", body) == (409, "IpAddressAlreadyAllocated")
    body = {"port": {"network_id": net.id, "mac_address": "fa:16:3e:00:00:42"}}
    assert error_type(ctl, "POST", "/v2.0/ports", body) == (409, "MacAddressInUse")
    body = {"port": {"network_id": net.id, "fixed_ips": [{"ip_address": "10.99.0.5"}]}}
    assert error_type(ctl, "POST", "/v2.0/ports", body) == (400, "InvalidIpForNetwork")
    # /29 has .1 (gateway) and .2-.6: .2 and .5 taken, three more fit, then exhausted.
    more = [conn.network.create_port(network_id=net.id) for _ in range(3)]
    assert sorted(p.fixed_ips[0]["ip_address"] for p in more) == \
        ["10.20.0.3", "10.20.0.4", "10.20.0.6"]
    body = {"port": {"network_id": net.id}}
    assert error_type(ctl, "POST", "/v2.0/ports", body) == (409, "IpAddressGenerationFailure")
    # PUT: move to another address, rename, change binding and port security.
    conn.network.delete_port(more[0])
    moved = conn.network.update_port(first, fixed_ips=[{"ip_address": "10.20.0.3"}],
                                     name="moved", binding_host_id="host-b",
                                     is_port_security_enabled=False, security_group_ids=[],
                                     device_id="vm-2")
    assert moved.fixed_ips == [{"subnet_id": sub.id, "ip_address": "10.20.0.3"}]
    assert moved.binding_host_id == "host-b" and not moved.is_port_security_enabled
    for port in [first, wanted, *more[1:]]:
        conn.network.delete_port(port)
    conn.network.delete_network(net)


def test_port_security_default_follows_network(conn):
    net = conn.network.create_network(name="nosec", is_port_security_enabled=False)
    port = conn.network.create_port(network_id=net.id)
    assert port.fixed_ips == [] and not port.is_port_security_enabled
    conn.network.delete_port(port)
    conn.network.delete_network(net)


def test_network_and_subnet_in_use(ctl, conn):
    net = conn.network.create_network(name="inuse")
    sub = conn.network.create_subnet(network_id=net.id, cidr="10.30.0.0/24", ip_version=4)
    port = conn.network.create_port(network_id=net.id)
    dhcp = conn.network.create_port(network_id=net.id, device_owner="network:dhcp",
                                    device_id="dhcp-host-a")
    assert error_type(ctl, "DELETE", f"/v2.0/networks/{net.id}") == (409, "NetworkInUse")
    assert error_type(ctl, "DELETE", f"/v2.0/subnets/{sub.id}") == (409, "SubnetInUse")
    conn.network.delete_port(port)
    # Only the DHCP port remains: the subnet goes, the port loses its address on it.
    conn.network.delete_subnet(sub)
    assert conn.network.get_port(dhcp.id).fixed_ips == []
    conn.network.delete_network(net)     # auto-deletes the network:dhcp port
    with pytest.raises(sdk_exc.NotFoundException):
        conn.network.get_port(dhcp.id)


def test_filters_fields_and_paging(ctl, conn):
    nets = [conn.network.create_network(name=f"flt-{i}") for i in range(3)]
    names = {n.name for n in conn.network.networks(name="flt-1")}
    assert names == {"flt-1"}
    status, body = ctl.request("GET", "/v2.0/networks?name=flt-0&name=flt-2&fields=id"
                                      "&fields=name")
    assert status == 200
    assert sorted(n["name"] for n in body["networks"]) == ["flt-0", "flt-2"]
    assert all(set(n) == {"id", "name"} for n in body["networks"])
    status, body = ctl.request("GET", f"/v2.0/networks/{nets[0].id}?fields=name")
    assert body == {"network": {"name": "flt-0"}}
    status, body = ctl.request("GET", "/v2.0/networks?admin_state_up=True&shared=false"
                                      "&sort_key=name&sort_dir=desc&limit=2")
    assert status == 200 and len(body["networks"]) == 2
    assert body["networks"][0]["name"] >= body["networks"][1]["name"]
    assert body["networks_links"][0]["rel"] == "next"
    listed = list(conn.network.networks(limit=1))      # sdk follows the marker
    assert {n.id for n in nets} <= {n.id for n in listed}
    port = conn.network.create_port(network_id=nets[0].id, device_owner="compute:x")
    assert [p.id for p in conn.network.ports(device_owner="compute:x")] == [port.id]
    assert [p.id for p in conn.network.ports(network_id=nets[1].id)] == []
    conn.network.delete_port(port)
    for net in nets:
        conn.network.delete_network(net)


def test_bad_input_gets_neutron_errors_and_process_stays_up(ctl):
    cases = [
        ("POST", "/v2.0/networks", None, b"{not json", 400, "HTTPBadRequest"),
        ("POST", "/v2.0/networks", None, b"[]", 400, "HTTPBadRequest"),
        ("POST", "/v2.0/networks", {"network": {"admin_state_up": "yes"}}, None, 400,
         "HTTPBadRequest"),
        ("POST", "/v2.0/networks", {"network": {"colour": "blue"}}, None, 400,
         "HTTPBadRequest"),
        ("POST", "/v2.0/networks", {"network": {"name": ["x"]}}, None, 400, "HTTPBadRequest"),
        ("POST", "/v2.0/networks", {"network": {"mtu": 10}}, None, 400, "HTTPBadRequest"),
        ("POST", "/v2.0/ports", {"port": {"network_id": "not-a-uuid"}}, None, 400,
         "HTTPBadRequest"),
        ("POST", "/v2.0/ports", {"port": {"network_id":
                                          "3f1e9a52-0000-4000-8000-000000000000"}}, None,
         404, "NetworkNotFound"),
        ("GET", "/v2.0/networks/3f1e9a52-0000-4000-8000-000000000000", None, None, 404,
         "NetworkNotFound"),
        ("GET", "/v2.0/subnets/nope", None, None, 404, "SubnetNotFound"),
        ("DELETE", "/v2.0/ports/nope", None, None, 404, "PortNotFound"),
        ("PUT", "/v2.0/routers/nope", {"router": {"name": "x"}}, None, 404, "RouterNotFound"),
        ("GET", "/v2.0/floatingips/nope", None, None, 404, "FloatingIPNotFound"),
        ("GET", "/v2.0/nothing", None, None, 404, "NotFound"),
        ("PATCH", "/v2.0/networks", None, None, 405, "HTTPMethodNotAllowed"),
        ("GET", "/v2.0/networks?limit=x", None, None, 400, "HTTPBadRequest"),
    ]
    for method, path, body, raw, status, kind in cases:
        assert error_type(ctl, method, path, body, raw) == (status, kind), (method, path, body)
        assert ctl.alive()
    assert ctl.request("GET", "/")[0] == 200
