"""Behaviours OpenStack's clients rely on, against the real controller through openstacksdk:
``is_default``, gateways outside their subnet, floating IP ``port_details``, external
networks deleted with their floating IPs, filter validation."""

from __future__ import annotations

from collections.abc import Iterator

import openstack.exceptions as sdk_exc
import pytest

from tests.support.controller import ControllerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    with ControllerProcess(tmp_path_factory.mktemp("behaviours"), tokens={
            "admin-token": {"project_id": "admin-project", "role": "admin"},
            "alice-token": {"project_id": "alice", "role": "member"}}) as proc:
        yield proc


@pytest.fixture(scope="module")
def conn(ctl):
    return ctl.sdk("admin-token")


@pytest.fixture(scope="module")
def alice(ctl):
    return ctl.sdk("alice-token")


def error_type(ctl, method, path, body=None, token="admin-token"):
    status, payload = ctl.request(method, path, body, token=token)
    return status, (payload or {}).get("NeutronError", {}).get("type")


def test_is_default_false_is_accepted_and_true_only_for_an_admin_on_external(ctl, conn, alice):
    net = alice.network.create_network(name="plain", is_default=False)
    assert net.is_default is False
    assert error_type(ctl, "POST", "/v2.0/networks",
                      {"network": {"is_default": True}}, token="alice-token") == \
        (403, "PolicyNotAuthorized")
    assert error_type(ctl, "POST", "/v2.0/networks", {"network": {"is_default": True}}) == \
        (400, "InvalidInput")
    public = conn.network.create_network(name="public", is_router_external=True,
                                         is_default=True)
    assert public.is_default is True
    assert [n.id for n in conn.network.networks(is_default=True)] == [public.id]
    assert error_type(ctl, "POST", "/v2.0/networks", {"network": {
        "router:external": True, "is_default": True}}) == \
        (409, "DefaultExternalNetworkExists")
    public = conn.network.update_network(public, is_router_external=False)
    assert public.is_default is False
    conn.network.delete_network(public)
    alice.network.delete_network(net)


def test_a_gateway_outside_the_subnet_is_accepted(ctl, conn):
    net = conn.network.create_network(name="onlink")
    sub = conn.network.create_subnet(network_id=net.id, cidr="10.20.0.0/24", ip_version=4,
                                     gateway_ip="10.20.9.1")
    assert sub.gateway_ip == "10.20.9.1"
    assert sub.allocation_pools == [{"start": "10.20.0.1", "end": "10.20.0.254"}]
    sub = conn.network.update_subnet(sub, gateway_ip="192.0.2.1")
    assert sub.gateway_ip == "192.0.2.1"
    assert error_type(ctl, "PUT", f"/v2.0/subnets/{sub.id}",
                      {"subnet": {"gateway_ip": "224.0.0.1"}}) == (400, "InvalidInput")
    assert error_type(ctl, "PUT", f"/v2.0/subnets/{sub.id}",
                      {"subnet": {"gateway_ip": "10.20.0.255"}}) == (400, "InvalidInput")
    # A router's interface holds the subnet's gateway address: outside the CIDR it cannot.
    router = conn.network.create_router(name="onlink")
    with pytest.raises(sdk_exc.BadRequestException):
        conn.network.add_interface_to_router(router, subnet_id=sub.id)
    conn.network.delete_router(router)
    conn.network.delete_subnet(sub)
    conn.network.delete_network(net)


def _external_with_router(conn, name: str, cidr: str, ext_cidr: str):
    ext = conn.network.create_network(name=f"{name}-ext", is_router_external=True)
    conn.network.create_subnet(network_id=ext.id, cidr=ext_cidr, ip_version=4)
    net = conn.network.create_network(name=name)
    sub = conn.network.create_subnet(network_id=net.id, cidr=cidr, ip_version=4)
    router = conn.network.create_router(name=name, external_gateway_info={
        "network_id": ext.id})
    conn.network.add_interface_to_router(router, subnet_id=sub.id)
    return ext, net, sub, router


def test_floating_ip_port_details_once_associated(conn):
    ext, net, sub, router = _external_with_router(conn, "details", "10.30.0.0/24",
                                                  "198.51.100.0/24")
    port = conn.network.create_port(network_id=net.id, name="vm-port", device_id="vm-1",
                                    device_owner="compute:nova")
    fip = conn.network.create_ip(floating_network_id=ext.id)
    assert fip.port_details is None
    fip = conn.network.update_ip(fip, port_id=port.id)
    assert fip.port_details == {
        "name": "vm-port", "network_id": net.id, "mac_address": port.mac_address,
        "admin_state_up": True, "status": port.status, "device_id": "vm-1",
        "device_owner": "compute:nova"}
    assert next(iter(conn.network.ips(port_id=port.id))).port_details["name"] == "vm-port"
    assert conn.network.update_ip(fip, port_id=None).port_details is None
    conn.network.delete_ip(fip)
    conn.network.delete_port(port)
    conn.network.remove_interface_from_router(router, subnet_id=sub.id)
    conn.network.delete_router(router)
    conn.network.delete_network(net)
    conn.network.delete_network(ext)


def test_deleting_an_external_network_deletes_its_floating_ips(ctl, conn):
    ext = conn.network.create_network(name="doomed", is_router_external=True)
    conn.network.create_subnet(network_id=ext.id, cidr="203.0.113.0/24", ip_version=4)
    fips = [conn.network.create_ip(floating_network_id=ext.id) for _ in range(2)]
    router = conn.network.create_router(name="holds", external_gateway_info={
        "network_id": ext.id})
    # A router gateway still holds it.
    assert error_type(ctl, "DELETE", f"/v2.0/networks/{ext.id}") == (409, "NetworkInUse")
    conn.network.update_router(router, external_gateway_info=None)
    conn.network.delete_network(ext)
    for fip in fips:
        with pytest.raises(sdk_exc.NotFoundException):
            conn.network.get_ip(fip.id)
    assert list(conn.network.ports(network_id=ext.id)) == []
    conn.network.delete_router(router)


@pytest.mark.parametrize("plural", ["networks", "subnets", "ports", "routers",
                                    "floatingips"])
def test_unknown_filters_are_refused(ctl, plural):
    status, body = ctl.request("GET", f"/v2.0/{plural}?colour=red&id=x",
                               token="admin-token")
    assert status == 400
    assert body["NeutronError"]["type"] == "HTTPBadRequest"
    assert "colour" in body["NeutronError"]["message"]
    # Known attributes, also computed ones, and the paging keys are fine.
    for query in ("id=x", "tenant_id=p", "tags=a", "fields=id&limit=2", "revision_number=1",
                  "description=d&sort_key=id&sort_dir=desc", "not-tags-any=b"):
        assert ctl.request("GET", f"/v2.0/{plural}?{query}", token="admin-token")[0] == 200


def test_computed_attributes_filter(ctl, conn):
    net = conn.network.create_network(name="computed", availability_zone_hints=["az9"])
    status, body = ctl.request("GET", "/v2.0/networks?availability_zone_hints=az9",
                               token="admin-token")
    assert (status, [n["id"] for n in body["networks"]]) == (200, [net.id])
    conn.network.delete_network(net)
