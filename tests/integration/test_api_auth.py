"""Token mode: 401 without a known token, projects isolated, admin sees all; Neutron's
default policy for readers, admin-only attributes and agents (docs/api.md, "Auth")."""

from __future__ import annotations

from collections.abc import Iterator

import openstack.exceptions as sdk_exc
import pytest

from tests.support.controller import ControllerProcess

pytestmark = pytest.mark.integration

TOKENS = {"admin-tok": {"project_id": "ops", "role": "admin"},
          "alice-tok": {"project_id": "alice", "role": "member"},
          "bob-tok": {"project_id": "bob", "role": "member"},
          "carol-tok": {"project_id": "alice", "role": "reader"},
          "dave-tok": {"project_id": "alice", "roles": ["observer"]}}


@pytest.fixture(scope="module")
def ctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    with ControllerProcess(tmp_path_factory.mktemp("auth"), tokens=TOKENS) as proc:
        yield proc


def test_missing_or_unknown_token_is_401(ctl):
    for token in (None, "wrong"):
        status, body = ctl.request("GET", "/v2.0/networks", token=token)
        assert status == 401 and body["NeutronError"]["type"] == "NotAuthenticated"
    assert ctl.request("GET", "/")[0] == 200        # discovery stays public


def test_projects_see_and_change_only_their_own(ctl):
    alice, bob, admin = ctl.sdk("alice-tok"), ctl.sdk("bob-tok"), ctl.sdk("admin-tok")
    net = alice.network.create_network(name="alice-net")
    assert net.project_id == "alice"
    sub = alice.network.create_subnet(network_id=net.id, cidr="10.0.0.0/24", ip_version=4)
    port = alice.network.create_port(network_id=net.id)
    assert [n.id for n in bob.network.networks()] == []
    assert list(bob.network.ports()) == [] and list(bob.network.subnets()) == []
    for call in (lambda: bob.network.get_network(net.id),
                 lambda: bob.network.update_network(net.id, name="x"),
                 lambda: bob.network.delete_network(net.id, ignore_missing=False),
                 lambda: bob.network.get_subnet(sub.id),
                 lambda: bob.network.get_port(port.id)):
        with pytest.raises(sdk_exc.NotFoundException):
            call()
    # Using someone else's (unshared) network is forbidden.
    status, body = ctl.request("POST", "/v2.0/ports", {"port": {"network_id": net.id}},
                               token="bob-tok")
    assert status == 403 and body["NeutronError"]["type"] == "PolicyNotAuthorized"
    assert {n.id for n in admin.network.networks()} >= {net.id}
    assert admin.network.get_port(port.id).project_id == "alice"


def test_admin_only_attributes_and_project_id(ctl):
    for body in ({"network": {"provider:network_type": "flat",
                              "provider:physical_network": "x"}},
                 {"network": {"router:external": True}},
                 {"network": {"shared": True}},
                 {"network": {"project_id": "bob"}}):
        status, payload = ctl.request("POST", "/v2.0/networks", body, token="alice-tok")
        assert status == 403, body
    status, payload = ctl.request("POST", "/v2.0/networks",
                                  {"network": {"name": "for-bob", "project_id": "bob"}},
                                  token="admin-tok")
    assert status == 201 and payload["network"]["project_id"] == "bob"


def test_shared_and_external_networks_are_visible_to_all(ctl):
    admin, bob = ctl.sdk("admin-tok"), ctl.sdk("bob-tok")
    shared = admin.network.create_network(name="shared", is_shared=True)
    admin.network.create_subnet(network_id=shared.id, cidr="10.50.0.0/24", ip_version=4)
    ext = admin.network.create_network(name="ext", is_router_external=True)
    admin.network.create_subnet(network_id=ext.id, cidr="172.30.0.0/24", ip_version=4)
    visible = {n.id for n in bob.network.networks()}
    assert {shared.id, ext.id} <= visible
    port = bob.network.create_port(network_id=shared.id)
    assert port.project_id == "bob"
    router = bob.network.create_router(name="bob-r",
                                       external_gateway_info={"network_id": ext.id})
    fip = bob.network.create_ip(floating_network_id=ext.id)
    assert fip.project_id == "bob" and router.project_id == "bob"
    assert [f.id for f in ctl.sdk("alice-tok").network.ips()] == []


def test_a_reader_reads_its_project_but_changes_nothing(ctl):
    alice = ctl.sdk("alice-tok")
    net = alice.network.create_network(name="read-me")
    router = alice.network.create_router(name="read-me-r")
    reader = ctl.sdk("carol-tok")                   # reader in alice's project
    assert net.id in {n.id for n in reader.network.networks()}
    assert reader.network.get_network(net.id).name == "read-me"
    for method, path, body in (
            ("POST", "/v2.0/networks", {"network": {"name": "x"}}),
            ("PUT", f"/v2.0/networks/{net.id}", {"network": {"name": "x"}}),
            ("DELETE", f"/v2.0/networks/{net.id}", None),
            ("PUT", f"/v2.0/routers/{router.id}/add_router_interface", {"subnet_id": "x"})):
        status, payload = ctl.request(method, path, body, token="carol-tok")
        assert status == 403, (method, path, payload)
        assert payload["NeutronError"]["type"] == "PolicyNotAuthorized"
    # What a reader may not even see stays 404, as Neutron checks visibility first.
    bobs = ctl.sdk("bob-tok").network.create_network(name="bobs")
    status, _ = ctl.request("DELETE", f"/v2.0/networks/{bobs.id}", token="carol-tok")
    assert status == 404
    assert alice.network.get_network(net.id).name == "read-me"


def test_a_token_without_a_known_role_is_refused(ctl):
    status, payload = ctl.request("GET", "/v2.0/networks", token="dave-tok")
    assert status == 403 and payload["NeutronError"]["type"] == "PolicyNotAuthorized"


def test_admin_only_attributes_are_hidden_from_others(ctl):
    alice = ctl.sdk("alice-tok")
    status, created = ctl.request("POST", "/v2.0/networks", {"network": {"name": "hid"}},
                                  token="alice-tok")
    assert status == 201 and "provider:network_type" not in created["network"]
    net_id = created["network"]["id"]
    admin_view = ctl.sdk("admin-tok").network.get_network(net_id)
    assert admin_view.provider_network_type == "vlan"
    assert alice.network.get_network(net_id).provider_network_type is None
    status, listed = ctl.request("GET", "/v2.0/networks?fields=id&fields=provider:"
                                 "segmentation_id", token="alice-tok")
    assert all(set(n) == {"id"} for n in listed["networks"])
    status, port = ctl.request("POST", "/v2.0/ports", {"port": {"network_id": net_id}},
                               token="alice-tok")
    assert status == 201 and not any(k.startswith("binding:") and k != "binding:vnic_type"
                                     for k in port["port"])
    status, port = ctl.request("GET", f"/v2.0/ports/{port['port']['id']}", token="admin-tok")
    assert "binding:host_id" in port["port"]


def test_agents_are_admin_only_as_neutron_answers(ctl):
    status, listed = ctl.request("GET", "/v2.0/agents", token="alice-tok")
    assert (status, listed) == (200, {"agents": []})
    assert [a for a in ctl.sdk("carol-tok").network.agents()] == []
    agent_id = "00000000-0000-0000-0000-000000000001"
    for method, body in (("GET", None), ("PUT", {"agent": {"description": "x"}}),
                         ("DELETE", None)):
        for token in ("alice-tok", "carol-tok"):
            status, payload = ctl.request(method, f"/v2.0/agents/{agent_id}", body,
                                          token=token)
            assert status == 404, (method, token, payload)
    status, _ = ctl.request("GET", f"/v2.0/agents/{agent_id}/dhcp-networks",
                            token="alice-tok")
    assert status == 403
    assert ctl.request("GET", "/v2.0/agents", token="admin-tok")[0] == 200


def test_someone_elses_shared_network_is_visible_but_not_changeable(ctl):
    shared = ctl.sdk("admin-tok").network.create_network(name="shared-ro", is_shared=True)
    subnet = ctl.sdk("admin-tok").network.create_subnet(network_id=shared.id,
                                                        cidr="10.77.0.0/24", ip_version=4)
    for path, body in ((f"/v2.0/networks/{shared.id}", {"network": {"name": "x"}}),
                       (f"/v2.0/subnets/{subnet.id}", {"subnet": {"name": "x"}})):
        assert ctl.request("GET", path, token="bob-tok")[0] == 200
        for method in ("PUT", "DELETE"):
            status, payload = ctl.request(method, path, body if method == "PUT" else None,
                                          token="bob-tok")
            assert status == 403, (method, path, payload)
