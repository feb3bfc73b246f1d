"""Token mode: 401 without a known token, projects isolated, admin sees all."""

from __future__ import annotations

from collections.abc import Iterator

import openstack.exceptions as sdk_exc
import pytest

from tests.support.controller import ControllerProcess

pytestmark = pytest.mark.integration

TOKENS = {"admin-tok": {"project_id": "ops", "role": "admin"},
          "alice-tok": {"project_id": "alice", "role": "member"},
          "bob-tok": {"project_id": "bob", "role": "member"}}


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
