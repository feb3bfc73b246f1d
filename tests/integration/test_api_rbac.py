"""RBAC policies on networks through openstacksdk against the real controller: sharing with
one project or all, external access, visibility following the policies, policies in use."""

from __future__ import annotations

from collections.abc import Iterator

import openstack.exceptions as sdk_exc
import pytest

from tests.support.controller import ControllerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ctl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    with ControllerProcess(tmp_path_factory.mktemp("rbac"), tokens={
            "admin-token": {"project_id": "admin-project", "role": "admin"},
            "alice-token": {"project_id": "alice", "role": "member"},
            "bob-token": {"project_id": "bob", "role": "member"},
            "carol-token": {"project_id": "carol", "role": "member"}}) as proc:
        yield proc


@pytest.fixture(scope="module")
def admin(ctl):
    return ctl.sdk("admin-token")


@pytest.fixture(scope="module")
def alice(ctl):
    return ctl.sdk("alice-token")


@pytest.fixture(scope="module")
def bob(ctl):
    return ctl.sdk("bob-token")


@pytest.fixture(scope="module")
def carol(ctl):
    return ctl.sdk("carol-token")


def error_type(ctl, method, path, body=None, token="admin-token"):
    status, payload = ctl.request(method, path, body, token=token)
    return status, (payload or {}).get("NeutronError", {}).get("type")


def ids(resources) -> set[str]:
    return {r.id for r in resources}


def test_sharing_with_one_project(ctl, alice, bob, carol):
    net = alice.network.create_network(name="alice-net")
    sub = alice.network.create_subnet(network_id=net.id, cidr="10.60.0.0/24", ip_version=4)
    assert net.id not in ids(bob.network.networks())
    policy = alice.network.create_rbac_policy(object_type="network", object_id=net.id,
                                              action="access_as_shared",
                                              target_tenant="bob")
    assert (policy.project_id, policy.target_project_id, policy.action) == \
        ("alice", "bob", "access_as_shared")
    # bob sees it (as shared), its subnets, and may put ports on it; carol does not.
    seen = bob.network.get_network(net.id)
    assert seen.is_shared is True
    assert alice.network.get_network(net.id).is_shared is False   # the owner: no wildcard
    assert net.id in ids(bob.network.networks(is_shared=True))
    assert net.id not in ids(bob.network.networks(is_shared=False))
    assert sub.id in ids(bob.network.subnets())
    port = bob.network.create_port(network_id=net.id)
    assert net.id not in ids(carol.network.networks())
    with pytest.raises(sdk_exc.NotFoundException):
        carol.network.get_network(net.id)
    assert error_type(ctl, "POST", "/v2.0/ports", {"port": {"network_id": net.id}},
                      token="carol-token") == (403, "PolicyNotAuthorized")
    # Policies are their owner's: bob does not see alice's.
    assert policy.id in ids(alice.network.rbac_policies())
    assert policy.id not in ids(bob.network.rbac_policies())
    # bob's port depends on it: neither deleting nor retargeting it is allowed.
    assert error_type(ctl, "DELETE", f"/v2.0/rbac-policies/{policy.id}",
                      token="alice-token") == (409, "RbacPolicyInUse")
    assert error_type(ctl, "PUT", f"/v2.0/rbac-policies/{policy.id}", {
        "rbac_policy": {"target_tenant": "carol"}}, token="alice-token") == \
        (409, "RbacPolicyInUse")
    bob.network.delete_port(port)
    policy = alice.network.update_rbac_policy(policy, target_tenant="carol")
    assert net.id in ids(carol.network.networks()) and net.id not in ids(bob.network.networks())
    alice.network.delete_rbac_policy(policy)
    assert net.id not in ids(carol.network.networks())
    alice.network.delete_network(net)


def test_shared_true_is_the_wildcard_policy(ctl, admin, alice, bob):
    net = admin.network.create_network(name="everyone", project_id="alice", shared=True)
    [wildcard] = list(admin.network.rbac_policies(object_id=net.id))
    assert (wildcard.target_project_id, wildcard.action, wildcard.project_id) == \
        ("*", "access_as_shared", "alice")
    assert bob.network.get_network(net.id).is_shared
    port = bob.network.create_port(network_id=net.id)
    # Unsharing while bob uses it: 409, as Neutron answers.
    assert error_type(ctl, "PUT", f"/v2.0/networks/{net.id}", {"network": {
        "shared": False}}) == (409, "InvalidSharedSetting")
    # A targeted policy for bob keeps bob's port legitimate: then unsharing works.
    admin.network.create_rbac_policy(object_type="network", object_id=net.id,
                                     action="access_as_shared", target_tenant="bob")
    net = admin.network.update_network(net, is_shared=False)
    assert not net.is_shared
    assert [p.target_project_id for p in admin.network.rbac_policies(object_id=net.id)] == \
        ["bob"]
    bob.network.delete_port(port)
    # Sharing again through the policy API sets shared.
    wildcard = admin.network.create_rbac_policy(object_type="network", object_id=net.id,
                                                action="access_as_shared", target_tenant="*")
    assert admin.network.get_network(net.id).is_shared
    admin.network.delete_rbac_policy(wildcard)
    assert not admin.network.get_network(net.id).is_shared
    admin.network.delete_network(net)
    assert list(admin.network.rbac_policies(object_id=net.id)) == []


def test_access_as_external_to_one_project(ctl, admin, alice, bob):
    ext = admin.network.create_network(name="ext-for-alice", provider_network_type="flat",
                                       provider_physical_network="extnet")
    admin.network.create_subnet(network_id=ext.id, cidr="198.51.100.0/24", ip_version=4)
    assert not ext.is_router_external
    policy = admin.network.create_rbac_policy(object_type="network", object_id=ext.id,
                                              action="access_as_external",
                                              target_tenant="alice")
    assert admin.network.get_network(ext.id).is_router_external
    assert ext.id in ids(alice.network.networks())
    assert ext.id not in ids(bob.network.networks())
    fip = alice.network.create_ip(floating_network_id=ext.id)
    router = alice.network.create_router(name="r", external_gateway_info={
        "network_id": ext.id})
    assert error_type(ctl, "POST", "/v2.0/floatingips", {"floatingip": {
        "floating_network_id": ext.id}}, token="bob-token") == (404, "NetworkNotFound")
    assert error_type(ctl, "DELETE", f"/v2.0/rbac-policies/{policy.id}") == \
        (409, "RbacPolicyInUse")
    alice.network.delete_ip(fip)
    alice.network.update_router(router, external_gateway_info=None)
    admin.network.delete_rbac_policy(policy)
    assert not admin.network.get_network(ext.id).is_router_external
    alice.network.delete_router(router)
    admin.network.delete_network(ext)


def test_policy_rules(ctl, admin, alice, bob):
    net = alice.network.create_network(name="rules")
    body = {"object_type": "network", "object_id": net.id, "action": "access_as_shared",
            "target_tenant": "*"}
    assert error_type(ctl, "POST", "/v2.0/rbac-policies", {"rbac_policy": body},
                      token="alice-token") == (403, "PolicyNotAuthorized")
    assert error_type(ctl, "POST", "/v2.0/rbac-policies", {"rbac_policy": {
        **body, "action": "access_as_external", "target_tenant": "bob"}},
        token="alice-token") == (403, "PolicyNotAuthorized")
    assert error_type(ctl, "POST", "/v2.0/rbac-policies", {"rbac_policy": {
        **body, "target_tenant": "bob"}}, token="bob-token") == (404, "NetworkNotFound")
    assert error_type(ctl, "POST", "/v2.0/rbac-policies", {"rbac_policy": {
        **body, "object_type": "qos_policy"}})[0] == 400
    assert error_type(ctl, "POST", "/v2.0/rbac-policies", {"rbac_policy": {
        **body, "action": "access_as_owner"}})[0] == 400
    policy = alice.network.create_rbac_policy(**{**body, "target_tenant": "bob"})
    assert error_type(ctl, "POST", "/v2.0/rbac-policies", {"rbac_policy": {
        **body, "target_tenant": "bob"}}, token="alice-token") == (409, "DuplicateRbacPolicy")
    # bob sees the network but may not grant it further.
    assert error_type(ctl, "POST", "/v2.0/rbac-policies", {"rbac_policy": {
        **body, "target_tenant": "carol"}}, token="bob-token") == (403, "PolicyNotAuthorized")
    assert error_type(ctl, "GET", f"/v2.0/rbac-policies/{policy.id}", token="bob-token") == \
        (404, "RbacPolicyNotFound")
    assert [p.id for p in admin.network.rbac_policies(object_type="network",
                                                      target_tenant="bob")] == [policy.id]
    alice.network.delete_rbac_policy(policy)
    alice.network.delete_network(net)
