"""Tags and revision numbers (Neutron's standard attributes) through openstacksdk, unmodified,
against the real controller."""

from __future__ import annotations

from collections.abc import Iterator

import openstack.exceptions as sdk_exc
import pytest

from tests.support.controller import ControllerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    with ControllerProcess(tmp_path_factory.mktemp("stdattrs")) as proc:
        yield proc


@pytest.fixture(scope="module")
def conn(ctl):
    return ctl.sdk()


def error_type(ctl, method, path, body=None, headers=None):
    status, payload = ctl.request(method, path, body, headers=headers)
    return status, (payload or {}).get("NeutronError", {}).get("type")


def test_tag_api_on_a_network(conn):
    net = conn.network.create_network(name="tagged")
    assert net.tags == []
    conn.network.set_tags(net, ["red", "blue", "red"])
    assert conn.network.get_network(net.id).tags == ["blue", "red"]
    net.add_tag(conn.network, "green")
    net.check_tag(conn.network, "green")
    with pytest.raises(sdk_exc.NotFoundException):
        net.check_tag(conn.network, "purple")
    net.remove_tag(conn.network, "red")
    assert sorted(net.fetch_tags(conn.network).tags) == ["blue", "green"]
    with pytest.raises(sdk_exc.NotFoundException):
        net.remove_tag(conn.network, "red")
    net.remove_all_tags(conn.network)
    assert conn.network.get_network(net.id).tags == []
    conn.network.add_tags(net, ["x", "y"])                      # POST: adds several
    conn.network.add_tags(net, ["y", "z"])
    assert conn.network.get_network(net.id).tags == ["x", "y", "z"]
    conn.network.delete_network(net)


@pytest.mark.parametrize("kind", ["subnet", "port", "router", "floatingip"])
def test_every_standard_resource_has_tags_on_create_and_through_the_tag_api(ctl, conn, kind):
    net = conn.network.create_network(name=f"for-{kind}", is_router_external=True)
    sub = conn.network.create_subnet(network_id=net.id, cidr="10.9.0.0/24", ip_version=4,
                                     tags=["born"] if kind == "subnet" else [])
    if kind == "subnet":
        obj, plural = sub, "subnets"
    elif kind == "port":
        obj, plural = conn.network.create_port(network_id=net.id, tags=["born"]), "ports"
    elif kind == "router":
        obj, plural = conn.network.create_router(name="r", tags=["born"]), "routers"
    else:
        obj = conn.network.create_ip(floating_network_id=net.id, tags=["born"])
        plural = "floatingips"
    assert obj.tags == ["born"]
    status, body = ctl.request("PUT", f"/v2.0/{plural}/{obj.id}/tags/second")
    assert status == 201
    status, body = ctl.request("GET", f"/v2.0/{plural}/{obj.id}/tags")
    assert (status, body) == (200, {"tags": ["born", "second"]})
    status, _ = ctl.request("GET", f"/v2.0/{plural}/{obj.id}/tags/second")
    assert status == 204
    assert error_type(ctl, "DELETE", f"/v2.0/{plural}/{obj.id}/tags/nope") == \
        (404, "TagNotFound")
    status, _ = ctl.request("DELETE", f"/v2.0/{plural}/{obj.id}/tags")
    assert status == 204
    assert ctl.request("GET", f"/v2.0/{plural}/{obj.id}")[1][kind]["tags"] == []
    if kind == "port":
        conn.network.delete_port(obj)
    elif kind == "router":
        conn.network.delete_router(obj)
    elif kind == "floatingip":
        conn.network.delete_ip(obj)
    conn.network.delete_network(net)


def test_tag_filters_in_lists(conn):
    nets = {name: conn.network.create_network(name=name) for name in ("ab", "a", "b", "none")}
    conn.network.set_tags(nets["ab"], ["a", "b"])
    conn.network.set_tags(nets["a"], ["a"])
    conn.network.set_tags(nets["b"], ["b"])

    def names(**query):
        return sorted(n.name for n in conn.network.networks(**query) if n.name in nets)

    assert names(tags="a,b") == ["ab"]
    assert names(tags="a") == ["a", "ab"]
    assert names(any_tags="a,b") == ["a", "ab", "b"]
    assert names(not_tags="a,b") == ["a", "b", "none"]
    assert names(not_any_tags="a") == ["b", "none"]
    assert names(tags="a", not_tags="b") == ["a"]
    for net in nets.values():
        conn.network.delete_network(net)


def test_tags_are_validated(ctl, conn):
    net = conn.network.create_network(name="validated")
    path = f"/v2.0/networks/{net.id}/tags"
    assert error_type(ctl, "PUT", path, {"tags": ["x" * 61]})[0] == 400
    assert error_type(ctl, "PUT", path, {"tags": "x"})[0] == 400
    assert error_type(ctl, "PUT", path, {"tags": [""]})[0] == 400
    assert error_type(ctl, "PUT", path, {"tags": ["a\x1b[31m"]})[0] == 400
    assert error_type(ctl, "PUT", path, {"other": []})[0] == 400
    assert error_type(ctl, "PUT", f"/v2.0/networks/{net.id}", {"network": {"tags": ["x"]}}) \
        == (400, "HTTPBadRequest")
    assert error_type(ctl, "PUT", "/v2.0/networks/00000000-0000-4000-8000-000000000000/tags",
                      {"tags": []}) == (404, "NetworkNotFound")
    conn.network.delete_network(net)


def test_revision_number_counts_changes(conn):
    net = conn.network.create_network(name="rev")
    assert net.revision_number == 1
    net = conn.network.update_network(net, name="rev2")
    assert net.revision_number == 2
    assert conn.network.update_network(net, name="rev2").revision_number == 2  # no change
    conn.network.create_subnet(network_id=net.id, cidr="10.8.0.0/24", ip_version=4)
    assert conn.network.get_network(net.id).revision_number == 3        # its subnets
    conn.network.set_tags(net, ["t"])
    assert conn.network.get_network(net.id).revision_number == 4        # its tags
    port = conn.network.create_port(network_id=net.id)
    assert port.revision_number == 1
    port = conn.network.update_port(port, fixed_ips=[])
    assert port.revision_number == 2
    assert [p.id for p in conn.network.ports(revision_number=2, network_id=net.id)] == [port.id]
    conn.network.delete_port(port)
    conn.network.delete_network(net)


def test_if_match_refuses_a_stale_revision(ctl, conn):
    net = conn.network.create_network(name="ifmatch")
    with pytest.raises(sdk_exc.HttpException) as stale:
        conn.network.update_network(net, name="late", if_revision=7)
    assert stale.value.status_code == 412
    assert "RevisionNumberConstraintFailed" in str(stale.value.details) or \
        "Constrained to 7" in str(stale.value)
    assert conn.network.get_network(net.id).name == "ifmatch"
    net = conn.network.update_network(net, name="fresh", if_revision=1)
    assert (net.name, net.revision_number) == ("fresh", 2)
    assert error_type(ctl, "DELETE", f"/v2.0/networks/{net.id}",
                      headers={"If-Match": "revision_number=1"}) == \
        (412, "RevisionNumberConstraintFailed")
    assert error_type(ctl, "PUT", f"/v2.0/networks/{net.id}", {"network": {"name": "x"}},
                      headers={"If-Match": "revision_number=two"})[0] == 400
    conn.network.delete_network(net, if_revision=2)
    with pytest.raises(sdk_exc.NotFoundException):
        conn.network.get_network(net.id)
