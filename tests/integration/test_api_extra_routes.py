"""Extra routes of routers through openstacksdk (``routes``, ``add_extraroutes``,
``remove_extraroutes``) against the real controller."""

from __future__ import annotations

from collections.abc import Iterator

import openstack.exceptions as sdk_exc
import pytest

from tests.support.controller import ControllerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    with ControllerProcess(tmp_path_factory.mktemp("routes"), {"max_routes": 3}) as proc:
        yield proc


@pytest.fixture(scope="module")
def conn(ctl):
    return ctl.sdk()


def error_type(ctl, method, path, body=None):
    status, payload = ctl.request(method, path, body)
    return status, (payload or {}).get("NeutronError", {}).get("type")


@pytest.fixture
def router(conn):
    net = conn.network.create_network(name="routed")
    sub = conn.network.create_subnet(network_id=net.id, cidr="10.70.0.0/24", ip_version=4)
    router = conn.network.create_router(name="with-routes")
    conn.network.add_interface_to_router(router, subnet_id=sub.id)
    yield router, sub
    router = conn.network.get_router(router.id)
    conn.network.update_router(router, routes=[])
    conn.network.remove_interface_from_router(router, subnet_id=sub.id)
    conn.network.delete_router(router)
    conn.network.delete_network(net)


def route(destination: str, nexthop: str) -> dict[str, str]:
    return {"destination": destination, "nexthop": nexthop}


def test_routes_are_set_added_and_removed(conn, router):
    router, _sub = router
    assert router.routes == []
    before = router.revision_number
    first = route("192.168.1.0/24", "10.70.0.10")
    updated = conn.network.update_router(router, routes=[first])
    assert updated.routes == [first] and updated.revision_number == before + 1
    second = route("192.168.2.0/24", "10.70.0.11")
    added = conn.network.add_extra_routes_to_router(
        router, body={"router": {"routes": [second, first]}})
    assert sorted(added.routes, key=str) == sorted([first, second], key=str)
    removed = conn.network.remove_extra_routes_from_router(
        router, body={"router": {"routes": [first, route("192.168.9.0/24", "10.70.0.9")]}})
    assert removed.routes == [second]
    assert conn.network.get_router(router.id).routes == [second]


def test_routes_are_checked(ctl, conn, router):
    router, _sub = router
    path = f"/v2.0/routers/{router.id}"
    for routes in ([route("192.168.1.0/24", "10.99.0.1")],        # not connected
                   [route("192.168.1.0/24", "10.70.0.1")],        # the router's own address
                   [route("192.168.1.1/24", "10.70.0.10")],       # host bits set
                   [route("2001:db8::/64", "10.70.0.10")],        # IPv6
                   [{"destination": "192.168.1.0/24"}],           # no nexthop
                   [route("192.168.1.0/24", "10.70.0.10"),
                    route("192.168.1.0/24", "10.70.0.11")]):      # two nexthops
        assert error_type(ctl, "PUT", path, {"router": {"routes": routes}}) == \
            (400, "InvalidRoutes"), routes
    many = [route(f"192.168.{i}.0/24", "10.70.0.10") for i in range(4)]
    assert error_type(ctl, "PUT", path, {"router": {"routes": many}}) == \
        (400, "RoutesExhausted")
    assert error_type(ctl, "PUT", path + "/add_extraroutes", {"routes": many})[0] == 400
    assert conn.network.get_router(router.id).routes == []


def test_an_interface_a_route_goes_through_stays(ctl, conn, router):
    router, sub = router
    conn.network.update_router(router, routes=[route("192.168.1.0/24", "10.70.0.10")])
    assert error_type(ctl, "PUT", f"/v2.0/routers/{router.id}/remove_router_interface",
                      {"subnet_id": sub.id}) == (409, "RouterInterfaceInUseByRoute")


def test_a_new_router_cannot_have_routes_without_interfaces(ctl, conn):
    with pytest.raises(sdk_exc.BadRequestException):
        conn.network.create_router(name="early", routes=[route("10.0.0.0/8", "10.70.0.1")])
    assert conn.network.create_router(name="empty", routes=[]).routes == []
