"""Routers (gateway, interfaces) and floating IPs against the real controller."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.controller import ControllerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    with ControllerProcess(tmp_path_factory.mktemp("routers")) as proc:
        yield proc


@pytest.fixture(scope="module")
def conn(ctl):
    return ctl.sdk()


@pytest.fixture(scope="module")
def ext(conn):
    net = conn.network.create_network(name="public", is_router_external=True,
                                      provider_network_type="flat",
                                      provider_physical_network="extnet")
    sub = conn.network.create_subnet(network_id=net.id, cidr="172.24.4.0/28", ip_version=4,
                                     is_dhcp_enabled=False)
    return net, sub


def private(conn, name, cidr):
    net = conn.network.create_network(name=name)
    sub = conn.network.create_subnet(network_id=net.id, cidr=cidr, ip_version=4)
    return net, sub


def error_type(ctl, method, path, body=None):
    status, payload = ctl.request(method, path, body)
    return status, (payload or {}).get("NeutronError", {}).get("type")


def test_router_gateway_and_interfaces(ctl, conn, ext):
    ext_net, ext_sub = ext
    _net, sub = private(conn, "r1-net", "10.10.0.0/24")
    router = conn.network.create_router(name="r1",
                                        external_gateway_info={"network_id": ext_net.id})
    info = router.external_gateway_info
    assert info["network_id"] == ext_net.id and info["enable_snat"] is True
    assert info["external_fixed_ips"][0]["subnet_id"] == ext_sub.id
    assert router.routes == [] and router.status == "ACTIVE"
    gw_ports = list(conn.network.ports(device_owner="network:router_gateway",
                                       device_id=router.id))
    assert len(gw_ports) == 1 and gw_ports[0].network_id == ext_net.id

    added = conn.network.add_interface_to_router(router, subnet_id=sub.id)
    assert added["subnet_id"] == sub.id
    port = conn.network.get_port(added["port_id"])
    assert port.device_owner == "network:router_interface" and port.device_id == router.id
    assert port.fixed_ips == [{"subnet_id": sub.id, "ip_address": "10.10.0.1"}]

    # Same subnet again: 400; overlapping CIDR from another network: 409.
    path = f"/v2.0/routers/{router.id}/add_router_interface"
    assert error_type(ctl, "PUT", path, {"subnet_id": sub.id})[0] == 400
    _, overlapping = private(conn, "r1-overlap", "10.10.0.0/25")
    assert error_type(ctl, "PUT", path, {"subnet_id": overlapping.id}) == \
        (409, "RouterInterfaceCidrOverlap")
    # Gateway IP held by another port: 409.
    _, held = private(conn, "r1-held", "10.11.0.0/24")
    conn.network.create_port(network_id=held.network_id,
                             fixed_ips=[{"ip_address": "10.11.0.1"}])
    assert error_type(ctl, "PUT", path, {"subnet_id": held.id}) == \
        (409, "IpAddressAlreadyAllocated")
    # No gateway IP: 400.
    nogw_net = conn.network.create_network(name="r1-nogw")
    nogw = conn.network.create_subnet(network_id=nogw_net.id, cidr="10.12.0.0/24",
                                      ip_version=4, gateway_ip=None)
    assert error_type(ctl, "PUT", path, {"subnet_id": nogw.id})[0] == 400

    # By port: uses the port's address; a port already in use is 409.
    byport_net, byport_sub = private(conn, "r1-byport", "10.13.0.0/24")
    free = conn.network.create_port(network_id=byport_net.id)
    added2 = conn.network.add_interface_to_router(router, port_id=free.id)
    assert added2["port_id"] == free.id and added2["subnet_id"] == byport_sub.id
    assert conn.network.get_port(free.id).device_owner == "network:router_interface"
    used = conn.network.create_port(network_id=byport_net.id, device_id="vm-9",
                                    device_owner="compute:nova")
    assert error_type(ctl, "PUT", path, {"port_id": used.id}) == (409, "PortInUse")

    # Router ports cannot be deleted directly; a router with interfaces cannot be deleted.
    assert error_type(ctl, "DELETE", f"/v2.0/ports/{port.id}") == (409, "ServicePortInUse")
    assert error_type(ctl, "DELETE", f"/v2.0/ports/{gw_ports[0].id}") == \
        (409, "ServicePortInUse")
    assert error_type(ctl, "DELETE", f"/v2.0/routers/{router.id}") == (409, "RouterInUse")

    # Remove: by subnet, by port; unknown subnet -> 404.
    remove = f"/v2.0/routers/{router.id}/remove_router_interface"
    conn.network.remove_interface_from_router(router, subnet_id=sub.id)
    assert error_type(ctl, "PUT", remove, {"subnet_id": sub.id}) == \
        (404, "RouterInterfaceNotFoundForSubnet")
    conn.network.remove_interface_from_router(router, port_id=free.id)
    assert list(conn.network.ports(device_id=router.id,
                                   device_owner="network:router_interface")) == []

    # Clear the gateway, then delete.
    cleared = conn.network.update_router(router, external_gateway_info={})
    assert cleared.external_gateway_info is None
    assert list(conn.network.ports(device_id=router.id)) == []
    conn.network.delete_router(router)


def test_gateway_must_be_external_and_can_be_set_later(ctl, conn, ext):
    ext_net, _ = ext
    net, _ = private(conn, "notext", "10.14.0.0/24")
    router = conn.network.create_router(name="r2")
    assert router.external_gateway_info is None
    status, _body = ctl.request("PUT", f"/v2.0/routers/{router.id}",
                               {"router": {"external_gateway_info": {"network_id": net.id}}})
    assert status == 400
    updated = conn.network.update_router(
        router, external_gateway_info={"network_id": ext_net.id, "enable_snat": False,
                                       "external_fixed_ips": [{"ip_address": "172.24.4.14"}]})
    assert updated.external_gateway_info["enable_snat"] is False
    assert updated.external_gateway_info["external_fixed_ips"][0]["ip_address"] == \
        "172.24.4.14"
    conn.network.update_router(router, external_gateway_info=None)
    conn.network.delete_router(router)


def test_floating_ip_lifecycle(ctl, conn, ext):
    ext_net, _ext_sub = ext
    net, sub = private(conn, "fip-net", "10.40.0.0/24")
    vm = conn.network.create_port(network_id=net.id, device_owner="compute:nova")
    fip = conn.network.create_ip(floating_network_id=ext_net.id)
    assert fip.port_id is None and fip.router_id is None and fip.status == "DOWN"
    assert fip.floating_ip_address.startswith("172.24.4.")
    fip_ports = list(conn.network.ports(device_owner="network:floatingip", device_id=fip.id))
    assert len(fip_ports) == 1

    # No router connects the port's subnet to the external network yet.
    path = f"/v2.0/floatingips/{fip.id}"
    assert error_type(ctl, "PUT", path, {"floatingip": {"port_id": vm.id}}) == \
        (404, "ExternalGatewayForFloatingIPNotFound")
    router = conn.network.create_router(name="fip-r",
                                        external_gateway_info={"network_id": ext_net.id})
    conn.network.add_interface_to_router(router, subnet_id=sub.id)
    assoc = conn.network.update_ip(fip, port_id=vm.id)
    assert assoc.port_id == vm.id and assoc.router_id == router.id
    assert assoc.fixed_ip_address == vm.fixed_ips[0]["ip_address"]

    # The same fixed IP cannot have two floating IPs.
    second = conn.network.create_ip(floating_network_id=ext_net.id,
                                    floating_ip_address="172.24.4.13")
    assert second.floating_ip_address == "172.24.4.13"
    assert error_type(ctl, "PUT", f"/v2.0/floatingips/{second.id}",
                      {"floatingip": {"port_id": vm.id}}) == \
        (409, "FloatingIPPortAlreadyAssociated")
    body = {"floatingip": {"floating_network_id": ext_net.id,
                           "floating_ip_address": "172.24.4.13"}}
    assert error_type(ctl, "POST", "/v2.0/floatingips", body) == \
        (409, "IpAddressAlreadyAllocated")
    body = {"floatingip": {"floating_network_id": net.id}}
    assert error_type(ctl, "POST", "/v2.0/floatingips", body)[0] == 400

    # The gateway and the interface are needed by the association.
    assert error_type(ctl, "PUT", f"/v2.0/routers/{router.id}",
                      {"router": {"external_gateway_info": {}}}) == \
        (409, "RouterExternalGatewayInUseByFloatingIp")
    assert error_type(ctl, "PUT", f"/v2.0/routers/{router.id}/remove_router_interface",
                      {"subnet_id": sub.id}) == (409, "RouterInterfaceInUseByFloatingIP")
    assert error_type(ctl, "DELETE", f"/v2.0/ports/{fip_ports[0].id}") == \
        (409, "ServicePortInUse")
    assert [f.id for f in conn.network.ips(port_id=vm.id)] == [fip.id]

    # Disassociate, then everything can go.
    dis = conn.network.update_ip(fip, port_id=None)
    assert dis.port_id is None and dis.router_id is None and dis.fixed_ip_address is None
    # Associate on create, then deleting the VM port disassociates.
    third = conn.network.create_ip(floating_network_id=ext_net.id, port_id=vm.id)
    assert third.router_id == router.id
    conn.network.delete_port(vm)
    assert conn.network.get_ip(third.id).port_id is None
    for item in (fip, second, third):
        conn.network.delete_ip(item)
    assert list(conn.network.ports(device_owner="network:floatingip")) == []
    conn.network.remove_interface_from_router(router, subnet_id=sub.id)
    conn.network.delete_router(router)


def test_external_pool_exhaustion(ctl, conn):
    net = conn.network.create_network(name="tiny-ext", is_router_external=True,
                                      provider_network_type="flat",
                                      provider_physical_network="extnet2")
    conn.network.create_subnet(network_id=net.id, cidr="192.0.2.0/30", ip_version=4)
    only = conn.network.create_ip(floating_network_id=net.id)
    assert only.floating_ip_address == "192.0.2.2"
    body = {"floatingip": {"floating_network_id": net.id}}
    assert error_type(ctl, "POST", "/v2.0/floatingips", body) == \
        (409, "IpAddressGenerationFailure")
    assert [n.id for n in conn.network.networks(is_router_external=True,
                                                name="tiny-ext")] == [net.id]
    _status, body = ctl.request("GET", "/v2.0/networks?router:external=True")
    assert net.id in [n["id"] for n in body["networks"]]
    assert all(n["router:external"] for n in body["networks"])
    conn.network.delete_ip(only)
